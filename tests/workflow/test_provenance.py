"""``manifest.json`` and ``recastkit provenance``: every input, record, ledger and version."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from recastkit import __version__
from recastkit.cli import main
from recastkit.exceptions import ConfigError
from recastkit.workflow.provenance import read_manifest
from recastkit.workflow.steps import file_identity


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_lists_inputs_with_checksums(tiny_run: Any) -> None:
    m = json.loads((tiny_run.result_dir / "manifest.json").read_text())
    inputs = {i["sample"]: i for i in m["inputs"]}
    assert set(inputs) == {"sig", "dijet"}
    for sample in ("sig", "dijet"):
        path = Path(inputs[sample]["path"])
        assert inputs[sample]["method"] == "sha256"
        assert inputs[sample]["sha256"] == _sha256(path)
        assert inputs[sample]["size"] == path.stat().st_size
    tables = m["catalog"]["tables"]
    assert [Path(t["path"]).name for t in tables] == ["xsec.txt"]
    assert tables[0]["sha256"] == _sha256(Path(tables[0]["path"]))


def test_manifest_spec_hash_versions_command_times(tiny_run: Any) -> None:
    m = read_manifest(tiny_run.result_dir)
    spec_path = Path(m["analysis"]["spec"])
    assert m["analysis"]["spec_sha256"] == _sha256(spec_path)
    assert m["analysis"]["name"] == "tiny"
    assert m["analysis"]["signal"] == "sig"
    assert m["analysis"]["signal_replaced"] is False
    sw = m["software"]
    assert sw["recastkit"] == __version__
    assert sw["python"] == ".".join(map(str, sys.version_info[:3]))
    for pkg in ("uproot", "awkward", "pyhf", "numpy"):
        assert sw[pkg] == metadata.version(pkg)
    assert m["command"] == ["recastkit", "run", "analysis.yml"]
    start = dt.datetime.fromisoformat(m["started_utc"])
    end = dt.datetime.fromisoformat(m["finished_utc"])
    assert start.utcoffset() == dt.timedelta(0)
    assert start <= end
    assert [s["name"] for s in m["steps"]][-1] == "fit-sig"


def test_manifest_records_catalog_rows_ledgers_and_sumw_sources(tiny: Any,
                                                                 tiny_run: Any) -> None:
    m = read_manifest(tiny_run.result_dir)
    (record,) = m["catalog"]["records"]
    assert record["sample"] == "sig"
    assert record["dsid"] == 345055
    assert record["etag"] == "e5706"
    assert record["xsec_fb"] == pytest.approx(tiny.XSEC_PB * 1000, rel=1e-12)
    assert record["source"] == "xsec.txt:2"
    samples = {s["name"]: s for s in m["samples"]}
    assert samples["sig"]["ledger"]["scale"] == pytest.approx(0.922008, abs=5e-7)
    assert "Runs tree" in samples["sig"]["sum_of_weights_source"]
    assert samples["dijet"]["ledger"]["xsec_fb"] == 2000.0
    assert samples["mock"]["ledger"] is None
    assert "mock" in samples["mock"]["source"]
    assert "Poisson toy" in samples["data"]["source"]


def test_provenance_command(tiny_run: Any) -> None:
    res = CliRunner().invoke(main, ["provenance", str(tiny_run.result_dir)])
    assert res.exit_code == 0, res.output
    for text in ("Input files", "Catalog records used", "xsec.txt:2", "Ledger of sig",
                 "0.922008", "Software", "pyhf", "Steps", "fit-sig"):
        assert text in res.stdout, text
    res = CliRunner().invoke(main, ["provenance", str(tiny_run.result_dir), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout) == json.loads(
        (tiny_run.result_dir / "manifest.json").read_text())


def test_provenance_of_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no manifest"):
        read_manifest(tmp_path)
    res = CliRunner().invoke(main, ["provenance", str(tmp_path)])
    assert res.exit_code == 2
    assert "no manifest" in res.stderr


def test_big_files_are_identified_by_size_mtime_uuid(
        tiny_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import uproot

    from recastkit.workflow import steps

    monkeypatch.setattr(steps, "CHECKSUM_MAX_BYTES", 10)
    path = next(tiny_run.outdir.glob("steps/generate-sig-*/sig.root"))
    ident = file_identity(path)
    assert ident["method"] == "size+mtime+uuid"
    assert ident["uuid"] == str(uproot.open(path).file.uuid)
    assert ident["mtime_ns"] == path.stat().st_mtime_ns
    assert "sha256" not in ident
