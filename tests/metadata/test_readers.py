from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recastkit.exceptions import TableFormatError
from recastkit.metadata.readers import (
    FORMATS,
    PMG_HEADER,
    PMG_HEADER_OLD,
    detect_format,
    read_table,
)

XSEC = "xsec/"
PMG_EXCERPT = XSEC + "PMGTools/PMGxsecDB_mc16_excerpt_345053-345058.txt"
PMG_MANUAL = XSEC + "PMGTools/PMGxsecDB_manual.txt"
SUSY = XSEC + "SUSYTools/mc16_13TeV_Backgrounds.txt"
TOP = XSEC + "TopDataPreparation/XSection-MC15-13TeV.data"
OPEN = XSEC + "atlas_opendata_13TeV_2020/Files_{}.txt"


# ------------------------------------------------------------------------- real tables
@pytest.mark.parametrize(
    ("relpath", "fmt", "n_rows", "n_records"),
    [
        (PMG_MANUAL, "pmg", 3, 3),
        (PMG_EXCERPT, "pmg", 7, 7),
        # 2 rows with negative (interference) cross sections are imported: 342098, 342287.
        (SUSY, "susytools", 654, 654),
        # 302 placeholder rows "DSID 0 0 shower" are skipped.
        (TOP, "topdataprep", 2162, 1860),
        (OPEN.format("HZZ"), "opendata", 30, 29),
        (OPEN.format("SUSY"), "opendata", 102, 101),
        (OPEN.format("WBoson"), "opendata", 62, 61),
        (OPEN.format("ZPrime"), "opendata", 61, 60),
    ],
)
def test_real_tables_row_counts(shared_file: Callable[[str], Path], relpath: str, fmt: str,
                                n_rows: int, n_records: int) -> None:
    path = shared_file(relpath)
    assert detect_format(path) == fmt
    contents = read_table(path)
    assert contents.format == fmt
    assert contents.n_rows == n_rows
    assert len(contents.records) == n_records


def test_susytools_key_row(shared_file: Callable[[str], Path]) -> None:
    contents = read_table(shared_file(SUSY))
    (r,) = [r for r in contents.records if r.dsid == 410470]
    assert r.xsec.unit == "pb"
    assert r.xsec.value == 729.77
    assert r.k_factor == 1.13975636159
    assert r.filter_eff == 0.54383
    assert r.physics_short == "PhPy8EG_A14_ttbar_hdamp258p75_nonallhad"
    assert (r.rel_unc_up, r.rel_unc_down) == (0.0, 0.0)
    assert str(r.source) == "mc16_13TeV_Backgrounds.txt:21"
    (zh,) = [r for r in contents.records if r.dsid == 345055]
    assert zh.xsec_fb == pytest.approx(76.107, rel=1e-12)
    assert contents.skipped == ()
    # Interference samples: negative σ, imported and flagged (values as in the table's rows
    # "342098 ... -0.033518 1.0 1.0 0.0" and "342287 ... -0.03351 1.34716663156 1.0 0.0").
    negative = {r.dsid: r for r in contents.records if r.negative}
    assert set(negative) == {342098, 342287}
    assert contents.n_negative == 2
    assert negative[342098].xsec_fb == pytest.approx(-33.518, rel=1e-12)
    assert negative[342287].k_factor == 1.34716663156
    assert negative[342098].flags == ("negative σ (interference)",)
    assert "negative σ" in negative[342098].describe()
    lines = Path(shared_file(SUSY)).read_text().splitlines()
    assert lines[negative[342098].source.line - 1].split()[0] == "342098"


def test_topdataprep_key_rows(shared_file: Callable[[str], Path]) -> None:
    contents = read_table(shared_file(TOP))
    by_dsid = {r.dsid: r for r in contents.records}
    assert len(by_dsid) == 1860
    r = by_dsid[410470]
    assert (r.xsec.value, r.xsec.unit, r.k_factor, r.filter_eff) == (396.87, "pb", 1.1398, 1.0)
    assert r.physics_short is None
    assert r.generator == "pythia8"
    assert r.note is not None
    assert "already includes the filter efficiency" in r.note
    assert by_dsid[410000].xsec.value == 377.9932
    assert by_dsid[410000].k_factor == 1.1949
    assert by_dsid[364100].xsec.value == 1630.2243
    assert by_dsid[364100].k_factor == 0.9751
    assert "comment: ttW,0j" in str(by_dsid[410066].note)
    assert "extra fields: 21" in str(by_dsid[303046].note)
    # 396.87 ≈ 729.77 × 0.5438: the two tables agree on σ × ε × k to 5e-5.
    assert r.effective_xsec_fb == pytest.approx(729770 * 0.54383 * 1.13975636159, rel=1e-4)
    assert all(s.placeholder for s in contents.skipped)


