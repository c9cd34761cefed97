"""``recastkit limit`` on workspaces, patches and patchsets, against pyhf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from recastkit.cli import main


def _workspace() -> dict[str, Any]:
    return {
        "channels": [{"name": "sr", "samples": [
            {"name": "signal", "data": [12.0, 11.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "background", "data": [50.0, 52.0], "modifiers": [
                {"name": "bkg_unc", "type": "shapesys", "data": [3.0, 7.0]}]}]}],
        "observations": [{"name": "sr", "data": [51.0, 48.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


#: pyhf 0.7.6 ``toms748_scan(rtol=1e-6)`` on this workspace (observed, median expected).
PYHF_OBS = 1.0115693
PYHF_EXP_MEDIAN = 1.0623469


def test_limit_json_and_table(tmp_path: Path) -> None:
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(_workspace()))
    res = CliRunner().invoke(main, ["limit", str(ws), "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["path"] == "fast"
    assert doc["observed"] == pytest.approx(PYHF_OBS, rel=1e-3)
    assert doc["expected"][2] == pytest.approx(PYHF_EXP_MEDIAN, rel=1e-3)
    assert doc["expected"] == sorted(doc["expected"])
    assert doc["cl"] == 0.95
    table = CliRunner().invoke(main, ["limit", str(ws), "--cl", "0.9", "--test-stat", "q"])
    assert table.exit_code == 0, table.stderr
    assert "90% CL upper limits on mu (q)" in table.stdout
    assert "fast path" in table.stdout
    assert "Expected median" in table.stdout


def test_limit_with_patch_and_patchset(tmp_path: Path) -> None:
    bkg = _workspace()
    bkg["channels"][0]["samples"] = bkg["channels"][0]["samples"][1:]
    (tmp_path / "bkg.json").write_text(json.dumps(bkg))
    ops = [{"op": "add", "path": "/channels/0/samples/0",
            "value": _workspace()["channels"][0]["samples"][0]}]
    (tmp_path / "patch.json").write_text(json.dumps(ops))
    patchset = {"metadata": {"name": "x"}, "version": "1.0.0",
                "patches": [{"metadata": {"name": "pt_a", "values": [1]}, "patch": ops}]}
    (tmp_path / "set.json").write_text(json.dumps(patchset))
    runner = CliRunner()
    one = runner.invoke(main, ["limit", str(tmp_path / "bkg.json"), "-p",
                               str(tmp_path / "patch.json"), "--json"])
    two = runner.invoke(main, ["limit", str(tmp_path / "bkg.json"), "-p",
                               f"{tmp_path / 'set.json'}:pt_a", "--json"])
    assert one.exit_code == 0, one.stderr
    assert two.exit_code == 0, two.stderr
    assert json.loads(one.stdout)["observed"] == pytest.approx(PYHF_OBS, rel=1e-3)
    assert json.loads(two.stdout)["observed"] == json.loads(one.stdout)["observed"]
    bad = runner.invoke(main, ["limit", str(tmp_path / "bkg.json"), "-p",
                               f"{tmp_path / 'set.json'}:pt_b"])
    assert bad.exit_code == 2
    assert "no patch named 'pt_b'; 1 patches: pt_a" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_limit_bad_inputs_are_one_line(tmp_path: Path) -> None:
    ws = _workspace()
    ws["channels"][0]["samples"][1]["data"] = [50.0, float("nan")]
    (tmp_path / "nan.json").write_text(json.dumps(ws))
    (tmp_path / "broken.json").write_text("{not json")
    for args in (["limit", str(tmp_path / "nan.json")], ["limit", str(tmp_path / "broken.json")],
                 ["limit", str(tmp_path / "missing.json")]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, (args, res.stderr)
        assert "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
