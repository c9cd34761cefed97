"""Scaling: the worked example, the ledger, and histogram/array scaling with variances."""

from __future__ import annotations

import hist
import numpy as np
import pytest

from recastkit.exceptions import ScalingError
from recastkit.scaling import Ledger, scale_arrays, scale_hist
from recastkit.units import CrossSection, Luminosity


def worked_example(**overrides: object) -> Ledger:
    kwargs: dict[str, object] = {
        "xsec": CrossSection.from_fb(44.837),
        "filter_eff": 1.0,
        "k_factor": 1.0,
        "lumi": Luminosity.from_ifb(140.1),
        "sum_of_weights": 6813.025800,
        "xsec_source": "PMG table",
        "filter_eff_source": "PMG table",
        "k_factor_source": "PMG table",
        "lumi_source": "user",
        "sum_of_weights_source": "CutBookkeepers",
    }
    kwargs.update(overrides)
    return Ledger(**kwargs)  # type: ignore[arg-type]


def test_worked_example_scale() -> None:
    ledger = worked_example()
    # 44.837 × 140.1 / 6813.0258 computed by hand: 0.92200791...
    assert ledger.scale == pytest.approx(0.922008, rel=1e-6)
    assert ledger.expected_yield == pytest.approx(44.837 * 140.1, rel=1e-12)


def test_units_do_not_matter() -> None:
    a = worked_example()
    b = worked_example(xsec=CrossSection.from_pb(0.044837), lumi=Luminosity.from_ipb(140100))
    assert b.scale == pytest.approx(a.scale, rel=1e-12)


def test_susytools_410470_example() -> None:
    # shared data README §1.1: σ = 729.77 pb, ε = 0.54383, k = 1.13975636159, L = 140 fb^-1,
    # Σw = 29465.34912109375 -> 2149.20398...
    ledger = worked_example(
        xsec=CrossSection.from_pb(729.77), filter_eff=0.54383, k_factor=1.13975636159,
        lumi=Luminosity.from_ifb(140), sum_of_weights=29465.34912109375,
    )
    assert ledger.scale == pytest.approx(2149.20398, rel=1e-8)


def test_ledger_lines_and_dict() -> None:
    ledger = worked_example()
    names = [f.name for f in ledger.factors]
    assert names == ["cross section", "filter efficiency", "k-factor", "luminosity",
                     "sum of weights"]
    assert ledger.factors[-1].role == "denominator"
    d = ledger.to_dict()
    assert d["scale"] == pytest.approx(0.922008, rel=1e-6)
    assert d["xsec_fb"] == pytest.approx(44.837)
    assert d["lumi_ifb"] == pytest.approx(140.1)
    assert {f["source"] for f in d["factors"]} >= {"PMG table", "user", "CutBookkeepers"}
    assert "0.922008" in ledger.format()


@pytest.mark.parametrize(
    ("field", "value"),
    [("filter_eff", 0.0), ("filter_eff", 1.5), ("k_factor", -1.0), ("sum_of_weights", 0.0),
     ("sum_of_weights", float("nan")), ("lumi_rel_unc", -0.1)],
)
def test_invalid_factors(field: str, value: float) -> None:
    with pytest.raises(ScalingError, match=field.split("_", maxsplit=1)[0]):
        worked_example(**{field: value})


def test_bare_float_xsec_rejected() -> None:
    with pytest.raises(ScalingError, match="CrossSection"):
        worked_example(xsec=44.837)


def test_scale_arrays_values_and_variances() -> None:
    values = np.array([1.0, 2.0, 3.0])
    variances = np.array([0.5, 1.0, 4.0])
    out_v, out_var = scale_arrays(values, variances, 2.0)
    np.testing.assert_allclose(out_v, [2.0, 4.0, 6.0], rtol=1e-15)
    assert out_var is not None
    np.testing.assert_allclose(out_var, [2.0, 4.0, 16.0], rtol=1e-15)
    np.testing.assert_array_equal(values, [1.0, 2.0, 3.0])  # inputs untouched
    assert scale_arrays(values, None, 3.0)[1] is None


def test_scale_hist_does_not_mutate_and_scales_flow() -> None:
    h = hist.Hist.new.Reg(4, 0, 4, name="x").Weight()
    h.fill([-1.0, 0.5, 1.5, 1.5, 9.0], weight=[1.0, 2.0, 3.0, 4.0, 5.0])
    before_values = h.values(flow=True).copy()
    before_var = h.variances(flow=True).copy()
    s = worked_example().scale
    out = scale_hist(h, s)
    np.testing.assert_allclose(out.values(flow=True), before_values * s, rtol=1e-15)
    np.testing.assert_allclose(out.variances(flow=True), before_var * s * s, rtol=1e-15)
    np.testing.assert_array_equal(h.values(flow=True), before_values)
    # hand check of one bin: weights 3 and 4 -> Σw = 7, Σw² = 25
    assert out.values()[1] == pytest.approx(7 * s, rel=1e-15)
    assert out.variances()[1] == pytest.approx(25 * s * s, rel=1e-15)


def test_scale_hist_needs_weight_storage() -> None:
    h = hist.Hist.new.Reg(2, 0, 2).Double()
    with pytest.raises(ScalingError, match="Weight storage"):
        scale_hist(h, 2.0)


def test_check_scalable_names_the_bin_of_a_2d_histogram() -> None:
    from recastkit.scaling import check_scalable

    h = hist.Hist.new.Reg(2, 0, 2, name="x").Var([0, 10, 30], name="y").Weight()
    view = h.view()
    view.value = [[1.0, 2.0], [3.0, 4.0]]
    view.variance = [[1.0, 2.0], [3.0, -4.0]]
    with pytest.raises(ScalingError, match=r"f\.root:h2: bin variances must be finite and ≥ 0; "
                                           r"got bin \(1 \[1, 2\), 1 \[10, 30\)\): -4\.0"):
        check_scalable(h, "f.root:h2")


def test_check_scalable_allows_negative_contents_and_names_underflow() -> None:
    from recastkit.scaling import check_scalable

    h = hist.Hist(hist.axis.Regular(2, 0, 1), storage=hist.storage.Weight())
    h.view().value = [-1.5, 2.0]  # negative generator weights are valid contents
    h.view().variance = [2.25, 4.0]
    check_scalable(h, "h")
    h.view(flow=True)[0] = (float("inf"), 1.0)
    with pytest.raises(ScalingError, match="bin contents must be finite; got underflow: inf"):
        check_scalable(h, "h")
