"""The fit of several regions at once: each region a channel, shared background normalizations.

A :class:`MultiRegionFitRequest` lists the regions with their signal (optional: a control
region may have none), backgrounds (named, so that the same process in several regions is one
sample) and data. Backgrounds listed in ``free_backgrounds`` get a free normalization factor
``mu_<name>`` shared by all regions, so a control region fixes the background that the signal
region then uses. The signal's theory uncertainties (:mod:`recastkit.workflow.variations`)
become modifiers of the same name in every region (correlated).

Outputs (staged, each moved atomically): ``workspace.json``, ``limit.json`` (with the
best-fit μ and background normalizations, the pre- and post-fit yields per region and sample,
and the theory table in ``settings``), and with plots
``limit.png`` and ``hists_<region>.png`` for each region with a signal.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recastkit._files import check_output_dir, output_errors
from recastkit.exceptions import StatsError
from recastkit.theory import TheoryBand
from recastkit.units import CrossSection, Luminosity
from recastkit.workflow.fit import FROM_METADATA, _from_ledger, load_hist
from recastkit.workflow.variations import TheorySettings, bands_from_file, theory_table

if TYPE_CHECKING:
    from recastkit.stats import LimitResult, RegionInputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionFitInput:
    """One region of a multi-region fit.

    Attributes:
        name: Region (channel) name.
        backgrounds: ``(sample name, path[:HIST])`` per background.
        signal: Scaled signal histogram ``path[:HIST]``, or None (no signal in the region).
        data: Observed data ``path[:HIST]`` (None with :attr:`MultiRegionFitRequest.toy_data`).
        mock_background: Add the tutorial's mock background (sample :attr:`mock_name`).
        mock_name: Sample name of the mock background.
    """

    name: str
    backgrounds: tuple[tuple[str, str], ...] = ()
    signal: str | None = None
    data: str | None = None
    mock_background: bool = False
    mock_name: str = "background"


@dataclass(frozen=True)
class MultiRegionFitRequest:
    """Inputs and settings of :func:`run_multiregion_fit`.

    Attributes:
        regions: The regions.
        output: Output directory.
        free_backgrounds: Background sample names that get a free normalization factor
            ``mu_<name>`` shared across regions.
        toy_data: Draw Poisson toy data from the backgrounds in every region.
        seed: Seed of the mock backgrounds and toys (one generator, regions in order).
        xsec_rel_unc: Signal σ uncertainty ``(up, down)``, :data:`FROM_METADATA` or None.
        lumi_rel_unc: Relative luminosity uncertainty, :data:`FROM_METADATA` or None.
        xsec: Reference σ × BR of the μ = 1 signal (default: σ × k from the ledger).
        lumi: Luminosity for the plot labels (default: from the ledger).
        theory: Signal theory uncertainties from the variation histograms, or None.
        normfactor_bound: Upper bound of the background normalization factors.
        mu_max, n_points, test_stat, cl, significance, workers, backend: As in
            :class:`~recastkit.workflow.fit.FitRequest`.
        rebin: Merge this many adjacent bins in every region.
        plots: Render the plots.
    """

    regions: tuple[RegionFitInput, ...]
    output: Path
    free_backgrounds: tuple[str, ...] = ()
    toy_data: bool = False
    seed: int = 42
    xsec_rel_unc: tuple[float, float] | str | None = None
    lumi_rel_unc: float | str | None = None
    xsec: CrossSection | None = None
    lumi: Luminosity | None = None
    theory: TheorySettings | None = None
    normfactor_bound: float = 10.0
    mu_max: float | None = None
    n_points: int = 41
    test_stat: str = "qtilde"
    cl: float = 0.95
    rebin: int = 1
    significance: bool = False
    workers: int = 1
    backend: str = "numpy"
    plots: bool = True


@dataclass(frozen=True)
class MultiRegionFitOutcome:
    """What :func:`run_multiregion_fit` produced.

    Attributes:
        result: The limits, scan and settings.
        regions: The validated regions that entered the model.
        best_fit: Best-fit values of the free background normalizations (free μ fit).
        theory: Region -> the signal's theory bands there.
        theory_table: ``(headers, rows)`` for the report (region, uncertainty, rule, %).
        files: The written files.
    """

    result: LimitResult
    regions: tuple[RegionInputs, ...]
    best_fit: Mapping[str, float]
    theory: Mapping[str, tuple[TheoryBand, ...]]
    theory_table: tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]
    files: tuple[Path, ...] = field(default=())


def _read(sample: Any, rebin: int, *, data: bool = False) -> Any:
    """Check every bin before merging (a sum could hide a negative, NaN or non-integer bin)."""
    from recastkit.stats.inputs import check_observed, check_sample

    check_sample(sample)
    if data:
        check_observed(sample.values, sample.source or sample.name)
    return sample.rebinned(rebin)


def _uncertainties(req: MultiRegionFitRequest, norm: Mapping[str, Any], label: str
                   ) -> tuple[tuple[float, float] | None, float | None]:
    xsec_rel: tuple[float, float] | None = None
    if req.xsec_rel_unc == FROM_METADATA:
        up = _from_ledger(norm, "xsec_rel_unc_up", label, "cross-section uncertainty")
        xsec_rel = (up, float(norm.get("xsec_rel_unc_down") or up))
    elif isinstance(req.xsec_rel_unc, tuple):
        xsec_rel = (float(req.xsec_rel_unc[0]), float(req.xsec_rel_unc[1]))
    elif req.xsec_rel_unc is not None:
        raise StatsError(f"xsec_rel_unc: expected (up, down) or {FROM_METADATA!r}")
    lumi_rel: float | None = None
    if req.lumi_rel_unc == FROM_METADATA:
        lumi_rel = _from_ledger(norm, "lumi_rel_unc", label, "luminosity uncertainty")
    elif req.lumi_rel_unc is not None:
        lumi_rel = float(req.lumi_rel_unc)
    return xsec_rel, lumi_rel


def run_multiregion_fit(req: MultiRegionFitRequest,
                        progress: Callable[[int, str], None] | None = None
                        ) -> MultiRegionFitOutcome:
    """Build the multi-region model, scan CLs, compute the limits and write the outputs.

    Raises:
        StatsError, HistogramError: Inconsistent or invalid inputs (nothing is written).
        ConfigError, TheoryError: Theory variations that are missing or cannot be combined.
    """
    import numpy as np

    from recastkit import stats

    if not req.regions:
        raise StatsError("a multi-region fit needs at least one region")
    if not any(r.signal for r in req.regions):
        raise StatsError("no region has a signal histogram")
    for r in req.regions:
        if not r.backgrounds and not r.mock_background:
            raise StatsError(f"region {r.name!r}: give background histograms or the mock "
                             "background")
        if (r.data is not None) == req.toy_data:
            raise StatsError(f"region {r.name!r}: give either a data histogram or ask for "
                             "toy data")
    rng = np.random.default_rng(req.seed)
    regions: list[stats.RegionInputs] = []
    bands: dict[str, tuple[TheoryBand, ...]] = {}
    norm: Mapping[str, Any] = {}
    sig_label = ""
    for r in req.regions:
        signal = None
        if r.signal is not None:
            h, meta, label = load_hist(r.signal, f"signal of region {r.name!r}")
            if not sig_label:
                sig_label, norm = label, meta.get("normalization") or {}
            signal = _read(stats.BinnedSample.from_hist(h, "signal", label), req.rebin)
            if req.theory is not None and req.theory.groups:
                bands[r.name] = bands_from_file(label, req.theory, req.rebin)
        bkgs = []
        for name, spec in r.backgrounds:
            h, _, label = load_hist(spec, f"background {name!r} of region {r.name!r}")
            bkgs.append(_read(stats.BinnedSample.from_hist(h, name, label), req.rebin))
        data = None
        if r.data is not None:
            h, _, label = load_hist(r.data, f"data of region {r.name!r}")
            data = _read(stats.BinnedSample.from_hist(h, "data", label), req.rebin, data=True)
        if r.mock_background:
            binned = signal or (bkgs[0] if bkgs else data)
            if binned is None:
                raise StatsError(f"region {r.name!r}: the mock background takes the binning of "
                                 "the region's signal, background or data histogram; the "
                                 "region has none")
            bkgs.insert(0, stats.mock_background(binned.edges, rng, name=r.mock_name))
        regions.append(stats.prepare_region(r.name, signal, bkgs, data, rng=rng,
                                            theory=bands.get(r.name, ())))
    check_output_dir(req.output, "fit output folder")
    xsec_rel, lumi_rel = _uncertainties(req, norm, sig_label)
    xsec_ref_fb: float | None = None
    notes: list[str] = []
    if req.xsec is not None:
        xsec_ref_fb = req.xsec.fb
    elif norm.get("xsec_fb") is not None:
        xsec_ref_fb = float(norm["xsec_fb"]) * float(norm.get("k_factor") or 1.0)
        notes.append(f"reference σ × BR = xsec_fb × k_factor = {xsec_ref_fb:.6g} fb from the "
                     "signal's normalization metadata")
    lumi_ifb = req.lumi.ifb if req.lumi is not None else (
        float(norm["lumi_ifb"]) if norm.get("lumi_ifb") is not None else None)
    split = bool(req.theory and req.theory.split)

    def model(mu_bound: float) -> Any:
        return stats.build_multiregion_model(
            regions, mu_bound=mu_bound, free_backgrounds=req.free_backgrounds,
            normfactor_bound=req.normfactor_bound, xsec_rel_unc=xsec_rel,
            lumi_rel_unc=lumi_rel, theory_split=split)

    lh = stats.make_likelihood(model(max(10.0, req.mu_max or 0.0)), backend=req.backend)
    fitted = stats.best_fit(lh)
    best = {b: fitted[stats.normfactor_name(b)][0] for b in dict.fromkeys(req.free_backgrounds)}
    yields = _yields(lh, fitted, regions)
    table = theory_table(bands)
    settings = {
        "seed": req.seed,
        "regions": [{"name": r.name, "signal": None if r.signal is None else r.signal.source,
                     "backgrounds": [b.source for b in r.backgrounds], "data_kind": r.data_kind}
                    for r in regions],
        "free_backgrounds": list(req.free_backgrounds),
        "best_fit_normfactors": best,
        "best_fit_mu": fitted[lh.poi_name][0],
        "yields": yields,
        "theory": {"normalize": req.theory.normalize if req.theory else None,
                   "split": split, "headers": list(table[0]),
                   "rows": [list(row) for row in table[1]]},
        "xsec_rel_unc": None if xsec_rel is None else list(xsec_rel),
        "lumi_rel_unc": lumi_rel,
        "lumi_ifb": lumi_ifb,
        "rebin": req.rebin,
    }
    result = stats.upper_limit(lh, mu_max=req.mu_max, n_points=req.n_points, cl=req.cl,
                               test_stat=req.test_stat, xsec_ref_fb=xsec_ref_fb,
                               significance=req.significance, workers=req.workers,
                               settings=settings, notes=notes, progress=progress)
    workspace = stats.build_workspace(model(float(result.settings["poi_bounds"][1])))
    with output_errors(req.output, "fit outputs"):
        files = _write(Path(req.output), workspace, result, regions=regions,
                       lumi_ifb=lumi_ifb, xsec_ref_fb=xsec_ref_fb, plots=req.plots)
    return MultiRegionFitOutcome(result, tuple(regions), best, bands, table, files)


def _yields(lh: Any, fitted: Mapping[str, tuple[float, ...]],
            regions: list[RegionInputs]) -> dict[str, Any]:
    """Per region: each sample's pre-fit (initial parameters: μ = 1, normalizations 1) and
    post-fit (the free fit's best values) expected events, and the data."""
    from recastkit.stats.postfit import parameter_vector, sample_yields

    prefit = sample_yields(lh, parameter_vector(lh, {}))
    postfit = sample_yields(lh, parameter_vector(lh, fitted))
    return {r.name: {"prefit": prefit[r.name], "postfit": postfit[r.name],
                     "data": float(sum(r.data))} for r in regions}


def _write(outdir: Path, workspace: Mapping[str, Any], result: LimitResult, *,
           regions: list[RegionInputs], lumi_ifb: float | None, xsec_ref_fb: float | None,
           plots: bool) -> tuple[Path, ...]:
    from recastkit.report import plot_hists, plot_limit
    from recastkit.stats import SearchInputs
    from recastkit.stats.results import dumps

    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.staging-", dir=outdir.parent))
    names = ["workspace.json", "limit.json"]
    try:
        (staging / "workspace.json").write_text(dumps(workspace), encoding="utf-8")
        result.write_json(staging / "limit.json")
        if plots:
            plot_limit(result, staging / "limit.png", lumi_ifb=lumi_ifb)
            names.append("limit.png")
            for r in regions:
                if r.signal is None:
                    continue
                name = f"hists_{r.name}.png"
                plot_hists(SearchInputs(r.signal, r.backgrounds, r.data, r.data_kind),
                           staging / name, lumi_ifb=lumi_ifb, xsec_fb=xsec_ref_fb,
                           region=r.name)
                names.append(name)
        outdir.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(staging / name, outdir / name)
            log.info("wrote %s", outdir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tuple(outdir / name for name in names)
