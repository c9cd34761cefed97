"""Readers of cross-section tables, one per format, with format detection.

Formats (:data:`FORMATS`):

``pmg``
    The PMG cross-section database (``PMGxsecDB_*.txt``): a typed header such as
    ``dataset_number/I:physics_short/C:crossSection_pb/D:genFiltEff/D:kFactor/D:relUncertUP/D:
    relUncertDOWN/D:generator_name/C:etag/C`` and tab-separated rows (usually double tabs).
    A DSID may appear on several rows, one per e-tag.
``susytools``
    SUSYTools ``data/mc16_13TeV/*.txt``: ``#`` comments, the header comment
    ``#id/I:name/C:xsec/F:kfac/F:eff/F:relunc/F``, whitespace-separated rows, σ in pb.
``topdataprep``
    AnalysisTop TopDataPreparation ``XSection-*.data``: ``DSID σ×ε[pb] k shower [extra...]``
    with ``#`` comments and mixed tabs/spaces. The table stores σ × ε in one number, so the
    record gets ``filter_eff = 1.0``, ``physics_short = None`` and a note saying so.
``opendata``
    ATLAS Open Data 2020 ``Files_*.txt``: ``### name | cross-section | sum of weights |
    efficiency`` then ``Zee|1950.5295|150277594200|1``; keyed by name (``dsid = None``), σ in pb,
    the sum of weights is kept. The real-data placeholder row ``data|1|1|1`` is skipped.
``getmetadata``
    The text output of ATLAS ``getMetadata.py --fields ...``: either the typed header it writes
    with ``--outFile`` (``ldn/C:dataset_number/I:crossSection/D:...``, rows separated by
    ``--delim`` or aligned with spaces) or the aligned table it prints on stdout, whose header
    line lists the field names with units in brackets (``crossSection_pb [pb]``). Lines starting
    with ``#`` (the explanation and reproduction footer) are skipped. The DSID and the e-tag are
    taken from ``ldn`` when ``dataset_number`` / ``etag`` are not among the fields.

Cross-section units are decided per column name, never guessed from the values:

* ``crossSection_pb`` is in pb (the name says so; getMetadata.py defines it as AMI's
  ``crossSection`` × 1000).
* ``crossSection`` (no suffix) is AMI's physics parameter, which is in **nb**: getMetadata.py
  converts it to ``crossSection_pb`` by multiplying by 1000. The shared PMG table
  ``PMGxsecDB_manual.txt`` uses this column, and its values confirm nb: DSID 410646 (Powheg Wt
  inclusive top) has 0.037937, i.e. 37.9 pb (the Wt cross section is about 36 pb; 0.038 pb would
  be a thousand times too small), and DSID 410659 (t-channel antitop, leptonic) has 0.022175,
  i.e. 22.2 pb, matching 26.276 pb / k ≈ 1.185 in the ATLAS Open Data table.
* A unit in brackets in a getMetadata header (``crossSection [nb]``) wins over the convention.
* ``xsec_unit=`` of :func:`read_table` overrides all of this for a table known to differ.

Import rules (the same for every format):

* σ = 0 rows are placeholders (e.g. the 302 rows ``410513 0 0 pythia8`` of TopDataPreparation):
  they are *skipped and counted* (:attr:`TableContents.n_placeholders`, shown by
  ``recastkit xsec import``).
* A negative σ is a valid record: interference samples such as SUSYTools DSIDs 342098 and
  342287 (bbH y_b·y_t interference) are imported and flagged
  (:attr:`~recastkit.metadata.records.XsecRecord.negative`, counted in
  :attr:`TableContents.n_negative`).
* Other values outside the valid range of a record (k ≤ 0, ε ∉ (0, 1], NaN or infinite σ)
  are skipped, logged at WARNING and counted.
* Two rows with the same key (DSID, or name for name-keyed tables) and e-tag are a
  *duplicate*: identical values keep the first row and skip the others (counted); different
  values are a :class:`TableFormatError` listing the lines, and nothing of the table is
  imported (a table must say one thing per sample; pick the right row and re-import).
* Rows that cannot be parsed at all raise :class:`TableFormatError` naming the file, the line
  and what was expected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recastkit.exceptions import InvalidRecordError, TableFormatError, UnitError
from recastkit.metadata.records import Source, XsecRecord
from recastkit.units import XSEC_UNITS_TO_FB, CrossSection, XsecUnit

log = logging.getLogger(__name__)

#: Format names accepted by :func:`read_table` (``format=``).
FORMATS: tuple[str, ...] = ("pmg", "susytools", "topdataprep", "opendata", "getmetadata")

#: The two PMG database headers found in ATLAS releases.
PMG_HEADER_OLD = (
    "dataset_number/I:physics_short/C:crossSection/D:genFiltEff/D:kFactor/D:relUncert/D:"
    "generator_name/C"
)
PMG_HEADER = (
    "dataset_number/I:physics_short/C:crossSection_pb/D:genFiltEff/D:kFactor/D:relUncertUP/D:"
    "relUncertDOWN/D:generator_name/C:etag/C"
)
#: Written in place of a missing value by :mod:`recastkit.metadata.export`.
MISSING = "-"

_TOPDATAPREP_NOTE = (
    "TopDataPreparation convention: the σ column already includes the filter efficiency "
    "(σ×ε), so filter_eff = 1"
)
_UNKNOWN_VALUES = {"#UNKNOWN#", "", MISSING}
_INT_RE = re.compile(r"^\d+$")
_NUM_RE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?(?:inf|nan)$", re.I)
_TYPED_HEADER_RE = re.compile(r"^#?\s*[A-Za-z_][A-Za-z0-9_]*/[A-Za-z](?::[A-Za-z_][A-Za-z0-9_]*"
                              r"(?:/[A-Za-z])?)+:?\s*$")
_ETAG_RE = re.compile(r"(?:^|_)(e\d+)(?:_|$)")
_LDN_DSID_RE = re.compile(r"^[^.]+\.(\d+)\.")

# Column names of the PMG / getMetadata tables -> record fields.
_XSEC_COLUMNS: dict[str, XsecUnit] = {
    "crossSection_pb": "pb",
    "crossSection_fb": "fb",
    "crossSection_nb": "nb",
    "crossSection": "nb",  # AMI convention, see the module docstring.
}
_BRACKET_UNITS: dict[str, XsecUnit] = {
    "pb": "pb", "fb": "fb", "nb": "nb", "ab": "ab",
    "pico barn": "pb", "picobarn": "pb", "femto barn": "fb", "femtobarn": "fb",
    "nano barn": "nb", "nanobarn": "nb",
}
_DSID_COLUMNS = ("dataset_number", "datasetNumber", "DSID", "dsid", "id", "mcChannelNumber")
_NAME_COLUMNS = ("physics_short", "physicsShort", "name")
_EFF_COLUMNS = ("genFiltEff", "filterEfficiency", "eff", "filter_eff")
_K_COLUMNS = ("kFactor", "kfac", "k_factor")
_UNC_SYM_COLUMNS = ("relUncert", "relunc", "crossSectionTotalRelUncert")
_UNC_UP_COLUMNS = ("relUncertUP", "crossSectionTotalRelUncertUP")
_UNC_DOWN_COLUMNS = ("relUncertDOWN", "crossSectionTotalRelUncertDOWN")
_GEN_COLUMNS = ("generator_name", "generatorName", "generator")
_ETAG_COLUMNS = ("etag", "e_tag")
_LDN_COLUMNS = ("ldn", "logicalDatasetName")
_BR_COLUMNS = ("branchingRatio", "BR")


@dataclass(frozen=True)
class SkippedRow:
    """A table row that was read but not turned into a record.

    Attributes:
        line: 1-based line number.
        reason: Why (placeholder row, σ ≤ 0, k ≤ 0, ...).
        placeholder: The row is a known placeholder of the format (``data|1|1|1``, ``0 0``),
            skipped without a warning.
    """

    line: int
    reason: str
    placeholder: bool = False


@dataclass(frozen=True)
class TableContents:
    """Everything read from one table.

    Attributes:
        path: The table file (absolute).
        format: One of :data:`FORMATS`.
        records: The valid rows, in file order.
        skipped: Rows that were read but rejected, with the reason.
    """

    path: Path
    format: str
    records: tuple[XsecRecord, ...]
    skipped: tuple[SkippedRow, ...]

    @property
    def n_rows(self) -> int:
        """Data rows in the table (records plus skipped rows)."""
        return len(self.records) + len(self.skipped)

    @property
    def n_placeholders(self) -> int:
        """Skipped placeholder rows (σ = 0, the Open Data ``data`` row)."""
        return sum(1 for s in self.skipped if s.placeholder)

    @property
    def n_negative(self) -> int:
        """Records with a negative σ (interference samples), imported and flagged."""
        return sum(1 for r in self.records if r.negative)


class _Table:
    """A table file being read: its lines, its path, and helpers for errors."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.format = fmt
        self.location = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            msg = f"cross-section table {path} does not exist"
            raise TableFormatError(msg) from None
        except UnicodeDecodeError as exc:
            msg = f"cross-section table {path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            raise TableFormatError(msg) from None
        except OSError as exc:
            msg = f"cannot read cross-section table {path}: {exc.strerror}"
            raise TableFormatError(msg) from None
        self.lines = text.splitlines()
        self.records: list[XsecRecord] = []
        self.skipped: list[SkippedRow] = []

    def error(self, lineno: int, what: str) -> TableFormatError:
        return TableFormatError(f"{self.path}:{lineno} ({self.format} table): {what}")

    def numbered(self) -> Iterator[tuple[int, str]]:
        yield from enumerate(self.lines, start=1)

    def source(self, lineno: int) -> Source:
        return Source(kind="table", location=self.location, line=lineno)

    def number(self, token: str, column: str, lineno: int) -> float:
        if not _NUM_RE.match(token):
            raise self.error(lineno, f"column {column!r} = {token!r} is not a number")
        return float(token)

    def integer(self, token: str, column: str, lineno: int) -> int:
        if not _INT_RE.match(token):
            raise self.error(
                lineno, f"column {column!r} = {token!r} is not a dataset number (digits only)"
            )
        return int(token)

    def skip(self, lineno: int, reason: str, placeholder: bool = False) -> None:
        log.debug("%s:%d: skipped row: %s", self.path.name, lineno, reason)
        self.skipped.append(SkippedRow(lineno, reason, placeholder))

    def add(self, lineno: int, xsec: float, unit: XsecUnit, **fields: Any) -> None:
        """Build a record; an out-of-range value skips the row instead of failing the table."""
        try:
            record = XsecRecord(
                xsec=CrossSection(xsec, unit), source=self.source(lineno), **fields
            )
            self.records.append(record)
        except (InvalidRecordError, UnitError) as exc:
            self.skip(lineno, str(exc))

    def _deduplicate(self) -> None:
        """Apply the duplicate rule of the module docstring (same key and e-tag)."""
        first: dict[tuple[int | str, str | None], XsecRecord] = {}
        kept: list[XsecRecord] = []
        conflicts: dict[tuple[int | str, str | None], list[XsecRecord]] = {}
        for rec in self.records:
            key = (rec.key, rec.etag)
            seen = first.get(key)
            if seen is None:
                first[key] = rec
                kept.append(rec)
                continue
            same = (seen.xsec.fb, seen.filter_eff, seen.k_factor) == (
                rec.xsec.fb, rec.filter_eff, rec.k_factor)
            if same:
                self.skip(rec.source.line or 0, f"duplicate of line {seen.source.line} "
                                                "(same values)")
            else:
                conflicts.setdefault(key, [seen]).append(rec)
        if conflicts:
            parts = []
            for (sample, etag), recs in conflicts.items():
                rows = ", ".join(
                    f"line {r.source.line} (σ = {r.xsec}, ε = {r.filter_eff!r}, "
                    f"k = {r.k_factor!r})" for r in recs
                )
                parts.append(f"{sample}{' ' + etag if etag else ''}: {rows}")
            msg = (
                f"{self.path} ({self.format} table): {len(conflicts)} sample(s) with "
                f"conflicting duplicate rows (same key and e-tag, different values), nothing "
                f"imported; keep one row per sample and e-tag: {'; '.join(parts)}"
            )
            raise TableFormatError(msg)
        self.records = kept

    def contents(self) -> TableContents:
        self._deduplicate()
        negative = [r for r in self.records if r.negative]
        if negative:
            log.warning(
                "%s: %d record(s) with a negative cross section (interference samples, "
                "imported and flagged): %s", self.path.name, len(negative),
                ", ".join(f"{r.key} (line {r.source.line})" for r in negative[:5]),
            )
        for placeholder in (True, False):
            rows = [s for s in self.skipped if s.placeholder is placeholder]
            if rows:
                log.log(
                    logging.INFO if placeholder else logging.WARNING,
                    "%s: skipped %d %srows (first: line %d, %s)", self.path.name, len(rows),
                    "placeholder " if placeholder else "", rows[0].line, rows[0].reason,
                )
        log.info("%s: read %d records (%s format)", self.path.name, len(self.records),
                 self.format)
        return TableContents(self.path, self.format, tuple(self.records), tuple(self.skipped))


