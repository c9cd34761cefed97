"""The grid step with its files: inputs → resumable per-point store → table → contour → HEPData.

``OUT/`` receives

* ``points.jsonl``: the resumable store (one fsynced line per finished point);
* ``points.csv`` / ``points.json``: the table (name, parameters, μ, CLs observed, the five
  expected CLs, limits when computed, status, reason);
* ``contour.json`` / ``contour.png`` with ``--x``/``--y``;
* ``hepdata/`` (``submission.yaml``, table YAMLs, ``submission.tar.gz``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recastkit._atomic import write_text_atomic
from recastkit._files import check_output_dir, output_errors
from recastkit._json import dumps
from recastkit.exceptions import StatsError
from recastkit.stats.contour import Contour, exclusion_contour
from recastkit.stats.grid import GridProgress, GridSettings, pyhf_point, run_grid
from recastkit.stats.gridinputs import GridSource, load_grid_source, parse_parameters
from recastkit.stats.gridstore import PointStore
from recastkit.stats.results import BAND_LABELS, PointResult

log = logging.getLogger(__name__)

STORE_NAME = "points.jsonl"


@dataclass(frozen=True)
class GridRequest:
    """Everything ``recastkit grid`` needs.

    Attributes:
        inputs: ``[BKGONLY.json] PATCHES...`` (see :func:`load_grid_source`).
        output_dir: The output folder (``-o``).
        settings: μ, test statistic, limits, engine.
        pattern: Point-name pattern (``sbottom_{m1}_{m2}_{m3}``); None: no parameters beyond
            those a PatchSet provides.
        select: Glob patterns of point names to keep.
        limit_points: Keep at most this many points (after ``select``).
        x: Contour x parameter.
        y: Contour y parameter.
        fix: Other parameters' values for the contour slice.
        labels: Axis labels (with units) per parameter.
        executor: ``iterative``, ``processes`` or ``dask``.
        workers: Processes or Dask workers.
        scheduler: Dask scheduler address.
        cross_check: Recompute this many random points with plain pyhf.
        seed: Seed of the cross-check's choice.
        hepdata: Write the HEPData submission.
        source: An already built source (e.g. :func:`source_from_histograms`); ``inputs``
            is then ignored.
    """

    inputs: tuple[str, ...]
    output_dir: Path
    settings: GridSettings = field(default_factory=GridSettings)
    pattern: str | None = None
    select: tuple[str, ...] = ()
    limit_points: int | None = None
    x: str | None = None
    y: str | None = None
    fix: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    executor: str = "iterative"
    workers: int | None = None
    scheduler: str | None = None
    cross_check: int = 0
    seed: int = 0
    hepdata: bool = True
    source: GridSource | None = None


@dataclass(frozen=True)
class CrossCheck:
    """Points recomputed with plain pyhf and the worst relative deviation over the six CLs."""

    names: tuple[str, ...]
    worst_relative_deviation: float
    worst_point: str
    nan_points: tuple[str, ...] = ()


@dataclass(frozen=True)
class GridOutcome:
    """What the grid step computed and wrote."""

    source_label: str
    results: tuple[PointResult, ...]
    files: Mapping[str, Path]
    seconds: float
    reused: int
    contour: Contour | None = None
    cross_check: CrossCheck | None = None


def with_parameters(source: GridSource, pattern: str | None) -> GridSource:
    """Attach the parameters parsed from each point name (checked before anything runs)."""
    if pattern is None:
        return source
    points = tuple(dataclasses.replace(p, parameters={**p.parameters,
                                                      **parse_parameters(p.name, pattern)})
                   for p in source.points)
    return dataclasses.replace(source, points=points)


def table_columns(results: Sequence[PointResult]) -> tuple[list[str], bool]:
    """Parameter names (first-seen order) and whether limits were computed."""
    names: list[str] = []
    for r in results:
        for k in r.parameters:
            if k not in names:
                names.append(k)
    return names, any(r.expected_limits is not None for r in results)


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return "" if v is None else v


def table_csv(results: Sequence[PointResult]) -> str:
    """The CSV table (one row per point; floats with full precision)."""
    params, limits = table_columns(results)
    headers = ["name", *params, "mu", "cls_observed",
               *(f"cls_expected_{b}" for b in BAND_LABELS)]
    if limits:
        headers += ["observed_limit", *(f"expected_limit_{b}" for b in BAND_LABELS)]
    headers += ["status", "reason"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    for r in results:
        row: list[Any] = [r.name, *(r.parameters.get(p) for p in params), r.mu,
                          r.cls_observed, *r.cls_expected]
        if limits:
            row += [r.observed_limit, *(r.expected_limits or (None,) * 5)]
        row += [r.status, r.reason]
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()


def table_json(results: Sequence[PointResult], meta: Mapping[str, Any]) -> str:
    """The JSON table: ``{"points": [...], "expected_band_labels": ..., **meta}``."""
    doc = {**meta, "expected_band_labels": list(BAND_LABELS),
           "points": [r.to_dict() for r in results]}
    return dumps(doc) + "\n"


def _rel(a: float, b: float) -> float:
    if math.isnan(a) and math.isnan(b):
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.inf
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(b), 1e-300)


def cross_check(source: GridSource, results: Sequence[PointResult], settings: GridSettings,
                n: int, seed: int = 0) -> CrossCheck:
    """Recompute ``n`` random points (seeded) with plain pyhf; the worst relative deviation."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = min(n, len(results))
    idx = sorted(rng.choice(len(results), size=n, replace=False).tolist())
    ref_settings = dataclasses.replace(settings, engine="pyhf")
    worst, worst_name = 0.0, ""
    nan_points = []
    for i in idx:
        ref = pyhf_point(source.background, source.points[i], ref_settings)
        r = results[i]
        values = [(r.cls_observed, ref.cls_observed),
                  *zip(r.cls_expected, ref.cls_expected, strict=True)]
        if settings.limits and r.expected_limits and ref.expected_limits:
            values += [(r.observed_limit or math.nan, ref.observed_limit or math.nan),
                       *zip(r.expected_limits, ref.expected_limits, strict=True)]
        if any(math.isnan(b) for _, b in values):
            nan_points.append(r.name)
        dev = max(_rel(a, b) for a, b in values)
        log.info("cross-check %s: worst relative deviation %.3g", r.name, dev)
        if dev >= worst:
            worst, worst_name = dev, r.name
    return CrossCheck(tuple(results[i].name for i in idx), worst, worst_name, tuple(nan_points))


