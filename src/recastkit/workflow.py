"""The analysis chain: resolve every normalization factor, scale histograms, run the demo.

Resolution rules for the :class:`~recastkit.scaling.Ledger` (each choice is recorded as the
factor's source, and nothing is picked silently):

- **σ, ε, k**: a value given by the user wins; otherwise the catalog record of the dataset
  (DSID, with the e-tag of a full dataset name selecting the row). Several disagreeing catalog
  records raise :class:`~recastkit.exceptions.AmbiguousMetadataError` listing them; choose one
  with ``xsec_source``. When σ is given by hand and ε or k are not, they are taken as 1 and the
  ledger says so.
- **L**: the user's value wins; otherwise the luminosity of the dataset's MC campaign (from its
  r-tag).
- **Σw**: an explicit value wins; then the bookkeeping metadata of the given files
  (CutBookkeepers, ``Runs`` tree, ...); then the sum recorded by the selection step in the
  input's metadata. The sum of the event weights left in a derivation is never used implicitly.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import hist

from recastkit import __version__
from recastkit.exceptions import MissingObjectError, ScalingError, StatsError
from recastkit.io.hists import read_hists_and_metadata, split_spec, write_hists
from recastkit.scaling import Ledger, scale_hist
from recastkit.units import CrossSection, Luminosity

if TYPE_CHECKING:
    from recastkit.stats import LimitResult, SearchInputs

log = logging.getLogger(__name__)

#: Histogram scaled by default when a selection output holds several.
DEFAULT_HIST = "h_mjj_kin"


@dataclass(frozen=True)
class NormalizationRequest:
    """What the user asked for; ``None`` means "resolve it from metadata".

    Attributes:
        dataset: Dataset name (full ATLAS name, or a DSID as text) for catalog and campaign.
        etag: Evgen tag selecting a catalog row (a full dataset name carries its own).
        xsec: Cross section given by hand.
        filter_eff: Filter efficiency given by hand.
        k_factor: k-factor given by hand.
        lumi: Integrated luminosity given by hand.
        lumi_rel_unc: Relative luminosity uncertainty given by hand.
        sum_of_weights: Σw given by hand.
        sumw_files: Files whose bookkeeping metadata gives Σw.
        catalog_path: Catalog database (default: ``RECASTKIT_CATALOG`` or the user data dir).
        xsec_source: Restrict the catalog look-up to records from this source (file name).
    """

    dataset: str | None = None
    etag: str | None = None
    xsec: CrossSection | None = None
    filter_eff: float | None = None
    k_factor: float | None = None
    lumi: Luminosity | None = None
    lumi_rel_unc: float | None = None
    sum_of_weights: float | None = None
    sumw_files: tuple[Path, ...] = ()
    catalog_path: Path | None = None
    xsec_source: str | None = None


@dataclass(frozen=True)
class ScaleResult:
    """The outcome of :func:`scale_file`.

    Attributes:
        ledger: Every factor with its source, and the scale.
        output: The written file.
        histograms: Names of the scaled histograms.
        yields: Scaled sum of each histogram's in-range bins (expected events).
    """

    ledger: Ledger
    output: Path
    histograms: tuple[str, ...]
    yields: Mapping[str, float] = field(default_factory=dict)


def _catalog_record(req: NormalizationRequest, key: int | str) -> Any:
    from recastkit.metadata import Catalog

    catalog = Catalog(req.catalog_path)
    return catalog.lookup(key, etag=req.etag, source=req.xsec_source)


def _dataset_key(req: NormalizationRequest, metadata: Mapping[str, Any]) -> int | str | None:
    if req.dataset:
        text = req.dataset.strip()
        return int(text) if text.isdigit() else text
    if metadata.get("dataset"):
        return str(metadata["dataset"])
    if metadata.get("dsid") is not None:
        return int(metadata["dsid"])
    return None


def _resolve_xsec(req: NormalizationRequest, key: int | str | None
                  ) -> tuple[CrossSection, str, float, str, float, str, float | None, float | None]:
    record = None
    missing = req.xsec is None or req.filter_eff is None or req.k_factor is None
    if key is not None and missing:
        record = _catalog_record(req, key)
    if req.xsec is not None:
        xsec, xsec_src = req.xsec, "user value"
    elif record is not None:
        xsec, xsec_src = record.xsec, f"catalog {record.source}"
    else:
        msg = (
            "no cross section: give one with a unit (--xsec '44.837 fb'), or name the sample "
            "(--dataset NAME or DSID) with a catalog that holds it (recastkit xsec import TABLE)"
        )
        raise ScalingError(msg)

    def pick(value: float | None, attr: str) -> tuple[float, str]:
        if value is not None:
            return float(value), "user value"
        if record is not None:
            return float(getattr(record, attr)), f"catalog {record.source}"
        log.info("%s not given and no catalog record: assuming 1", attr)
        return 1.0, "assumed 1 (not given, no catalog record)"

    eff, eff_src = pick(req.filter_eff, "filter_eff")
    kfac, k_src = pick(req.k_factor, "k_factor")
    unc_up = getattr(record, "rel_unc_up", None) if req.xsec is None else None
    unc_down = getattr(record, "rel_unc_down", None) if req.xsec is None else None
    return xsec, xsec_src, eff, eff_src, kfac, k_src, unc_up, unc_down


def _resolve_lumi(req: NormalizationRequest, metadata: Mapping[str, Any]
                  ) -> tuple[Luminosity, str, float | None]:
    if req.lumi is not None:
        return req.lumi, "user value", req.lumi_rel_unc
    dataset = req.dataset or metadata.get("dataset")
    if dataset and not str(dataset).strip().isdigit():
        from recastkit.lumi import lumi_for_dataset

        rec = lumi_for_dataset(str(dataset))
        years = "+".join(map(str, rec.years))
        rel = req.lumi_rel_unc if req.lumi_rel_unc is not None else rec.rel_unc
        return rec.lumi, f"{rec.calibration} {years} ({rec.source})", rel
    msg = (
        "no luminosity: give one with a unit (--lumi '140.1 fb^-1'), or a full dataset name "
        "(--dataset) whose r-tag names the MC campaign"
    )
    raise ScalingError(msg)


def _resolve_sumw(req: NormalizationRequest, metadata: Mapping[str, Any]) -> tuple[float, str]:
    if req.sum_of_weights is not None:
        return float(req.sum_of_weights), "user value"
    if req.sumw_files:
        from recastkit.bookkeeping import sum_of_weights_files

        report = sum_of_weights_files(list(req.sumw_files))
        return report.total.sum_of_weights, report.total.source
    if metadata.get("sum_of_weights") is not None:
        source = metadata.get("sum_of_weights_source") or "selection output metadata"
        return float(metadata["sum_of_weights"]), f"{source} (recorded by the selection step)"
    msg = (
        "no sum of generator weights: give --sumw X or --sumw-from FILE... (bookkeeping "
        "metadata of the un-skimmed sample)"
    )
    if metadata.get("sum_of_weights_error"):
        msg += f"; the selection step could not read it: {metadata['sum_of_weights_error']}"
    raise ScalingError(msg)


def resolve_normalization(req: NormalizationRequest,
                          metadata: Mapping[str, Any] | None = None) -> Ledger:
    """Build the ledger from a request and the input's metadata (see the module docstring).

    Args:
        req: What the user gave.
        metadata: Metadata recorded next to the input histograms by the selection step.

    Returns:
        The ledger with every factor and its source.

    Raises:
        ScalingError: A factor cannot be resolved (the message says how to give it).
        MissingMetadataError, AmbiguousMetadataError: From the catalog.
    """
    meta = dict(metadata or {})
    key = _dataset_key(req, meta)
    xsec, xsec_src, eff, eff_src, kfac, k_src, unc_up, unc_down = _resolve_xsec(req, key)
    lumi, lumi_src, lumi_unc = _resolve_lumi(req, meta)
    sumw, sumw_src = _resolve_sumw(req, meta)
    dataset = req.dataset or meta.get("dataset")
    return Ledger(
        xsec=xsec, filter_eff=eff, k_factor=kfac, lumi=lumi, sum_of_weights=sumw,
        xsec_source=xsec_src, filter_eff_source=eff_src, k_factor_source=k_src,
        lumi_source=lumi_src, sum_of_weights_source=sumw_src,
        dataset=None if dataset is None else str(dataset),
        xsec_rel_unc_up=unc_up, xsec_rel_unc_down=unc_down, lumi_rel_unc=lumi_unc,
    )


def _pick_hists(hists: Mapping[str, hist.Hist], name: str | None, where: str
                ) -> dict[str, hist.Hist]:
    from recastkit.io.root import missing_object_error

    if name is not None:
        if name not in hists:
            raise missing_object_error(where, "histogram", name, hists)
        return {name: hists[name]}
    return dict(hists)


def scale_file(
    input_spec: str | os.PathLike[str],
    output: str | os.PathLike[str],
    req: NormalizationRequest,
) -> ScaleResult:
    """Scale the histograms of a file and write them with the ledger as metadata.

    Args:
        input_spec: ``path`` or ``path:HIST`` (ROOT, JSON or text); without a name every
            histogram is scaled (a text output takes one: :data:`DEFAULT_HIST` if present).
        output: Output path; the format follows the extension.
        req: The user's factors.

    Returns:
        The ledger, the output path and the scaled histogram names.
    """
    path, name = split_spec(input_spec)
    hists, metadata = read_hists_and_metadata(path)
    chosen = _pick_hists(hists, name, str(path))
    out = Path(output)
    if out.suffix.lower() == ".txt" and len(chosen) > 1:
        if DEFAULT_HIST in chosen:
            chosen = {DEFAULT_HIST: chosen[DEFAULT_HIST]}
        else:
            msg = (
                f"{out}: the text format holds one histogram; name one as {path}:HIST "
                f"(choices: {', '.join(sorted(chosen))})"
            )
            raise ScalingError(msg)
    ledger = resolve_normalization(req, metadata)
    scaled = {n: scale_hist(h, ledger.scale) for n, h in chosen.items()}
    out_meta = {
        "normalization": ledger.to_dict(),
        "input": str(input_spec),
        "recastkit_version": __version__,
        "selection_metadata": {k: v for k, v in metadata.items() if k != "normalization"},
    }
    write_hists(out, scaled, out_meta)
    yields = {n: float(h.values().sum()) for n, h in scaled.items()}
    log.info("wrote %s (%s), scale %.6g", out, ", ".join(scaled), ledger.scale)
    return ScaleResult(ledger=ledger, output=out, histograms=tuple(scaled), yields=yields)


def scale_hists(hists: Mapping[str, hist.Hist], ledger: Ledger) -> dict[str, hist.Hist]:
    """Scale several histograms by the ledger's scale (new objects)."""
    return {n: scale_hist(h, ledger.scale) for n, h in hists.items()}


