from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.metadata import read_table

PMG_EXCERPT = "xsec/PMGTools/PMGxsecDB_mc16_excerpt_345053-345058.txt"
SUSY = "xsec/SUSYTools/mc16_13TeV_Backgrounds.txt"


@pytest.fixture
def imported(tmp_path: Path, shared_file: Callable[[str], Path]) -> Path:
    db = tmp_path / "cat.sqlite"
    result = CliRunner().invoke(main, ["xsec", "import", str(shared_file(PMG_EXCERPT)),
                                       str(shared_file(SUSY)), "--catalog", str(db)])
    assert result.exit_code == 0, result.output
    assert "PMGxsecDB_mc16_excerpt_345053-345058.txt" in result.output
    assert "654" in result.output
    # The 2 interference samples of SUSYTools (342098, 342287) are imported and flagged.
    assert "mc16_13TeV_Backgrounds.txt: 2 record(s) with a negative σ (interference samples) " \
        "imported and flagged" in result.output
    return db


def test_done_when_show_345055(imported: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["xsec", "show", "345055", "--catalog", str(imported)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "44.837" in out
    assert "76.107" in out
    assert "PMGxsecDB_mc16_excerpt_345053-345058.txt:4" in out
    assert "mc16_13TeV_Backgrounds.txt:653" in out
    assert "[branching_ratio]" in out
    assert "BR(H→bb) = 0.5824" in out

    result = runner.invoke(main, ["xsec", "show", "345055", "--catalog", str(imported),
                                  "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    records = doc["records"]
    assert [r["xsec_fb"] for r in records] == [pytest.approx(44.837, rel=1e-12),
                                               pytest.approx(76.107, rel=1e-12)]
    assert [r["source"] for r in records] == ["PMGxsecDB_mc16_excerpt_345053-345058.txt:4",
                                              "mc16_13TeV_Backgrounds.txt:653"]
    for key in ("dsid", "etag", "physics_short", "xsec_fb", "filter_eff", "k_factor",
                "rel_unc_up", "rel_unc_down", "source"):
        assert key in records[0]
    assert records[0]["etag"] == "e5706"
    assert records[1]["etag"] is None
    (conflict,) = doc["conflicts"]
    assert conflict["kind"] == "branching_ratio"
    assert conflict["ratio"] == pytest.approx(44.837 / 76.107, rel=1e-12)
    assert "76.107 fb" in conflict["message"]


def test_show_by_dataset_name_and_etag(imported: Path) -> None:
    name = ("mc16_13TeV.345058.PowhegPythia8EvtGen_NNPDF3_AZNLO_ggZH125_vvbb.deriv."
            "DAOD_EXOT27.e6004_s3126_r10724_p3840")
    result = CliRunner().invoke(main, ["xsec", "show", name, "--catalog", str(imported),
                                       "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    # e6004 row of the PMG excerpt and the e-tag-less SUSYTools row: 0.01138 vs 0.01139 pb.
    assert [(r["etag"], r["xsec_fb"]) for r in doc["records"]] == [
        ("e6004", pytest.approx(11.38, rel=1e-12)), (None, pytest.approx(11.39, rel=1e-12))
    ]
    (conflict,) = doc["conflicts"]
    assert conflict["kind"] == "typo"  # one digit apart, within the 1e-3 tolerance
    result = CliRunner().invoke(main, ["xsec", "show", "345058", "--etag", "e5706",
                                       "--catalog", str(imported), "--json"])
    doc = json.loads(result.output)
    assert [r["etag"] for r in doc["records"]] == ["e5706", None]
    assert doc["conflicts"][0]["kind"] == "value"


def test_show_missing_is_one_line_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["xsec", "show", "999999", "--catalog",
                                       str(tmp_path / "empty.sqlite")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "recastkit xsec import" in lines[0]
    assert "999999" in lines[0]


def test_import_bad_table_and_bad_format(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("hello world\n")
    result = CliRunner().invoke(main, ["xsec", "import", str(bad), "--catalog",
                                       str(tmp_path / "c.sqlite")])
    assert result.exit_code == 2
    assert "bad.txt" in result.output
    assert "pmg, susytools" in result.output
    result = CliRunner().invoke(main, ["xsec", "import", str(bad), "--format", "csv"])
    assert result.exit_code == 2
    assert "'csv' is not one of" in result.output


def test_export_and_sources(imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    runner = CliRunner()
    result = runner.invoke(main, ["xsec", "export", str(out), "--catalog", str(imported)])
    assert result.exit_code == 0, result.output
    assert "wrote 661 records" in result.output  # 7 + 654 (2 of them negative σ)
    assert len(read_table(out).records) == 661
    result = runner.invoke(main, ["xsec", "export", str(tmp_path / "zh.txt"), "--dsid",
                                  "345055", "--catalog", str(imported)])
    assert "wrote 2 records" in result.output
    result = runner.invoke(main, ["xsec", "sources", "--catalog", str(imported), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [(Path(s["location"]).name, s["format"], s["n_records"], s["n_skipped"])
            for s in doc["sources"]] == [
        ("PMGxsecDB_mc16_excerpt_345053-345058.txt", "pmg", 7, 0),
        ("mc16_13TeV_Backgrounds.txt", "susytools", 654, 0),
    ]
    result = runner.invoke(main, ["xsec", "sources", "--catalog", str(imported)])
    assert result.exit_code == 0
    assert "susytools" in result.output


def test_import_json_and_env_catalog(tmp_path: Path, shared_file: Callable[[str], Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "env.sqlite"
    monkeypatch.setenv("RECASTKIT_CATALOG", str(db))
    result = CliRunner().invoke(main, ["xsec", "import", str(shared_file(PMG_EXCERPT)),
                                       "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["catalog"] == str(db)
    assert doc["imports"][0]["n_records"] == 7
    again = json.loads(CliRunner().invoke(main, ["xsec", "import",
                                                 str(shared_file(PMG_EXCERPT)), "--json"]
                                          ).output)
    assert again["imports"][0]["replaced"] == 7


def test_negative_xsec_flagged_in_show(imported: Path) -> None:
    result = CliRunner().invoke(main, ["xsec", "show", "342098", "--catalog", str(imported),
                                       "--json"])
    assert result.exit_code == 0, result.output
    (rec,) = json.loads(result.output)["records"]
    # SUSYTools row: 342098 ... -0.033518 [pb] 1.0 1.0 0.0
    assert rec["xsec_fb"] == pytest.approx(-33.518, rel=1e-12)
    assert rec["negative"] is True
    assert rec["flags"] == ["negative σ (interference)"]
    result = CliRunner().invoke(main, ["xsec", "show", "342098", "--catalog", str(imported)])
    assert "negative σ (interference)" in result.output


def test_topdataprep_placeholders_counted(tmp_path: Path,
                                          shared_file: Callable[[str], Path]) -> None:
    result = CliRunner().invoke(main, [
        "xsec", "import", str(shared_file("xsec/TopDataPreparation/XSection-MC15-13TeV.data")),
        "--catalog", str(tmp_path / "c.sqlite"), "--json"])
    assert result.exit_code == 0, result.output
    (imp,) = json.loads(result.output)["imports"]
    # README §3.3: 2162 rows, of which 302 are "DSID 0 0 shower" placeholders.
    assert (imp["n_records"], imp["n_skipped"], imp["n_placeholders"]) == (1860, 302, 302)


def test_show_etag_rules(imported: Path) -> None:
    # e5707 (a typo of e5706) matches no row: an error listing the e-tags, never the
    # e-tag-less SUSYTools record.
    result = CliRunner().invoke(main, ["xsec", "show", "345055", "--etag", "e5707",
                                       "--catalog", str(imported)])
    assert result.exit_code == 2
    assert "e-tags in the catalog for it: e5706" in result.stderr
    result = CliRunner().invoke(main, ["xsec", "show", "345055", "--etag", "5706",
                                       "--catalog", str(imported)])
    assert result.exit_code == 2
    assert "--etag '5706' is not an e-tag" in result.stderr
