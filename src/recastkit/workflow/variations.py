"""Signal theory uncertainties of a run: variation histograms -> normalized bands -> modifiers.

The selection step fills one histogram per generator-weight variation beside the nominal one
(``observable__<variation>``, with the variation's branch, index and mode in the file's
``variations`` metadata). Here each variation is normalized by its own Σw from the bookkeeping
of the input files (PHYSLITE CutBookkeepers ``AllExecutedEvents_NonNominalMCWeight_N``,
NanoAOD ``Runs`` ``LHEScaleSumw``/``LHEPdfSumw``) when ``normalize`` is ``acceptance``, or by
the nominal Σw when it is ``total``, and the variations named by each :class:`TheoryGroup`
are combined by its rule (:mod:`recastkit.theory`). The bands enter the fit as modifiers on
the signal (:func:`recastkit.stats.theory_modifiers`) and the report as one table per region
(:func:`theory_table`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hist
import numpy as np

from recastkit import bookkeeping
from recastkit.exceptions import ConfigError
from recastkit.theory import NORMALIZE_MODES, TheoryBand, TheoryGroup, theory_bands

#: Headers of the per-region theory table of the report.
TABLE_HEADERS: tuple[str, ...] = ("region", "uncertainty", "rule", "down %", "up %")


@dataclass(frozen=True)
class TheorySettings:
    """Which theory uncertainties a run builds and how.

    Attributes:
        groups: The named uncertainties (rule and variations).
        normalize: ``acceptance`` (each variation by its own Σw, default) or ``total``.
        split: Model each band as ``normsys`` (total-yield ratio) + shape-only ``histosys``.
    """

    groups: tuple[TheoryGroup, ...]
    normalize: str = "acceptance"
    split: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        if self.normalize not in NORMALIZE_MODES:
            raise ConfigError(f"theory normalize: {self.normalize!r} is not one of "
                              f"{', '.join(NORMALIZE_MODES)}")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ConfigError(f"theory uncertainties need unique names, got {names}")

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> TheorySettings:
        """From config: ``{normalize: acceptance, split: false, uncertainties:
        [{name: scale, rule: scale, variations: [...]}, ...]}``."""
        groups = []
        for i, g in enumerate(doc.get("uncertainties", [])):
            try:
                groups.append(TheoryGroup(str(g["name"]), str(g["rule"]),
                                          tuple(str(v) for v in g["variations"])))
            except KeyError as exc:
                raise ConfigError(f"theory uncertainties[{i}]: missing field {exc}") from None
        return cls(tuple(groups), str(doc.get("normalize", "acceptance")),
                   bool(doc.get("split", False)))


def variation_sums(files: Sequence[str], variations: Sequence[Mapping[str, Any]],
                   names: Sequence[str] | None = None) -> dict[str, float]:
    """Σw of each variation over ``files`` from the bookkeeping.

    Args:
        files: The input event files of the selection.
        variations: The ``variations`` metadata of the selection output (name, branch,
            index, mode per variation).
        names: Only these variations (default: all).

    Raises:
        BookkeepingError: A file without the needed bookkeeping.
        ConfigError: A variation whose weight vector has no bookkeeping sum.
    """
    out: dict[str, float] = {}
    for v in variations:
        name = str(v["name"])
        if names is not None and name not in names:
            continue
        branch, index = str(v["branch"]), int(v["index"])
        short = re.split(r"[.:]", branch)[-1]
        parts: list[float] = []
        for path in files:
            if short == "mcEventWeights":
                parts.append(bookkeeping.sum_of_weights(path, weight_index=index).sum_of_weights)
            elif short in bookkeeping.NANOAOD_VARIATION_SUMS:
                parts.append(bookkeeping.nanoaod_variation_sum_of_weights(path, short, index)
                             .sum_of_weights)
            else:
                msg = (f"variation {name!r} ({branch}[{index}]): no bookkeeping sum of weights "
                       "for this weight vector; use normalize: total")
                raise ConfigError(msg)
        out[name] = math.fsum(parts)
    return out


def _values(h: hist.Hist, rebin: int) -> np.ndarray:
    values = np.asarray(h.values(), dtype=np.float64)
    if rebin > 1:
        values = values.reshape(-1, rebin).sum(axis=1)
    return values


def signal_bands(hists: Mapping[str, hist.Hist], metadata: Mapping[str, Any], nominal: str,
                 settings: TheorySettings, *, factor: float = 1.0, rebin: int = 1,
                 sumw_nominal: float | None = None,
                 sumw: Mapping[str, float] | None = None) -> tuple[TheoryBand, ...]:
    """The theory bands of one signal histogram.

    Args:
        hists: The histograms of the signal file (nominal and ``<nominal>__<variation>``).
        metadata: The file's metadata (``variations``, ``files``, ``sum_of_weights``, directly
            or, for a file written by the scale step, under ``selection_metadata``).
        nominal: Name of the nominal histogram.
        settings: Groups, normalization mode.
        factor: Multiplies every histogram first (e.g. σ × L / Σw for an unscaled selection
            output; 1 for a file already scaled by the scale step, which scales the variation
            histograms by the same nominal factor).
        rebin: Merge this many adjacent bins (before combining).
        sumw_nominal: Nominal Σw (default: the metadata's ``sum_of_weights``).
        sumw: Variation Σw (default: read from the bookkeeping of the metadata's ``files``).

    Raises:
        ConfigError: A variation histogram or Σw that is missing.
        TheoryError: Variations the rule cannot combine.
    """
    if nominal not in hists:
        raise ConfigError(f"no histogram {nominal!r}; available: {', '.join(sorted(hists))}")
    members = list(dict.fromkeys(m for g in settings.groups for m in g.members))
    variations: dict[str, np.ndarray] = {}
    for m in members:
        name = f"{nominal}__{m}"
        if name not in hists:
            have = sorted(k.split("__", 1)[1] for k in hists if k.startswith(nominal + "__"))
            msg = (f"theory: no variation histogram {name!r}; variations of {nominal!r}: "
                   f"{', '.join(have) or 'none'}")
            raise ConfigError(msg)
        variations[m] = _values(hists[name], rebin) * factor
    # a file written by the scale step keeps the selection's metadata under this key
    selection = metadata.get("selection_metadata") or metadata
    if settings.normalize == "acceptance":
        if sumw_nominal is None:
            norm = metadata.get("normalization") or {}
            value = norm.get("sum_of_weights", selection.get("sum_of_weights"))
            if value is None:
                raise ConfigError("theory normalize 'acceptance': the nominal sum of weights is "
                                  "not in the signal file's metadata")
            sumw_nominal = float(value)
        if sumw is None:
            files = [str(f) for f in selection.get("files", [])]
            if not files:
                raise ConfigError("theory normalize 'acceptance': the signal file's metadata "
                                  "does not list the input files to read the variations' Σw")
            sumw = variation_sums(files, selection.get("variations", []), members)
    return theory_bands(_values(hists[nominal], rebin) * factor, variations, settings.groups,
                        normalize=settings.normalize, sumw_nominal=sumw_nominal, sumw=sumw)


def theory_table(bands: Mapping[str, Sequence[TheoryBand]]
                 ) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """The report's table: one row per region and uncertainty, with the relative change of
    the region's total signal yield (down %, up %)."""
    rows = []
    for region, region_bands in bands.items():
        for band in region_bands:
            down, up = band.relative_total
            rows.append((region, band.name, band.rule, f"{100 * down:+.2f}",
                         f"{100 * up:+.2f}"))
    return TABLE_HEADERS, tuple(rows)


def bands_from_file(label: str, settings: TheorySettings, rebin: int = 1
                    ) -> tuple[TheoryBand, ...]:
    """The theory bands of the signal histogram ``label`` (``path:name``), read with the other
    histograms and the metadata of its file (already scaled: ``factor`` 1)."""
    from recastkit.io.hists import read_hists_and_metadata

    path, _, name = label.rpartition(":")
    hists, meta = read_hists_and_metadata(path)
    return signal_bands(hists, meta, name, settings, rebin=rebin)
