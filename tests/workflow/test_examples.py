"""The example analyses of examples/: the demo (make demo) and the PHYSLITE one (shared data)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recastkit.workflow.run import run_analysis
from recastkit.workflow.spec import OutputsSpec, load_spec

REPO = Path(__file__).resolve().parents[2]


def test_make_demo_runs_the_demo_analysis() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "recastkit run examples/demo/analysis.yml -o $(DEMO_OUT)" in recipe
    spec = load_spec(REPO / "examples" / "demo" / "analysis.yml")
    table = (REPO / "examples" / "demo" / "xsec_demo.txt").read_text().splitlines()
    fields = table[1].split("\t\t")
    assert fields[0] == "345055"
    assert float(fields[2]) == 0.044837
    assert fields[-1] == "e5706"
    assert spec.samples.signal.dataset is not None
    assert ".e5706_" in spec.samples.signal.dataset


def test_physlite_example(shared_data: Path, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    for rel in ("root/DAOD_PHYSLITE_21.2.108.0.art.pool.root", "root/uproot-issue-123b.root",
                "xsec/SUSYTools/mc16_13TeV_Backgrounds.txt"):
        if not (shared_data / rel).exists():
            pytest.skip(f"shared test file {rel} not found under {shared_data}")
    monkeypatch.setenv("RECASTKIT_TESTDATA", str(shared_data))
    spec = load_spec(REPO / "examples" / "physlite" / "analysis.yml")
    spec = dataclasses.replace(spec, outputs=OutputsSpec(report=False, plots=False))
    result = run_analysis(spec, tmp_path / "out")
    sig, bkg = result.samples[0].ledger, result.samples[1].ledger
    assert sig is not None
    assert bkg is not None
    # shared data README §1.1 and §1.2: the StreamAOD AllExecutedEvents bookkeepers
    assert sig.sum_of_weights == 29465.34912109375
    assert bkg.sum_of_weights == 73668.0625
    for ledger in (sig, bkg):
        assert "CutBookkeepers" in ledger.sum_of_weights_source
        assert ledger.xsec_source.startswith("catalog mc16_13TeV_Backgrounds.txt:")
        # README §3.2: 410470 729.77 pb, k 1.13975636159, ε 0.54383; L = 1 pb^-1
        expected = 729.77e3 * 0.54383 * 1.13975636159 * 1e-3 / ledger.sum_of_weights
        assert ledger.scale == pytest.approx(expected, rel=1e-12)
    # README §1.1: with L = 140 fb^-1 the scale is 2149.20398...
    assert sig.scale * 140e3 == pytest.approx(2149.20398, rel=1e-8)
    cut_sig = result.samples[0].cutflows["SR"]
    cut_bkg = result.samples[1].cutflows["SR"]
    assert cut_sig[0].n_events == 40
    assert cut_bkg[0].n_events == 100
    assert cut_sig[0].sum_of_weights == pytest.approx(29465.34912109375, rel=1e-6)
    assert result.limit.observed_mu > 0
    assert (tmp_path / "out" / "manifest.json").is_file()


# --------------------------------------------------------------------------- the demo: SR + CR

def test_demo_has_a_control_region_sharing_the_mock_normalization() -> None:
    spec = load_spec(REPO / "examples" / "demo" / "analysis.yml")
    it = spec.interpretation
    assert it.regions == ("SR", "CR")
    assert it.free_backgrounds == ("mock",)
    assert it.observable == "h_mjj_kin"
    sr, cr = (spec.region(r).selection for r in it.regions)
    # adjacent, disjoint m_jj windows (the histogram ranges), both divisible by the rebin
    assert (sr.mjj_low_gev, sr.mjj_high_gev) == (75.0, 175.0)
    assert (cr.mjj_low_gev, cr.mjj_high_gev) == (175.0, 500.0)
    assert sr.mjj_bins % it.rebin == 0
    assert cr.mjj_bins % it.rebin == 0
    assert "~20 s" not in (REPO / "examples" / "demo" / "analysis.yml").read_text()


def _rebinned(path: Path, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and variances of ``h_mjj_kin``, read with uproot and merged by ``factor``."""
    import uproot

    with uproot.open(path) as f:
        h = f["h_mjj_kin"]
        values, variances = h.values(flow=False), h.variances(flow=False)
    return (np.asarray(values).reshape(-1, factor).sum(axis=1),
            np.asarray(variances).reshape(-1, factor).sum(axis=1))


