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
