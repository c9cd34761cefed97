"""Provenance of a run: ``DIR/manifest.json`` (what went in, where every number came from).

The manifest lists the input files with their checksums (SHA-256; files above
:data:`~recastkit.workflow.steps.CHECKSUM_MAX_BYTES` by size + mtime + ROOT UUID, marked so),
the catalog tables imported and every catalog record used with its source, the bookkeeping
source of each Σw, each sample's ledger, the spec's SHA-256, the software versions, the command
line, the steps with their keys and status, and the start and end times (UTC, ISO 8601).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from recastkit import __version__
from recastkit._atomic import write_text_atomic
from recastkit._json import dumps
from recastkit.exceptions import ConfigError

#: Version of the manifest format.
MANIFEST_VERSION = 1
#: Packages whose versions are recorded.
SOFTWARE = ("uproot", "awkward", "pyhf", "numpy", "scipy", "hist", "numba", "matplotlib")
#: File name of the manifest in a run's output folder.
MANIFEST_FILE = "manifest.json"


def utc_now() -> str:
    """The current time, UTC, ISO 8601 with seconds (``2026-11-29T09:00:00+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def software_versions() -> dict[str, str | None]:
    """Versions of recastkit, Python and the packages that shape the numbers."""
    out: dict[str, str | None] = {"recastkit": __version__,
                                  "python": platform.python_version()}
    for name in SOFTWARE:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_manifest(*, analysis: Mapping[str, Any], command: Sequence[str], started_utc: str,
                   finished_utc: str, inputs: Sequence[Mapping[str, Any]],
                   catalog_tables: Sequence[Mapping[str, Any]],
                   samples: Sequence[Mapping[str, Any]], steps: Sequence[Mapping[str, Any]],
                   outputs: Mapping[str, str], results: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Assemble the manifest document.

    Args:
        analysis: ``name``, ``version``, ``spec`` (path) and ``spec_sha256``.
        command: The command line.
        started_utc: Start time.
        finished_utc: End time.
        inputs: One entry per input file: ``sample``, ``role`` and the file identity
            (``path``, ``size``, ``method``, ``sha256`` or ``mtime_ns`` + ``uuid``).
        catalog_tables: The imported tables with their identity.
        samples: Per sample: ``name``, ``role``, ``kind``, ``dataset``, ``ledger``,
            ``sum_of_weights_source``, ``catalog_records``, ``notes``.
        steps: The ``steps.json`` entries.
        outputs: Output name -> path relative to the output folder.
        results: Short results (the limits), for a reader of the manifest alone.
    """
    records = [
        {"sample": s["name"], **r} for s in samples for r in s.get("catalog_records", ())
    ]
    return {
        "manifest_version": MANIFEST_VERSION,
        "analysis": dict(analysis),
        "command": list(command),
        "started_utc": started_utc,
        "finished_utc": finished_utc,
        "software": software_versions(),
        "inputs": [dict(i) for i in inputs],
        "catalog": {"tables": [dict(t) for t in catalog_tables], "records": records},
        "samples": [dict(s) for s in samples],
        "steps": [dict(s) for s in steps],
        "outputs": dict(outputs),
        "results": dict(results or {}),
    }


def write_manifest(manifest: Mapping[str, Any], outdir: str | os.PathLike[str]) -> Path:
    """Write ``manifest.json`` (sorted keys, indent 4) atomically into ``outdir``."""
    path = Path(outdir) / MANIFEST_FILE
    write_text_atomic(path, dumps(manifest) + "\n")
    return path


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a manifest: a run's output folder or the ``manifest.json`` itself.

    Raises:
        ConfigError: No manifest there, or not a recastkit manifest.
    """
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_FILE
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = (f"{p}: no manifest; give the output folder of `recastkit run` "
               "(it holds manifest.json)")
        raise ConfigError(msg) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p}: not a readable JSON manifest: {exc}") from None
    if not isinstance(doc, dict) or "manifest_version" not in doc:
        raise ConfigError(f"{p}: not a recastkit manifest (no manifest_version)")
    return doc
