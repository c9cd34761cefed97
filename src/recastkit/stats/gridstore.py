"""A resumable per-point store for grids: one JSON line per finished point, fsynced.

Each line is ``{"key": ..., "result": {...}}``; the key is the SHA-256 of the background's
digest, the patch's digest and the settings (μ, test statistic, limits, engine), so a result
is reused only for exactly the same question. A grid killed mid-way leaves at most one torn
last line, which :class:`PointStore` drops when it reopens the file; the points already on disk
are not recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from recastkit.stats.results import PointResult, PointStatus

log = logging.getLogger(__name__)


def point_key(background_digest: str, patch_digest: str, settings: Mapping[str, Any]) -> str:
    """The store key of one point: SHA-256 over the two digests and the sorted settings."""
    text = json.dumps([background_digest, patch_digest, dict(settings)], sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _f(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def result_to_record(r: PointResult) -> dict[str, Any]:
    """A JSON-safe dict of ``r`` (NaN as null), read back exactly by :func:`result_from_record`."""
    return {
        "name": r.name, "mu": r.mu, "cls_observed": _f(r.cls_observed),
        "cls_expected": [_f(x) for x in r.cls_expected], "status": r.status,
        "observed_limit": _f(r.observed_limit),
        "expected_limits": None if r.expected_limits is None
        else [_f(x) for x in r.expected_limits],
        "cl": r.cl, "test_stat": r.test_stat, "reason": r.reason,
        "parameters": dict(r.parameters), "path": r.path,
    }


def result_from_record(d: Mapping[str, Any]) -> PointResult:
    """Inverse of :func:`result_to_record`."""
    exp = tuple(_nan(x) for x in d["cls_expected"])
    lims = d.get("expected_limits")
    return PointResult(
        name=str(d["name"]), mu=float(d["mu"]), cls_observed=_nan(d["cls_observed"]),
        cls_expected=(exp[0], exp[1], exp[2], exp[3], exp[4]),
        status=cast("PointStatus", d["status"]),
        observed_limit=None if d.get("observed_limit") is None and lims is None
        else _nan(d.get("observed_limit")),
        expected_limits=None if lims is None else (
            _nan(lims[0]), _nan(lims[1]), _nan(lims[2]), _nan(lims[3]), _nan(lims[4])),
        cl=float(d.get("cl", 0.95)), test_stat=str(d.get("test_stat", "qtilde")),
        reason=str(d.get("reason", "")), parameters=dict(d.get("parameters") or {}),
        path=str(d.get("path", "")),
    )


class PointStore:
    """Append-only JSON-lines store of finished points (``OUT/points.jsonl``).

    Args:
        path: The store file; created on the first :meth:`add`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._done: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # a torn last line (the process was killed while writing): drop it
            log.warning("%s: dropping an incomplete last line (%d bytes)", self.path,
                        len(data) - end)
            with self.path.open("r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        for line in data[:end].splitlines():
            try:
                item = json.loads(line)
                self._done[str(item["key"])] = dict(item["result"])
            except (json.JSONDecodeError, KeyError, TypeError):
                log.warning("%s: skipping an unreadable line", self.path)
        if self._done:
            log.info("%s: %d finished points from an earlier run", self.path, len(self._done))

    def __len__(self) -> int:
        return len(self._done)

    def __contains__(self, key: object) -> bool:
        return key in self._done

    def get(self, key: str) -> PointResult | None:
        """The stored result under ``key``, or None."""
        rec = self._done.get(key)
        return None if rec is None else result_from_record(rec)

    def add(self, key: str, result: PointResult) -> None:
        """Append ``result`` under ``key`` and fsync, so that it survives a kill."""
        rec = result_to_record(result)
        line = json.dumps({"key": key, "result": rec}, sort_keys=True, allow_nan=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._done[key] = rec
