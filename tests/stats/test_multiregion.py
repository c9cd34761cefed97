"""Several regions in one fit: a control region fixes a background's free normalization."""

from __future__ import annotations

import numpy as np
import pyhf
import pytest

from recastkit import stats
from recastkit.exceptions import StatsError
from recastkit.theory import TheoryBand

EDGES = (0.0, 1.0)


def _s(name, values, edges=EDGES):
    return stats.BinnedSample(name, tuple(edges), tuple(values), None, name)


def _regions():
    sr = stats.prepare_region("SR", _s("signal", [5.0]), [_s("background", [20.0])], [30.0])
    cr = stats.prepare_region("CR", None, [_s("background", [100.0])], [120.0])
    return sr, cr


def test_cr_fixes_the_shared_normfactor_and_cls_equals_pyhf():
    sr, cr = _regions()
    spec = stats.build_multiregion_model((sr, cr), free_backgrounds=["background"])
    ws = stats.build_workspace(spec)
    mods = {(c["name"], s["name"]): [(m["name"], m["type"]) for m in s["modifiers"]]
            for c in ws["channels"] for s in c["samples"]}
    assert mods == {("SR", "signal"): [("mu", "normfactor")],
                    ("SR", "background"): [("mu_background", "normfactor")],
                    ("CR", "background"): [("mu_background", "normfactor")]}
    lh = stats.make_likelihood(spec)
    fit = stats.best_fit(lh)
    # one-bin CR without other uncertainties: the normfactor is the CR's data/MC ratio, and
    # the one-bin SR is then fitted exactly: mu = (30 - 1.2 × 20) / 5
    assert fit["mu_background"][0] == pytest.approx(120.0 / 100.0, rel=1e-4)
    assert fit["mu"][0] == pytest.approx((30.0 - 1.2 * 20.0) / 5.0, rel=1e-3)

    # the same workspace written by hand, evaluated by pyhf directly
    ref = {
        "channels": [
            {"name": "SR", "samples": [
                {"name": "signal", "data": [5.0],
                 "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                {"name": "background", "data": [20.0],
                 "modifiers": [{"name": "mu_background", "type": "normfactor", "data": None}]},
            ]},
            {"name": "CR", "samples": [
                {"name": "background", "data": [100.0],
                 "modifiers": [{"name": "mu_background", "type": "normfactor", "data": None}]},
            ]},
        ],
        "observations": [{"name": "SR", "data": [30.0]}, {"name": "CR", "data": [120.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }
    pyhf.set_backend("numpy", "scipy")
    w = pyhf.Workspace(ref)
    model = w.model()
    obs, exp = pyhf.infer.hypotest(2.0, w.data(model), model, test_stat="qtilde",
                                   return_expected_set=True)
    mine = stats.compute_cls(lh, 2.0)
    assert mine.cls_observed == pytest.approx(float(obs), rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(mine.cls_expected, np.asarray(exp, dtype=float), rtol=1e-6,
                               atol=1e-9)


def test_theory_modifiers_are_correlated_across_regions_and_errors_are_one_line():
    sig_sr = _s("signal", [4.0, 2.0], (0.0, 1.0, 2.0))
    bkg_sr = _s("background", [10.0, 10.0], (0.0, 1.0, 2.0))
    band_sr = TheoryBand("scale", "scale", np.array([4.0, 2.0]), np.array([4.4, 2.1]),
                         np.array([3.8, 1.9]), ("a",))
    sr = stats.prepare_region("SR", sig_sr, [bkg_sr], [12.0, 11.0], theory=[band_sr])
    band_cr = TheoryBand("scale", "scale", np.array([1.0]), np.array([1.3]), np.array([0.9]),
                         ("a",))
    cr = stats.prepare_region("CR", _s("signal", [1.0]), [_s("background", [50.0])], [55.0],
                              theory=[band_cr])
    spec = stats.build_multiregion_model((sr, cr), free_backgrounds=["background"],
                                         theory_split=True)
    ws = stats.build_workspace(spec)
    cr_sig = ws["channels"][1]["samples"][0]["modifiers"]
    assert {"name": "theory_scale", "type": "normsys", "data": {"hi": 1.3, "lo": 0.9}} in cr_sig
    lh = stats.make_likelihood(spec)
    assert lh.model.config.parameters.count("theory_scale") == 1
    with pytest.raises(StatsError, match="no region has such a background"):
        stats.build_multiregion_model((sr, cr), free_backgrounds=["ttbar"])
    with pytest.raises(StatsError, match="no region has a non-empty signal"):
        stats.build_multiregion_model((_regions()[1],))
    with pytest.raises(StatsError, match="differs from the signal"):
        stats.prepare_region("SR", _s("signal", [1.0]), [_s("background", [5.0])], [5.0],
                             theory=[TheoryBand(
                                 "x", "scale", np.array([2.0]), np.array([3.0]),
                                 np.array([1.0]), ())])
