"""Tests of ``recastkit select``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.io.hists import read_hists_and_metadata

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eventfactory import make_events, write_flat


def _invoke(*args: str):
    return CliRunner().invoke(main, ["select", *map(str, args)])


def test_select_json_on_hzz(shared_file, tmp_path):
    out = tmp_path / "hzz.root"
    res = _invoke(shared_file("root/uproot-HZZ.root"), "-o", out, "--executor", "iterative",
                  "--dataset", "hzz_toy", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["output"] == str(out)
    assert doc["output_json"] == str(tmp_path / "hzz.json")
    assert doc["cutflow"][1]["n_events"] == 824
    assert doc["cutflow"][0]["sum_of_weights"] == pytest.approx(16.922521416134224, rel=1e-12)
    assert doc["dataset"] == "hzz_toy"
    assert doc["skipped_files"] == []
    hists, meta = read_hists_and_metadata(out)
    assert meta["cutflow"] == doc["cutflow"]
    assert hists["h_njets_raw"].values(flow=True).sum() == pytest.approx(16.922521416134224,
                                                                       rel=1e-12)


def test_select_human_output_with_config_and_glob(tmp_path):
    for i in range(2):
        write_flat(tmp_path / f"in{i}.root", make_events(300, seed=i))
    cfg = tmp_path / "sel.yml"
    cfg.write_text("jets: {pt_min_gev: 30}\n")
    out = tmp_path / "o.root"
    res = _invoke(str(tmp_path / "in*.root"), "-o", out, "--config", cfg, "--executor",
                  "processes", "--workers", "2", "--chunk-size", "100")
    assert res.exit_code == 0, res.output
    assert ">=2 jets pT>30 GeV" in res.output
    assert f"wrote {out}" in res.output
    assert "bookkeeping sum of weights: unavailable" in res.output
    _, meta = read_hists_and_metadata(tmp_path / "o.json")
    assert meta["n_events_processed"] == 600
    assert meta["selection"]["jets"]["pt_min_gev"] == 30


def test_select_bad_file_and_skip(tmp_path):
    good = write_flat(tmp_path / "good.root", make_events(100))
    junk = tmp_path / "junk.root"
    junk.write_text("nope")
    res = _invoke(good, junk, "-o", tmp_path / "o.root", "--executor", "iterative")
    assert res.exit_code == 2
    assert "junk.root: not a ROOT file" in res.output
    res = _invoke(good, junk, "-o", tmp_path / "o.root", "--executor", "iterative",
                  "--skip-bad-files", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [s["path"] for s in doc["skipped_files"]] == [str(junk)]
    assert doc["n_events_processed"] == 100


def test_select_sample_list(tmp_path):
    write_flat(tmp_path / "a.root", make_events(50, seed=1))
    write_flat(tmp_path / "b.root", make_events(70, seed=2))
    yml = tmp_path / "samples.yaml"
    yml.write_text("sa: {files: [a.root], dataset: mc16_13TeV.123456.x}\nsb: [b.root]\n")
    res = _invoke(yml, "-o", tmp_path / "out.root", "--executor", "iterative", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)["samples"]
    assert doc["sa"]["n_events_processed"] == 50
    assert doc["sa"]["dsid"] == 123456
    assert doc["sb"]["n_events_processed"] == 70
    assert (tmp_path / "out.sa.root").exists()
    assert (tmp_path / "out.sb.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "x.json"], "must end in .root"),
        (["-o", "x.root", "--executor", "iterative", "--scheduler", "tcp://h:1"],
         "--scheduler needs --executor dask"),
        (["-o", "x.root", "--layout", "delphes"], "'delphes' is not one of"),
    ],
)
def test_select_usage_errors(tmp_path, args, message):
    path = write_flat(tmp_path / "f.root", make_events(5))
    res = _invoke(path, *args)
    assert res.exit_code == 2
    assert message in res.output
