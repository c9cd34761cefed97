"""Benchmark of the signal grid on the published ATLAS SUSY-2018-31 likelihoods (HEPData).

All signal patches of ``pyhf-ins1748602-probability-models.tar.gz`` (regions A, B, C: 650
patches; ``--regions A`` for Region A only), CLs observed + five expected at μ = 1, q̃μ,
pyhf 0.7 defaults (normsys code4, histosys code4p, as pyhf's regression tests):

* each engine of ``--engines`` (``auto``: fits converged to floating-point precision;
  ``pyhf-path``: pyhf's own SLSQP fits with the exact gradient), timed on every point, in this
  process (``--workers 1``) or over processes;
* the plain pyhf loop, ``pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde",
  return_expected_set=True)`` per patch (numpy backend, ``Workspace.model(patches=[...])``
  included as the loop does it), timed on a seeded random sample of points in the same run
  and scaled to all points;
* with ``--converged``, pyhf again on the sample with converged fits
  (``scipy_optimizer(tolerance=1e-12)``);
* with ``--worst N``, pyhf (default and converged fits) also on the N points where the two
  engines disagree most (where pyhf's default fits stop farthest from the minimum), which is
  where the worst deviations from pyhf's default are; these are not timed.

pyhf's results are appended to ``--cache`` (JSON lines, with the BLAS thread setting) and every
cached result of the same BLAS setting enters the deviations (never the timing), so repeated
runs accumulate references. Prints the speed-up of each engine, the worst relative deviation
of the six CLs values from pyhf's (default fits) and from converged pyhf with the point and
the value where it occurs, and how far pyhf's default is from converged pyhf on the same
points; points where pyhf gives NaN are listed (a NaN of the engine there counts as agreement).

``--blas-threads N`` sets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` before numpy is
imported (pyhf and the engines alike): SLSQP's small BLAS calls are many times slower with
two threads on a busy machine, and pyhf's default fits move by up to ~1e-5 (relative, in CLs)
with the thread count.

Run: ``.venv/bin/python benchmarks/bench_grid.py [--regions A] [--sample 6] [--workers 2]
[--converged] [--worst 10] [--blas-threads 1]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from recastkit.stats.gridinputs import GridSource

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = "likelihoods/pyhf-ins1748602-probability-models.tar.gz"
VALUES = ("observed", "-2σ", "-1σ", "median", "+1σ", "+2σ")


def shared_data() -> Path:
    env = os.environ.get("RECASTKIT_TESTDATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not (path / ARCHIVE).exists():
        raise SystemExit(f"{path / ARCHIVE} not found (set RECASTKIT_TESTDATA)")
    return path


def pyhf_cls(source: GridSource, name: str, converged: bool) -> tuple[np.ndarray, float]:
    import numpy as np
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


def rel_devs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a/b − 1| per value (0 where both are NaN, inf where only one is)."""
    import numpy as np

    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(both_nan, 0.0, np.abs(a - b) / np.abs(b))
    out: np.ndarray = np.where(np.isnan(d), math.inf, d)
    return out


