"""The fit step: signal, backgrounds and data to a workspace, CLs scan and limits."""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import hist

from recastkit._files import check_output_dir, output_errors
from recastkit.exceptions import MissingObjectError, StatsError
from recastkit.io.hists import read_hists_and_metadata, split_spec
from recastkit.units import CrossSection, Luminosity

if TYPE_CHECKING:
    from recastkit.stats import BinnedSample, LimitResult, SearchInputs

from recastkit.workflow.normalization import DEFAULT_HIST

log = logging.getLogger(__name__)

#: Value of :attr:`FitRequest.xsec_rel_unc` / ``lumi_rel_unc`` meaning "from the ledger".
FROM_METADATA: Literal["from-catalog"] = "from-catalog"


@dataclass(frozen=True)
class FitRequest:
    """Inputs and settings of :func:`run_fit`.

    Attributes:
        signal: Scaled signal histogram, ``path[:HIST]`` (output of the scale step).
        output: Output directory (``workspace.json``, ``limit.json``, ``hists.png``,
            ``limit.png``).
        backgrounds: Background histograms ``path[:HIST]``.
        mock_background: Use the tutorial's mock background (50 000 events, exponential in
            m_jj with decay constant 150 GeV) instead.
        data: Observed data histogram ``path[:HIST]``.
        toy_data: Use Poisson toy data drawn from the background instead.
        seed: Seed of ``numpy.random.default_rng`` for the mock background and the toy data.
        xsec_rel_unc: Signal σ normalization uncertainty ``(up, down)``, or
            :data:`FROM_METADATA` for the ledger's catalog values, or None.
        lumi_rel_unc: Relative luminosity uncertainty, :data:`FROM_METADATA`, or None.
        xsec: Reference σ × BR of the μ = 1 signal (default: σ × k from the ledger).
        lumi: Luminosity for the plot label (default: from the ledger).
        mu_max: Upper end of the μ scan (None: automatic).
        n_points: Number of scan points.
        cl: Confidence level of the upper limits (0.95: where CLs = 0.05).
        test_stat: ``"qtilde"`` or ``"q"``.
        rebin: Merge this many adjacent bins of every input first.
        significance: Also compute the discovery significance.
        workers: Processes for the CLs scan (numpy backend only).
        backend: pyhf tensor backend: ``numpy`` (default) or ``jax`` (exact gradients,
            much faster for models with many bins; ``pip install recastkit[jax]``).
        plots: Render ``hists.png`` and ``limit.png`` (default True).
    """

    signal: str
    output: Path
    backgrounds: tuple[str, ...] = ()
    mock_background: bool = False
    data: str | None = None
    toy_data: bool = False
    seed: int = 42
    xsec_rel_unc: tuple[float, float] | Literal["from-catalog"] | None = None
    lumi_rel_unc: float | Literal["from-catalog"] | None = None
    xsec: CrossSection | None = None
    lumi: Luminosity | None = None
    mu_max: float | None = None
    n_points: int = 41
    cl: float = 0.95
    test_stat: str = "qtilde"
    rebin: int = 1
    significance: bool = False
    workers: int = 1
    backend: str = "numpy"
    plots: bool = True


@dataclass(frozen=True)
class FitOutcome:
    """What :func:`run_fit` produced.

    Attributes:
        result: The limits, scan and settings.
        inputs: The validated signal, backgrounds and data that entered the model.
        files: The written files (workspace, result JSON, two plots).
        lumi_ifb: Luminosity used in the plot label, if known.
    """

    result: LimitResult
    inputs: SearchInputs
    files: tuple[Path, ...]
    lumi_ifb: float | None


def load_hist(spec: str, role: str = "input") -> tuple[hist.Hist, dict[str, Any], str]:
    """Read one histogram and its file's metadata.

    Without a name, the file's only histogram or :data:`DEFAULT_HIST` is taken.

    Returns:
        ``(histogram, metadata, "path:name")``.
    """
    from recastkit.io.root import missing_object_error

    path, name = split_spec(spec)
    hists, meta = read_hists_and_metadata(path)
    if name is None:
        if len(hists) == 1:
            name = next(iter(hists))
        elif DEFAULT_HIST in hists:
            name = DEFAULT_HIST
        else:
            msg = (
                f"{path}: {role} file holds {len(hists)} histograms and none is named "
                f"{DEFAULT_HIST!r}; name one as {path}:NAME "
                f"(choices: {', '.join(sorted(hists)) or 'none'})"
            )
            raise MissingObjectError(msg)
    if name not in hists:
        raise missing_object_error(path, "histogram", name, hists)
    return hists[name], meta, f"{path}:{name}"


