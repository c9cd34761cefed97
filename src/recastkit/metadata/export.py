"""Write records as a PMG cross-section table.

The layout is the current PMG database header
(:data:`recastkit.metadata.readers.PMG_HEADER`: ``crossSection_pb`` and ``etag`` columns) with
double-tab separators. Floats are written with ``repr`` (the shortest string that reads back to
the same binary64), so import → export → import gives identical records for every field the
format carries. A missing value (no e-tag, no generator, no uncertainty) is written as ``-``
and read back as ``None``. Cross sections stored in another unit are converted to pb (exact for
pb tables, rounded to the last bit otherwise). The PMG format has no place for a name-keyed
record (no DSID), a sum of weights, a branching ratio or a note: name-keyed records are left
out (logged) and the other fields are dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from recastkit._atomic import write_text_atomic
from recastkit.metadata.readers import MISSING, PMG_HEADER
from recastkit.metadata.records import XsecRecord

log = logging.getLogger(__name__)

_SEP = "\t\t"
#: Tabs, line breaks and other whitespace but the plain space (they would split the row).
_BAD_TEXT = re.compile(r"[^\S ]+")


def _text(value: str | None) -> str:
    if value is None:
        return MISSING
    cleaned = _BAD_TEXT.sub(" ", value).strip()
    return cleaned or MISSING


def _num(value: float | None) -> str:
    return MISSING if value is None else repr(float(value))


def format_pmg_row(record: XsecRecord) -> str:
    """One PMG table row (without newline) for a record with a DSID."""
    xsec_pb = record.xsec.value if record.xsec.unit == "pb" else record.xsec.pb
    return _SEP.join((
        str(record.dsid),
        _text(record.physics_short),
        repr(float(xsec_pb)),
        repr(record.filter_eff),
        repr(record.k_factor),
        _num(record.rel_unc_up),
        _num(record.rel_unc_down),
        _text(record.generator),
        _text(record.etag),
    ))


def format_pmg(records: Iterable[XsecRecord]) -> tuple[str, int]:
    """The text of a PMG table and the number of rows in it."""
    lines = [PMG_HEADER]
    left_out: list[str] = []
    for record in records:
        if record.dsid is None:
            left_out.append(str(record.physics_short))
            continue
        lines.append(format_pmg_row(record))
    if left_out:
        log.warning(
            "left %d name-keyed records out of the PMG table (it needs a DSID): %s",
            len(left_out), ", ".join(left_out[:10]) + (" ..." if len(left_out) > 10 else ""),
        )
    return "\n".join(lines) + "\n", len(lines) - 1


def write_pmg(path: str | Path, records: Iterable[XsecRecord]) -> int:
    """Write records to ``path`` in the PMG format, atomically.

    Returns:
        The number of rows written.
    """
    rows = list(records)
    text, n = format_pmg(rows)
    write_text_atomic(path, text)
    log.info("wrote %d records to %s", n, path)
    _warn_conflicting_rows(path, rows)
    return n


def _warn_conflicting_rows(path: str | Path, records: list[XsecRecord]) -> None:
    """Rows of several sources for one DSID and e-tag make a table that import refuses."""
    values: dict[tuple[int, str | None], set[tuple[float, float, float]]] = {}
    for r in records:
        if r.dsid is not None:
            values.setdefault((r.dsid, r.etag), set()).add(
                (r.xsec.fb, r.filter_eff, r.k_factor))
    clashes = sorted(key for key, v in values.items() if len(v) > 1)
    if clashes:
        shown = ", ".join(f"{d}{' ' + e if e else ''}" for d, e in clashes[:5])
        log.warning(
            "%s holds %d sample(s) with different values from several sources for one DSID and "
            "e-tag (%s%s); `recastkit xsec import` refuses such a table: export the records of "
            "one source, or choose the DSIDs with --dsid", path, len(clashes), shown,
            " …" if len(clashes) > 5 else "",
        )
