"""Worker processes that die with their parent and leave Ctrl-C to it.

A process pool's workers must not outlive the process that started them: when the parent is
killed (``SIGKILL``, OOM killer, a batch system's time limit), its workers would otherwise keep
computing, or idle forever, as orphans. And on Ctrl-C only the parent should react: it stops
the run, terminates the workers and removes its temporary files; workers that also received
``SIGINT`` (the terminal sends it to the whole foreground process group) would print a
traceback each.

:func:`init_worker` is the pool initializer that arranges this; :func:`terminate_pool` stops a
:class:`concurrent.futures.ProcessPoolExecutor` at once, busy workers included
(``shutdown(cancel_futures=True)`` only cancels tasks that have not started).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

#: ``prctl`` options (``<linux/prctl.h>``).
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
#: Seconds between two checks of the orphan watchdog.
WATCHDOG_INTERVAL_S = 0.5


def _prctl() -> Callable[..., Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    prctl: Callable[..., Any] = fn
    return prctl


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux ``prctl``).

    The signal is tied to the parent *thread* that forked this process, and is cleared by a
    later ``fork`` in this process (not by ``exec``).

    Returns:
        Whether it is set (``False`` on other systems or when ``prctl`` is unavailable).
    """
    prctl = _prctl()
    if prctl is None:
        return False
    return int(prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), ctypes.c_ulong(0),
                     ctypes.c_ulong(0), ctypes.c_ulong(0))) == 0


def parent_death_signal() -> int | None:
    """The signal set by :func:`set_parent_death_signal` (0: none; ``None``: unknown)."""
    prctl = _prctl()
    if prctl is None:
        return None
    value = ctypes.c_int(-1)
    if prctl(PR_GET_PDEATHSIG, ctypes.byref(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
             ctypes.c_ulong(0)) != 0:
        return None
    return value.value


def _watch_parent(parent_pid: int, interval_s: float) -> None:
    while True:
        time.sleep(interval_s)
        if os.getppid() != parent_pid:  # re-parented: the parent is gone
            os._exit(1)


def init_worker(parent_pid: int | None = None) -> None:
    """Pool initializer: ignore SIGINT, and die with the parent.

    Args:
        parent_pid: The pid of the process that starts the pool (``os.getpid()`` there) for
            the ``fork`` and ``spawn`` start methods; ``None`` to take this worker's parent
            at start-up (``forkserver``, whose workers are children of the server).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_parent_death_signal(signal.SIGKILL)
    expected = os.getppid() if parent_pid is None else parent_pid
    if os.getppid() != expected:  # the parent died before the death signal was armed
        os._exit(1)
    # Fallback where prctl is unavailable (and belt and braces where it is).
    threading.Thread(target=_watch_parent, args=(expected, WATCHDOG_INTERVAL_S),
                     name="recastkit-orphan-watchdog", daemon=True).start()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore a second Ctrl-C while cleaning up (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def terminate_pool(pool: ProcessPoolExecutor, timeout_s: float = 1.0) -> None:
    """Stop a process pool now: cancel pending tasks and terminate the workers, busy or not.

    Workers get ``SIGTERM``, and ``SIGKILL`` if still alive after ``timeout_s``.
    """
    with _sigint_ignored():
        processes = list((pool._processes or {}).values())
        for p in processes:
            with contextlib.suppress(OSError, ValueError):
                p.terminate()
        deadline = time.monotonic() + timeout_s
        for p in processes:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                p.join(max(0.0, deadline - time.monotonic()))
        for p in processes:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                if p.is_alive():
                    p.kill()
                    p.join(timeout_s)
        pool.shutdown(wait=True, cancel_futures=True)
        log.debug("terminated %d worker processes", len(processes))
