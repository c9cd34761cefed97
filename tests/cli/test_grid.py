"""``recastkit grid`` on the published ATLAS SUSY-2018-31 likelihood (HEPData)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from recastkit.cli import main

REGION_A = "likelihoods/sbottom_ins1748602/RegionA"


def test_one_point_matches_published_pyhf_regression(
        shared_file: Callable[[str], Path], tmp_path: Path) -> None:
    bkg = shared_file(f"{REGION_A}/BkgOnly.json")
    patch = shared_file(f"{REGION_A}/patch.sbottom_1300_205_60.json")
    out = tmp_path / "grid.json"
    result = CliRunner().invoke(main, ["grid", str(bkg), str(patch), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (point,) = doc["points"]
    assert point["name"] == "sbottom_1300_205_60"
    # pyhf tests/test_regression.py (sbottom RegionA 1300_205_60): CLs_obs = 0.24443627759
    assert point["cls_observed"] == pytest.approx(0.24443627759, rel=1e-5)
    assert point["excluded"] is False
    assert json.loads(out.read_text())["points"][0]["cls_observed"] == point["cls_observed"]


def test_folder_layout(shared_file: Callable[[str], Path], tmp_path: Path) -> None:
    folder = tmp_path / "RegionA"
    folder.mkdir()
    shutil.copy(shared_file(f"{REGION_A}/BkgOnly.json"), folder / "BkgOnly.json")
    shutil.copy(shared_file(f"{REGION_A}/patch.sbottom_1300_205_60.json"),
                folder / "patch.sbottom_1300_205_60.json")
    result = CliRunner().invoke(main, ["grid", str(folder)])
    assert result.exit_code == 0, result.output
    assert "sbottom_1300_205_60" in result.stdout
    assert "allowed" in result.stdout


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["grid", str(empty)])
    assert result.exit_code == 2
    assert "BkgOnly.json" in result.stderr
    bad = tmp_path / "BkgOnly.json"
    bad.write_text("{not json")
    patch = tmp_path / "patch.x.json"
    patch.write_text("[]")
    result = CliRunner().invoke(main, ["grid", str(bad), str(patch)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.output
