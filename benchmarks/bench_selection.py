"""Benchmark of the selection step: recastkit's full pipeline against a raw uproot read.

Generates (once, cached under ``benchmarks/output/``) flat ntuples of jagged float32 jets
(Poisson mean 4 per event; pt/eta/phi/m) and a float32 weight: 5 M events ZLIB level 1, the
same uncompressed, and 1 M events ZLIB level 1. Then measures in the same run:

1. raw read: ``tree.iterate`` over the same branches with the same step size, touching the
   data, vs the full recastkit pipeline (``executor="iterative"``, one process), on ZLIB and on
   uncompressed input (targets: full/raw throughput >= 0.9 and >= 0.6, checked on the default
   configuration, in which the iterative executor reads the next chunk in one background
   thread while the GIL-free numba kernel fills the current one); the single-threaded
   iterative run (``read_ahead=False``) is shown as well;
2. ``processes`` on all cores vs the single-threaded ``iterative`` executor (target >= 1.7x on
   2 cores); the ratio against the read-ahead configuration is shown for information;
3. the kernel alone on in-memory chunks (ns/event), and the machine's parallel capacity
   (throughput of N concurrent pure-CPU processes vs one: the ceiling of item 2);
4. peak RSS of the chunked pipeline in a fresh subprocess on 1 M and 5 M events (target
   <= 0.5 GB, and no growth with file size).

Every timing is the best of three runs on a warm page cache. The load average is printed at
the start and the end: other processes on the machine distort the parallel figures. Missed
targets are printed as MISSED; the script never fails on them.

Usage: ``python benchmarks/bench_selection.py [--events N] [--chunk-size N]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

OUTPUT = Path(__file__).resolve().parent / "output"
BRANCHES = ["jet_pt", "jet_eta", "jet_phi", "jet_m", "weight"]
WRITE_CHUNK = 250_000


def generate(path: Path, n_events: int, compression: object, seed: int = 2024) -> Path:
    """Write the flat ntuple in chunks (one basket per chunk and branch), atomically."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.root")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with uproot.recreate(tmp, compression=compression) as f:
        for start in range(0, n_events, WRITE_CHUNK):
            n = min(WRITE_CHUNK, n_events - start)
            counts = rng.poisson(4.0, n)
            total = int(counts.sum())
            jets = ak.zip({
                "pt": ak.unflatten((20.0 + rng.exponential(40.0, total)).astype(np.float32),
                                   counts),
                "eta": ak.unflatten(rng.uniform(-4.0, 4.0, total).astype(np.float32), counts),
                "phi": ak.unflatten(rng.uniform(-np.pi, np.pi, total).astype(np.float32),
                                    counts),
                "m": ak.unflatten(rng.uniform(0.0, 20.0, total).astype(np.float32), counts),
            })
            weight = rng.normal(1.0, 0.3, n).astype(np.float32)
            if start == 0:
                f.mktree("events", {"jet": jets.type.content, "weight": np.float32})
            f["events"].extend({"jet": jets, "weight": weight})
    tmp.replace(path)
    print(f"  generated {path.name}: {n_events} events, {path.stat().st_size / 1e6:.0f} MB "
          f"in {time.perf_counter() - t0:.1f} s")
    return path


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def raw_read(path: Path, step: int) -> float:
    """Read the branches with uproot alone, touching every array; returns Σ weight."""
    total = 0.0
    with uproot.open(path) as f:
        for batch in f["events"].iterate(filter_name=BRANCHES, step_size=step, library="ak"):
            for name in BRANCHES[:4]:
                layout = batch[name].layout
                total += float(layout.content.data[-1]) if len(layout.content) else 0.0
            total += float(np.asarray(batch["weight"]).sum())
    return total


