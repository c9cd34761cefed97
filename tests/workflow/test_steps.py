"""The step cache: keys, atomic step directories, stale temporary directories, --force."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from recastkit.workflow.steps import StepCache, file_identity, step_key


def test_key_depends_on_content_not_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same")
    b.write_text("same")
    ida, idb = file_identity(a), file_identity(b)
    assert ida["sha256"] == hashlib.sha256(b"same").hexdigest()
    assert step_key("select", {"files": [ida]}) == step_key("select", {"files": [idb]})
    b.write_text("other")
    assert step_key("select", {"files": [ida]}) != step_key("select", {"files": [file_identity(b)]})
    assert step_key("select", {"x": 1}) != step_key("scale", {"x": 1})


def test_step_runs_once_and_is_then_cached(tmp_path: Path) -> None:
    calls: list[Path] = []

    def body(out: Path) -> dict[str, int]:
        calls.append(out)
        (out / "result.txt").write_text("42")
        return {"answer": 42}

    cache = StepCache(tmp_path)
    first = cache.run("demo", "k1", body)
    second = StepCache(tmp_path).run("demo", "k1", body)
    assert len(calls) == 1
    assert first.record.status == "ran"
    assert second.record.status == "cached"
    assert second.info["answer"] == 42
    assert (second.directory / "result.txt").read_text() == "42"
    assert calls[0] != second.directory  # built elsewhere, renamed into place
    forced = StepCache(tmp_path, force=True).run("demo", "k1", body)
    assert forced.record.status == "ran"
    assert len(calls) == 2
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == ["demo-k1"]


def test_a_failing_step_leaves_nothing(tmp_path: Path) -> None:
    def body(out: Path) -> dict[str, int]:
        (out / "half.txt").write_text("half")
        raise RuntimeError("boom")

    cache = StepCache(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        cache.run("bad", "k", body)
    assert list((tmp_path / "steps").iterdir()) == []
    cache.write_steps_json()
    assert json.loads((tmp_path / "steps.json").read_text()) == []


def test_stale_temporary_directories_of_dead_runs_are_removed(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    dead = steps / ".tmp-select-sig-0123456789abcdef-999999999-deadbeef"
    alive = steps / f".tmp-select-sig-0123456789abcdef-{os.getppid()}-cafecafe"
    for d in (dead, alive):
        d.mkdir(parents=True)
    StepCache(tmp_path)
    assert not dead.exists()
    assert alive.exists()
