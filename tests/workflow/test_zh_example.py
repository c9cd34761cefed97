"""The ZH -> llbb analysis spec (examples/zh_llbb/run.yml): regions in the vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recastkit import processing
from recastkit.io.hists import read_hists_and_metadata
from recastkit.io.synthetic import write_signal_sample
from recastkit.processing import run_selection
from recastkit.regions import AnalysisConfig, load_selection_config
from recastkit.workflow import stages
from recastkit.workflow.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "zh_llbb"


def test_spec_regions_in_the_vocabulary_select_like_the_standalone_config(tmp_path,
                                                                          monkeypatch):
    spec = load_spec(EXAMPLES / "run.yml")
    assert [r.name for r in spec.regions] == ["SR", "CR_low", "CR_high"]
    assert all(isinstance(r.selection, AnalysisConfig) for r in spec.regions)
    assert spec.interpretation.observable == "mbb"
    sample = tmp_path / "zh.root"
    write_signal_sample(sample, n_events=3000, seed=31, objects=True)
    out = tmp_path / "select"
    out.mkdir()
    calls = []
    original = processing.run_selection

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(processing, "run_selection", counting)
    info = stages.select_step(spec.samples.signal, [sample], spec.regions, out)
    monkeypatch.undo()
    assert len(calls) == 1  # the three regions share objects and observables: one pass
    # the standalone analysis.yml (checked against awkward in tests/test_regions.py)
    config = load_selection_config(EXAMPLES / "analysis.yml")
    reference = run_selection([sample], config, executor="iterative")
    for region in ("SR", "CR_low", "CR_high"):
        hists, meta = read_hists_and_metadata(out / f"{region}.root")
        assert {"mbb", "ptll", "mll", "njets", "mbb__pdf1", "njets__muR2_muF2"} <= set(hists)
        assert len(hists) == 4 * 9
        flow = info["regions"][region]["cutflow"]
        assert [c["n_events"] for c in flow] == [
            c.n_events for c in reference.cutflows[region]]
        for obs in ("mbb", "ptll", "mll", "njets"):
            for suffix in ("", "__muR0p5_muF0p5", "__pdf2"):
                np.testing.assert_allclose(
                    hists[obs + suffix].values(flow=True),
                    reference.histograms[f"{region}/{obs}{suffix}"].values(flow=True),
                    rtol=1e-12)
        assert meta["sum_of_weights"] == pytest.approx(6813.0258)
        assert [v["name"] for v in meta["variations"]][:2] == ["muR0p5_muF0p5", "muR0p5_muF1"]


def test_a_spec_region_is_one_region(tmp_path):
    from recastkit.exceptions import ConfigError
    from recastkit.regions import region_selection_from_mapping

    with pytest.raises(ConfigError, match="one region: give its cuts as 'cuts'"):
        region_selection_from_mapping({"regions": {"a": {"cuts": []}}}, "SR", "spec.yml")
    with pytest.raises(ConfigError, match=r"spec\.yml: regions\.SR\.cuts 'x': unknown name"):
        region_selection_from_mapping(
            {"cuts": [{"name": "x", "expr": "n(jetz) > 1"}],
             "observables": {"n": {"expr": "n(jets)", "bins": 5, "low": 0, "high": 5}}},
            "SR", "spec.yml")


def test_zh_run_fits_three_regions_with_shared_mock_normalization_and_theory(tmp_path):
    """run.yml: SR and both sidebands in one fit, mu_mock shared, scale/PDF modifiers."""
    import json
    import shutil

    import uproot
    import yaml

    from recastkit.workflow.run import run_analysis

    doc = yaml.safe_load((EXAMPLES / "run.yml").read_text())
    doc["samples"]["signal"]["generate"]["events"] = 1500
    # njets, all 10 bins merged: one bin per region keeps the three-channel fit fast
    doc["interpretation"].update({"rebin": 10, "n_points": 4, "mu_max": 0.3,
                                  "observable": "njets"})
    doc["outputs"] = {"report": False, "plots": False}
    (tmp_path / "spec").mkdir()
    shutil.copy(EXAMPLES.parent / "demo" / "xsec_demo.txt", tmp_path / "xsec_demo.txt")
    doc["normalization"]["catalogs"] = ["../xsec_demo.txt"]
    spec_path = tmp_path / "spec" / "run.yml"
    spec_path.write_text(yaml.safe_dump(doc))
    result = run_analysis(load_spec(spec_path), tmp_path / "out")
    ws = json.loads(result.files["workspace.json"].read_text())
    assert [c["name"] for c in ws["channels"]] == ["SR", "CR_low", "CR_high"]
    for ch in ws["channels"]:
        mods = {s["name"]: {(m["name"], m["type"]) for m in s["modifiers"]}
                for s in ch["samples"]}
        assert ("mu_mock", "normfactor") in mods["mock"]
        assert {("mu", "normfactor"), ("theory_scale", "histosys"),
                ("theory_pdf", "histosys")} <= mods["signal"]
    settings = result.limit.settings
    rows = settings["theory"]["rows"]
    assert [r[:3] for r in rows[:2]] == [["SR", "scale", "scale"], ["SR", "pdf", "pdf_hessian"]]
    # acceptance normalization: the variation's Σw is LHEScaleSumw[i] × genEventSumw
    sig = next(s for s in result.samples if s.role == "signal")
    sr_file = sig.region_files["SR"]
    from recastkit.io.hists import read_hists_and_metadata

    hists, meta = read_hists_and_metadata(sr_file)
    sel = meta["selection_metadata"]
    runs = uproot.open(sel["files"][0])["Runs"]
    gsum = float(runs["genEventSumw"].array(library="np")[0])
    ratio = float(runs["LHEScaleSumw"].array(library="np")[0][8])  # muR2_muF2
    nom = hists["njets"].values().reshape(-1, 10).sum(axis=1)
    var = hists["njets__muR2_muF2"].values().reshape(-1, 10).sum(axis=1)
    own = var * meta["normalization"]["sum_of_weights"] / (ratio * gsum)
    sr_mods = ws["channels"][0]["samples"][0]["modifiers"]
    hi = next(m for m in sr_mods if m["name"] == "theory_scale")["data"]["hi_data"]
    assert np.all(np.asarray(hi) >= np.maximum(own, nom) * (1 - 1e-9))
    assert "mock" in settings["best_fit_normfactors"]
    from recastkit.workflow.reporting import build_report

    tables = build_report(result).tables
    title = "Signal theory uncertainties (normalize: acceptance)"
    assert tables[title][0] == ("region", "uncertainty", "rule", "down %", "up %")
    assert len(tables[title][1]) == 6  # 3 regions × (scale, pdf)

