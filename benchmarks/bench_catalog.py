"""Benchmark of the cross-section catalog: import time and lookup throughput.

Prints
  * the import time of the largest real table (TopDataPreparation, 2162 rows), taken from
    ``$RECASTKIT_TESTDATA`` or ``../shared/data`` (a generated table of the same size when
    absent);
  * the import time of a generated 200k-row PMG table (scaling);
  * lookups per second by DSID and by DSID + e-tag on the 200k-row catalog (indexed), against
    two baselines measured in the same run: a linear scan over the parsed records in Python
    and the same SQL queries on a copy of the database without indexes.

Run: ``.venv/bin/python benchmarks/bench_catalog.py`` (about 20 s on 2 cores).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from recastkit.metadata import Catalog, read_table
from recastkit.metadata.readers import PMG_HEADER

REPO = Path(__file__).resolve().parents[1]
SEED = 20240611
N_DSIDS = 100_000  # two e-tags each: 200k rows
N_LOOKUPS = 20_000
N_BASELINE = 200


def shared_data() -> Path | None:
    env = os.environ.get("RECASTKIT_TESTDATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path if path.is_dir() else None


def generate_pmg(path: Path, n_dsids: int, rng: random.Random) -> None:
    lines = [PMG_HEADER]
    for i in range(n_dsids):
        dsid = 300000 + i
        for etag in ("e5706", "e6004"):
            xsec = rng.lognormvariate(0.0, 3.0)
            lines.append("\t\t".join((
                str(dsid), f"Gen_sample_{dsid}", repr(xsec), repr(rng.uniform(0.01, 1.0)),
                repr(rng.uniform(0.8, 1.5)), "0.0", "0.0", "Powheg+Pythia8", etag,
            )))
    path.write_text("\n".join(lines) + "\n")


def generate_topdataprep(path: Path, n_rows: int, rng: random.Random) -> None:
    lines = ["# generated TopDataPreparation-like table", ""]
    lines += [f"{400000 + i}\t{rng.lognormvariate(0, 3)!r}  {rng.uniform(0.8, 1.5)!r} pythia8"
              for i in range(n_rows)]
    path.write_text("\n".join(lines) + "\n")


def best_of(n: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def rate(n: int, fn: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = shared_data()
        top = data / "xsec/TopDataPreparation/XSection-MC15-13TeV.data" if data else None
        if top is None or not top.is_file():
            top = tmp / "XSection-generated.data"
            generate_topdataprep(top, 2162, rng)
            print(f"shared data not found: using a generated table {top.name}")
        rows = read_table(top).n_rows
        cat = Catalog(tmp / "top.sqlite")
        t_top = best_of(3, lambda: cat.import_table(top))
        print(f"import {top.name} ({rows} rows): {t_top * 1e3:.1f} ms "
              f"({rows / t_top:,.0f} rows/s, best of 3)")

        big = tmp / "PMGxsecDB_generated.txt"
        generate_pmg(big, N_DSIDS, rng)
        t_parse = best_of(1, lambda: read_table(big))
        db = tmp / "big.sqlite"
        big_cat = Catalog(db)
        t_big = best_of(1, lambda: big_cat.import_table(big))
        n_big = len(big_cat)
        print(f"import generated PMG table ({n_big:,} rows): {t_big:.2f} s "
              f"({n_big / t_big:,.0f} rows/s; parsing alone {t_parse:.2f} s)")

        dsids = [300000 + rng.randrange(N_DSIDS) for _ in range(N_LOOKUPS)]
        etags = [rng.choice(("e5706", "e6004")) for _ in range(N_LOOKUPS)]
        r_dsid = rate(N_LOOKUPS, lambda i: big_cat.query(dsids[i]))
        r_etag = rate(N_LOOKUPS, lambda i: big_cat.lookup(dsids[i], etag=etags[i]))
        print(f"indexed query by DSID:        {r_dsid:10,.0f} /s")
        print(f"indexed lookup by DSID+etag:  {r_etag:10,.0f} /s")

        records = list(read_table(big).records)
        r_scan = rate(N_BASELINE, lambda i: [
            r for r in records if r.dsid == dsids[i] and r.etag == etags[i]
        ])
        print(f"baseline: Python linear scan over {len(records):,} parsed records: "
              f"{r_scan:10,.1f} /s")

        big_cat.close()
        plain = tmp / "noindex.sqlite"
        shutil.copy(db, plain)
        for suffix in ("-wal", "-shm"):
            if Path(str(db) + suffix).exists():
                shutil.copy(str(db) + suffix, str(plain) + suffix)
        conn = sqlite3.connect(plain)
        conn.execute("DROP INDEX records_dsid_etag")
        conn.execute("DROP INDEX records_name")
        conn.commit()
        conn.close()
        noindex = Catalog(plain)
        r_noindex = rate(N_BASELINE, lambda i: noindex.lookup(dsids[i], etag=etags[i]))
        print(f"baseline: SQLite without index, lookup by DSID+etag: {r_noindex:10,.1f} /s")
        print(f"speed-up of the indexed lookup: {r_etag / r_scan:,.0f}x over the Python scan, "
              f"{r_etag / r_noindex:,.0f}x over SQLite without index")


if __name__ == "__main__":
    main()
