"""Chunked event processing: plan work units, run them on an executor, merge deterministically.

A run is split into *work units*: an entry range ``[entry_start, entry_stop)`` of one file,
cut at basket (TTree) or cluster (RNTuple) boundaries near ``chunk_size`` entries. Each unit is
read in chunks of at most ``chunk_size`` events (bounded memory) and filled by the fused numba
kernel of :mod:`recastkit.selection` into float64 arrays. Partial results are merged in the
order of ``(file path, entry_start)`` whatever order they complete in, so the histograms are
bit-identical across the executors for a given chunk size, and equal to ~1e-12 relative
across chunk sizes and file orders (counts are always exact).

Executors (:data:`EXECUTORS`):

- ``iterative``: one process, in order; a background thread reads the next chunk while the
  GIL-free kernel fills the current one, dijet chunks of different units on one thread per
  core (``read_ahead=False`` for a single thread).
- ``processes`` (default): a :class:`concurrent.futures.ProcessPoolExecutor` over all cores
  (or ``workers``). Its workers ignore SIGINT and die with the main process (Linux
  ``PR_SET_PDEATHSIG`` plus a parent watchdog); on Ctrl-C or any error the main process
  terminates them at once, busy or not (:mod:`recastkit._workers`).
- ``dask``: ``dask.distributed``; ``scheduler="tcp://HOST:PORT"`` connects to a running
  scheduler, ``"local"`` (default) starts a :class:`distributed.LocalCluster` for the run.
  Tasks lost with a dying worker are recomputed by dask; the result is unchanged.

Faults: a file that cannot be opened or read (:class:`~recastkit.exceptions.RootFileError`),
a missing tree or branch (:class:`~recastkit.exceptions.MissingObjectError`, with close
matches) or unusable contents (:class:`~recastkit.exceptions.SelectionError`) stop the run
with an error naming the file, unless ``skip_bad_files`` is set: then every bad file is
dropped entirely and listed in :attr:`SelectionResult.skipped_files` (and in the output
metadata). A selection in which no event passes raises :class:`SelectionError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import importlib
import logging
import multiprocessing
import os
import platform
import re
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import hist

from recastkit import __version__, exceptions
from recastkit._atomic import atomic_paths
from recastkit._workers import init_worker, terminate_pool
from recastkit.exceptions import (
    MissingDependencyError,
    RecastkitError,
    SelectionError,
)
from recastkit.histograms import HistogramSpec, Moments, build_hist
from recastkit.io.decoding import ReadOptions, available_cores
from recastkit.io.events import (
    EventChunk,
    EventLayout,
    cluster_boundaries,
    count_entries,
    expand_inputs,
    iter_chunks,
    resolve_layout,
)
from recastkit.io.hists import write_hists
from recastkit.io.objects import (
    ObjectChunk,
    ObjectLayout,
    VariationSource,
    iter_object_chunks,
    resolve_object_layout,
)
from recastkit.regions import AnalysisConfig, RegionsAccumulator, compiled
from recastkit.selection import (
    HIST_NAMES,
    CutflowEntry,
    SelectionAccumulator,
    SelectionConfig,
    warm_up,
)
from recastkit.selection_expr import warm_up as warm_up_expressions

log = logging.getLogger(__name__)

#: Executor names.
EXECUTORS: tuple[str, ...] = ("iterative", "processes", "dask")
#: Default number of events per chunk (and target size of a work unit).
DEFAULT_CHUNK_SIZE = 200_000
#: At most this many events are read at once on the general (expression) path, whatever the
#: work-unit size. The basket reader holds the decompressed baskets of the current and the next
#: step (whole baskets, so nothing is decompressed twice) plus the step's float64 copies and
#: intermediate arrays. ZH example, 5 M events, iterative with read-ahead, peak RSS: 349 MB at
#: 50 k, 438 MB at 125 k, 512 MB at 250 k (limit 0.5 GB); 125 k costs ~10 % less CPU than 50 k
#: (fewer per-step overheads).
ANALYSIS_STEP_SIZE = 125_000

_DSID_RE = re.compile(r"^(?:mc|valid)\w*\.(\d{6,8})\.")


@dataclass(frozen=True, order=True)
class WorkUnit:
    """Entries ``[entry_start, entry_stop)`` of one file; ordered by path then range."""

    path: str
    entry_start: int
    entry_stop: int


@dataclass(frozen=True)
class SkippedFile:
    """An input file left out of the result, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class SumOfWeightsInfo:
    """The bookkeeping (generated) sum of weights of the processed files.

    Attributes:
        sum_of_weights: Σw from the bookkeeping metadata; ``None`` when unavailable.
        sum_of_weights_squared: Σw² (``None`` when unavailable).
        source: Where it was read (e.g. ``CutBookkeepers AllExecutedEvents``).
        error: Why it is unavailable (``None`` when available).
        dsid: The DSID found in the metadata, if any.
    """

    sum_of_weights: float | None
    sum_of_weights_squared: float | None
    source: str | None
    error: str | None
    dsid: int | None = None


