"""Signal grids: a background-only workspace evaluated with every signal patch, resumably.

A HEPData HistFactory likelihood is a background-only workspace (``BkgOnly.json``) and one
JSON Patch (RFC 6902 list of ``{op, path, value}``) per signal point that adds the signal
samples (inputs: :mod:`recastkit.stats.gridinputs`). :func:`run_grid` computes every point's
observed and expected CLs at μ (and, optionally, the upper limits) as a
:class:`~recastkit.stats.results.PointResult`: with the fast engine
(:mod:`recastkit.stats.batchfit`) where it applies, with pyhf otherwise; in this process, in
a process pool or on a Dask cluster; each finished point is appended to a
:class:`~recastkit.stats.gridstore.PointStore` so that a killed grid resumes.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from recastkit._workers import terminate_pool
from recastkit.exceptions import StatsError
from recastkit.stats.gridinputs import GridSource, SignalPoint
from recastkit.stats.gridstore import PointStore, point_key
from recastkit.stats.model import Likelihood, likelihood_from_workspace
from recastkit.stats.results import PointResult, PointStatus

log = logging.getLogger(__name__)


def apply_patches(workspace: Mapping[str, Any], patches: Iterable[tuple[str, Any]]
                  ) -> dict[str, Any]:
    """Apply JSON Patches in order and return a new workspace mapping.

    Args:
        workspace: The background-only workspace.
        patches: ``(name, patch)`` pairs; a patch is an RFC 6902 list of operations or a
            pyhf patch object ``{"metadata": ..., "patch": [...]}``.

    Raises:
        StatsError: For a patch that is not a list of operations or does not apply (names it).
    """
    import jsonpatch

    doc: dict[str, Any] = copy.deepcopy(dict(workspace))
    for name, patch in patches:
        ops = patch
        if isinstance(patch, Mapping):
            if "patches" in patch:
                names = [p.get("metadata", {}).get("name", "?") for p in patch["patches"]][:10]
                msg = (
                    f"{name}: is a pyhf patchset with {len(patch['patches'])} patches; "
                    f"extract one (e.g. 'pyhf patchset extract') — first names: {names}"
                )
                raise StatsError(msg)
            ops = patch.get("patch")
        if not isinstance(ops, list):
            msg = (
                f"{name}: expected a JSON Patch (a list of {{op, path, value}} operations or "
                f"a pyhf patch with a 'patch' list), got {type(patch).__name__}"
            )
            raise StatsError(msg)
        try:
            doc = jsonpatch.apply_patch(doc, ops)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException,
                TypeError, KeyError) as exc:
            raise StatsError(f"{name}: the patch does not apply to the workspace ({exc})") from None
    return doc


def likelihood_with_poi_bound(workspace: Mapping[str, Any], mu: float,
                              measurement: str | None = None) -> Likelihood:
    """Compile ``workspace``; widen the POI upper bound to ``mu`` when needed (logged)."""
    lh = likelihood_from_workspace(workspace, measurement=measurement)
    if lh.poi_index < 0 or lh.model.config.poi_name is None:
        raise StatsError("workspace: the measurement defines no parameter of interest")
    high = lh.par_bounds[lh.poi_index][1]
    if mu > high:
        log.warning("μ = %g is above the POI upper bound %g; widening the bound", mu, high)
        lh = lh.with_poi_bound(mu)
    return lh


# --------------------------------------------------------------------------- batched runner

#: Engines of :func:`run_grid`: ``auto`` (the fast engine, fits converged to floating-point
#: precision, where it applies; pyhf otherwise), ``pyhf-path`` (the fast engine's model with
#: pyhf's own SLSQP fits, given the exact gradient: about as fast as ``auto``, and as close to
#: pyhf's default fits as pyhf's own results are between BLAS thread settings), ``pyhf``
#: (pyhf's ``hypotest`` per point, the reference).
ENGINES: tuple[str, ...] = ("auto", "pyhf-path", "pyhf")
#: Where the points run: in this process, in a process pool, or on a Dask cluster.
EXECUTORS: tuple[str, ...] = ("iterative", "processes", "dask")


@dataclass(frozen=True)
class GridSettings:
    """What is computed for every point (part of each point's store key).

    Attributes:
        mu: Signal strength at which CLs is computed.
        test_stat: ``"qtilde"`` or ``"q"``.
        limits: Also compute the observed and expected upper limits on μ.
        cl: Confidence level of the limits.
        engine: One of :data:`ENGINES`.
    """

    mu: float = 1.0
    test_stat: str = "qtilde"
    limits: bool = False
    cl: float = 0.95
    engine: str = "auto"

    def __post_init__(self) -> None:
        if self.test_stat not in ("qtilde", "q"):
            raise StatsError(f"unknown test statistic {self.test_stat!r}; valid: qtilde, q")
        if self.engine not in ENGINES:
            raise StatsError(f"unknown engine {self.engine!r}; valid: {', '.join(ENGINES)}")
        if not (math.isfinite(self.mu) and self.mu > 0):
            raise StatsError(f"--mu must be a positive number, got {self.mu!r}")
        if not 0 < self.cl < 1:
            raise StatsError(f"--cl must be in (0, 1), got {self.cl!r}")

    def key(self) -> dict[str, Any]:
        """The settings that enter the store key."""
        return {"mu": self.mu, "test_stat": self.test_stat, "limits": self.limits,
                "cl": self.cl, "engine": self.engine, "version": _STORE_VERSION}


#: Bumped when the numbers a given engine returns change (invalidates stored points).
_STORE_VERSION = 2  # 2: pyhf-path fits with the exact gradient


def _nan_cls(mu: float) -> tuple[float, tuple[float, float, float, float, float]]:
    nan = math.nan
    return nan, (nan, nan, nan, nan, nan)


def pyhf_point(background: Mapping[str, Any], point: SignalPoint, settings: GridSettings
               ) -> PointResult:
    """One point with pyhf's own ``hypotest`` (and ``upper_limit``): the reference path.

    pyhf's NaN CLs values are kept (status ``failed`` with the reason); errors of the patch
    or the model fail the point, never the grid.
    """
    import warnings

    import numpy as np
    import pyhf

    try:
        lh = likelihood_with_poi_bound(apply_patches(background, [(point.name, list(point.patch))]),
                                       settings.mu)
    except StatsError as exc:
        obs, exp = _nan_cls(settings.mu)
        return PointResult(point.name, settings.mu, obs, exp, "failed", cl=settings.cl,
                           test_stat=settings.test_stat, reason=str(exc),
                           parameters=dict(point.parameters))
    data = np.asarray(lh.data, dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            o, e = pyhf.infer.hypotest(
                float(settings.mu), data, lh.model, init_pars=list(lh.init_pars),
                par_bounds=[list(b) for b in lh.par_bounds],
                fixed_params=list(lh.fixed_params), test_stat=settings.test_stat,
                return_expected_set=True)
    except pyhf.exceptions.FailedMinimization as exc:
        obs, exp = _nan_cls(settings.mu)
        return PointResult(point.name, settings.mu, obs, exp, "failed", cl=settings.cl,
                           test_stat=settings.test_stat,
                           reason=f"pyhf: fit failed ({str(exc).splitlines()[0]})",
                           parameters=dict(point.parameters))
    obs = float(o)
    exp5 = tuple(float(x) for x in e)
    exp = (exp5[0], exp5[1], exp5[2], exp5[3], exp5[4])
    status: PointStatus = "converged"
    reason = ""
    if any(math.isnan(v) for v in (obs, *exp)):
        status, reason = "failed", "pyhf gives NaN CLs (a fit failed or q_mu < 0)"
    obs_lim: float | None = None
    exp_lim: tuple[float, float, float, float, float] | None = None
    if settings.limits and status == "converged":
        from pyhf.infer.intervals.upper_limits import upper_limit as pyhf_upper_limit

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lo_, hi_ = lh.par_bounds[lh.poi_index]
                ol, el = pyhf_upper_limit(
                    data, lh.model, scan=None, level=1.0 - settings.cl,
                    init_pars=list(lh.init_pars),
                    par_bounds=[list(b) for b in lh.par_bounds],
                    fixed_params=list(lh.fixed_params), test_stat=settings.test_stat)
            obs_lim = float(ol)
            el5 = [float(x) for x in el]
            exp_lim = (el5[0], el5[1], el5[2], el5[3], el5[4])
            del lo_, hi_
        except (ValueError, RuntimeError, pyhf.exceptions.FailedMinimization) as exc:
            status, reason = "failed", f"upper limit: {exc}"
    return PointResult(point.name, settings.mu, obs, exp, status, obs_lim, exp_lim,
                       cl=settings.cl, test_stat=settings.test_stat, reason=reason,
                       parameters=dict(point.parameters))


# worker-process state: the background and the engine's compiled background parts
_WORKER: dict[str, Any] = {}


def _init_worker(background: Mapping[str, Any], background_digest: str,
                 settings: GridSettings) -> None:
    _WORKER.clear()
    _WORKER.update(background=background, digest=background_digest, settings=settings,
                   cache={})


def _init_pool_worker(parent_pid: int | None, background: Mapping[str, Any] | None = None,
                      background_digest: str = "", settings: GridSettings | None = None
                      ) -> None:
    """Process-pool initializer: die with the parent, leave Ctrl-C to it, hold the background."""
    from recastkit._workers import init_worker

    init_worker(parent_pid)
    if background is not None and settings is not None:
        _init_worker(background, background_digest, settings)


def evaluate_point(background: Mapping[str, Any], point: SignalPoint, settings: GridSettings,
                   cache: dict[str, Any] | None = None) -> PointResult:
    """One point with the engine ``settings.engine`` selects.

    ``auto`` uses the exact fast engine for models it supports (its points report
    ``converged``, or ``fallback`` when pyhf's own path was needed) and pyhf otherwise.
    ``cache`` holds the background-only parts compiled once per process.
    """
    if settings.engine in ("auto", "pyhf-path"):
        from recastkit.stats import batchfit

        fast = batchfit.evaluate(background, point, settings, cache if cache is not None else {})
        if fast is not None:
            return fast
    return pyhf_point(background, point, settings)


def _worker_eval(point: SignalPoint) -> PointResult:
    return evaluate_point(_WORKER["background"], point, _WORKER["settings"], _WORKER["cache"])


def _dask_eval(background: Mapping[str, Any], points: Sequence[SignalPoint],
               settings: GridSettings) -> list[PointResult]:
    if _WORKER.get("background") is not background or _WORKER.get("settings") != settings:
        _init_worker(background, "", settings)
    return [_worker_eval(p) for p in points]


#: Called after every point with (done, total, name).
GridProgress = Callable[[int, int, str], None]


def run_grid(source: GridSource, settings: GridSettings, *, store: PointStore | None = None,
             executor: str = "iterative", workers: int | None = None,
             scheduler: str | None = None, progress: GridProgress | None = None
             ) -> list[PointResult]:
    """Evaluate every point of ``source``; reuse and extend the ``store``.

    Each finished point is appended to ``store`` (fsynced) before the next is reported, so a
    killed grid resumes where it stopped. The result list follows ``source.points`` whatever
    the completion order.

    Args:
        source: Background and signal points.
        settings: μ, test statistic, limits, engine.
        store: Resumable store; None keeps results in memory only.
        executor: One of :data:`EXECUTORS`.
        workers: Processes (``processes``) or LocalCluster workers (``dask``).
        scheduler: Dask scheduler address (``dask``); None starts a LocalCluster.
        progress: Called after each point with (done, total, name).

    Raises:
        StatsError: For an unknown executor.
    """
    if executor not in EXECUTORS:
        raise StatsError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    settings_key = settings.key()
    keys = [point_key(source.background_digest, p.digest, settings_key) for p in source.points]
    results: dict[int, PointResult] = {}
    todo: list[int] = []
    for i, (p, k) in enumerate(zip(source.points, keys, strict=True)):
        stored = store.get(k) if store is not None else None
        if stored is not None:
            results[i] = dataclasses.replace(stored, parameters=dict(p.parameters))
        else:
            todo.append(i)
    total = len(source.points)
    if results:
        log.info("%d of %d points already in the store; %d to compute", len(results), total,
                 len(todo))
    done = len(results)

    def finish(i: int, r: PointResult, persist: bool = True) -> None:
        nonlocal done
        if store is not None and persist:
            store.add(keys[i], r)
        results[i] = r
        done += 1
        log.debug("%s: CLs_obs = %.6g (%s)", r.name, r.cls_observed, r.status)
        if progress is not None:
            progress(done, total, r.name)

    if todo and _on_engine_fast_path(source, todo[0], settings):
        # models recastkit fit builds: h9limit's engine, vectorized across a chunk of points
        # the same chunks on every executor: the same vectorized batches, the same numbers
        chunks = [todo[k:k + ENGINE_CHUNK] for k in range(0, len(todo), ENGINE_CHUNK)]
        n_workers = max(1, min(workers or os.cpu_count() or 1, len(chunks)))
        if executor == "dask":
            _run_dask(source, settings, chunks, engine_chunk, scheduler=scheduler,
                      workers=workers, finish=finish)
        elif executor == "iterative" or n_workers == 1:
            for chunk in chunks:
                for i, r in zip(chunk, engine_chunk(source.background,
                                                    [source.points[i] for i in chunk],
                                                    settings), strict=True):
                    finish(i, r)
        else:
            _run_engine_processes(source, settings, chunks, n_workers, finish)
        todo = []
    if todo:
        n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        if executor == "iterative" or (executor == "processes" and n_workers == 1):
            cache: dict[str, Any] = {}
            for i in todo:
                finish(i, evaluate_point(source.background, source.points[i], settings, cache))
        elif executor == "processes":
            _run_processes(source, settings, todo, n_workers, finish)
        else:
            _run_dask(source, settings, [[i] for i in todo], _dask_eval, scheduler=scheduler,
                      workers=workers, finish=finish)
    return [results[i] for i in range(total)]


#: Points per call of the fast limit engine (one vectorized batch).
ENGINE_CHUNK = 64


def _on_engine_fast_path(source: GridSource, index: int, settings: GridSettings) -> bool:
    """Whether the grid's model is one the fast limit engine (``stats.engine``) handles."""
    if settings.engine != "auto":
        return False
    try:
        from recastkit.stats import engine
        from recastkit.stats.batchfit import Unsupported, apply_ops

        ws = apply_ops(source.background, source.points[index].patch)
    except (ImportError, Unsupported):
        return False
    return bool(engine.supports_fast_path(ws))


def engine_chunk(background: Mapping[str, Any], points: Sequence[SignalPoint],
                 settings: GridSettings) -> list[PointResult]:
    """Evaluate ``points`` with the fast limit engine in one vectorized call."""
    from recastkit.stats import engine

    results = engine.evaluate_points(
        background, [(p.name, list(p.patch)) for p in points], mu=settings.mu,
        limits=settings.limits, cl=settings.cl, test_stat=settings.test_stat)
    return [dataclasses.replace(r, parameters=dict(p.parameters))
            for r, p in zip(results, points, strict=True)]


class _Finish(Protocol):
    """Receives each finished point: its index in ``source.points``, its result, and whether
    to store it (not for a failure of the cluster, which a rerun should retry)."""

    def __call__(self, i: int, r: PointResult, persist: bool = True, /) -> None: ...


def _pool(n_workers: int, background: Mapping[str, Any] | None = None,
          background_digest: str = "", settings: GridSettings | None = None
          ) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process and ignore Ctrl-C.

    Workers get ``SIGKILL`` when this process dies (:mod:`recastkit._workers`), so a grid
    killed by ``SIGKILL`` (OOM killer, batch time limit) leaves no orphans computing on.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn" if "jax" in sys.modules else None)
    parent = None if ctx.get_start_method() == "forkserver" else os.getpid()
    return ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx,
                               initializer=_init_pool_worker,
                               initargs=(parent, background, background_digest, settings))


def _broken_pool(n_points: int) -> StatsError:
    msg = (
        f"a worker process of the processes executor died with {n_points} points left "
        "(killed, or out of memory?); the finished points are stored: rerun the same command "
        "to resume, with fewer --workers or --executor iterative"
    )
    return StatsError(msg)


def _run_pool(pool: ProcessPoolExecutor, futures: Mapping[Future[Any], Sequence[int]],
              results_of: Callable[[Any], Sequence[PointResult]], finish: _Finish) -> None:
    """Hand each future's points to ``finish`` as they complete; terminate the pool on error."""
    left = sum(len(v) for v in futures.values())
    try:
        for fut in as_completed(futures):
            try:
                rs = results_of(fut.result())
            except BrokenProcessPool:
                raise _broken_pool(left) from None
            for i, r in zip(futures[fut], rs, strict=True):
                finish(i, r)
                left -= 1
    except BaseException:
        terminate_pool(pool)
        raise
    pool.shutdown(wait=True)


def _run_engine_processes(source: GridSource, settings: GridSettings,
                          chunks: Sequence[Sequence[int]], n_workers: int,
                          finish: _Finish) -> None:
    bkg = dict(source.background)
    pool = _pool(n_workers)
    try:
        futures = {pool.submit(engine_chunk, bkg, [source.points[i] for i in chunk],
                               settings): chunk for chunk in chunks}
    except BaseException:
        terminate_pool(pool)
        raise
    _run_pool(pool, futures, list, finish)


def _run_processes(source: GridSource, settings: GridSettings, todo: Sequence[int],
                   n_workers: int, finish: _Finish) -> None:
    pool = _pool(n_workers, dict(source.background), source.background_digest, settings)
    try:
        futures = {pool.submit(_worker_eval, source.points[i]): [i] for i in todo}
    except BaseException:
        terminate_pool(pool)
        raise
    _run_pool(pool, futures, lambda r: [r], finish)


def _failed(point: SignalPoint, settings: GridSettings, reason: str) -> PointResult:
    obs, exp = _nan_cls(settings.mu)
    return PointResult(point.name, settings.mu, obs, exp, "failed", cl=settings.cl,
                       test_stat=settings.test_stat, reason=reason,
                       parameters=dict(point.parameters))


def _dask_failure(exc: BaseException) -> str:
    """One line on why a Dask task failed on a worker."""
    name = type(exc).__name__
    if name == "KilledWorker":
        n = int(getattr(exc, "allowed_failures", 0)) + 1
        return (f"dask worker: KilledWorker: {n} worker(s) died running it (killed, or out of "
                "memory?)")
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"dask worker: {name}: {first}" if first else f"dask worker: {name}"


def _background(text: str) -> dict[str, Any]:
    """The background workspace (JSON text) as a Dask task's result, recomputed if lost.

    JSON text, not the mapping, so that dask does not walk a large nested document looking
    for futures; JSON floats round-trip exactly.
    """
    import json

    doc: dict[str, Any] = json.loads(text)
    return doc


def _run_dask(source: GridSource, settings: GridSettings, batches: Sequence[Sequence[int]],
              task: Callable[[Mapping[str, Any], Sequence[SignalPoint], GridSettings],
                             list[PointResult]], *,
              scheduler: str | None, workers: int | None, finish: _Finish) -> None:
    """Run ``task(background, points, settings)`` per batch on the Dask workers.

    The background goes to the cluster once, as the result of a task every batch depends on
    (sent to each worker once): unlike scattered data, dask recomputes it when the workers
    holding it die. Each batch's points are stored as its task completes. A task that fails
    on a worker (an exception, or ``distributed.KilledWorker`` when workers died running it)
    fails its points with the reason; they are not stored, so that a rerun retries them.
    Outstanding tasks are cancelled on any error or interrupt.
    """
    import json
    import uuid
    import warnings

    from recastkit.processing import _dask_client, _import_distributed

    dask_as_completed: Any = _import_distributed().as_completed
    token = uuid.uuid4().hex[:12]
    with _dask_client(scheduler, workers) as client:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ll]arge.*")  # sent once, on purpose
            bkg = client.submit(_background, json.dumps(source.background),
                                key=f"recastkit-grid-background-{token}", pure=False)
        futures: dict[str, tuple[Sequence[int], Any]] = {}
        try:
            for n, batch in enumerate(batches):
                fut = client.submit(task, bkg, [source.points[i] for i in batch], settings,
                                    key=f"recastkit-grid-{token}-{n}", pure=False)
                futures[fut.key] = (batch, fut)
            for fut in dask_as_completed([f for _, f in futures.values()]):
                batch, _ = futures.pop(fut.key)
                if fut.status == "error":
                    reason = _dask_failure(fut.exception())
                    log.warning("%d points failed on a dask worker (not stored; a rerun "
                                "retries them): %s", len(batch), reason)
                    for i in batch:
                        finish(i, _failed(source.points[i], settings, reason), False)
                else:
                    for i, r in zip(batch, fut.result(), strict=True):
                        finish(i, r)
                fut.release()
        finally:
            client.cancel([bkg, *(f for _, f in futures.values())])
