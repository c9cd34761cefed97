"""The limit engine's fast path against pyhf called directly: ln L, CLs, limits, grids."""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import numpy as np
import pyhf
import pytest

from recastkit.exceptions import StatsError
from recastkit.stats import engine, fastfit
from recastkit.stats.model import Likelihood, likelihood_from_workspace


def _multichannel() -> dict[str, Any]:
    """Two channels, staterror with a zero-uncertainty bin, shapesys with a filtered bin,
    normsys on two samples, lumi on three, a normfactor shared across channels."""
    return {
        "channels": [
            {"name": "b_ch", "samples": [
                {"name": "signal", "data": [3.0, 1.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": None},
                    {"name": "lumi", "type": "lumi", "data": None}]},
                {"name": "bkg2", "data": [30.0, 12.0], "modifiers": [
                    {"name": "sh_b", "type": "shapesys", "data": [3.0, 0.0]},
                    {"name": "k_shared", "type": "normfactor", "data": None},
                    {"name": "bkgsys", "type": "normsys", "data": {"hi": 1.2, "lo": 0.85}}]},
            ]},
            {"name": "a_ch", "samples": [
                {"name": "signal", "data": [2.0, 6.0, 0.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": None},
                    {"name": "xsec", "type": "normsys", "data": {"hi": 1.1, "lo": 0.93}},
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "st_a", "type": "staterror", "data": [0.2, 0.5, 0.0]}]},
                {"name": "bkg1", "data": [40.0, 25.0, 10.0], "modifiers": [
                    {"name": "st_a", "type": "staterror", "data": [2.0, 2.5, 0.0]},
                    {"name": "k_shared", "type": "normfactor", "data": None},
                    {"name": "lumi", "type": "lumi", "data": None}]},
            ]},
        ],
        "observations": [{"name": "a_ch", "data": [44.0, 33.0, 9.0]},
                         {"name": "b_ch", "data": [31.0, 14.0]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": [
            {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.9, 1.1]],
             "inits": [1.0]},
            {"name": "mu", "bounds": [[0.0, 20.0]]}]}}],
        "version": "1.0.0",
    }


