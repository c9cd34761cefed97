"""Combination rules of theory variations, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recastkit.theory import (
    TheoryError,
    alphas,
    combine,
    parse_scale_name,
    pdf_hessian,
    pdf_replicas,
    scale_envelope,
)

NOM = np.array([10.0, 20.0, 5.0])


def _scale_points() -> dict[tuple[float, float], np.ndarray]:
    return {
        (0.5, 0.5): np.array([11.0, 19.0, 5.0]),
        (0.5, 1.0): np.array([10.5, 21.0, 5.5]),
        (1.0, 0.5): np.array([9.5, 20.0, 4.0]),
        (1.0, 2.0): np.array([10.0, 22.0, 5.0]),
        (2.0, 1.0): np.array([9.0, 18.0, 5.2]),
        (2.0, 2.0): np.array([10.2, 20.5, 4.9]),
        # anti-correlated points: far off, must be ignored
        (0.5, 2.0): np.array([100.0, 100.0, 100.0]),
        (2.0, 0.5): np.array([0.0, 0.0, 0.0]),
    }


def test_scale_envelope_excludes_anticorrelated_points() -> None:
    band = scale_envelope(NOM, _scale_points())
    assert band.up.tolist() == [11.0, 22.0, 5.5]
    assert band.down.tolist() == [9.0, 18.0, 4.0]
    assert band.relative_total == pytest.approx((31.0 / 35.0 - 1.0, 38.5 / 35.0 - 1.0))


def test_scale_envelope_needs_all_six_points() -> None:
    points = _scale_points()
    del points[(2.0, 2.0)]
    with pytest.raises(TheoryError, match=r"μR=2, μF=2"):
        scale_envelope(NOM, points)


def test_pdf_hessian_is_sum_in_quadrature() -> None:
    members = {"m1": NOM + np.array([1.0, 0.0, 0.5]), "m2": NOM - np.array([2.0, 1.0, 0.0])}
    band = pdf_hessian(NOM, members)
    delta = [math.sqrt(1 + 4), math.sqrt(0 + 1), math.sqrt(0.25)]
    assert band.up == pytest.approx(NOM + delta)
    assert band.down == pytest.approx(NOM - delta)


def test_pdf_replicas_is_standard_deviation() -> None:
    reps = {f"r{i}": NOM * f for i, f in enumerate((0.9, 1.0, 1.1, 1.2))}
    band = pdf_replicas(NOM, reps)
    fs = [0.9, 1.0, 1.1, 1.2]
    mean = sum(fs) / 4
    sd = math.sqrt(sum((f - mean) ** 2 for f in fs) / 3)
    assert band.up == pytest.approx(NOM * (1 + sd))


def test_alphas_half_difference() -> None:
    band = alphas(NOM, NOM * 0.98, NOM * 1.04)
    assert band.up == pytest.approx(NOM * 1.03)
    assert band.down == pytest.approx(NOM * 0.97)


@pytest.mark.parametrize(
    ("name", "point"),
    [
        (" muR = 0.5, muF = 2.0 ", (0.5, 2.0)),  # PHYSLITE 21.2.108 TruthMetaData
        (" muR=0.50000E+00 muF=0.20000E+01 ", (0.5, 2.0)),
        ("MUR2_MUF1_PDF261000", (2.0, 1.0)),
        (" nominal ", None),
        ("isr:muRfac=1.25_fsr:muRfac=1.0", None),
        (" PDF set = 260001 ", None),
    ],
)
def test_parse_scale_name(name: str, point: tuple[float, float] | None) -> None:
    assert parse_scale_name(name) == point


def test_combine_by_name_and_unknown_rule() -> None:
    named = {f" muR = {r}, muF = {f} ": v for (r, f), v in _scale_points().items()}
    assert combine("scale", NOM, named).up.tolist() == [11.0, 22.0, 5.5]
    with pytest.raises(TheoryError, match="choose one of scale, pdf_hessian"):
        combine("envelope", NOM, named)


def test_inputs_are_not_modified_and_shapes_checked() -> None:
    nom = NOM.copy()
    pdf_hessian(nom, {"a": nom + 1})
    assert nom.tolist() == NOM.tolist()
    with pytest.raises(TheoryError, match="shape"):
        pdf_hessian(nom, {"a": np.ones(4)})


# --------------------------------------------------------------------------- normalization


def test_normalization_factor_and_bands_by_own_sumw():
    from recastkit.theory import TheoryGroup, normalization_factor, theory_bands

    assert normalization_factor(200.0, 250.0, "acceptance") == pytest.approx(0.8)
    assert normalization_factor(200.0, 250.0, "total") == 1.0
    with pytest.raises(TheoryError, match="unknown normalization"):
        normalization_factor(1.0, 1.0, "own")
    with pytest.raises(TheoryError, match="must be positive"):
        normalization_factor(1.0, 0.0, "acceptance")
    nominal = np.array([10.0, 20.0])
    # a variation with 25 % more Σw and 25 % more events everywhere: no acceptance effect
    variations = {"a": nominal * 1.25, "b": nominal * 0.5}
    group = TheoryGroup("pdf", "pdf_hessian", ("a", "b"))
    (band,) = theory_bands(nominal, variations, [group], sumw_nominal=100.0,
                           sumw={"a": 125.0, "b": 100.0})
    # a: 1.25 × 100/125 = 1 (no change); b: −50 % → δ = 0.5 × nominal
    np.testing.assert_allclose(band.up, nominal * 1.5)
    np.testing.assert_allclose(band.down, nominal * 0.5)
    with pytest.raises(TheoryError, match="no variation 'c'; available: a, b"):
        theory_bands(nominal, variations, [TheoryGroup("x", "pdf_hessian", ("c",))],
                     normalize="total")
    with pytest.raises(TheoryError, match="unknown rule"):
        TheoryGroup("x", "envelope", ("a",))


def test_parse_scale_name_with_p_as_decimal_point():
    assert parse_scale_name("muR0p5_muF2") == (0.5, 2.0)
    assert parse_scale_name("muR_0.5_muF_1.0") == (0.5, 1.0)
    assert parse_scale_name("MUR0.5_MUF2_PDF261000") == (0.5, 2.0)
