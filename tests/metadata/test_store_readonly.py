"""The catalog has no side effects: look-ups never create or modify a file; failed writes
leave nothing; a catalog that is readable but not writable still answers look-ups."""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recastkit.exceptions import CatalogError, MissingCatalogError, MissingMetadataError
from recastkit.metadata import Catalog, store
from recastkit.metadata.readers import PMG_HEADER

ROW = "{dsid}\t\tZH\t\t{xsec_pb}\t\t1.0\t\t1.0\t\t0.0\t\t0.0\t\tgen\t\te5706\n"


def _table(path: Path, n: int = 5) -> Path:
    rows = "".join(ROW.format(dsid=345050 + i, xsec_pb=0.01 * (i + 1)) for i in range(n))
    path.write_text(PMG_HEADER + "\n" + rows)
    return path


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    db = tmp_path / "cat" / "catalog.sqlite"
    with Catalog(db) as cat:
        cat.import_table(_table(tmp_path / "t.txt"))
    return db


def test_lookups_on_a_mistyped_path_create_nothing(tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "catalg.sqlite"
    cat = Catalog(db)
    for read in (lambda: cat.query(345055), lambda: cat.lookup(345055), cat.sources,
                 cat.records, lambda: len(cat), lambda: cat.export(tmp_path / "out.txt")):
        with pytest.raises(MissingCatalogError) as err:
            read()
        text = str(err.value)
        assert str(db) in text
        assert "recastkit xsec import TABLE --catalog" in text
    with pytest.raises(MissingMetadataError, match="'345055'"):  # still a "no record" error
        cat.lookup(345055)
    assert list(tmp_path.iterdir()) == []


def test_reads_open_read_only_and_add_no_file(filled: Path, tmp_path: Path) -> None:
    before = _listing(filled.parent)
    assert set(before) == {"catalog.sqlite"}  # rollback journal, nothing beside the file
    cat = Catalog(filled)
    assert len(cat.query(345053)) == 1
    assert cat.lookup(345052).xsec.value == 0.03
    assert len(cat) == 5
    assert cat.sources()[0].n_records == 5
    assert cat.export(tmp_path / "export.txt") == 5
    conn = cat._reader()
    assert conn is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # even as root
        conn.execute("DELETE FROM records")
    cat.close()
    assert _listing(filled.parent) == before


def test_read_only_permissions(filled: Path) -> None:
    folder = filled.parent
    before = _listing(folder)
    filled.chmod(0o444)
    folder.chmod(0o555)
    try:
        with Catalog(filled) as cat:
            assert cat.lookup(345050).xsec.value == 0.01
            assert len(cat.sources()) == 1
        assert _listing(folder) == before
    finally:
        folder.chmod(0o755)
        filled.chmod(0o644)


def test_old_wal_catalog_is_read_without_new_files_and_converted_on_write(
        filled: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(filled)
    assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    conn.close()
    before = _listing(filled.parent)
    assert set(before) == {"catalog.sqlite"}
    with Catalog(filled) as cat:
        assert len(cat) == 5
    assert _listing(filled.parent) == before
    with Catalog(filled) as cat:
        cat.import_table(_table(tmp_path / "t2.txt", n=2))
        assert len(cat) == 7
    conn = sqlite3.connect(filled)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert set(_listing(filled.parent)) == {"catalog.sqlite"}


def _fail_on_third_row(monkeypatch: pytest.MonkeyPatch) -> None:
    real = store._record_row
    calls = []

    def row(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        out = real(*args)
        if len(calls) == 3:  # xsec_value NULL: a NOT NULL constraint error midway
            out = (*out[:6], None, *out[7:])
        return out

    monkeypatch.setattr(store, "_record_row", row)


def test_failed_import_midway_into_a_new_catalog_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(tmp_path / "t.txt")
    db = tmp_path / "new" / "dir" / "catalog.sqlite"
    _fail_on_third_row(monkeypatch)
    with pytest.raises(CatalogError, match=r"cannot write .*catalog\.sqlite.*NOT NULL"):
        Catalog(db).import_table(table)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_failed_import_midway_into_an_existing_catalog_changes_nothing(
        filled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _listing(filled.parent)
    _fail_on_third_row(monkeypatch)
    with pytest.raises(CatalogError, match="NOT NULL"):
        Catalog(filled).import_table(_table(tmp_path / "other.txt", n=4))
    assert _listing(filled.parent) == before
    with Catalog(filled) as cat:
        assert len(cat) == 5
        assert [s.n_records for s in cat.sources()] == [5]


def test_import_tables_is_all_or_nothing(tmp_path: Path) -> None:
    good = _table(tmp_path / "good.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text(PMG_HEADER + "\n345055\t\tZH\t\tnope\t\t1\t\t1\t\t0\t\t0\t\tg\t\te1\n")
    db = tmp_path / "c.sqlite"
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        Catalog(db).import_tables([good, bad])
    assert not db.exists()
    summaries = Catalog(db).import_tables([good, _table(tmp_path / "g2.txt", n=3)])
    assert [s.n_records for s in summaries] == [5, 3]


@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_new_catalog_respects_the_umask(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "c.sqlite"
    Catalog(db).import_table(_table(tmp_path / "t.txt"))
    assert stat.S_IMODE(db.stat().st_mode) == {0o022: 0o644, 0o027: 0o640}[umask]


def _nobody() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a subprocess as another user")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")


def _run_as(user: pwd.struct_passwd, check: Callable[[], str]) -> str:
    """Run ``check`` in a forked child under another uid; return what it reports.

    A fork (not a new interpreter): the modules are already loaded, so the child needs no
    access to the interpreter or the sources (which may sit in root's home).
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(r)
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.write(w, check().encode())
            code = 0
        except BaseException as exc:
            os.write(w, f"{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out


def test_cli_reads_a_catalog_another_user_cannot_write(tmp_path: Path) -> None:
    """Permission bits do not apply to root: read the catalog as the user 'nobody'."""
    from click.testing import CliRunner

    import recastkit.cli.xsec  # noqa: F401  (imported before the fork)
    from recastkit.cli import main

    user = _nobody()
    folder = Path(tempfile.mkdtemp(prefix="recastkit-ro-"))  # tmp_path is private to root
    try:
        folder.chmod(0o755)
        db = folder / "catalog.sqlite"
        with Catalog(db) as cat:
            cat.import_table(_table(tmp_path / "t.txt"))
        assert stat.S_IMODE(db.stat().st_mode) & 0o022 == 0  # not writable by others

        def read() -> str:
            assert os.getuid() == 0 or not os.access(db, os.W_OK)
            out = []
            for args in (["xsec", "show", "345053", "--json"], ["xsec", "sources", "--json"]):
                res = CliRunner().invoke(main, [*args, "--catalog", str(db)])
                assert res.exit_code == 0, res.output
                out.append(json.loads(res.output))
            return json.dumps(out)

        read()  # once as root, so that every lazy import is done before the fork
        before = _listing(folder)
        shown, sources = json.loads(_run_as(user, read))
        assert shown["records"][0]["xsec_fb"] == pytest.approx(40.0)
        assert sources["sources"][0]["n_records"] == 5
        assert _listing(folder) == before
    finally:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
