"""Atomic file writes: write to a temporary file beside the target, then rename.

Nothing half-written is ever left at the target path: if the body raises, the temporary file
is removed and the previous content of the target (if any) is untouched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from recastkit._files import is_special_file, output_errors


def _safe_target(
    func: Callable[[str | os.PathLike[str]], Iterator[Path]],
) -> Callable[[str | os.PathLike[str]], Iterator[Path]]:
    """Wrap an atomic-write generator: one-line errors, and devices written in place.

    An ``OSError`` (permission denied, disk full, a path under a file, a directory as the
    target) becomes :class:`~recastkit.exceptions.FileAccessError` naming the target. A target
    that is a device or FIFO (``/dev/null``, ``/dev/full``) is written directly: renaming a
    temporary file onto it would replace the device node.
    """

    @functools.wraps(func)
    def wrapper(target: str | os.PathLike[str]) -> Iterator[Path]:
        with output_errors(target):
            if Path(target).is_dir():
                raise IsADirectoryError(21, "Is a directory", os.fspath(target))
            if is_special_file(target):
                yield Path(target)
                return
            yield from func(target)

    return wrapper


@contextlib.contextmanager
@_safe_target
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto the target on success.

    Args:
        target: Final path of the file.

    Yields:
        A path to write to. It keeps the target's suffix so format detection by extension
        (e.g. uproot's) still works.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
