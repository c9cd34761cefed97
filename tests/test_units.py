"""Units: parsing, conversion, σ × L arithmetic, and errors for bare numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recastkit.exceptions import RecastkitError, UnitError
from recastkit.units import CrossSection, Luminosity, parse_lumi, parse_xsec


@pytest.mark.parametrize(
    ("text", "fb"),
    [
        ("44.837 fb", 44.837),
        ("0.044837 pb", 44.837),
        ("4.4837e-5 nb", 44.837),
        ("44837 ab", 44.837),
        ("  729.77pb ", 729770.0),
        ("1E3 FB", 1000.0),
    ],
)
def test_parse_xsec(text: str, fb: float) -> None:
    assert parse_xsec(text).fb == pytest.approx(fb, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "ifb"),
    [
        ("140.1 fb^-1", 140.1),
        ("140.1/fb", 140.1),
        ("140.1 1/fb", 140.1),
        ("140.1 fb-1", 140.1),
        ("140.1 fb**-1", 140.1),
        ("140.1 fb⁻¹", 140.1),
        ("140.1 ifb", 140.1),
        ("36207.66 pb-1", 36.20766),
        ("0.1401 ab^-1", 140.1),
    ],
)
def test_parse_lumi(text: str, ifb: float) -> None:
    assert parse_lumi(text).ifb == pytest.approx(ifb, rel=1e-12)


@pytest.mark.parametrize("bad", ["44.837", " 1e3 ", "44.837 fib", "fb 44", "", "44.8.3 fb"])
def test_xsec_errors_name_accepted_units(bad: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_xsec(bad)
    assert "fb" in str(info.value)
    assert isinstance(info.value, RecastkitError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", ["140.1", "140.1 fb", "140.1 m^-2", "140.1 kb^-1"])
def test_lumi_errors_name_accepted_units(bad: str) -> None:
    with pytest.raises(UnitError, match=r"fb\^-1"):
        parse_lumi(bad)


def test_bare_number_objects_rejected() -> None:
    with pytest.raises(UnitError, match="needs a unit"):
        parse_xsec(44.837)  # type: ignore[arg-type]
    with pytest.raises(UnitError, match="needs a unit"):
        parse_lumi(140.1)  # type: ignore[arg-type]


def test_worked_example_sigma_times_lumi() -> None:
    # 44.837 fb × 140.1 fb^-1 / 6813.0258 = 0.922008 (hand computation)
    events = CrossSection.parse("0.044837 pb") * Luminosity.parse("140100 pb^-1")
    assert isinstance(events, float)
    assert events == pytest.approx(44.837 * 140.1, rel=1e-12)
    assert events / 6813.0258 == pytest.approx(0.922008, rel=1e-6)
    assert Luminosity.from_ifb(140.1) * CrossSection.from_fb(44.837) == pytest.approx(events)


def test_conversions_and_scalar_arithmetic() -> None:
    x = CrossSection.from_pb(0.076107)
    assert x.fb == pytest.approx(76.107, rel=1e-12)
    assert x.nb == pytest.approx(7.6107e-5, rel=1e-12)
    assert x.to("fb").value == pytest.approx(76.107, rel=1e-12)
    assert (0.5891 * x).unit == "pb"
    assert CrossSection.from_fb(44.837) / CrossSection.from_fb(76.107) == pytest.approx(
        0.58913, rel=1e-4
    )
    total = Luminosity.from_ipb(3244.54) + Luminosity.from_ipb(33402.2)
    assert total.ifb == pytest.approx(36.64674, rel=1e-12)
    assert Luminosity.from_ifb(1).ipb == pytest.approx(1000.0)
    assert CrossSection.from_fb(1000) == CrossSection.from_pb(1)
    assert str(CrossSection.from_fb(44.837)) == "44.837 fb"
    assert str(Luminosity.from_ifb(140.1)) == "140.1 fb^-1"


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_invalid_values_rejected(value: float) -> None:
    if value >= 0 or math.isnan(value):
        with pytest.raises(UnitError):
            CrossSection(value, "fb")
    with pytest.raises(UnitError):
        Luminosity(value, "fb^-1")


def test_negative_cross_section_is_a_value() -> None:
    """Interference samples have σ < 0 (e.g. SUSYTools DSID 342098: -0.033518 pb)."""
    xsec = CrossSection(-0.033518, "pb")
    assert xsec.fb == pytest.approx(-33.518, rel=1e-12)
    assert (xsec * 0.5).fb == pytest.approx(-16.759, rel=1e-12)
    assert xsec.to("fb").value == pytest.approx(-33.518, rel=1e-12)


def test_unknown_unit_in_constructor() -> None:
    with pytest.raises(UnitError, match="accepted units"):
        CrossSection(1.0, "mb")  # type: ignore[arg-type]


_values = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(_values, st.sampled_from(["fb", "pb", "nb", "ab", "FB", "Pb"]),
       st.sampled_from(["", " ", "  "]))
def test_xsec_parse_roundtrip(value: float, unit: str, sep: str) -> None:
    parsed = parse_xsec(f"{value!r}{sep}{unit}")
    assert parsed.value == value
    assert parsed.unit == unit.lower()
    again = parse_xsec(str(parsed))
    assert again.isclose(parsed, rel_tol=1e-9)


@given(_values, st.sampled_from(["fb", "pb", "nb"]),
       st.sampled_from(["{v} {u}^-1", "{v}{u}-1", "{v}/{u}", "{v} {u}⁻¹", "{v} i{u}"]))
def test_lumi_parse_roundtrip(value: float, unit: str, pattern: str) -> None:
    parsed = parse_lumi(pattern.format(v=repr(value), u=unit))
    assert parsed.value == value
    assert parsed.unit == f"{unit}^-1"
    assert parse_lumi(str(parsed)).isclose(parsed)


@given(st.text(max_size=12))
def test_xsec_parser_never_crashes(text: str) -> None:
    try:
        result = parse_xsec(text)
    except UnitError:
        return
    assert result.fb >= 0
