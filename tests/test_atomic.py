"""Atomic writes: success renames, failure leaves the target untouched and no temp files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from recastkit._atomic import atomic_path, atomic_paths, current_umask, write_text_atomic
from recastkit.exceptions import FileAccessError


def test_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "hello\n")
    assert target.read_text() == "hello\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failure_keeps_previous_content(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")

    def write_then_fail() -> None:
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".json"
            tmp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_files_respect_the_umask(tmp_path: Path, umask: int) -> None:
    expected = {0o022: 0o644, 0o027: 0o640, 0o002: 0o664}[umask]
    assert current_umask() == umask
    write_text_atomic(tmp_path / "a.txt", "x")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.unlink()  # writers such as uproot may recreate the file
        tmp.write_bytes(b"y")
    with atomic_paths(tmp_path / "c.root", tmp_path / "c.json") as (t1, t2):
        t1.write_text("1")
        t2.write_text("2")
    for name in ("a.txt", "b.bin", "c.root", "c.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


def test_paths_replaced_together(tmp_path: Path) -> None:
    a, b = tmp_path / "out.root", tmp_path / "out.json"
    a.write_text("old a")
    with atomic_paths(a, b) as (ta, tb):
        assert (ta.suffix, tb.suffix) == (".root", ".json")
        ta.write_text("new a")
        tb.write_text("new b")
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.root"]


def _write_pair(a: Path, b: Path) -> None:
    with atomic_paths(a, b) as (ta, tb):
        ta.write_text("new a")
        tb.write_text("new b")


@pytest.mark.parametrize("b_existed", [True, False])
def test_failed_second_rename_restores_the_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 b_existed: bool) -> None:
    a, b = tmp_path / "out.root", tmp_path / "out.json"
    a.write_text("old a")
    if b_existed:
        b.write_text("old b")
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == b:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(FileAccessError, match=r"out\.json: .*no space left on device"):
        _write_pair(a, b)
    assert a.read_text() == "old a"
    assert (b.read_text() if b_existed else b.exists()) == ("old b" if b_existed else False)
    expected = ["out.json", "out.root"] if b_existed else ["out.root"]
    assert sorted(p.name for p in tmp_path.iterdir()) == expected


def test_failed_rename_of_new_pair_leaves_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "out.root", tmp_path / "out.json"
    b.mkdir()  # a directory in the way: the second rename fails
    (b / "keep").write_text("k")
    with pytest.raises(FileAccessError, match=r"out\.json: .*is a directory"):
        _write_pair(a, b)
    assert not a.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert [p.name for p in b.iterdir()] == ["keep"]
