"""Benchmark of reading at the codec's speed and of the general (expression) selection path.

Measured in the same run, every timing the best of ``--repeat`` runs (default 5) on a warm
page cache:

1. **Dijet fast path** on the 5 M-event flat ntuple of ``bench_selection.py`` (ZLIB level 1,
   same generator and seed, shared cache under ``benchmarks/output/``) and on ZSTD-1 and LZ4-1
   copies: uproot's default read of the same branches (standard zlib, one thread) is the
   baseline; then uproot's read with the fast decoder and decompression threads, recastkit's
   basket reader alone (:mod:`recastkit.io.baskets`, the dijet fast path's reading, no
   selection), and the full dijet selection (``iterative`` with the default read options,
   and ``processes``).
   Target: full / baseline >= 2.5 on ZLIB-1 (>= 6 M events/s on 2 cores, which assumes a
   baseline of 2.4 M events/s; the script prints both).
2. **ZH -> llbb example** (``examples/zh_llbb/analysis.yml`` without its variations: 3 regions,
   4 observables, 2 weights) on a generated 5 M-event NanoAOD-style sample with leptons and
   b-tags (ZLIB-1): the raw read of the branches it reads, with the fast decoder and threads,
   against the full selection in the same configuration (target >= 0.6); the run with the
   eight variations filled is shown for information.
   For information, the selection work alone (chunks already read, in memory, one thread, the
   steps of a real run) against the raw read of the 1 M-event sample: what the general path
   adds to the read.
3. **Peak RSS** of the ZH selection in a fresh process on 1 M and 5 M events (target <= 0.5 GB,
   no growth with file size).

The load average is printed at the start and the end: on a shared machine the parallel and
absolute figures are lower bounds. Missed targets are printed as MISSED; the script never
fails on them.

Usage: ``python benchmarks/bench_expressions.py [--events N] [--small-events N] [--repeat N]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_selection import BRANCHES, OUTPUT, WRITE_CHUNK, generate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "zh_llbb" / "analysis.yml"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls."""
    return best_wall_cpu(fn, repeat)[0]


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def best_wall_cpu(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time (all threads and worker processes) of ``repeat``
    calls. The CPU time hardly depends on the machine's load, the wall time does."""
    walls, cpus = [], []
    for _ in range(repeat):
        c0 = _cpu_s()
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_s() - c0)
    return min(walls), min(cpus)


def generate_zh(path: Path, n_events: int) -> Path:
    """Write the ZH sample (generator of recastkit.io.synthetic) in chunks, atomically."""
    if path.exists():
        return path
    from recastkit.io.synthetic import generate_signal_events, write_object_events

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.root")
    t0 = time.perf_counter()
    with uproot.recreate(tmp, compression=uproot.ZLIB(1)) as f:
        for i, start in enumerate(range(0, n_events, WRITE_CHUNK)):
            n = min(WRITE_CHUNK, n_events - start)
            events = generate_signal_events(n, seed=1000 + i, objects=True,
                                            sum_of_weights=float(n))
            write_object_events(f, events, create=(i == 0))
    tmp.replace(path)
    print(f"  generated {path.name}: {n_events} events, {path.stat().st_size / 1e6:.0f} MB "
          f"in {time.perf_counter() - t0:.1f} s")
    return path


def copy_with(path: Path, out: Path, compression: object) -> Path:
    """Rewrite the flat ntuple with another compression (same baskets), atomically."""
    if out.exists():
        return out
    tmp = out.with_suffix(".tmp.root")
    with uproot.open(path) as src, uproot.recreate(tmp, compression=compression) as f:
        for i, batch in enumerate(src["events"].iterate(BRANCHES, step_size=WRITE_CHUNK)):
            jets = ak.zip({k: batch[f"jet_{k}"] for k in ("pt", "eta", "phi", "m")})
            data = {"jet": jets, "weight": np.asarray(batch["weight"])}
            if i == 0:
                f.mktree("events", {"jet": jets.type.content, "weight": np.float32})
            f["events"].extend(data)
    tmp.replace(out)
    return out


def raw_read(path: Path, tree: str, branches: list[str], step: int, options: object) -> None:
    """Read the branches with uproot alone (library awkward), with the given read options."""
    from recastkit.io import decoding

    decoding.apply(options)  # type: ignore[arg-type]
    with uproot.open(path) as f:
        for batch in f[tree].iterate(branches, step_size=step, library="ak",
                                     **decoding.executors(options)):  # type: ignore[arg-type]
            for name in batch.fields:
                _ = batch[name].layout


def basket_read(path: Path, step: int, options: object = None) -> None:
    """Read the dijet branches into event chunks with recastkit's reader (no selection)."""
    from recastkit.io.events import count_entries, iter_chunks, resolve_layout

    layout = resolve_layout(path)
    for _ in iter_chunks(path, layout, 0, count_entries(path, layout), step,
                         options):  # type: ignore[arg-type]
        pass


