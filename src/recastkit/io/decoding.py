"""How compressed event data is decoded: the zlib library and the decompression threads.

This module is the **only** place where recastkit changes uproot's global state
(``uproot.ZLIB.library``, a class attribute in uproot 5.7). Everything else passes a
:class:`ReadOptions` to the readers in :mod:`recastkit.io.events` / :mod:`recastkit.io.objects`,
which call :func:`apply` before reading and hand :func:`executors` to ``TTree.iterate``.

Choices:

- ``decoder``: ``"zlib"`` (Python's standard library, uproot's default), ``"deflate"``
  (libdeflate through the ``deflate`` package, a core dependency of recastkit) or ``"isal"``
  (Intel ISA-L through ``isal``). ``"auto"`` (default) picks the first importable of
  deflate, isal, zlib. Only ZLIB-compressed baskets are affected; LZ4, ZSTD and LZMA are
  decoded by their own libraries.
- ``decompression_threads``: size of the thread pool uproot decompresses (and interprets)
  baskets in, ``0`` (default) meaning one per available core. ``1`` reads in the calling
  thread, as uproot does by default.

The pools are created once per process (forked workers create their own) and reused.
"""

from __future__ import annotations

import importlib.util
import logging
import os
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


def resolve_decoder(name: str | None) -> str:
    """The concrete zlib library for ``name`` (``None``/``"auto"``: deflate > isal > zlib).

    Raises:
        ConfigError: Unknown name, or a named library that is not installed.
    """
    if name in (None, "auto"):
        return next(d for d in ("deflate", "isal", "zlib") if _importable(d))
    if name not in DECODERS:
        msg = f"unknown zlib decoder {name!r}; valid choices: {', '.join(DECODERS)}"
        raise ConfigError(msg)
    if not _importable(name):
        msg = (f"the zlib decoder {name!r} needs the Python package {_MODULES[name]!r}, which "
               f"is not installed (pip install {_MODULES[name]}); or choose zlib")
        raise ConfigError(msg)
    return name


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

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (recorded in the output metadata)."""
        return {"decoder": resolve_decoder(self.decoder), "decompression_threads": self.threads}


#: uproot's defaults: the standard zlib, no thread pool (the benchmark's baseline).
UPROOT_DEFAULTS = ReadOptions(decoder="zlib", decompression_threads=1)

_pools: dict[tuple[int, int, str], ThreadPoolExecutor] = {}


def set_zlib_library(library: str) -> None:
    """Set uproot's zlib decoder (the one place touching ``uproot.ZLIB.library``).

    Raises:
        RuntimeError: uproot no longer has the ``ZLIB.library`` switch (its API changed).
    """
    zlib_cls = getattr(uproot, "ZLIB", None)
    if zlib_cls is None or not isinstance(getattr(zlib_cls, "library", None), str):
        msg = ("uproot.ZLIB.library is gone (uproot API change); update "
               "recastkit.io.decoding.set_zlib_library")
        raise RuntimeError(msg)
    zlib_cls.library = library


def zlib_library() -> str:
    """uproot's current zlib decoder."""
    return str(uproot.ZLIB.library)


def apply(options: ReadOptions) -> None:
    """Make uproot decode zlib with the library of ``options`` in this process."""
    library = resolve_decoder(options.decoder)
    if zlib_library() != library:
        set_zlib_library(library)


def executors(options: ReadOptions) -> dict[str, Any]:
    """Keyword arguments for ``TTree.iterate``: the shared decompression/interpretation pool.

    Empty (uproot's defaults) for one thread, and for RNTuples (which take no executors).
    """
    n = options.threads
    if n <= 1:
        return {}
    out: dict[str, Any] = {}
    for role in ("decompression", "interpretation"):
        key = (os.getpid(), n, role)
        pool = _pools.get(key)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix=f"recastkit-{role}")
            _pools[key] = pool
        out[f"{role}_executor"] = pool
    return out