def test_pmg_excerpt_key_rows(shared_file: Callable[[str], Path]) -> None:
    contents = read_table(shared_file(PMG_EXCERPT))
    r = contents.records[2]
    assert r.dsid == 345055
    assert r.xsec.value == 0.044836999999999995
    assert r.xsec.unit == "pb"
    assert r.etag == "e5706"
    assert r.generator == "Powheg(v2_r3133)+Pythia8(v8.212)+EvtGen(v1.2.0)"
    assert str(r.source) == "PMGxsecDB_mc16_excerpt_345053-345058.txt:4"
    assert [(x.etag, x.xsec.value) for x in contents.records if x.dsid == 345058] == [
        ("e5706", 0.014299), ("e6004", 0.01138)
    ]


def test_pmg_manual_crosssection_column_is_nb(shared_file: Callable[[str], Path]) -> None:
    # AMI's crossSection parameter is in nb (getMetadata.py: crossSection_pb = 1000 × it).
    # 410646 Powheg Wt inclusive top: 0.037937 nb = 37.937 pb.
    contents = read_table(shared_file(PMG_MANUAL))
    wt = contents.records[1]
    assert wt.dsid == 410646
    assert wt.xsec.unit == "nb"
    assert wt.xsec.pb == pytest.approx(37.937, rel=1e-12)
    assert wt.etag is None
    assert (wt.rel_unc_up, wt.rel_unc_down) == (0.0, 0.0)
    forced = read_table(shared_file(PMG_MANUAL), xsec_unit="pb")
    assert forced.records[1].xsec.pb == 0.037937


def test_opendata_rows(shared_file: Callable[[str], Path]) -> None:
    contents = read_table(shared_file(OPEN.format("HZZ")))
    zee = contents.records[0]
    assert zee.dsid is None
    assert zee.physics_short == "Zee"
    assert zee.xsec.value == 1950.5295
    assert zee.xsec.unit == "pb"
    assert zee.sum_of_weights == 150277594200.0
    assert zee.filter_eff == 1.0
    assert contents.skipped[0].line == 2
    assert contents.skipped[0].placeholder
    ttbar = [r for r in contents.records if r.physics_short == "ttbar_lep"]
    assert ttbar[0].sum_of_weights == 49386600.0  # upstream quirk: 49296600 elsewhere
    zprime = read_table(shared_file(OPEN.format("ZPrime")))
    # Two commented-out rows (###WpqqWmlv|..., ###llll|...) are not records.
    assert "WpqqWmlv" not in {r.physics_short for r in zprime.records}


# ---------------------------------------------------------------------- getMetadata.py
def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_getmetadata_typed_header_with_delim(tmp_path: Path) -> None:
    # getMetadata.py --outFile=metadata.txt --delim=";" (typed header, ';' rows, footer).
    text = (
        "ldn/C:dataset_number/I:crossSection/D:kFactor/D:genFiltEff/D:generator_name/C\n"
        "mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.evgen.EVNT."
        "e5706;345055;4.4837e-05;1.0;1.0;Powheg+Pythia8+EvtGen\n"
        "mc16_13TeV.410470.PhPy8EG_A14_ttbar_hdamp258p75_nonallhad.evgen.EVNT.e6337;410470;"
        "0.72977;1.13975636159;0.54383;Powheg+Pythia8\n"
        "\n"
        '#lsetup  "asetup AthAnalysis,21.2.30" pyAMI\n'
        '#getMetadata.py --timestamp="2018-04-17 08:00:00" --physicsGroups="PMG,MCGN" '
        '--fields="ldn,dataset_number,crossSection,kFactor,genFiltEff,generator_name"\n'
    )
    path = _write(tmp_path, "metadata.txt", text)
    assert detect_format(path) == "getmetadata"
    contents = read_table(path)
    zh, tt = contents.records
    assert zh.dsid == 345055
    assert zh.etag == "e5706"
    assert zh.physics_short == "PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT"
    assert zh.xsec.unit == "nb"
    assert zh.xsec_fb == pytest.approx(44.837, rel=1e-12)
    assert tt.xsec.pb == pytest.approx(729.77, rel=1e-12)
    assert (tt.k_factor, tt.filter_eff, tt.etag) == (1.13975636159, 0.54383, "e6337")
    assert tt.source.line == 3