def _two_bin(signal: tuple[float, float] = (12.0, 11.0)) -> dict[str, Any]:
    """pyhf's ``uncorrelated_background`` example (shapesys) as a workspace."""
    return {
        "channels": [{"name": "singlechannel", "samples": [
            {"name": "signal", "data": list(signal), "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "background", "data": [50.0, 52.0], "modifiers": [
                {"name": "uncorr_bkguncrt", "type": "shapesys", "data": [3.0, 7.0]}]}]}],
        "observations": [{"name": "singlechannel", "data": [51.0, 48.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


@contextlib.contextmanager
def tight_pyhf() -> Iterator[None]:
    """pyhf with a tight optimizer tolerance, so that its fits converge to ~1e-8 (with the
    default tolerance its CLs values scatter by ~1e-4 relative around the exact ones).
    Select it after compiling the likelihood: compiling selects the default optimizer."""
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-12))
    try:
        yield
    finally:
        pyhf.set_backend("numpy", "scipy")


def _pyhf_vector(model: Any, fm: fastfit.FastModel, theta: np.ndarray, gamma: np.ndarray
                 ) -> np.ndarray:
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    values = fm.parameter_values(theta, gamma)
    for name in model.config.par_order:
        pars[model.config.par_slice(name)] = values[name][0]
    return pars


@pytest.mark.parametrize("code", ["code1", "code4"])
def test_logpdf_equals_pyhf_at_random_points(code: str) -> None:
    rng = np.random.default_rng(7)
    lh = likelihood_from_workspace(_multichannel(),
                                   modifier_settings={"normsys": {"interpcode": code}})
    data = np.asarray(lh.data)
    n_main = sum(lh.model.config.channel_nbins.values())
    # also a dataset with moved auxiliary data (as the Asimov data has)
    moved = data.copy()
    moved[n_main:] *= rng.uniform(0.8, 1.2, size=data.size - n_main)
    for dataset in (data, moved):
        lh_d = Likelihood(lh.model, tuple(dataset), lh.init_pars, lh.par_bounds,
                          lh.fixed_params)
        fm = engine.fast_model_from_likelihood(lh_d)
        assert fm.structure.interpcode == code
        for _ in range(4):
            theta = np.array([[rng.uniform(lo, hi) for lo, hi in zip(
                fm.s_lo[0].clip(-2, None), fm.s_hi[0].clip(None, 3), strict=True)]])
            gamma = rng.uniform(0.7, 1.3, size=(1, fm.structure.n_bins))
            mine = fastfit.logpdf(fm, fm.observed(), theta, gamma)[0]
            pars = _pyhf_vector(lh.model, fm, theta, gamma)
            theirs = float(lh.model.logpdf(pars, dataset)[0])
            assert mine == pytest.approx(theirs, rel=1e-12, abs=1e-9)


def test_profiled_gamma_maximizes_the_likelihood() -> None:
    lh = likelihood_from_workspace(_multichannel())
    fm = engine.fast_model_from_likelihood(lh)
    theta = fm.s_init.copy()
    theta[0, fm.structure.poi] = 2.0
    ev = fastfit.evaluate(fm, fm.observed(), theta, derivs=False)
    best = fastfit.logpdf(fm, fm.observed(), theta, ev.gamma)[0]
    assert -best == pytest.approx(ev.nll[0], rel=1e-13)
    for b in np.flatnonzero(~fm.g_fixed[0]):
        for step in (-1e-4, 1e-4):
            moved = ev.gamma.copy()
            moved[0, b] += step
            assert fastfit.logpdf(fm, fm.observed(), theta, moved)[0] <= best + 1e-12


@pytest.mark.parametrize("test_stat", ["qtilde", "q"])
def test_cls_equals_pyhf(test_stat: str) -> None:
    lh = likelihood_from_workspace(_multichannel())
    eng = engine.LikelihoodEngine(lh, test_stat)
    assert eng.path == "fast"
    obs, exp = eng.cls([0.7, 2.5])
    for i, mu in enumerate((0.7, 2.5)):
        with tight_pyhf():
            p_obs, p_exp = pyhf.infer.hypotest(mu, np.asarray(lh.data), lh.model,
                                               return_expected_set=True, test_stat=test_stat)
        assert obs[i] == pytest.approx(float(p_obs), rel=1e-5)
        np.testing.assert_allclose(exp[i], [float(e) for e in p_exp], rtol=1e-5)


def test_limits_equal_pyhf_toms748_scan() -> None:
    lh = likelihood_from_workspace(_two_bin())
    res = engine.limits_of_likelihood(lh)
    assert res.path == "fast"
    assert not res.notes
    obs, exp = pyhf.infer.intervals.upper_limits.toms748_scan(
        np.asarray(lh.data), lh.model, 0.5, 2.0, level=0.05, rtol=1e-6)
    assert res.observed == pytest.approx(float(obs), rel=1e-3)
    np.testing.assert_allclose(res.expected, [float(e) for e in exp], rtol=1e-3)


def _grid_signals(n: int) -> list[tuple[str, list[dict[str, Any]]]]:
    out = []
    for i in range(n):
        sig = [4.0 + 3.0 * i, 10.0 - 1.5 * i]
        out.append((f"pt_{i}", [{"op": "replace", "path": "/channels/0/samples/0/data",
                                 "value": sig}]))
    return out


def test_evaluate_points_equals_pyhf_per_point() -> None:
    bkg = _two_bin()
    signals = _grid_signals(5)
    res = engine.evaluate_points(bkg, signals, mu=1.0, limits=True)
    assert [r.name for r in res] == [s[0] for s in signals]
    assert {r.status for r in res} == {"converged"}
    assert {r.path for r in res} == {"fast"}
    for k in (0, 3):
        ws = pyhf.Workspace(jsonpatch.apply_patch(bkg, signals[k][1]))
        model = ws.model()
        data = ws.data(model)
        with tight_pyhf():
            p_obs, p_exp = pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)
        assert res[k].cls_observed == pytest.approx(float(p_obs), rel=1e-5)
        np.testing.assert_allclose(res[k].cls_expected, [float(e) for e in p_exp], rtol=1e-5)
        # the limits are the crossings: pyhf's CLs there is the level
        limit = res[k].observed_limit
        assert limit is not None
        with tight_pyhf():
            at_limit, _ = pyhf.infer.hypotest(limit, data, model, return_expected_set=True)
        assert float(at_limit) == pytest.approx(0.05, rel=1e-5)
    # chunking does not change the numbers
    again = engine.evaluate_points(bkg, signals, mu=1.0, limits=True, chunk_size=2)
    assert [r.observed_limit for r in again] == pytest.approx(
        [r.observed_limit for r in res], rel=1e-9)


