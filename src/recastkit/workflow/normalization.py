"""Resolve every normalization factor into a ledger and scale histogram files.

The normalization rule (also in README.md, "Normalization rule"): **factors from different
sources are never combined silently.** Every factor of σ × ε × k × L / Σw is recorded in the
:class:`~recastkit.scaling.Ledger` with its source, and:

- **σ given by hand** (``--xsec``/``--xsec-fb``): ε and k are 1 unless given too
  (``--filter-eff``, ``--k-factor``); the ledger's source reads ``assumed 1 (σ given by hand)``.
  The catalog is never used to complete a hand-given σ: when it holds a record for the
  sample with ε or k ≠ 1, a warning names the record and the options that would apply them.
  ``--xsec-source`` (which selects a catalog record) with a hand-given σ is an error.
- **σ from the catalog** (the record of the dataset's DSID; the e-tag of ``--etag`` or of a
  full dataset name selects the row): ε and k come from the same record. An ε or k given by
  hand replaces the record's value, and a warning says which value it replaces. Several
  disagreeing records raise :class:`~recastkit.exceptions.AmbiguousMetadataError` listing
  them (choose with ``--xsec-source`` or ``--etag``); an e-tag that matches no row is an
  error listing the e-tags that exist (the e-tag-less record is never a fallback for it).
- **Negative σ** (interference samples): accepted, flagged in the ledger
  (``negative_xsec``) and warned about; the scaled histograms hold negative yields.
- **L**: the user's value wins; otherwise the luminosity of the dataset's MC campaign (from
  its r-tag), with that campaign's years' uncertainty (:mod:`recastkit.lumi`).
- **Σw**: an explicit value wins; then the bookkeeping metadata of the given files (one
  sample: the same file twice, or files of several DSIDs, are errors unless
  ``allow_mixed_dsids``, which the Σw source records); then the sum recorded by the
  selection step in the input's metadata. Σw of files of another DSID than the input's is an
  error. The sum of the event weights left in a derivation is never used implicitly.
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
        allow_mixed_dsids: The ``sumw_files`` are one sample although they carry several
            DSIDs (``--allow-mixed-dsids``; recorded in the ledger's Σw source).
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
    allow_mixed_dsids: bool = False


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


def _existing_catalog_path(req: NormalizationRequest) -> Path | None:
    """The catalog file the request names, if it exists (an advisory look-up creates none)."""
    from recastkit.metadata import Catalog
    from recastkit.metadata.store import CATALOG_ENV

    if req.catalog_path is not None:
        path = Path(req.catalog_path).expanduser()
    elif os.environ.get(CATALOG_ENV):
        path = Path(os.environ[CATALOG_ENV]).expanduser()
    else:
        path = Catalog.default_path()
    return path if path.is_file() else None


def _catalog_hint(req: NormalizationRequest, key: int | str | None,
                  eff_given: bool, k_given: bool) -> str | None:
    """Warning text when a hand-given σ leaves out a catalog ε or k ≠ 1 (else None).

    Read-only and best effort: a missing catalog, no record or an unreadable catalog give no
    hint (the hand-given σ never depends on the catalog).
    """
    from recastkit.exceptions import RecastkitError

    path = _existing_catalog_path(req) if key is not None else None
    if path is None or key is None:
        return None
    try:
        from recastkit.metadata import Catalog

        with Catalog(path) as catalog:
            records = catalog.query(key, etag=req.etag)
    except (RecastkitError, OSError) as exc:
        log.debug("no catalog hint for %s: %s", key, exc)
        return None
    hints = []
    for rec in records:
        options = []
        if not eff_given and rec.filter_eff != 1.0:
            options.append(f"--filter-eff {rec.filter_eff!r}")
        if not k_given and rec.k_factor != 1.0:
            options.append(f"--k-factor {rec.k_factor!r}")
        if options:
            hints.append(f"{rec.describe()} -> {' '.join(options)}")
    if not hints:
        return None
    return (
        "σ given by hand (--xsec) is used with ε = k = 1 unless --filter-eff/--k-factor are "
        f"given; catalog {path} holds a record with ε or k ≠ 1 for this sample: "
        f"{'; '.join(hints)} (give those options if your σ does not include them)"
    )


def _dataset_key(req: NormalizationRequest, metadata: Mapping[str, Any]) -> int | str | None:
    if req.dataset:
        text = req.dataset.strip()
        return int(text) if text.isdigit() else text
    if metadata.get("dataset"):
        return str(metadata["dataset"])
    if metadata.get("dsid") is not None:
        return int(metadata["dsid"])
    return None


@dataclass(frozen=True)
class _XsecFactors:
    xsec: CrossSection
    xsec_src: str
    eff: float
    eff_src: str
    kfac: float
    k_src: str
    unc_up: float | None
    unc_down: float | None
    notes: tuple[str, ...]


def _resolve_xsec(req: NormalizationRequest, key: int | str | None) -> _XsecFactors:
    notes: list[str] = []
    if req.xsec is not None:
        if req.xsec_source is not None:
            msg = (
                f"--xsec-source {req.xsec_source!r} selects a catalog record, but the cross "
                "section is given by hand (--xsec/--xsec-fb); give one of them"
            )
            raise ScalingError(msg)
        assumed = "assumed 1 (σ given by hand)"
        eff, eff_src = ((float(req.filter_eff), "user value") if req.filter_eff is not None
                        else (1.0, assumed))
        kfac, k_src = ((float(req.k_factor), "user value") if req.k_factor is not None
                       else (1.0, assumed))
        if req.filter_eff is None or req.k_factor is None:
            hint = _catalog_hint(req, key, req.filter_eff is not None, req.k_factor is not None)
            if hint is not None:
                log.warning("%s", hint)
                notes.append(hint)
        return _XsecFactors(req.xsec, "user value", eff, eff_src, kfac, k_src, None, None,
                            tuple(notes))
    if key is None:
        msg = (
            "no cross section: give one with a unit (--xsec '44.837 fb'), or name the sample "
            "(--dataset NAME or DSID) with a catalog that holds it (recastkit xsec import TABLE)"
        )
        raise ScalingError(msg)
    record = _catalog_record(req, key)
    src = f"catalog {record.source}"

    def pick(value: float | None, attr: str, option: str) -> tuple[float, str]:
        catalog_value = float(getattr(record, attr))
        if value is None:
            return catalog_value, src
        if float(value) != catalog_value:
            note = (
                f"{option} {float(value)!r} given by hand replaces the {attr} "
                f"{catalog_value!r} of catalog record {record.source}"
            )
            log.warning("%s", note)
            notes.append(note)
        return float(value), "user value"

    eff, eff_src = pick(req.filter_eff, "filter_eff", "--filter-eff")
    kfac, k_src = pick(req.k_factor, "k_factor", "--k-factor")
    if record.note:
        notes.append(f"catalog record {record.source}: {record.note}")
    return _XsecFactors(record.xsec, src, eff, eff_src, kfac, k_src,
                        getattr(record, "rel_unc_up", None),
                        getattr(record, "rel_unc_down", None), tuple(notes))


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

        report = sum_of_weights_files(list(req.sumw_files),
                                      allow_mixed_dsids=req.allow_mixed_dsids)
        total = report.total
        input_dsid = metadata.get("dsid")
        if (input_dsid is not None and total.dsid is not None
                and int(input_dsid) != total.dsid and not req.allow_mixed_dsids):
            msg = (
                f"--sumw-from files are DSID {total.dsid} but the input histograms are DSID "
                f"{int(input_dsid)} (from the selection metadata); give the files of the same "
                "sample, or --allow-mixed-dsids if they are one sample"
            )
            raise ScalingError(msg)
        return total.sum_of_weights, total.source
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
    from recastkit.metadata.store import check_etag

    check_etag(req.etag)
    meta = dict(metadata or {})
    key = _dataset_key(req, meta)
    x = _resolve_xsec(req, key)
    lumi, lumi_src, lumi_unc = _resolve_lumi(req, meta)
    sumw, sumw_src = _resolve_sumw(req, meta)
    dataset = req.dataset or meta.get("dataset")
    notes = list(x.notes)
    if x.xsec.value < 0:
        note = (
            f"negative cross section {x.xsec} ({x.xsec_src}): an interference sample; the "
            "scaled histograms hold negative yields"
        )
        log.warning("%s", note)
        notes.append(note)
    return Ledger(
        xsec=x.xsec, filter_eff=x.eff, k_factor=x.kfac, lumi=lumi, sum_of_weights=sumw,
        xsec_source=x.xsec_src, filter_eff_source=x.eff_src, k_factor_source=x.k_src,
        lumi_source=lumi_src, sum_of_weights_source=sumw_src,
        dataset=None if dataset is None else str(dataset),
        xsec_rel_unc_up=x.unc_up, xsec_rel_unc_down=x.unc_down, lumi_rel_unc=lumi_unc,
        notes=tuple(notes),
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


