"""The dask executor on a real LocalCluster (two worker processes), including a worker death."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from recastkit.processing import run_selection
from recastkit.selection import SelectionConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eventfactory import make_events, write_flat

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cl:
        yield cl


def _assert_identical(a, b):
    assert [c.n_events for c in a.cutflow] == [c.n_events for c in b.cutflow]
    assert [c.sum_of_weights for c in a.cutflow] == [c.sum_of_weights for c in b.cutflow]
    for name, h in a.histograms.items():
        np.testing.assert_array_equal(h.values(flow=True), b.histograms[name].values(flow=True))
        np.testing.assert_array_equal(h.variances(flow=True),
                                      b.histograms[name].variances(flow=True))
        assert a.moments[name] == b.moments[name]


def test_dask_equals_iterative_on_physlite(cluster, shared_file):
    path = shared_file("root/DAOD_PHYSLITE_21.2.108.0.art.pool.root")
    it = run_selection([path], executor="iterative", chunk_size=15)
    dk = run_selection([path], executor="dask", scheduler=cluster.scheduler_address,
                       chunk_size=15)
    assert dk.moments["h_mjj_raw"].sum_wx == pytest.approx(6.5328487e6, rel=1e-7)
    _assert_identical(it, dk)


def test_worker_killed_mid_run_gives_identical_result(cluster, tmp_path):
    path = write_flat(tmp_path / "big.root", make_events(120_000, seed=11), n_baskets=40)
    config = SelectionConfig(jet_pt_min_gev=30.0)
    reference = run_selection([path], config, executor="iterative", chunk_size=3000,
                              bookkeeping=False)
    with distributed.Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if not killed:
            pid = next(iter(sorted(pids.values())))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = run_selection([path], config, executor="dask",
                           scheduler=cluster.scheduler_address, chunk_size=3000,
                           bookkeeping=False, callback=kill_one)
    assert killed
    assert result.n_units == reference.n_units == 40
    with distributed.Client(cluster.scheduler_address) as client:
        client.wait_for_workers(2, timeout=30)
        assert killed[0] not in client.run(os.getpid).values()  # the nanny restarted it
    _assert_identical(reference, result)


def test_local_scheduler_starts_its_own_cluster(tmp_path):
    path = write_flat(tmp_path / "f.root", make_events(2000, seed=12), n_baskets=2)
    it = run_selection([path], executor="iterative", chunk_size=1000, bookkeeping=False)
    dk = run_selection([path], executor="dask", scheduler="local", workers=1, chunk_size=1000,
                       bookkeeping=False)
    _assert_identical(it, dk)


def test_hook_region_under_dask_identical_to_iterative(cluster, tmp_path):
    """A Python-hook region (hook file imported in the workers) gives the iterative result."""
    from recastkit.io.synthetic import write_signal_sample
    from test_regions import hook_config

    sample = tmp_path / "zh.root"
    write_signal_sample(sample, n_events=3000, seed=23, objects=True)
    config = hook_config(tmp_path)
    it = run_selection([sample], config, executor="iterative", chunk_size=700,
                       bookkeeping=False)
    dk = run_selection([sample], config, executor="dask", scheduler=cluster.scheduler_address,
                       chunk_size=700, bookkeeping=False)
    assert dk.n_units == it.n_units > 1
    assert it.cutflows == dk.cutflows
    assert it.cutflows["central"][-1].n_events > 0
    for name, h in it.histograms.items():
        np.testing.assert_array_equal(h.values(flow=True), dk.histograms[name].values(flow=True))
        np.testing.assert_array_equal(h.variances(flow=True),
                                      dk.histograms[name].variances(flow=True))
    assert dk.metadata()["hooks"] == it.metadata()["hooks"]