def dijet(path: Path, step: int, executor: str = "iterative", options: object = None) -> None:
    from recastkit.processing import run_selection
    from recastkit.selection import SelectionConfig

    run_selection([path], SelectionConfig(jet_pt_min_gev=25.0, jet_abs_eta_max=2.5),
                  executor=executor, chunk_size=step, bookkeeping=False, progress=False,
                  read_options=options)  # type: ignore[arg-type]


def zh_config(variations: bool) -> object:
    from recastkit.regions import AnalysisConfig

    doc = yaml.safe_load(EXAMPLE.read_text())
    if not variations:
        doc.pop("variations")
    return AnalysisConfig.from_mapping(doc, str(EXAMPLE), EXAMPLE.parent)


def zh(path: Path, step: int, config: object, executor: str = "iterative",
       options: object = None) -> object:
    from recastkit.processing import run_selection

    return run_selection([path], config, executor=executor, chunk_size=step,  # type: ignore
                         bookkeeping=False, progress=False, read_options=options)


def zh_work(chunks: list[object], layout: object, config: object) -> object:
    """The selection work alone: fill every region from chunks already read."""
    from recastkit.regions import RegionsAccumulator

    acc = RegionsAccumulator.empty(config, [])  # type: ignore[arg-type]
    for chunk in chunks:
        acc.fill(chunk, layout, config)  # type: ignore[arg-type]
    return acc


_RSS_SCRIPT = """
import resource, sys, yaml
sys.path.insert(0, sys.argv[3])
from bench_expressions import zh, zh_config
if sys.argv[1] != "-":
    zh(sys.argv[1], int(sys.argv[2]), zh_config(False))
try:
    with open("/proc/self/status") as f:
        kb = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
except OSError:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(kb)
"""


