"""Reading and writing files with one-line errors that name the file and what went wrong.

Operating-system errors (permission denied, disk full, a directory where a file is expected,
a file where a folder is expected) and undecodable text become
:class:`~recastkit.exceptions.FileAccessError` (or the caller's error class) with a message
that names the file and never pastes the raw bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from recastkit.exceptions import FileAccessError, RecastkitError

#: Plain-language reasons for the errno values a user can cause or fix.
_REASONS: dict[int, str] = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EISDIR: "is a directory, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
    errno.EROFS: "read-only file system",
    errno.EEXIST: "a file is in the way",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error",
}


def os_error_reason(exc: OSError) -> str:
    """A short plain-language reason for an ``OSError`` (no file name, no traceback)."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = exc.strerror or str(exc) or type(exc).__name__
    return " ".join(text.split())


def decode_error_reason(exc: UnicodeDecodeError) -> str:
    """Describe an undecodable byte by its value and offset, never by pasting the bytes."""
    bad = exc.object[exc.start:exc.start + 1]
    byte = f"0x{bad[0]:02x}" if bad else "?"
    return f"not UTF-8 text (undecodable byte {byte} at offset {exc.start})"


def read_text(path: str | os.PathLike[str], what: str = "file",
              error: type[RecastkitError] = FileAccessError) -> str:
    """Read a UTF-8 text file.

    Args:
        path: The file.
        what: What the file is, for the message ("histogram file", "configuration").
        error: Exception class for a file that cannot be read or decoded.

    Raises:
        RecastkitError: Of class ``error``: missing file, a directory, permission denied,
            undecodable text. The message is one line naming the file.
    """
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read {what}: {decode_error_reason(exc)}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {os_error_reason(exc)}") from None


@contextlib.contextmanager
def output_errors(target: str | os.PathLike[str], what: str = "output") -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``target`` into a one-line FileAccessError.

    Errors that are already recastkit errors pass through unchanged.
    """
    try:
        yield
    except RecastkitError:
        raise
    except OSError as exc:
        raise FileAccessError(f"{target}: cannot write the {what}: {_write_reason(exc)}"
                              ) from None


def _write_reason(exc: OSError) -> str:
    name = os.fsdecode(exc.filename) if exc.filename else None
    if name and exc.errno in (errno.ENOTDIR, errno.EEXIST):
        # mkdir below a regular file: name the file
        blocker = Path(name)
        while not blocker.exists() and blocker != blocker.parent:
            blocker = blocker.parent
        if blocker.is_file():
            return f"{blocker} is a file, not a folder"
        return "a part of the path is a file, not a folder"
    return os_error_reason(exc)


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> None:
    """Fail early when a folder cannot be created or written (before hours of work).

    Raises:
        FileAccessError: ``path`` is a file, a parent of it is a file, or the nearest
            existing parent is not writable.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise FileAccessError(f"{target}: cannot write the {what}: it is a file, not a folder")
    parent = target
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        msg = f"{target}: cannot write the {what}: {parent} is a file, not a folder"
        raise FileAccessError(msg)
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        msg = f"{target}: cannot write the {what}: permission denied ({parent})"
        raise FileAccessError(msg)


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a directory (a device, FIFO).

    Such targets (``/dev/null``, ``/dev/stdout``, ``/dev/full``) are written in place:
    renaming a temporary file onto them would replace the device node.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    import stat

    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
