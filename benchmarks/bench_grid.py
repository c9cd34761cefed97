"""Benchmark of the signal grid on the published ATLAS SUSY-2018-31 likelihoods (HEPData).

All signal patches of ``pyhf-ins1748602-probability-models.tar.gz`` (regions A, B, C: 650
patches; ``--regions A`` for Region A only), CLs observed + five expected at μ = 1, q̃μ,
pyhf 0.7 defaults (normsys code4, histosys code4p, as pyhf's regression tests):

* the fast engine (``recastkit.stats.batchfit``, fits converged), timed on every point, in
  this process (``--workers 1``) or over processes;
* the plain pyhf loop, ``pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde",
  return_expected_set=True)`` per patch (numpy backend, ``Workspace.model(patches=[...])``
  included as the loop does it), timed on a seeded random sample of points in the same run
  and scaled to all points;
* with ``--converged``, pyhf again on the sample with converged fits
  (``scipy_optimizer(tolerance=1e-12)``).

Prints the speed-up and the worst relative deviation of the six CLs values from pyhf's
(default fits) and from converged pyhf; points where pyhf gives NaN are listed, not counted.

Run: ``.venv/bin/python benchmarks/bench_grid.py [--regions A] [--sample 6] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from recastkit.stats.grid import GridSettings, run_grid
from recastkit.stats.gridinputs import GridSource, load_grid_source

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = "likelihoods/pyhf-ins1748602-probability-models.tar.gz"


def shared_data() -> Path:
    env = os.environ.get("RECASTKIT_TESTDATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not (path / ARCHIVE).exists():
        raise SystemExit(f"{path / ARCHIVE} not found (set RECASTKIT_TESTDATA)")
    return path


def pyhf_cls(source: GridSource, name: str, converged: bool) -> tuple[np.ndarray, float]:
    import pyhf

    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-12) if converged
                     else "scipy")
    point = next(p for p in source.points if p.name == name)
    t0 = time.perf_counter()
    ws = pyhf.Workspace(dict(source.background))
    model = ws.model(patches=[list(point.patch)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obs, exp = pyhf.infer.hypotest(1.0, ws.data(model), model, test_stat="qtilde",
                                       return_expected_set=True)
    seconds = time.perf_counter() - t0
    pyhf.set_backend("numpy", "scipy")
    return np.array([float(obs), *(float(e) for e in exp)]), seconds


def rel_dev(a: np.ndarray, b: np.ndarray) -> float:
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(both_nan, 0.0, np.abs(a - b) / np.abs(b))
    return float(np.max(np.where(np.isnan(d), math.inf, d)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", default="ABC", help="regions to run, e.g. A or ABC")
    ap.add_argument("--sample", type=int, default=6, help="pyhf loop sample size")
    ap.add_argument("--workers", type=int, default=1, help="processes for the fast engine")
    ap.add_argument("--limit", type=int, default=None, help="at most N points per region")
    ap.add_argument("--converged", action="store_true",
                    help="also compare with pyhf run to convergence (tolerance 1e-12)")
    ap.add_argument("--seed", type=int, default=20241129)
    ap.add_argument("--json", type=Path, help="write all numbers to this file")
    args = ap.parse_args()
    archive = shared_data() / ARCHIVE
    rng = random.Random(args.seed)
    fast: dict[str, np.ndarray] = {}
    sources: dict[str, GridSource] = {}
    t_fast = 0.0
    n_points = 0
    for region in args.regions:
        source = load_grid_source([f"{archive}:Region{region}"]).selected((), args.limit)
        sources[region] = source
        t0 = time.perf_counter()
        results = run_grid(source, GridSettings(),
                           executor="processes" if args.workers > 1 else "iterative",
                           workers=args.workers)
        dt = time.perf_counter() - t0
        t_fast += dt
        n_points += len(results)
        statuses = {s: sum(r.status == s for r in results)
                    for s in ("converged", "fallback", "failed")}
        print(f"Region{region}: {len(results)} points, fast engine {dt:.1f} s "
              f"({dt / len(results):.3f} s/point), {statuses}", flush=True)
        for r in results:
            fast[f"{region}/{r.name}"] = np.array([r.cls_observed, *r.cls_expected])
    keys = sorted(fast)
    sample = rng.sample(keys, min(args.sample, len(keys)))
    t_pyhf = 0.0
    worst = worst_conv = 0.0
    worst_at = worst_conv_at = ""
    nan_points = []
    rows: list[dict[str, Any]] = []
    for key in sample:
        region, name = key.split("/")
        ref, dt = pyhf_cls(sources[region], name, converged=False)
        t_pyhf += dt
        row: dict[str, Any] = {"point": key, "pyhf_seconds": dt, "fast": fast[key].tolist(),
                               "pyhf": ref.tolist()}
        d = rel_dev(fast[key], ref)
        row["deviation"] = d
        if np.isnan(ref).any():
            nan_points.append(key)  # reported, not counted
        elif d >= worst:
            worst, worst_at = d, key
        if args.converged:
            conv, _ = pyhf_cls(sources[region], name, converged=True)
            dc = rel_dev(fast[key], conv)
            row["pyhf_converged"] = conv.tolist()
            row["deviation_converged"] = dc
            if dc >= worst_conv and not np.isnan(conv).any():
                worst_conv, worst_conv_at = dc, key
        rows.append(row)
        print(f"  pyhf {key}: {dt:.1f} s, relative deviation {d:.2e}"
              + (f" (converged pyhf: {row['deviation_converged']:.2e})" if args.converged
                 else ""), flush=True)
    per_point = t_pyhf / len(sample)
    loop = per_point * n_points
    print()
    print(f"points: {n_points} (regions {args.regions}); fast engine {t_fast:.1f} s "
          f"with {args.workers} process(es)")
    print(f"pyhf loop: {per_point:.2f} s/point on {len(sample)} random points -> "
          f"{loop:.0f} s for all points")
    print(f"speed-up vs the pyhf loop: {loop / t_fast:.1f}x")
    print(f"worst relative CLs deviation from pyhf (default fits): {worst:.2e} ({worst_at}; "
          "pyhf's NaN points excluded)")
    if args.converged:
        print(f"worst relative CLs deviation from converged pyhf: {worst_conv:.2e} "
              f"({worst_conv_at})")
    print(f"points where pyhf gives NaN: {nan_points or 'none in the sample'}")
    fast_nan = [k for k, v in fast.items() if np.isnan(v).any()]
    print(f"points where the fast engine gives NaN: {fast_nan or 'none'}")
    if args.json:
        args.json.write_text(json.dumps({
            "n_points": n_points, "fast_seconds": t_fast, "pyhf_seconds_per_point": per_point,
            "speedup": loop / t_fast, "worst_deviation": worst,
            "worst_deviation_converged": worst_conv if args.converged else None,
            "sample": rows, "workers": args.workers}, indent=1))


if __name__ == "__main__":
    main()
