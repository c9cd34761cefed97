"""The end-to-end chain (skim → scale → interpret) on generated data, checked by hand and pyhf."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyhf
import pytest
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.io.hists import read_hists_and_metadata
from recastkit.workflow import DemoResult, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, n_events=3000, seed=7, fit_seed=3, rebin=10, workers=1)


def test_normalization_is_the_worked_example(demo: DemoResult) -> None:
    ledger = demo.ledger
    # Σw = 6813.0258 (Runs tree, pre-skim), σ = 44.837 fb, L = 140.1 fb^-1 -> 0.922008
    assert ledger.scale == pytest.approx(0.922008, rel=1e-6)
    assert ledger.sum_of_weights == pytest.approx(6813.0258, rel=1e-12)
    assert "Runs tree" in ledger.sum_of_weights_source
    assert "xsec_PMG_demo.txt" in ledger.xsec_source
    assert ledger.lumi_source == "user value"
    # the skim removed events, so the in-file sum is smaller than the bookkeeping one
    assert demo.n_in_file < demo.n_generated
    assert demo.overnormalization == pytest.approx(6813.0258 / demo.sumw_in_file, rel=1e-12)
    assert demo.overnormalization > 1.0


def test_scaled_histogram_equals_selection_times_scale(demo: DemoResult) -> None:
    sel, sel_meta = read_hists_and_metadata(demo.files["selection"])
    scaled, meta = read_hists_and_metadata(demo.files["scaled"])
    s = meta["normalization"]["scale"]
    for name in ("h_mjj_kin", "h_mjj_raw", "h_njets_kin", "h_njets_raw"):
        np.testing.assert_allclose(scaled[name].values(), sel[name].values() * s, rtol=1e-12)
        np.testing.assert_allclose(scaled[name].variances(), sel[name].variances() * s * s,
                                   rtol=1e-12)
    assert sel_meta["sum_of_weights"] == pytest.approx(6813.0258, rel=1e-12)
    assert sel_meta["dataset"].startswith("mc16_13TeV.345055.")


def test_limit_json_matches_pyhf_on_the_written_workspace(demo: DemoResult) -> None:
    result = json.loads(demo.files["limit.json"].read_text())
    ws = pyhf.Workspace(json.loads(demo.files["workspace.json"].read_text()))
    model = ws.model()
    data = ws.data(model)
    # a tight optimizer tolerance: pyhf's default one leaves its CLs ~1e-6 from the exact
    # profile-likelihood values the limit engine computes
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-12))
    try:
        for i in (2, 5, 9):
            mu = result["mu_values"][i]
            obs, exp = pyhf.infer.hypotest(mu, data, model, test_stat="qtilde",
                                           return_expected_set=True)
            assert result["cls_observed"][i] == pytest.approx(float(obs), rel=1e-5, abs=1e-12)
            for band in range(5):
                assert result["cls_expected"][band][i] == pytest.approx(
                    float(exp[band]), rel=1e-5, abs=1e-12)
    finally:
        pyhf.set_backend("numpy", "scipy")
    # self-consistency: CLs at the observed limit is 0.05
    obs_at_limit = pyhf.infer.hypotest(result["observed_mu"], data, model, test_stat="qtilde")
    assert float(obs_at_limit) == pytest.approx(0.05, abs=1e-3)
    # σ limit = μ_up × σ_ref (44.837 fb × k = 1)
    assert result["observed_xsec_fb"] == pytest.approx(result["observed_mu"] * 44.837,
                                                       rel=1e-9)


def test_summary_and_report(demo: DemoResult) -> None:
    summary = json.loads(demo.files["summary"].read_text())
    assert summary["normalization"]["scale"] == pytest.approx(0.922008, rel=1e-6)
    assert summary["limit"]["observed_mu"] == pytest.approx(demo.fit.result.observed_mu)
    assert summary["seeds"] == {"sample": 7, "fit": 3}
    page = demo.files["report"].read_text()
    assert "0.922008" in page
    assert page.count("data:image/png;base64,") == 2
    for key in ("hists", "limit"):
        assert demo.files[key].stat().st_size > 10_000


def test_demo_is_reproducible(demo: DemoResult, tmp_path: Path) -> None:
    again = run_demo(tmp_path, n_events=3000, seed=7, fit_seed=3, rebin=10, workers=1)
    assert again.fit.result.observed_mu == demo.fit.result.observed_mu
    assert again.fit.result.expected_mu == demo.fit.result.expected_mu
    assert (again.files["workspace.json"].read_text()
            == demo.files["workspace.json"].read_text())


def test_demo_command(tmp_path: Path) -> None:
    out = tmp_path / "d"
    result = CliRunner().invoke(main, ["demo", "-o", str(out), "--events", "1500",
                                       "--rebin", "20", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "scale 0.922008" in result.stdout
    assert "Observed" in result.stdout
    assert (out / "report.html").exists()
    assert (out / "fit" / "limit.png").exists()
