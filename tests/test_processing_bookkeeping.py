"""The selection step records the bookkeeping Σw only for an input of one sample (issue 7)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import uproot

from recastkit.processing import run_selection

sys.path.insert(0, str(Path(__file__).parent))
from eventfactory import make_events, write_flat


def _with_sumweights(path: Path, sumw: float, dsid: int) -> Path:
    """Add an AnalysisTop-style ``sumWeights`` tree (Σw of the generated sample, DSID)."""
    with uproot.update(path) as f:
        f.mktree("sumWeights", {"dsid": np.int32, "totalEventsWeighted": np.float64,
                                "totalEvents": np.uint64})
        f["sumWeights"].extend({"dsid": np.array([dsid], np.int32),
                                "totalEventsWeighted": np.array([sumw]),
                                "totalEvents": np.array([1000], np.uint64)})
    return path


def test_sumw_recorded_only_for_one_dsid(tmp_path: Path) -> None:
    a = _with_sumweights(write_flat(tmp_path / "a.root", make_events(200, seed=1)), 500.0,
                         410470)
    b = _with_sumweights(write_flat(tmp_path / "b.root", make_events(100, seed=2)), 250.0,
                         410470)
    c = _with_sumweights(write_flat(tmp_path / "c.root", make_events(100, seed=3)), 125.0,
                         345055)
    one = run_selection([a, b], executor="iterative")
    assert one.sum_of_weights.sum_of_weights == 750.0  # 500 + 250
    assert one.dsid == 410470
    assert one.metadata()["sum_of_weights"] == 750.0

    mixed = run_selection([a, c], executor="iterative")
    assert mixed.sum_of_weights.sum_of_weights is None
    assert mixed.metadata()["sum_of_weights"] is None
    error = mixed.metadata()["sum_of_weights_error"]
    assert "2 samples (DSID 345055: " in error
    assert "DSID 410470: " in error
    assert mixed.dsid is None
    # The histograms are still filled from both files (300 events).
    assert mixed.n_events == 300


def test_byte_copy_records_no_sumw(tmp_path: Path) -> None:
    a = _with_sumweights(write_flat(tmp_path / "a.root", make_events(50, seed=1)), 500.0,
                         410470)
    # The same path twice is one file (processed once, Σw 500).
    assert run_selection([a, a], executor="iterative").sum_of_weights.sum_of_weights == 500.0
    # A byte copy would count the sample twice: no Σw, and the reason.
    copy = tmp_path / "copy.root"
    copy.write_bytes(a.read_bytes())
    result = run_selection([a, copy], executor="iterative")
    assert result.sum_of_weights.sum_of_weights is None
    assert "copies of one ROOT file (same file UUID" in str(result.sum_of_weights.error)
