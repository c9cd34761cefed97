"""Benchmark of the limit engine against pyhf timed in the same run.

Prints, for each target of issue 9:
  * demo 20-bin model (the ``recastkit demo`` fit workspace, regenerated here): observed +
    expected limits of the engine vs pyhf's 21-point ``upper_limit`` scan (speed-up) and vs
    ``toms748_scan(rtol=1e-6)`` (worst relative deviation of the six limits);
  * the same analysis with 100 bins (``rebin=1``): engine time; accuracy from pyhf's CLs at
    the engine's observed and median limits, converted into a relative error on μ with the
    slope of the CLs curve (pyhf's own limit search would take many minutes);
  * a synthetic grid of 200 single-channel 20-bin signals over one background: all observed
    + expected limits (``evaluate_points``) vs the pyhf loop (``toms748_scan`` timed on a few
    points and scaled), worst relative deviation on those points;
  * peak RSS of 2 000- and 20 000-point grids (CLs at μ = 1, streamed with ``iter_points``),
    each in a fresh process.

Times are the best of several repeats (the machine is shared). Run:
``.venv/bin/python benchmarks/bench_limits.py [--quick] [--parts demo,100,grid,memory]``
(about 10 min on two idle cores, most of it in pyhf's reference scans).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20261129
N_GRID = 200


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def worst_rel(a: list[float], b: list[float]) -> float:
    return max(abs(x / y - 1.0) for x, y in zip(a, b, strict=True))


def demo_likelihoods(tmp: Path) -> tuple[Any, Any]:
    """The demo's 20-bin likelihood (its written workspace) and the same fit with 100 bins."""
    from recastkit import stats
    from recastkit.workflow.demo import run_demo
    from recastkit.workflow.fit import load_hist
    from recastkit.workflow.normalization import DEFAULT_HIST

    demo = run_demo(tmp / "demo", workers=1)
    ws = json.loads((tmp / "demo" / "fit" / "workspace.json").read_text())
    lh20 = stats.likelihood_from_workspace(ws)
    # the demo's fit inputs with rebin=1 (100 bins), as run_fit builds them
    h, meta, label = load_hist(f"{demo.files['scaled']}:{DEFAULT_HIST}", "signal")
    signal = stats.BinnedSample.from_hist(h, "signal", label)
    rng = np.random.default_rng(42)
    bkg = stats.mock_background(signal.edges, rng)
    inputs = stats.prepare_inputs(signal, [bkg], None, rng=rng,
                                  lumi_rel_unc=float(meta["normalization"]["lumi_rel_unc"]))
    lh100 = stats.make_likelihood(stats.build_search_model(inputs))
    return lh20, lh100


