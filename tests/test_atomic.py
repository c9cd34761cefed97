"""Atomic writes: success renames, failure leaves the target untouched and no temp files."""

from __future__ import annotations

from pathlib import Path

import pytest

from recastkit._atomic import atomic_path, write_text_atomic


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