def test_demo_fit_agrees_with_pyhf(demo_run: Any) -> None:
    """The demo's SR + CR limits against a workspace built here from the written histograms
    (scaled signal, mock background with a free normalization shared by both regions, one
    staterror per region, the signal's luminosity uncertainty) and pyhf called directly."""
    import pyhf

    run = demo_run
    ledger = run.signal.ledger
    assert f"{ledger.scale:.6f}" == "0.922008"
    assert ledger.scale == pytest.approx(44.837 * 140.1 / 6813.0258, rel=1e-12)
    mock = next(s for s in run.samples if s.name == "mock")
    data = next(s for s in run.samples if s.role == "data")
    channels, observations = [], []
    for region in ("SR", "CR"):
        s, s_var = _rebinned(run.signal.region_files[region], 5)
        b, b_var = _rebinned(mock.region_files[region], 5)
        d, _ = _rebinned(data.region_files[region], 5)
        stat = f"staterror_{region}"
        channels.append({"name": region, "samples": [
            {"name": "signal", "data": s.tolist(), "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "lumi", "type": "lumi", "data": None},
                {"name": stat, "type": "staterror", "data": np.sqrt(s_var).tolist()}]},
            {"name": "mock", "data": b.tolist(), "modifiers": [
                {"name": "mu_mock", "type": "normfactor", "data": None},
                {"name": stat, "type": "staterror", "data": np.sqrt(b_var).tolist()}]}]})
        observations.append({"name": region, "data": d.tolist()})
    ws = pyhf.Workspace({
        "channels": channels, "observations": observations, "version": "1.0.0",
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": [
            {"name": "lumi", "auxdata": [1.0], "sigmas": [0.0083], "inits": [1.0],
             "bounds": [[1 - 5 * 0.0083, 1 + 5 * 0.0083]]},
            {"name": "mu_mock", "inits": [1.0], "bounds": [[0.0, 10.0]]}]}}]})
    model = ws.model()
    obs_data = ws.data(model)
    limit = run.limit
    # pyhf's CLs at the observed limit, and its median expected CLs at the median expected
    # limit, are 1 - CL (a TOMS748 scan of all six crossings takes ~1 min with pyhf's numeric
    # gradients on 20 parameters; two hypotests take a few seconds)
    cls_obs, _ = pyhf.infer.hypotest(limit.observed_mu, obs_data, model, test_stat="qtilde",
                                     return_expected_set=True)
    assert float(cls_obs) == pytest.approx(0.05, abs=2e-4)
    _, cls_exp = pyhf.infer.hypotest(limit.expected_mu[2], obs_data, model,
                                     test_stat="qtilde", return_expected_set=True)
    assert float(cls_exp[2]) == pytest.approx(0.05, abs=2e-4)
    # the observed limit lies above the median expected one (the toy fluctuates up in the SR)
    assert limit.observed_mu > limit.expected_mu[2]
    assert limit.observed_xsec_fb == pytest.approx(limit.observed_mu * 44.837, rel=1e-9)

    # the shared normalization: pyhf's free fit, and the CR's data / background ratio (the CR
    # holds ~5 % of the signal, ~6 events at the best-fit mu: well inside the CR's precision)
    best = pyhf.infer.mle.fit(obs_data, model)
    mu_mock = float(best[model.config.par_slice("mu_mock")][0])
    fitted = limit.settings["best_fit_normfactors"]["mock"]
    assert fitted == pytest.approx(mu_mock, abs=1e-4)
    assert limit.settings["best_fit_mu"] == pytest.approx(
        float(best[model.config.poi_index]), abs=1e-3)
    d_cr, _ = _rebinned(data.region_files["CR"], 5)
    b_cr, _ = _rebinned(mock.region_files["CR"], 5)
    ratio = d_cr.sum() / b_cr.sum()
    rel_stat = np.sqrt(1 / d_cr.sum() + 1 / b_cr.sum())
    assert abs(fitted - ratio) < 0.25 * rel_stat

    # post-fit yields: the mock times its fitted normalization (up to the staterror pulls)
    yields = limit.settings["yields"]
    for region in ("SR", "CR"):
        b, _ = _rebinned(mock.region_files[region], 5)
        assert yields[region]["prefit"]["mock"] == pytest.approx(b.sum(), rel=1e-9)
        assert yields[region]["postfit"]["mock"] == pytest.approx(fitted * b.sum(), rel=5e-3)
    assert yields["CR"]["data"] == d_cr.sum()


def test_demo_outputs_show_both_regions(demo_run: Any) -> None:
    run = demo_run
    out = run.result_dir
    for name in ("fit/hists_SR.png", "fit/hists_CR.png", "fit/limit.png", "fit/workspace.json",
                 "plots/SR_h_mjj_kin.png", "plots/CR_h_mjj_kin.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    ws = json.loads((out / "fit" / "workspace.json").read_text())
    assert [c["name"] for c in ws["channels"]] == ["SR", "CR"]
    result = json.loads((out / "result.json").read_text())
    assert set(result["yields"]["mock"]) == {"SR", "CR"}
    assert result["normalization"]["ZH125_llbb"]["sum_of_weights"] == 6813.0258
    page = (out / "report.html").read_text()
    for text in ("Region SR: h_mjj_kin", "Region CR: h_mjj_kin",
                 "Background normalizations (best fit, shared across regions)",
                 "Yields per fitted region, pre-fit", "post-fit events"):
        assert text in page, text
    # a second run reuses every step
    again = run_analysis(run.spec, run.outdir)
    assert {s.status for s in again.steps} == {"cached"}
    assert again.limit.observed_mu == run.limit.observed_mu