def run_grid_step(req: GridRequest, progress: GridProgress | None = None) -> GridOutcome:
    """Load, evaluate (resuming ``OUT/points.jsonl``), write the table, contour and HEPData.

    Raises:
        StatsError: For bad inputs (file, region, pattern, contour parameters), before any
            point is computed where possible.
    """
    t0 = time.perf_counter()
    source = req.source if req.source is not None else load_grid_source(req.inputs)
    source = source.selected(req.select, req.limit_points)
    source = with_parameters(source, req.pattern)
    if not source.points:
        raise StatsError(f"{source.label}: no signal points to evaluate")
    params = sorted({k for p in source.points for k in p.parameters})
    for what, name in (("--x", req.x), ("--y", req.y), *(("--fix", k) for k in req.fix)):
        if name is not None and name not in params:
            valid = ", ".join(params) if params else "none (give --pattern)"
            raise StatsError(f"{what} {name}: not a parameter of the points; parameters: "
                             f"{valid}")
    if (req.x is None) != (req.y is None):
        raise StatsError("give both --x and --y for the contour")
    out = Path(req.output_dir)
    check_output_dir(out, "grid output folder")
    with output_errors(out, "grid output folder"):
        out.mkdir(parents=True, exist_ok=True)
    store = PointStore(out / STORE_NAME)
    computed = 0

    def count(done: int, total: int, name: str) -> None:
        # every computed point is reported, a stored one or not (a failed dask task's)
        nonlocal computed
        computed += 1
        if progress is not None:
            progress(done, total, name)

    results = run_grid(source, req.settings, store=store, executor=req.executor,
                       workers=req.workers, scheduler=req.scheduler, progress=count)
    reused = len(source.points) - computed
    files: dict[str, Path] = {"store": out / STORE_NAME}
    meta = {"source": source.label, "background_digest": source.background_digest,
            "settings": req.settings.key(), "pattern": req.pattern}
    write_text_atomic(out / "points.csv", table_csv(results))
    write_text_atomic(out / "points.json", table_json(results, meta))
    files["csv"] = out / "points.csv"
    files["json"] = out / "points.json"
    contour = None
    if req.x is not None and req.y is not None:
        from recastkit.report.contour import plot_contour, write_contour_json

        contour = exclusion_contour(results, req.x, req.y, fix=req.fix,
                                    level=1.0 - req.settings.cl)
        files["contour_json"] = write_contour_json(out / "contour.json", contour)
        files["contour_png"] = plot_contour(out / "contour.png", contour, labels=req.labels,
                                            title=source.label.rsplit("/", 1)[-1])
    if req.hepdata:
        from recastkit.report.hepdata import write_submission

        names, _ = table_columns(results)
        order = [n for n in (req.x, req.y) if n] + [n for n in names if n not in (req.x, req.y)]
        files["hepdata"] = write_submission(
            out / "hepdata", results, contour, parameters=order, labels=req.labels,
            description=f"Source: {source.label.rsplit('/', 1)[-1]}.")
    check = None
    if req.cross_check > 0:
        check = cross_check(source, results, req.settings, req.cross_check, req.seed)
    return GridOutcome(source.label, tuple(results), files, time.perf_counter() - t0, reused,
                       contour, check)