def test_getmetadata_stdout_layout(tmp_path: Path) -> None:
    # getMetadata.py ... > Backgrounds.txt (aligned table, units in brackets, #UNKNOWN#).
    text = (
        "dataset_number  physics_short                            crossSection_pb [pb]  "
        "kFactor  genFiltEff  crossSectionTotalRelUncertUP\n"
        "410470          PhPy8EG_A14_ttbar_hdamp258p75_nonallhad  729.77                "
        "1.13975636159  0.54383  0.0559\n"
        "364100          Sherpa_221_NNPDF30NNLO_Zmumu_MAXHTPTV0_70_CVetoBVeto  #UNKNOWN#  "
        "0.9751  0.8221  0.05\n"
    )
    path = _write(tmp_path, "Backgrounds.txt", text)
    assert detect_format(path) == "getmetadata"
    contents = read_table(path)
    (tt,) = contents.records
    assert tt.xsec.unit == "pb"
    assert tt.xsec.value == 729.77
    assert tt.rel_unc_up == 0.0559
    assert tt.rel_unc_down is None
    assert [s.line for s in contents.skipped] == [3]
    assert "crossSection_pb" in contents.skipped[0].reason


def test_getmetadata_bracket_unit_wins(tmp_path: Path) -> None:
    text = "dataset_number  crossSection [fb]  genFiltEff\n123456  44.837  1.0\n"
    (r,) = read_table(_write(tmp_path, "m.txt", text)).records
    assert r.xsec.unit == "fb"
    assert r.xsec.value == 44.837


# ------------------------------------------------------------------------------ errors
def test_errors_name_file_line_and_expectation(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.txt", PMG_HEADER + "\n345055\t\tname\t\tabc\t\t1\t\t1\t\t0\t\t0"
                 "\t\tgen\t\te5706\n")
    with pytest.raises(TableFormatError, match=r"bad\.txt:2 .*'crossSection_pb' = 'abc' is not"):
        read_table(bad)
    short = _write(tmp_path, "short.txt", PMG_HEADER + "\n345055\t\tname\t\t0.1\n")
    with pytest.raises(TableFormatError, match=r"short\.txt:2 .*expected 9 fields"):
        read_table(short)
    top = _write(tmp_path, "top.data", "# comment\n410470 396.87 1.1398 pythia8\n410471 x 1 p\n")
    with pytest.raises(TableFormatError, match=r"top\.data:3 .*'xsec×eff' = 'x'"):
        read_table(top)
    junk = _write(tmp_path, "junk.txt", "hello world\n")
    with pytest.raises(TableFormatError, match=r"give --format \(one of pmg, susytools"):
        read_table(junk)
    with pytest.raises(TableFormatError, match="valid: pmg, susytools, topdataprep"):
        read_table(top, format="csv")
    with pytest.raises(TableFormatError, match="does not exist"):
        read_table(tmp_path / "missing.txt")
    with pytest.raises(TableFormatError, match="expected a typed header"):
        read_table(top, format="pmg")
    od = _write(tmp_path, "od.txt", "### name | cross-section | sum of weights | efficiency\n"
                "Zee|1|2\n")
    with pytest.raises(TableFormatError, match=r"od\.txt:2 .*expected 4 '\|'-separated"):
        read_table(od)


def test_out_of_range_rows_are_skipped_not_fatal(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.txt", "#id/I:name/C:xsec/F:kfac/F:eff/F:relunc/F\n"
                  "1 a 1.0 1.0 1.0 0.0\n2 b 1.0 1.0 1.5 0.0\n3 c 1.0 0.0 1.0 0.0\n")
    contents = read_table(path)
    assert [r.dsid for r in contents.records] == [1]
    assert [s.line for s in contents.skipped] == [3, 4]
    assert "filter_eff" in contents.skipped[0].reason
    assert "k_factor" in contents.skipped[1].reason


def test_formats_tuple() -> None:
    assert FORMATS == ("pmg", "susytools", "topdataprep", "opendata", "getmetadata")