# --------------------------------------------------------------------------- fit

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
        test_stat: ``"qtilde"`` or ``"q"``.
        rebin: Merge this many adjacent bins of every input first.
        significance: Also compute the discovery significance.
        workers: Processes for the CLs scan (numpy backend only).
        backend: pyhf tensor backend: ``numpy`` (default) or ``jax`` (exact gradients,
            much faster for models with many bins; ``pip install recastkit[jax]``).
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
    test_stat: str = "qtilde"
    rebin: int = 1
    significance: bool = False
    workers: int = 1
    backend: str = "numpy"


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


def _write_fit_outputs(outdir: Path, workspace: Mapping[str, Any], result: LimitResult, *,
                       inputs: SearchInputs, lumi_ifb: float | None,
                       xsec_ref_fb: float | None) -> tuple[Path, ...]:
    """Render all four files into a staging folder, then move each into ``outdir``.

    A failure while rendering leaves ``outdir`` untouched; each final move is atomic.
    """
    from recastkit.report import plot_hists, plot_limit
    from recastkit.stats.results import dumps

    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.staging-", dir=outdir.parent))
    names = ("workspace.json", "limit.json", "hists.png", "limit.png")
    try:
        (staging / "workspace.json").write_text(dumps(workspace), encoding="utf-8")
        result.write_json(staging / "limit.json")
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

    signal = stats.BinnedSample.from_hist(sig_hist, "signal", sig_label).rebinned(req.rebin)
    rng = np.random.default_rng(req.seed)
    backgrounds: list[stats.BinnedSample] = []
    if req.mock_background:
        backgrounds.append(stats.mock_background(signal.edges, rng))
    for i, spec in enumerate(req.backgrounds):
        h, _, label = load_hist(spec, "background")
        name = "background" if len(req.backgrounds) == 1 else f"background_{i + 1}"
        backgrounds.append(stats.BinnedSample.from_hist(h, name, label).rebinned(req.rebin))
    data = None
    if req.data is not None:
        h, _, label = load_hist(req.data, "data")
        data = stats.BinnedSample.from_hist(h, "data", label).rebinned(req.rebin)
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
                               test_stat=req.test_stat, xsec_ref_fb=xsec_ref_fb,
                               significance=req.significance, workers=req.workers,
                               settings=settings, notes=notes, progress=progress)
    final_bound = float(result.settings["poi_bounds"][1])
    workspace = stats.build_workspace(stats.build_search_model(inputs, mu_bound=final_bound))
    files = _write_fit_outputs(Path(req.output), workspace, result, inputs=inputs,
                               lumi_ifb=lumi_ifb, xsec_ref_fb=xsec_ref_fb)
    return FitOutcome(result=result, inputs=inputs, files=files, lumi_ifb=lumi_ifb)


