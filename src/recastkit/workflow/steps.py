"""Steps of a run: keys from their inputs, a directory cache, and the ``steps.json`` ledger.

A step's key is the SHA-256 (first 16 hex digits) of the canonical JSON of everything it reads:
the identity of its input files (:func:`file_identity`), the spec section it reads, the
recastkit version and the keys of the steps it depends on. Its outputs live in
``DIR/steps/<name>-<key>/`` with a ``step.json`` describing them. The directory is built under
a temporary name beside it and renamed into place when complete, so it appears whole or not
at all: a run killed mid-way leaves only temporary directories (removed by the next run) and
the next run finds every finished step and does not redo it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from recastkit import __version__
from recastkit._atomic import write_text_atomic
from recastkit._json import dumps, to_jsonable

log = logging.getLogger(__name__)

#: Files larger than this are identified by size + mtime + ROOT UUID instead of a checksum.
CHECKSUM_MAX_BYTES = 100 * 1024 * 1024
#: Name of the description file inside a step directory.
STEP_FILE = "step.json"
_TMP_PREFIX = ".tmp-"

StepStatus = Literal["ran", "cached"]


@dataclass(frozen=True)
class StepRecord:
    """One line of ``steps.json``.

    Attributes:
        name: Step name (``select-ZH125_llbb``, ``fit-ZH125_llbb``, ...).
        status: ``ran`` or ``cached``.
        key: The step's key (hash of its inputs).
        seconds: Wall time of the step in this run (loading it, when cached).
    """

    name: str
    status: StepStatus
    key: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The ``steps.json`` entry."""
        return {"name": self.name, "status": self.status, "key": self.key,
                "seconds": round(self.seconds, 6)}


@dataclass(frozen=True)
class StepOutput:
    """A finished step: where its outputs are and what its ``step.json`` says."""

    name: str
    key: str
    directory: Path
    info: Mapping[str, Any]
    record: StepRecord


_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (memoized per path, size and mtime within the process)."""
    p = Path(path)
    st = p.stat()
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _HASHES:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[memo] = h.hexdigest()
    return _HASHES[memo]


def _root_uuid(path: Path) -> str | None:
    try:
        from recastkit.io.root import open_root

        f = open_root(path)
        return str(getattr(f, "file", f).uuid)
    except Exception:  # not ROOT, or unreadable: size and mtime only
        return None


def file_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """How a step key identifies an input file.

    Files up to :data:`CHECKSUM_MAX_BYTES` by SHA-256 of their bytes (``method: sha256``);
    larger ones by size, modification time and the ROOT file UUID
    (``method: size+mtime+uuid``), so that a multi-GB input is not read twice.
    """
    p = Path(path)
    st = p.stat()
    if st.st_size <= CHECKSUM_MAX_BYTES:
        return {"path": str(p), "size": st.st_size, "method": "sha256",
                "sha256": sha256_file(p)}
    return {"path": str(p), "size": st.st_size, "method": "size+mtime+uuid",
            "mtime_ns": st.st_mtime_ns, "uuid": _root_uuid(p)}


def step_key(kind: str, payload: Mapping[str, Any]) -> str:
    """The key of a step: hash of its kind, inputs and the recastkit version.

    File paths do not enter the key (only their identity's content fields), so a moved
    analysis keeps its cache.
    """

    def strip_paths(obj: Any) -> Any:
        if isinstance(obj, Mapping):
            return {k: strip_paths(v) for k, v in obj.items()
                    if not (k == "path" and "method" in obj)}
        if isinstance(obj, list):
            return [strip_paths(v) for v in obj]
        return obj

    doc = {"kind": kind, "recastkit": __version__,
           "payload": strip_paths(to_jsonable(payload))}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StepCache:
    """The step directories of one output folder (``DIR/steps``) and this run's records.

    Args:
        outdir: The run's output folder.
        force: Run every step even when it is cached (its directory is then replaced).
    """

    def __init__(self, outdir: str | os.PathLike[str], *, force: bool = False) -> None:
        self.outdir = Path(outdir)
        self.force = force
        self.root = self.outdir / "steps"
        self.records: list[StepRecord] = []
        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_stale()

    def _clean_stale(self) -> None:
        """Remove temporary step directories of runs that died (their pid is gone)."""
        for d in self.root.glob(f"{_TMP_PREFIX}*"):
            try:
                pid = int(d.name.rsplit("-", 2)[-2])
            except (ValueError, IndexError):
                continue
            if not _pid_alive(pid) or pid == os.getpid():
                log.info("removing the unfinished step directory %s", d)
                shutil.rmtree(d, ignore_errors=True)

    def directory(self, name: str, key: str) -> Path:
        """Where the step's outputs are (or will be)."""
        return self.root / f"{name}-{key}"

    def lookup(self, name: str, key: str) -> Mapping[str, Any] | None:
        """The ``step.json`` of a finished step, or None."""
        path = self.directory(name, key) / STEP_FILE
        try:
            info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return info

    def run(self, name: str, key: str, body: Callable[[Path], Mapping[str, Any]],
            inputs: Mapping[str, Any] | None = None) -> StepOutput:
        """Return the finished step ``name``/``key``, running ``body`` if it is not cached.

        Args:
            name: Step name.
            key: Step key.
            body: Writes the outputs into the directory it is given (a temporary one) and
                returns a JSON-ready description, stored as ``step.json``.
            inputs: What the key was computed from (stored in ``step.json``).
        """
        t0 = time.perf_counter()
        final = self.directory(name, key)
        info = None if self.force else self.lookup(name, key)
        if info is not None:
            record = StepRecord(name, "cached", key, time.perf_counter() - t0)
            log.info("step %s: cached (%s)", name, key)
        else:
            tmp = self.root / f"{_TMP_PREFIX}{name}-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir(parents=True)
            try:
                described = dict(body(tmp))
                info = {"name": name, "key": key, "recastkit_version": __version__,
                        "inputs": to_jsonable(inputs or {}), **to_jsonable(described)}
                (tmp / STEP_FILE).write_text(dumps(info) + "\n", encoding="utf-8")
                if self.force and final.exists():
                    old = tmp.with_name(tmp.name + "-replaced")
                    os.rename(final, old)
                    shutil.rmtree(old, ignore_errors=True)
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not (final / STEP_FILE).exists():
                        raise
                    log.info("step %s finished concurrently elsewhere; keeping that one", name)
                    shutil.rmtree(tmp, ignore_errors=True)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            record = StepRecord(name, "ran", key, time.perf_counter() - t0)
            log.info("step %s: ran in %.2f s (%s)", name, record.seconds, key)
        self.records.append(record)
        return StepOutput(name, key, final, info, record)

    def write_steps_json(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write this run's records (one entry per step, in order) to ``DIR/steps.json``."""
        out = Path(path) if path is not None else self.outdir / "steps.json"
        write_text_atomic(out, dumps([r.to_dict() for r in self.records]) + "\n")
        return out


