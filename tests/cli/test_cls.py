"""``recastkit cls`` on published workspaces and patches, from files and stdin."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from recastkit.cli import main

FILTER_OBS = 0.004360634405484502  # ROOT reference, pyhf tests/test_validation.py
SBOTTOM_OBS = 0.24443627759085326  # pyhf tests/test_regression.py


def test_cls_json_from_file(shared_file: Callable[[str], Path]) -> None:
    ws = shared_file("likelihoods/pyhf_validation/shapesys_nuisparfilter_workspace.json")
    res = CliRunner().invoke(main, ["cls", str(ws), "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["CLs_obs"] == pytest.approx(FILTER_OBS, rel=1e-5)
    assert doc["CLs_exp"][2] == pytest.approx(0.004360634386335687, abs=1e-4)
    assert doc["mu"] == 1.0


def test_cls_stdin_with_patch_table(shared_file: Callable[[str], Path]) -> None:
    bkg = shared_file("likelihoods/sbottom_ins1748602/RegionA/BkgOnly.json")
    patch = shared_file("likelihoods/sbottom_ins1748602/RegionA/patch.sbottom_1300_205_60.json")
    res = CliRunner().invoke(main, ["cls", "-", "--patch", str(patch)], input=bkg.read_text())
    assert res.exit_code == 0, res.stderr
    assert "Observed" in res.stdout
    assert f"{SBOTTOM_OBS:.6g}"[:6] in res.stdout


def test_cls_q_and_mu(shared_file: Callable[[str], Path]) -> None:
    ws = shared_file("likelihoods/pyhf_validation/shapesys_nuisparfilter_workspace.json")
    res = CliRunner().invoke(main, ["cls", str(ws), "--mu", "0.5", "--test-stat", "q",
                                    "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["test_stat"] == "q"
    assert doc["mu"] == 0.5
    assert FILTER_OBS < doc["CLs_obs"] < 1.0  # a smaller μ is less excluded


def test_cls_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = CliRunner().invoke(main, ["cls", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0
    assert "bad.json: workspace is not valid JSON" in res.stderr
    invalid = tmp_path / "ws.json"
    invalid.write_text(json.dumps({"channels": []}))
    res = CliRunner().invoke(main, ["cls", str(invalid)])
    assert res.exit_code == 2
    assert "invalid pyhf workspace" in res.stderr
    res = CliRunner().invoke(main, ["cls", str(tmp_path / "missing.json")])
    assert res.exit_code == 2
    assert "missing.json: cannot read workspace" in res.stderr
