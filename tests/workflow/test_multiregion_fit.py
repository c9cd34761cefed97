"""The multi-region fit step on synthetic histogram files."""

from __future__ import annotations

import json

import hist
import numpy as np
import pytest

from recastkit.exceptions import StatsError
from recastkit.io.hists import write_hists
from recastkit.theory import TheoryGroup
from recastkit.workflow.multiregion import (
    MultiRegionFitRequest,
    RegionFitInput,
    run_multiregion_fit,
)
from recastkit.workflow.variations import TheorySettings

SCALE = {"muR_0.5_muF_0.5": 1.10, "muR_0.5_muF_1": 1.05, "muR_1_muF_0.5": 1.02,
         "muR_1_muF_2": 0.97, "muR_2_muF_1": 0.95, "muR_2_muF_2": 0.92,
         "muR_0.5_muF_2": 1.5}  # the last one is anti-correlated: excluded from the envelope


def _h(edges, values, variances=None):
    h = hist.Hist(hist.axis.Variable(edges), storage=hist.storage.Weight())
    h.view().value = values
    h.view().variance = np.asarray(values) if variances is None else variances
    return h


def test_two_region_fit_with_shared_normfactor_and_theory(tmp_path):
    sr_edges, cr_edges = [0.0, 100.0, 200.0], [0.0, 200.0]
    sig = np.array([3.0, 6.0])
    sig_hists = {"mbb": _h(sr_edges, sig)}
    sig_hists.update({f"mbb__{k}": _h(sr_edges, sig * f) for k, f in SCALE.items()})
    write_hists(tmp_path / "sig.root", sig_hists, {"variations": [
        {"name": k, "branch": "LHEScaleWeight", "index": i, "mode": "multiply"}
        for i, k in enumerate(SCALE)]})
    write_hists(tmp_path / "bkg_sr.root", {"mbb": _h(sr_edges, [10.0, 20.0])})
    write_hists(tmp_path / "bkg_cr.root", {"mbb": _h(cr_edges, [100.0])})
    # data = 1.2 × background + 1 × signal in the SR, 1.2 × background in the CR
    write_hists(tmp_path / "data_sr.root", {"mbb": _h(sr_edges, [15.0, 30.0], [15.0, 30.0])})
    write_hists(tmp_path / "data_cr.root", {"mbb": _h(cr_edges, [120.0], [120.0])})
    req = MultiRegionFitRequest(
        regions=(RegionFitInput("SR", (("ttbar", f"{tmp_path}/bkg_sr.root:mbb"),),
                                signal=f"{tmp_path}/sig.root:mbb",
                                data=f"{tmp_path}/data_sr.root:mbb"),
                 RegionFitInput("CR", (("ttbar", f"{tmp_path}/bkg_cr.root:mbb"),),
                                data=f"{tmp_path}/data_cr.root:mbb")),
        output=tmp_path / "fit", free_backgrounds=("ttbar",), n_points=5, plots=False,
        theory=TheorySettings((TheoryGroup("scale", "scale", tuple(SCALE)[:6]),),
                              normalize="total"))
    out = run_multiregion_fit(req)
    assert out.best_fit["ttbar"] == pytest.approx(120.0 / 100.0, rel=1e-3)
    ws = json.loads((tmp_path / "fit" / "workspace.json").read_text())
    assert [c["name"] for c in ws["channels"]] == ["SR", "CR"]
    sr_sig = ws["channels"][0]["samples"][0]
    theory = [m for m in sr_sig["modifiers"] if m["name"] == "theory_scale"]
    assert theory == [{"name": "theory_scale", "type": "histosys",
                       "data": {"hi_data": pytest.approx(list(sig * 1.10)),
                                "lo_data": pytest.approx(list(sig * 0.92))}}]
    for ch in ws["channels"]:
        bkg = next(s for s in ch["samples"] if s["name"] == "ttbar")
        assert {"name": "mu_ttbar", "type": "normfactor", "data": None} in bkg["modifiers"]
    assert out.theory_table[1] == (("SR", "scale", "scale", "-8.00", "+10.00"),)
    limit = json.loads((tmp_path / "fit" / "limit.json").read_text())
    assert limit["settings"]["theory"]["rows"] == [["SR", "scale", "scale", "-8.00", "+10.00"]]
    assert out.result.observed_mu > 1.0  # the fitted signal is μ = 1


def test_region_without_background_is_one_line(tmp_path):
    req = MultiRegionFitRequest(regions=(RegionFitInput("SR", signal="x.root:h",
                                                        data="d.root:h"),),
                                output=tmp_path / "fit")
    with pytest.raises(StatsError, match="region 'SR': give background histograms"):
        run_multiregion_fit(req)


def test_bins_are_checked_before_rebinning(tmp_path):
    from recastkit.exceptions import HistogramError

    edges = [0.0, 1.0, 2.0]
    write_hists(tmp_path / "sig.root", {"h": _h(edges, [1.0, 1.0])})
    write_hists(tmp_path / "bkg.root", {"h": _h(edges, [5.0, -1.0])})  # sums to 4 after rebin
    write_hists(tmp_path / "data.root", {"h": _h(edges, [4.0, 1.0], [4.0, 1.0])})
    req = MultiRegionFitRequest(
        regions=(RegionFitInput("SR", (("b", f"{tmp_path}/bkg.root:h"),),
                                signal=f"{tmp_path}/sig.root:h", data=f"{tmp_path}/data.root:h"),),
        output=tmp_path / "fit", rebin=2)
    with pytest.raises(HistogramError, match="negative or NaN bin contents: bin 1"):
        run_multiregion_fit(req)
    assert not (tmp_path / "fit").exists()
