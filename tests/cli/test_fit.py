"""``recastkit fit``: the tutorial-like chain, reproducibility, pyhf cross-checks, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import hist
import numpy as np
import pyhf
import pytest
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.io.hists import write_hists

XSEC_FB = 44.837
K_FACTOR = 1.1
NORMALIZATION = {
    "scale": 0.01, "expected_yield": 130.0, "xsec_fb": XSEC_FB, "filter_eff": 0.5,
    "k_factor": K_FACTOR, "lumi_ifb": 140.0, "lumi_rel_unc": 0.017,
    "xsec_rel_unc_up": 0.12, "xsec_rel_unc_down": 0.08, "sum_of_weights": 1e4,
    "dataset": "mc16_13TeV.345055.test", "factors": [],
}


def _signal_hist(total: float = 130.0) -> hist.Hist:
    """100 bins 0–500 GeV, Gaussian peak at 125 GeV (σ = 10 GeV), weighted MC-like."""
    rng = np.random.default_rng(123)
    mjj = rng.normal(125.0, 10.0, 5000)
    h = hist.Hist(hist.axis.Regular(100, 0.0, 500.0, name="mjj"), storage=hist.storage.Weight())
    h.fill(mjj, weight=np.full(mjj.size, total / 5000))
    return h


@pytest.fixture(scope="module")
def signal_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "signal.root"
    write_hists(path, {"h_mjj_kin": _signal_hist(), "h_other": _signal_hist(1.0)},
                metadata={"normalization": NORMALIZATION})
    return path


def _fit(args: list[str]) -> tuple[int, str, str]:
    runner = CliRunner()
    res = runner.invoke(main, ["fit", *args])
    return res.exit_code, res.stdout, res.stderr


CHAIN = ["--mock-background", "--toy-data", "--seed", "7", "--rebin", "10", "--n-points", "21",
         "--xsec-unc", "--lumi-unc"]


@pytest.fixture(scope="module")
def chain(signal_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "out"
    code, stdout, stderr = _fit(["--signal", str(signal_file), *CHAIN, "-o", str(out),
                                 "--json"])
    assert code == 0, stderr
    assert json.loads(stdout)["observed_mu"] > 0
    return out


def _pyhf_on_workspace(path: Path, mu: float) -> tuple[float, list[float]]:
    ws = pyhf.Workspace(json.loads(path.read_text()))
    model = ws.model()
    obs, exp = pyhf.infer.hypotest(mu, ws.data(model), model, return_expected_set=True)
    return float(obs), [float(e) for e in exp]


def test_chain_outputs_match_pyhf(chain: Path) -> None:
    assert sorted(p.name for p in chain.iterdir()) == [
        "hists.png", "limit.json", "limit.png", "workspace.json"]
    assert [p.name for p in chain.parent.iterdir()] == ["out"]  # no staging folder left
    doc = json.loads((chain / "limit.json").read_text())
    ws = json.loads((chain / "workspace.json").read_text())
    sig = ws["channels"][0]["samples"][0]
    assert sum(sig["data"]) == pytest.approx(130.0, rel=1e-9)
    assert len(sig["data"]) == 10
    mods = {m["name"]: m for m in sig["modifiers"]}
    assert mods["xsec_signal"]["data"] == {"hi": 1.12, "lo": 0.92}
    assert ws["measurements"][0]["config"]["parameters"][1]["sigmas"] == [0.017]
    for i in (4, 10):
        obs, exp = _pyhf_on_workspace(chain / "workspace.json", doc["mu_values"][i])
        assert doc["cls_observed"][i] == pytest.approx(obs, rel=1e-6)
        assert [row[i] for row in doc["cls_expected"]] == pytest.approx(exp, rel=1e-6)
    obs_at_limit, _ = _pyhf_on_workspace(chain / "workspace.json", doc["observed_mu"])
    assert obs_at_limit == pytest.approx(0.05, abs=1e-3)
    assert doc["xsec_ref_fb"] == pytest.approx(XSEC_FB * K_FACTOR, rel=1e-12)
    assert doc["observed_xsec_fb"] == pytest.approx(doc["observed_mu"] * XSEC_FB * K_FACTOR,
                                                    rel=1e-12)
    assert doc["settings"]["seed"] == 7
    assert doc["settings"]["xsec_rel_unc"] == [0.12, 0.08]
    assert doc["settings"]["data_kind"] == "toy"


def test_same_seed_same_json(chain: Path, signal_file: Path, tmp_path: Path) -> None:
    code, _, stderr = _fit(["--signal", str(signal_file), *CHAIN, "-o", str(tmp_path)])
    assert code == 0, stderr
    assert (tmp_path / "limit.json").read_text() == (chain / "limit.json").read_text()
    assert (tmp_path / "workspace.json").read_text() == (chain / "workspace.json").read_text()


def test_pyhf_cls_console_script_agrees(chain: Path) -> None:
    exe = Path(sys.executable).parent / "pyhf"
    proc = subprocess.run([str(exe), "cls", str(chain / "workspace.json")], capture_output=True,
                          text=True, check=True, timeout=120)
    ours, _ = _pyhf_on_workspace(chain / "workspace.json", 1.0)
    # Two pyhf processes agree to the rounding of SLSQP's finite differences, which moves with
    # the BLAS thread count (after the Dask tests this process's pool differs): 1e-6, not 1e-9.
    assert json.loads(proc.stdout)["CLs_obs"] == pytest.approx(ours, rel=1e-6)


def test_human_table_and_observed_data(signal_file: Path, tmp_path: Path) -> None:
    edges = np.linspace(0.0, 500.0, 101)
    bkg = hist.Hist(hist.axis.Variable(edges), storage=hist.storage.Weight())
    centres = 0.5 * (edges[1:] + edges[:-1])
    bkg.fill(centres, weight=np.full(100, 50.0))
    data = hist.Hist(hist.axis.Variable(edges), storage=hist.storage.Weight())
    data.fill(centres, weight=np.full(100, 52.0))
    write_hists(tmp_path / "bkg.root", {"h_mjj_kin": bkg})
    write_hists(tmp_path / "data.root", {"counts": data})
    out = tmp_path / "out"
    code, stdout, stderr = _fit(["--signal", f"{signal_file}:h_mjj_kin", "--background",
                                 str(tmp_path / "bkg.root"), "--data",
                                 str(tmp_path / "data.root"), "--rebin", "20", "--n-points",
                                 "9", "--xsec", "10 fb", "--significance", "-o", str(out)])
    assert code == 0, stderr
    assert "Observed" in stdout
    assert "Expected median" in stdout
    doc = json.loads((out / "limit.json").read_text())
    assert doc["xsec_ref_fb"] == 10.0
    assert doc["settings"]["data_kind"] == "observed"
    assert "Significance" in stdout
    # data = 52 vs background 50 per 20-bin group: a small positive excess
    assert 0 < doc["significance_observed"] < 3
    assert doc["p0_observed"] == pytest.approx(
        0.5 * math.erfc(doc["significance_observed"] / math.sqrt(2)), rel=1e-9)


def _assert_fails(args: list[str], out: Path, match: str) -> None:
    code, stdout, stderr = _fit([*args, "-o", str(out)])
    assert code == 2, stdout
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert match in stderr, stderr
    assert len(lines) == 1 or "Usage:" in stderr
    assert not out.exists()


def test_bad_inputs_exit_2_and_write_nothing(signal_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    coarse = hist.Hist(hist.axis.Regular(50, 0.0, 500.0), storage=hist.storage.Weight())
    coarse.fill([100.0], weight=[5.0])
    write_hists(tmp_path / "coarse.root", {"h": coarse})
    _assert_fails(["--signal", str(signal_file), "--background", str(tmp_path / "coarse.root"),
                   "--toy-data"], out, "binning mismatch")
    nan = _signal_hist()
    nan.view().value[3] = np.nan
    write_hists(tmp_path / "nan.root", {"h": nan})
    _assert_fails(["--signal", str(tmp_path / "nan.root"), "--mock-background", "--toy-data"],
                  out, "negative or NaN bin contents: bin 3")
    neg = _signal_hist()
    neg.view().value[5] = -1.0
    write_hists(tmp_path / "neg.root", {"h": neg})
    _assert_fails(["--signal", str(tmp_path / "neg.root"), "--mock-background", "--toy-data"],
                  out, "bin 5: -1.0")
    zero = hist.Hist(hist.axis.Regular(100, 0.0, 500.0), storage=hist.storage.Weight())
    write_hists(tmp_path / "zero.root", {"h": zero})
    _assert_fails(["--signal", str(tmp_path / "zero.root"), "--mock-background", "--toy-data"],
                  out, "signal histogram is empty")
    frac = _signal_hist(7.3)
    write_hists(tmp_path / "frac.root", {"h": frac})
    _assert_fails(["--signal", str(signal_file), "--mock-background", "--data",
                   str(tmp_path / "frac.root")], out, "non-negative integer counts")
    _assert_fails(["--signal", str(signal_file), "--toy-data"], out,
                  "either --background")
    _assert_fails(["--signal", str(signal_file), "--mock-background", "--toy-data",
                   "--xsec-unc", "2"], out, "--xsec-unc")
    _assert_fails(["--signal", str(signal_file), "--mock-background", "--toy-data",
                   "--xsec", "44.8"], out, "has no unit")
    _assert_fails(["--signal", str(tmp_path / "zero.root"), "--mock-background", "--toy-data",
                   "--lumi-unc"], out, "no 'lumi_rel_unc'")


def test_several_regions_with_a_shared_background_normalization(tmp_path: Path) -> None:
    """``--region`` SR + CR (no signal in the CR), ``--free-background``: data = 1.2 × the
    background in both regions plus 1 × the signal in the SR, so the best fit is exactly
    mu_ttbar = 1.2 (and μ = 1); the workspace has one channel per region."""
    def h(edges: list[float], values: list[float]) -> hist.Hist:
        out = hist.Hist(hist.axis.Variable(edges), storage=hist.storage.Weight())
        out.view().value = values
        out.view().variance = values
        return out

    sr, cr = [0.0, 100.0, 200.0], [200.0, 300.0, 400.0]
    write_hists(tmp_path / "sig.root", {"mbb": h(sr, [30.0, 60.0])},
                metadata={"normalization": NORMALIZATION})
    write_hists(tmp_path / "tt_sr.root", {"mbb": h(sr, [100.0, 200.0])})
    write_hists(tmp_path / "tt_cr.root", {"mbb": h(cr, [500.0, 1000.0])})
    write_hists(tmp_path / "d_sr.root", {"mbb": h(sr, [150.0, 300.0])})
    write_hists(tmp_path / "d_cr.root", {"mbb": h(cr, [600.0, 1200.0])})
    out = tmp_path / "fit"
    code, stdout, stderr = _fit([
        "--region", "SR", "--region", "CR", "--signal", f"SR={tmp_path}/sig.root:mbb",
        "--background", f"ttbar@SR={tmp_path}/tt_sr.root:mbb",
        "--background", f"ttbar@CR={tmp_path}/tt_cr.root:mbb",
        "--data", f"SR={tmp_path}/d_sr.root:mbb", "--data", f"CR={tmp_path}/d_cr.root:mbb",
        "--free-background", "ttbar", "--n-points", "5", "-o", str(out)])
    assert code == 0, stderr
    assert "background ttbar: best-fit normalization 1.2" in stdout
    limit = json.loads((out / "limit.json").read_text())
    assert limit["settings"]["best_fit_normfactors"]["ttbar"] == pytest.approx(1.2, rel=1e-3)
    assert limit["settings"]["best_fit_mu"] == pytest.approx(1.0, rel=1e-2)
    post = limit["settings"]["yields"]["CR"]["postfit"]
    assert post == {"ttbar": pytest.approx(1800.0, rel=1e-3)}
    ws = json.loads((out / "workspace.json").read_text())
    assert [c["name"] for c in ws["channels"]] == ["SR", "CR"]
    assert [s["name"] for s in ws["channels"][1]["samples"]] == ["ttbar"]
    assert sorted(p.name for p in out.iterdir()) == [
        "hists_SR.png", "limit.json", "limit.png", "workspace.json"]
