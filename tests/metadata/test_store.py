from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from recastkit.exceptions import (
    AmbiguousMetadataError,
    CatalogError,
    MissingMetadataError,
    TableFormatError,
)
from recastkit.metadata import Catalog, Source, XsecRecord
from recastkit.metadata.readers import PMG_HEADER
from recastkit.metadata.store import CATALOG_ENV
from recastkit.units import CrossSection

PMG_EXCERPT = "xsec/PMGTools/PMGxsecDB_mc16_excerpt_345053-345058.txt"
SUSY = "xsec/SUSYTools/mc16_13TeV_Backgrounds.txt"
TOP = "xsec/TopDataPreparation/XSection-MC15-13TeV.data"
HZZ = "xsec/atlas_opendata_13TeV_2020/Files_HZZ.txt"
ZH_NAME = (
    "mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
    "DAOD_EXOT27.e5706_s3126_r10724_p3840"
)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "catalog.sqlite")


def test_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = Catalog.default_path()
    assert default.name == "catalog.sqlite"
    assert "recastkit" in str(default)
    monkeypatch.setenv(CATALOG_ENV, str(tmp_path / "env.sqlite"))
    assert Catalog().path == tmp_path / "env.sqlite"
    assert Catalog(tmp_path / "explicit.sqlite").path == tmp_path / "explicit.sqlite"
    assert list(tmp_path.iterdir()) == []  # opening a catalog creates nothing


def test_import_and_query_by_every_key_form(catalog: Catalog,
                                            shared_file: Callable[[str], Path]) -> None:
    s = catalog.import_table(shared_file(PMG_EXCERPT))
    assert (s.format, s.n_records, s.n_skipped, s.replaced) == ("pmg", 7, 0, 0)
    by_int = catalog.query(345055)
    assert by_int == catalog.query("345055")
    (r,) = by_int
    assert r.xsec.value == 0.044836999999999995
    assert r.xsec.unit == "pb"
    assert r.etag == "e5706"
    assert str(r.source) == "PMGxsecDB_mc16_excerpt_345053-345058.txt:4"
    assert r.source.timestamp is not None
    assert r.source.timestamp.startswith("20")
    (by_name,) = catalog.query(ZH_NAME)
    assert by_name.xsec_fb == pytest.approx(44.837, rel=1e-12)
    assert catalog.query(ZH_NAME.replace("e5706", "e9999")) == []
    assert catalog.query("PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT") == [r]


def test_reimport_replaces(catalog: Catalog, shared_file: Callable[[str], Path]) -> None:
    path = shared_file(SUSY)
    first = catalog.import_table(path)
    second = catalog.import_table(path)
    assert (first.n_records, first.n_skipped, first.n_negative) == (654, 0, 2)
    assert second.replaced == 654
    assert len(catalog) == 654
    assert len(catalog.sources()) == 1
    info = catalog.sources()[0]
    assert (info.kind, info.format, info.n_records, info.n_skipped) == ("table", "susytools",
                                                                        654, 0)
    assert info.name == "mc16_13TeV_Backgrounds.txt"


def test_reimport_of_edited_file_replaces_its_rows(catalog: Catalog, tmp_path: Path) -> None:
    table = tmp_path / "mine.txt"
    row = "345055\t\tZH\t\t{}\t\t1.0\t\t1.0\t\t0.0\t\t0.0\t\tgen\t\te5706\n"
    table.write_text(PMG_HEADER + "\n" + row.format("0.044837"))
    catalog.import_table(table)
    table.write_text(PMG_HEADER + "\n" + row.format("0.05"))
    catalog.import_table(table)
    (r,) = catalog.query(345055)
    assert r.xsec.value == 0.05


def test_failed_import_stores_nothing(catalog: Catalog, tmp_path: Path) -> None:
    table = tmp_path / "bad.txt"
    table.write_text(PMG_HEADER + "\n345055\t\tZH\t\tnope\t\t1\t\t1\t\t0\t\t0\t\tg\t\te1\n")
    with pytest.raises(TableFormatError, match=r"bad\.txt:2"):
        catalog.import_table(table)
    assert not catalog.path.exists()


def test_lookup_etags(catalog: Catalog, shared_file: Callable[[str], Path]) -> None:
    catalog.import_table(shared_file(PMG_EXCERPT))
    with pytest.raises(AmbiguousMetadataError) as err:
        catalog.lookup(345058)
    text = str(err.value)
    assert "e5706" in text
    assert "e6004" in text
    assert "0.014299 pb" in text
    assert "0.01138 pb" in text
    assert "PMGxsecDB_mc16_excerpt_345053-345058.txt:7" in text
    assert "PMGxsecDB_mc16_excerpt_345053-345058.txt:8" in text
    assert "--etag one of e5706, e6004" in text
    assert catalog.lookup(345058, etag="e6004").xsec.value == 0.01138
    assert catalog.lookup(345058, etag="E5706").xsec.value == 0.014299
    with pytest.raises(MissingMetadataError, match="e-tags in the catalog for it: e5706, e6004"):
        catalog.lookup(345058, etag="e1")
    assert catalog.etags(345058) == ["e5706", "e6004"]


