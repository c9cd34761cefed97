"""``recastkit grid`` killed with SIGKILL mid-way: no orphan workers, and a rerun resumes.

The CLI runs in a subprocess on a 24-point synthetic grid (processes executor, two workers;
each point is stored as it completes). Once the store holds some but not all points, the
main process gets ``SIGKILL`` (as from the OOM killer or a batch system's time limit). Its
worker processes must die with it. The same command run again must compute only the missing
points and write the table of an uninterrupted run, byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from proctools import alive

pytestmark = pytest.mark.slow

MASSES = [(m1, m2) for m1 in (300, 400, 500, 600, 700, 800) for m2 in (0, 100, 200, 250)]
MARKER = "RECASTKIT_GRID_KILL_TEST"


def write_grid(folder: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gridfactory import synthetic_grid_workspace

    bkg, patches = synthetic_grid_workspace(MASSES)
    folder.mkdir()
    (folder / "BkgOnly.json").write_text(json.dumps(bkg))
    for name, patch in patches.items():
        (folder / f"patch.{name}.json").write_text(json.dumps(patch))


def command(grid: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "recastkit", "-v", "grid", str(grid),
            "--pattern", "sig_{m1}_{m2}", "--executor", "processes", "--workers", "2",
            "--no-hepdata", "--json", "-o", str(out)]


def complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def marked(token: str) -> list[psutil.Process]:
    """Live processes started by the killed run (they inherit its environment marker)."""
    out = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARKER) == token and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return out


def test_sigkilled_grid_leaves_no_workers_and_resumes_identically(tmp_path: Path) -> None:
    grid = tmp_path / "grid"
    write_grid(grid)
    n = len(MASSES)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # the uninterrupted run: the reference table
    ref = tmp_path / "ref"
    done = subprocess.run(command(grid, ref), env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{n} points (0 from the store" in done.stderr

    # the same run, SIGKILLed once the store holds some but not all points
    out = tmp_path / "out"
    store = out / "points.jsonl"
    token = uuid.uuid4().hex
    run = subprocess.Popen(command(grid, out), env={**env, MARKER: token},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while complete_lines(store) < 3 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        workers = psutil.Process(run.pid).children(recursive=True)
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.kill()
        run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL
    assert workers, "the processes executor started no worker processes"
    # no worker outlives the main process (prctl death signal, or the watchdog within 0.5 s)
    t_kill = time.monotonic()
    while (alive(workers) or marked(token)) and time.monotonic() - t_kill < 10:
        time.sleep(0.05)
    left = sorted({p.pid for p in alive(workers) + marked(token)})
    for pid in left:  # do not leak them into the rest of the session
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes outlived the killed grid: {left}"

    n_stored = complete_lines(store)
    assert 3 <= n_stored < n, f"killed too late: {n_stored} of {n} points stored"
    assert not (out / "points.csv").exists()  # the table comes at the end, never half-written
    assert not (out / "points.json").exists()
    # a line torn by the kill (appended here if the kill fell between two lines)
    if store.read_bytes().endswith(b"\n"):
        with store.open("ab") as fh:
            fh.write(b'{"key": "0123abcd", "result": {"name": "sig_8')

    # the same command again: only the missing points, then the uninterrupted run's table
    again = subprocess.run(command(grid, out), env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert "dropping an incomplete last line" in again.stderr
    assert f"{n} points ({n_stored} from the store" in again.stderr
    progress = [int(m.group(1)) for m in re.finditer(r"signal points: (\d+)/\d+ done",
                                                     again.stderr)]
    assert progress[0] == n_stored + 1
    assert progress[-1] == n
    lines = store.read_text().splitlines()
    assert len(lines) == n  # each missing point computed and stored once, nothing twice
    assert len({json.loads(x)["key"] for x in lines}) == n
    assert again.stdout == done.stdout
    assert (out / "points.csv").read_bytes() == (ref / "points.csv").read_bytes()
    assert (out / "points.json").read_bytes() == (ref / "points.json").read_bytes()
