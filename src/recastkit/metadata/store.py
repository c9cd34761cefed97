"""The cross-section catalog: an embedded SQLite database of :class:`XsecRecord`.

Several sources live side by side; every record keeps its source (file, line, import time).
Re-importing a table replaces the records of that file (keyed by its absolute path), so there
are never duplicates. Two processes may import at once: the database runs in WAL mode, every
write is one ``BEGIN IMMEDIATE`` transaction and connections wait up to
:data:`BUSY_TIMEOUT_S` for the lock.

Where the catalog lives: an explicit ``path`` argument, else the environment variable
``RECASTKIT_CATALOG``, else ``platformdirs.user_data_dir("recastkit")/catalog.sqlite``.

Floats are stored as SQLite ``REAL`` (IEEE-754 binary64), so values read back are bit-identical
to the values parsed from the table.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from recastkit._atomic import default_file_mode
from recastkit.exceptions import (
    AmbiguousMetadataError,
    CatalogError,
    DatasetNameError,
    MissingCatalogError,
    MissingMetadataError,
)
from recastkit.metadata.readers import SkippedRow, TableContents, read_table
from recastkit.metadata.records import Source, XsecRecord
from recastkit.units import CrossSection

log = logging.getLogger(__name__)

#: Environment variable overriding the default catalog path.
CATALOG_ENV = "RECASTKIT_CATALOG"
#: Seconds a connection waits for another process's write lock.
BUSY_TIMEOUT_S = 60.0
#: Relative tolerance under which records of several sources count as agreeing.
AGREEMENT_REL_TOL = 1e-6
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    format TEXT,
    imported_at TEXT NOT NULL,
    n_records INTEGER NOT NULL DEFAULT 0,
    n_skipped INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, location)
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    line INTEGER,
    timestamp TEXT,
    dsid INTEGER,
    etag TEXT,
    physics_short TEXT,
    xsec_value REAL NOT NULL,
    xsec_unit TEXT NOT NULL,
    filter_eff REAL NOT NULL,
    k_factor REAL NOT NULL,
    generator TEXT,
    branching_ratio REAL,
    rel_unc_up REAL,
    rel_unc_down REAL,
    sum_of_weights REAL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS records_dsid_etag ON records (dsid, etag);
CREATE INDEX IF NOT EXISTS records_name ON records (physics_short);
CREATE INDEX IF NOT EXISTS records_source ON records (source_id);
"""

_RECORD_COLUMNS = (
    "source_id, line, timestamp, dsid, etag, physics_short, xsec_value, xsec_unit, filter_eff, "
    "k_factor, generator, branching_ratio, rel_unc_up, rel_unc_down, sum_of_weights, note"
)
_SELECT = (
    "SELECT s.kind, s.location, r.line, r.timestamp, r.dsid, r.etag, r.physics_short, "
    "r.xsec_value, r.xsec_unit, r.filter_eff, r.k_factor, r.generator, r.branching_ratio, "
    "r.rel_unc_up, r.rel_unc_down, r.sum_of_weights, r.note "
    "FROM records r JOIN sources s ON s.id = r.source_id "
)
_ORDER = " ORDER BY s.id, r.line, r.id"


@dataclass(frozen=True)
class ImportSummary:
    """What one table import did.

    Attributes:
        path: The table (absolute path).
        format: The format it was read as.
        n_records: Records stored.
        n_skipped: Data rows read but not stored (placeholders, out-of-range values,
            identical duplicates).
        replaced: Records of an earlier import of the same file that were replaced.
        skipped: The skipped rows with their line numbers and reasons.
        n_placeholders: Of the skipped rows, the σ = 0 placeholders.
        n_negative: Stored records with a negative σ (interference samples, flagged).
    """

    path: Path
    format: str
    n_records: int
    n_skipped: int
    replaced: int = 0
    skipped: tuple[SkippedRow, ...] = ()
    n_placeholders: int = 0
    n_negative: int = 0