def bench_demo(lh: Any, quick: bool) -> None:
    import pyhf
    from pyhf.infer.intervals.upper_limits import toms748_scan, upper_limit

    from recastkit.stats.engine import limits_of_likelihood

    t_fast, res = best_of(lambda: limits_of_likelihood(lh), 5)
    data = np.asarray(lh.data)
    hi = float(f"{1.2 * max(res.expected):.2g}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_scan, _ = best_of(lambda: upper_limit(data, lh.model, np.linspace(0, hi, 21)), 1)
        t0 = time.perf_counter()
        obs, exp = toms748_scan(data, lh.model, 0.5 * res.expected[2], 2 * res.expected[2],
                                level=0.05, rtol=1e-6)
        t_toms = time.perf_counter() - t0
    ref = [float(obs), *(float(e) for e in exp)]
    ours = [res.observed, *res.expected]
    dev = worst_rel(ours, ref)
    print(f"demo 20 bins ({res.path} path): {t_fast:.3f} s for observed + 5 expected limits")
    print(f"  pyhf 21-point upper_limit scan: {t_scan:.1f} s -> speed-up {t_scan / t_fast:.0f}x "
          f"(target >= 20x, <= 1 s: {'OK' if t_scan / t_fast >= 20 and t_fast <= 1 else 'MISS'})")
    print(f"  pyhf toms748_scan(rtol=1e-6): {t_toms:.1f} s; worst relative deviation of the 6 "
          f"limits {dev:.2e} (target 1e-3: {'OK' if dev <= 1e-3 else 'MISS'})")
    print(f"  pyhf version {pyhf.__version__}")
    del quick


def bench_100(lh: Any, quick: bool) -> None:
    import pyhf

    from recastkit.stats.engine import LikelihoodEngine, limits_of_likelihood

    t_fast, res = best_of(lambda: limits_of_likelihood(lh), 3)
    print(f"100 bins ({res.path} path): {t_fast:.3f} s for observed + 5 expected limits "
          f"(target <= 5 s: {'OK' if t_fast <= 5 else 'MISS'})")
    if quick:
        return
    eng = LikelihoodEngine(lh)
    data = np.asarray(lh.data)
    worst = 0.0
    for label, mu, idx in (("observed", res.observed, None), ("median", res.expected[2], 2)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            p_obs, p_exp = pyhf.infer.hypotest(mu, data, lh.model, return_expected_set=True)
            t_h = time.perf_counter() - t0
        cls_pyhf = float(p_obs) if idx is None else float(p_exp[idx])
        h = 1e-4 * mu
        o, e = eng.cls([mu - h, mu + h])
        vals = o if idx is None else [row[idx] for row in e]
        slope = (vals[1] - vals[0]) / (2 * h)
        rel = abs((cls_pyhf - 0.05) / slope) / mu
        worst = max(worst, rel)
        print(f"  pyhf CLs at the {label} limit: {cls_pyhf:.6f} ({t_h:.1f} s per hypotest) -> "
              f"relative deviation of the limit {rel:.2e}")
    print(f"  worst {worst:.2e} (target 1e-3: {'OK' if worst <= 1e-3 else 'MISS'})")


def grid_inputs(n: int, seed: int = SEED) -> tuple[dict[str, Any], Any]:
    """A 20-bin background-only workspace and a lazy sequence of n signal patches."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 500.0, 21)
    centers = 0.5 * (edges[1:] + edges[:-1])
    counts = np.histogram(rng.exponential(150.0, 50_000), bins=edges)[0].astype(float)
    data = rng.poisson(counts).astype(float)
    bkg = {
        "channels": [{"name": "mjj", "samples": [{"name": "background", "data": counts.tolist(),
                                                   "modifiers": [{
                                                       "name": "staterror_mjj",
                                                       "type": "staterror",
                                                       "data": np.sqrt(counts).tolist()}]}]}],
        "observations": [{"name": "mjj", "data": data.tolist()}],
        "measurements": [{"name": "grid", "config": {"poi": "mu", "parameters": [
            {"name": "mu", "bounds": [[0.0, 10.0]], "inits": [1.0]},
            {"name": "lumi", "auxdata": [1.0], "sigmas": [0.0083],
             "bounds": [[0.9585, 1.0415]], "inits": [1.0]}]}}],
        "version": "1.0.0",
    }

    class Signals:
        """Signal i: a Gaussian peak, mass and yield varying with i (built on access)."""

        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> tuple[str, list[dict[str, Any]]]:
            mass = 60.0 + 380.0 * ((i * 0.6180339887) % 1.0)
            width = 0.1 * mass + 5.0
            total = 150.0 + 400.0 * ((i * 0.41421356) % 1.0)
            sig = total * np.exp(-0.5 * ((centers - mass) / width) ** 2) / (
                width * math.sqrt(2 * math.pi)) * 25.0
            value = {"name": "signal", "data": sig.tolist(), "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "lumi", "type": "lumi", "data": None},
                {"name": "staterror_mjj", "type": "staterror", "data": (0.05 * sig).tolist()}]}
            return (f"peak_{i}", [{"op": "add", "path": "/channels/0/samples/0",
                                   "value": value}])

    return bkg, Signals()


def bench_grid(quick: bool) -> None:
    import jsonpatch
    import pyhf
    from pyhf.infer.intervals.upper_limits import toms748_scan

    from recastkit.stats.engine import evaluate_points

    bkg, signals = grid_inputs(N_GRID)
    t_fast, res = best_of(lambda: evaluate_points(bkg, signals, mu=1.0, limits=True), 3)
    status = {s: sum(r.status == s for r in res) for s in ("converged", "fallback", "failed")}
    n_check = 1 if quick else 2
    picks = np.linspace(0, N_GRID - 1, n_check).astype(int)
    t_pyhf, worst = 0.0, 0.0
    for k in picks:
        ws = pyhf.Workspace(jsonpatch.apply_patch(bkg, signals[int(k)][1]))
        model = ws.model()
        data = ws.data(model)
        r = res[int(k)]
        assert r.expected_limits is not None
        assert r.observed_limit is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            obs, exp = toms748_scan(data, model, 0.5 * r.expected_limits[2],
                                    2.0 * r.expected_limits[2], level=0.05, rtol=1e-6)
            t_pyhf += time.perf_counter() - t0
        worst = max(worst, worst_rel([r.observed_limit, *r.expected_limits],
                                     [float(obs), *(float(e) for e in exp)]))
    t_loop = t_pyhf / len(picks) * N_GRID
    print(f"grid of {N_GRID} 20-bin signals: {t_fast:.2f} s for all observed + expected "
          f"limits (status {status}; target <= 10 s: {'OK' if t_fast <= 10 else 'MISS'})")
    print(f"  pyhf toms748_scan loop: {t_pyhf / len(picks):.1f} s per point on {len(picks)} "
          f"points -> {t_loop:.0f} s for {N_GRID}; speed-up {t_loop / t_fast:.0f}x "
          f"(target >= 200x: {'OK' if t_loop / t_fast >= 200 else 'MISS'})")
    print(f"  worst relative deviation of the limits on those points {worst:.2e} "
          f"(target 1e-3: {'OK' if worst <= 1e-3 else 'MISS'})")


_MEMORY_SCRIPT = """
import resource, sys, time
sys.path.insert(0, {bench_dir!r})
from bench_limits import grid_inputs
from recastkit.stats.engine import iter_points
n = int(sys.argv[1])
bkg, signals = grid_inputs(n)
t0 = time.perf_counter()
count = converged = 0
for r in iter_points(bkg, signals, mu=1.0):
    count += 1
    converged += r.status == "converged"
print(count, converged, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      time.perf_counter() - t0)
"""


def bench_memory(quick: bool) -> None:
    sizes = (2_000, 20_000) if not quick else (1_000, 5_000)
    peaks = []
    for n in sizes:
        script = _MEMORY_SCRIPT.format(bench_dir=str(Path(__file__).resolve().parent))
        out = subprocess.run([sys.executable, "-c", script, str(n)], capture_output=True,
                             text=True, check=True).stdout.split()
        count, converged, rss_kib, secs = int(out[0]), int(out[1]), int(out[2]), float(out[3])
        peaks.append(rss_kib / 1024)
        print(f"memory: {count} points (CLs at μ = 1, {converged} converged) in {secs:.1f} s, "
              f"peak RSS {rss_kib / 1024:.0f} MiB")
    growth = peaks[1] / peaks[0] - 1
    print(f"  peak RSS growth from {sizes[0]} to {sizes[1]} points: {100 * growth:+.1f} % "
          f"(bounded: {'OK' if growth < 0.1 else 'MISS'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer pyhf reference points and smaller memory grids")
    parser.add_argument("--parts", default="demo,100,grid,memory",
                        help="comma-separated subset of demo,100,grid,memory")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if parts & {"demo", "100"}:
        with tempfile.TemporaryDirectory() as tmp:
            lh20, lh100 = demo_likelihoods(Path(tmp))
        if "demo" in parts:
            bench_demo(lh20, args.quick)
        if "100" in parts:
            bench_100(lh100, args.quick)
    if "grid" in parts:
        bench_grid(args.quick)
    if "memory" in parts:
        bench_memory(args.quick)


if __name__ == "__main__":
    main()
