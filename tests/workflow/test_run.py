"""``recastkit run``: steps cached by their inputs, steps.json, resume after a failure or a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.exceptions import SelectionError
from recastkit.workflow import stages
from recastkit.workflow.run import RunResult, run_analysis
from recastkit.workflow.spec import load_spec


@pytest.fixture
def first(tiny_run: RunResult) -> RunResult:
    return tiny_run


def _numbers(result: RunResult) -> dict[str, Any]:
    """The limit without the input paths (which name the output folder)."""
    doc = result.limit.to_dict()
    doc["settings"] = {k: v for k, v in doc["settings"].items()
                       if k not in {"signal", "backgrounds", "data"}}
    return doc


def _steps(outdir: Path) -> dict[str, str]:
    return {s["name"]: s["status"] for s in json.loads((outdir / "steps.json").read_text())}


def test_first_run_runs_every_step_and_writes_the_outputs(first: RunResult) -> None:
    entries = json.loads((first.outdir / "steps.json").read_text())
    assert [e["name"] for e in entries] == [
        "generate-sig",
        "select-sig",
        "catalog",
        "scale-sig",
        "generate-dijet",
        "select-dijet",
        "scale-dijet",
        "mock-mock",
        "toy-data",
        "fit-sig",
    ]
    for e in entries:
        assert e["status"] == "ran"
        assert set(e) == {"name", "status", "key", "seconds"}
        assert len(e["key"]) == 16
        assert e["seconds"] >= 0
        assert (first.outdir / "steps" / f"{e['name']}-{e['key']}" / "step.json").is_file()
    for name in (
        "report.html",
        "result.json",
        "manifest.json",
        "fit/limit.json",
        "fit/workspace.json",
        "fit/hists.png",
        "fit/limit.png",
    ):
        assert (first.outdir / name).is_file(), name
    assert not list((first.outdir / "steps").glob(".tmp-*"))


def test_signal_ledger_is_the_worked_example(tiny: Any, first: RunResult) -> None:
    ledger = first.signal.ledger
    assert ledger is not None
    # σ·L/Σw = 44.837 fb × 140.1 fb^-1 / 6813.0258 = 0.922008 (the worked example)
    assert ledger.scale == pytest.approx(tiny.XSEC_PB * 1000 * tiny.LUMI_IFB / tiny.SUMW, rel=1e-12)
    assert ledger.scale == pytest.approx(0.922008, abs=5e-7)
    assert ledger.xsec_source == "catalog xsec.txt:2"
    assert "Runs tree" in ledger.sum_of_weights_source
    bkg = first.samples[1].ledger
    assert bkg is not None
    assert bkg.xsec_source == "user value"
    assert bkg.scale == pytest.approx(2000.0 * tiny.LUMI_IFB / 1000.0, rel=1e-12)


def test_scaled_signal_histogram_is_independent_selection_times_scale(
    tiny: Any, first: RunResult
) -> None:
    # independent: read the generated events with uproot, sort jets, m_jj of the two leading
    import awkward as ak

    gen = next(first.outdir.glob("steps/generate-sig-*/sig.root"))
    ev = uproot.open(gen)["Events"].arrays(
        ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "genWeight"]
    )
    order = ak.argsort(ev["Jet_pt"], ascending=False)
    j = {
        k: ev[f"Jet_{k}"][order][ev["nJet"] >= 2] if False else ev[f"Jet_{k}"][order]
        for k in ("pt", "eta", "phi", "mass")
    }
    keep = ak.num(j["pt"]) >= 2
    pt, eta, phi, m = (
        ak.to_numpy(j[k][keep][:, :2]).astype(np.float64) for k in ("pt", "eta", "phi", "mass")
    )
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz, e = pt * np.sinh(eta), np.sqrt((pt * np.cosh(eta)) ** 2 + m**2)
    mjj = np.sqrt(
        np.clip(e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2, 0, None)
    )
    w = ak.to_numpy(ev["genWeight"][keep]).astype(np.float64)
    expected, _ = np.histogram(mjj, bins=5, range=(0, 500), weights=w)
    scaled = uproot.open(first.signal.region_files["SR"])["h_mjj_kin"].values()
    np.testing.assert_allclose(
        scaled, expected * tiny.XSEC_PB * 1000 * tiny.LUMI_IFB / tiny.SUMW, rtol=1e-5
    )


def test_second_run_with_nothing_changed_is_all_cached(first: RunResult, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(first.outdir, out)
    before = (out / "fit" / "limit.json").read_text()
    again = run_analysis(first.spec, out)
    assert set(_steps(out).values()) == {"cached"}
    assert len(again.steps) == 10
    assert again.limit.observed_mu == first.limit.observed_mu
    assert (out / "fit" / "limit.json").read_text() == before


def test_changing_an_interpretation_setting_reruns_only_the_fit(
    tiny: Any, first: RunResult, tmp_path: Path
) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(first.outdir, out)
    spec = load_spec(tiny.write_spec(tmp_path / "spec", cl=0.9, fast=True))
    result = run_analysis(spec, out)
    status = _steps(out)
    assert status.pop("fit-sig") == "ran"
    assert set(status.values()) == {"cached"}
    assert result.limit.cl == 0.9
    assert result.limit.observed_mu < first.limit.observed_mu  # 90% CL is tighter than 95%


def test_failed_run_resumes_with_identical_results(
    tiny: Any, first: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(tiny.write_spec(tmp_path / "spec", fast=True))
    real = stages.select_step

    def failing(sample, *args, **kwargs):  # type: ignore[no-untyped-def]
        if sample.name == "dijet":
            raise SelectionError("injected failure during the selection of dijet")
        return real(sample, *args, **kwargs)

    monkeypatch.setattr(stages, "select_step", failing)
    out = tmp_path / "out"
    with pytest.raises(SelectionError, match="injected"):
        run_analysis(spec, out)
    names = sorted(p.name.rsplit("-", 1)[0] for p in (out / "steps").iterdir())
    assert names == ["catalog", "generate-dijet", "generate-sig", "scale-sig", "select-sig"]
    monkeypatch.setattr(stages, "select_step", real)
    result = run_analysis(spec, out)
    status = _steps(out)
    for name in ("generate-sig", "select-sig", "catalog", "scale-sig", "generate-dijet"):
        assert status[name] == "cached"
    for name in ("select-dijet", "scale-dijet", "mock-mock", "toy-data", "fit-sig"):
        assert status[name] == "ran"
    assert _numbers(result) == _numbers(first)
    assert (out / "fit" / "workspace.json").read_text() == (
        first.outdir / "fit" / "workspace.json"
    ).read_text()


@pytest.mark.slow
def test_killed_run_resumes_with_identical_results(
    tiny: Any, first: RunResult, tmp_path: Path
) -> None:
    spec_path = tiny.write_spec(tmp_path / "spec", fast=True)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "recastkit", "run", str(spec_path), "-o", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        # kill once the first selection has finished (the run is then in its next steps)
        while not list((out / "steps").glob("select-sig-*")):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "steps.json").exists()
    result = run_analysis(load_spec(spec_path), out)
    status = _steps(out)
    assert status["select-sig"] == "cached"
    assert status["fit-sig"] == "ran"
    assert not list((out / "steps").glob(".tmp-*"))
    assert _numbers(result) == _numbers(first)


def test_run_command_prints_ledger_limits_and_report(
    tiny: Any, first: RunResult, tmp_path: Path
) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(first.outdir, out)
    spec = tiny.write_spec(tmp_path / "spec")
    res = CliRunner().invoke(main, ["run", str(spec), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "steps: 0 ran, 10 cached" in res.stdout
    assert "scale 0.922008" in res.stdout
    assert "catalog xsec.txt:2" in res.stdout
    assert "Observed" in res.stdout
    assert "Expected median" in res.stdout
    assert str(out / "report.html") in res.stdout


def test_run_command_bad_spec_is_one_line(tiny: Any, tmp_path: Path) -> None:
    spec = tiny.write_spec(tmp_path / "spec", test_stat="qq")
    res = CliRunner().invoke(main, ["run", str(spec), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1
    assert "$.interpretation.test_stat" in res.stderr
    assert "qtilde" in res.stderr
    assert not (tmp_path / "o").exists()


def test_select_step_regions_and_data(first: RunResult, tmp_path: Path) -> None:
    import dataclasses

    import awkward as ak

    from recastkit.selection import SelectionConfig
    from recastkit.workflow.spec import RegionSpec, SampleSpec

    gen = next(first.outdir.glob("steps/generate-sig-*/sig.root"))
    regions = [
        RegionSpec("all", SelectionConfig(mjj_bins=5)),
        RegionSpec("hard", SelectionConfig(jet_pt_min_gev=60.0, mjj_bins=5)),
    ]
    data = SampleSpec(name="data", role="data", kind="data", files=(str(gen),))
    info = stages.select_step(data, [gen], regions, tmp_path)
    ev = uproot.open(gen)["Events"].arrays(["Jet_pt"])
    n_all = int(ak.sum(ak.num(ev["Jet_pt"]) >= 2))
    n_hard = int(ak.sum(ak.sum(ev["Jet_pt"] > 60.0, axis=1) >= 2))
    assert info["regions"]["all"]["cutflow"][-1]["n_events"] == n_all
    assert info["regions"]["hard"]["cutflow"][-1]["n_events"] == n_hard
    assert n_hard < n_all
    # data: unit weights, so Σw = number of events; no bookkeeping
    assert info["regions"]["all"]["cutflow"][-1]["sum_of_weights"] == n_all
    assert info["regions"]["all"]["sum_of_weights"] is None
    for region in ("all", "hard"):
        assert (tmp_path / f"{region}.root").is_file()
    mc = dataclasses.replace(data, role="signal", kind="mc")
    info_mc = stages.select_step(mc, [gen], regions[:1], tmp_path / "mc")
    # the Runs tree of the generated file holds the requested pre-skim Σw
    assert info_mc["regions"]["all"]["sum_of_weights"] == pytest.approx(6813.0258, rel=1e-12)
