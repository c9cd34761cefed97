from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recastkit.exceptions import TableFormatError
from recastkit.metadata import Catalog, Source, XsecRecord, read_table, write_pmg
from recastkit.metadata.readers import PMG_HEADER
from recastkit.units import CrossSection

XSEC = "xsec/"
TABLES = [
    "PMGTools/PMGxsecDB_mc16_excerpt_345053-345058.txt",
    "SUSYTools/mc16_13TeV_Backgrounds.txt",
    "TopDataPreparation/XSection-MC15-13TeV.data",
]


def _carried(r: XsecRecord) -> tuple[object, ...]:
    """The fields the PMG format carries."""
    return (r.dsid, r.physics_short, r.xsec.value, r.xsec.unit, r.filter_eff, r.k_factor,
            r.rel_unc_up, r.rel_unc_down, r.generator, r.etag)


_text = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF,
                           exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1, max_size=30,
).filter(lambda s: s not in ("-", "#UNKNOWN#"))
_spaced = st.lists(_text, min_size=1, max_size=3).map(" ".join)
_positive = st.floats(min_value=5e-324, max_value=1e300, allow_nan=False, allow_infinity=False)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_records = st.builds(
    XsecRecord,
    dsid=st.integers(min_value=0, max_value=2**62),
    # negative σ (interference samples) are records too
    xsec=st.one_of(_positive, _positive.map(lambda v: -v)).map(lambda v: CrossSection(v, "pb")),
    filter_eff=st.floats(min_value=5e-324, max_value=1.0),
    k_factor=_positive,
    etag=st.one_of(st.none(), st.integers(min_value=0, max_value=10**9).map(lambda i: f"e{i}")),
    physics_short=st.one_of(st.none(), _text),
    generator=st.one_of(st.none(), _spaced),
    rel_unc_up=st.one_of(st.none(), _finite),
    rel_unc_down=st.one_of(st.none(), _finite),
    source=st.just(Source("user", "hypothesis")),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_records, min_size=1, max_size=20, unique_by=lambda r: (r.dsid, r.etag)))
def test_export_import_is_exact_for_arbitrary_records(records: list[XsecRecord]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.txt"
        assert write_pmg(out, records) == len(records)
        back = read_table(out)
        assert back.format == "pmg"
        assert [_carried(r) for r in back.records] == [_carried(r) for r in records]
        assert [r.source.line for r in back.records] == list(range(2, len(records) + 2))


def test_export_layout_and_name_keyed_records_left_out(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    src = Source("user", "u")
    records = [
        XsecRecord(dsid=345055, xsec=CrossSection(0.044836999999999995, "pb"), etag="e5706",
                   physics_short="ZH", generator="Powheg+Pythia8", rel_unc_up=0.0,
                   rel_unc_down=0.0, source=src),
        XsecRecord(xsec=CrossSection(1950.5295, "pb"), physics_short="Zee", source=src),
        XsecRecord(dsid=1, xsec=CrossSection(2.0, "nb"), source=src),
    ]
    out = tmp_path / "sub" / "out.txt"
    with caplog.at_level("WARNING"):
        assert write_pmg(out, records) == 2
    assert "Zee" in caplog.text
    lines = out.read_text().splitlines()
    assert lines[0] == PMG_HEADER
    assert lines[1] == (
        "345055\t\tZH\t\t0.044836999999999995\t\t1.0\t\t1.0\t\t0.0\t\t0.0\t\t"
        "Powheg+Pythia8\t\te5706"
    )
    assert lines[2] == "1\t\t-\t\t2000.0\t\t1.0\t\t1.0\t\t-\t\t-\t\t-\t\t-"
    assert not list((tmp_path / "sub").glob(".*tmp*"))  # atomic write left no temp file


def test_real_tables_round_trip(tmp_path: Path, shared_file: Callable[[str], Path],
                                caplog: pytest.LogCaptureFixture) -> None:
    first = Catalog(tmp_path / "a.sqlite")
    for table in TABLES:
        first.import_table(shared_file(XSEC + table))
    # 652 SUSYTools rows + the 2 negative (interference) rows 342098 and 342287.
    out = tmp_path / "export.txt"
    n = first.export(out)
    assert n == 7 + 654 + 1860
    assert "different values from several sources for one DSID and e-tag" in caplog.text
    # One table holding several sources' rows of a DSID (410470 from SUSYTools and from
    # TopDataPreparation, both without an e-tag) is refused on import: conflicting duplicates.
    with pytest.raises(TableFormatError, match=r"conflicting duplicate rows.*410470: line \d+"):
        Catalog(tmp_path / "mixed.sqlite").import_table(out)
    for i, table in enumerate(TABLES):
        one = Catalog(tmp_path / f"one{i}.sqlite")
        one.import_table(shared_file(XSEC + table))
        exported = tmp_path / f"export{i}.txt"
        n = one.export(exported)
        second = Catalog(tmp_path / f"b{i}.sqlite")
        summary = second.import_table(exported)
        assert (summary.format, summary.n_records, summary.n_skipped) == ("pmg", n, 0)
        assert [_carried(r) for r in second.records()] == [_carried(r) for r in one.records()]
        # Export of the re-import is byte-identical.
        out2 = tmp_path / f"export{i}b.txt"
        assert second.export(out2) == n
        assert out2.read_bytes() == exported.read_bytes()
    # A subset by DSID.
    assert first.export(tmp_path / "zh.txt", keys=[345055, 345058]) == 5


def test_nb_table_exports_in_pb(tmp_path: Path, shared_file: Callable[[str], Path]) -> None:
    cat = Catalog(tmp_path / "c.sqlite")
    cat.import_table(shared_file(XSEC + "PMGTools/PMGxsecDB_manual.txt"))
    cat.export(tmp_path / "m.txt")
    back = {r.dsid: r for r in read_table(tmp_path / "m.txt").records}
    assert back[410646].xsec.unit == "pb"
    assert back[410646].xsec.value == pytest.approx(37.937, rel=1e-15)
    assert back[300000].xsec.value == pytest.approx(3498900.0 * 1000, rel=1e-15)
