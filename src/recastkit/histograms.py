"""Histogram accumulation arrays and their conversion to ``hist.Hist`` objects.

The selection kernel fills plain float64 arrays, never ``hist`` objects: one array of shape
``(nbins + 2, 2)`` per histogram holding ``(Σw, Σw²)`` per bin, with index 0 the underflow and
index ``nbins + 1`` the overflow (the layout of ``hist.Hist.view(flow=True)``). The bin of a
value follows boost-histogram's regular axis exactly: ``z = (x - low) / (high - low)``;
``z < 0`` is underflow, ``z >= 1`` (and NaN) overflow, otherwise bin ``int(z * nbins)``. The
``hist.Hist`` objects (Weight storage) are built once at the end by :func:`build_hist`.

Moments (:class:`Moments`) record Σw, Σw·x and the min/max of the filled quantity over all
entries, under- and overflow included, so e.g. Σ w·m_jj can be checked without binning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import hist
import numpy as np
import numpy.typing as npt

from recastkit.exceptions import ConfigError, HistogramError

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class HistogramSpec:
    """A regular 1D binning.

    Attributes:
        name: Histogram name (``h_mjj_raw`` ...).
        nbins: Number of bins (> 0).
        low: Lower edge of the first bin (in the unit of the quantity, GeV for m_jj).
        high: Upper edge of the last bin (> ``low``).
        label: Axis label, with the unit.
    """

    name: str
    nbins: int
    low: float
    high: float
    label: str = ""

    def __post_init__(self) -> None:
        if self.nbins <= 0:
            raise ConfigError(f"histogram {self.name!r}: bins must be positive, got {self.nbins}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.high <= self.low:
            msg = (
                f"histogram {self.name!r}: need finite low < high, got low={self.low}, "
                f"high={self.high}"
            )
            raise ConfigError(msg)

    def empty(self) -> Float64Array:
        """A zero accumulation array of shape ``(nbins + 2, 2)``."""
        return np.zeros((self.nbins + 2, 2), dtype=np.float64)

    @property
    def edges(self) -> Float64Array:
        """The ``nbins + 1`` bin edges."""
        return np.linspace(self.low, self.high, self.nbins + 1)


@dataclass(frozen=True)
class Moments:
    """Unbinned sums of one filled quantity over all entries (flow included).

    Attributes:
        sum_w: Σ w.
        sum_wx: Σ w·x.
        min: Smallest filled x (``inf`` when nothing was filled).
        max: Largest filled x (``-inf`` when nothing was filled).
    """

    sum_w: float
    sum_wx: float
    min: float
    max: float

    @property
    def mean(self) -> float:
        """Weighted mean Σw·x / Σw (NaN when Σw is 0)."""
        return self.sum_wx / self.sum_w if self.sum_w != 0 else math.nan

    @classmethod
    def from_array(cls, arr: Float64Array) -> Moments:
        """From the kernel's ``[Σw, Σw·x, min, max]`` array."""
        return cls(float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3]))

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready mapping (``None`` for an infinite min/max of an empty histogram)."""
        def fin(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {"sum_w": self.sum_w, "sum_wx": self.sum_wx, "min": fin(self.min),
                "max": fin(self.max)}


def empty_moments(n: int) -> Float64Array:
    """Zero moments for ``n`` histograms: rows ``[Σw, Σw·x, +inf, -inf]``."""
    out = np.zeros((n, 4), dtype=np.float64)
    out[:, 2] = np.inf
    out[:, 3] = -np.inf
    return out


def merge_moments(a: Float64Array, b: Float64Array) -> Float64Array:
    """Merge two moment arrays (sums add, min/max combine)."""
    out = a.copy()
    out[..., 0:2] += b[..., 0:2]
    out[..., 2] = np.minimum(a[..., 2], b[..., 2])
    out[..., 3] = np.maximum(a[..., 3], b[..., 3])
    return out


def build_hist(spec: HistogramSpec, acc: Float64Array) -> hist.Hist:
    """Build the Weight-storage ``hist.Hist`` of ``spec`` from an accumulation array.

    Args:
        spec: The binning.
        acc: Array of shape ``(nbins + 2, 2)``: ``[:, 0]`` Σw and ``[:, 1]`` Σw², flow bins
            included.

    Raises:
        HistogramError: If the array shape does not match the binning.
    """
    if acc.shape != (spec.nbins + 2, 2):
        msg = (
            f"histogram {spec.name!r}: accumulation array has shape {acc.shape}, expected "
            f"{(spec.nbins + 2, 2)}"
        )
        raise HistogramError(msg)
    h = hist.Hist(
        hist.axis.Regular(spec.nbins, spec.low, spec.high, name="x", label=spec.label),
        storage=hist.storage.Weight(),
        name=spec.name,
        label=spec.label,
    )
    view: Any = h.view(flow=True)
    view["value"] = acc[:, 0]
    view["variance"] = acc[:, 1]
    return h


def sum_arrays(arrays: Iterable[Float64Array]) -> Float64Array:
    """Sum accumulation arrays left to right in the given (deterministic) order."""
    it = iter(arrays)
    try:
        total = next(it).copy()
    except StopIteration:
        raise HistogramError("nothing to merge: no accumulation arrays") from None
    for a in it:
        total += a
    return total
