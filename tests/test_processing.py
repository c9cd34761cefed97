"""Tests of recastkit.processing on the real samples and on synthetic files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit.exceptions import MissingObjectError, RootFileError, SelectionError
from recastkit.io.hists import read_hists_and_metadata
from recastkit.processing import (
    SelectionResult,
    dsid_from_dataset,
    run_selection,
    split_units,
    write_selection,
)
from recastkit.selection import SelectionConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eventfactory import make_events, reference, write_flat

PHYSLITE = "root/DAOD_PHYSLITE_21.2.108.0.art.pool.root"
METADATA_KEYS = {
    "dataset", "dsid", "sum_of_weights", "sum_of_weights_squared", "sum_of_weights_source",
    "sum_of_weights_error", "n_events_processed", "files", "skipped_files", "cutflow",
    "selection", "layout", "recastkit_version", "moments",
}


def _same(a: SelectionResult, b: SelectionResult, rel: float = 0.0) -> None:
    assert [c.n_events for c in a.cutflow] == [c.n_events for c in b.cutflow]
    for name, h in a.histograms.items():
        np.testing.assert_allclose(h.values(flow=True), b.histograms[name].values(flow=True),
                                   rtol=rel, atol=0)
        np.testing.assert_allclose(h.variances(flow=True),
                                   b.histograms[name].variances(flow=True), rtol=rel, atol=0)
        ma, mb = a.moments[name], b.moments[name]
        assert ma.sum_wx == pytest.approx(mb.sum_wx, rel=max(rel, 1e-300))
        assert (ma.min, ma.max) == (mb.min, mb.max)


def test_physlite_reference_numbers_iterative_and_processes(shared_file):
    path = shared_file(PHYSLITE)
    it = run_selection([path], executor="iterative", chunk_size=15)
    mom = it.moments["h_mjj_raw"]
    # README 1.1: sorted jets give Σ w0·m_jj = 6.5328487e6 GeV, m_jj in 56.39-684.57 GeV
    assert mom.sum_wx == pytest.approx(6.5328487e6, rel=1e-7)
    assert mom.min == pytest.approx(56.39, abs=0.01)
    assert mom.max == pytest.approx(684.57, abs=0.01)
    assert mom.sum_w == 29465.34912109375
    assert it.cutflow[0].sum_of_weights == 29465.34912109375
    assert it.cutflow[0].sum_of_weights_squared == pytest.approx(21705176.079937518, rel=1e-12)
    assert it.histograms["h_mjj_raw"].values(flow=True).sum() == pytest.approx(mom.sum_w,
                                                                             rel=1e-12)
    # bookkeeping numbers (README 1.1) reach the result
    assert it.sum_of_weights.sum_of_weights == 29465.34912109375
    assert it.dsid == 410470
    pr = run_selection([path], executor="processes", workers=2, chunk_size=15)
    assert pr.n_units == it.n_units == 2  # [0, 15) and [15, 40): no basket boundary inside
    _same(it, pr)  # bit-identical
    whole = run_selection([path], executor="iterative", chunk_size=1000)
    _same(it, whole, rel=1e-12)


def test_rntuple_physlite_runs(shared_file):
    path = shared_file("root/uproot-physlite-rntuple_v1-0-0-0.root")
    res = run_selection([path], executor="iterative", chunk_size=60)
    assert res.layout == "physlite_rntuple"
    assert res.n_events == 100
    assert res.cutflow[0].sum_of_weights == pytest.approx(81567.26385498047, rel=1e-12)
    assert res.cutflow[1].n_events == 100  # every event has >= 2 jets (README 1.5)
    assert res.sum_of_weights.sum_of_weights == pytest.approx(81567.26385498047, rel=1e-12)


def test_nanoaod_runs_against_hand_computation(shared_file):
    path = shared_file("root/nanoAOD_2015_CMS_Open_Data_ttbar.root")
    res = run_selection([path], SelectionConfig(jet_pt_min_gev=30.0, jet_abs_eta_max=2.4),
                        executor="iterative")
    ev = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_eta", "genWeight"])
    w = ak.to_numpy(ev.genWeight).astype(np.float64)
    n_all = ak.to_numpy(ak.num(ev.Jet_pt))
    n_sel = ak.to_numpy(ak.sum((ev.Jet_pt > 30.0) & (abs(ev.Jet_eta) < 2.4), axis=1))
    n_pt = ak.to_numpy(ak.sum(ev.Jet_pt > 30.0, axis=1))
    assert res.layout == "nanoaod"
    assert w.sum() == 33432083.0625
    assert [c.n_events for c in res.cutflow] == [
        200, int((n_all >= 2).sum()), int((n_pt >= 2).sum()), int((n_sel >= 2).sum())]
    for entry, mask in zip(res.cutflow, [n_all >= 0, n_all >= 2, n_pt >= 2, n_sel >= 2],
                           strict=True):
        assert entry.sum_of_weights == pytest.approx(w[mask].sum(), rel=1e-12)
        assert entry.sum_of_weights_squared == pytest.approx((w[mask] ** 2).sum(), rel=1e-12)
    assert res.sum_of_weights.sum_of_weights is None or res.sum_of_weights.error is None


def test_hzz_cartesian_jets(shared_file, tmp_path):
    path = shared_file("root/uproot-HZZ.root")
    res = run_selection([path], executor="iterative", chunk_size=1000)
    ev = uproot.open(path)["events"].arrays(["Jet_Px", "EventWeight"])
    w = ak.to_numpy(ev.EventWeight).astype(np.float64)
    two = ak.to_numpy(ak.num(ev.Jet_Px) >= 2)
    assert res.layout == "flat_cartesian"
    assert res.cutflow[1].n_events == 824 == int(two.sum())  # README 1.8
    assert res.cutflow[1].sum_of_weights == pytest.approx(w[two].sum(), rel=1e-12)
    assert res.cutflow[0].sum_of_weights == pytest.approx(16.922521416134224, rel=1e-12)
    assert res.moments["h_mjj_raw"].sum_w == pytest.approx(w[two].sum(), rel=1e-12)


def test_chunk_size_and_file_order_do_not_matter(tmp_path):
    sample = make_events(3000, seed=3)
    a = write_flat(tmp_path / "a.root", sample, n_baskets=3)
    half = make_events(1000, seed=4)
    b = write_flat(tmp_path / "b.root", half, n_baskets=2)
    config = SelectionConfig(jet_pt_min_gev=30.0, jet_abs_eta_max=3.0)
    r1 = run_selection([a, b], config, executor="iterative", chunk_size=500, bookkeeping=False)
    r2 = run_selection([b, a], config, executor="iterative", chunk_size=777, bookkeeping=False)
    r3 = run_selection([b, a], config, executor="processes", workers=2, chunk_size=500,
                       bookkeeping=False)
    r4 = run_selection([a, b], config, executor="iterative", chunk_size=500, bookkeeping=False,
                       read_ahead=False)
    _same(r1, r2, rel=1e-12)
    _same(r1, r3)
    _same(r1, r4)
    assert r1.files == (str(a), str(b))
    ref_a, ref_b = reference(sample, 30.0, 3.0), reference(half, 30.0, 3.0)
    n_kin = int(ref_a["keep_kin"].sum() + ref_b["keep_kin"].sum())
    assert r1.cutflow[-1].n_events == n_kin
    sum_wx = (np.sum(ref_a["w"][ref_a["keep_kin"]] * ref_a["mjj_kin"])
              + np.sum(ref_b["w"][ref_b["keep_kin"]] * ref_b["mjj_kin"]))
    assert r1.moments["h_mjj_kin"].sum_wx == pytest.approx(sum_wx, rel=1e-10)


def test_split_units_follow_boundaries():
    units = split_units("f", [0, 100, 200, 300, 1000], 150)
    # 0 -> first boundary >= 150 is 200; 200 -> next boundary >= 350 is 1000, more than
    # 2 x 150 away, so cut at 350; ...; 800 -> 1000 is within 2 x 150: one unit.
    assert [(u.entry_start, u.entry_stop) for u in units] == [
        (0, 200), (200, 350), (350, 500), (500, 650), (650, 800), (800, 1000)]


def test_bad_files_fail_or_are_skipped(tmp_path, shared_file):
    good = write_flat(tmp_path / "good.root", make_events(200, seed=5))
    junk = tmp_path / "junk.root"
    junk.write_text("not root")
    data = shared_file("root/uproot-HZZ.root").read_bytes()
    with pytest.raises(RootFileError, match=r"junk\.root: not a ROOT file"):
        run_selection([good, junk], executor="iterative", bookkeeping=False)
    nobranch = tmp_path / "nobranch.root"
    with uproot.recreate(nobranch) as f:
        f.mktree("events", {"jet_pt": "var * float32", "jet_eta": "var * float32",
                            "jet_phi": "var * float32", "jet_m": "var * float32"})
        f["events"].extend({k: ak.Array([[1.0, 2.0]]) for k in
                            ("jet_pt", "jet_eta", "jet_phi", "jet_m")})
    with pytest.raises(MissingObjectError, match=r"nobranch\.root: no branch .*'weight'"):
        run_selection([nobranch], executor="iterative", bookkeeping=False)
    res = run_selection([good, junk, nobranch, tmp_path / "missing.root"],
                        executor="iterative", skip_bad_files=True, bookkeeping=False)
    assert res.files == (str(good),)
    assert [s.path for s in res.skipped_files] == sorted(
        str(p) for p in (junk, nobranch, tmp_path / "missing.root"))
    assert all(s.reason for s in res.skipped_files)
    assert res.n_events == 200
    # a file truncated after its header: fails while reading baskets, in the worker
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[: len(data) // 2])
    hzz = shared_file("root/uproot-HZZ.root")
    with pytest.raises(RootFileError, match=r"cut\.root"):
        run_selection([cut], executor="iterative", bookkeeping=False)
    res = run_selection([hzz, cut], executor="processes", workers=2, skip_bad_files=True,
                        bookkeeping=False)
    assert [s.path for s in res.skipped_files] == [str(cut)]
    assert res.n_events == 2421
    with pytest.raises(SelectionError, match="every input file was skipped"):
        run_selection([junk], executor="iterative", skip_bad_files=True)


def test_empty_selection_is_an_error(tmp_path):
    path = write_flat(tmp_path / "f.root", make_events(100, seed=2))
    config = SelectionConfig(jet_pt_min_gev=1e9)
    with pytest.raises(SelectionError, match=r"empty selection.*f.root.*pT>1e\+09 GeV: 0"):
        run_selection([path], config, executor="iterative", bookkeeping=False)
    res = run_selection([path], config, executor="iterative", bookkeeping=False,
                        allow_empty=True)
    assert res.cutflow[-1].n_events == 0
    assert res.moments["h_mjj_kin"].to_dict()["min"] is None


def test_extra_weight_pileup(shared_file):
    path = shared_file("root/PHYSLITE_example.root")
    res = run_selection([path], SelectionConfig(extra_weights=("PileupWeight_NOSYS",)),
                        executor="iterative")
    tree = uproot.open(path)["CollectionTree"]
    w = (ak.to_numpy(tree["EventInfoAuxDyn.mcEventWeights"].array()[:, 0]).astype(np.float64)
         * tree["EventInfoAuxDyn.PileupWeight_NOSYS"].array(library="np").astype(np.float64))
    assert res.cutflow[0].sum_of_weights == pytest.approx(w.sum(), rel=1e-12)
    # no MetaData tree: the sum of weights is recorded as missing, with the reason
    assert res.sum_of_weights.sum_of_weights is None
    assert res.sum_of_weights.error


def test_write_selection_metadata_contract(shared_file, tmp_path):
    res = run_selection([shared_file(PHYSLITE)], executor="iterative",
                        dataset="mc16_13TeV.410470.PhPy8EG_A14_ttbar_hdamp258p75_nonallhad"
                                ".deriv.DAOD_PHYSLITE.e6337_s3126_r10724_p4355")
    root_path, json_path = write_selection(res, tmp_path / "out" / "sel.root")
    assert json_path == tmp_path / "out" / "sel.json"
    for path in (root_path, json_path):
        hists, meta = read_hists_and_metadata(path)
        assert set(hists) == {"h_mjj_raw", "h_mjj_kin", "h_njets_raw", "h_njets_kin"}
        np.testing.assert_allclose(hists["h_mjj_raw"].variances(flow=True),
                                   res.histograms["h_mjj_raw"].variances(flow=True),
                                   rtol=1e-15)
        assert set(meta) == METADATA_KEYS
        assert meta["sum_of_weights"] == 29465.34912109375
        assert meta["sum_of_weights_squared"] == pytest.approx(21705176.079937518, rel=1e-12)
        assert meta["dsid"] == 410470
        assert meta["n_events_processed"] == 40
        assert meta["layout"] == "physlite"
        assert meta["moments"]["h_mjj_raw"]["sum_wx"] == pytest.approx(6.5328487e6, rel=1e-7)
        assert meta["cutflow"][0] == {"name": "all events", "n_events": 40,
                                      "sum_of_weights": 29465.34912109375,
                                      "sum_of_weights_squared": pytest.approx(
                                          21705176.079937518, rel=1e-12)}
        assert SelectionConfig.from_mapping(meta["selection"]) == res.config
    json.loads(json_path.read_text())
    with pytest.raises(SelectionError, match=r"must end in \.root"):
        write_selection(res, tmp_path / "x.json")


def test_argument_errors(tmp_path):
    path = write_flat(tmp_path / "f.root", make_events(10))
    with pytest.raises(SelectionError, match="valid choices: iterative, processes, dask"):
        run_selection([path], executor="spark")
    with pytest.raises(SelectionError, match="chunk_size"):
        run_selection([path], chunk_size=0)


def test_dsid_from_dataset():
    name = "mc16_13TeV:mc16_13TeV.410470.PhPy8EG.deriv.DAOD_PHYSLITE.e1"
    assert dsid_from_dataset(name) == 410470
    assert dsid_from_dataset("user.me.mysample") is None
    assert dsid_from_dataset(None) is None


def test_missing_dask_says_how_to_install(tmp_path, monkeypatch):
    import importlib

    from recastkit.exceptions import MissingDependencyError

    real = importlib.import_module

    def fake(name, *args):
        if name == "distributed":
            raise ImportError("No module named 'distributed'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    path = write_flat(tmp_path / "f.root", make_events(10))
    with pytest.raises(MissingDependencyError, match=r"pip install 'recastkit\[dask\]'"):
        run_selection([path], executor="dask", bookkeeping=False)


def test_keep_freed_memory_is_applied_once_per_process_on_glibc():
    import platform
    import sys

    from recastkit import processing

    applied = processing.keep_freed_memory()
    assert processing.keep_freed_memory() is applied  # cached per process
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert applied is glibc


def test_prefetching_chunk_stream_keeps_items_and_errors_in_order(tmp_path):
    from recastkit.io.decoding import ReadOptions
    from recastkit.io.events import resolve_layout
    from recastkit.processing import WorkUnit, _chunk_stream, _Task

    a = write_flat(tmp_path / "a.root", make_events(3000, seed=3), n_baskets=3)
    layout = resolve_layout(a)
    config = SelectionConfig()
    missing = str(tmp_path / "gone.root")
    units = [*split_units(str(a), [0, 1000, 2000, 3000], 700), WorkUnit(missing, 0, 10),
             WorkUnit(str(a), 2500, 3000)]
    for step in (250, 700, 5000):
        tasks = [_Task(u, layout, config, step, ReadOptions()) for u in units]
        plain = [(i, None if c is None else (c.path, c.entry_start, c.entry_stop), type(e).__name__)
                 for i, c, e in _chunk_stream(tasks)]
        ahead = [(i, None if c is None else (c.path, c.entry_start, c.entry_stop), type(e).__name__)
                 for i, c, e in _chunk_stream(tasks, prefetch=True)]
        assert ahead == plain
        assert (len(units) - 2, None, "RootFileError") in plain
    stream = _chunk_stream(tasks, prefetch=True)  # closed early: the next unit is waited for
    next(stream)
    stream.close()
