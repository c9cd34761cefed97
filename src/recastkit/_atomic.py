"""Atomic file writes: write to a temporary file beside the target, then rename.

Nothing half-written is ever left at the target path: if the body raises, the temporary file
is removed and the previous content of the target (if any) is untouched. Files get the mode
a plain ``open(path, "w")`` would give them (``0666 & ~umask``, 0644 under umask 022), not the
0600 of :func:`tempfile.mkstemp`, so other users of a shared area can read them.

:func:`atomic_paths` replaces several files together (a selection output and its JSON twin):
all of them or none.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
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


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ≥ 4.7)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status",
                                                        encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """``0o666 & ~umask``: the mode of a new regular file created by ``open(path, "w")``."""
    return 0o666 & ~current_umask()


def _mkstemp_beside(target: Path) -> Path:
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    return Path(tmp_name)


def _finish(tmp: Path, mode: int) -> None:
    """Give a finished temporary file the umask mode (writers may have recreated it)."""
    os.chmod(tmp, mode)


@contextlib.contextmanager
@_safe_target
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto the target on success.

    Args:
        target: Final path of the file.

    Yields:
        A path to write to. It keeps the target's suffix so format detection by extension
        (e.g. uproot's) still works. The final file has mode ``0666 & ~umask``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _mkstemp_beside(target)
    try:
        yield tmp
        _finish(tmp, default_file_mode())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_paths(*targets: str | os.PathLike[str]) -> Iterator[tuple[Path, ...]]:
    """Like :func:`atomic_path` for several files that are replaced together or not at all.

    Every file is written to a temporary path first. Then the previous targets are kept as
    hard links (backups), the temporary files are renamed onto the targets one after the
    other, and if a rename fails, the targets already replaced are restored from their
    backups (or removed, if they did not exist before). Readers may see a mix of old and new
    files only during the few microseconds of the renames.

    An ``OSError`` while preparing or renaming becomes
    :class:`~recastkit.exceptions.FileAccessError` naming the target.

    Args:
        targets: Final paths (distinct).

    Yields:
        One temporary path per target, in order, keeping each target's suffix.
    """
    paths = [Path(t) for t in targets]
    if len({p.resolve() for p in paths}) != len(paths):
        raise ValueError(f"atomic_paths: targets must be distinct, got {paths}")
    tmps: list[Path] = []
    backups: list[Path | None] = []
    replaced: list[int] = []
    try:
        for p in paths:
            with output_errors(p):
                p.parent.mkdir(parents=True, exist_ok=True)
                tmps.append(_mkstemp_beside(p))
        yield tuple(tmps)
        mode = default_file_mode()
        for tmp, p in zip(tmps, paths, strict=True):
            with output_errors(p):
                _finish(tmp, mode)
        for p in paths:
            with output_errors(p):
                backups.append(_backup(p))
        for i, (tmp, p) in enumerate(zip(tmps, paths, strict=True)):
            with output_errors(p):
                os.replace(tmp, p)
            replaced.append(i)
    except BaseException:
        for i in reversed(replaced):
            backup = backups[i]
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, paths[i])
                else:
                    paths[i].unlink()
        for tmp in tmps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    finally:
        for backup in backups:
            if backup is not None:
                with contextlib.suppress(FileNotFoundError):
                    backup.unlink()


def _backup(path: Path) -> Path | None:
    """A hard link to ``path`` beside it (``None`` when ``path`` is not an existing file)."""
    if not path.is_file():
        return None
    while True:
        link = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.bak{path.suffix}")
        try:
            os.link(path, link)
        except FileExistsError:
            continue
        except OSError:  # no hard links on this file system: a copy does the same job
            shutil.copy2(path, link)
        return link


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