def full_pipeline(path: Path, step: int, executor: str = "iterative",
                  workers: int | None = None, read_ahead: bool = True) -> object:
    """The whole recastkit selection (jet cuts pT > 25 GeV, |eta| < 2.5).

    ``read_ahead=False`` also decodes baskets in the calling thread (one thread in all).
    """
    from recastkit.io.decoding import ReadOptions
    from recastkit.processing import run_selection
    from recastkit.selection import SelectionConfig

    config = SelectionConfig(jet_pt_min_gev=25.0, jet_abs_eta_max=2.5)
    return run_selection([path], config, executor=executor, workers=workers, chunk_size=step,
                         bookkeeping=False, progress=False, read_ahead=read_ahead,
                         read_options=None if read_ahead else ReadOptions(
                             decompression_threads=1))


# Peak RSS: VmHWM from /proc/self/status (reset by exec). getrusage's ru_maxrss is NOT used on
# Linux because it survives fork+exec: a child of this (large) driver process would report
# the driver's peak. Fallback where /proc is absent: ru_maxrss.
_RSS_SCRIPT = """
import resource, sys
from recastkit.processing import run_selection
from recastkit.selection import SelectionConfig
if sys.argv[1] != "-":
    run_selection([sys.argv[1]], SelectionConfig(jet_pt_min_gev=25.0, jet_abs_eta_max=2.5),
                  executor="iterative", chunk_size=int(sys.argv[2]), bookkeeping=False,
                  progress=False)
try:
    with open("/proc/self/status") as f:
        kb = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
except OSError:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(kb)
"""


