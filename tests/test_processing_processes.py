"""Worker processes of the ``processes`` executor: they die with the main process, ignore
Ctrl-C, and Ctrl-C stops a ``recastkit select`` run at once, cleanly (issue 7, item 6).

The end-to-end tests run ``python -m recastkit select`` in a subprocess on a generated sample
cut into hundreds of tiny work units, so that the run lasts many seconds; they signal it as
soon as its workers exist.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from recastkit import _workers
from recastkit.io.hists import read_hists_and_metadata
from recastkit.processing import SelectionResult, write_selection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eventfactory import make_events, write_flat
from proctools import alive

psutil = pytest.importorskip("psutil")

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="prctl(PR_SET_PDEATHSIG) is Linux-only")

#: Seconds allowed from SIGINT to the exit of the run (the issue's limit).
SIGINT_LIMIT_S = 2.0


# ------------------------------------------------------------------------- the ctypes bit
@linux_only
def test_parent_death_signal_is_set_in_a_child() -> None:
    script = textwrap.dedent("""
        import signal
        from recastkit._workers import parent_death_signal, set_parent_death_signal
        before = parent_death_signal()
        ok = set_parent_death_signal(signal.SIGKILL)
        print(before, ok, parent_death_signal())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "True", str(int(signal.SIGKILL))]


def _worker_state() -> tuple[object, int | None]:
    return signal.getsignal(signal.SIGINT), _workers.parent_death_signal()


@linux_only
def test_pool_workers_ignore_sigint_and_die_with_the_parent() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=_workers.init_worker,
                             initargs=(os.getpid(),)) as pool:
        handler, death = pool.submit(_worker_state).result(timeout=60)
    assert handler == signal.SIG_IGN
    assert death == signal.SIGKILL


def test_watchdog_exits_when_reparented() -> None:
    # A parent pid that is not ours: the watchdog sees a "re-parented" process and exits.
    script = textwrap.dedent("""
        import time
        from recastkit import _workers
        _workers.WATCHDOG_INTERVAL_S = 0.05
        _workers.init_worker(parent_pid=None)        # this process's real parent: no exit
        time.sleep(0.3)
        _workers._watch_parent(parent_pid=-1, interval_s=0.05)
        print("not reached")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1
    assert "not reached" not in proc.stdout


# ------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def long_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 000 events in 60 baskets; with --chunk-size 100 that is 600 work units."""
    path = tmp_path_factory.mktemp("processes") / "sample.root"
    return write_flat(path, make_events(60_000, seed=11), n_baskets=60)


@pytest.fixture
def run_select(long_sample: Path, tmp_path: Path) -> Iterator[
        tuple[subprocess.Popen[str], list[psutil.Process], Path]]:
    """Start the run; yield it with its worker processes once they exist (then clean up)."""
    outdir = tmp_path / "out"
    outdir.mkdir()
    cmd = [sys.executable, "-m", "recastkit", "select", str(long_sample),
           "-o", str(outdir / "sel.root"), "--executor", "processes", "--workers", "2",
           "--chunk-size", "100"]
    # Its own process group, like a shell job: Ctrl-C in a terminal signals the whole group.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, start_new_session=True)
    workers: list[psutil.Process] = []
    try:
        main = psutil.Process(proc.pid)
        deadline = time.monotonic() + 120
        while len(workers) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no workers after 120 s"
            time.sleep(0.05)
            workers = main.children(recursive=True)
        time.sleep(0.3)  # let them get busy
        assert proc.poll() is None, "the run ended before the test could signal it"
        yield proc, workers, outdir
    finally:
        for p in alive([*workers, psutil.Process(proc.pid)] if proc.poll() is None
                        else workers):
            p.kill()
        proc.communicate()


@linux_only
def test_no_orphans_after_sigkill_of_the_main_process(run_select) -> None:  # type: ignore[no-untyped-def]
    proc, workers, _ = run_select
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while alive(workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(workers) == [], "workers survived the main process"


@linux_only
def test_ctrl_c_stops_the_run_at_once_and_cleanly(run_select) -> None:  # type: ignore[no-untyped-def]
    proc, workers, outdir = run_select
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the main process and its workers
    _, stderr = proc.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Interrupted: ")
    assert "Traceback" not in stderr
    assert elapsed < SIGINT_LIMIT_S, f"SIGINT to exit took {elapsed:.2f} s"
    assert list(outdir.iterdir()) == []  # no output, no temporary file
    assert alive(workers) == []


# ------------------------------------------------------------------------- output pairs
@pytest.fixture(scope="module")
def small_result(tmp_path_factory: pytest.TempPathFactory) -> SelectionResult:
    from recastkit.processing import run_selection

    path = write_flat(tmp_path_factory.mktemp("pair") / "f.root", make_events(200, seed=4))
    return run_selection([path], executor="iterative", bookkeeping=False)


def test_selection_pair_is_replaced_together_or_not_at_all(
        small_result: SelectionResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sel.root"
    root_path, json_path = write_selection(small_result, out)
    old_root, old_json = root_path.read_bytes(), json_path.read_bytes()
    real_replace = os.replace

    def fail_on_json(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == json_path:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_json)
    doubled = SelectionResult(**{**small_result.__dict__, "dataset": "other"})
    with pytest.raises(OSError, match=r"sel\.json: .*no space left on device"):
        write_selection(doubled, out)
    assert (root_path.read_bytes(), json_path.read_bytes()) == (old_root, old_json)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel.json", "sel.root"]
    monkeypatch.undo()
    write_selection(doubled, out)
    for path in (root_path, json_path):
        hists, meta = read_hists_and_metadata(path)
        assert meta["dataset"] == "other"
        np.testing.assert_array_equal(hists["h_njets_raw"].values(),
                                      small_result.histograms["h_njets_raw"].values())


class _CrashOnArrival:
    """A task whose unpickling in the worker ends the worker process (like the OOM killer)."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return os._exit, (3,)


def test_a_dead_worker_is_a_one_line_selection_error() -> None:
    from recastkit.exceptions import SelectionError
    from recastkit.processing import _processes, _Progress

    tasks = [_CrashOnArrival(), _CrashOnArrival()]
    with pytest.raises(SelectionError, match=r"a worker process .* died"):
        _processes(tasks, 2, _Progress(len(tasks), 0, False), None)  # type: ignore[arg-type]