class Worst:
    """The largest finite relative deviations seen (where, which value) and NaN mismatches."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, str]] = []
        self.nan_mismatch: list[str] = []
        self.n = 0

    def add(self, key: str, mine: np.ndarray, ref: np.ndarray) -> None:
        import numpy as np

        self.n += 1
        if not np.array_equal(np.isnan(mine), np.isnan(ref)):
            self.nan_mismatch.append(key)
        d = rel_devs(mine, ref)  # a NaN where pyhf's is NaN counts as agreement
        d = np.where(np.isinf(d), 0.0, d)
        k = int(np.argmax(d))
        self.rows.append((float(d[k]), f"{key} {VALUES[k]}: {mine[k]:.10g} vs {ref[k]:.10g}"))

    @property
    def dev(self) -> float:
        return max((d for d, _ in self.rows), default=0.0)

    @property
    def where(self) -> str:
        return max(self.rows, default=(0.0, "none"))[1]

    def top(self, n: int) -> list[tuple[float, str]]:
        return sorted(self.rows, reverse=True)[:n]

    def median(self) -> float:
        import numpy as np

        return float(np.median([d for d, _ in self.rows])) if self.rows else 0.0

    def __str__(self) -> str:
        nan = (f"; NaN where the other is not: {', '.join(self.nan_mismatch)}"
               if self.nan_mismatch else "")
        return (f"{self.dev:.2e} over {self.n} points (median {self.median():.1e}; worst: "
                f"{self.where}){nan}")


def load_cache(path: Path, blas: str) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("blas_threads") == blas:
                out[(row["mode"], row["point"])] = row["cls"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--regions", default="ABC", help="regions to run, e.g. A or ABC")
    ap.add_argument("--engines", default="auto,pyhf-path", help="engines to time")
    ap.add_argument("--sample", type=int, default=6, help="pyhf loop sample size")
    ap.add_argument("--workers", type=int, default=1, help="processes for the engines")
    ap.add_argument("--limit", type=int, default=None, help="at most N points per region")
    ap.add_argument("--converged", action="store_true",
                    help="also compare with pyhf run to convergence (tolerance 1e-12)")
    ap.add_argument("--worst", type=int, default=0,
                    help="pyhf also on the N points where the engines disagree most")
    ap.add_argument("--blas-threads", default=None,
                    help="OPENBLAS_NUM_THREADS/OMP_NUM_THREADS for this run")
    ap.add_argument("--cache", type=Path, default=REPO / "benchmarks/output/pyhf_cache.jsonl",
                    help="pyhf results are appended here and reused for the deviations")
    ap.add_argument("--top", type=int, default=5, help="deviations listed per engine")
    ap.add_argument("--reproducibility", type=int, default=0,
                    help="pyhf's default again, with the other BLAS thread count (1 <-> 2), "
                         "at the N points where pyhf-path deviates most from it")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # REGION/NAME: print pyhf's default CLs
    ap.add_argument("--seed", type=int, default=20241129)
    ap.add_argument("--json", type=Path, help="write all numbers to this file")
    args = ap.parse_args()
    if args.blas_threads is not None:
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = args.blas_threads
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")

    import numpy as np

    from recastkit.stats.grid import GridSettings, run_grid
    from recastkit.stats.gridinputs import load_grid_source

    engines = [e for e in args.engines.split(",") if e]
    archive = shared_data() / ARCHIVE
    if args.one:
        region, name = args.one.split("/")
        ref, _ = pyhf_cls(load_grid_source([f"{archive}:Region{region}"]), name, False)
        print(json.dumps(ref.tolist()))
        return
    rng = random.Random(args.seed)
    results: dict[str, dict[str, np.ndarray]] = {e: {} for e in engines}
    seconds = dict.fromkeys(engines, 0.0)
    sources: dict[str, GridSource] = {}
    for region in args.regions:
        source = load_grid_source([f"{archive}:Region{region}"]).selected((), args.limit)
        sources[region] = source
        for engine in engines:
            t0 = time.perf_counter()
            res = run_grid(source, GridSettings(engine=engine),
                           executor="processes" if args.workers > 1 else "iterative",
                           workers=args.workers)
            dt = time.perf_counter() - t0
            seconds[engine] += dt
            statuses = {s: sum(r.status == s for r in res)
                        for s in ("converged", "fallback", "failed")}
            print(f"Region{region}: {len(res)} points, {engine} {dt:.1f} s "
                  f"({dt / len(res):.3f} s/point), {statuses}", flush=True)
            for r in res:
                results[engine][f"{region}/{r.name}"] = np.array(
                    [r.cls_observed, *r.cls_expected])
    keys = sorted(results[engines[0]])
    n_points = len(keys)
    cache = load_cache(args.cache, blas)
    args.cache.parent.mkdir(parents=True, exist_ok=True)

    def reference(key: str, mode: str) -> tuple[np.ndarray, float | None]:
        if (mode, key) in cache:
            return np.asarray(cache[(mode, key)], dtype=float), None
        region, name = key.split("/")
        ref, dt = pyhf_cls(sources[region], name, converged=mode == "converged")
        cache[(mode, key)] = ref.tolist()
        with args.cache.open("a") as f:
            f.write(json.dumps({"mode": mode, "point": key, "blas_threads": blas,
                                "cls": ref.tolist(), "seconds": dt}) + "\n")
        return ref, dt

    # the pyhf loop, timed fresh on the sample (never from the cache)
    sample = rng.sample(keys, min(args.sample, n_points))
    t_pyhf = 0.0
    for key in sample:
        region, name = key.split("/")
        ref, dt = pyhf_cls(sources[region], name, converged=False)
        t_pyhf += dt
        print(f"  pyhf {key}: {dt:.1f} s", flush=True)
        if ("default", key) not in cache:
            cache[("default", key)] = ref.tolist()
            with args.cache.open("a") as f:
                f.write(json.dumps({"mode": "default", "point": key, "blas_threads": blas,
                                    "cls": ref.tolist(), "seconds": dt}) + "\n")
        if args.converged:
            reference(key, "converged")
    extra: list[str] = []
    if args.worst and len(engines) >= 2:
        a, b = results[engines[0]], results[engines[1]]
        spread = sorted(keys, key=lambda k: -float(np.nan_to_num(
            rel_devs(a[k], b[k]), posinf=1e300).max()))
        extra = [k for k in spread if k not in sample][:args.worst]
        for key in extra:
            reference(key, "default")
            reference(key, "converged")
            print(f"  pyhf reference (default + converged) at {key}", flush=True)
    per_point = t_pyhf / max(1, len(sample))
    loop = per_point * n_points
    print()
    print(f"points: {n_points} (regions {args.regions}); BLAS threads: {blas}; "
          f"{args.workers} process(es)")
    print(f"pyhf loop: {per_point:.2f} s/point on {len(sample)} random points -> "
          f"{loop:.0f} s for all points")
    summary: dict[str, Any] = {"n_points": n_points, "blas_threads": blas,
                               "pyhf_seconds_per_point": per_point, "engines": {}}
    for engine in engines:
        print(f"speed-up vs the pyhf loop, {engine}: {loop / seconds[engine]:.1f}x "
              f"({seconds[engine]:.1f} s)")
    nan_points = sorted(f"{k} ({mode})" for (mode, k), v in cache.items()
                        if k in results[engines[0]] and np.isnan(v).any())
    gap = Worst()
    for (mode, key), ref in sorted(cache.items()):
        if mode == "default" and ("converged", key) in cache and key in results[engines[0]]:
            gap.add(key, np.asarray(ref, dtype=float),
                    np.asarray(cache[("converged", key)], dtype=float))
    for engine in engines:
        worst = {"default": Worst(), "converged": Worst()}
        for (mode, key), ref in sorted(cache.items()):
            if key in results[engine]:
                worst[mode].add(key, results[engine][key], np.asarray(ref, dtype=float))
        for mode, label in (("default", "pyhf (default fits)"), ("converged", "converged pyhf")):
            print(f"{engine}: worst relative CLs deviation from {label}: {worst[mode]}")
            for d, where in worst[mode].top(args.top)[1:]:
                print(f"    next: {d:.2e} {where}")
        summary["engines"][engine] = {
            "seconds": seconds[engine], "speedup": loop / seconds[engine],
            "worst_default": worst["default"].dev, "worst_default_at": worst["default"].where,
            "worst_converged": worst["converged"].dev,
            "worst_converged_at": worst["converged"].where,
            "values": {k: results[engine][k].tolist() for _, k in cache if k in results[engine]}}
    print(f"pyhf default vs converged pyhf (same points): {gap}")
    for d, where in gap.top(args.top)[1:]:
        print(f"    next: {d:.2e} {where}")
    print(f"points where pyhf gives NaN (mode): {nan_points or 'none among the references'}")
    for engine in engines:
        bad = [k for k, v in results[engine].items() if np.isnan(v).any()]
        print(f"points where {engine} gives NaN: {bad or 'none'}")
    if args.reproducibility and "pyhf-path" in results:
        other = "2" if blas == "1" else "1"
        print(f"pyhf's default fits with {other} BLAS thread(s) instead of {blas} (fresh "
              "processes), at the points where pyhf-path deviates most from pyhf's default:")
        mine = results["pyhf-path"]
        ranked = sorted(((float(rel_devs(mine[k], np.asarray(v, dtype=float)).max()), k)
                         for (mode, k), v in cache.items()
                         if mode == "default" and k in mine and not np.isnan(v).any()),
                        reverse=True)[:args.reproducibility]
        rows = []
        for _, key in ranked:
            env = dict(os.environ, OPENBLAS_NUM_THREADS=other, OMP_NUM_THREADS=other)
            out = subprocess.run([sys.executable, __file__, "--one", key], env=env, check=True,
                                 capture_output=True, text=True).stdout
            again = np.asarray(json.loads(out.strip().splitlines()[-1]), dtype=float)
            ref = np.asarray(cache[("default", key)], dtype=float)
            row = (float(rel_devs(again, ref).max()), float(rel_devs(mine[key], ref).max()),
                   float(rel_devs(mine[key], again).max()))
            rows.append({"point": key, "pyhf_vs_pyhf": row[0], "path_vs_pyhf": row[1],
                         "path_vs_pyhf_other_threads": row[2]})
            print(f"  {key}: pyhf ({other}) vs pyhf ({blas}) {row[0]:.2e}; pyhf-path vs pyhf "
                  f"({blas}) {row[1]:.2e}, vs pyhf ({other}) {row[2]:.2e}", flush=True)
        summary["reproducibility"] = rows
    if args.json:
        summary.update(sample=sample, worst_points=extra, pyhf_default_vs_converged=gap.dev,
                       pyhf={f"{m}/{k}": v for (m, k), v in cache.items()})
        args.json.write_text(json.dumps(summary, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