def source_from_histograms(signals: Sequence[str], *, backgrounds: Sequence[str] = (),
                           mock_background: bool = False, data: str | None = None,
                           toy_data: bool = False, seed: int = 42, rebin: int = 1,
                           xsec_rel_unc: tuple[float, float] | None = None,
                           lumi_rel_unc: float | None = None) -> GridSource:
    """A grid from scaled signal histograms of recastkit runs over one background and data.

    Each signal histogram (``path[:HIST]``, the output of ``recastkit scale``) becomes the
    model ``recastkit fit`` builds with the same backgrounds and data; the first model is
    the grid's base workspace and every point is the JSON Patch from it to its own model
    (``jsonpatch.make_patch``), so the runner, the store and the engines treat these points
    as any published grid. Point names are the files' stems.

    Raises:
        StatsError: For a missing or unreadable histogram, different binnings, or an
            inconsistent background/data choice (as ``recastkit fit``).
    """
    import jsonpatch
    import numpy as np

    from recastkit import stats
    from recastkit.stats.gridinputs import SignalPoint, digest
    from recastkit.stats.inputs import validate_samples
    from recastkit.workflow.fit import load_hist

    if not signals:
        raise StatsError("give at least one signal histogram")
    if bool(backgrounds) == mock_background:
        raise StatsError("give either background histograms (--background) or "
                         "--mock-background")
    if (data is not None) == toy_data:
        raise StatsError("give either a data histogram (--data) or --toy-data")
    read_bkgs = []
    for i, spec in enumerate(backgrounds):
        h, _, label = load_hist(spec, "background")
        name = "background" if len(backgrounds) == 1 else f"background_{i + 1}"
        read_bkgs.append(stats.BinnedSample.from_hist(h, name, label))
    observed = None
    if data is not None:
        h, _, label = load_hist(data, "data")
        observed = stats.BinnedSample.from_hist(h, "data", label)
    workspaces: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for spec in signals:
        h, _, label = load_hist(spec, "signal")
        signal = stats.BinnedSample.from_hist(h, "signal", label)
        validate_samples(signal, read_bkgs, observed)
        rng = np.random.default_rng(seed)  # the same mock background and toys for every point
        bkgs = [stats.mock_background(signal.rebinned(rebin).edges, rng)] if mock_background \
            else []
        bkgs += [b.rebinned(rebin) for b in read_bkgs]
        inputs = stats.prepare_inputs(signal.rebinned(rebin), bkgs,
                                      None if observed is None else observed.rebinned(rebin),
                                      rng=rng, xsec_rel_unc=xsec_rel_unc,
                                      lumi_rel_unc=lumi_rel_unc)
        name = Path(spec.split(":")[0] if ":" in spec and not Path(spec).exists()
                    else spec).stem
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}_{seen[name]}"
        workspaces.append((name, stats.build_workspace(stats.build_search_model(inputs))))
    base = workspaces[0][1]
    points = []
    for name, ws in workspaces:
        ops = jsonpatch.make_patch(base, ws).patch
        points.append(SignalPoint(name, tuple(ops), digest(ops)))
    label = f"{len(signals)} signal histograms over {', '.join(backgrounds) or 'mock'}"
    return GridSource(base, digest(base), tuple(points), label)