def peak_rss_mb(path: Path | None, step: int) -> float:
    """Peak RSS (MB) of a fresh interpreter running the pipeline (``None``: imports only)."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(path) if path else "-", str(step)],
        check=True, capture_output=True, text=True,
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0  # kB -> MB


def kernel_ns_per_event(path: Path, step: int, n_events: int) -> float:
    """Best time (ns/event) of the selection kernel alone on chunks already in memory."""
    from recastkit.io.events import iter_chunks, resolve_layout
    from recastkit.selection import SelectionAccumulator, SelectionConfig

    config = SelectionConfig(jet_pt_min_gev=25.0, jet_abs_eta_max=2.5)
    layout = resolve_layout(path, config.input)
    chunks = list(iter_chunks(path, layout, 0, n_events, step))
    n = sum(c.n_events for c in chunks)

    def fill() -> None:
        acc = SelectionAccumulator.empty(config)
        for c in chunks:
            acc.fill(c, layout, config)

    return best_of(fill, 5) / n * 1e9


_SPIN = "import time\nt=time.perf_counter()\ns=0\nfor i in range(10_000_000): s+=i\n" \
        "print(time.perf_counter()-t)"


def parallel_capacity(n_procs: int) -> float:
    """Throughput of ``n_procs`` concurrent pure-CPU processes relative to one alone.

    2.0 on two free cores; less when the cores are shared (VM, other load): the ceiling of
    any ``processes`` speed-up.
    """
    def run(k: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE,
                                  text=True) for _ in range(k)]
        return max(float(p.communicate()[0]) for p in procs)

    t1 = min(run(1) for _ in range(2))
    tn = min(run(n_procs) for _ in range(2))
    return n_procs * t1 / tn


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--small-events", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=WRITE_CHUNK)
    args = parser.parse_args()
    n, step = args.events, args.chunk_size
    t_start = time.perf_counter()

    print(f"recastkit selection benchmark: {n} events, step {step}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    zlib = generate(OUTPUT / f"flat_{n}_zlib1.root", n, uproot.ZLIB(1))
    plain = generate(OUTPUT / f"flat_{n}_uncompressed.root", n, None)
    small = generate(OUTPUT / f"flat_{args.small_events}_zlib1.root", args.small_events,
                     uproot.ZLIB(1))

    from recastkit.selection import warm_up

    warm_up()
    full_pipeline(small, step)  # numba cache, imports, page cache

    rows: list[tuple[str, str, str, str]] = []
    results: dict[str, float] = {}
    for label, path in (("ZLIB-1", zlib), ("uncompressed", plain)):
        raw_read(path, step)  # warm the page cache
        t_raw = best_of(lambda p=path: raw_read(p, step))
        t_full = best_of(lambda p=path: full_pipeline(p, step))
        t_single = best_of(lambda p=path: full_pipeline(p, step, read_ahead=False))
        results[f"raw_{label}"] = t_raw
        results[f"full_{label}"] = t_full
        results[f"single_{label}"] = t_single
        rows.append((f"raw uproot read, {label}", f"{t_raw:.2f} s", f"{n / t_raw / 1e6:.2f} M/s",
                     ""))
        rows.append((f"full, iterative + read-ahead (default), {label}", f"{t_full:.2f} s",
                     f"{n / t_full / 1e6:.2f} M/s", ""))
        rows.append((f"full, iterative single thread, {label}", f"{t_single:.2f} s",
                     f"{n / t_single / 1e6:.2f} M/s", ""))
    t_proc = best_of(lambda: full_pipeline(zlib, step, "processes"))
    rows.append((f"full, processes ({os.cpu_count()} workers), ZLIB-1",
                 f"{t_proc:.2f} s", f"{n / t_proc / 1e6:.2f} M/s", ""))

    kernel_ns = kernel_ns_per_event(plain, step, min(n, 2_000_000))
    capacity = parallel_capacity(os.cpu_count() or 1)
    rss_base = peak_rss_mb(None, step)
    rss_small = peak_rss_mb(small, step)
    rss_big = peak_rss_mb(zlib, step)

    print()
    print(f"{'measurement':<56} {'time':>9} {'throughput':>12}")
    print("-" * 76)
    for name, t, thr, _ in rows:
        print(f"{name:<56} {t:>9} {thr:>12}")
    print()
    print("iterative + read-ahead = executor='iterative' with its default read_ahead=True: one")
    print("  process, the main thread runs the kernel while one background thread reads the next")
    print("  chunk (baskets decoded by one thread per core). iterative single thread =")
    print("  read_ahead=False and one decompression thread: read, then fill, in one thread.")
    print("The issue's full/raw targets are checked on the default (read-ahead) configuration;")
    print("processes/iterative is checked against the single-threaded iterative executor.")
    print()
    ratios = [
        ("full/raw, ZLIB-1 (read-ahead, default)",
         results["raw_ZLIB-1"] / results["full_ZLIB-1"], 0.9, True),
        ("full/raw, uncompressed (read-ahead, default)",
         results["raw_uncompressed"] / results["full_uncompressed"], 0.6, True),
        ("processes / iterative single thread, ZLIB-1", results["single_ZLIB-1"] / t_proc,
         1.7, True),
        ("  info: full/raw, ZLIB-1, single thread",
         results["raw_ZLIB-1"] / results["single_ZLIB-1"], 0.9, True),
        ("  info: full/raw, uncompressed, single thread",
         results["raw_uncompressed"] / results["single_uncompressed"], 0.6, True),
        ("  info: processes / iterative read-ahead", results["full_ZLIB-1"] / t_proc, 1.7,
         True),
        (f"peak RSS, {n} events (MB)", rss_big, 512.0, False),
        (f"peak RSS, {args.small_events} events (MB)", rss_small, 512.0, False),
        ("peak RSS growth 5M vs 1M (MB)", rss_big - rss_small, 50.0, False),
    ]
    print(f"{'ratio / figure':<50} {'value':>10} {'target':>10}  verdict")
    print("-" * 76)
    for name, value, target, higher in ratios:
        sign = ">=" if higher else "<="
        print(f"{name:<50} {value:>10.2f} {sign + f'{target:g}':>10}  "
              f"{verdict(value, target, higher)}")
    print(f"{'peak RSS of the imports alone (MB)':<50} {rss_base:>10.1f}")
    print(f"{'kernel alone, in-memory chunks (ns/event)':<50} {kernel_ns:>10.1f}")
    print(f"{f'machine parallel capacity, {os.cpu_count()} CPU-bound procs':<50} "
          f"{capacity:>10.2f}   (ceiling of any processes speed-up)")
    print(f"(total time {time.perf_counter() - t_start:.0f} s; load average now "
          f"{os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