# ------------------------------------------------------------- hypothesis round trips
_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
                 min_size=1, max_size=40)
_xsec = st.floats(min_value=1e-30, max_value=1e30, allow_nan=False, allow_infinity=False)
_eff = st.floats(min_value=1e-9, max_value=1.0, allow_nan=False)
_k = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
_unc = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)
_dsid = st.integers(min_value=0, max_value=10**7)
# Negative σ (interference samples) are records too. One row per DSID: conflicting duplicate
# rows are refused (tested separately).
_signed_xsec = st.one_of(_xsec, _xsec.map(lambda x: -x))
_rows = st.lists(st.tuples(_dsid, _names, _signed_xsec, _eff, _k, _unc, _unc, _names,
                           st.integers(min_value=1, max_value=99999)),
                 min_size=1, max_size=15, unique_by=lambda row: row[0])


def _parse_text(name: str, text: str) -> list:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        return list(read_table(_write(Path(tmp), name, text)).records)


@settings(max_examples=40, deadline=None)
@given(_rows)
def test_pmg_rows_round_trip(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    lines = [PMG_HEADER] + [
        "\t\t".join((str(d), n, repr(x), repr(e), repr(k), repr(u), repr(v), g, f"e{t}"))
        for d, n, x, e, k, u, v, g, t in rows
    ]
    records = _parse_text("pmg.txt", "\n".join(lines) + "\n")
    assert len(records) == len(rows)
    for r, (d, n, x, e, k, u, v, g, t) in zip(records, rows, strict=True):
        assert (r.dsid, r.physics_short, r.xsec.value, r.xsec.unit) == (d, n, x, "pb")
        assert (r.filter_eff, r.k_factor, r.rel_unc_up, r.rel_unc_down) == (e, k, u, v)
        assert (r.generator, r.etag) == (g, f"e{t}")


@settings(max_examples=30, deadline=None)
@given(_rows)
def test_pmg_old_header_rows_round_trip(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    lines = [PMG_HEADER_OLD] + [
        "\t\t".join((str(d), n, repr(x), repr(e), repr(k), repr(u), g))
        for d, n, x, e, k, u, _v, g, _t in rows
    ]
    records = _parse_text("pmg_old.txt", "\n".join(lines) + "\n")
    for r, (d, _n, x, e, k, u, _v, _g, _t) in zip(records, rows, strict=True):
        assert (r.dsid, r.xsec.value, r.xsec.unit, r.filter_eff, r.k_factor) == (d, x, "nb", e, k)
        assert r.rel_unc_up == r.rel_unc_down == u
        assert r.etag is None


@settings(max_examples=30, deadline=None)
@given(_rows, st.sampled_from([" ", "\t", "  \t ", "    "]))
def test_susytools_rows_round_trip(rows: list[tuple], sep: str) -> None:  # type: ignore[type-arg]
    lines = ["#id/I:name/C:xsec/F:kfac/F:eff/F:relunc/F", "# cross-sections are in pb", ""]
    for d, n, x, e, k, u, *_ in rows:
        lines += [sep.join((str(d), n, repr(x), repr(k), repr(e), repr(u))) + sep, "# c", ""]
    records = _parse_text("susy.txt", "\n".join(lines))
    assert len(records) == len(rows)
    for i, (r, (d, n, x, e, k, u, *_)) in enumerate(zip(records, rows, strict=True)):
        assert (r.dsid, r.physics_short, r.xsec.value, r.filter_eff, r.k_factor) == (d, n, x, e, k)
        assert r.rel_unc_up == u
        assert r.source.line == 4 + 3 * i


@settings(max_examples=30, deadline=None)
@given(_rows, st.sampled_from([" ", "\t", " \t", "   "]))
def test_topdataprep_rows_round_trip(rows: list[tuple], sep: str) -> None:  # type: ignore[type-arg]
    lines = ["# cross-sections are in pb", ""]
    for d, _n, x, _e, k, _u, _v, g, t in rows:
        extra = f"{sep}# comment {t}" if t % 2 else ""
        lines.append(sep.join((str(d), repr(x), repr(k), g)) + extra)
    records = _parse_text("top.data", "\n".join(lines) + "\n")
    assert len(records) == len(rows)
    for r, (d, _n, x, _e, k, _u, _v, g, t) in zip(records, rows, strict=True):
        assert (r.dsid, r.xsec.value, r.k_factor, r.filter_eff, r.generator) == (d, x, k, 1.0, g)
        assert ("comment" in str(r.note)) == bool(t % 2)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(_names, _xsec, _xsec, _eff), min_size=1, max_size=15,
                unique_by=lambda row: row[0]))