def test_lookup_two_sources(catalog: Catalog, shared_file: Callable[[str], Path]) -> None:
    catalog.import_table(shared_file(PMG_EXCERPT))
    catalog.import_table(shared_file(SUSY))
    with pytest.raises(AmbiguousMetadataError) as err:
        catalog.lookup(345055)
    text = str(err.value)
    assert "44.837 fb" in text
    assert "76.107 fb" in text
    assert "mc16_13TeV_Backgrounds.txt:653" in text
    assert "BR(H→bb)" in text
    assert isinstance(err.value, LookupError)
    # The dataset name's e-tag does not remove the e-tag-less SUSYTools row: still ambiguous.
    with pytest.raises(AmbiguousMetadataError):
        catalog.lookup(ZH_NAME)
    pmg = catalog.lookup(ZH_NAME, source="PMGxsecDB_mc16_excerpt_345053-345058.txt")
    assert pmg.xsec_fb == pytest.approx(44.837, rel=1e-12)
    susy = catalog.lookup(345055, source=str(shared_file(SUSY)))
    assert susy.xsec_fb == pytest.approx(76.107, rel=1e-12)
    assert catalog.lookup(345055, source="mc16_13TeV_Backgrounds.txt:653") == susy


def test_agreeing_sources_are_not_ambiguous(catalog: Catalog, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    src = Source("user", "typed by hand")
    base = XsecRecord(dsid=1, xsec=CrossSection(10.0, "pb"), filter_eff=0.5, source=src)
    other = XsecRecord(dsid=1, xsec=CrossSection(5.0, "pb"), filter_eff=1.0,
                       source=Source("service", "AMI 1"))
    assert catalog.add_records([base, other]) == 2
    with caplog.at_level("INFO", logger="recastkit.metadata.store"):
        r = catalog.lookup(1)
    assert r.source.kind == "user"
    assert r.effective_xsec_fb == 5000.0
    assert "2 records agree" in caplog.text
    assert {s.kind for s in catalog.sources()} == {"user", "service"}


def test_missing_suggests_import(catalog: Catalog) -> None:
    with pytest.raises(MissingMetadataError, match="recastkit xsec import") as err:
        catalog.lookup(999999)
    assert isinstance(err.value, KeyError)
    assert str(catalog.path) in str(err.value)


def test_name_keyed_opendata(catalog: Catalog, shared_file: Callable[[str], Path]) -> None:
    catalog.import_table(shared_file(HZZ))
    r = catalog.lookup("Zee")
    assert r.dsid is None
    assert r.xsec_fb == pytest.approx(1950529.5, rel=1e-12)
    assert r.sum_of_weights == 150277594200.0
    assert catalog.query("data") == []


def test_topdataprep_and_susytools_agree_on_410470(catalog: Catalog,
                                                  shared_file: Callable[[str], Path]) -> None:
    catalog.import_table(shared_file(SUSY))
    catalog.import_table(shared_file(TOP))
    records = catalog.query(410470)
    assert [r.source.name for r in records] == ["mc16_13TeV_Backgrounds.txt",
                                                "XSection-MC15-13TeV.data"]
    susy, top = records
    # 729.77 × 0.54383 × 1.13975636159 = 452.336 pb vs 396.87 × 1.1398 = 452.352 pb.
    assert susy.effective_xsec.pb == pytest.approx(452.33604, rel=1e-7)
    assert top.effective_xsec.pb == pytest.approx(452.352426, rel=1e-8)
    # They differ by 3.6e-5 relative: more than the 1e-6 agreement tolerance of lookup.
    with pytest.raises(AmbiguousMetadataError):
        catalog.lookup(410470)


def test_records_and_float_exactness(catalog: Catalog, tmp_path: Path) -> None:
    x = 0.1 + 0.2  # 0.30000000000000004: must survive SQLite bit for bit
    rec = XsecRecord(dsid=7, xsec=CrossSection(x, "nb"), filter_eff=1 / 3, k_factor=1.1,
                     etag="e1", branching_ratio=0.5824, note="n", sum_of_weights=2.5,
                     source=Source("service", "AMI q", timestamp="2024-01-01T00:00:00+00:00"))
    catalog.add_records([rec])
    (back,) = catalog.records([7])
    assert back == rec
    assert catalog.records() == [rec]
    assert catalog.records([8]) == []


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(CatalogError, match=r"bad\.sqlite"):
        Catalog(bad)


def test_wrong_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "v9.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 9")
    conn.close()
    with pytest.raises(CatalogError, match="schema version 9"):
        Catalog(path)


# ------------------------------------------------------------------------- concurrency
def _import_many(db: str, tables: list[str], repeats: int) -> None:
    with Catalog(db) as cat:
        for _ in range(repeats):
            for table in tables:
                cat.import_table(table)


def test_two_processes_import_concurrently(tmp_path: Path,
                                           shared_file: Callable[[str], Path]) -> None:
    db = str(tmp_path / "shared.sqlite")
    a = [str(shared_file(SUSY)), str(shared_file(PMG_EXCERPT))]
    b = [str(shared_file(TOP)), str(shared_file(PMG_EXCERPT))]
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method (test functions are not importable by spawn)")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_import_many, args=(db, tables, 5)) for tables in (a, b)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    cat = Catalog(db)
    assert len(cat) == 654 + 7 + 1860
    counts = {s.name: s.n_records for s in cat.sources()}
    assert counts == {"mc16_13TeV_Backgrounds.txt": 654, "XSection-MC15-13TeV.data": 1860,
                      "PMGxsecDB_mc16_excerpt_345053-345058.txt": 7}
    assert len(cat.query(345058)) == 3


def test_one_catalog_used_from_threads(catalog: Catalog,
                                       shared_file: Callable[[str], Path]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    catalog.import_table(shared_file(SUSY))
    dsids = [r.dsid for r in catalog.records()][:200]
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(lambda d: catalog.lookup(d).dsid, dsids))
    assert found == dsids
    catalog.close()
    assert len(catalog) == 654  # reopens after close