def peak_rss_mb(path: Path | None, step: int) -> float:
    """Peak RSS (MB) of a fresh interpreter running the ZH selection (``None``: imports)."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(path) if path else "-", str(step),
         str(Path(__file__).resolve().parent)],
        check=True, capture_output=True, text=True,
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0


def verdict(value: float, target: float, higher: bool = True) -> str:
    ok = value >= target if higher else value <= target
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--small-events", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=WRITE_CHUNK)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, step, rep = args.events, args.chunk_size, args.repeat
    t_start = time.perf_counter()

    from recastkit.io.decoding import UPROOT_DEFAULTS, ReadOptions, available_cores
    from recastkit.io.objects import iter_object_chunks, resolve_object_layout
    from recastkit.regions import compiled
    from recastkit.selection import warm_up
    from recastkit.selection_expr import warm_up as warm_up_expr

    cores = available_cores()
    fast = ReadOptions()  # auto decoder, one thread per core
    print(f"recastkit reading/expression benchmark: {n} events, step {step}, {cores} cores, "
          f"decoder {fast.describe()['decoder']}, load average {os.getloadavg()[0]:.2f}")
    zlib = generate(OUTPUT / f"flat_{n}_zlib1.root", n, uproot.ZLIB(1))
    zstd = copy_with(zlib, OUTPUT / f"flat_{n}_zstd1.root", uproot.ZSTD(1))
    lz4 = copy_with(zlib, OUTPUT / f"flat_{n}_lz4_1.root", uproot.LZ4(1))
    zh_big = generate_zh(OUTPUT / f"zh_{n}_zlib1.root", n)
    zh_small = generate_zh(OUTPUT / f"zh_{args.small_events}_zlib1.root", args.small_events)
    warm_up()
    warm_up_expr()

    rows: list[tuple[str, float, int]] = []
    cpu: dict[str, float] = {}
    res: dict[str, float] = {}

    def measure(key: str, label: str, fn: Callable[[], object], events: int) -> None:
        fn()  # warm: page cache, imports, numba
        t, cpu[key] = best_wall_cpu(fn, rep)
        cpu[label] = cpu[key]
        res[key] = t
        rows.append((label, t, events))

    for label, path in (("ZLIB-1", zlib), ("ZSTD-1", zstd), ("LZ4-1", lz4)):
        measure(f"base_{label}", f"raw uproot default (zlib, 1 thread), {label}",
                lambda p=path: raw_read(p, "events", BRANCHES, step, UPROOT_DEFAULTS), n)
        measure(f"raw_{label}", f"raw, fast decoder + {cores} threads, {label}",
                lambda p=path: raw_read(p, "events", BRANCHES, step, fast), n)
        measure(f"rk_{label}", f"recastkit basket reader alone, {label}",
                lambda p=path: basket_read(p, step), n)
        measure(f"it_{label}", f"dijet, iterative (defaults), {label}",
                lambda p=path: dijet(p, step), n)
        measure(f"pr_{label}", f"dijet, processes ({cores} workers), {label}",
                lambda p=path: dijet(p, step, "processes"), n)

    config = zh_config(False)
    config_var = zh_config(True)
    cc = compiled(config)  # type: ignore[arg-type]
    layout = resolve_object_layout(zh_big, config.input, {k: set(v) for k, v in  # type: ignore
                                                          cc.uses.items()}, cc.overrides,
                                   config.extra_weights)  # type: ignore[attr-defined]
    zh_branches = list(layout.branches)
    measure("zh_raw", f"ZH raw read of its {len(zh_branches)} branches, fast decoder",
            lambda: raw_read(zh_big, "Events", zh_branches, step, fast), n)
    measure("zh_it", "ZH example, iterative (3 regions, 4 obs, 2 weights)",
            lambda: zh(zh_big, step, config), n)
    measure("zh_pr", f"ZH example, processes ({cores} workers)",
            lambda: zh(zh_big, step, config, "processes"), n)
    measure("zh_var", "ZH example + 8 variations, iterative",
            lambda: zh(zh_big, step, config_var), n)
    small_layout = resolve_object_layout(zh_small, config.input, {  # type: ignore[attr-defined]
        k: set(v) for k, v in cc.uses.items()}, cc.overrides, config.extra_weights)  # type: ignore
    n_small = args.small_events
    measure("zh_raw_small", f"ZH raw read, {n_small} events",
            lambda: raw_read(zh_small, "Events", zh_branches, step, fast), n_small)
    from recastkit.processing import ANALYSIS_STEP_SIZE  # the steps of the real runs

    chunks = list(iter_object_chunks(zh_small, small_layout, 0, n_small,
                                     min(step, ANALYSIS_STEP_SIZE), fast))
    measure("zh_work_small", f"ZH selection work alone (chunks in memory), {n_small} ev.",
            lambda c=chunks: zh_work(c, small_layout, config), n_small)  # type: ignore[misc]
    chunks.clear()
    rss_base = peak_rss_mb(None, step)
    rss_small = peak_rss_mb(zh_small, step)
    rss_big = peak_rss_mb(zh_big, step)

    print()
    print(f"{'measurement':<58} {'time':>8} {'M events/s':>11} {'CPU':>8}")
    print("-" * 88)
    for label, t, events in rows:
        print(f"{label:<58} {t:>7.2f}s {events / t / 1e6:>11.2f} {cpu[label]:>7.2f}s")
    print("CPU: seconds of all threads and worker processes (best run); under load, wall time")
    print("ratios are lower bounds and CPU / cores is the wall time a quiet machine would show.")
    print()
    base = res["base_ZLIB-1"]
    best_dijet = min(res["it_ZLIB-1"], res["pr_ZLIB-1"])
    ratios = [
        ("dijet best / uproot default read, ZLIB-1", base / best_dijet, 2.5, True),
        ("dijet best, M events/s, ZLIB-1", n / best_dijet / 1e6, 6.0, True),
        ("  info: dijet iterative / default read, ZLIB-1", base / res["it_ZLIB-1"], 2.5, True),
        ("  info: dijet processes / default read, ZLIB-1", base / res["pr_ZLIB-1"], 2.5, True),
        ("  info: fast raw read / default read, ZLIB-1", base / res["raw_ZLIB-1"], 2.5, True),
        ("  info: basket reader alone / default read, ZLIB-1", base / res["rk_ZLIB-1"], 2.5,
         True),
        ("  info: dijet / default read by CPU time, ZLIB-1",
         cpu["base_ZLIB-1"] / (min(cpu["it_ZLIB-1"], cpu["pr_ZLIB-1"]) / cores), 2.5, True),
        ("  info: dijet best / default read, ZSTD-1",
         res["base_ZSTD-1"] / min(res["it_ZSTD-1"], res["pr_ZSTD-1"]), 2.5, True),
        ("  info: dijet best / default read, LZ4-1",
         res["base_LZ4-1"] / min(res["it_LZ4-1"], res["pr_LZ4-1"]), 2.5, True),
        ("ZH iterative / raw read (same options)", res["zh_raw"] / res["zh_it"], 0.6, True),
        ("  info: ZH processes / raw read", res["zh_raw"] / res["zh_pr"], 0.6, True),
        ("  info: ZH + 8 variations / raw read", res["zh_raw"] / res["zh_var"], 0.6, True),
        ("  info: ZH selection work alone / raw read, 1 M ev.",
         res["zh_work_small"] / res["zh_raw_small"], 0.6, False),
        (f"peak RSS, ZH {n} events (MB)", rss_big, 512.0, False),
        (f"peak RSS, ZH {args.small_events} events (MB)", rss_small, 512.0, False),
        ("peak RSS growth big vs small (MB)", rss_big - rss_small, 50.0, False),
    ]
    print(f"{'ratio / figure':<52} {'value':>9} {'target':>9}  verdict")
    print("-" * 79)
    for name, value, target, higher in ratios:
        sign = ">=" if higher else "<="
        print(f"{name:<52} {value:>9.2f} {sign + f'{target:g}':>9}  "
              f"{verdict(value, target, higher)}")
    print(f"{'peak RSS of the imports alone (MB)':<52} {rss_base:>9.1f}")
    print(f"(total {time.perf_counter() - t_start:.0f} s; load average now "
          f"{os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