def test_opendata_rows_round_trip(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    rows = [r for r in rows if r[0].lower() != "data"]
    lines = ["### name | cross-section | sum of weights | efficiency", "data|1|1|1"]
    lines += [f"{n}|{x!r}|{w!r}|{e!r}" for n, x, w, e in rows]
    records = _parse_text("Files_X.txt", "\n".join(lines))
    assert len(records) == len(rows)
    for r, (n, x, w, e) in zip(records, rows, strict=True):
        assert (r.dsid, r.physics_short, r.xsec.value, r.sum_of_weights, r.filter_eff) == (
            None, n, x, w, e
        )


@settings(max_examples=30, deadline=None)
@given(_rows, st.sampled_from([";", "\t", ","]))
def test_getmetadata_rows_round_trip(rows: list[tuple], delim: str) -> None:  # type: ignore[type-arg]
    header = "ldn/C:crossSection_pb/D:kFactor/D:genFiltEff/D:crossSectionTotalRelUncertUP/D"
    lines = [header] + [
        delim.join((f"mc16_13TeV.{d}.{n}.evgen.EVNT.e{t}", repr(x), repr(k), repr(e), repr(u)))
        for d, n, x, e, k, u, _v, _g, t in rows
    ]
    records = _parse_text("meta.txt", "\n".join(lines) + "\n")
    for r, (d, n, x, e, k, u, _v, _g, t) in zip(records, rows, strict=True):
        assert (r.dsid, r.physics_short, r.etag) == (d, n, f"e{t}")
        assert (r.xsec.value, r.xsec.unit, r.k_factor, r.filter_eff, r.rel_unc_up) == (
            x, "pb", k, e, u
        )


# ------------------------------------------------------------- import rules of issue 7
def test_zero_placeholders_skipped_and_counted_negative_imported(tmp_path: Path) -> None:
    text = ("#id/I:name/C:xsec/F:kfac/F:eff/F:relunc/F\n"
            "100001 a 1.5 1.0 1.0 0.0\n"
            "100002 placeholder 0 1.0 1.0 0.0\n"
            "100003 interference -0.25 1.2 0.5 0.0\n"
            "100004 other_placeholder 0.0 1.0 1.0 0.0\n")
    contents = read_table(_write(tmp_path, "s.txt", text), format="susytools")
    assert [r.dsid for r in contents.records] == [100001, 100003]
    assert (contents.n_placeholders, contents.n_negative) == (2, 1)
    assert [s.line for s in contents.skipped] == [3, 5]
    neg = contents.records[1]
    assert neg.negative
    assert neg.xsec_fb == -250.0
    # σ·ε·k = -0.25 pb × 0.5 × 1.2 = -0.15 pb = -150 fb
    assert neg.effective_xsec_fb == pytest.approx(-150.0, rel=1e-12)


def test_conflicting_duplicate_rows_refused_identical_ones_counted(tmp_path: Path) -> None:
    header = PMG_HEADER
    rows = ["345058\tx\t0.014299\t1.0\t1.0\t0.0\t0.0\tgen\te5706",
            "345058\tx\t0.01138\t1.0\t1.0\t0.0\t0.0\tgen\te6004",  # other e-tag: fine
            "345058\tx\t0.014299\t1.0\t1.0\t0.0\t0.0\tgen\te5706"]  # identical copy
    contents = read_table(_write(tmp_path, "ok.txt", "\n".join([header, *rows]) + "\n"))
    assert len(contents.records) == 2
    assert [(s.line, s.reason) for s in contents.skipped] == [
        (4, "duplicate of line 2 (same values)")]
    bad = [*rows, "345058\tx\t0.0143\t1.0\t1.0\t0.0\t0.0\tgen\te5706"]  # differs
    with pytest.raises(TableFormatError, match=(
            r"bad\.txt \(pmg table\): 1 sample\(s\) with conflicting duplicate rows .*"
            r"nothing imported.*345058 e5706: line 2 \(σ = 0\.014299 pb.*line 5 "
            r"\(σ = 0\.0143 pb")):
        read_table(_write(tmp_path, "bad.txt", "\n".join([header, *bad]) + "\n"))
