"""Tests of recastkit.bookkeeping against the shared real files and small synthetic files."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot

from recastkit.bookkeeping import (
    METHODS,
    SkimInfo,
    SumOfWeights,
    explicit_sum_of_weights,
    sum_of_weights,
    sum_of_weights_files,
)
from recastkit.exceptions import BookkeepingError, MissingObjectError, RootFileError

PHYSLITE = "root/DAOD_PHYSLITE_21.2.108.0.art.pool.root"
ISSUE_123B = "root/uproot-issue-123b.root"
ISSUE_123A = "root/uproot-issue-123a.root"
RNTUPLE = "root/uproot-physlite-rntuple_v1-0-0-0.root"
NO_METADATA = "root/PHYSLITE_example.root"
NANO_DY = "root/nano_dy.root"
CUTFLOW = "root/uproot-issue243-new.root"
HZZ = "root/uproot-HZZ.root"

SharedFile = Callable[[str], Path]

# Published values (shared data README §1), all float64.
PHYSLITE_SUMW = 29465.34912109375
PHYSLITE_SUMW2 = 21705176.079937518
PHYSLITE_SUMW_FLOAT32 = 29465.34765625
PHYSLITE_SUMW_VAR1 = 29828.396423339844
SUMW_123B = 73668.0625
SUMW2_123B = 54269849.37820399
RNTUPLE_SUMW = 81567.26385498047
RNTUPLE_SUMW2 = 66538438.676134706
NANO_SUMW = 15166686735.858717
NANO_COUNT = 850098


# --------------------------------------------------------------------------- synthetic files

_CBK_FIELDS = ("name", "cycle", "inputStream", "nAcceptedEvents", "sumOfEventWeights",
               "sumOfEventWeightsSquared")


def write_metadata(path: Path, entries: list[list[tuple[str, int, str, int, float, float]]],
                   incomplete: list[tuple[str, int, str, int, float, float]] | None = None
                   ) -> Path:
    """A MetaData table: one entry per (merged) input file, each a list of bookkeepers.

    Each bookkeeper is (name, cycle, inputStream, nAcceptedEvents, Σw, Σw²). The optional
    ``incomplete`` bookkeepers (repeated in every entry) go to IncompleteCutBookkeepersAux.
    uproot cannot write vectors of strings into a TTree, so this is an RNTuple with the
    TTree's (sub-)branch names, which the reader treats alike.
    """
    groups = [("CutBookkeepersAux.", entries)]
    if incomplete:
        groups.append(("IncompleteCutBookkeepersAux.", [incomplete for _ in entries]))
    branches: dict[str, Any] = {}
    for group, rows_per_entry in groups:
        for k, field in enumerate(_CBK_FIELDS):
            values = ak.Array([[row[k] for row in rows] for rows in rows_per_entry])
            if field == "cycle":
                values = ak.values_astype(values, np.int32)
            elif field == "nAcceptedEvents":
                values = ak.values_astype(values, np.uint64)
            elif field.startswith("sum"):
                values = ak.values_astype(values, np.float64)
            branches[group + field] = values
    with uproot.recreate(path) as f:
        f["MetaData"] = branches
    return path


def write_sumweights(path: Path, nominal: list[float], variations: list[list[float]],
                     total_events: list[int], *, dsid: int = 410470,
                     names: list[str] | None = None) -> Path:
    """An AnalysisTop ``sumWeights`` TTree (one entry per processed input file).

    With ``names`` (``names_mc_generator_weights``, a vector of strings that uproot cannot
    write into a TTree) the table is written as an RNTuple instead.
    """
    data: dict[str, Any] = {
        "dsid": np.full(len(nominal), dsid, dtype=np.int32),
        "totalEventsWeighted": np.asarray(nominal, dtype=np.float32),
        "totalEventsWeighted_mc_generator_weights": ak.values_astype(
            ak.Array(variations), np.float32),
        "totalEvents": np.asarray(total_events, dtype=np.uint64),
    }
    with uproot.recreate(path) as f:
        if names is None:
            f.mktree("sumWeights", data)
        else:
            data["names_mc_generator_weights"] = ak.Array([names] * len(nominal))
            f["sumWeights"] = data
    return path


def write_runs(path: Path, sumw: list[float], sumw2: list[float], count: list[int],
               suffix: str = "_") -> Path:
    """A CMS NanoAOD ``Runs`` TTree (``genEventSumw_`` or, with suffix "", ``genEventSumw``)."""
    with uproot.recreate(path) as f:
        f.mktree("Runs", {
            "run": np.ones(len(sumw), dtype=np.uint32),
            f"genEventSumw{suffix}": np.asarray(sumw, dtype=np.float64),
            f"genEventSumw2{suffix}": np.asarray(sumw2, dtype=np.float64),
            f"genEventCount{suffix}": np.asarray(count, dtype=np.int64),
        })
    return path


# --------------------------------------------------------------------------- real files


def test_physlite_cutbookkeepers(shared_file: SharedFile) -> None:
    path = shared_file(PHYSLITE)
    sow = sum_of_weights(path)
    assert sow.sum_of_weights == pytest.approx(PHYSLITE_SUMW, rel=1e-12)
    assert sow.sum_of_weights_squared == pytest.approx(PHYSLITE_SUMW2, rel=1e-12)
    assert sow.n_events == 40
    assert sow.source == "CutBookkeepers AllExecutedEvents/StreamAOD/cycle 5"
    assert sow.kind == "cutbookkeepers"
    assert sow.path == str(path)
    assert sow.weight_index == 0
    assert sow.weight_name == "nominal"  # ' nominal ' stripped
    assert sow.dsid == 410470
    # Kish: (Σw)²/Σw² from the published numbers.
    assert sow.n_effective == pytest.approx(PHYSLITE_SUMW**2 / PHYSLITE_SUMW2, rel=1e-12)
    # Neither the two MetaData cycles nor the Incomplete bookkeepers are added.
    assert sow.sum_of_weights != pytest.approx(2 * PHYSLITE_SUMW, rel=1e-3)
    assert sow.sum_of_weights < 7312950.60


def test_physlite_variation_weight(shared_file: SharedFile) -> None:
    sow = sum_of_weights(shared_file(PHYSLITE), weight_index=1)
    assert sow.sum_of_weights == pytest.approx(PHYSLITE_SUMW_VAR1, rel=1e-12)
    assert sow.weight_index == 1
    assert sow.weight_name == "muR = 1.0, muF = 2.0"
    assert sow.n_events == 40
    assert sow.source == "CutBookkeepers AllExecutedEvents_NonNominalMCWeight_1/StreamAOD/cycle 5"


def test_physlite_unknown_weight_index(shared_file: SharedFile) -> None:
    path = shared_file(PHYSLITE)
    with pytest.raises(BookkeepingError, match=r"weight index 217 not found.*217 MC weight"):
        sum_of_weights(path, weight_index=217)
    with pytest.raises(BookkeepingError, match="weight index must be an integer >= 0"):
        sum_of_weights(path, weight_index=-1)


def test_physlite_events_float64(shared_file: SharedFile, caplog: pytest.LogCaptureFixture
                                 ) -> None:
    path = shared_file(PHYSLITE)
    with caplog.at_level(logging.WARNING, logger="recastkit.bookkeeping"):
        sow = sum_of_weights(path, method="events")
    assert sow.sum_of_weights == pytest.approx(PHYSLITE_SUMW, rel=1e-12)
    # float32 accumulation would give 29465.34765625 (relative difference 5e-8).
    assert sow.sum_of_weights != pytest.approx(PHYSLITE_SUMW_FLOAT32, rel=1e-12)
    assert sow.sum_of_weights_squared == pytest.approx(PHYSLITE_SUMW2, rel=1e-12)
    assert sow.n_events == 40
    assert sow.kind == "events"
    assert sow.dsid == 410470
    assert "over-normalized" in caplog.text
    variation = sum_of_weights(path, method="events", weight_index=1)
    assert variation.sum_of_weights == pytest.approx(PHYSLITE_SUMW_VAR1, rel=1e-12)
    with pytest.raises(BookkeepingError, match=r"weight index 217 not found.*217 MC weight"):
        sum_of_weights(path, method="events", weight_index=217)


def test_issue_123b_not_doubled(shared_file: SharedFile) -> None:
    sow = sum_of_weights(shared_file(ISSUE_123B))
    assert sow.sum_of_weights == pytest.approx(SUMW_123B, rel=1e-12)
    assert sow.sum_of_weights_squared == pytest.approx(SUMW2_123B, rel=1e-12)
    assert sow.n_events == 100
    assert sow.source == "CutBookkeepers AllExecutedEvents/StreamAOD/cycle 5"


def test_rntuple_file(shared_file: SharedFile) -> None:
    path = shared_file(RNTUPLE)
    sow = sum_of_weights(path)
    assert sow.sum_of_weights == pytest.approx(RNTUPLE_SUMW, rel=1e-12)
    assert sow.sum_of_weights_squared == pytest.approx(RNTUPLE_SUMW2, rel=1e-12)
    assert sow.n_events == 100
    assert sow.source == "CutBookkeepers AllExecutedEvents/StreamAOD/cycle 0"
    assert sow.dsid == 601229
    events = sum_of_weights(path, method="events")
    assert events.sum_of_weights == pytest.approx(RNTUPLE_SUMW, rel=1e-12)
    assert events.n_events == 100
    assert "EventData/EventInfoAuxDyn:mcEventWeights" in events.source


def test_rntuple_variation_container(shared_file: SharedFile) -> None:
    path = shared_file(RNTUPLE)
    sow = sum_of_weights(path, weight_index=1)
    # CutBookkeepers_weight_1Aux. AllExecutedEvents (read back with uproot 5.7.7).
    assert sow.sum_of_weights == pytest.approx(81566.96978759766, rel=1e-12)
    assert sow.sum_of_weights_squared == pytest.approx(66537958.86838786, rel=1e-12)
    assert sow.source.startswith("CutBookkeepers_weight_1 AllExecutedEvents/StreamAOD")
    assert sow.weight_name == "nominal"  # weightNames = ['Default', 'nominal', ...]
    with pytest.raises(BookkeepingError, match=r"194 MC weight\(s\) \(valid indices 0..193\)"):
        sum_of_weights(path, weight_index=194)


def test_unreadable_cutbookkeepers(shared_file: SharedFile) -> None:
    path = shared_file(ISSUE_123A)
    with pytest.raises(BookkeepingError) as info:
        sum_of_weights(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "unsplit" in msg
    for alternative in ("--from-events", "over-normalizes", "--sumw", "--cutflow"):
        assert alternative in msg
    # The suggested alternative works: the same 100 events as 123b.
    events = sum_of_weights(path, method="events")
    assert events.sum_of_weights == pytest.approx(SUMW_123B, rel=1e-12)
    assert events.dsid == 410470  # from FileMetaDataAuxDyn.mcProcID


def test_missing_metadata(shared_file: SharedFile) -> None:
    path = shared_file(NO_METADATA)
    with pytest.raises(BookkeepingError) as info:
        sum_of_weights(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "MetaData" in msg
    assert "--from-events" in msg
    assert "--sumw" in msg
    with pytest.raises(BookkeepingError, match="no MetaData tree"):
        sum_of_weights(path, method="cutbookkeepers")


def test_nanoaod_runs_tree(shared_file: SharedFile) -> None:
    path = shared_file(NANO_DY)
    sow = sum_of_weights(path)
    assert sow.kind == "runs-tree"
    assert sow.sum_of_weights == pytest.approx(NANO_SUMW, rel=1e-12)
    assert sow.n_events == NANO_COUNT
    genweight_sumw2 = uproot.open(path)["Runs"]["genEventSumw2_"].array(library="np")
    assert sow.sum_of_weights_squared == pytest.approx(float(genweight_sumw2[0]), rel=1e-12)
    assert sow.source == "Runs tree genEventSumw_ (1 entry)"
    events = sum_of_weights(path, method="events")
    assert events.sum_of_weights == pytest.approx(578762.435546875, rel=1e-12)
    assert events.n_events == 40
    with pytest.raises(BookkeepingError, match="only the nominal"):
        sum_of_weights(path, weight_index=1)


def test_cutflow_histogram(shared_file: SharedFile) -> None:
    path = shared_file(CUTFLOW)
    sow = sum_of_weights(path, method="cutflow", cutflow="TwoTagCutflow")
    assert sow.sum_of_weights == pytest.approx(20000.0, rel=1e-12)
    assert sow.source == "cutflow TwoTagCutflow[Initial]"
    assert sow.kind == "cutflow"
    # cutflow= alone selects the method; another bin by label.
    ntuple = sum_of_weights(path, cutflow="TwoTagCutflow", cutflow_bin="NTuple")
    assert ntuple.sum_of_weights == pytest.approx(10252.0, rel=1e-12)
    with pytest.raises(MissingObjectError, match="close matches: Initial"):
        sum_of_weights(path, cutflow="TwoTagCutflow", cutflow_bin="Initia")
    with pytest.raises(MissingObjectError, match="close matches: TwoTagCutflow"):
        sum_of_weights(path, cutflow="TwoTagCutflw")
    with pytest.raises(BookkeepingError, match="FourTagCutflow, TwoTagCutflow"):
        sum_of_weights(path, method="cutflow")
    # auto finds no bookkeeping tree but points at the cutflow histograms.
    with pytest.raises(BookkeepingError, match="cutflow-like histograms in this file"):
        sum_of_weights(path)


def test_flat_ntuple_weight_branch(shared_file: SharedFile) -> None:
    path = shared_file(HZZ)
    sow = sum_of_weights(path, method="events", weight_branch="events/EventWeight")
    assert sow.sum_of_weights == pytest.approx(16.922521416134224, rel=1e-12)
    assert sow.n_events == 2421
    assert sow.source == "events events/EventWeight (float64 sum over 2421 events)"
    same = sum_of_weights(path, method="events", weight_branch="EventWeight")
    assert same.sum_of_weights == sow.sum_of_weights
    with pytest.raises(MissingObjectError, match="EventWeight"):
        sum_of_weights(path, method="events", weight_branch="events/EventWeigh")


def test_invalid_method(shared_file: SharedFile) -> None:
    with pytest.raises(BookkeepingError, match="choose one of auto, cutbookkeepers") as info:
        sum_of_weights(shared_file(PHYSLITE), method="bookkeepers")
    assert "'bookkeepers'" in str(info.value)
    assert METHODS[0] == "auto"


def test_files_report_two_files(shared_file: SharedFile) -> None:
    # Two files of DSID 410470 (README §1.1 and §1.2: 40 events Σw 29465.34912109375 and
    # 100 events Σw 73668.0625, both CutBookkeepers StreamAOD cycle 5).
    report = sum_of_weights_files([shared_file(PHYSLITE), shared_file(ISSUE_123B)])
    assert len(report.files) == 2
    total = PHYSLITE_SUMW + 73668.0625
    assert report.total.sum_of_weights == pytest.approx(total, rel=1e-12)
    assert report.total.sum_of_weights_squared == pytest.approx(
        PHYSLITE_SUMW2 + 54269849.37820399, rel=1e-12)
    assert report.total.n_events == 140
    assert report.total.path is None
    assert report.total.dsid == 410470
    assert report.total.source == (
        "sum over 2 files (CutBookkeepers AllExecutedEvents/StreamAOD/cycle 5)")
    assert report.skim is None  # skim efficiency: see test_events_report_with_bookkeeping_reference


def test_events_report_with_bookkeeping_reference(shared_file: SharedFile) -> None:
    report = sum_of_weights_files([shared_file(PHYSLITE)], method="events",
                                  compare_events=True)
    assert report.total.kind == "events"
    assert report.total.sum_of_weights == pytest.approx(PHYSLITE_SUMW, rel=1e-12)
    assert report.skim is not None
    assert report.skim.sumw_in_files == pytest.approx(PHYSLITE_SUMW, rel=1e-12)
    assert report.skim.event_efficiency == pytest.approx(40 / 40, rel=1e-12)
    assert report.skim.weight_efficiency == pytest.approx(1.0, rel=1e-12)


def test_files_mixed_kinds(shared_file: SharedFile) -> None:
    with pytest.raises(BookkeepingError, match="different kinds"):
        sum_of_weights_files([shared_file(PHYSLITE), shared_file(NANO_DY)])


# --------------------------------------------------------------------------- synthetic files


def test_sumweights_tree_entries_and_files(tmp_path: Path) -> None:
    a = write_sumweights(tmp_path / "a.root", [100.5, 200.25], [[100.5, 110.0], [200.25, 190.0]],
                         [1000, 2000])
    b = write_sumweights(tmp_path / "b.root", [50.125], [[50.125, 55.0]], [500])
    one = sum_of_weights(a)
    assert one.kind == "sumweights-tree"
    assert one.sum_of_weights == pytest.approx(300.75, rel=1e-12)
    assert one.n_events == 3000
    assert one.sum_of_weights_squared is None
    assert one.dsid == 410470
    assert one.source == "sumWeights tree totalEventsWeighted (2 entries)"
    report = sum_of_weights_files([a, b])
    assert report.total.sum_of_weights == pytest.approx(350.875, rel=1e-12)
    assert report.total.n_events == 3500
    assert report.total.kind == "sumweights-tree"
    varied = sum_of_weights_files([a, b], weight_index=1)
    assert varied.total.sum_of_weights == pytest.approx(110.0 + 190.0 + 55.0, rel=1e-12)
    assert varied.total.source == (
        "sum over 2 files (sumWeights tree totalEventsWeighted_mc_generator_weights[1] "
        "(2 entries); sumWeights tree totalEventsWeighted_mc_generator_weights[1] (1 entry))")
    with pytest.raises(BookkeepingError, match=r"2 MC weight\(s\)"):
        sum_of_weights(a, weight_index=2)


def test_sumweights_weight_names(tmp_path: Path) -> None:
    path = write_sumweights(tmp_path / "named.root", [10.0], [[10.0, 12.5]], [7],
                            names=[" nominal ", " muR=2 "])
    assert sum_of_weights(path).weight_name == "nominal"
    varied = sum_of_weights(path, weight_index=1)
    assert varied.sum_of_weights == pytest.approx(12.5, rel=1e-12)
    assert varied.weight_name == "muR=2"


def test_runs_tree_over_two_files(tmp_path: Path) -> None:
    a = write_runs(tmp_path / "a.root", [1.5e6, 2.5e6], [3.0e9, 4.0e9], [100, 200])
    b = write_runs(tmp_path / "b.root", [4.0e6], [5.0e9], [300], suffix="")  # newer names
    sa = sum_of_weights(a)
    assert sa.sum_of_weights == pytest.approx(4.0e6, rel=1e-12)
    assert sa.sum_of_weights_squared == pytest.approx(7.0e9, rel=1e-12)
    assert sa.n_events == 300
    assert sa.source == "Runs tree genEventSumw_ (2 entries)"
    assert sum_of_weights(b).source == "Runs tree genEventSumw (1 entry)"
    report = sum_of_weights_files([a, b])
    assert report.total.sum_of_weights == pytest.approx(8.0e6, rel=1e-12)
    assert report.total.sum_of_weights_squared == pytest.approx(12.0e9, rel=1e-12)
    assert report.total.n_events == 600
    assert report.total.kind == "runs-tree"
    assert report.skim is None


def test_metadata_entries_are_summed(tmp_path: Path) -> None:
    # Two merged inputs: each MetaData entry has its own bookkeepers. Entry 1 also has a
    # later StreamDAOD copy (must not be added) and both have a kernel entry and Incomplete
    # bookkeepers of upstream steps (never used).
    entries = [
        [("AllExecutedEvents", 3, "StreamAOD", 10, 100.0, 1000.0),
         ("DAODKernel", 3, "StreamAOD", 4, 40.0, 400.0)],
        [("AllExecutedEvents", 3, "StreamAOD", 20, 250.0, 2500.0),
         ("AllExecutedEvents", 4, "StreamDAOD_PHYSLITE", 20, 250.0, 2500.0),
         ("AllExecutedEvents", 1, "StreamAOD", 20, 999.0, 9999.0)],
    ]
    incomplete = [("AllExecutedEvents", 1, "StreamAOD", 5000, 1.0e6, 1.0e9)]
    path = write_metadata(tmp_path / "merged.root", entries, incomplete)
    sow = sum_of_weights(path)
    assert sow.sum_of_weights == pytest.approx(350.0, rel=1e-12)
    assert sow.sum_of_weights_squared == pytest.approx(3500.0, rel=1e-12)
    assert sow.n_events == 30
    assert sow.source == (
        "CutBookkeepers AllExecutedEvents/StreamAOD/cycle 3 summed over 2 MetaData entries")


def test_metadata_fallback_without_streamaod(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    entries = [[("AllExecutedEvents", 7, "StreamDAOD_PHYS", 10, 60.0, 600.0),
                ("AllExecutedEvents", 6, "StreamESD", 10, 50.0, 500.0)]]
    path = write_metadata(tmp_path / "noaod.root", entries)
    with caplog.at_level(logging.WARNING, logger="recastkit.bookkeeping"):
        sow = sum_of_weights(path)
    assert sow.sum_of_weights == pytest.approx(50.0, rel=1e-12)
    assert sow.source == (
        "CutBookkeepers AllExecutedEvents/StreamESD/cycle 6 (no StreamAOD entry: "
        "lowest cycle used)")
    assert "lowest-cycle" in caplog.text


def test_metadata_without_allexecutedevents(tmp_path: Path) -> None:
    path = write_metadata(tmp_path / "nokernel.root",
                          [[("AllExecutedEvent", 1, "StreamAOD", 1, 1.0, 1.0)]])
    with pytest.raises(BookkeepingError, match="close matches: AllExecutedEvent"):
        sum_of_weights(path)
    with pytest.raises(BookkeepingError, match=r"1 MC weight\(s\)"):
        sum_of_weights(path, weight_index=3)


def test_skim_efficiency_of_a_skimmed_derivation(tmp_path: Path) -> None:
    # 10 generated events with Σw = 100; the derivation kept 4 of them (two weights each).
    path = write_metadata(tmp_path / "daod.root",
                          [[("AllExecutedEvents", 0, "StreamAOD", 10, 100.0, 1200.0)]])
    weights = ak.values_astype(ak.Array([[8.0, 9.0], [12.0, 11.0], [5.0, 6.0], [15.0, 14.0]]),
                               np.float32)
    with uproot.update(path) as f:
        f.mktree("CollectionTree", {"EventInfoAuxDyn.mcEventWeights": weights})
    report = sum_of_weights_files([path], compare_events=True)
    assert report.total.sum_of_weights == pytest.approx(100.0, rel=1e-12)
    assert report.skim == SkimInfo(n_events_in_files=4, sumw_in_files=40.0,
                                   event_efficiency=0.4, weight_efficiency=0.4)
    events = sum_of_weights(path, method="events", weight_index=1)
    assert events.sum_of_weights == pytest.approx(9.0 + 11.0 + 6.0 + 14.0, rel=1e-12)
    assert events.sum_of_weights_squared == pytest.approx(81 + 121 + 36 + 196, rel=1e-12)


def test_events_float64_accumulation(tmp_path: Path) -> None:
    # 2**24 + 1 + 1 is exact in float64 but rounds back to 2**24 in float32.
    weights = np.array([16777216.0, 1.0, 1.0], dtype=np.float32)
    assert float(np.sum(weights)) == 16777216.0
    path = tmp_path / "flat.root"
    with uproot.recreate(path) as f:
        f.mktree("nominal", {"weight_mc": weights, "x": np.arange(3, dtype=np.float32)})
    sow = sum_of_weights(path, method="events", weight_branch="weight_mc")
    assert sow.sum_of_weights == 16777218.0
    assert sow.sum_of_weights_squared == pytest.approx(16777216.0**2 + 2.0, rel=1e-15)
    assert sow.n_events == 3
    with pytest.raises(BookkeepingError, match="one weight per event"):
        sum_of_weights(path, method="events", weight_branch="weight_mc", weight_index=1)
    with pytest.raises(BookkeepingError, match="no per-event generator weights"):
        sum_of_weights(path, method="events")


def test_not_root_and_truncated(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not a ROOT file\n")
    with pytest.raises(RootFileError, match="not a ROOT file") as info:
        sum_of_weights(text)
    assert str(text) in str(info.value)
    with pytest.raises(RootFileError, match="no such file"):
        sum_of_weights(tmp_path / "missing.root")
    good = write_runs(tmp_path / "good.root", [1.0], [1.0], [1])
    data = good.read_bytes()
    cut = tmp_path / "truncated.root"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RootFileError, match="truncated") as info:
        sum_of_weights(cut)
    assert str(cut) in str(info.value)


def test_explicit_value() -> None:
    sow = explicit_sum_of_weights(1234.5)
    assert sow == SumOfWeights(sum_of_weights=1234.5, sum_of_weights_squared=None,
                               n_events=None, source="user value", path=None, kind="user")
    assert sow.n_effective is None
    assert explicit_sum_of_weights(2.0, source="AMI").source == "AMI"
    with pytest.raises(BookkeepingError, match="finite non-zero"):
        explicit_sum_of_weights(float("nan"))
    with pytest.raises(BookkeepingError, match="finite non-zero"):
        explicit_sum_of_weights(0.0)


def test_no_files() -> None:
    with pytest.raises(BookkeepingError, match="no input files"):
        sum_of_weights_files([])


def test_nanoaod_variation_sum_of_weights(shared_file):
    """Σ genWeight × LHEScaleWeight[i] = LHEScaleSumw[i] × genEventSumw (Runs read here)."""
    from recastkit.bookkeeping import nanoaod_variation_sum_of_weights

    path = shared_file(NANO_DY)
    runs = uproot.open(path)["Runs"]
    gsum = runs["genEventSumw_"].array(library="np").astype(float)
    for branch, sums in (("LHEScaleWeight", "LHEScaleSumw_"), ("LHEPdfWeight", "LHEPdfSumw_")):
        ratios = runs[sums].array(library="np")
        expected = sum(float(r[3]) * g for r, g in zip(ratios, gsum, strict=True))
        got = nanoaod_variation_sum_of_weights(path, branch, 3)
        assert got.sum_of_weights == pytest.approx(expected, rel=1e-14)
    with pytest.raises(BookkeepingError, match="out of range"):
        nanoaod_variation_sum_of_weights(path, "LHEScaleWeight", 9)
    with pytest.raises(BookkeepingError, match="known: LHEScaleWeight"):
        nanoaod_variation_sum_of_weights(path, "PSWeight", 0)


# --------------------------------------------------------------------------- one sample only


def test_same_file_twice_is_an_error(tmp_path: Path) -> None:
    a = write_sumweights(tmp_path / "a.root", [10.0], [[10.0]], [5])
    # By path, and through another spelling of the same path.
    for second in (a, tmp_path / "." / "a.root"):
        with pytest.raises(BookkeepingError, match=r"a\.root and .*a\.root are the same file"):
            sum_of_weights_files([a, second])
    # A byte copy has the same ROOT file UUID.
    copy = tmp_path / "copy.root"
    shutil.copyfile(a, copy)
    with pytest.raises(BookkeepingError, match=r"a\.root and .*copy\.root are copies of one "
                                               r"ROOT file \(same file UUID"):
        sum_of_weights_files([a, copy])
    # Two distinct files of one DSID add up: 10 + 2.5.
    b = write_sumweights(tmp_path / "b.root", [2.5], [[2.5]], [1])
    assert sum_of_weights_files([a, b]).total.sum_of_weights == 12.5


def test_files_of_two_dsids(tmp_path: Path) -> None:
    a = write_sumweights(tmp_path / "a.root", [10.0], [[10.0]], [5], dsid=410470)
    b = write_sumweights(tmp_path / "b.root", [4.0], [[4.0]], [2], dsid=345055)
    with pytest.raises(BookkeepingError,
                       match=r"2 samples \(DSID 345055: .*b\.root; DSID 410470: .*a\.root\).*"
                             r"--allow-mixed-dsids"):
        sum_of_weights_files([a, b])
    report = sum_of_weights_files([a, b], allow_mixed_dsids=True)
    assert report.total.sum_of_weights == 14.0
    assert report.total.dsid is None
    assert "files of DSIDs 345055, 410470 summed as one sample (--allow-mixed-dsids)" in (
        report.total.source)
