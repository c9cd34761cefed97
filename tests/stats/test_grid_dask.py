"""The grid on a Dask LocalCluster gives the numbers of the serial run, and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from recastkit.stats.grid import GridSettings, run_grid
from recastkit.stats.gridinputs import load_grid_source
from recastkit.stats.gridstore import PointStore

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.dask


def test_dask_cluster_matches_serial(synthetic_grid: Path, tmp_path: Path) -> None:
    source = load_grid_source([str(synthetic_grid)]).selected(["sig_[45]00_100"])
    serial = run_grid(source, GridSettings())
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        store = PointStore(tmp_path / "points.jsonl")
        on_dask = run_grid(source, GridSettings(), store=store, executor="dask",
                           scheduler=cluster.scheduler_address)
    assert [r.to_dict() for r in on_dask] == [r.to_dict() for r in serial]
    assert len(PointStore(tmp_path / "points.jsonl")) == 2