@dataclass(frozen=True)
class SelectionResult:
    """The merged output of a selection run.

    Attributes:
        histograms: ``h_mjj_raw``, ``h_mjj_kin``, ``h_njets_raw``, ``h_njets_kin`` as
            ``hist.Hist`` with Weight storage (m_jj in GeV).
        cutflow: Cumulative cutflow entries (counts, Σw, Σw²).
        moments: Unbinned moments (Σw, Σw·x, min, max) of every histogram, flow included.
        files: The processed files, sorted.
        skipped_files: Files left out with ``skip_bad_files``, with the reason.
        n_events: Events processed.
        layout: Name of the event layout.
        config: The selection configuration.
        dataset: Dataset name, if given.
        dsid: DSID from the bookkeeping or the dataset name, if known.
        sum_of_weights: The bookkeeping sum of weights (or why it is missing).
        executor: The executor used.
        chunk_size: Events per chunk.
        n_units: Number of work units.
        elapsed_s: Wall time of the event loop in seconds.
    """

    histograms: Mapping[str, hist.Hist]
    cutflow: tuple[CutflowEntry, ...]
    moments: Mapping[str, Moments]
    files: tuple[str, ...]
    skipped_files: tuple[SkippedFile, ...]
    n_events: int
    layout: str
    config: SelectionConfig
    dataset: str | None
    dsid: int | None
    sum_of_weights: SumOfWeightsInfo
    executor: str
    chunk_size: int
    n_units: int
    elapsed_s: float

    def metadata(self) -> dict[str, Any]:
        """The output-file metadata (the contract read by the scale step)."""
        return {
            "dataset": self.dataset,
            "dsid": self.dsid,
            "sum_of_weights": self.sum_of_weights.sum_of_weights,
            "sum_of_weights_squared": self.sum_of_weights.sum_of_weights_squared,
            "sum_of_weights_source": self.sum_of_weights.source,
            "sum_of_weights_error": self.sum_of_weights.error,
            "n_events_processed": self.n_events,
            "files": list(self.files),
            "skipped_files": [{"path": s.path, "reason": s.reason} for s in self.skipped_files],
            "cutflow": [
                {"name": c.name, "n_events": c.n_events, "sum_of_weights": c.sum_of_weights,
                 "sum_of_weights_squared": c.sum_of_weights_squared}
                for c in self.cutflow
            ],
            "selection": self.config.to_mapping(),
            "layout": self.layout,
            "recastkit_version": __version__,
            "moments": {name: m.to_dict() for name, m in self.moments.items()},
        }


AnyConfig = SelectionConfig | AnalysisConfig
AnyLayout = EventLayout | ObjectLayout
AnyAccumulator = SelectionAccumulator | RegionsAccumulator


@dataclass(frozen=True)
class RegionsResult:
    """The merged output of a run of an :class:`~recastkit.regions.AnalysisConfig`.

    Attributes:
        histograms: ``region/observable`` (and ``region/observable__variation``) as
            ``hist.Hist`` with Weight storage.
        cutflows: Region -> cumulative cutflow (``all events``, then each cut).
        variation_cutflows: Region -> variation -> Σw per cutflow entry.
        files: The processed files, sorted.
        skipped_files: Files left out with ``skip_bad_files``.
        n_events: Events processed.
        layout: Name of the event layout.
        config: The configuration.
        dataset: Dataset name, if given.
        dsid: DSID from the bookkeeping or the dataset name.
        sum_of_weights: The bookkeeping (nominal) sum of weights.
        executor: The executor used.
        chunk_size: Events per chunk.
        n_units: Number of work units.
        elapsed_s: Wall time of the event loop.
        variations: The generator-weight variations filled.
        read_options: Decoder and decompression threads used.
        btag_source: PHYSLITE b-tagging branches and fc, when jets.btag was read there.
    """

    histograms: Mapping[str, hist.Hist]
    cutflows: Mapping[str, tuple[CutflowEntry, ...]]
    variation_cutflows: Mapping[str, Mapping[str, list[float]]]
    files: tuple[str, ...]
    skipped_files: tuple[SkippedFile, ...]
    n_events: int
    layout: str
    config: AnalysisConfig
    dataset: str | None
    dsid: int | None
    sum_of_weights: SumOfWeightsInfo
    executor: str
    chunk_size: int
    n_units: int
    elapsed_s: float
    variations: tuple[VariationSource, ...] = ()
    read_options: ReadOptions = field(default_factory=ReadOptions)
    btag_source: tuple[str, str, str, float] | None = None

    @property
    def cutflow(self) -> tuple[CutflowEntry, ...]:
        """The first region's cutflow (what single-region consumers read)."""
        return next(iter(self.cutflows.values()))

    def split(self, configs: Mapping[str, AnalysisConfig]) -> dict[str, RegionsResult]:
        """One result per region, as if each single-region configuration had been run.

        Args:
            configs: Region name -> its own configuration (``single_region``: histograms
                named by observable), e.g. the regions of an analysis spec.
        """
        out: dict[str, RegionsResult] = {}
        for name, cfg in configs.items():
            hists: dict[str, hist.Hist] = {}
            for region in cfg.regions:
                for obs in region.observables:
                    for v in (None, *(x.name for x in self.variations)):
                        hists[cfg.hist_name(region.name, obs, v)] = \
                            self.histograms[self.config.hist_name(name, obs, v)]
            out[name] = dataclasses.replace(
                self, histograms=hists, cutflows={name: self.cutflows[name]},
                variation_cutflows={name: self.variation_cutflows[name]}, config=cfg)
        return out

    def metadata(self) -> dict[str, Any]:
        """The output-file metadata (read by the scale step; ``cutflow`` is the first
        region's, ``cutflows`` has every region)."""
        def entries(cf: tuple[CutflowEntry, ...]) -> list[dict[str, Any]]:
            return [{"name": c.name, "n_events": c.n_events, "sum_of_weights": c.sum_of_weights,
                     "sum_of_weights_squared": c.sum_of_weights_squared} for c in cf]

        return {
            "dataset": self.dataset,
            "dsid": self.dsid,
            "sum_of_weights": self.sum_of_weights.sum_of_weights,
            "sum_of_weights_squared": self.sum_of_weights.sum_of_weights_squared,
            "sum_of_weights_source": self.sum_of_weights.source,
            "sum_of_weights_error": self.sum_of_weights.error,
            "n_events_processed": self.n_events,
            "files": list(self.files),
            "skipped_files": [{"path": s.path, "reason": s.reason} for s in self.skipped_files],
            "cutflow": entries(self.cutflow),
            "cutflows": {k: entries(v) for k, v in self.cutflows.items()},
            "regions": {r.name: {"cuts": [c.name for c in r.cuts],
                                 "observables": list(r.observables)}
                        for r in self.config.regions},
            "observables": {k: {"bins": o.bins, "low": o.low, "high": o.high,
                                "label": o.label, "unit": o.unit}
                            for k, o in self.config.observables.items()},
            "variations": [
                {"name": v.name, "label": v.label, "branch": v.branch, "index": v.index,
                 "mode": v.mode,
                 "histograms": {self.config.hist_name(r.name, o):
                                self.config.hist_name(r.name, o, v.name)
                                for r in self.config.regions for o in r.observables},
                 "cutflows": {k: c[v.name] for k, c in self.variation_cutflows.items()}}
                for v in self.variations],
            "hooks": self.config.hooks(),
            "btag": None if self.btag_source is None else {
                "pb": self.btag_source[0], "pc": self.btag_source[1], "pu": self.btag_source[2],
                "fc": self.btag_source[3]},
            "reading": self.read_options.describe(through_uproot=True),  # io.objects
            "selection": self.config.to_mapping(),
            "layout": self.layout,
            "recastkit_version": __version__,
            "moments": {},
        }


