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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hist

from recastkit import __version__
from recastkit.exceptions import ScalingError
from recastkit.io.hists import read_hists_and_metadata, split_spec, write_hists
from recastkit.scaling import Ledger, scale_hist
from recastkit.units import CrossSection, Luminosity
from recastkit.workflow.scale_checks import check_scale_inputs

if TYPE_CHECKING:
    pass

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
    *,
    force: bool = False,
) -> ScaleResult:
    """Scale the histograms of a file and write them with the ledger as metadata.

    Args:
        input_spec: ``path`` or ``path:HIST`` (ROOT, JSON or text); without a name every
            histogram is scaled (a text output takes one: :data:`DEFAULT_HIST` if present).
        output: Output path; the format follows the extension.
        req: The user's factors.
        force: Scale an input that is already scaled (its ledger is kept in the output's
            metadata as ``input_normalization``).

    Returns:
        The ledger, the output path and the scaled histogram names.
    """
    path, name = split_spec(input_spec)
    hists, metadata = read_hists_and_metadata(path)
    chosen = _pick_hists(hists, name, str(path))
    check_scale_inputs(path, output, chosen, metadata, force=force)
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
    if metadata.get("normalization"):
        out_meta["input_normalization"] = metadata["normalization"]
    write_hists(out, scaled, out_meta)
    yields = {n: float(h.values().sum()) for n, h in scaled.items()}
    log.info("wrote %s (%s), scale %.6g", out, ", ".join(scaled), ledger.scale)
    return ScaleResult(ledger=ledger, output=out, histograms=tuple(scaled), yields=yields)


def scale_hists(hists: Mapping[str, hist.Hist], ledger: Ledger) -> dict[str, hist.Hist]:
    """Scale several histograms by the ledger's scale (new objects)."""
    return {n: scale_hist(h, ledger.scale) for n, h in hists.items()}


