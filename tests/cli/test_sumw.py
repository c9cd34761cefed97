"""Tests of ``recastkit sumw`` through click's CliRunner."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from recastkit.cli import main

PHYSLITE = "root/DAOD_PHYSLITE_21.2.108.0.art.pool.root"
ISSUE_123B = "root/uproot-issue-123b.root"
ISSUE_123A = "root/uproot-issue-123a.root"
NO_METADATA = "root/PHYSLITE_example.root"
NANO_DY = "root/nano_dy.root"
CUTFLOW = "root/uproot-issue243-new.root"

SharedFile = Callable[[str], Path]

ROW_KEYS = {"path", "sum_of_weights", "sum_of_weights_squared", "n_events", "source",
            "weight_index", "weight_name", "kind", "dsid", "file_uuid"}

PHYSLITE_SUMW = 29465.34912109375
PHYSLITE_SUMW2 = 21705176.079937518


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["sumw", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_two_files_with_skim(shared_file: SharedFile) -> None:
    # Two files of DSID 410470 (README §1.1 and §1.2, both CutBookkeepers StreamAOD cycle 5).
    path = str(shared_file(PHYSLITE))
    other = str(shared_file(ISSUE_123B))
    code, out, err = run(path, other, "--json")
    assert code == 0, err
    doc = json.loads(out)  # exactly one JSON document on stdout
    assert set(doc) == {"files", "total"}
    assert len(doc["files"]) == 2
    expected = {path: (PHYSLITE_SUMW, PHYSLITE_SUMW2, 40),
                other: (73668.0625, 54269849.37820399, 100)}
    for row in doc["files"]:
        assert set(row) == ROW_KEYS
        sumw, sumw2, n = expected[row["path"]]
        assert row["sum_of_weights"] == pytest.approx(sumw, rel=1e-12)
        assert row["sum_of_weights_squared"] == pytest.approx(sumw2, rel=1e-12)
        assert row["n_events"] == n
        assert row["source"] == "CutBookkeepers AllExecutedEvents/StreamAOD/cycle 5"
        assert row["kind"] == "cutbookkeepers"
        assert row["weight_name"] == "nominal"
        assert row["dsid"] == 410470
    assert set(doc["total"]) == ROW_KEYS - {"path"}
    assert doc["total"]["sum_of_weights"] == pytest.approx(PHYSLITE_SUMW + 73668.0625,
                                                           rel=1e-12)
    assert doc["total"]["n_events"] == 140
    # The skim efficiency of one (unskimmed) file.
    code, out, err = run(path, "--compare-events", "--json")
    assert code == 0, err
    assert json.loads(out)["skim"] == {"n_events_in_files": 40, "sumw_in_files": PHYSLITE_SUMW,
                                       "event_efficiency": 1.0, "weight_efficiency": 1.0}


def test_same_file_twice_or_copy(shared_file: SharedFile, tmp_path: Path) -> None:
    """`recastkit sumw A.root A.root` (issue 7): an error naming both, exit 2."""
    path = str(shared_file(CUTFLOW))
    code, _, err = run(path, path)
    assert code == 2
    assert f"{path} and {path} are the same file" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    copy = tmp_path / "copy.root"
    shutil.copyfile(path, copy)
    code, _out, err = run(path, str(copy), "--cutflow", "TwoTagCutflow")
    assert code == 2
    assert f"{path} and {copy} are copies of one ROOT file (same file UUID" in err


def test_json_weight_index(shared_file: SharedFile) -> None:
    code, out, err = run(str(shared_file(PHYSLITE)), "--weight-index", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert "skim" not in doc
    assert doc["total"]["sum_of_weights"] == pytest.approx(29828.396423339844, rel=1e-12)
    assert doc["total"]["weight_index"] == 1
    assert doc["total"]["weight_name"] == "muR = 1.0, muF = 2.0"


def test_human_table_full_precision(shared_file: SharedFile) -> None:
    code, out, err = run(str(shared_file(NANO_DY)))
    assert code == 0, err
    assert repr(15166686735.858717) in out  # repr, not rounded
    assert "850098" in out
    assert "TOTAL" in out
    assert "Runs tree genEventSumw_" in out


def test_from_events_warns(shared_file: SharedFile) -> None:
    code, out, err = run(str(shared_file(PHYSLITE)), "--from-events", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["total"]["sum_of_weights"] == pytest.approx(PHYSLITE_SUMW, rel=1e-12)
    assert doc["total"]["kind"] == "events"
    assert "over-normalized" in err


def test_cutflow_option(shared_file: SharedFile) -> None:
    code, out, err = run(str(shared_file(CUTFLOW)), "--cutflow", "TwoTagCutflow", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["total"]["sum_of_weights"] == 20000.0
    assert doc["total"]["source"] == "cutflow TwoTagCutflow[Initial]"


@pytest.mark.parametrize("relpath", [ISSUE_123A, NO_METADATA])
def test_bookkeeping_errors_exit_2(shared_file: SharedFile, relpath: str) -> None:
    path = str(shared_file(relpath))
    code, out, err = run(path)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert path in lines[0]
    assert "--from-events" in lines[0]
    assert "--sumw" in lines[0]


def test_bad_files_exit_2(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just text\n")
    code, _, err = run(str(text))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "not a ROOT file" in err
    code, _, err = run(str(tmp_path / "missing.root"))
    assert code == 2
    assert "no such file" in err
    good = tmp_path / "runs.root"
    with uproot.recreate(good) as f:
        f.mktree("Runs", {"genEventSumw_": np.array([2.5]), "genEventCount_": np.array([3])})
    code, out, err = run(str(good), "--json")
    assert code == 0, err
    assert json.loads(out)["total"]["sum_of_weights"] == 2.5
    data = good.read_bytes()
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run(str(cut))
    assert code == 2
    assert "truncated" in err


def test_usage_errors(shared_file: SharedFile) -> None:
    path = str(shared_file(NANO_DY))
    assert run(path, "--from-events", "--method", "runs-tree")[0] == 2
    assert run(path, "--method", "cutflow")[0] == 2
    assert run(path, "--method", "bogus")[0] == 2
    assert run(path, "--weight-index", "-1")[0] == 2
    assert run()[0] == 2
    code, _, err = run(path, "--weight-index", "1")
    assert code == 2
    assert "only the nominal" in err
