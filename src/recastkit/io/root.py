"""Opening ROOT files through uproot, with errors that name the file and what is wrong."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uproot

from recastkit.exceptions import MissingObjectError, RootFileError

_ROOT_MAGIC = b"root"


def open_root(path: str | os.PathLike[str]) -> Any:
    """Open a ROOT file for reading.

    Args:
        path: Local path of the file.

    Returns:
        The ``uproot.ReadOnlyDirectory`` of the file (use it as a context manager).

    Raises:
        RootFileError: If the file is missing, not a ROOT file, or truncated/corrupt
            (shorter than the length its header records). The message is one line.
    """
    path = Path(path)
    if not path.exists():
        raise RootFileError(f"{path}: no such file")
    if path.is_dir():
        raise RootFileError(f"{path}: is a directory, not a ROOT file")
    try:
        with path.open("rb") as stream:
            magic = stream.read(4)
    except OSError as exc:
        raise RootFileError(f"{path}: cannot read file ({exc.strerror})") from None
    if magic != _ROOT_MAGIC:
        msg = f"{path}: not a ROOT file (it does not start with the ROOT magic bytes 'root')"
        raise RootFileError(msg)
    try:
        f = uproot.open(path)
    except Exception as exc:  # uproot raises many types for truncated or corrupt files
        reason = " ".join(str(exc).split())[:200]
        msg = f"{path}: cannot open ROOT file, it may be truncated or corrupt ({reason})"
        raise RootFileError(msg) from None
    # uproot opens a truncated file without complaint; compare with the header's fEND.
    expected = int(getattr(f.file, "fEND", 0) or 0)
    actual = path.stat().st_size
    if actual < expected:
        f.close()
        msg = (
            f"{path}: ROOT file is truncated ({actual} bytes, its header says {expected}); "
            "copy it again"
        )
        raise RootFileError(msg)
    return f


def close_matches(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Return up to ``n`` candidates that look like ``name`` (for "did you mean" messages)."""
    pool = sorted(set(candidates))
    matches = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    if not matches:
        lowered = name.lower()
        matches = [c for c in pool if lowered in c.lower() or c.lower() in lowered][:n]
    return matches


def missing_object_error(path: str | os.PathLike[str], kind: str, name: str,
                         candidates: Iterable[str]) -> MissingObjectError:
    """Build the error for a tree/branch/histogram ``name`` missing from ``path``."""
    pool = list(candidates)
    near = close_matches(name, pool)
    msg = f"{path}: no {kind} named {name!r}"
    if near:
        msg += f"; close matches: {', '.join(near)}"
    elif pool:
        shown = sorted(set(pool))[:10]
        more = " …" if len(set(pool)) > 10 else ""
        msg += f"; available: {', '.join(shown)}{more}"
    return MissingObjectError(msg)


def key_names(directory: Any, classname_prefix: str | None = None) -> list[str]:
    """Names (without cycles) of the keys in a directory, optionally filtered by class."""
    names = []
    for key, classname in directory.classnames().items():
        if classname_prefix is None or classname.startswith(classname_prefix):
            names.append(key.split(";")[0])
    return sorted(set(names))