@dataclass(frozen=True)
class _Task:
    unit: WorkUnit
    layout: AnyLayout
    config: AnyConfig
    step_size: int
    options: ReadOptions = field(default_factory=ReadOptions)


@dataclass(frozen=True)
class _Outcome:
    unit: WorkUnit
    acc: AnyAccumulator | None
    error_type: str | None = None
    error: str | None = None


_Item = tuple[int, EventChunk | ObjectChunk | None, RecastkitError | None]


def _empty(config: AnyConfig, layout: AnyLayout | None) -> AnyAccumulator:
    if isinstance(config, AnalysisConfig):
        names = [v.name for v in layout.variations] if isinstance(layout, ObjectLayout) else []
        return RegionsAccumulator.empty(config, names)
    return SelectionAccumulator.empty(config)


def _read(task: _Task) -> Iterator[EventChunk | ObjectChunk]:
    u = task.unit
    if isinstance(task.layout, ObjectLayout):
        return iter_object_chunks(u.path, task.layout, u.entry_start, u.entry_stop,
                                  task.step_size, task.options)
    return iter_chunks(u.path, task.layout, u.entry_start, u.entry_stop, task.step_size,
                       task.options)


def _fill(acc: AnyAccumulator, chunk: EventChunk | ObjectChunk, task: _Task) -> None:
    if isinstance(acc, RegionsAccumulator):
        assert isinstance(chunk, ObjectChunk)
        assert isinstance(task.layout, ObjectLayout)
        assert isinstance(task.config, AnalysisConfig)
        acc.fill(chunk, task.layout, task.config)
    else:
        assert isinstance(chunk, EventChunk)
        assert isinstance(task.layout, EventLayout)
        assert isinstance(task.config, SelectionConfig)
        acc.fill(chunk, task.layout, task.config)


def _merge(a: AnyAccumulator, b: AnyAccumulator) -> AnyAccumulator:
    if isinstance(a, RegionsAccumulator):
        assert isinstance(b, RegionsAccumulator)
        return a.merged(b)
    assert isinstance(b, SelectionAccumulator)
    return a.merged(b)


#: glibc ``mallopt`` parameters and the values set by :func:`keep_freed_memory`.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's largest
_TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024
_malloc_tuned: dict[int, bool] = {}


