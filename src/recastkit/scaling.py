"""Normalization arithmetic and the ledger of factors with their sources.

The total scale applied to a Monte Carlo histogram filled with generator event weights is

    scale = σ × ε_filter × k × L / Σw_AOD

where σ is the generator cross section (its branching-ratio convention is the catalog's),
ε_filter the generator filter efficiency, k the k-factor, L the integrated luminosity and
Σw_AOD the sum of generator event weights of the full sample *before* derivation skimming.
σ × L is dimensionless (events), so the scale is a pure number: the weight of one unit of
generator weight in expected events.

Worked example (the tutorial's ZH→llbb signal): Σw = 6813.025800, σ = 44.837 fb, ε = k = 1,
L = 140.1 fb⁻¹ → scale = 44.837 × 140.1 / 6813.0258 = 0.922008.

This module is pure: no file access, no catalog look-ups. Resolving each factor from a
catalog, a luminosity table or bookkeeping metadata is :mod:`recastkit.workflow`'s job; here
every factor arrives with the text of its source and is kept in a :class:`Ledger`.
Histograms are never modified in place: values scale by ``s`` and variances by ``s²``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import hist
import numpy as np
import numpy.typing as npt

from recastkit.exceptions import ScalingError
from recastkit.units import CrossSection, Luminosity


@dataclass(frozen=True)
class Factor:
    """One line of the ledger.

    Attributes:
        name: What the factor is ("cross section", "luminosity", ...).
        value: Its value in ``unit``.
        unit: The unit ("fb", "fb^-1", or "" for pure numbers).
        source: Where the value came from (table file and line, bookkeeping entry, "user").
        role: ``"numerator"`` or ``"denominator"`` of the scale.
    """

    name: str
    value: float
    unit: str
    source: str
    role: str = "numerator"


def _nonzero(name: str, value: float, source: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value == 0:
        msg = f"{name} must be a finite non-zero number, got {value!r} (from {source})"
        raise ScalingError(msg)
    return value


def _positive(name: str, value: float, source: str, *, upper: float | None = None) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        msg = f"{name} must be a positive finite number, got {value!r} (from {source})"
        raise ScalingError(msg)
    if upper is not None and value > upper * (1 + 1e-9):
        msg = f"{name} must be at most {upper}, got {value!r} (from {source})"
        raise ScalingError(msg)
    return value


@dataclass(frozen=True)
class Ledger:
    """Every normalization factor with its value, unit and source, and the resulting scale.

    Attributes:
        xsec: Generator cross section (the catalog's branching-ratio convention); non-zero.
            A negative σ (interference sample) is accepted and flagged by
            :attr:`negative_xsec`; the scale is then negative.
        filter_eff: Generator filter efficiency, in (0, 1].
        k_factor: Higher-order correction factor (> 0).
        lumi: Integrated luminosity.
        sum_of_weights: Σ of generator event weights before any skimming (> 0).
        xsec_source: Source of σ.
        filter_eff_source: Source of ε.
        k_factor_source: Source of k.
        lumi_source: Source of L.
        sum_of_weights_source: Source of Σw.
        dataset: Dataset name or sample label, if known.
        xsec_rel_unc_up: Relative upward uncertainty of σ, if known.
        xsec_rel_unc_down: Relative downward uncertainty of σ, if known.
        lumi_rel_unc: Relative uncertainty of L, if known.
        notes: Warnings raised while resolving the factors (a catalog ε or k left out of a
            hand-given σ, a hand-given ε replacing the catalog's, a negative σ, ...).
    """

    xsec: CrossSection
    filter_eff: float
    k_factor: float
    lumi: Luminosity
    sum_of_weights: float
    xsec_source: str
    filter_eff_source: str
    k_factor_source: str
    lumi_source: str
    sum_of_weights_source: str
    dataset: str | None = None
    xsec_rel_unc_up: float | None = None
    xsec_rel_unc_down: float | None = None
    lumi_rel_unc: float | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.xsec, CrossSection):
            msg = f"xsec must be a CrossSection with a unit, got {self.xsec!r}"
            raise ScalingError(msg)
        if not isinstance(self.lumi, Luminosity):
            msg = f"lumi must be a Luminosity with a unit, got {self.lumi!r}"
            raise ScalingError(msg)
        _nonzero("cross section", self.xsec.fb, self.xsec_source)
        _positive("luminosity", self.lumi.ifb, self.lumi_source)
        _positive("filter efficiency", self.filter_eff, self.filter_eff_source, upper=1.0)
        _positive("k-factor", self.k_factor, self.k_factor_source)
        _positive("sum of weights", self.sum_of_weights, self.sum_of_weights_source)
        for name in ("xsec_rel_unc_up", "xsec_rel_unc_down", "lumi_rel_unc"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ScalingError(f"{name} must be a non-negative number, got {value!r}")

    @property
    def negative_xsec(self) -> bool:
        """True when σ is negative (an interference sample): the scale is negative too."""
        return self.xsec.value < 0

    @property
    def expected_yield(self) -> float:
        """σ × ε × k × L: the expected number of events of the sample before selection."""
        return self.xsec.fb * self.filter_eff * self.k_factor * self.lumi.ifb

    @property
    def scale(self) -> float:
        """σ × ε × k × L / Σw: the factor applied to histograms filled with event weights."""
        return self.expected_yield / self.sum_of_weights

    @property
    def xsec_fb(self) -> float:
        """σ in femtobarn."""
        return self.xsec.fb

    @property
    def lumi_ifb(self) -> float:
        """L in inverse femtobarn."""
        return self.lumi.ifb

    @property
    def factors(self) -> tuple[Factor, ...]:
        """The ledger lines in the order of the formula."""
        return (
            Factor("cross section", self.xsec.value, self.xsec.unit, self.xsec_source),
            Factor("filter efficiency", self.filter_eff, "", self.filter_eff_source),
            Factor("k-factor", self.k_factor, "", self.k_factor_source),
            Factor("luminosity", self.lumi.value, self.lumi.unit, self.lumi_source),
            Factor("sum of weights", self.sum_of_weights, "", self.sum_of_weights_source,
                   role="denominator"),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping: the metadata recorded next to scaled histograms.

        Keys: ``scale``, ``expected_yield``, ``xsec_fb``, ``filter_eff``, ``k_factor``,
        ``lumi_ifb``, ``sum_of_weights``, ``lumi_rel_unc``, ``xsec_rel_unc_up``,
        ``xsec_rel_unc_down``, ``dataset``, ``negative_xsec``, ``notes`` and ``factors`` (each
        ``name, value, unit, source``).
        """
        return {
            "scale": self.scale,
            "expected_yield": self.expected_yield,
            "xsec_fb": self.xsec.fb,
            "filter_eff": self.filter_eff,
            "k_factor": self.k_factor,
            "lumi_ifb": self.lumi.ifb,
            "sum_of_weights": self.sum_of_weights,
            "lumi_rel_unc": self.lumi_rel_unc,
            "xsec_rel_unc_up": self.xsec_rel_unc_up,
            "xsec_rel_unc_down": self.xsec_rel_unc_down,
            "dataset": self.dataset,
            "negative_xsec": self.negative_xsec,
            "notes": list(self.notes),
            "factors": [
                {"name": f.name, "value": f.value, "unit": f.unit, "source": f.source,
                 "role": f.role}
                for f in self.factors
            ],
        }

    def format(self) -> str:
        """A plain-text rendering of the ledger (one factor a line, then the result)."""
        width = max(len(f.name) for f in self.factors)
        lines = []
        for f in self.factors:
            op = "÷" if f.role == "denominator" else "×"
            value = f"{f.value:.10g} {f.unit}".rstrip()
            lines.append(f"{op} {f.name:<{width}}  {value:<22} [{f.source}]")
        lines.append(f"= scale {self.scale:.6g}   (expected yield σ·ε·k·L = "
                     f"{self.expected_yield:.6g} events)")
        if self.negative_xsec:
            lines.append("! negative cross section (interference sample): the scaled "
                         "histograms hold negative yields")
        return "\n".join(lines)


def scale_arrays(
    values: npt.ArrayLike, variances: npt.ArrayLike | None, scale: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """Scale bin contents by ``scale`` and variances by ``scale²`` (new arrays).

    Args:
        values: Bin contents (Σw per bin).
        variances: Bin variances (Σw² per bin), or None.
        scale: The factor, e.g. :attr:`Ledger.scale`.

    Returns:
        ``(values × scale, variances × scale²)`` as new float64 arrays.
    """
    s = _nonzero("scale", scale, "argument")
    out_values = np.asarray(values, dtype=np.float64) * s
    out_var = None if variances is None else np.asarray(variances, dtype=np.float64) * s * s
    return out_values, out_var


def _bin_label(h: hist.Hist, index: tuple[int, ...]) -> str:
    """``bin 3 [100, 200)``, ``underflow``, or ``bin (2, overflow)`` for a flow-view index."""
    parts = []
    for axis, raw in zip(h.axes, index, strict=True):
        i = raw - (1 if axis.traits.underflow else 0)
        if i < 0:
            parts.append("underflow")
        elif i >= axis.size:
            parts.append("overflow")
        else:
            try:
                lo, hi = axis.bin(i)
                parts.append(f"{i} [{lo:g}, {hi:g})")
            except (TypeError, ValueError):
                parts.append(str(i))
    if len(parts) == 1:
        return parts[0] if parts[0] in ("underflow", "overflow") else f"bin {parts[0]}"
    return f"bin ({', '.join(parts)})"


def check_scalable(h: hist.Hist, where: str) -> None:
    """Refuse a histogram whose contents are NaN/inf or whose variances are negative/NaN/inf.

    Flow bins are checked too (they are scaled and written like the others). Negative
    contents are allowed (negative generator weights); a negative variance is not.

    Args:
        h: The histogram.
        where: ``file:name``, for the message.

    Raises:
        ScalingError: Naming the histogram, the first bad bins and their values.
    """
    view = h.view(flow=True)
    fields: list[tuple[str, npt.NDArray[Any], bool]] = []
    if h.storage_type is hist.storage.Weight:
        fields = [("content", np.asarray(view.value), False),
                  ("variance", np.asarray(view.variance), True)]
    else:
        fields = [("content", np.asarray(view), False)]
    for what, arr, nonneg in fields:
        bad = ~np.isfinite(arr)
        if nonneg:
            bad |= arr < 0
        if bad.any():
            idx = np.argwhere(bad)
            shown = ", ".join(f"{_bin_label(h, tuple(int(j) for j in i))}: {float(arr[tuple(i)])!r}"
                              for i in idx[:3])
            more = f" (and {len(idx) - 3} more)" if len(idx) > 3 else ""
            rule = "finite and ≥ 0" if nonneg else "finite"
            msg = f"{where}: bin {what}s must be {rule}; got {shown}{more}"
            raise ScalingError(msg)


def scale_hist(h: hist.Hist, scale: float) -> hist.Hist:
    """Return a scaled copy of a histogram (flow bins included); ``h`` is left untouched.

    With Weight storage the variances scale by ``scale²``; other storages must be
    converted first (``recastkit.io.hists.as_weighted``), because a scaled count has no
    Poisson variance.

    Raises:
        ScalingError: For a non-Weight storage or a zero or non-finite scale (a negative
            scale, from the negative σ of an interference sample, is allowed).
    """
    if h.storage_type is not hist.storage.Weight:
        msg = (
            f"scaling needs a histogram with Weight storage (sum of weights and of squared "
            f"weights), got {h.storage_type.__name__}"
        )
        raise ScalingError(msg)
    out = h.copy()
    view = out.view(flow=True)
    values, variances = scale_arrays(view.value, view.variance, scale)
    view.value = values
    view.variance = variances
    return out