def _from_ledger(norm: Mapping[str, Any], key: str, label: str, what: str) -> float:
    if norm.get(key) is None:
        msg = (
            f"{label}: no '{key}' in the 'normalization' metadata, needed for the {what} "
            f"'{FROM_METADATA}'; give the value explicitly"
        )
        raise StatsError(msg)
    return float(norm[key])


def _mc_background(sample: BinnedSample, meta: Mapping[str, Any], *,
                   sig_norm: Mapping[str, Any], sig_label: str, lumi_rel: float | None,
                   notes: list[str]) -> BinnedSample:
    """Mark a background normalized by recastkit (its file holds a ledger) as MC scaled to L.

    It then gets the signal's (correlated) luminosity modifier. A luminosity that differs
    from the signal's is reported (warning and a note in the result), never silently mixed.
    Notes name the sample, not its file, so that identical runs give identical results.
    """
    bkg_norm = meta.get("normalization") or {}
    if not bkg_norm:
        return sample  # data-driven: no luminosity modifier
    sig_l, bkg_l = sig_norm.get("lumi_ifb"), bkg_norm.get("lumi_ifb")
    if (sig_l is not None and bkg_l is not None
            and not math.isclose(float(sig_l), float(bkg_l), rel_tol=1e-9)):
        note = (
            f"{sample.name} is normalized to L = {float(bkg_l):.10g} fb^-1 but the signal to "
            f"L = {float(sig_l):.10g} fb^-1 (one luminosity modifier for both)"
        )
        log.warning("%s: %s (signal %s)", sample.source, note, sig_label)
        notes.append(note)
    if lumi_rel is not None:
        notes.append(f"{sample.name}: normalized by recastkit (ledger), so it carries the "
                     "signal's luminosity modifier (correlated)")
    return replace(sample, lumi_scaled=True)


