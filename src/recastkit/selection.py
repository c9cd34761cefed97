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

import math
import os
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
from recastkit.io.events import (
    BUILTIN_LAYOUTS,
    LAYOUTS,
    EventChunk,
    EventLayout,
    FloatArray,
    InputConfig,
)

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
        return {
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


# --------------------------------------------------------------------------- numba kernel


@numba.njit(cache=True, nogil=True, inline="always")
def _bin(x: float, n: int, lo: float, hi: float) -> int:  # pragma: no cover - compiled
    z = (x - lo) / (hi - lo)
    if z < 1.0:
        if z >= 0.0:
            return int(z * n) + 1
        return 0
    return n + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _fill(  # noqa: PLR0917 - numba kernels take positional arguments
    h: Any, k: int, mom: Any, km: int, x: float, w: float, n: int, lo: float,
    hi: float,
) -> None:  # pragma: no cover - compiled
    b = _bin(x, n, lo, hi)
    h[k, b, 0] += w
    h[k, b, 1] += w * w
    mom[km, 0] += w
    mom[km, 1] += w * x
    if x < mom[km, 2]:  # noqa: PLR1730 - NaN must not replace the minimum
        mom[km, 2] = x
    if x > mom[km, 3]:  # noqa: PLR1730
        mom[km, 3] = x


@numba.njit(cache=True, nogil=True, inline="always")
def _pz_e(pt: float, eta: float, m: float) -> tuple[float, float]:  # pragma: no cover
    # one exp instead of sinh and cosh: pz = pT sinh(eta), E = sqrt((pT cosh(eta))^2 + m^2)
    ex = math.exp(eta)
    inv = 1.0 / ex
    pz = pt * 0.5 * (ex - inv)
    pc = pt * 0.5 * (ex + inv)
    return pz, math.sqrt(pc * pc + m * m)


@numba.njit(cache=True, nogil=True, inline="always")
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
    msq = m1 * m1 + m2_ * m2_ + 2.0 * (e1 * e2 - pt1 * pt2 * math.cos(dphi) - pz1 * pz2)
    return math.sqrt(msq) if msq > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _kernel(  # noqa: PLR0917
    offsets: Any, c0: Any, c1: Any, c2: Any, c3: Any, cartesian: bool, escale: float,
            weights: Any, pt_min: float, apply_pt: bool, eta_max: float, apply_eta: bool,
            min_jets: int, mjj_n: int, mjj_lo: float, mjj_hi: float, nj_n: int, nj_lo: float,
            nj_hi: float, hmjj: Any, hnj: Any, moments: Any, cut_n: Any,
            cut_w: Any) -> None:  # pragma: no cover - compiled
    n_events = offsets.shape[0] - 1
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
            if apply_pt and not pt > pt_min:
                continue
            n_pt += 1
            if apply_eta:
                if cartesian:
                    pz = np.float64(c2[j]) * escale
                    abs_eta = math.asinh(abs(pz) / pt) if pt > 0.0 else np.inf
                else:
                    abs_eta = abs(np.float64(c1[j]))
                if not abs_eta < eta_max:
                    continue
            n_kin += 1
            if pt > q1:
                q2 = q1
                s2 = s1
                q1 = pt
                s1 = j
            elif pt > q2:
                q2 = pt
                s2 = j
        # cutflow
        cut_n[0] += 1
        cut_w[0, 0] += w
        cut_w[0, 1] += w2
        if n_all >= min_jets:
            cut_n[1] += 1
            cut_w[1, 0] += w
            cut_w[1, 1] += w2
        if n_pt >= min_jets:
            cut_n[2] += 1
            cut_w[2, 0] += w
            cut_w[2, 1] += w2
        # raw histograms
        _fill(hnj, 0, moments, 2, np.float64(n_all), w, nj_n, nj_lo, nj_hi)
        r1 = -1
        r2 = -1
        mjj = 0.0
        if n_all >= min_jets:
            # jets with NaN pT never lead; such an event keeps its first two jets
            r1 = b1 if b2 >= 0 else start
            r2 = b2 if b2 >= 0 else start + 1
            mjj = _mass(c0, c1, c2, c3, r1, r2, cartesian, escale)
            _fill(hmjj, 0, moments, 0, mjj, w, mjj_n, mjj_lo, mjj_hi)
        # kin selection
        if n_kin >= min_jets:
            cut_n[3] += 1
            cut_w[3, 0] += w
            cut_w[3, 1] += w2
            _fill(hnj, 1, moments, 3, np.float64(n_kin), w, nj_n, nj_lo, nj_hi)
            if s2 < 0:  # only with NaN pT and no pT cut: fall back to the raw choice
                s1 = b1 if b2 >= 0 else start
                s2 = b2 if b2 >= 0 else start + 1
            if s1 != r1 or s2 != r2:  # reuse the raw m_jj when the pair is the same
                mjj = _mass(c0, c1, c2, c3, s1, s2, cartesian, escale)
            _fill(hmjj, 1, moments, 1, mjj, w, mjj_n, mjj_lo, mjj_hi)


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
        )
        self.n_events += chunk.n_events

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