@dataclass(frozen=True)
class SourceInfo:
    """One source in the catalog.

    Attributes:
        kind: ``table``, ``service`` or ``user``.
        location: Table path or service query.
        format: Table format (``None`` for services and users).
        imported_at: ISO 8601 UTC time of the (last) import.
        n_records: Records stored from it.
        n_skipped: Rows skipped at import.
    """

    kind: str
    location: str
    format: str | None
    imported_at: str
    n_records: int
    n_skipped: int

    @property
    def name(self) -> str:
        """File name for a table, else the location."""
        return Source(self.kind, self.location).name


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _record_row(source_id: int, rec: XsecRecord, timestamp: str | None) -> tuple[Any, ...]:
    return (
        source_id, rec.source.line, timestamp, rec.dsid, rec.etag, rec.physics_short,
        rec.xsec.value, rec.xsec.unit, rec.filter_eff, rec.k_factor, rec.generator,
        rec.branching_ratio, rec.rel_unc_up, rec.rel_unc_down, rec.sum_of_weights, rec.note,
    )


def _from_row(row: Sequence[Any]) -> XsecRecord:
    (kind, location, line, timestamp, dsid, etag, name, value, unit, eff, k, gen, br, up, down,
     sumw, note) = row
    return XsecRecord(
        dsid=dsid, xsec=CrossSection(value, unit), filter_eff=eff, k_factor=k, etag=etag,
        physics_short=name, generator=gen, branching_ratio=br, rel_unc_up=up,
        rel_unc_down=down, sum_of_weights=sumw, note=note,
        source=Source(kind=kind, location=location, line=line, timestamp=timestamp),
    )


@dataclass(frozen=True)
class _Key:
    """A parsed query key."""

    dsid: int | None
    name: str | None
    etag: str | None
    text: str


_ETAG_RE = re.compile(r"^e[0-9]+$")


def check_etag(etag: str | None) -> str | None:
    """Normalize an e-tag given by the user (``"E5706 "`` -> ``"e5706"``).

    Raises:
        MissingMetadataError: For anything but ``e`` followed by digits (the message names
            ``--etag``).
    """
    if etag is None:
        return None
    text = str(etag).strip().lower()
    if not _ETAG_RE.match(text):
        msg = (
            f"--etag {etag!r} is not an e-tag: expected 'e' followed by digits, e.g. e5706 "
            "(the evgen tag of a dataset name's AMI tags)"
        )
        raise MissingMetadataError(msg)
    return text


def _parse_key(key: int | str, etag: str | None) -> _Key:
    etag = check_etag(etag)
    if isinstance(key, bool):
        msg = f"catalog key must be a DSID, a dataset name or a sample name, got {key!r}"
        raise MissingMetadataError(msg)
    if isinstance(key, int):
        return _Key(key, None, etag, str(key))
    text = str(key).strip()
    if text.isdigit():
        return _Key(int(text), None, etag, text)
    from recastkit.datasets import is_dataset_name, parse_dataset_name

    if is_dataset_name(text):
        try:
            ds = parse_dataset_name(text)
        except DatasetNameError:  # pragma: no cover - is_dataset_name said it parses
            return _Key(None, text, etag, text)
        return _Key(ds.dsid, None, etag if etag is not None else ds.tags.etag, text)
    return _Key(None, text, etag, text)