# --------------------------------------------------------------------------- demo

#: The worked example's sample (tutorial ZH → ℓℓbb signal).
DEMO_DATASET = (
    "mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
    "DAOD_EXOT27.e5706_s3126_r10724_p3840"
)
#: σ of DSID 345055 in the PMG convention that includes BR(H → bb), in pb.
DEMO_XSEC_PB = 0.044837
#: The worked example's luminosity (full Run 2, rounded) and the Run-2 final uncertainty.
DEMO_LUMI_IFB = 140.1
DEMO_LUMI_REL_UNC = 0.0083


@dataclass(frozen=True)
class DemoResult:
    """Everything the demo produced.

    Attributes:
        outdir: The output folder.
        ledger: The normalization ledger of the scale step.
        fit: The fit outcome (limits, inputs, files).
        n_generated: Events generated before the skim.
        n_in_file: Events in the skimmed sample file.
        sumw_in_file: Σ of the generator weights of the events in the file.
        files: Every file written, by role.
    """

    outdir: Path
    ledger: Ledger
    fit: FitOutcome
    n_generated: int
    n_in_file: int
    sumw_in_file: float
    files: Mapping[str, Path]

    @property
    def overnormalization(self) -> float:
        """Factor by which the in-file Σw would over-normalize the skimmed sample."""
        return self.ledger.sum_of_weights / self.sumw_in_file


