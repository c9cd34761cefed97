"""The grid on a Dask LocalCluster: the numbers of the serial run, on the workers, per point.

One LocalCluster (one worker process, one thread) serves the module. It is started with
``allowed-failures: 1`` (a task fails when two workers died running it, rather than four)
and ``worker-saturation: 1.0`` (one task on the worker at a time, so that a worker's death
is charged to the task it was running; a finished task whose result had not yet reached the
scheduler is charged too, and is retried once).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from recastkit.stats import engine, grid
from recastkit.stats.grid import GridSettings, run_grid
from recastkit.stats.gridinputs import GridSource, _point, digest, load_grid_source
from recastkit.stats.gridstore import PointStore
from recastkit.stats.results import PointResult

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a one-worker LocalCluster (worker processes, as on a real cluster)."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                     dashboard_address=None, host="127.0.0.1") as cluster:
        yield cluster.scheduler_address


def fast_path_source() -> GridSource:
    """Six points of a model the fast limit engine evaluates in vectorized chunks."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gridfactory import synthetic_grid_workspace, without_histosys

    bkg, patches = synthetic_grid_workspace([(m1, m2) for m1 in (300, 400, 500)
                                             for m2 in (0, 100)])
    bkg2 = without_histosys(bkg)
    assert isinstance(bkg2, dict)
    points = tuple(_point(n, without_histosys(p), n, {"m1": float(n.split("_")[1])})
                   for n, p in patches.items())
    source = GridSource(bkg2, digest(bkg2), points, "memory")
    assert grid._on_engine_fast_path(source, 0, GridSettings())
    return source


def dicts(results: Sequence[PointResult]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in results]


def test_dask_cluster_matches_serial(synthetic_grid: Path, tmp_path: Path,
                                     scheduler: str) -> None:
    source = load_grid_source([str(synthetic_grid)]).selected(["sig_[45]00_100"])
    serial = run_grid(source, GridSettings())
    store = PointStore(tmp_path / "points.jsonl")
    on_dask = run_grid(source, GridSettings(), store=store, executor="dask",
                       scheduler=scheduler)
    assert dicts(on_dask) == dicts(serial)
    assert len(PointStore(tmp_path / "points.jsonl")) == 2


def test_fast_engine_chunks_run_on_the_workers(tmp_path: Path, scheduler: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = fast_path_source()
    monkeypatch.setattr(grid, "ENGINE_CHUNK", 2)  # three chunks, three tasks
    serial = run_grid(source, GridSettings())
    assert all(r.status == "converged" for r in serial)

    def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fast engine ran in the client process")

    monkeypatch.setattr(engine, "evaluate_points", not_here)  # the workers' copy is intact
    done: list[str] = []
    on_dask = run_grid(source, GridSettings(), store=PointStore(tmp_path / "points.jsonl"),
                       executor="dask", scheduler=scheduler,
                       progress=lambda k, n, name: done.append(name))
    assert dicts(on_dask) == dicts(serial)
    assert sorted(done) == sorted(p.name for p in source.points)
    assert len(PointStore(tmp_path / "points.jsonl")) == 6


def test_a_dead_worker_fails_its_points_only(tmp_path: Path, scheduler: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source = fast_path_source()
    monkeypatch.setattr(grid, "ENGINE_CHUNK", 2)
    serial = run_grid(source, GridSettings())
    real_chunk = grid.engine_chunk

    def dies_on_sig_400_0(background: Any, points: Sequence[Any], settings: Any) -> Any:
        # a local function: dask ships it by value, so the worker runs it
        import os
        import time

        from recastkit.stats import grid as worker_grid

        if any(p.name == "sig_400_0" for p in points):
            time.sleep(0.2)  # let the previous chunk's result reach the scheduler
            os._exit(1)  # the worker process dies (as when killed or out of memory)
        return worker_grid.engine_chunk(background, points, settings)

    monkeypatch.setattr(grid, "engine_chunk", dies_on_sig_400_0)
    store_path = tmp_path / "points.jsonl"
    hurt = run_grid(source, GridSettings(), store=PointStore(store_path), executor="dask",
                    scheduler=scheduler)
    by_name = {r.name: r for r in hurt}
    for name in ("sig_400_0", "sig_400_100"):  # the chunk that was running
        r = by_name[name]
        assert r.status == "failed"
        assert r.reason.startswith("dask worker: KilledWorker: 2 worker(s) died")
        assert math.isnan(r.cls_observed)
        assert r.parameters == {"m1": 400.0}
    others = [i for i, r in enumerate(hurt) if r.name not in ("sig_400_0", "sig_400_100")]
    assert [hurt[i].to_dict() for i in others] == [serial[i].to_dict() for i in others]
    # the failed points are not stored: a rerun (the nanny restarted the worker) retries them
    assert len(PointStore(store_path)) == 4
    monkeypatch.setattr(grid, "engine_chunk", real_chunk)
    done: list[str] = []
    again = run_grid(source, GridSettings(), store=PointStore(store_path), executor="dask",
                     scheduler=scheduler, progress=lambda k, n, name: done.append(name))
    assert sorted(done) == ["sig_400_0", "sig_400_100"]
    assert dicts(again) == dicts(serial)


def test_an_exception_on_a_worker_fails_its_points(scheduler: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    source = fast_path_source()

    def raises(background: Any, points: Sequence[Any], settings: Any) -> Any:
        raise FloatingPointError("overflow in the fit\nsecond line")

    monkeypatch.setattr(grid, "engine_chunk", raises)
    results = run_grid(source, GridSettings(), executor="dask", scheduler=scheduler)
    assert {r.status for r in results} == {"failed"}
    assert {r.reason for r in results} == {"dask worker: FloatingPointError: overflow in the fit"}