class Catalog:
    """The cross-section catalog (an SQLite file).

    Opening a catalog has no side effect: look-ups use a read-only connection (SQLite
    ``mode=ro``), so they work on a catalog the user may read but not write and never create
    a file, a folder or a journal. The file (with its folder) is created by the first write
    (:meth:`import_table`, :meth:`add_records`); a write that fails leaves no new file behind.

    Args:
        path: The database file; default: ``$RECASTKIT_CATALOG`` or :meth:`default_path`.

    Raises:
        CatalogError: The file exists but cannot be opened or is not a recastkit catalog.
            Reading a catalog that does not exist raises :class:`MissingCatalogError`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            env = os.environ.get(CATALOG_ENV)
            path = Path(env) if env else self.default_path()
        self.path = Path(path).expanduser()
        # One connection per (process, thread): sqlite3 connections must not cross a fork,
        # and each thread gets its own so that callers need no locking. The flag says whether
        # the connection may write.
        self._conns: dict[tuple[int, int], tuple[sqlite3.Connection, bool]] = {}
        if self.path.exists():
            self._connection(write=False)  # a corrupt file or a wrong schema fails here

    @classmethod
    def default_path(cls) -> Path:
        """``platformdirs.user_data_dir("recastkit")/catalog.sqlite`` (ignores the env var)."""
        import platformdirs

        return Path(platformdirs.user_data_dir("recastkit")) / "catalog.sqlite"

    # ------------------------------------------------------------------ connection handling
    def _connection(self, write: bool) -> sqlite3.Connection:
        owner = (os.getpid(), threading.get_ident())
        existing = self._conns.get(owner)
        if existing is not None and (existing[1] or not write):
            return existing[0]
        if existing is not None:
            existing[0].close()
            del self._conns[owner]
        try:
            conn = self._open_rw() if write else self._open_ro()
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            msg = f"cannot open the cross-section catalog {self.path}: {exc}"
            raise CatalogError(msg) from None
        if version not in (0, SCHEMA_VERSION):
            conn.close()
            msg = (
                f"catalog {self.path} has schema version {version}; this recastkit "
                f"reads version {SCHEMA_VERSION} (delete the file or set {CATALOG_ENV})"
            )
            raise CatalogError(msg)
        self._conns[owner] = (conn, write)
        return conn

    def _open_ro(self) -> sqlite3.Connection:
        """A read-only connection: creates no file (no journal, no WAL index)."""
        uri = self.path.resolve().as_uri() + "?mode=ro"
        if _is_wal_without_log(self.path):
            # A catalog written by an older recastkit in WAL mode: a read-only reader would
            # have to create the -wal/-shm files; with no -wal file there is nothing to replay.
            uri += "&immutable=1"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _open_rw(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # A rollback journal (not WAL): readers then need no write access to the folder.
        # Catalogs of older versions in WAL mode are converted by their next write.
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _reader(self, key: str | None = None) -> sqlite3.Connection | None:
        """The connection for a look-up; ``None`` for an empty (schema-less) database.

        Raises:
            MissingCatalogError: The catalog file does not exist.
        """
        owner = (os.getpid(), threading.get_ident())
        if owner not in self._conns and not self.path.exists():
            what = f"no cross-section record for {key!r}: " if key is not None else ""
            msg = (
                f"{what}no cross-section catalog at {self.path} (the file does not exist); "
                f"import a table first with `recastkit xsec import TABLE --catalog "
                f"{self.path}` (or set {CATALOG_ENV})"
            )
            raise MissingCatalogError(msg)
        conn = self._connection(write=False)
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            return None
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; creates the catalog (and folder) if needed.

        On any failure the transaction is rolled back, and a catalog file created by this
        call is removed again together with the folders created for it.
        """
        existed = self.path.exists()
        new_dirs: list[Path] = []
        if not existed:
            parent = self.path.parent
            while not parent.exists():
                new_dirs.append(parent)
                parent = parent.parent
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                msg = f"cannot create the cross-section catalog {self.path}: {exc.strerror}"
                raise CatalogError(msg) from None
        try:
            conn = self._connection(write=True)
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                msg = f"cannot lock the cross-section catalog {self.path} for writing: {exc}"
                raise CatalogError(msg) from None
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    msg = f"cannot write the cross-section catalog {self.path}: {exc}"
                    raise CatalogError(msg) from None
                raise
        except BaseException:
            if not existed:
                self._remove_new_file(new_dirs)
            raise
        if not existed:
            with contextlib.suppress(OSError):
                os.chmod(self.path, default_file_mode())

    def _remove_new_file(self, new_dirs: Sequence[Path]) -> None:
        """Remove a catalog file created by a failed write (unless another process filled it)."""
        self.close()
        try:
            if self.path.stat().st_size > 0:  # another process committed to it meanwhile
                return
        except OSError:
            pass
        for suffix in ("", "-journal"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").unlink()
        for folder in new_dirs:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()

    def close(self) -> None:
        """Close the database connections of this process (reopened on next use)."""
        pid = os.getpid()
        for owner, (conn, _) in list(self._conns.items()):
            if owner[0] == pid:
                conn.close()
        self._conns.clear()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({str(self.path)!r})"

    # ------------------------------------------------------------------------------ writes
    def import_table(self, path: str | Path, format: str | None = None,
                     xsec_unit: str | None = None) -> ImportSummary:
        """Read a table and store its records, replacing those of an earlier import of it.

        Args:
            path: The table file.
            format: Force a format (see :data:`recastkit.metadata.readers.FORMATS`).
            xsec_unit: Override the σ unit of the table.

        Returns:
            The counts of stored and skipped rows.

        Raises:
            TableFormatError: The table cannot be parsed (nothing is stored then).
            CatalogError: The database cannot be written.
        """
        return self.import_tables([path], format=format, xsec_unit=xsec_unit)[0]

    def import_tables(self, paths: Iterable[str | Path], format: str | None = None,
                      xsec_unit: str | None = None) -> list[ImportSummary]:
        """Import several tables all or nothing: every table is parsed, then one transaction.

        Args:
            paths: The table files.
            format: Force a format for every table.
            xsec_unit: Override the σ unit of every table.

        Returns:
            One summary per table, in order.

        Raises:
            TableFormatError: A table cannot be parsed (nothing is stored, no file created).
            CatalogError: The database cannot be written (nothing is stored; a catalog file
                created for this import is removed).
        """
        tables = [read_table(p, format=format, xsec_unit=xsec_unit) for p in paths]
        stamp = _now()
        replaced: list[int] = []
        with self._write() as conn:
            replaced.extend(_store_table(conn, contents, stamp) for contents in tables)
        summaries = []
        for contents, n_replaced in zip(tables, replaced, strict=True):
            if n_replaced:
                log.info("%s: replaced %d records of the earlier import", contents.path.name,
                         n_replaced)
            log.info("%s: imported %d records into %s", contents.path.name,
                     len(contents.records), self.path)
            summaries.append(ImportSummary(contents.path, contents.format,
                                           len(contents.records), len(contents.skipped),
                                           n_replaced, contents.skipped,
                                           contents.n_placeholders, contents.n_negative))
        return summaries

    def add_records(self, records: Iterable[XsecRecord]) -> int:
        """Store records as they are (e.g. from a metadata service or typed by a user).

        Each record keeps its own :class:`Source`; a source without a timestamp gets the time of
        this call. Records are appended: to replace a table, use :meth:`import_table`.

        Returns:
            The number of records stored.
        """
        stamp = _now()
        n = 0
        with self._write() as conn:
            ids: dict[tuple[str, str], int] = {}
            for rec in records:
                key = (rec.source.kind, rec.source.location)
                if key not in ids:
                    row = conn.execute(
                        "SELECT id FROM sources WHERE kind = ? AND location = ?", key
                    ).fetchone()
                    if row is None:
                        cur = conn.execute(
                            "INSERT INTO sources (kind, location, format, imported_at) "
                            "VALUES (?, ?, NULL, ?)", (*key, stamp),
                        )
                        assert cur.lastrowid is not None
                        ids[key] = cur.lastrowid
                    else:
                        ids[key] = row[0]
                conn.execute(
                    f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES ({', '.join('?' * 16)})",
                    _record_row(ids[key], rec, rec.source.timestamp or stamp),
                )
                n += 1
            for source_id in ids.values():
                conn.execute(
                    "UPDATE sources SET n_records = (SELECT COUNT(*) FROM records "
                    "WHERE source_id = ?), imported_at = ? WHERE id = ?",
                    (source_id, stamp, source_id),
                )
        return n

    # ------------------------------------------------------------------------------- reads
    def query(self, key: int | str, etag: str | None = None) -> list[XsecRecord]:
        """Every record matching a key, in import order.

        Args:
            key: A DSID (``345055`` or ``"345055"``), a full dataset name (its first e-tag
                selects, unless ``etag`` is given), or a sample name (``physics_short``, e.g.
                an ATLAS Open Data name such as ``"Zee"``).
            etag: Keep records of this e-tag and records valid for every e-tag (tables
                without an e-tag column).

        Returns:
            The matching records (possibly none).
        """
        k = _parse_key(key, etag)
        conn = self._reader(k.text)
        if conn is None:
            return []
        args: list[int | str | None]
        if k.dsid is not None:
            sql, args = _SELECT + "WHERE r.dsid = ?", [k.dsid]
        else:
            sql, args = _SELECT + "WHERE r.physics_short = ?", [k.name]
        if k.etag is not None:
            sql += " AND (r.etag = ? OR r.etag IS NULL)"
            args.append(k.etag.strip().lower())
        rows = conn.execute(sql + _ORDER, args).fetchall()
        return [_from_row(row) for row in rows]

    def etags(self, key: int | str) -> list[str]:
        """The e-tags stored for a key (sorted)."""
        k = _parse_key(key, None)
        conn = self._reader(k.text)
        if conn is None:
            return []
        column, value = ("dsid", k.dsid) if k.dsid is not None else ("physics_short", k.name)
        rows = conn.execute(
            f"SELECT DISTINCT etag FROM records WHERE {column} = ? AND etag IS NOT NULL "
            "ORDER BY etag", (value,),
        ).fetchall()
        return [r[0] for r in rows]

    def lookup(self, key: int | str, etag: str | None = None,
               source: str | None = None) -> XsecRecord:
        """Exactly one record for a key, or an error that explains why not.

        Several records that agree (same σ × ε × k to :data:`AGREEMENT_REL_TOL`) are not
        ambiguous: the first one (in import order) is returned and the others are logged.

        Args:
            key: As for :meth:`query`.
            etag: As for :meth:`query`.
            source: Keep only records whose source matches: a file name
                (``mc16_13TeV_Backgrounds.txt``), a full path, a ``file:line`` string, or a
                source kind (``table``, ``service``, ``user``).

        An e-tag (given, or the first e-tag of a full dataset name) must be ``e`` + digits.
        When the catalog holds e-tagged rows for the key and none has that e-tag, it is an
        error listing the e-tags that exist: the e-tag-less records of other tables are never
        a fallback for a mistyped e-tag. When no row of the key has an e-tag, the e-tag-less
        records are valid for every e-tag (with a warning).

        Raises:
            MissingMetadataError: No record (the message suggests importing a table and lists
                the e-tags and sources that exist for the key), an e-tag that matches no row,
                or a malformed e-tag.
            AmbiguousMetadataError: Several disagreeing records; the message lists every
                candidate with its source and how to choose.
        """
        k = _parse_key(key, etag)
        records = self.query(key, etag)
        etag_text = f" with e-tag {k.etag}" if k.etag else ""
        if k.etag is not None:
            known = self.etags(key)
            if known and k.etag not in known:
                given = "--etag" if etag is not None else "the e-tag of the dataset name"
                msg = (
                    f"no cross-section record for {k.text!r} with e-tag {k.etag} ({given}) in "
                    f"catalog {self.path}; e-tags in the catalog for it: {', '.join(known)} "
                    "(a record without an e-tag is not used in place of a missing e-tag)"
                )
                raise MissingMetadataError(msg)
            if not known and records:
                log.warning(
                    "%s: no record in catalog %s has an e-tag; e-tag %s matches the e-tag-less "
                    "record(s) of %s, valid for every e-tag", k.text, self.path, k.etag,
                    ", ".join(sorted({r.source.name for r in records})),
                )
        if source is not None:
            records = [r for r in records if _source_matches(r.source, source)]
        if not records:
            hints: list[str] = []
            other = self.etags(key) if k.etag else []
            if other:
                hints.append(f"e-tags in the catalog for it: {', '.join(other)}")
            if source is not None:
                names = sorted({str(r.source.name) for r in self.query(key, etag)})
                if names:
                    hints.append(f"sources with it: {', '.join(names)}")
            hint = ("; " + "; ".join(hints)) if hints else ""
            src = f" from source {source!r}" if source is not None else ""
            msg = (
                f"no cross-section record for {k.text!r}{etag_text}{src} in catalog "
                f"{self.path}{hint}; import a table with `recastkit xsec import TABLE` "
                "(or Catalog.import_table)"
            )
            raise MissingMetadataError(msg)
        if len(records) == 1:
            return records[0]
        first = records[0]
        agree = all(
            math.isclose(r.effective_xsec_fb, first.effective_xsec_fb,
                         rel_tol=AGREEMENT_REL_TOL)
            for r in records[1:]
        )
        if agree:
            log.info(
                "%s%s: %d records agree on σ·ε·k = %.8g fb; using %s (also in %s)",
                k.text, etag_text, len(records), first.effective_xsec_fb, first.source,
                ", ".join(str(r.source) for r in records[1:]),
            )
            return first
        from recastkit.metadata.checks import cross_check

        lines = "\n".join(f"  - {r.describe()}" for r in records)
        conflicts = cross_check(records)
        why = "".join(f"\n  ! {c.message}" for c in conflicts)
        etags = sorted({r.etag for r in records if r.etag})
        choose = []
        if len(etags) > 1:
            choose.append(f"--etag one of {', '.join(etags)}")
        choose.append(
            "--xsec-source one of " + ", ".join(sorted({r.source.name for r in records}))
        )
        msg = (
            f"{len(records)} disagreeing cross-section records for {k.text!r}{etag_text} in "
            f"catalog {self.path}; choose with {' or '.join(choose)}:\n{lines}{why}"
        )
        raise AmbiguousMetadataError(msg)

    def sources(self) -> list[SourceInfo]:
        """Every source in the catalog, in import order."""
        conn = self._reader()
        if conn is None:
            return []
        rows = conn.execute(
            "SELECT kind, location, format, imported_at, n_records, n_skipped FROM sources "
            "ORDER BY id"
        ).fetchall()
        return [SourceInfo(*row) for row in rows]

    def records(self, keys: Iterable[int] | None = None) -> list[XsecRecord]:
        """All records (or those of the given DSIDs), in import order."""
        conn = self._reader()
        if conn is None:
            return []
        if keys is None:
            rows = conn.execute(_SELECT + _ORDER).fetchall()
        else:
            wanted = sorted({int(k) for k in keys})
            rows = []
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                rows += conn.execute(
                    _SELECT + f"WHERE r.dsid IN ({', '.join('?' * len(chunk))})" + _ORDER, chunk
                ).fetchall()
        return [_from_row(row) for row in rows]

    def __len__(self) -> int:
        conn = self._reader()
        if conn is None:
            return 0
        return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def export(self, path: str | Path, keys: Iterable[int] | None = None) -> int:
        """Write records in the PMG format (``crossSection_pb`` and ``etag`` columns), atomically.

        Args:
            path: Output file.
            keys: DSIDs to export (default: all). Name-keyed records (no DSID) cannot be
                written in the PMG format and are left out (logged).

        Returns:
            The number of rows written.
        """
        from recastkit.metadata.export import write_pmg

        return write_pmg(path, self.records(keys))


def _store_table(conn: sqlite3.Connection, contents: TableContents, stamp: str) -> int:
    """Store one parsed table, replacing an earlier import of it; returns the rows replaced."""
    location = str(contents.path)
    old = conn.execute(
        "SELECT id, n_records FROM sources WHERE kind = 'table' AND location = ?",
        (location,),
    ).fetchone()
    replaced = 0
    if old is not None:
        replaced = conn.execute("DELETE FROM records WHERE source_id = ?", (old[0],)).rowcount
        conn.execute("DELETE FROM sources WHERE id = ?", (old[0],))
    cur = conn.execute(
        "INSERT INTO sources (kind, location, format, imported_at, n_records, n_skipped)"
        " VALUES ('table', ?, ?, ?, ?, ?)",
        (location, contents.format, stamp, len(contents.records), len(contents.skipped)),
    )
    source_id = cur.lastrowid
    assert source_id is not None
    conn.executemany(
        f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES ({', '.join('?' * 16)})",
        (_record_row(source_id, rec, stamp) for rec in contents.records),
    )
    return int(replaced)


def _is_wal_without_log(path: Path) -> bool:
    """Whether an SQLite file is in WAL mode (header bytes 18-19) with no ``-wal`` file."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    wal = len(header) == 20 and header[18] == 2 and header[19] == 2
    return wal and not Path(f"{path}-wal").exists()


def _source_matches(src: Source, wanted: str) -> bool:
    return wanted in (src.kind, src.location, src.name, str(src)) or (
        src.kind == "table" and Path(wanted).expanduser().resolve() == Path(src.location)
    )