def _demo_table(path: Path) -> None:
    """Write a one-row PMG-format cross-section table for the demo sample."""
    header = ("dataset_number/I:physics_short/C:crossSection_pb/D:genFiltEff/D:kFactor/D:"
              "relUncertUP/D:relUncertDOWN/D:generator_name/C:etag/C")
    short = DEMO_DATASET.split(".")[2]
    from recastkit._atomic import write_text_atomic

    row = "\t\t".join([DEMO_DATASET.split(".")[1], short, repr(DEMO_XSEC_PB), "1.0", "1.0",
                       "0.0", "0.0", "Powheg+Pythia8+EvtGen", "e5706"])
    write_text_atomic(path, f"{header}\n{row}\n")


def run_demo(
    outdir: str | os.PathLike[str],
    *,
    n_events: int = 10_000,
    seed: int = 1,
    fit_seed: int = 42,
    executor: str = "iterative",
    rebin: int = 5,
    workers: int = 2,
    progress: Callable[[int, str], None] | None = None,
) -> DemoResult:
    """Run the whole chain on a generated sample: skim → reformat → scale → interpret.

    1. Generate a skimmed NanoAOD-style ZH-like sample whose ``Runs`` tree holds the pre-skim
       Σw of the worked example (6813.0258).
    2. Import a one-row cross-section table (σ = 0.044837 pb, PMG convention with BR(H→bb))
       into a catalog inside ``outdir``.
    3. Select events and fill ``h_mjj``/``h_njets`` (the bookkeeping Σw is recorded).
    4. Scale with σ from the catalog, L = 140.1 fb⁻¹ (user value) and the recorded Σw:
       scale = 0.922008, the worked example.
    5. Fit: the tutorial's mock background and a Poisson toy, CLs scan and limits.
    6. Write ``summary.json`` and ``report.html``.

    Args:
        outdir: Output folder (created).
        n_events: Events to generate before the skim.
        seed: Seed of the generated sample.
        fit_seed: Seed of the mock background and toy data.
        executor: Selection executor (``iterative``, ``processes``, ``dask``).
        rebin: Merge this many m_jj bins before the fit (5: 25 GeV bins, 20 MC-stat
            parameters; 1 keeps the 100 bins but the numpy-backend fit takes minutes).
        workers: Processes for the CLs scan.
        progress: Called after each CLs evaluation.
    """
    import json

    from recastkit._atomic import write_text_atomic
    from recastkit.io.synthetic import write_signal_sample
    from recastkit.metadata import Catalog
    from recastkit.processing import run_selection, write_selection
    from recastkit.report.html import write_html_report

    out = Path(outdir)
    inputs_dir = out / "inputs"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    sample = write_signal_sample(inputs_dir / "signal_DAOD.root", n_events, seed)
    log.info("generated %d events, %d after the skim", sample.n_generated, sample.n_written)

    table = inputs_dir / "xsec_PMG_demo.txt"
    _demo_table(table)
    catalog_path = out / "catalog.sqlite"
    catalog_path.unlink(missing_ok=True)
    with Catalog(catalog_path) as catalog:
        catalog.import_table(table)

    selection = run_selection([sample.path], executor=executor, dataset=DEMO_DATASET,
                              progress=False)
    sel_root, sel_json = write_selection(selection, out / "selection.root")

    req = NormalizationRequest(
        dataset=DEMO_DATASET, catalog_path=catalog_path,
        lumi=Luminosity.from_ifb(DEMO_LUMI_IFB), lumi_rel_unc=DEMO_LUMI_REL_UNC,
    )
    scaled = scale_file(sel_root, out / "scaled.root", req)

    fit = run_fit(FitRequest(
        signal=f"{scaled.output}:{DEFAULT_HIST}", output=out / "fit", mock_background=True,
        toy_data=True, seed=fit_seed, lumi_rel_unc=FROM_METADATA, rebin=rebin,
        workers=workers, n_points=21,
    ), progress=progress)

    cutflow = selection.metadata()["cutflow"]
    sumw_in_file = float(cutflow[0]["sum_of_weights"])
    files: dict[str, Path] = {
        "sample": sample.path, "xsec_table": table, "catalog": catalog_path,
        "selection": sel_root, "selection_json": sel_json, "scaled": scaled.output,
        "summary": out / "summary.json", "report": out / "report.html",
    }
    files.update({p.stem if p.suffix == ".png" else p.name: p for p in fit.files})
    result = DemoResult(outdir=out, ledger=scaled.ledger, fit=fit,
                        n_generated=sample.n_generated, n_in_file=sample.n_written,
                        sumw_in_file=sumw_in_file, files=files)
    summary = {
        "recastkit_version": __version__,
        "dataset": DEMO_DATASET,
        "seeds": {"sample": seed, "fit": fit_seed},
        "normalization": scaled.ledger.to_dict(),
        "skim": {"n_generated": sample.n_generated, "n_in_file": sample.n_written,
                 "sum_of_weights_in_file": sumw_in_file,
                 "overnormalization_if_in_file_sumw_used": result.overnormalization},
        "cutflow": cutflow,
        "limit": fit.result.to_dict(),
        "files": {k: str(v) for k, v in files.items()},
    }
    write_text_atomic(files["summary"], json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_html_report(
        files["report"], title="recastkit demo: ZH(→ℓℓbb)-like signal, 140.1 fb⁻¹",
        ledger=scaled.ledger, cutflow=cutflow, limit=fit.result,
        plots={"Signal, background and data": files["hists"], "CLs scan": files["limit"]},
        facts={"dataset": DEMO_DATASET,
               "generated / in file (skim)": f"{sample.n_generated} / {sample.n_written}",
               "Σw in file vs bookkeeping": f"{sumw_in_file:.6g} vs "
                                            f"{scaled.ledger.sum_of_weights:.6g} "
                                            f"(×{result.overnormalization:.4f} if misused)",
               "seeds": f"sample {seed}, fit {fit_seed}",
               "recastkit": __version__},
    )
    return result