def test_points_outside_the_fast_path_and_failures() -> None:
    bkg = _two_bin()
    histosys = [{"op": "add", "path": "/channels/0/samples/1/modifiers/-", "value": {
        "name": "shape", "type": "histosys",
        "data": {"hi_data": [52.0, 54.0], "lo_data": [48.0, 50.0]}}}]
    bad = [{"op": "remove", "path": "/channels/7"}]
    assert engine.supports_fast_path(bkg)
    assert not engine.supports_fast_path(jsonpatch.apply_patch(bkg, histosys))
    assert "histosys" in engine.fast_path_reason(jsonpatch.apply_patch(bkg, histosys))
    res = engine.evaluate_points(bkg, [("hs", histosys), ("bad", bad)], mu=1.0)
    assert res[0].path == "pyhf"
    assert res[0].status == "converged"
    assert 0 < res[0].cls_observed < 1
    assert res[1].status == "failed"
    assert "does not apply" in res[1].reason
    assert math.isnan(res[1].cls_observed)
    with pytest.raises(StatsError, match="valid choices: qtilde, q"):
        engine.evaluate_points(bkg, [], test_stat="q0")


def test_unconverged_fast_points_fall_back_to_pyhf(monkeypatch: pytest.MonkeyPatch) -> None:
    real_prepare = fastfit.prepare

    def broken(m: fastfit.FastModel) -> fastfit.Prepared:
        prep = real_prepare(m)
        prep.ok[:] = False
        return prep

    monkeypatch.setattr(engine, "prepare", broken)
    res = engine.evaluate_points(_two_bin(), _grid_signals(1), mu=1.0)
    assert res[0].status == "fallback"
    assert res[0].path == "pyhf"
    assert "did not converge" in res[0].reason
    eng = engine.LikelihoodEngine(likelihood_from_workspace(_two_bin((4.0, 10.0))))
    assert eng.path == "pyhf"
    assert any("recomputed with pyhf" in n for n in eng.notes)
    obs, _ = eng.cls([1.0])
    assert obs[0] == pytest.approx(res[0].cls_observed, rel=1e-9)


def test_published_likelihood_path_choice(shared_file: Callable[[str], Path]) -> None:
    bkg = json.loads(shared_file("likelihoods/sbottom_ins1748602/RegionA/BkgOnly.json")
                     .read_text())
    assert "histosys" in engine.fast_path_reason(bkg) or "normsys" in engine.fast_path_reason(
        bkg)
    filt = json.loads(shared_file(
        "likelihoods/pyhf_validation/shapesys_nuisparfilter_workspace.json").read_text())
    assert engine.supports_fast_path(filt)
    lh = likelihood_from_workspace(copy.deepcopy(filt))
    obs, _ = engine.LikelihoodEngine(lh).cls([1.0])
    assert obs[0] == pytest.approx(0.004360634405484502, rel=1e-5)  # ROOT reference