def _is_comment_or_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _split_typed_header(header: str) -> list[tuple[str, str | None]]:
    """``"a/I:b/C:c"`` -> ``[("a", "I"), ("b", "C"), ("c", None)]``."""
    columns: list[tuple[str, str | None]] = []
    for part in header.strip().lstrip("#").strip().rstrip(":").split(":"):
        name, _, kind = part.partition("/")
        columns.append((name.strip(), kind.strip() or None))
    return columns


def _split_row(line: str, delim: str | None) -> list[str]:
    if delim is None:
        return line.split()
    if delim == "\t":
        return [f.strip() for f in re.split(r"\t+", line.strip())]
    return [f.strip() for f in line.strip().split(delim)]


def _first(columns: dict[str, int], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in columns:
            return name
    return None


@dataclass(frozen=True)
class _ColumnMap:
    """Which column holds which record field, for the typed-header formats."""

    names: tuple[str, ...]
    units: dict[str, XsecUnit]
    dsid: str | None
    ldn: str | None
    name: str | None
    xsec: str
    eff: str | None
    k: str | None
    unc_sym: str | None
    unc_up: str | None
    unc_down: str | None
    generator: str | None
    etag: str | None
    br: str | None


def _column_map(table: _Table, names: list[str], bracket_units: dict[str, str],
                lineno: int, xsec_unit: XsecUnit | None) -> _ColumnMap:
    index = {n: i for i, n in enumerate(names)}
    xsec = _first(index, tuple(_XSEC_COLUMNS))
    if xsec is None:
        raise table.error(
            lineno,
            f"the header has no cross-section column; expected one of {', '.join(_XSEC_COLUMNS)} "
            f"(columns found: {', '.join(names)})",
        )
    dsid = _first(index, _DSID_COLUMNS)
    ldn = _first(index, _LDN_COLUMNS)
    name = _first(index, _NAME_COLUMNS)
    if dsid is None and ldn is None and name is None:
        raise table.error(
            lineno,
            "the header has no key column; expected one of "
            f"{', '.join(_DSID_COLUMNS + _LDN_COLUMNS + _NAME_COLUMNS)} "
            f"(columns found: {', '.join(names)})",
        )
    unit: XsecUnit = _XSEC_COLUMNS[xsec]
    if xsec in bracket_units:
        text = bracket_units[xsec].strip().lower()
        if text in _BRACKET_UNITS:
            unit = _BRACKET_UNITS[text]
        else:
            log.warning("%s: unknown unit [%s] of column %s; using %s (the column's convention)",
                        table.path.name, bracket_units[xsec], xsec, unit)
    if xsec_unit is not None:
        unit = xsec_unit
    log.debug("%s: column %s read in %s", table.path.name, xsec, unit)
    return _ColumnMap(
        names=tuple(names), units={xsec: unit}, dsid=dsid, ldn=ldn, name=name, xsec=xsec,
        eff=_first(index, _EFF_COLUMNS), k=_first(index, _K_COLUMNS),
        unc_sym=_first(index, _UNC_SYM_COLUMNS), unc_up=_first(index, _UNC_UP_COLUMNS),
        unc_down=_first(index, _UNC_DOWN_COLUMNS), generator=_first(index, _GEN_COLUMNS),
        etag=_first(index, _ETAG_COLUMNS), br=_first(index, _BR_COLUMNS),
    )


def _parse_columns(table: _Table, cmap: _ColumnMap, lineno: int, fields: list[str]) -> None:
    """Turn the fields of one row into a record (or a skipped row)."""
    if len(fields) != len(cmap.names):
        raise table.error(
            lineno,
            f"expected {len(cmap.names)} fields ({', '.join(cmap.names)}), found {len(fields)}: "
            f"{fields!r}",
        )
    row = dict(zip(cmap.names, fields, strict=True))

    def opt_number(column: str | None) -> float | None:
        if column is None or row[column] in _UNKNOWN_VALUES:
            return None
        return table.number(row[column], column, lineno)

    def opt_text(column: str | None) -> str | None:
        if column is None or row[column] in _UNKNOWN_VALUES:
            return None
        return row[column]

    ldn = opt_text(cmap.ldn)
    dsid: int | None = None
    if cmap.dsid is not None and row[cmap.dsid] not in _UNKNOWN_VALUES:
        dsid = table.integer(row[cmap.dsid], cmap.dsid, lineno)
    elif ldn is not None:
        match = _LDN_DSID_RE.match(ldn)
        if match is None:
            raise table.error(lineno, f"column 'ldn' = {ldn!r} has no dataset number")
        dsid = int(match.group(1))
    name = opt_text(cmap.name)
    etag = opt_text(cmap.etag)
    if etag is None and ldn is not None:
        tags = ldn.rsplit(".", 1)[-1]
        match = _ETAG_RE.search(tags)
        etag = match.group(1) if match else None
    if name is None and ldn is not None and ldn.count(".") >= 2:
        name = ldn.split(".")[2]
    xsec_value = opt_number(cmap.xsec)
    if xsec_value is None:
        table.skip(lineno, f"column {cmap.xsec!r} has no value ({row[cmap.xsec]!r})")
        return
    eff = opt_number(cmap.eff)
    k = opt_number(cmap.k)
    if (cmap.eff is not None and eff is None) or (cmap.k is not None and k is None):
        table.skip(lineno, "genFiltEff or kFactor has no value")
        return
    sym = opt_number(cmap.unc_sym)
    up = opt_number(cmap.unc_up)
    down = opt_number(cmap.unc_down)
    if xsec_value == 0:
        table.skip(lineno, f"{cmap.xsec} = 0: a placeholder row", placeholder=True)
        return
    unit = cmap.units[cmap.xsec]
    table.add(
        lineno,
        dsid=dsid,
        xsec=xsec_value,
        unit=unit,
        filter_eff=1.0 if eff is None else eff,
        k_factor=1.0 if k is None else k,
        etag=etag,
        physics_short=name,
        generator=opt_text(cmap.generator),
        branching_ratio=opt_number(cmap.br),
        rel_unc_up=up if up is not None else sym,
        rel_unc_down=down if down is not None else sym,
    )


def _first_content_line(table: _Table) -> tuple[int, str] | None:
    for lineno, line in table.numbered():
        if line.strip():
            return lineno, line
    return None


# --------------------------------------------------------------------------------- readers
def read_pmg(path: str | Path, xsec_unit: XsecUnit | None = None) -> TableContents:
    """Read a PMG cross-section database table (see the module docstring)."""
    table = _Table(Path(path).resolve(), "pmg")
    first = _first_content_line(table)
    if first is None:
        raise table.error(1, f"the file is empty; expected the header {PMG_HEADER!r}")
    header_line, header = first
    if not _TYPED_HEADER_RE.match(header.strip()):
        raise table.error(
            header_line,
            f"expected a typed header such as {PMG_HEADER!r}, found {header.strip()[:80]!r}",
        )
    names = [n for n, _ in _split_typed_header(header)]
    cmap = _column_map(table, names, {}, header_line, xsec_unit)
    for lineno, line in table.numbered():
        if lineno <= header_line or _is_comment_or_blank(line):
            continue
        fields = _split_row(line, "\t" if "\t" in line else None)
        if len(fields) != len(names) and "\t" in line:
            fields = _split_row(line, None)
        _parse_columns(table, cmap, lineno, fields)
    return table.contents()


def read_getmetadata(path: str | Path, xsec_unit: XsecUnit | None = None) -> TableContents:
    """Read the text output of ATLAS ``getMetadata.py`` (see the module docstring)."""
    table = _Table(Path(path).resolve(), "getmetadata")
    header_line = 0
    names: list[str] = []
    units: dict[str, str] = {}
    for lineno, line in table.numbered():
        if _is_comment_or_blank(line):
            continue
        header_line = lineno
        if _TYPED_HEADER_RE.match(line.strip()):
            names = [n for n, _ in _split_typed_header(line)]
        else:
            # stdout layout: "dataset_number  crossSection_pb [pb]  kFactor ..."
            for match in re.finditer(r"\[([^\]]*)\]|(\S+)", line):
                if match.group(1) is not None:
                    if not names:
                        raise table.error(lineno, f"unit [{match.group(1)}] before any field name")
                    units[names[-1]] = match.group(1)
                else:
                    names.append(match.group(2))
        break
    if not names:
        raise table.error(
            max(header_line, 1),
            "expected a header of getMetadata.py field names (e.g. "
            "'ldn/C:dataset_number/I:crossSection/D:kFactor/D:genFiltEff/D'), found none",
        )
    cmap = _column_map(table, names, units, header_line, xsec_unit)
    delim: str | None = None
    for lineno, line in table.numbered():
        if lineno <= header_line or _is_comment_or_blank(line):
            continue
        if delim is None and len(names) > 1:
            delim = next((d for d in (";", "\t", ",", "|") if d in line), " ")
        fields = _split_row(line, None if delim == " " else delim)
        _parse_columns(table, cmap, lineno, fields)
    return table.contents()


_SUSY_COLUMNS = {"id": "dsid", "name": "name", "xsec": "xsec", "kfac": "k", "eff": "eff",
                 "relunc": "unc"}
_SUSY_DEFAULT = ("id", "name", "xsec", "kfac", "eff", "relunc")


def read_susytools(path: str | Path, xsec_unit: XsecUnit | None = None) -> TableContents:
    """Read a SUSYTools cross-section table (σ in pb unless ``xsec_unit`` says otherwise)."""
    table = _Table(Path(path).resolve(), "susytools")
    order: tuple[str, ...] = _SUSY_DEFAULT
    unit: XsecUnit = xsec_unit or "pb"
    for lineno, line in table.numbered():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if _TYPED_HEADER_RE.match(stripped):
                names = tuple(n for n, _ in _split_typed_header(stripped))
                unknown = [n for n in names if n not in _SUSY_COLUMNS]
                if unknown or set(names) != set(_SUSY_DEFAULT):
                    raise table.error(
                        lineno,
                        f"header columns {', '.join(names)} are not the SUSYTools columns "
                        f"{', '.join(_SUSY_DEFAULT)} (in any order)",
                    )
                order = names
            continue
        fields = stripped.split()
        if len(fields) != len(order):
            raise table.error(
                lineno,
                f"expected {len(order)} whitespace-separated fields ({' '.join(order)}), "
                f"found {len(fields)}: {fields!r}",
            )
        row = dict(zip(order, fields, strict=True))
        dsid = table.integer(row["id"], "id", lineno)
        xsec = table.number(row["xsec"], "xsec", lineno)
        k = table.number(row["kfac"], "kfac", lineno)
        eff = table.number(row["eff"], "eff", lineno)
        unc = table.number(row["relunc"], "relunc", lineno)
        if xsec == 0:
            table.skip(lineno, "xsec = 0: a placeholder row", placeholder=True)
            continue
        table.add(
            lineno,
            dsid=dsid, xsec=xsec, unit=unit, filter_eff=eff, k_factor=k,
            physics_short=row["name"], rel_unc_up=unc, rel_unc_down=unc,
        )
    return table.contents()


def read_topdataprep(path: str | Path, xsec_unit: XsecUnit | None = None) -> TableContents:
    """Read an AnalysisTop TopDataPreparation table (``DSID σ×ε[pb] k shower [extra]``)."""
    table = _Table(Path(path).resolve(), "topdataprep")
    unit: XsecUnit = xsec_unit or "pb"
    for lineno, line in table.numbered():
        if _is_comment_or_blank(line):
            continue
        content, _, comment = line.partition("#")
        fields = content.split()
        if len(fields) < 3:
            raise table.error(
                lineno,
                "expected 'DSID xsec×eff[pb] kFactor shower [extra...]' (at least 3 fields), "
                f"found {len(fields)}: {fields!r}",
            )
        dsid = table.integer(fields[0], "DSID", lineno)
        xsec = table.number(fields[1], "xsec×eff", lineno)
        k = table.number(fields[2], "kFactor", lineno)
        shower = fields[3] if len(fields) > 3 else None
        extras = " ".join(fields[4:])
        note = _TOPDATAPREP_NOTE
        if extras:
            note += f"; extra fields: {extras}"
        if comment.strip():
            note += f"; comment: {comment.strip()}"
        if xsec == 0:
            table.skip(lineno, f"placeholder row (xsec×eff = 0, kFactor = {k!r})",
                       placeholder=True)
            continue
        table.add(
            lineno,
            dsid=dsid, xsec=xsec, unit=unit, filter_eff=1.0, k_factor=k,
            physics_short=None, generator=shower, note=note,
        )
    return table.contents()


_OPENDATA_HEADER = ("name", "cross-section", "sum of weights", "efficiency")


def read_opendata(path: str | Path, xsec_unit: XsecUnit | None = None) -> TableContents:
    """Read an ATLAS Open Data 2020 ``Files_*.txt`` table (name-keyed, σ in pb)."""
    table = _Table(Path(path).resolve(), "opendata")
    unit: XsecUnit = xsec_unit or "pb"
    for lineno, line in table.numbered():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if "|" in body and body.split("|")[0].strip().lower() == "name":
                header = tuple(h.strip().lower() for h in body.split("|"))
                if header != _OPENDATA_HEADER:
                    raise table.error(
                        lineno,
                        f"expected the header '### {' | '.join(_OPENDATA_HEADER)}', "
                        f"found {stripped!r}",
                    )
            elif "|" in body:
                log.debug("%s:%d: commented-out row %r", table.path.name, lineno, stripped)
            continue
        fields = [f.strip() for f in stripped.split("|")]
        if len(fields) != 4:
            raise table.error(
                lineno,
                f"expected 4 '|'-separated fields (name|cross-section|sum of weights|efficiency)"
                f", found {len(fields)}: {stripped!r}",
            )
        name = fields[0]
        if not name:
            raise table.error(lineno, "the name field is empty")
        xsec = table.number(fields[1], "cross-section", lineno)
        sumw = table.number(fields[2], "sum of weights", lineno)
        eff = table.number(fields[3], "efficiency", lineno)
        if name.lower() == "data":
            log.info("%s:%d: skipped the real-data placeholder row %r", table.path.name, lineno,
                     stripped)
            table.skip(lineno, f"real-data placeholder row {stripped!r}", placeholder=True)
            continue
        if xsec == 0:
            table.skip(lineno, "cross-section = 0: a placeholder row", placeholder=True)
            continue
        table.add(
            lineno,
            dsid=None, xsec=xsec, unit=unit, filter_eff=eff, k_factor=1.0,
            physics_short=name, sum_of_weights=sumw,
        )
    return table.contents()


READERS: dict[str, Callable[[str | Path, XsecUnit | None], TableContents]] = {
    "pmg": read_pmg,
    "susytools": read_susytools,
    "topdataprep": read_topdataprep,
    "opendata": read_opendata,
    "getmetadata": read_getmetadata,
}


def detect_format(path: str | Path) -> str:
    """Detect the format of a table from its header (or its first data row).

    Raises:
        TableFormatError: When no format matches; the message lists the formats.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            head = [line for _, line in zip(range(400), fh, strict=False)]
    except UnicodeDecodeError as exc:
        msg = f"cross-section table {path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise TableFormatError(msg) from None
    except OSError as exc:
        msg = f"cannot read cross-section table {path}: {exc.strerror}"
        raise TableFormatError(msg) from None
    for lineno, line in enumerate(head, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if "|" in body and body.split("|")[0].strip().lower() == "name":
                return "opendata"
            if _TYPED_HEADER_RE.match(stripped) and body.startswith("id/"):
                return "susytools"
            continue
        if _TYPED_HEADER_RE.match(stripped):
            names = [n for n, _ in _split_typed_header(stripped)]
            if names[:2] == ["dataset_number", "physics_short"] and stripped in (
                PMG_HEADER, PMG_HEADER_OLD
            ):
                return "pmg"
            return "getmetadata"
        tokens = stripped.split()
        if tokens[0] in _LDN_COLUMNS + _DSID_COLUMNS and len(tokens) > 1:
            return "getmetadata"
        if "|" in stripped and len(stripped.split("|")) == 4:
            return "opendata"
        if _INT_RE.match(tokens[0]) and len(tokens) >= 3:
            if _NUM_RE.match(tokens[1]) and _NUM_RE.match(tokens[2]):
                return "topdataprep"
            if len(tokens) == 6 and all(_NUM_RE.match(t) for t in tokens[2:]):
                return "susytools"
        msg = (
            f"{path}:{lineno}: cannot detect the cross-section table format from "
            f"{stripped[:80]!r}; give --format (one of {', '.join(FORMATS)})"
        )
        raise TableFormatError(msg)
    msg = (
        f"{path}: no header or data row found; cannot detect the format "
        f"(valid formats: {', '.join(FORMATS)})"
    )
    raise TableFormatError(msg)


def read_table(path: str | Path, format: str | None = None,
               xsec_unit: str | None = None) -> TableContents:
    """Read a cross-section table of any supported format.

    Args:
        path: The table file.
        format: One of :data:`FORMATS`; detected from the header when ``None``.
        xsec_unit: Override the σ unit of the table (``"pb"``, ``"nb"``, ...); by default the
            unit follows the column name (see the module docstring).

    Returns:
        The records and the skipped rows, with their line numbers.

    Raises:
        TableFormatError: Unknown format name, undetectable format or a row that cannot be
            parsed (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"cross-section table {path} does not exist or is not a file"
        raise TableFormatError(msg)
    if format is None:
        format = detect_format(path)
        log.debug("%s: detected format %s", path.name, format)
    if format not in READERS:
        msg = (
            f"unknown cross-section table format {format!r} for {path}; "
            f"valid: {', '.join(FORMATS)}"
        )
        raise TableFormatError(msg)
    unit: XsecUnit | None = None
    if xsec_unit is not None:
        if xsec_unit not in XSEC_UNITS_TO_FB:
            msg = (
                f"unknown cross-section unit {xsec_unit!r} for {path}; "
                f"valid: {', '.join(XSEC_UNITS_TO_FB)}"
            )
            raise TableFormatError(msg)
        unit = xsec_unit  # type: ignore[assignment]
    return READERS[format](path, unit)
