"""How compressed event data is decoded: the zlib library and the decompression threads.

This module is the **only** place where recastkit changes uproot's global state: the
``library`` class attribute of uproot's zlib decompressor. uproot 5.7 documents the switch as
``uproot.ZLIB.library``, but baskets are decompressed by the module-level instance
``uproot.compression._decompress_ZLIB`` of the *base* class ``_DecompressZLIB``, which does not
see an attribute set on the ``ZLIB`` subclass: setting only ``uproot.ZLIB.library`` leaves
reading on the standard zlib. :func:`set_zlib_library` therefore sets the base class attribute
(and ``ZLIB.library``, so the two agree), and ``tests/io/test_decoding.py`` fails loudly if
these names change. Everything else passes a
:class:`ReadOptions` to the readers in :mod:`recastkit.io.events` / :mod:`recastkit.io.objects`,
which call :func:`apply` before reading and hand :func:`executors` to ``TTree.iterate``.

Choices:

- ``decoder``: ``"zlib"`` (Python's standard library, uproot's default), ``"isal"`` (Intel
  ISA-L through the ``isal`` package, a core dependency of recastkit) or ``"deflate"``
  (libdeflate through ``deflate``). ``"auto"`` (default) picks the first of deflate, isal,
  zlib that is installed *and* decodes a test payload (libdeflate is the fastest on the
  benchmark file: ~1.5x ISA-L, which is barely faster than zlib on poorly compressible
  floats). Two readers use the choice: recastkit's own basket reader
  (:mod:`recastkit.io.baskets`, the dijet fast path) calls the library directly through
  :func:`zlib_decompressor`; uproot's reader (every other path) calls it through
  ``uproot.compression``. uproot 5.7.7 calls ``deflate.zlib_decompress(data, bufsize=n)``,
  which deflate 0.9 rejects (its argument is ``originalsize``), so with those versions
  :func:`apply` gives uproot the fastest library *it* can call (isal) instead, and logs it.
  Only ZLIB-compressed baskets are affected; LZ4, ZSTD and LZMA are decoded by their own
  libraries.
- ``decompression_threads``: size of the thread pool baskets are decompressed (and, by
  uproot, interpreted) in, ``0`` (default) meaning one per available core. ``1`` reads in
  the calling thread, as uproot does by default.

The pools are created once per process (forked workers create their own) and reused.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import uproot

from recastkit.exceptions import ConfigError

log = logging.getLogger(__name__)

#: Valid decoder names (``auto`` picks the fastest importable one).
DECODERS: tuple[str, ...] = ("auto", "zlib", "deflate", "isal")
_MODULES = {"deflate": "deflate", "isal": "isal"}


def available_cores() -> int:
    """Cores this process may run on (CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _importable(name: str) -> bool:
    module = _MODULES.get(name)
    return module is None or importlib.util.find_spec(module) is not None


#: Decompress a zlib stream (with header) into the given number of bytes; returns a buffer
#: (``bytes``, or a ``bytearray`` the caller may modify).
ZlibDecompressor = Callable[[Any, int], Any]


def _zlib(data: Any, n: int) -> Any:
    return zlib.decompress(data, bufsize=n)


def zlib_decompressor(library: str) -> ZlibDecompressor:
    """The function recastkit's basket reader decompresses zlib blocks with.

    ``library`` is a concrete name (``zlib``, ``isal``, ``deflate``); the packages are
    imported here, so a missing one raises ``ImportError``.
    """
    if library == "isal":
        isal_zlib: Any = importlib.import_module("isal.isal_zlib")

        def _isal(data: Any, n: int) -> Any:
            return isal_zlib.decompress(data, bufsize=n)

        return _isal
    if library == "deflate":
        deflate: Any = importlib.import_module("deflate")

        def _deflate(data: Any, n: int) -> Any:
            return deflate.zlib_decompress(data, n)  # libdeflate: the exact size (bytearray)

        return _deflate
    return _zlib


_working: dict[tuple[str, bool], str | None] = {}
_PAYLOAD = bytes(range(256)) * 64


def _check(library: str, through_uproot: bool = False) -> str | None:
    """``None`` if ``library`` decodes a test payload, else why not (cached).

    Args:
        library: A concrete zlib library name.
        through_uproot: Call it as uproot's basket decompressor does, instead of directly
            (as :func:`zlib_decompressor`).
    """
    key = (library, through_uproot)
    if key in _working:
        return _working[key]
    if not _importable(library):
        why: str | None = (f"the Python package {_MODULES[library]!r} is not installed "
                           f"(pip install {_MODULES[library]})")
    elif through_uproot:
        before = zlib_library()
        try:
            set_zlib_library(library)
            out = uproot.compression._decompress_ZLIB.decompress(zlib.compress(_PAYLOAD, 1),
                                                                 len(_PAYLOAD))
            why = None if out == _PAYLOAD else "it decoded a test payload wrongly"
        except Exception as exc:  # e.g. an API mismatch between uproot and the package
            why = f"uproot cannot call it ({type(exc).__name__}: {exc})"
        finally:
            set_zlib_library(before)
    else:
        try:
            out = zlib_decompressor(library)(zlib.compress(_PAYLOAD, 1), len(_PAYLOAD))
            why = None if bytes(out) == _PAYLOAD else "it decoded a test payload wrongly"
        except Exception as exc:  # an API change of the package
            why = f"it cannot be called ({type(exc).__name__}: {exc})"
    _working[key] = why
    return why


def resolve_decoder(name: str | None) -> str:
    """The concrete zlib library for ``name`` (``None``/``"auto"``: deflate > isal > zlib,
    the first that works).

    Raises:
        ConfigError: Unknown name, or a named library that is missing or unusable.
    """
    if name in (None, "auto"):
        return next((d for d in ("deflate", "isal") if _check(d) is None), "zlib")
    if name not in DECODERS:
        msg = f"unknown zlib decoder {name!r}; valid choices: {', '.join(DECODERS)}"
        raise ConfigError(msg)
    if name != "zlib":
        why = _check(name)
        if why is not None:
            msg = f"the zlib decoder {name!r} cannot be used: {why}; choose another one " \
                  f"({', '.join(DECODERS)})"
            raise ConfigError(msg)
    return name


def uproot_decoder(name: str | None) -> str:
    """The zlib library uproot's reader uses for ``name``: :func:`resolve_decoder`'s choice,
    or the fastest one uproot can call when it cannot call that one (see the module doc).

    Raises:
        ConfigError: As :func:`resolve_decoder`.
    """
    library = resolve_decoder(name)
    if library == "zlib" or _check(library, through_uproot=True) is None:
        return library
    other = next((d for d in ("isal", "deflate") if _check(d, through_uproot=True) is None),
                 "zlib")
    log.debug("uproot cannot call the zlib decoder %r; its reads use %r", library, other)
    return other


@dataclass(frozen=True)
class ReadOptions:
    """How to decode baskets; picklable, sent with every work unit.

    Attributes:
        decoder: One of :data:`DECODERS`.
        decompression_threads: Threads decompressing baskets per process; ``0`` = one per
            available core, ``1`` = no pool (uproot's default behaviour).
    """

    decoder: str = "auto"
    decompression_threads: int = 0

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            msg = f"unknown zlib decoder {self.decoder!r}; valid choices: {', '.join(DECODERS)}"
            raise ConfigError(msg)
        if self.decompression_threads < 0:
            msg = ("decompression_threads must be 0 (one per core) or positive, got "
                   f"{self.decompression_threads}")
            raise ConfigError(msg)

    @property
    def threads(self) -> int:
        """The number of decompression threads this resolves to in this process."""
        return self.decompression_threads or available_cores()

    def describe(self, through_uproot: bool = False) -> dict[str, Any]:
        """JSON-ready description (recorded in the output metadata).

        Args:
            through_uproot: Describe uproot's reader (:func:`uproot_decoder`) rather than
                recastkit's basket reader (:func:`resolve_decoder`).
        """
        decoder = (uproot_decoder if through_uproot else resolve_decoder)(self.decoder)
        return {"decoder": decoder, "decompression_threads": self.threads}


#: uproot's defaults: the standard zlib, no thread pool (the benchmark's baseline).
UPROOT_DEFAULTS = ReadOptions(decoder="zlib", decompression_threads=1)

_pools: dict[tuple[int, int, str], ThreadPoolExecutor] = {}


def _decompressor_class() -> Any:
    compression = getattr(uproot, "compression", None)
    base = getattr(compression, "_DecompressZLIB", None)
    instance = getattr(compression, "_decompress_ZLIB", None)
    zlib_cls = getattr(uproot, "ZLIB", None)
    if (base is None or zlib_cls is None or not isinstance(instance, base)
            or not isinstance(getattr(base, "library", None), str)):
        msg = ("uproot's zlib decompressor switch (uproot.compression._DecompressZLIB.library "
               "used by _decompress_ZLIB) is gone: uproot's API changed; update "
               "recastkit.io.decoding.set_zlib_library")
        raise RuntimeError(msg)
    return base


def set_zlib_library(library: str) -> None:
    """Set the zlib library uproot decompresses with (the one place touching uproot globals).

    Raises:
        RuntimeError: uproot's decompressor switch is gone (its API changed).
    """
    base = _decompressor_class()
    base.library = library
    uproot.ZLIB.library = library


def zlib_library() -> str:
    """The zlib library uproot's basket decompressor currently uses."""
    return str(uproot.compression._decompress_ZLIB.library)


def apply(options: ReadOptions) -> None:
    """Make uproot decode zlib with the library of ``options`` in this process
    (:func:`uproot_decoder`)."""
    library = uproot_decoder(options.decoder)
    if zlib_library() != library:
        set_zlib_library(library)


def executors(options: ReadOptions) -> dict[str, Any]:
    """Keyword arguments for ``TTree.iterate``: the shared decompression/interpretation pool.

    Empty (uproot's defaults) for one thread, and for RNTuples (which take no executors).
    """
    n = options.threads
    if n <= 1:
        return {}
    return {f"{role}_executor": thread_pool(n, role)
            for role in ("decompression", "interpretation")}


def thread_pool(n: int, role: str) -> ThreadPoolExecutor:
    """The process-wide pool of ``n`` threads for ``role`` (created on first use; a forked
    worker creates its own)."""
    key = (os.getpid(), n, role)
    pool = _pools.get(key)
    if pool is None:
        pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix=f"recastkit-{role}")
        _pools[key] = pool
    return pool