def keep_freed_memory() -> bool:
    """Make glibc keep freed chunk-sized buffers for reuse (once per process; Linux/glibc).

    A chunk allocates tens of MB of short-lived buffers (decompressed baskets, arrays, kernel
    scratch). glibc serves blocks above its mmap threshold (128 kB until it adapts) with fresh
    ``mmap`` pages and unmaps them on free, so every chunk page-faults its memory anew: in
    fresh worker processes that was ~1 GB of faults and ~0.8 s of system time per 5 M events
    (a third of the work). Raising the threshold to 32 MB (and the trim threshold to 128 MB)
    lets freed buffers be reused; peak memory is unchanged (at most the trim threshold is kept
    unused). Forked workers inherit the setting. Returns whether it was applied.
    """
    pid = os.getpid()
    if pid in _malloc_tuned:
        return _malloc_tuned[pid]
    ok = False
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        try:
            libc = ctypes.CDLL(None)
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
                      and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))
        except (OSError, AttributeError):  # an unusual libc: keep its defaults
            ok = False
    _malloc_tuned[pid] = ok
    return ok


def _read_ahead(chunks: Iterator[_Item]) -> Iterator[_Item]:
    """Yield ``chunks`` while a background thread already reads the next one.

    The numba kernel releases the GIL, so filling chunk *k* overlaps with reading (and
    decompressing) chunk *k + 1*. Memory: at most two chunks alive.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recastkit-read") as pool:
        pending = pool.submit(next, chunks, None)
        while True:
            chunk = pending.result()
            if chunk is None:
                return
            pending = pool.submit(next, chunks, None)
            yield chunk


def _run_task(task: _Task) -> _Outcome:
    """Process one work unit (runs in the worker); library errors are returned, not raised."""
    acc = _empty(task.config, task.layout)
    u = task.unit
    try:
        for chunk in _read(task):
            _fill(acc, chunk, task)
    except RecastkitError as exc:
        return _Outcome(u, None, type(exc).__name__, str(exc))
    return _Outcome(u, acc)


def _error_class(name: str | None) -> type[RecastkitError]:
    cls = getattr(exceptions, name or "", None)
    if isinstance(cls, type) and issubclass(cls, RecastkitError):
        return cls
    return SelectionError


# --------------------------------------------------------------------------- planning


def split_units(path: str, boundaries: Sequence[int], chunk_size: int) -> list[WorkUnit]:
    """Cut ``[0, n)`` into units of about ``chunk_size`` entries, at ``boundaries`` if possible.

    A unit ends at the first boundary at or after ``start + chunk_size``; when that boundary
    is more than ``2 * chunk_size`` away (huge baskets), it ends at ``start + chunk_size``.
    """
    points = sorted(set(boundaries))
    n = points[-1] if points else 0
    units: list[WorkUnit] = []
    start = 0
    while start < n:
        target = start + chunk_size
        stop = next((p for p in points if p >= target), n)
        if stop - start > 2 * chunk_size:
            stop = min(target, n)
        units.append(WorkUnit(path, start, stop))
        start = stop
    return units


def _resolve(path: Path, config: AnyConfig) -> AnyLayout:
    if isinstance(config, AnalysisConfig):
        cc = compiled(config)
        unweighted = config.input.unweighted  # data: no weight factors, no variations
        return resolve_object_layout(
            path, config.input, {k: set(v) for k, v in cc.uses.items()}, cc.overrides,
            () if unweighted else config.extra_weights, () if unweighted else config.variations,
            {k: config.event_fields[k] for k in cc.event_fields} if not cc.has_hooks
            else dict(config.event_fields))
    return resolve_layout(path, config.input, config.extra_weights)


def _plan(files: Sequence[Path], config: AnyConfig, chunk_size: int, skip_bad_files: bool,
          options: ReadOptions) -> tuple[list[_Task], dict[str, AnyLayout], list[SkippedFile]]:
    tasks: list[_Task] = []
    layouts: dict[str, AnyLayout] = {}
    skipped: list[SkippedFile] = []
    for path in files:
        spath = str(path)
        try:
            layout = _resolve(path, config)
            events = layout.events if isinstance(layout, ObjectLayout) else layout
            n = count_entries(path, events)
            bounds = cluster_boundaries(path, layout) if n else [0]
        except RecastkitError as exc:
            if not skip_bad_files:
                raise
            log.warning("skipping %s", exc)
            skipped.append(SkippedFile(spath, str(exc)))
            continue
        if n == 0:
            log.warning("%s: tree %r has no events", spath, layout.tree)
        layouts[spath] = layout
        step = (min(chunk_size, ANALYSIS_STEP_SIZE) if isinstance(config, AnalysisConfig)
                else chunk_size)
        tasks.extend(_Task(u, layout, config, step, options)
                     for u in split_units(spath, bounds, chunk_size))
    names = sorted({lay.name for lay in layouts.values()})
    if len(names) > 1:
        by_layout = {name: [p for p, lay in layouts.items() if lay.name == name][:3]
                     for name in names}
        msg = (
            "input files have different event layouts: "
            + "; ".join(f"{k}: {', '.join(v)}" for k, v in by_layout.items())
            + "; process them separately or force one with --layout"
        )
        raise SelectionError(msg)
    return tasks, layouts, skipped


# --------------------------------------------------------------------------- progress


class _Progress:
    """A rich progress bar on a terminal, otherwise INFO log lines every ~10 %."""

    def __init__(self, total: int, n_events: int, enabled: bool | None) -> None:
        self.total = total
        self.done = 0
        self._next_log = 0.1
        self._bar: Any = None
        self._task: Any = None
        interactive = sys.stderr.isatty() if enabled is None else enabled
        if interactive and sys.stderr.isatty() and total > 1:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task(f"selecting {n_events} events", total=total)
        self._enabled = enabled is not False

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1)
        elif self._enabled and self.total and self.done / self.total >= self._next_log:
            log.info("processed %d/%d work units", self.done, self.total)
            while self._next_log <= self.done / self.total:
                self._next_log += 0.1


# --------------------------------------------------------------------------- executors

Callback = Callable[[int, int], None]


_Chunk = EventChunk | ObjectChunk
_Started = tuple[Iterator[_Chunk], _Chunk | None]


def _start(task: _Task) -> _Started:
    """The chunk iterator of ``task`` and its first chunk (``None``: no chunk)."""
    chunks = _read(task)
    return chunks, next(chunks, None)


def _chunk_stream(tasks: Sequence[_Task], prefetch: bool = False) -> Iterator[_Item]:
    """``(task index, chunk, None)`` for every chunk of every task; ``(i, None, error)``.

    With ``prefetch``, the first chunk of the next task is read in a background thread while
    the last chunk of the current one is read: with one chunk per work unit (the default
    units of a single file), the basket decoders then never wait for the consumer to ask for
    the next unit. The order of the items (and so every result) is unchanged; at most one
    more chunk is alive.
    """
    if not prefetch or len(tasks) < 2:
        for i, t in enumerate(tasks):
            try:
                for chunk in _read(t):
                    yield i, chunk, None
            except RecastkitError as exc:
                yield i, None, exc
        return
    # two threads: the next unit starts while this one may still be waiting for its first chunk
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="recastkit-next")
    ahead: Future[_Started] | None = None
    try:
        for i, t in enumerate(tasks):
            head = ahead if ahead is not None else pool.submit(_start, t)
            ahead = None
            more = i + 1 < len(tasks)
            n_chunks = -(-(t.unit.entry_stop - t.unit.entry_start) // t.step_size)
            try:
                if n_chunks <= 1 and more:  # this unit's only chunk is being read: go on
                    ahead = pool.submit(_start, tasks[i + 1])
                chunks, item = head.result()
                k = 1
                while item is not None:
                    yield i, item, None
                    if k >= n_chunks - 1 and ahead is None and more:  # the last one is next
                        ahead = pool.submit(_start, tasks[i + 1])
                    item = next(chunks, None)
                    k += 1
            except RecastkitError as exc:
                yield i, None, exc
    finally:
        if ahead is not None and not ahead.cancel():
            with contextlib.suppress(Exception):  # reported, or not needed
                ahead.result()
        pool.shutdown(wait=True)


def _fill_after(previous: Future[None] | None, acc: AnyAccumulator,
                chunk: EventChunk | ObjectChunk, task: _Task) -> None:
    """Fill ``chunk`` once the previous chunk of the same unit is filled (same accumulator)."""
    if previous is not None:
        previous.result()
    _fill(acc, chunk, task)


def _iterative(tasks: Sequence[_Task], progress: _Progress, callback: Callback | None,
               read_ahead: bool) -> list[_Outcome]:
    """Read the units in order in this process and fill their accumulators.

    With ``read_ahead``, dijet chunks are filled by one thread per core (the numba kernel
    releases the GIL): chunks of different units in parallel, the chunks of one unit in order
    (each unit has its own accumulator, and units are merged in order afterwards, so the
    result is the same as filling everything in sequence). At most one chunk per core is
    waiting to be filled, and the first chunk of the next unit is read while the last one
    of the current unit is (:func:`_chunk_stream` with ``prefetch``), so the basket decoders
    do not idle between units. Analysis (regions) chunks are filled in this thread.
    """
    accs = [_empty(t.config, t.layout) for t in tasks]
    errors: dict[int, RecastkitError] = {}
    done = 0

    def advance(upto: int) -> None:
        nonlocal done
        while done < upto:
            done += 1
            progress.advance()
            if callback is not None:
                callback(progress.done, progress.total)

    cores = available_cores()
    parallel = (read_ahead and cores > 1
                and all(isinstance(a, SelectionAccumulator) for a in accs))
    stream = _chunk_stream(tasks, prefetch=parallel)
    if not parallel:
        for i, chunk, exc in (_read_ahead(stream) if read_ahead else stream):
            advance(i)
            if exc is not None:
                errors[i] = exc
            elif chunk is not None:
                _fill(accs[i], chunk, tasks[i])
    else:
        last: dict[int, Future[None]] = {}
        inflight: deque[Future[None]] = deque()

        def finished(upto: int) -> int:  # units before `upto` whose fills are all done
            k = done
            while k < upto and (k not in last or last[k].done()):
                k += 1
            return k

        with ThreadPoolExecutor(max_workers=cores, thread_name_prefix="recastkit-fill") as pool:
            try:
                for i, chunk, exc in _read_ahead(stream):
                    advance(finished(i))
                    if exc is not None:
                        errors[i] = exc
                    elif chunk is not None:
                        fut = pool.submit(_fill_after, last.get(i), accs[i], chunk, tasks[i])
                        last[i] = fut
                        inflight.append(fut)
                        while len(inflight) > cores:
                            inflight.popleft().result()
                for fut in inflight:
                    fut.result()
            finally:
                for fut in inflight:
                    fut.cancel()
    advance(len(tasks))
    return [
        _Outcome(t.unit, None, type(errors[i]).__name__, str(errors[i])) if i in errors
        else _Outcome(t.unit, accs[i])
        for i, t in enumerate(tasks)
    ]


def _processes(tasks: Sequence[_Task], workers: int | None, progress: _Progress,
               callback: Callback | None) -> list[_Outcome]:
    """Run the tasks on a process pool whose workers die with this process.

    Workers ignore SIGINT and get SIGKILL when this process dies (:mod:`recastkit._workers`).
    On any exception here (Ctrl-C's ``KeyboardInterrupt`` included) the pool is terminated
    at once, busy workers too, before the exception propagates.
    """
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    warm_up()  # compile once in the parent; forked workers inherit the machine code
    warm_up_expressions()
    fork = "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if fork else None)
    out: list[_Outcome] = []
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=init_worker,
                               initargs=(os.getpid() if fork else None,))
    try:
        futures = [pool.submit(_run_task, t) for t in tasks]
        for fut in as_completed(futures):
            try:
                out.append(fut.result())
            except BrokenProcessPool:
                msg = (
                    f"a worker process of the processes executor died while processing "
                    f"{len(tasks)} work units (killed, or out of memory?); retry with fewer "
                    "--workers, a smaller --chunk-size or --executor iterative"
                )
                raise SelectionError(msg) from None
            progress.advance()
            if callback is not None:
                callback(progress.done, progress.total)
    except BaseException:
        terminate_pool(pool)
        raise
    pool.shutdown(wait=True)
    return out


def _import_distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        msg = (
            "the dask executor needs dask.distributed, which is not installed; "
            "install it with: pip install 'recastkit[dask]'"
        )
        raise MissingDependencyError(msg) from None


@contextmanager
def _dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    distributed = _import_distributed()
    if scheduler in (None, "", "local"):
        n = workers or os.cpu_count() or 1
        log.info("starting a dask LocalCluster with %d worker processes", n)
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster, \
                distributed.Client(cluster) as client:
            yield client
    else:
        try:
            client = distributed.Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            msg = f"cannot connect to the dask scheduler at {scheduler!r}: {exc}"
            raise SelectionError(msg) from None
        with client:
            yield client


def _dask(tasks: Sequence[_Task], scheduler: str | None, workers: int | None,
          progress: _Progress, callback: Callback | None) -> list[_Outcome]:
    dask_as_completed: Any = _import_distributed().as_completed
    token = uuid.uuid4().hex[:12]
    out: list[_Outcome] = []
    with _dask_client(scheduler, workers) as client:
        futures = [client.submit(_run_task, t, key=f"recastkit-unit-{token}-{i}", pure=False)
                   for i, t in enumerate(tasks)]
        try:
            for fut in dask_as_completed(futures):
                try:
                    out.append(fut.result())
                except RecastkitError:
                    raise
                except Exception as exc:
                    msg = f"dask task {fut.key} failed: {type(exc).__name__}: {exc}"
                    raise SelectionError(msg) from exc
                fut.release()
                progress.advance()
                if callback is not None:
                    callback(progress.done, progress.total)
        finally:
            client.cancel(futures)
    return out


# --------------------------------------------------------------------------- run


def _bookkeeping(files: Sequence[str], layout: EventLayout | None) -> SumOfWeightsInfo:
    if not files:
        return SumOfWeightsInfo(None, None, None, "no files processed")
    from recastkit.bookkeeping import sum_of_weights_files

    try:
        report = sum_of_weights_files(list(files), weight_index=(
            layout.weight_index if layout is not None and layout.weight_index else 0))
    except RecastkitError as exc:
        log.warning("no bookkeeping sum of weights: %s", exc)
        return SumOfWeightsInfo(None, None, None, str(exc))
    total = report.total
    return SumOfWeightsInfo(float(total.sum_of_weights),
                            None if total.sum_of_weights_squared is None
                            else float(total.sum_of_weights_squared),
                            str(total.source), None, total.dsid)


def dsid_from_dataset(dataset: str | None) -> int | None:
    """The DSID field of an ATLAS MC dataset name (``mc16_13TeV.410470.…`` -> 410470)."""
    if not dataset:
        return None
    name = dataset.split(":", 1)[-1]
    match = _DSID_RE.match(name)
    return int(match.group(1)) if match else None


@overload
def run_selection(
    inputs: Sequence[str | os.PathLike[str]],
    config: AnalysisConfig,
    *,
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dataset: str | None = None,
    skip_bad_files: bool = False,
    bookkeeping: bool = True,
    allow_empty: bool = False,
    progress: bool | None = None,
    callback: Callback | None = None,
    read_ahead: bool = True,
    read_options: ReadOptions | None = None,
) -> RegionsResult: ...


@overload
def run_selection(
    inputs: Sequence[str | os.PathLike[str]],
    config: SelectionConfig | None = None,
    *,
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dataset: str | None = None,
    skip_bad_files: bool = False,
    bookkeeping: bool = True,
    allow_empty: bool = False,
    progress: bool | None = None,
    callback: Callback | None = None,
    read_ahead: bool = True,
    read_options: ReadOptions | None = None,
) -> SelectionResult: ...


def run_selection(
    inputs: Sequence[str | os.PathLike[str]],
    config: AnyConfig | None = None,
    *,
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dataset: str | None = None,
    skip_bad_files: bool = False,
    bookkeeping: bool = True,
    allow_empty: bool = False,
    progress: bool | None = None,
    callback: Callback | None = None,
    read_ahead: bool = True,
    read_options: ReadOptions | None = None,
) -> SelectionResult | RegionsResult:
    """Select events and fill the histograms of :mod:`recastkit.selection` or
    :mod:`recastkit.regions`.

    Args:
        inputs: Files or glob patterns (one sample).
        config: The selection; defaults to :class:`SelectionConfig()` (≥ 2 jets, no cuts). An
            :class:`~recastkit.regions.AnalysisConfig` gives a :class:`RegionsResult`.
        executor: One of :data:`EXECUTORS`.
        workers: Worker processes (default: all cores; dask ``local`` too).
        scheduler: Dask scheduler address ``tcp://HOST:PORT`` or ``"local"`` (default).
        chunk_size: Events per chunk and target work-unit size.
        dataset: Dataset name recorded in the result (and source of the DSID if the
            bookkeeping has none).
        skip_bad_files: Skip unreadable files and files missing a tree/branch, listing them in
            :attr:`SelectionResult.skipped_files`, instead of failing.
        bookkeeping: Read the bookkeeping sum of weights of the processed files.
        allow_empty: Return an empty result instead of raising when no event passes.
        progress: Progress display: ``None`` a bar on a terminal, log lines otherwise.
        callback: Called as ``callback(done, total)`` after each work unit completes.
        read_ahead: With the ``iterative`` executor, read the next chunk in a background
            thread while the (GIL-free) kernel fills the current one (dijet: units in
            parallel on one thread per core, each unit's chunks in order); a few chunks are
            in memory. The parallel executors run one unit per worker without it.
        read_options: zlib decoder and decompression threads; default: the configuration's
            ``reading`` (fastest decoder; threads = available cores for ``iterative``,
            cores / workers for the parallel executors).

    Raises:
        RootFileError, MissingObjectError: A bad input file (without ``skip_bad_files``).
        SelectionError: No event passes, every file was skipped, bad arguments, a failed
            dask task.
        MissingDependencyError: ``executor="dask"`` without dask installed.
    """
    config = config or SelectionConfig()
    if executor not in EXECUTORS:
        msg = f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}"
        raise SelectionError(msg)
    if chunk_size <= 0:
        raise SelectionError(f"chunk_size must be a positive number of events, got {chunk_size}")
    if workers is not None and workers <= 0:
        raise SelectionError(f"workers must be positive, got {workers}")
    files = expand_inputs(inputs)
    if not files:
        raise SelectionError("no input files given")
    options = _read_options(config, read_options, executor, workers)
    tasks, layouts, skipped = _plan(files, config, chunk_size, skip_bad_files, options)
    tasks.sort(key=lambda t: t.unit)
    n_total = sum(t.unit.entry_stop - t.unit.entry_start for t in tasks)
    log.info("%d files, %d events in %d work units, executor %s", len(layouts), n_total,
             len(tasks), executor)
    keep_freed_memory()
    t0 = time.perf_counter()
    with _Progress(len(tasks), n_total, progress) as bar:
        if executor == "iterative" or not tasks:
            outcomes = _iterative(tasks, bar, callback, read_ahead)
        elif executor == "processes":
            outcomes = _processes(tasks, workers, bar, callback)
        else:
            outcomes = _dask(tasks, scheduler, workers, bar, callback)
    elapsed = time.perf_counter() - t0
    outcomes.sort(key=lambda o: o.unit)
    bad: dict[str, _Outcome] = {}
    for o in outcomes:
        if o.acc is None:
            bad.setdefault(o.unit.path, o)
    if bad and not skip_bad_files:
        first = bad[min(bad)]
        raise _error_class(first.error_type)(first.error)
    for path, o in sorted(bad.items()):
        log.warning("skipping %s", o.error)
        skipped.append(SkippedFile(path, o.error or "unreadable"))
    good = [o for o in outcomes if o.acc is not None and o.unit.path not in bad]
    processed = sorted(p for p in layouts if p not in bad)
    if not processed:
        msg = "every input file was skipped: " + "; ".join(s.reason for s in skipped)
        raise SelectionError(msg)
    layout = layouts[processed[0]]
    acc = _empty(config, layout)
    for o in good:  # deterministic order: (path, entry range)
        assert o.acc is not None
        acc = _merge(acc, o.acc)
    events_layout = layout.events if isinstance(layout, ObjectLayout) else layout
    if isinstance(config, AnalysisConfig):
        assert isinstance(acc, RegionsAccumulator)
        assert isinstance(layout, ObjectLayout)
        return _regions_result(
            acc, config, layout, processed, skipped, allow_empty, bookkeeping, dataset,
            executor=executor, chunk_size=chunk_size, n_units=len(tasks), elapsed=elapsed,
            options=options)
    assert isinstance(acc, SelectionAccumulator)
    cutflow = acc.cutflow(config)
    if cutflow[-1].n_events == 0 and not allow_empty:
        steps = ", ".join(f"{c.name}: {c.n_events}" for c in cutflow)
        msg = (
            f"empty selection: no event passes in {', '.join(processed[:5])}"
            f"{' …' if len(processed) > 5 else ''} (cutflow {steps})"
        )
        raise SelectionError(msg)
    specs = config.histogram_specs
    arrays = acc.histogram_arrays()
    hists = {s.name: build_hist(s, arrays[s.name]) for s in specs}
    moments = {name: Moments.from_array(acc.moments[i]) for i, name in enumerate(HIST_NAMES)}
    sumw = (_bookkeeping(processed, events_layout) if bookkeeping
            else SumOfWeightsInfo(None, None, None, "bookkeeping not read (disabled)"))
    dsid = sumw.dsid if sumw.dsid is not None else dsid_from_dataset(dataset)
    return SelectionResult(
        histograms=hists, cutflow=cutflow, moments=moments, files=tuple(processed),
        skipped_files=tuple(sorted(skipped, key=lambda s: s.path)), n_events=acc.n_events,
        layout=layout.name, config=config, dataset=dataset, dsid=dsid, sum_of_weights=sumw,
        executor=executor, chunk_size=chunk_size, n_units=len(tasks), elapsed_s=elapsed,
    )


def _read_options(config: AnyConfig, given: ReadOptions | None, executor: str,
                  workers: int | None) -> ReadOptions:
    """The read options of a run: given, else the configuration's, threads per process."""
    opts = given or config.reading
    if opts.decompression_threads == 0 and executor != "iterative":
        cores = available_cores()
        n_workers = workers or cores
        opts = ReadOptions(opts.decoder, max(1, cores // n_workers))
    return opts


def _regions_result(  # noqa: PLR0917
        acc: RegionsAccumulator, config: AnalysisConfig, layout: ObjectLayout,
                    processed: list[str], skipped: list[SkippedFile], allow_empty: bool,
                    bookkeeping: bool, dataset: str | None, *, executor: str, chunk_size: int,
                    n_units: int, elapsed: float, options: ReadOptions) -> RegionsResult:
    cutflows: dict[str, tuple[CutflowEntry, ...]] = {}
    var_names = [v.name for v in layout.variations]
    var_cutflows: dict[str, dict[str, list[float]]] = {}
    for r in config.regions:
        names = config.cut_names(r.name)
        cutflows[r.name] = tuple(
            CutflowEntry(n, int(acc.cut_n[r.name][i]), float(acc.cut_w[r.name][i, 0]),
                         float(acc.cut_w[r.name][i, 1])) for i, n in enumerate(names))
        var_cutflows[r.name] = {v: [float(x) for x in acc.cut_var[r.name][j]]
                                for j, v in enumerate(var_names)}
    if not allow_empty and all(c[-1].n_events == 0 for c in cutflows.values()):
        steps = "; ".join(f"{k}: " + ", ".join(f"{c.name}: {c.n_events}" for c in v)
                          for k, v in cutflows.items())
        msg = (f"empty selection: no event passes any region in {', '.join(processed[:5])}"
               f"{' …' if len(processed) > 5 else ''} (cutflows {steps})")
        raise SelectionError(msg)
    hists: dict[str, hist.Hist] = {}
    for r in config.regions:
        for o in r.observables:
            spec = config.observables[o].spec
            for v in (None, *var_names):
                name = config.hist_name(r.name, o, v)
                hists[name] = build_hist(HistogramSpec(name, spec.nbins, spec.low, spec.high,
                                                       spec.label), acc.hists[name])
    sumw = (_bookkeeping(processed, layout.events) if bookkeeping
            else SumOfWeightsInfo(None, None, None, "bookkeeping not read (disabled)"))
    dsid = sumw.dsid if sumw.dsid is not None else dsid_from_dataset(dataset)
    return RegionsResult(
        histograms=hists, cutflows=cutflows, variation_cutflows=var_cutflows,
        files=tuple(processed), skipped_files=tuple(sorted(skipped, key=lambda s: s.path)),
        n_events=acc.n_events, layout=layout.name, config=config, dataset=dataset, dsid=dsid,
        sum_of_weights=sumw, executor=executor, chunk_size=chunk_size, n_units=n_units,
        elapsed_s=elapsed, variations=layout.variations, read_options=options,
        btag_source=layout.btag_source,
    )


def write_selection(result: SelectionResult | RegionsResult, path: str | os.PathLike[str]
                    ) -> tuple[Path, Path]:
    """Write the histograms and metadata to ``path`` (ROOT TH1D) and its ``.json`` twin.

    The two files are replaced together or not at all (:func:`recastkit._atomic.atomic_paths`):
    both are written to temporary files first, and a failure at any point (even while renaming)
    leaves the previous pair, or nothing, in place.

    Returns:
        ``(root path, json path)``.
    """
    root_path = Path(path)
    if root_path.suffix.lower() != ".root":
        raise SelectionError(f"{root_path}: the output file must end in .root")
    json_path = root_path.with_suffix(".json")
    meta = result.metadata()
    with atomic_paths(root_path, json_path) as (tmp_root, tmp_json):
        write_hists(tmp_root, result.histograms, meta)
        write_hists(tmp_json, result.histograms, meta)
    return root_path, json_path
