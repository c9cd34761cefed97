"""The bodies of a run's steps: generate, select, scale, mock background, toy data, fit.

Each function writes its outputs into the directory it is given and returns a JSON-ready
description (stored as the step's ``step.json``); :mod:`recastkit.workflow.run` decides which
steps run (see :mod:`recastkit.workflow.steps` for keys and the cache).

The per-region selection is in one place, :func:`select_step`: it turns a sample's files and
the spec's regions into one histogram file and one cutflow per region. Whatever a region can
say (today: the select step's jets, binning, weights and layout) is interpreted by the
selection layer, so extending regions changes this function only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import hist
import numpy as np

from recastkit.exceptions import ConfigError, RecastkitError, StatsError
from recastkit.scaling import Ledger
from recastkit.selection import CutflowEntry
from recastkit.units import CrossSection, Luminosity
from recastkit.workflow.spec import AnalysisSpec, RegionSpec, SampleSpec

log = logging.getLogger(__name__)

def region_file(region: str) -> str:
    """``<region>.root``: the histograms of one region in a step directory."""
    return f"{region}.root"


# --------------------------------------------------------------------------- generate


def generate_step(sample: SampleSpec, outdir: Path) -> dict[str, Any]:
    """Write the generated events of ``sample`` (``generate:`` in the spec)."""
    from recastkit.io.synthetic import write_signal_sample

    gen = sample.generate
    assert gen is not None
    path = outdir / f"{sample.name}.root"
    written = write_signal_sample(path, gen.events, gen.seed, resonance_gev=gen.resonance_gev,
                                  sum_of_weights=gen.sum_of_weights, objects=gen.objects)
    log.info("%s: generated %d events, %d after the skim", sample.name, written.n_generated,
             written.n_written)
    return {"file": path.name, "n_generated": written.n_generated,
            "n_written": written.n_written, "sum_of_weights": written.sum_of_weights,
            "sum_of_weights_written": written.sum_of_weights_written, "seed": gen.seed}


# --------------------------------------------------------------------------- select


def select_step(sample: SampleSpec, files: Sequence[Path], regions: Sequence[RegionSpec],
                outdir: Path, *, executor: str = "iterative", workers: int | None = None,
                scheduler: str | None = None) -> dict[str, Any]:
    """Select the events of one sample in every region.

    Writes ``<region>.root`` (+ ``.json`` twin) per region: the histograms, the cutflow and
    the bookkeeping Σw as metadata (the scale step's input). Data files are selected with
    unit weights and no bookkeeping.

    Returns:
        ``{"regions": {name: {"file", "cutflow", "sum_of_weights", "sum_of_weights_source",
        "n_events"}}, "files": [...]}``.
    """
    from recastkit.processing import run_selection, write_selection
    from recastkit.regions import AnalysisConfig, combine_regions

    is_data = sample.kind == "data"
    out: dict[str, Any] = {}
    processed: list[str] = []
    # regions written in the vocabulary with the same objects, weights and variations are
    # selected together, in one pass over the events, and split into one file per region
    combined = combine_regions({r.name: r.selection for r in regions})
    split: dict[str, Any] = {}
    if combined is not None:
        if is_data:
            combined = replace(combined, input=replace(combined.input, unweighted=True))
        together = run_selection(list(files), combined, executor=executor, workers=workers,
                                 scheduler=scheduler, dataset=sample.dataset,
                                 bookkeeping=not is_data, progress=False)
        split = together.split({r.name: r.selection for r in regions
                                if isinstance(r.selection, AnalysisConfig)})
    for region in regions:
        config = region.selection
        if is_data:
            config = replace(config, input=replace(config.input, unweighted=True))
        result: Any = split.get(region.name)
        if result is None:
            result = run_selection(list(files), config, executor=executor, workers=workers,
                                   scheduler=scheduler, dataset=sample.dataset,
                                   bookkeeping=not is_data, progress=False)
        root_path, _ = write_selection(result, outdir / region_file(region.name))
        processed = list(result.files)
        out[region.name] = {
            "file": root_path.name,
            "cutflow": [{"name": c.name, "n_events": c.n_events,
                         "sum_of_weights": c.sum_of_weights,
                         "sum_of_weights_squared": c.sum_of_weights_squared}
                        for c in result.cutflow],
            "sum_of_weights": result.sum_of_weights.sum_of_weights,
            "sum_of_weights_source": result.sum_of_weights.source,
            "sum_of_weights_error": result.sum_of_weights.error,
            "n_events": result.n_events,
            "layout": result.layout,
        }
    return {"regions": out, "files": processed}


def cutflows_from_info(info: Mapping[str, Any]) -> dict[str, tuple[CutflowEntry, ...]]:
    """Region -> cutflow entries, from a select step's description."""
    return {
        name: tuple(CutflowEntry(c["name"], int(c["n_events"]), float(c["sum_of_weights"]),
                                 float(c["sum_of_weights_squared"])) for c in r["cutflow"])
        for name, r in info.get("regions", {}).items()
    }


# --------------------------------------------------------------------------- scale


def normalization_request(spec: AnalysisSpec, sample: SampleSpec,
                          catalog_path: Path | None) -> Any:
    """The :class:`~recastkit.workflow.normalization.NormalizationRequest` of an MC sample."""
    from recastkit.workflow.normalization import NormalizationRequest

    over = spec.overrides_for(sample.name)
    norm = spec.normalization
    return NormalizationRequest(
        dataset=sample.dataset, etag=over.etag, xsec=over.xsec, filter_eff=over.filter_eff,
        k_factor=over.k_factor, lumi=over.lumi or norm.lumi, lumi_rel_unc=norm.lumi_rel_unc,
        sum_of_weights=over.sumw, catalog_path=catalog_path, xsec_source=over.xsec_source,
    )


def _record_dict(rec: Any) -> dict[str, Any]:
    return {
        "dsid": rec.dsid, "etag": rec.etag, "physics_short": rec.physics_short,
        "xsec": str(rec.xsec), "xsec_fb": rec.xsec_fb, "filter_eff": rec.filter_eff,
        "k_factor": rec.k_factor, "effective_xsec_fb": rec.effective_xsec_fb,
        "rel_unc_up": rec.rel_unc_up, "rel_unc_down": rec.rel_unc_down,
        "source": str(rec.source), "source_location": rec.source.location,
        "source_line": rec.source.line,
    }


def catalog_records(req: Any, ledger: Ledger) -> tuple[list[dict[str, Any]], list[str]]:
    """The catalog record the ledger used (if any) and the conflicts among the sample's rows.

    Returns:
        ``(records used, conflict messages)``.
    """
    uses_catalog = any(f.source.startswith("catalog") for f in ledger.factors)
    if not uses_catalog or req.dataset is None:
        return [], []
    from recastkit.metadata import Catalog
    from recastkit.metadata.checks import cross_check

    text = str(req.dataset).strip()
    key: int | str = int(text) if text.isdigit() else text
    catalog = Catalog(req.catalog_path)
    try:
        used = catalog.lookup(key, etag=req.etag, source=req.xsec_source)
        conflicts = [c.message for c in cross_check(catalog.query(key))]
    finally:
        catalog.close()
    return [_record_dict(used)], conflicts


def scale_step(spec: AnalysisSpec, sample: SampleSpec, select_dir: Path,
               regions: Sequence[str], outdir: Path, *, catalog_path: Path | None
               ) -> dict[str, Any]:
    """Scale an MC sample's region histograms by σ·ε·k·L/Σw (one ledger for all regions)."""
    from recastkit.workflow.normalization import scale_file

    req = normalization_request(spec, sample, catalog_path)
    ledger: Ledger | None = None
    yields: dict[str, dict[str, float]] = {}
    for region in regions:
        res = scale_file(select_dir / region_file(region), outdir / region_file(region), req)
        ledger = res.ledger
        yields[region] = dict(res.yields)
    assert ledger is not None
    records, conflicts = catalog_records(req, ledger)
    return {"ledger": ledger.to_dict(), "yields": yields, "catalog_records": records,
            "conflicts": conflicts, "request": {
                "dataset": req.dataset, "overrides": spec.overrides_for(sample.name).to_dict()}}


def ledger_from_dict(doc: Mapping[str, Any]) -> Ledger:
    """Rebuild a :class:`Ledger` from :meth:`Ledger.to_dict` (units as recorded)."""
    factors = {f["name"]: f for f in doc["factors"]}
    xs, lu = factors["cross section"], factors["luminosity"]
    return Ledger(
        xsec=CrossSection(float(xs["value"]), xs["unit"]),
        filter_eff=float(doc["filter_eff"]), k_factor=float(doc["k_factor"]),
        lumi=Luminosity(float(lu["value"]), lu["unit"]),
        sum_of_weights=float(doc["sum_of_weights"]),
        xsec_source=xs["source"], filter_eff_source=factors["filter efficiency"]["source"],
        k_factor_source=factors["k-factor"]["source"], lumi_source=lu["source"],
        sum_of_weights_source=factors["sum of weights"]["source"], dataset=doc.get("dataset"),
        xsec_rel_unc_up=doc.get("xsec_rel_unc_up"),
        xsec_rel_unc_down=doc.get("xsec_rel_unc_down"), lumi_rel_unc=doc.get("lumi_rel_unc"),
    )


# --------------------------------------------------------------------------- mock and toy


def observable_axis(region: RegionSpec, observable: str) -> tuple[int, float, float, str]:
    """``(bins, low, high, label)`` of a region's observable."""
    for h in region.selection.histogram_specs:
        if h.name == observable:
            return h.nbins, h.low, h.high, h.label
    names = ", ".join(h.name for h in region.selection.histogram_specs)
    msg = f"region {region.name!r} has no histogram {observable!r} (valid choices: {names})"
    raise ConfigError(msg)


def _weighted(values: np.ndarray, variances: np.ndarray, axis: tuple[int, float, float, str],
              ) -> hist.Hist:
    bins, low, high, label = axis
    h = hist.Hist(hist.axis.Regular(bins, low, high, label=label),
                  storage=hist.storage.Weight())
    h.view(flow=False).value = values
    h.view(flow=False).variance = variances
    return h


def mock_step(sample: SampleSpec, regions: Sequence[RegionSpec], observable: str,
              outdir: Path) -> dict[str, Any]:
    """The tutorial's mock background in each region's observable binning (unit weights)."""
    from recastkit.io.hists import write_hists
    from recastkit.stats import mock_background

    m = sample.mock
    assert m is not None
    yields: dict[str, float] = {}
    for region in regions:
        axis = observable_axis(region, observable)
        edges = np.linspace(axis[1], axis[2], axis[0] + 1)
        b = mock_background(edges.tolist(), np.random.default_rng(m.seed), n_events=m.events,
                            decay_gev=m.decay_gev, name=sample.name)
        values = np.asarray(b.values, dtype=float)
        write_hists(outdir / region_file(region.name), {observable: _weighted(values, values,
                                                                              axis)},
                    {"mock_background": {"seed": m.seed, "events": m.events,
                                         "decay_gev": m.decay_gev}, "source": b.source})
        yields[region.name] = float(values.sum())
    return {"yields": {r: {observable: y} for r, y in yields.items()},
            "source": f"mock (N={m.events}, exponential with decay {m.decay_gev:g} GeV, "
                      f"seed {m.seed})"}


def toy_step(sample: SampleSpec, background_files: Mapping[str, Sequence[Path]],
             observable: str, outdir: Path) -> dict[str, Any]:
    """Poisson toy data of the total background in each region (``numpy`` seeded).

    Args:
        sample: The data sample (``toy``).
        background_files: Region -> the background histogram files of that region.
        observable: The histogram name.
        outdir: Where ``<region>.root`` is written.
    """
    from recastkit.io.hists import read_hist, write_hists

    assert sample.toy_seed is not None
    rng = np.random.default_rng(sample.toy_seed)
    yields: dict[str, dict[str, float]] = {}
    for region, files in background_files.items():
        total: hist.Hist | None = None
        for f in files:
            h = read_hist(f, observable)
            total = h.copy() if total is None else total + h
        assert total is not None
        expected = np.clip(np.asarray(total.values(), dtype=float), 0.0, None)
        counts = rng.poisson(expected).astype(float)
        ax = total.axes[0]
        h_data = hist.Hist(ax, storage=hist.storage.Weight())
        h_data.view(flow=False).value = counts
        h_data.view(flow=False).variance = counts
        write_hists(outdir / region_file(region), {observable: h_data},
                    {"toy_data": {"seed": sample.toy_seed,
                                  "expected_total": float(expected.sum())}})
        yields[region] = {observable: float(counts.sum())}
    return {"yields": yields, "source": f"Poisson toy of the total background "
                                        f"(seed {sample.toy_seed})"}


# --------------------------------------------------------------------------- fit


def _uncertainties(spec: AnalysisSpec) -> tuple[Any, Any]:
    """The fit's (σ, L) relative uncertainties from the interpretation section: a number,
    ``"from-catalog"`` (taken from the ledger) or None; a single σ number is symmetric."""
    from recastkit.workflow.fit import FROM_METADATA

    def unc(value: float | str | None) -> Any:
        return FROM_METADATA if value == "from-catalog" else value

    it = spec.interpretation
    xsec_unc = unc(it.xsec_unc)
    if isinstance(xsec_unc, float):
        xsec_unc = (xsec_unc, xsec_unc)
    return xsec_unc, unc(it.lumi_unc)


def fit_step(spec: AnalysisSpec, signal_file: Path, background_files: Sequence[Path],
             data_file: Path, outdir: Path, *, workers: int = 1,
             progress: Callable[[int, str], None] | None = None) -> dict[str, Any]:
    """Fit one region: CLs scan and limits; writes ``fit/`` (workspace, limit.json, plots)."""
    from recastkit.workflow.fit import FitRequest, run_fit

    it = spec.interpretation
    obs = it.observable
    xsec_unc, lumi_unc = _uncertainties(spec)
    req = FitRequest(
        signal=f"{signal_file}:{obs}", output=outdir / "fit",
        backgrounds=tuple(f"{b}:{obs}" for b in background_files),
        data=f"{data_file}:{obs}", seed=0, xsec_rel_unc=xsec_unc,
        lumi_rel_unc=lumi_unc, mu_max=it.mu_max, n_points=it.n_points,
        test_stat=it.test_stat, rebin=it.rebin, significance=it.significance,
        workers=workers, backend=it.backend, cl=it.cl, plots=spec.outputs.plots,
    )
    try:
        outcome = run_fit(req, progress=progress)
    except RecastkitError:
        raise
    except Exception as exc:  # the statistics engine's own failures (pyhf, scipy)
        msg = (
            f"the fit of {signal_file.parent.name} in {signal_file.stem} ({obs}) failed: "
            f"{type(exc).__name__}: {exc}; check the yields (a signal many orders of magnitude "
            "above the background puts the minimizer out of range: try mu_max or rebin in "
            "the spec's interpretation)"
        )
        raise StatsError(msg) from exc
    return {"limit": outcome.result.to_dict(), "files": [f"fit/{p.name}" for p in outcome.files],
            "lumi_ifb": outcome.lumi_ifb}


def fit_regions_step(spec: AnalysisSpec, signal_files: Mapping[str, Path],
                     background_files: Sequence[tuple[str, Mapping[str, Path]]],
                     data_files: Mapping[str, Path], outdir: Path, *, workers: int = 1,
                     progress: Callable[[int, str], None] | None = None) -> dict[str, Any]:
    """Fit the interpretation's regions together (:mod:`recastkit.workflow.multiregion`):
    each region a channel, the free backgrounds' normalizations shared, the signal's theory
    uncertainties as modifiers; writes ``fit/``."""
    from recastkit.workflow.multiregion import (
        MultiRegionFitRequest,
        RegionFitInput,
        run_multiregion_fit,
    )

    it = spec.interpretation
    obs = it.observable
    xsec_unc, lumi_unc = _uncertainties(spec)
    regions = tuple(
        RegionFitInput(
            name=r,
            backgrounds=tuple((name, f"{files[r]}:{obs}") for name, files in background_files
                              if r in files),
            signal=f"{signal_files[r]}:{obs}" if r in signal_files else None,
            data=f"{data_files[r]}:{obs}")
        for r in it.regions)
    req = MultiRegionFitRequest(
        regions=regions, output=outdir / "fit", free_backgrounds=it.free_backgrounds,
        seed=0, xsec_rel_unc=xsec_unc, lumi_rel_unc=lumi_unc, theory=it.theory,
        mu_max=it.mu_max, n_points=it.n_points, test_stat=it.test_stat, cl=it.cl,
        rebin=it.rebin, significance=it.significance, workers=workers, backend=it.backend,
        plots=spec.outputs.plots)
    try:
        outcome = run_multiregion_fit(req, progress=progress)
    except RecastkitError:
        raise
    except Exception as exc:  # the statistics engine's own failures (pyhf, scipy)
        msg = (f"the fit of regions {', '.join(it.regions)} ({obs}) failed: "
               f"{type(exc).__name__}: {exc}")
        raise StatsError(msg) from exc
    return {"limit": outcome.result.to_dict(), "files": [f"fit/{p.name}" for p in outcome.files],
            "lumi_ifb": outcome.result.settings.get("lumi_ifb"),
            "best_fit_normfactors": dict(outcome.best_fit),
            "theory_table": {"headers": list(outcome.theory_table[0]),
                             "rows": [list(r) for r in outcome.theory_table[1]]}}


def limit_from_dict(doc: Mapping[str, Any]) -> Any:
    """Rebuild a :class:`~recastkit.stats.results.LimitResult` from its ``to_dict``."""
    import dataclasses

    from recastkit.stats.results import LimitResult

    names = {f.name for f in dataclasses.fields(LimitResult)}
    kw: dict[str, Any] = {k: v for k, v in doc.items() if k in names}

    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, list) else v

    for k in ("expected_mu", "mu_values", "cls_observed", "cls_expected", "expected_xsec_fb",
              "notes"):
        if kw.get(k) is not None:
            kw[k] = tup(kw[k])
    for k in ("observed_mu", "cl"):
        if kw.get(k) is None and k == "observed_mu":
            kw[k] = float("nan")
    return LimitResult(**kw)


def relpath(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when below it, else absolute."""
    try:
        return os.path.relpath(path, start) if path.is_relative_to(start) else str(path)
    except ValueError:
        return str(path)
