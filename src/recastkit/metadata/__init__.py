"""The cross-section catalog: records, table readers, the SQLite store and cross-source checks.

Typical use::

    from recastkit.metadata import Catalog
    catalog = Catalog()                       # $RECASTKIT_CATALOG or the user data folder
    catalog.import_table("PMGxsecDB_mc16.txt")
    record = catalog.lookup("mc16_13TeV.345055.PowhegPythia8EvtGen_..._llbb_VpT.deriv."
                            "DAOD_EXOT27.e5706_s3126_r10724_p3840")
    record.effective_xsec.fb                  # σ × ε × k in fb

:func:`lookup` and :func:`import_table` are shortcuts on the default catalog.
"""

from __future__ import annotations

from pathlib import Path

from recastkit.metadata.checks import KNOWN_BRS, Conflict, KnownBR, cross_check
from recastkit.metadata.export import format_pmg, write_pmg
from recastkit.metadata.readers import (
    FORMATS,
    SkippedRow,
    TableContents,
    detect_format,
    read_table,
)
from recastkit.metadata.records import Source, XsecRecord
from recastkit.metadata.store import Catalog, ImportSummary, SourceInfo

__all__ = [
    "FORMATS",
    "KNOWN_BRS",
    "Catalog",
    "Conflict",
    "ImportSummary",
    "KnownBR",
    "SkippedRow",
    "Source",
    "SourceInfo",
    "TableContents",
    "XsecRecord",
    "cross_check",
    "detect_format",
    "format_pmg",
    "import_table",
    "lookup",
    "read_table",
    "write_pmg",
]


def lookup(key: int | str, etag: str | None = None, source: str | None = None,
           catalog: str | Path | None = None) -> XsecRecord:
    """Exactly one record for a DSID, dataset name or sample name (see :meth:`Catalog.lookup`)."""
    with Catalog(catalog) as cat:
        return cat.lookup(key, etag=etag, source=source)


def import_table(path: str | Path, format: str | None = None,
                 catalog: str | Path | None = None) -> ImportSummary:
    """Import one table into a catalog (see :meth:`Catalog.import_table`)."""
    with Catalog(catalog) as cat:
        return cat.import_table(path, format=format)
