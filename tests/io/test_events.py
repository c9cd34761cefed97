"""Tests of recastkit.io.events: layout detection, chunked reading, inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit.exceptions import ConfigError, MissingObjectError, RootFileError
from recastkit.io import events
from recastkit.io.events import (
    InputConfig,
    cluster_boundaries,
    count_entries,
    detect_layout,
    expand_inputs,
    iter_chunks,
    read_sample_list,
    resolve_layout,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eventfactory import make_events, write_flat

PHYSLITE = "root/DAOD_PHYSLITE_21.2.108.0.art.pool.root"


def _read_all(path):
    layout = resolve_layout(path)
    return list(iter_chunks(path, layout, 0, count_entries(path, layout), 10_000))


@pytest.mark.parametrize(
    ("relpath", "name", "tree"),
    [
        (PHYSLITE, "physlite", "CollectionTree"),
        ("root/uproot-physlite-rntuple_v1-0-0-0.root", "physlite_rntuple", "EventData"),
        ("root/nanoAOD_2015_CMS_Open_Data_ttbar.root", "nanoaod", "Events"),
        ("root/uproot-HZZ.root", "flat_cartesian", "events"),
    ],
)
def test_detect_layout_of_real_files(shared_file, relpath, name, tree):
    layout = detect_layout(shared_file(relpath))
    assert (layout.name, layout.tree) == (name, tree)


def test_detect_flat_layout_in_any_tree(tmp_path):
    path = write_flat(tmp_path / "f.root", make_events(10), tree="mytree")
    layout = detect_layout(path)
    assert (layout.name, layout.tree, layout.energy_scale_to_gev) == ("flat", "mytree", 1.0)


def test_undetectable_layout_lists_trees(tmp_path):
    path = tmp_path / "other.root"
    with uproot.recreate(path) as f:
        f.mktree("stuff", {"x": np.float32})
        f["stuff"].extend({"x": np.arange(3, dtype=np.float32)})
    with pytest.raises(MissingObjectError, match=r"trees found: stuff.*valid choices: physlite"):
        detect_layout(path)


def test_physlite_chunks_units_and_weights(shared_file):
    path = shared_file(PHYSLITE)
    layout = resolve_layout(path)
    assert layout.energy_scale_to_gev == 1e-3
    chunks = list(iter_chunks(path, layout, 0, count_entries(path, layout), 15))
    assert [(c.entry_start, c.entry_stop) for c in chunks] == [(0, 15), (15, 30), (30, 40)]
    weights = np.concatenate([c.weights for c in chunks])
    assert weights.dtype == np.float64
    # README 1.1: the float64 sum of mcEventWeights[:, 0] is exactly the CutBookkeeper value
    assert weights.sum() == 29465.34912109375
    pt = uproot.open(path)["CollectionTree"]["AnalysisJetsAuxDyn.pt"].array()
    assert chunks[1].offsets[0] == 0
    assert np.array_equal(chunks[1].jets[0], ak.to_numpy(ak.flatten(pt[15:30])))
    assert np.array_equal(np.diff(chunks[1].offsets), ak.to_numpy(ak.num(pt[15:30])))


def test_rntuple_chunks_rebase_offsets(shared_file):
    path = shared_file("root/uproot-physlite-rntuple_v1-0-0-0.root")
    layout = resolve_layout(path)
    chunks = list(iter_chunks(path, layout, 10, 100, 45))
    assert [c.n_events for c in chunks] == [45, 45]
    assert all(c.offsets[0] == 0 and c.offsets[-1] == len(c.jets[0]) for c in chunks)
    w = uproot.open(path)["EventData"].arrays(["EventInfoAuxDyn:mcEventWeights"])
    expected = ak.to_numpy(w["EventInfoAuxDyn:mcEventWeights"][10:100, 0]).astype(np.float64)
    assert np.array_equal(np.concatenate([c.weights for c in chunks]), expected)


def test_extra_weight_by_short_name(shared_file):
    path = shared_file("root/PHYSLITE_example.root")
    layout = resolve_layout(path, extra_weights=["PileupWeight_NOSYS"])
    assert layout.extra_weight_branches == ("EventInfoAuxDyn.PileupWeight_NOSYS",)
    tree = uproot.open(path)["CollectionTree"]
    mcw = ak.to_numpy(tree["EventInfoAuxDyn.mcEventWeights"].array()[:, 0]).astype(np.float64)
    prw = tree["EventInfoAuxDyn.PileupWeight_NOSYS"].array(library="np").astype(np.float64)
    (chunk,) = iter_chunks(path, layout, 0, 100, 1000)
    np.testing.assert_array_equal(chunk.weights, mcw * prw)


def test_missing_branch_lists_close_matches(shared_file):
    path = shared_file("root/PHYSLITE_example.root")
    with pytest.raises(MissingObjectError, match=r"PileupWeight_NOSYZ.*close matches: .*"
                                                 r"EventInfoAuxDyn.PileupWeight_NOSYS"):
        resolve_layout(path, extra_weights=["EventInfoAuxDyn.PileupWeight_NOSYZ"])
    with pytest.raises(MissingObjectError, match=r"no tree named 'Evnts'.*CollectionTree"):
        resolve_layout(path, InputConfig(layout="physlite", tree="Evnts"))


def test_overrides_and_unweighted(shared_file):
    path = shared_file("root/uproot-HZZ.root")
    layout = resolve_layout(path, InputConfig(unweighted=True))
    assert layout.weight_branch is None
    (chunk,) = iter_chunks(path, layout, 0, 100, 1000)
    assert np.array_equal(chunk.weights, np.ones(100))
    with pytest.raises(ConfigError, match="valid choices: auto, physlite"):
        InputConfig(layout="delphes")


def test_non_root_and_truncated_files(tmp_path, shared_file):
    text = tmp_path / "notes.root"
    text.write_text("hello")
    with pytest.raises(RootFileError, match=r"notes.root: not a ROOT file"):
        detect_layout(text)
    data = shared_file("root/uproot-HZZ.root").read_bytes()
    cut = tmp_path / "truncated.root"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RootFileError, match="truncated"):
        _read_all(cut)


def test_cluster_boundaries_follow_baskets(tmp_path):
    path = write_flat(tmp_path / "f.root", make_events(1000), n_baskets=4)
    layout = resolve_layout(path)
    assert cluster_boundaries(path, layout) == [0, 250, 500, 750, 1000]


def test_expand_inputs_and_sample_list(tmp_path):
    for name in ("b.root", "a.root"):
        write_flat(tmp_path / name, make_events(5))
    assert expand_inputs([str(tmp_path / "*.root"), str(tmp_path / "a.root")]) == [
        tmp_path / "a.root", tmp_path / "b.root"]
    with pytest.raises(RootFileError, match=r"nothing\*.root: no file matches"):
        expand_inputs([str(tmp_path / "nothing*.root")])
    yml = tmp_path / "samples.yml"
    yml.write_text("signal:\n  dataset: mc16_13TeV.410470.x\n  files: ['*.root']\n"
                   "other: [a.root]\n")
    samples = read_sample_list(yml)
    assert [(s.name, len(s.files), s.dataset) for s in samples] == [
        ("signal", 2, "mc16_13TeV.410470.x"), ("other", 1, None)]
    yml.write_text("signal:\n  filez: [a.root]\n")
    with pytest.raises(ConfigError, match="sample 'signal'"):
        read_sample_list(yml)


def test_file_cache_is_bounded(tmp_path):
    paths = [write_flat(tmp_path / f"f{i}.root", make_events(3, seed=i)) for i in range(10)]
    for p in paths:
        detect_layout(p)
    assert len(events._open_cache) <= events._OPEN_CACHE_SIZE
    events.clear_file_cache()
    assert len(events._open_cache) == 0