def _write_fit_outputs(outdir: Path, workspace: Mapping[str, Any], result: LimitResult, *,
                       inputs: SearchInputs, lumi_ifb: float | None,
                       xsec_ref_fb: float | None, plots: bool = True) -> tuple[Path, ...]:
    """Render all four files (two without ``plots``) into a staging folder, then move each.

    A failure while rendering leaves ``outdir`` untouched; each final move is atomic.
    """
    from recastkit.report import plot_hists, plot_limit
    from recastkit.stats.results import dumps

    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.staging-", dir=outdir.parent))
    names: tuple[str, ...] = ("workspace.json", "limit.json")
    if plots:
        names += ("hists.png", "limit.png")
    try:
        (staging / "workspace.json").write_text(dumps(workspace), encoding="utf-8")
        result.write_json(staging / "limit.json")
        if plots:
            plot_hists(inputs, staging / "hists.png", lumi_ifb=lumi_ifb, xsec_fb=xsec_ref_fb)
            plot_limit(result, staging / "limit.png", lumi_ifb=lumi_ifb)
        outdir.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(staging / name, outdir / name)
            log.info("wrote %s", outdir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tuple(outdir / name for name in names)


def run_fit(req: FitRequest, progress: Callable[[int, str], None] | None = None
            ) -> FitOutcome:
    """Build the model, scan CLs, compute the limits, write the workspace, JSON and plots.

    The σ × BR limit is μ_up × σ_ref with σ_ref = ``xsec_fb × k_factor`` from the signal
    file's ledger (``normalization`` metadata) or :attr:`FitRequest.xsec`. It is on the same
    σ × BR convention as the catalog value; the filter efficiency is part of the acceptance.
    Every input is validated and the fit is done before anything is written.

    Args:
        req: Inputs and settings.
        progress: Called after each CLs evaluation with the count and a label.

    Raises:
        StatsError, HistogramError: Inconsistent or invalid inputs (nothing is written).
    """
    import numpy as np

    from recastkit import stats
    from recastkit.stats.inputs import validate_samples

    if bool(req.backgrounds) == req.mock_background:
        raise StatsError("give either background histograms or the mock background")
    if (req.data is not None) == req.toy_data:
        raise StatsError("give either a data histogram or ask for toy data")
    sig_hist, meta, sig_label = load_hist(req.signal, "signal")
    norm: Mapping[str, Any] = meta.get("normalization") or {}

    xsec_rel: tuple[float, float] | None = None
    if req.xsec_rel_unc == FROM_METADATA:
        up = _from_ledger(norm, "xsec_rel_unc_up", sig_label, "cross-section uncertainty")
        down = float(norm.get("xsec_rel_unc_down") or up)
        xsec_rel = (up, down)
    elif req.xsec_rel_unc is not None:
        xsec_rel = (float(req.xsec_rel_unc[0]), float(req.xsec_rel_unc[1]))
    lumi_rel: float | None = None
    if req.lumi_rel_unc == FROM_METADATA:
        lumi_rel = _from_ledger(norm, "lumi_rel_unc", sig_label, "luminosity uncertainty")
    elif req.lumi_rel_unc is not None:
        lumi_rel = float(req.lumi_rel_unc)

    notes: list[str] = []
    xsec_ref_fb: float | None = None
    if req.xsec is not None:
        xsec_ref_fb = req.xsec.fb
        notes.append(f"reference σ × BR given by the user: {req.xsec}")
    elif norm.get("xsec_fb") is not None:
        xsec_ref_fb = float(norm["xsec_fb"]) * float(norm.get("k_factor") or 1.0)
        notes.append(
            f"reference σ × BR = xsec_fb × k_factor = {xsec_ref_fb:.6g} fb from the signal's "
            "normalization metadata (filter efficiency is part of the acceptance)"
        )
    else:
        notes.append("no reference cross section (none given and no normalization "
                     "metadata): no σ × BR limit")
    lumi_ifb = req.lumi.ifb if req.lumi is not None else (
        float(norm["lumi_ifb"]) if norm.get("lumi_ifb") is not None else None)

    # Every input is read and validated bin by bin before any rebinning: merging bins
    # first could hide a negative or NaN bin, or a non-integer count, in a sum.
    signal = stats.BinnedSample.from_hist(sig_hist, "signal", sig_label)
    read_bkgs: list[stats.BinnedSample] = []
    for i, spec in enumerate(req.backgrounds):
        h, bkg_meta, label = load_hist(spec, "background")
        name = "background" if len(req.backgrounds) == 1 else f"background_{i + 1}"
        read_bkgs.append(_mc_background(stats.BinnedSample.from_hist(h, name, label), bkg_meta,
                                        sig_norm=norm, sig_label=sig_label, lumi_rel=lumi_rel,
                                        notes=notes))
    data = None
    if req.data is not None:
        h, _, label = load_hist(req.data, "data")
        data = stats.BinnedSample.from_hist(h, "data", label)
    validate_samples(signal, read_bkgs, data)
    check_output_dir(req.output, "fit output folder")
    signal = signal.rebinned(req.rebin)
    data = None if data is None else data.rebinned(req.rebin)
    rng = np.random.default_rng(req.seed)
    backgrounds: list[stats.BinnedSample] = []
    if req.mock_background:
        backgrounds.append(stats.mock_background(signal.edges, rng))
    backgrounds += [b.rebinned(req.rebin) for b in read_bkgs]
    inputs = stats.prepare_inputs(signal, backgrounds, data, rng=rng, xsec_rel_unc=xsec_rel,
                                  lumi_rel_unc=lumi_rel)

    mu_bound = max(10.0, req.mu_max or 0.0)
    lh = stats.make_likelihood(stats.build_search_model(inputs, mu_bound=mu_bound),
                               backend=req.backend)
    settings = {
        "seed": req.seed,
        "signal": sig_label,
        "backgrounds": [b.source for b in backgrounds],
        "data": inputs.data_kind if data is None else data.source,
        "data_kind": inputs.data_kind,
        "xsec_rel_unc": None if xsec_rel is None else list(xsec_rel),
        "lumi_rel_unc": lumi_rel,
        "lumi_ifb": lumi_ifb,
        "rebin": req.rebin,
    }
    result = stats.upper_limit(lh, mu_max=req.mu_max, n_points=req.n_points,
                               cl=req.cl, test_stat=req.test_stat, xsec_ref_fb=xsec_ref_fb,
                               significance=req.significance, workers=req.workers,
                               settings=settings, notes=notes, progress=progress)
    final_bound = float(result.settings["poi_bounds"][1])
    workspace = stats.build_workspace(stats.build_search_model(inputs, mu_bound=final_bound))
    with output_errors(req.output, "fit outputs"):
        files = _write_fit_outputs(Path(req.output), workspace, result, inputs=inputs,
                                   lumi_ifb=lumi_ifb, xsec_ref_fb=xsec_ref_fb,
                                   plots=req.plots)
    return FitOutcome(result=result, inputs=inputs, files=files, lumi_ifb=lumi_ifb)


