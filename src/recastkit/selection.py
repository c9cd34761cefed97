"""The dijet event selection: configuration, the fused numba kernel, and per-chunk accumulation.

Definitions (N = ``min_jets``, default 2; X = ``jet_pt_min_gev``; Y = ``jet_abs_eta_max``):

- *Leading jets* are the two highest-pT jets, found without sorting (ties keep the earlier
  jet). PHYSLITE jets are not always pT-ordered, so the stored order is never trusted.
- *Selected jets* pass ``pT > X`` and ``|η| < Y`` (a cut that is not configured passes all
  jets; by default neither is configured).
- *raw* histograms, before the jet cuts: ``h_njets_raw`` is filled for **every** event with
  its total number of jets; ``h_mjj_raw`` for every event with at least N jets (any pT/η) with
  the invariant mass of its two leading jets.
- *kin* histograms, after the cuts: an event passes when it has at least N selected jets;
  ``h_njets_kin`` is filled with its number of selected jets and ``h_mjj_kin`` with the mass
  of its two leading selected jets.
- Cutflow (cumulative; each entry holds the event count, Σw and Σw²): ``all events``;
  ``>=N jets``; ``>=N jets pT>X`` (only when X is set); ``>=N jets pT>X |eta|<Y`` (only when Y
  is set). The last entry equals the *kin* selection.

With the defaults (no pT/η cuts, N = 2, m_jj in 100 bins over 0–500 GeV, n_jets in 20 bins
over 0–20) the *raw* and *kin* histograms are identical: the tutorial's plain dijet mass.

Every event's weight is the layout's event weight (``mcEventWeights[0]`` for PHYSLITE,
``genWeight`` for NanoAOD, ``EventWeight`` / ``weight`` for flat ntuples) times the
``extra_weights`` factors. Sums are accumulated in float64.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from recastkit.config import load_yaml, validate
from recastkit.exceptions import ConfigError
from recastkit.histograms import (
    Float64Array,
    HistogramSpec,
    empty_moments,
    merge_moments,
)
from recastkit.io.decoding import ReadOptions
from recastkit.io.events import (
    BUILTIN_LAYOUTS,
    LAYOUTS,
    EventChunk,
    EventLayout,
    FloatArray,
    InputConfig,
)

#: Top-level keys of an analysis configuration (:mod:`recastkit.regions`).
_ANALYSIS_KEYS = frozenset({"objects", "regions", "observables", "variations", "event_fields"})

#: Names of the four output histograms, in kernel order.
HIST_NAMES: tuple[str, str, str, str] = ("h_mjj_raw", "h_mjj_kin", "h_njets_raw", "h_njets_kin")


@dataclass(frozen=True)
class CutflowEntry:
    """One cumulative step of the cutflow.

    Attributes:
        name: Human-readable cut description.
        n_events: Number of events passing this and all previous cuts.
        sum_of_weights: Σw of those events.
        sum_of_weights_squared: Σw² of those events.
    """

    name: str
    n_events: int
    sum_of_weights: float
    sum_of_weights_squared: float


@dataclass(frozen=True)
class SelectionConfig:
    """The event selection and binning (see the module docstring for the definitions).

    Attributes:
        jet_pt_min_gev: Jet cut pT > X GeV; ``None`` (default) applies no pT cut.
        jet_abs_eta_max: Jet cut |η| < Y; ``None`` (default) applies no η cut.
        min_jets: Minimum number of (selected) jets, at least 2 (default 2).
        mjj_bins: Number of m_jj bins (default 100).
        mjj_low_gev: Lower m_jj edge in GeV (default 0).
        mjj_high_gev: Upper m_jj edge in GeV (default 500).
        njets_bins: Number of n_jets bins (default 20).
        njets_low: Lower n_jets edge (default 0).
        njets_high: Upper n_jets edge (default 20).
        extra_weights: Extra per-event weight factors by branch name (default none), e.g.
            ``PileupWeight_NOSYS``.
        input: Event layout overrides (default: detect per file).
        reading: zlib decoder and decompression threads (default: fastest, one per core).
    """

    jet_pt_min_gev: float | None = None
    jet_abs_eta_max: float | None = None
    min_jets: int = 2
    mjj_bins: int = 100
    mjj_low_gev: float = 0.0
    mjj_high_gev: float = 500.0
    njets_bins: int = 20
    njets_low: float = 0.0
    njets_high: float = 20.0
    extra_weights: tuple[str, ...] = ()
    input: InputConfig = field(default_factory=InputConfig)
    reading: ReadOptions = field(default_factory=ReadOptions)

    def __post_init__(self) -> None:
        if self.min_jets < 2:
            raise ConfigError(f"min_jets must be at least 2 (m_jj needs two jets), got "
                              f"{self.min_jets}")
        if self.jet_pt_min_gev is not None and not math.isfinite(self.jet_pt_min_gev):
            raise ConfigError(f"jets.pt_min_gev must be finite, got {self.jet_pt_min_gev}")
        if self.jet_abs_eta_max is not None and not self.jet_abs_eta_max > 0:
            raise ConfigError(f"jets.abs_eta_max must be positive, got {self.jet_abs_eta_max}")
        # Building the specs validates the binning.
        _ = self.histogram_specs

    @property
    def histogram_specs(self) -> tuple[HistogramSpec, ...]:
        """Specs of :data:`HIST_NAMES`, in order."""
        mjj = ("m_jj [GeV]", self.mjj_bins, self.mjj_low_gev, self.mjj_high_gev)
        nj = ("number of jets", self.njets_bins, self.njets_low, self.njets_high)
        return (
            HistogramSpec("h_mjj_raw", mjj[1], mjj[2], mjj[3], mjj[0]),
            HistogramSpec("h_mjj_kin", mjj[1], mjj[2], mjj[3], mjj[0]),
            HistogramSpec("h_njets_raw", nj[1], nj[2], nj[3], nj[0]),
            HistogramSpec("h_njets_kin", nj[1], nj[2], nj[3], nj[0]),
        )

    def cut_names(self) -> tuple[str, ...]:
        """Names of the cutflow entries reported for this configuration."""
        n = self.min_jets
        names = ["all events", f">={n} jets"]
        jet = ""
        if self.jet_pt_min_gev is not None:
            jet = f" pT>{self.jet_pt_min_gev:g} GeV"
            names.append(f">={n} jets{jet}")
        if self.jet_abs_eta_max is not None:
            names.append(f">={n} jets{jet} |eta|<{self.jet_abs_eta_max:g}")
        return tuple(names)

    def cut_indices(self) -> tuple[int, ...]:
        """Kernel cutflow slots (0 all, 1 N jets, 2 pT, 3 pT and η) reported, in order."""
        idx = [0, 1]
        if self.jet_pt_min_gev is not None:
            idx.append(2)
        if self.jet_abs_eta_max is not None:
            idx.append(3)
        return tuple(idx)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "<config>") -> SelectionConfig:
        """Build from a mapping in the YAML format of ``schemas/selection.json``.

        Raises:
            ConfigError: Schema or semantic violation (names ``source`` and the field).
        """
        validate(data, "selection", source)
        analysis = sorted(set(data) & _ANALYSIS_KEYS)
        if analysis or "factors" in data.get("weights", {}):
            msg = (f"{source}: {', '.join(analysis) or 'weights.factors'} belong to an analysis "
                   "configuration (with regions): load it with "
                   "recastkit.regions.load_selection_config")
            raise ConfigError(msg)
        jets = data.get("jets", {})
        hists = data.get("histograms", {})
        mjj = hists.get("mjj", {})
        nj = hists.get("njets", {})
        inp = data.get("input", {})
        layout = inp.get("layout", "auto")
        jb = inp.get("jet_branches")
        kin = inp.get("kinematics")
        jet_branches = None
        if jb is not None:
            keys = ("px", "py", "pz", "e") if kin == "pxpypze" else ("pt", "eta", "phi", "m")
            missing = [k for k in keys if k not in jb]
            if missing:
                msg = (
                    f"{source}: input.jet_branches needs the keys {', '.join(keys)} for "
                    f"kinematics {kin or 'ptetaphim'!r}; missing {', '.join(missing)}"
                )
                raise ConfigError(msg)
            jet_branches = (jb[keys[0]], jb[keys[1]], jb[keys[2]], jb[keys[3]])
        try:
            return cls(
                jet_pt_min_gev=jets.get("pt_min_gev"),
                jet_abs_eta_max=jets.get("abs_eta_max"),
                min_jets=jets.get("min_jets", 2),
                mjj_bins=mjj.get("bins", 100),
                mjj_low_gev=float(mjj.get("low_gev", 0.0)),
                mjj_high_gev=float(mjj.get("high_gev", 500.0)),
                njets_bins=nj.get("bins", 20),
                njets_low=float(nj.get("low", 0.0)),
                njets_high=float(nj.get("high", 20.0)),
                extra_weights=tuple(data.get("weights", {}).get("extra", ())),
                input=InputConfig(
                    layout=None if layout == "auto" else layout,
                    tree=inp.get("tree"),
                    jet_branches=jet_branches,
                    kinematics=kin,
                    energy_unit=inp.get("energy_unit"),
                    weight_branch=inp.get("weight_branch"),
                    weight_index=inp.get("weight_index"),
                    unweighted=bool(inp.get("unweighted", False)),
                ),
                reading=ReadOptions(data.get("reading", {}).get("decoder", "auto"),
                                    int(data.get("reading", {}).get("decompression_threads",
                                                                    0))),
            )
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> SelectionConfig:
        """Load and validate a selection YAML file (schema ``selection``)."""
        data = load_yaml(os.fspath(path), "selection")
        return cls.from_mapping(data, str(path))

    def with_layout(self, layout: str | None) -> SelectionConfig:
        """A copy with ``input.layout`` replaced (``None``/``"auto"``: detect)."""
        if layout in (None, "auto"):
            return replace(self, input=replace(self.input, layout=None))
        if layout not in LAYOUTS:
            msg = f"unknown event layout {layout!r}; valid choices: auto, {', '.join(LAYOUTS)}"
            raise ConfigError(msg)
        return replace(self, input=replace(self.input, layout=layout))

    def to_mapping(self) -> dict[str, Any]:
        """The configuration in the YAML format (valid against ``schemas/selection.json``)."""
        inp: dict[str, Any] = {"layout": self.input.layout or "auto"}
        if self.input.tree is not None:
            inp["tree"] = self.input.tree
        if self.input.jet_branches is not None:
            keys = (("px", "py", "pz", "e") if self.input.kinematics == "pxpypze"
                    else ("pt", "eta", "phi", "m"))
            inp["jet_branches"] = dict(zip(keys, self.input.jet_branches, strict=True))
        for key in ("kinematics", "energy_unit", "weight_branch", "weight_index"):
            value = getattr(self.input, key)
            if value is not None:
                inp[key] = value
        if self.input.unweighted:
            inp["unweighted"] = True
        jets: dict[str, Any] = {"min_jets": self.min_jets}
        if self.jet_pt_min_gev is not None:
            jets["pt_min_gev"] = self.jet_pt_min_gev
        if self.jet_abs_eta_max is not None:
            jets["abs_eta_max"] = self.jet_abs_eta_max
        out: dict[str, Any] = {
            "jets": jets,
            "histograms": {
                "mjj": {"bins": self.mjj_bins, "low_gev": self.mjj_low_gev,
                        "high_gev": self.mjj_high_gev},
                "njets": {"bins": self.njets_bins, "low": self.njets_low,
                          "high": self.njets_high},
            },
            "weights": {"extra": list(self.extra_weights)},
            "input": inp,
        }
        if self.reading != ReadOptions():
            out["reading"] = {"decoder": self.reading.decoder,
                              "decompression_threads": self.reading.decompression_threads}
        return out


# --------------------------------------------------------------------------- numba kernel


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _bin(x: float, n: int, lo: float, hi: float) -> int:  # pragma: no cover - compiled
    z = (x - lo) / (hi - lo)
    if z < 1.0:
        if z >= 0.0:
            return int(z * n) + 1
        return 0
    return n + 1


_TWO_PI_HI = 6.283185307179586  # 2π = _TWO_PI_HI + _TWO_PI_LO
_TWO_PI_LO = 2.4492935982947064e-16
_PI_HI = 3.141592653589793  # π = _PI_HI + _PI_LO
_PI_LO = 1.2246467991473532e-16
_HALF_PI = 1.5707963267948966


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _cos_poly(x: float) -> float:  # pragma: no cover - compiled
    """cos(x) for |x| <= 2π (any Δφ of two angles in [-π, π]), within 4e-16 of libm.

    The argument is folded exactly to [0, π/2] (2π - |x| and π - |x| with two-part
    constants) and cos is its Taylor series to x^22 (truncation error < 1e-19 there). No
    branches and no calls, so loops over it vectorize. Other arguments: see :func:`_cos`.
    """
    a = abs(x)
    a = (_TWO_PI_HI - a) + _TWO_PI_LO if a > _PI_HI else a
    neg = a > _HALF_PI
    a = (_PI_HI - a) + _PI_LO if neg else a
    z = a * a
    c = 1.0 + z * (-1.0 / 2 + z * (1.0 / 24 + z * (-1.0 / 720 + z * (1.0 / 40320 + z * (
        -1.0 / 3628800 + z * (1.0 / 479001600 + z * (-1.0 / 87178291200 + z * (
            1.0 / 20922789888000 + z * (-1.0 / 6402373705728000 + z * (
                1.0 / 2432902008176640000 + z * (-1.0 / 1124000727777607680000)))))))))))
    return -c if neg else c


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _cos(x: float) -> float:  # pragma: no cover - compiled
    """cos(x): :func:`_cos_poly` for |x| <= 2π, ``math.cos`` otherwise (and for NaN)."""
    if abs(x) <= _TWO_PI_HI:
        return _cos_poly(x)
    return math.cos(x)


_EXP_MAX_ARG = 20.0  # |x| range of _exp_poly (enough for any jet η)
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 = _LN2_HI + _LN2_LO, _LN2_HI with 21 trailing zero bits
_LN2_LO = 1.9082149292705877e-10


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _exp_poly(x: float) -> float:  # pragma: no cover - compiled
    """exp(x) for |x| <= 20 within a few ulp of libm, without branches or calls.

    x = k ln2 + r with k = round(x / ln2) (exact Cody-Waite reduction, |r| <= 0.35); exp(r) is
    its Taylor series to r^14 (truncation error < 1e-17) and 2^k is built exactly as the
    product of 2^a and 2^(k-a), a = k >> 1, each the int32 2^(a+15) times 2^-15 (exact powers
    of two, so the product is 2^k exactly; int32 conversions vectorize, int64 ones do not).
    """
    k = np.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
        1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
            1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600 + r * (
                1.0 / 6227020800 + r * (1.0 / 87178291200))))))))))))))
    ki = np.int32(k)
    a = ki >> np.int32(1)
    two_a = np.float64(np.int32(np.int32(1) << (a + np.int32(15)))) * 3.0517578125e-05
    two_b = np.float64(np.int32(np.int32(1) << (ki - a + np.int32(15)))) * 3.0517578125e-05
    return float(p * (two_a * two_b))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bins(x: Any, n: int, lo: float, hi: float, out: Any) -> None:  # pragma: no cover
    """``out[k] = _bin(x[k], n, lo, hi)`` for all k, with selects instead of branches.

    A discarded ``int(z * n)`` (z out of range or NaN) may be garbage. With fewer than 2^31 - 1
    bins, ``z * n`` of an in-range z fits an int32: int32 conversions vectorize, int64 ones
    do not.
    """
    d = hi - lo
    if n < 2**31 - 1:
        n32 = np.int32(n)
        for k in range(x.shape[0]):
            z = (x[k] - lo) / d
            b = np.int32(z * n) + np.int32(1) if z >= 0.0 else np.int32(0)
            out[k] = np.int64(b if z < 1.0 else n32 + np.int32(1))
    else:
        for k in range(x.shape[0]):
            z = (x[k] - lo) / d
            b64 = int(z * n) + 1 if z >= 0.0 else 0
            out[k] = b64 if z < 1.0 else n + 1


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mom(  # noqa: PLR0917
    sw: float, swx: float, lo: float, hi: float, x: float, w: float,
) -> tuple[float, float, float, float]:  # pragma: no cover - compiled
    """Moments ``(Σw, Σw·x, min, max)`` updated with ``x`` (NaN never replaces min/max)."""
    if x < lo:  # noqa: PLR1730
        lo = x
    if x > hi:  # noqa: PLR1730
        hi = x
    return sw + w, swx + w * x, lo, hi


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _pz_e(pt: float, eta: float, m: float) -> tuple[float, float]:  # pragma: no cover
    # one exp instead of sinh and cosh: pz = pT sinh(eta), E = sqrt((pT cosh(eta))^2 + m^2)
    ex = math.exp(eta)
    inv = 1.0 / ex
    pz = pt * 0.5 * (ex - inv)
    pc = pt * 0.5 * (ex + inv)
    return pz, math.sqrt(pc * pc + m * m)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mass(  # noqa: PLR0917
    c0: Any, c1: Any, c2: Any, c3: Any, i: int, j: int, cartesian: bool, escale: float,
) -> float:  # pragma: no cover - compiled
    """Invariant mass of jets i and j in GeV: m^2 = m1^2 + m2^2 + 2 (E1 E2 - p1.p2)."""
    if cartesian:
        e = (np.float64(c3[i]) + np.float64(c3[j])) * escale
        px = (np.float64(c0[i]) + np.float64(c0[j])) * escale
        py = (np.float64(c1[i]) + np.float64(c1[j])) * escale
        pz = (np.float64(c2[i]) + np.float64(c2[j])) * escale
        m2 = e * e - px * px - py * py - pz * pz
        return math.sqrt(m2) if m2 > 0.0 else 0.0
    pt1 = np.float64(c0[i]) * escale
    pt2 = np.float64(c0[j]) * escale
    m1 = np.float64(c3[i]) * escale
    m2_ = np.float64(c3[j]) * escale
    pz1, e1 = _pz_e(pt1, np.float64(c1[i]), m1)
    pz2, e2 = _pz_e(pt2, np.float64(c1[j]), m2_)
    dphi = np.float64(c2[i]) - np.float64(c2[j])
    msq = m1 * m1 + m2_ * m2_ + 2.0 * (e1 * e2 - pt1 * pt2 * _cos(dphi) - pz1 * pz2)
    return math.sqrt(msq) if msq > 0.0 else 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _masses_ptetaphim(  # noqa: PLR0917
    c0: Any, c1: Any, c2: Any, c3: Any, pair_i: Any, pair_j: Any, n_pairs: int, escale: float,
    mass: Any, tmp: Any,
) -> None:  # pragma: no cover - compiled
    """``mass[k]`` of the jet pairs ``(pair_i[k], pair_j[k])``, in GeV, for pt/eta/phi/m jets.

    Same formula and operations as :func:`_mass`, organised as one gather loop followed by
    simple loops over contiguous float64 buffers that LLVM vectorizes (exp and cos by
    :func:`_exp_poly` / :func:`_cos_poly`, the divisions and square roots four at a time).
    Pairs with |η| > 20 or |Δφ| > 2π (or NaN) are recomputed by :func:`_mass` with libm.
    ``tmp`` is float64 scratch of shape ``(7, >= n_pairs)`` (reused between chunks: fresh
    arrays would cost a page fault per 4 KiB on every call).
    """
    ex1 = tmp[0, :n_pairs]
    ex2 = tmp[1, :n_pairs]
    cdp = tmp[2, :n_pairs]
    pt1 = tmp[3, :n_pairs]
    pt2 = tmp[4, :n_pairs]
    m1 = tmp[5, :n_pairs]
    m2 = tmp[6, :n_pairs]
    n_bad = 0
    for k in range(n_pairs):  # gather
        i = pair_i[k]
        j = pair_j[k]
        eta1 = np.float64(c1[i])
        eta2 = np.float64(c1[j])
        dphi = np.float64(c2[i]) - np.float64(c2[j])
        ok1 = abs(eta1) <= _EXP_MAX_ARG
        ok2 = abs(eta2) <= _EXP_MAX_ARG
        ok3 = abs(dphi) <= _TWO_PI_HI
        # out-of-range arguments become 0 (the vector loops stay in range); redone below
        ex1[k] = eta1 if ok1 else 0.0
        ex2[k] = eta2 if ok2 else 0.0
        cdp[k] = dphi if ok3 else 0.0
        pt1[k] = np.float64(c0[i]) * escale
        pt2[k] = np.float64(c0[j]) * escale
        m1[k] = np.float64(c3[i]) * escale
        m2[k] = np.float64(c3[j]) * escale
        n_bad += not (ok1 & ok2 & ok3)
    for k in range(n_pairs):
        ex1[k] = _exp_poly(ex1[k])
    for k in range(n_pairs):
        ex2[k] = _exp_poly(ex2[k])
    for k in range(n_pairs):
        cdp[k] = _cos_poly(cdp[k])
    for k in range(n_pairs):
        p1 = pt1[k]
        p2 = pt2[k]
        q1 = m1[k]
        q2 = m2[k]
        x1 = ex1[k]
        x2 = ex2[k]
        inv1 = 1.0 / x1
        inv2 = 1.0 / x2
        pz1 = p1 * 0.5 * (x1 - inv1)
        pc1 = p1 * 0.5 * (x1 + inv1)
        pz2 = p2 * 0.5 * (x2 - inv2)
        pc2 = p2 * 0.5 * (x2 + inv2)
        e1 = math.sqrt(pc1 * pc1 + q1 * q1)
        e2 = math.sqrt(pc2 * pc2 + q2 * q2)
        msq = q1 * q1 + q2 * q2 + 2.0 * (e1 * e2 - p1 * p2 * cdp[k] - pz1 * pz2)
        mass[k] = math.sqrt(msq) if msq > 0.0 else 0.0
    if n_bad:
        for k in range(n_pairs):
            i = pair_i[k]
            j = pair_j[k]
            dphi = np.float64(c2[i]) - np.float64(c2[j])
            if not ((abs(np.float64(c1[i])) <= _EXP_MAX_ARG)
                    & (abs(np.float64(c1[j])) <= _EXP_MAX_ARG) & (abs(dphi) <= _TWO_PI_HI)):
                mass[k] = _mass(c0, c1, c2, c3, i, j, False, escale)


_NJ_LUT = 64
_EMPTY = np.int64(-(2**63))  # no jet, in the integer top-2 keys
_NO_BITS = np.zeros(0, dtype=np.int32)
_MAX_KEY_JETS = 2**32 - 1  # jets of a chunk addressable by the low half of a key
#: Rows of the per-event int64 scratch (:class:`_Workspace`): the kernel's event lists
#: raw_ev, raw_p, kin_ev, kin_p, kin_nj.
_N_EVENT_ROWS = 5


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _jet_keys(  # noqa: PLR0917
    c0: Any, c1: Any, pt_bits: Any, escale: float, pt_min: float, no_pt: bool,
    eta_max: float, no_eta: bool, keys: Any, flags: Any,
) -> None:  # pragma: no cover - compiled
    """Per jet j of a chunk with float32 pT: its top-2 key and its cut flags, in one loop
    without branches (it vectorizes).

    ``keys[j]``: the order-preserving integer of the pT bits (-0.0 == +0.0) in the high half
    and ``2**32 - 1 - j`` in the low half (a tie goes to the earlier jet), or :data:`_EMPTY`
    when pT is NaN or -inf (such jets never lead). ``flags[j]``: bit 0 pT cut passed, bit 1
    both cuts passed.
    """
    for j in range(keys.shape[0]):
        pt = float(c0[j]) * escale
        bits = np.int64(pt_bits[j])
        mono = bits if bits >= 0 else (bits ^ 0x7FFFFFFF) + 1
        key = (mono << 32) | (0xFFFFFFFF - j)
        keys[j] = key if pt > -np.inf else _EMPTY
        pass_pt = no_pt | (pt > pt_min)
        sel = pass_pt & (no_eta | (abs(np.float64(c1[j])) < eta_max))
        flags[j] = np.int8(pass_pt) | (np.int8(sel) << np.int8(1))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kernel(  # noqa: PLR0917
    offsets: Any, c0: Any, c1: Any, c2: Any, c3: Any, cartesian: bool, escale: float,
            weights: Any, pt_min: float, apply_pt: bool, eta_max: float, apply_eta: bool,
            min_jets: int, mjj_n: int, mjj_lo: float, mjj_hi: float, nj_n: int, nj_lo: float,
            nj_hi: float, hmjj: Any, hnj: Any, moments: Any, cut_n: Any,
            cut_w: Any, pt_bits: Any, use_bits: bool, ev_buf: Any, pair_buf: Any,
            f_buf: Any, keys: Any, flags: Any) -> None:  # pragma: no cover - compiled
    n_events = offsets.shape[0] - 1
    no_pt = not apply_pt
    no_eta = not apply_eta
    # The cutflow and moment sums live in locals (registers) during the loop and are stored
    # once at the end: same additions in the same order as updating the arrays per event,
    # without a store/reload per event (the arrays could alias, so LLVM cannot do this).
    n0 = cut_n[0]
    n1 = cut_n[1]
    n2 = cut_n[2]
    n3 = cut_n[3]
    w0 = cut_w[0, 0]
    v0 = cut_w[0, 1]
    w1 = cut_w[1, 0]
    v1 = cut_w[1, 1]
    w2_ = cut_w[2, 0]
    v2 = cut_w[2, 1]
    w3 = cut_w[3, 0]
    v3 = cut_w[3, 1]
    m0 = (moments[0, 0], moments[0, 1], moments[0, 2], moments[0, 3])
    m1 = (moments[1, 0], moments[1, 1], moments[1, 2], moments[1, 3])
    m2 = (moments[2, 0], moments[2, 1], moments[2, 2], moments[2, 3])
    m3 = (moments[3, 0], moments[3, 1], moments[3, 2], moments[3, 3])
    # Phase 1 records the jet pairs whose mass is needed; phase 2 computes those masses in
    # a branch-free loop (long exp/sqrt/cos latency chains overlap across pairs there instead
    # of stalling the branchy event loop); phase 3 fills the m_jj histograms in event order.
    # All buffers are the caller's scratch (reused between chunks, see _Workspace).
    pair_i = pair_buf[0]
    pair_j = pair_buf[1]
    # events filling the raw / kin m_jj (in event order) and their pairs: phase 3 walks
    # these lists instead of testing every event (the kin test is a coin flip)
    raw_ev = ev_buf[0]
    raw_p = ev_buf[1]
    kin_ev = ev_buf[2]
    kin_p = ev_buf[3]
    kin_nj = ev_buf[4]
    n_raw = 0
    n_kin_ev = 0
    n_pairs = 0
    # n_jets bins of small counts, with the same arithmetic as _bin (no division per event)
    nj_lut = np.empty(_NJ_LUT, dtype=np.int64)
    for k in range(_NJ_LUT):
        nj_lut[k] = _bin(np.float64(k), nj_n, nj_lo, nj_hi)
    if use_bits:
        _jet_keys(c0, c1, pt_bits, escale, pt_min, no_pt, eta_max, no_eta, keys, flags)
    for ev in range(n_events):
        w = weights[ev]
        w2 = w * w
        start = offsets[ev]
        stop = offsets[ev + 1]
        n_all = stop - start
        # leading two jets overall and among selected jets, by pT, without sorting
        b1 = -1
        b2 = -1
        p1 = -np.inf
        p2 = -np.inf
        s1 = -1
        s2 = -1
        q1 = -np.inf
        q2 = -np.inf
        n_pt = 0
        n_kin = 0
        if use_bits:
            # float32 pT: top 2 by the integer keys of _jet_keys with max/min (conditional
            # moves), the selected jets' keys masked by their flag without a branch
            k1 = _EMPTY
            k2 = _EMPTY
            u1 = _EMPTY
            u2 = _EMPTY
            for j in range(start, stop):
                key = keys[j]
                f = int(flags[j])
                n_pt += f & 1
                on = f >> 1
                n_kin += on
                mask = -on
                kk = (key & mask) | (_EMPTY & ~mask)
                hi = max(k1, key)
                k2 = max(k2, min(k1, key))
                k1 = hi
                hi = max(u1, kk)
                u2 = max(u2, min(u1, kk))
                u1 = hi
            b1 = -1 if k1 == _EMPTY else 0xFFFFFFFF - int(k1 & 0xFFFFFFFF)
            b2 = -1 if k2 == _EMPTY else 0xFFFFFFFF - int(k2 & 0xFFFFFFFF)
            s1 = -1 if u1 == _EMPTY else 0xFFFFFFFF - int(u1 & 0xFFFFFFFF)
            s2 = -1 if u2 == _EMPTY else 0xFFFFFFFF - int(u2 & 0xFFFFFFFF)
        else:
            for j in range(start, stop):
                if cartesian:
                    px = np.float64(c0[j])
                    py = np.float64(c1[j])
                    pt = math.sqrt(px * px + py * py) * escale
                else:
                    pt = np.float64(c0[j]) * escale
                if pt > p1:
                    p2 = p1
                    b2 = b1
                    p1 = pt
                    b1 = j
                elif pt > p2:
                    p2 = pt
                    b2 = j
                if apply_eta:
                    if cartesian:
                        pz = np.float64(c2[j]) * escale
                        abs_eta = math.asinh(abs(pz) / pt) if pt > 0.0 else np.inf
                    else:
                        abs_eta = abs(np.float64(c1[j]))
                else:
                    abs_eta = 0.0
                # the cuts as selects, not branches: random jets would mispredict them
                pass_pt = bool(no_pt | (pt > pt_min))
                sel = bool(pass_pt & (no_eta | (abs_eta < eta_max)))
                n_pt += int(pass_pt)
                n_kin += int(sel)
                ptk = pt if sel else -np.inf  # a rejected jet never enters the kin top 2
                if ptk > q1:
                    q2 = q1
                    s2 = s1
                    q1 = ptk
                    s1 = j
                elif ptk > q2:
                    q2 = ptk
                    s2 = j
        # cutflow, as selects (n_pt >= N is a coin flip with a pT cut). Adding 0.0 leaves a
        # sum bit-identical.
        n0 += 1
        w0 += w
        v0 += w2
        pass1 = n_all >= min_jets
        n1 += int(pass1)
        w1 += w if pass1 else 0.0
        v1 += w2 if pass1 else 0.0
        pass2 = n_pt >= min_jets
        n2 += int(pass2)
        w2_ += w if pass2 else 0.0
        v2 += w2 if pass2 else 0.0
        # raw histograms
        x = np.float64(n_all)
        bn = nj_lut[n_all] if n_all < _NJ_LUT else _bin(x, nj_n, nj_lo, nj_hi)
        hnj[0, bn, 0] += w
        hnj[0, bn, 1] += w2
        m2 = _mom(m2[0], m2[1], m2[2], m2[3], x, w)
        # The pairs and event lists are written unconditionally and only counted when the
        # event passes (an uncounted entry is overwritten by the next one): no branch on
        # n_all >= N either. An event failing it fails the kin selection too.
        # Jets with NaN pT never lead; such an event keeps its first two jets.
        r1 = b1 if b2 >= 0 else start
        r2 = b2 if b2 >= 0 else start + 1
        pair_i[n_pairs] = r1
        pair_j[n_pairs] = r2
        raw_ev[n_raw] = ev
        raw_p[n_raw] = n_pairs
        n_raw += int(pass1)
        n_pairs += int(pass1)
        # kin selection; its n_jets fill is done in phase 3
        passk = n_kin >= min_jets
        n3 += int(passk)
        w3 += w if passk else 0.0
        v3 += w2 if passk else 0.0
        s1 = s1 if s2 >= 0 else r1  # s2 < 0 only with NaN pT and no pT cut: raw choice
        s2 = s2 if s2 >= 0 else r2
        differ = passk & ((s1 != r1) | (s2 != r2))
        pair_i[n_pairs] = s1  # overwritten by the next pair unless counted
        pair_j[n_pairs] = s2
        kin_ev[n_kin_ev] = ev  # overwritten by the next event unless counted
        kin_p[n_kin_ev] = n_pairs if differ else n_pairs - 1
        kin_nj[n_kin_ev] = n_kin
        n_kin_ev += int(passk)
        n_pairs += int(differ)
    # phase 2: the masses
    mass = f_buf[7, :n_pairs]
    if cartesian:
        for k in range(n_pairs):
            mass[k] = _mass(c0, c1, c2, c3, pair_i[k], pair_j[k], cartesian, escale)
    else:
        _masses_ptetaphim(c0, c1, c2, c3, pair_i, pair_j, n_pairs, escale, mass, f_buf)
    # phase 3: m_jj fills, in event order (each histogram and its sums in the same order
    # as filling event by event). The bins are computed first, in a loop of their own: a bin
    # computed in the fill loop (a division) delays the address of its histogram update, and
    # the updates, which may alias, then wait for each other.
    mbin = pair_buf[2, :n_pairs]
    _bins(mass, mjj_n, mjj_lo, mjj_hi, mbin)
    for r in range(n_raw):
        w = weights[raw_ev[r]]
        p = raw_p[r]
        b = mbin[p]
        hmjj[0, b, 0] += w
        hmjj[0, b, 1] += w * w
        m0 = _mom(m0[0], m0[1], m0[2], m0[3], mass[p], w)
    for r in range(n_kin_ev):
        w = weights[kin_ev[r]]
        nk = kin_nj[r]
        x = np.float64(nk)
        bn = nj_lut[nk] if nk < _NJ_LUT else _bin(x, nj_n, nj_lo, nj_hi)
        hnj[1, bn, 0] += w
        hnj[1, bn, 1] += w * w
        m3 = _mom(m3[0], m3[1], m3[2], m3[3], x, w)
        p = kin_p[r]
        b = mbin[p]
        hmjj[1, b, 0] += w
        hmjj[1, b, 1] += w * w
        m1 = _mom(m1[0], m1[1], m1[2], m1[3], mass[p], w)
    cut_n[0] = n0
    cut_n[1] = n1
    cut_n[2] = n2
    cut_n[3] = n3
    cut_w[0, 0] = w0
    cut_w[0, 1] = v0
    cut_w[1, 0] = w1
    cut_w[1, 1] = v1
    cut_w[2, 0] = w2_
    cut_w[2, 1] = v2
    cut_w[3, 0] = w3
    cut_w[3, 1] = v3
    for k, mk in enumerate((m0, m1, m2, m3)):
        for i in range(4):
            moments[k, i] = mk[i]


class _Workspace:
    """Scratch buffers of :func:`_kernel`, reused between chunks (see :class:`_Workspaces`).

    Fresh arrays for every chunk (tens of MB for 250k events) can be returned to the OS by
    malloc between calls and then page-fault back in, one fault per 4 KiB page (measured up
    to ~7700 faults, ~20 ms, per 250k-event chunk in a loop over chunks). The buffers grow to
    the largest chunk seen and are never shrunk (only the pages a chunk touches are resident:
    ~40 MB for 250k events with 4 jets each).
    """

    def __init__(self) -> None:
        self.events: npt.NDArray[np.int64] = np.empty((_N_EVENT_ROWS, 0), dtype=np.int64)
        self.pairs: npt.NDArray[np.int64] = np.empty((3, 0), dtype=np.int64)
        self.floats: Float64Array = np.empty((8, 0), dtype=np.float64)
        self.keys: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.flags: npt.NDArray[np.int8] = np.empty(0, dtype=np.int8)

    def buffers(self, n_events: int, n_jets: int) -> tuple[
            npt.NDArray[np.int64], npt.NDArray[np.int64], Float64Array, npt.NDArray[np.int64],
            npt.NDArray[np.int8]]:
        """Buffers for a chunk of ``n_events`` events and ``n_jets`` jets with top-2 keys.

        Returns:
            int64 ``(5, >= n_events + 1)`` event lists, int64 ``(3, >= 2 n_events + 1)`` jet
            pairs and their m_jj bins, float64 ``(8, >= 2 n_events + 1)`` per-pair temporaries
            and masses, and the int64 keys and int8 flags of :func:`_jet_keys`, exactly
            ``n_jets`` long (views).
        """
        if self.events.shape[1] < n_events + 1:
            self.events = np.empty((_N_EVENT_ROWS, n_events + 1), dtype=np.int64)
            self.pairs = np.empty((3, 2 * n_events + 1), dtype=np.int64)
            self.floats = np.empty((8, 2 * n_events + 1), dtype=np.float64)
        if self.keys.shape[0] < n_jets:
            self.keys = np.empty(n_jets, dtype=np.int64)
            self.flags = np.empty(n_jets, dtype=np.int8)
        return self.events, self.pairs, self.floats, self.keys[:n_jets], self.flags[:n_jets]


class _Workspaces:
    """The process's idle :class:`_Workspace` objects: a fill borrows one for the duration of
    a kernel call, so concurrent fills never share buffers. They outlive the threads that
    used them: the parallel paths make new thread pools for every run, and per-thread
    buffers were allocated (and page-faulted, hundreds of ms of system time) anew each run.
    There are never more of them than fills that ran at the same time. They belong to no
    accumulator (accumulators are pickled and merged)."""

    def __init__(self) -> None:
        self._idle: list[_Workspace] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self) -> Iterator[_Workspace]:
        """An idle workspace (or a new one), returned when the block ends."""
        with self._lock:
            ws = self._idle.pop() if self._idle else _Workspace()
        try:
            yield ws
        finally:
            with self._lock:
                self._idle.append(ws)


_WORKSPACES = _Workspaces()


# --------------------------------------------------------------------------- accumulation


@dataclass
class SelectionAccumulator:
    """Mutable float64 sums of one work unit (or a merge of several); picklable.

    Attributes:
        mjj: ``(2, mjj_bins + 2, 2)``: raw/kin × bin (flow included) × (Σw, Σw²).
        njets: ``(2, njets_bins + 2, 2)``: the same for n_jets.
        moments: ``(4, 4)``: per histogram of :data:`HIST_NAMES` ``[Σw, Σw·x, min, max]``.
        cut_n: ``(4,)`` int64 event counts of the kernel's cutflow slots.
        cut_w: ``(4, 2)`` float64 (Σw, Σw²) of the cutflow slots.
        n_events: Events processed.
    """

    mjj: Float64Array
    njets: Float64Array
    moments: Float64Array
    cut_n: npt.NDArray[np.int64]
    cut_w: Float64Array
    n_events: int = 0

    @classmethod
    def empty(cls, config: SelectionConfig) -> SelectionAccumulator:
        """Zero sums for the binning of ``config``."""
        return cls(
            mjj=np.zeros((2, config.mjj_bins + 2, 2), dtype=np.float64),
            njets=np.zeros((2, config.njets_bins + 2, 2), dtype=np.float64),
            moments=empty_moments(4),
            cut_n=np.zeros(4, dtype=np.int64),
            cut_w=np.zeros((4, 2), dtype=np.float64),
        )

    def fill(self, chunk: EventChunk, layout: EventLayout, config: SelectionConfig) -> None:
        """Run the fused selection kernel on one chunk, adding into these sums."""
        c0 = chunk.jets[0]
        use_bits = (c0.dtype == np.float32 and layout.kinematics != "pxpypze"
                    and len(c0) <= _MAX_KEY_JETS)
        with _WORKSPACES.borrow() as ws:
            self._run_kernel(chunk, layout, config, use_bits, ws)
        self.n_events += chunk.n_events

    def _run_kernel(self, chunk: EventChunk, layout: EventLayout, config: SelectionConfig,
                    use_bits: bool, ws: _Workspace) -> None:
        c0, c1, c2, c3 = chunk.jets
        _kernel(
            chunk.offsets, c0, c1, c2, c3, layout.kinematics == "pxpypze",
            layout.energy_scale_to_gev, chunk.weights,
            -np.inf if config.jet_pt_min_gev is None else float(config.jet_pt_min_gev),
            config.jet_pt_min_gev is not None,
            np.inf if config.jet_abs_eta_max is None else float(config.jet_abs_eta_max),
            config.jet_abs_eta_max is not None,
            config.min_jets,
            config.mjj_bins, float(config.mjj_low_gev), float(config.mjj_high_gev),
            config.njets_bins, float(config.njets_low), float(config.njets_high),
            self.mjj, self.njets, self.moments, self.cut_n, self.cut_w,
            c0.view(np.int32) if use_bits else _NO_BITS, use_bits,
            *ws.buffers(len(chunk.offsets) - 1, len(c0) if use_bits else 0),
        )

    def merged(self, other: SelectionAccumulator) -> SelectionAccumulator:
        """A new accumulator holding ``self + other`` (min/max combined)."""
        return SelectionAccumulator(
            mjj=self.mjj + other.mjj,
            njets=self.njets + other.njets,
            moments=merge_moments(self.moments, other.moments),
            cut_n=self.cut_n + other.cut_n,
            cut_w=self.cut_w + other.cut_w,
            n_events=self.n_events + other.n_events,
        )

    def histogram_arrays(self) -> dict[str, Float64Array]:
        """The ``(nbins + 2, 2)`` array of each histogram of :data:`HIST_NAMES`."""
        return {"h_mjj_raw": self.mjj[0], "h_mjj_kin": self.mjj[1],
                "h_njets_raw": self.njets[0], "h_njets_kin": self.njets[1]}

    def cutflow(self, config: SelectionConfig) -> tuple[CutflowEntry, ...]:
        """The reported cutflow entries (see :meth:`SelectionConfig.cut_names`)."""
        return tuple(
            CutflowEntry(name, int(self.cut_n[i]), float(self.cut_w[i, 0]),
                         float(self.cut_w[i, 1]))
            for name, i in zip(config.cut_names(), config.cut_indices(), strict=True)
        )


def warm_up() -> None:
    """Compile (or load from the numba cache) the kernel for float32 and float64 jets."""
    config = SelectionConfig()
    offsets = np.array([0, 2], dtype=np.int64)
    for dtype in (np.float32, np.float64):
        jets: FloatArray = np.ones(2, dtype=dtype)
        chunk = EventChunk("<warm-up>", 0, 1, offsets, (jets, jets, jets, jets),
                           np.ones(1, dtype=np.float64))
        for name in ("flat", "flat_cartesian"):
            SelectionAccumulator.empty(config).fill(chunk, BUILTIN_LAYOUTS[name], config)
