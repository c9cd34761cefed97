"""Closed-form profile likelihood fits, vectorized over many models, with asymptotic CLs.

The fast path covers HistFactory models (Cranmer et al., CERN-OPEN-2012-016) whose nuisance
parameters are per-bin MC-statistical factors γ (``staterror``: Gaussian constraint with
pyhf's combined relative uncertainty; ``shapesys``: Poisson constraint with τ = (ν/σ)²) and
normalization parameters (``normsys`` with interpolation code 1 or 4, ``lumi``, free
``normfactor``\\ s, the POI among them): the models ``recastkit fit`` builds, with any number of
channels and normfactors shared across them.

For fixed scalar parameters θ (POI, normfactors, normsys α, lumi λ) the expected count of a bin
is ν_b = γ_b A_b(θ) + C_b(θ) (A: the samples the bin's γ acts on, C: the others), and the γ_b
maximizing Poisson(n_b | ν_b) × constraint(γ_b) is the larger root of a quadratic. The few
scalar parameters are then profiled by projected Newton steps with the exact gradient and the
exact Hessian of the profiled likelihood (the Schur complement of the diagonal γ block; the
envelope theorem gives the gradient), with an Armijo line search and the active-set treatment
of the parameter bounds. Every array carries a leading "lane" axis: one lane is one model
(a signal point) with one dataset (observed or Asimov) at one tested μ, so the fits of a whole
grid run as one set of numpy operations.

The log-likelihood equals pyhf's ``model.logpdf`` (Poisson terms with ``lgamma``, the
constraint terms with their normalizations), and the test statistics and CLs follow pyhf's
asymptotic calculator: q̃_μ or q_μ (Cowan, Cranmer, Gross, Vitells, Eur. Phys. J. C 71 (2011)
1554, arXiv:1007.1727, eqs. 14 and 16), the Asimov dataset generated at μ = 0 with the
nuisance parameters fitted to the data (auxiliary data included), and CLs = CLs+b / CLb (Read,
J. Phys. G 28 (2002) 2693) with the expected band from the Asimov q_μ,A.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln, log_ndtr, ndtr, ndtri, ndtri_exp, xlogy

from recastkit.exceptions import StatsError

Arr = npt.NDArray[Any]

#: Modifier types the fast path understands.
FAST_MODIFIERS: frozenset[str] = frozenset(
    {"normfactor", "normsys", "lumi", "staterror", "shapesys"})
#: pyhf's default bounds of the per-bin factors.
GAMMA_BOUNDS = (1e-10, 10.0)
#: Order of the expected band (pyhf's order of ``nsigma`` in ``expected_pvalues``).
BAND_NSIGMA: tuple[float, ...] = (2.0, 1.0, 0.0, -1.0, -2.0)
_NONE, _NORMAL, _POISSON = 0, 1, 2
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
#: Newton decrement (≈ 2 × the remaining decrease of −ln L) at which a fit has converged.
DECREMENT_TOL = 1e-11
MAX_NEWTON = 100


class FastPathUnsupported(StatsError):
    """The model has a feature the fast path does not handle (the message says which)."""


# --------------------------------------------------------------------------- the model


def _code4_matrix() -> Arr:
    """The 6 × 6 system fixing 1 + Σ a_i α^i by value, slope and curvature at α = ±1."""
    rows = []
    for x in (1.0, -1.0):
        rows.append([x**i for i in range(1, 7)])
    for x in (1.0, -1.0):
        rows.append([i * x ** (i - 1) for i in range(1, 7)])
    for x in (1.0, -1.0):
        rows.append([i * (i - 1) * x ** (i - 2) for i in range(1, 7)])
    order = [0, 1, 2, 3, 4, 5]
    return np.linalg.inv(np.asarray(rows, dtype=float)[order])


_CODE4_INV = _code4_matrix()


def code4_coefficients(log_hi: Arr, log_lo: Arr) -> Arr:
    """Coefficients a_1 … a_6 of pyhf's code-4 polynomial for |α| < 1 (last axis).

    The polynomial continues κ_hi^α (α ≥ 1) and κ_lo^(−α) (α ≤ −1) with continuous value,
    first and second derivative at α = ±1.
    """
    khi, klo = np.exp(log_hi), np.exp(log_lo)
    rhs = np.stack([khi - 1.0, klo - 1.0, khi * log_hi, -klo * log_lo,
                    khi * log_hi**2, klo * log_lo**2], axis=-1)
    out: Arr = np.einsum("ij,...j->...i", _CODE4_INV, rhs)
    return out


@dataclass(frozen=True)
class Structure:
    """What every point of a batch shares: channels, sample rows, parameters, masks.

    Attributes:
        channels: ``(name, n_bins)`` in pyhf's order (sorted by name).
        rows: ``(channel, sample)`` of each sample row.
        scalar_names: Names of the scalar parameters (normfactors, normsys, lumi), sorted.
        scalar_kinds: Their modifier types.
        poi: Index of the POI among the scalars.
        uses: ``uses[s][k]``: sample row s carries scalar parameter k.
        gamma_sets: ``(name, type, global bins)`` of each per-bin parameter set.
        gamma_kind: Per global bin: 0 no γ, 1 Gaussian (staterror), 2 Poisson (shapesys).
        gamma_rows: ``gamma_rows[s][b]``: the bin's γ multiplies sample row s.
        interpcode: ``code1`` or ``code4`` for the normsys modifiers.
    """

    channels: tuple[tuple[str, int], ...]
    rows: tuple[tuple[str, str], ...]
    scalar_names: tuple[str, ...]
    scalar_kinds: tuple[str, ...]
    poi: int
    uses: tuple[tuple[bool, ...], ...]
    gamma_sets: tuple[tuple[str, str, tuple[int, ...]], ...]
    gamma_kind: tuple[int, ...]
    gamma_rows: tuple[tuple[bool, ...], ...]
    interpcode: str

    @property
    def n_bins(self) -> int:
        """Total number of bins."""
        return sum(n for _, n in self.channels)


@dataclass
class FastModel:
    """The numbers of one or more models sharing a :class:`Structure` (leading axis: points).

    Shapes: P points, S sample rows, B bins, K scalar parameters.
    """

    structure: Structure
    nom: Arr        # [P, S, B] nominal yields
    log_khi: Arr    # [P, S, K] ln κ_hi of normsys (0 elsewhere)
    log_klo: Arr    # [P, S, K]
    n_obs: Arr      # [P, B] observed main data
    g_sigma: Arr    # [P, B] Gaussian width δ (staterror) or factor τ (shapesys); 1 elsewhere
    g_init: Arr     # [P, B]
    g_lo: Arr       # [P, B]
    g_hi: Arr       # [P, B]
    g_fixed: Arr    # [P, B] bool (True for bins without γ)
    g_aux: Arr      # [P, B] observed auxiliary data of the γ constraints
    s_init: Arr     # [P, K]
    s_lo: Arr       # [P, K]
    s_hi: Arr       # [P, K]
    s_fixed: Arr    # [P, K] bool
    s_sigma: Arr    # [P, K] width of the Gaussian constraint (NaN: unconstrained)
    s_aux: Arr      # [P, K] observed auxiliary data (NaN: unconstrained)
    poly: Arr | None = None  # [P, S, K, 6] code-4 coefficients (computed when None)

    def __post_init__(self) -> None:
        st = self.structure
        self.use = np.asarray(st.uses, dtype=bool).reshape(len(st.rows), len(st.scalar_names))
        self.u = np.asarray(st.gamma_rows, dtype=bool).reshape(len(st.rows), st.n_bins)
        self.gkind = np.asarray(st.gamma_kind, dtype=int)
        self.is_normsys = np.array([k == "normsys" for k in st.scalar_kinds], dtype=bool)
        self.constrained = np.array([k in ("normsys", "lumi") for k in st.scalar_kinds],
                                    dtype=bool)
        kk = len(st.scalar_names)
        self.pairs = [(k, j) for k in range(kk) for j in range(k + 1, kk)
                      if bool(np.any(self.use[:, k] & self.use[:, j]))]
        self.others = [[i for i in range(kk) if i != k] for k in range(kk)]
        self.others2 = {(k, j): [i for i in range(kk) if i not in (k, j)] for k, j in self.pairs}
        if self.poly is None and st.interpcode == "code4" and self.is_normsys.any():
            self.poly = code4_coefficients(self.log_khi, self.log_klo)

    @property
    def n_points(self) -> int:
        """Number of models (points) in this batch."""
        return int(self.nom.shape[0])

    _FIELDS = ("nom", "log_khi", "log_klo", "n_obs", "g_sigma", "g_init", "g_lo", "g_hi",
               "g_fixed", "g_aux", "s_init", "s_lo", "s_hi", "s_fixed", "s_sigma", "s_aux")

    def take(self, idx: Arr) -> FastModel:
        """The models at the point indices ``idx`` (repeats allowed: one per lane)."""
        return FastModel(self.structure, **{f: getattr(self, f)[idx] for f in self._FIELDS},
                         poly=None if self.poly is None else self.poly[idx])

    @staticmethod
    def stack(models: Sequence[FastModel]) -> FastModel:
        """Concatenate models with the same structure along the point axis."""
        first = models[0]
        for m in models[1:]:
            if m.structure != first.structure:
                raise StatsError("cannot stack fast models with different structures")
        return FastModel(first.structure, **{
            f: np.concatenate([getattr(m, f) for m in models]) for f in FastModel._FIELDS})

    def observed(self) -> Data:
        """The observed dataset of each point."""
        return Data(self.n_obs, self.g_aux, self.s_aux)

    def parameter_values(self, theta: Arr, gamma: Arr) -> dict[str, Arr]:
        """Parameter values by pyhf parameter name (``[P]`` scalars, ``[P, n]`` per-bin sets)."""
        st = self.structure
        out: dict[str, Arr] = {n: theta[:, k] for k, n in enumerate(st.scalar_names)}
        for name, _, bins in st.gamma_sets:
            out[name] = gamma[:, list(bins)]
        return out


@dataclass
class Data:
    """Main and auxiliary data per lane: ``n`` [L, B], ``g_aux`` [L, B], ``s_aux`` [L, K]."""

    n: Arr
    g_aux: Arr
    s_aux: Arr

    def take(self, idx: Arr) -> Data:
        """The lanes ``idx``."""
        return Data(self.n[idx], self.g_aux[idx], self.s_aux[idx])


# --------------------------------------------------------------------------- parsing


def _as_list(value: Any, n: int, what: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise FastPathUnsupported(f"{what}: {len(value)} values for {n} parameters")
        return list(value)
    return [value] * n


def model_from_spec(channels: Sequence[Mapping[str, Any]],
                    parameters: Sequence[Mapping[str, Any]], poi: str,
                    observations: Mapping[str, Sequence[float]],
                    interpcode: str = "code4") -> FastModel:
    """Build a one-point :class:`FastModel` from pyhf's JSON pieces.

    Args:
        channels: The workspace's ``channels``.
        parameters: The measurement's ``config.parameters``.
        poi: Name of the parameter of interest.
        observations: Observed counts by channel name.
        interpcode: Interpolation code of the normsys modifiers (pyhf's default: code4).

    Raises:
        FastPathUnsupported: For modifiers or configurations outside the fast path.
    """
    if interpcode not in ("code1", "code4"):
        raise FastPathUnsupported(f"normsys interpolation {interpcode} is not on the fast path")
    by_name = {str(c["name"]): c for c in channels}
    order = sorted(by_name)
    offsets: dict[str, int] = {}
    nbins_of: dict[str, int] = {}
    start = 0
    for name in order:
        samples = by_name[name].get("samples", [])
        if not samples:
            raise FastPathUnsupported(f"channel {name!r} has no samples")
        n = len(samples[0]["data"])
        offsets[name], nbins_of[name] = start, n
        start += n
    n_bins = start
    rows: list[tuple[str, str]] = []
    noms: list[Arr] = []
    scalar_kind: dict[str, str] = {}
    normsys_data: dict[tuple[int, str], tuple[float, float]] = {}
    row_scalars: list[set[str]] = []
    gamma_kind_of: dict[str, str] = {}
    gamma_members: dict[str, list[tuple[int, Arr]]] = {}  # name -> (row, uncertainties)
    for cname in order:
        for sample in by_name[cname]["samples"]:
            r = len(rows)
            rows.append((cname, str(sample["name"])))
            vals = np.asarray(sample["data"], dtype=float)
            if vals.shape != (nbins_of[cname],):
                raise FastPathUnsupported(f"sample {sample['name']!r}: bad number of bins")
            if not np.all(np.isfinite(vals)) or np.any(vals < 0):
                raise FastPathUnsupported(f"sample {sample['name']!r} has negative yields")
            nom = np.zeros(n_bins)
            nom[offsets[cname]:offsets[cname] + nbins_of[cname]] = vals
            noms.append(nom)
            mine: set[str] = set()
            for mod in sample.get("modifiers", []):
                mname, mtype = str(mod["name"]), str(mod["type"])
                if mtype not in FAST_MODIFIERS:
                    raise FastPathUnsupported(f"modifier {mname!r} of type {mtype}")
                if mtype in ("normfactor", "normsys", "lumi"):
                    if scalar_kind.setdefault(mname, mtype) != mtype or mname in gamma_kind_of:
                        raise FastPathUnsupported(f"modifier name {mname!r} reused")
                    if mname in mine:
                        raise FastPathUnsupported(f"modifier {mname!r} twice on a sample")
                    mine.add(mname)
                    if mtype == "normsys":
                        hi, lo = float(mod["data"]["hi"]), float(mod["data"]["lo"])
                        if not (hi > 0 and lo > 0 and math.isfinite(hi) and math.isfinite(lo)):
                            raise FastPathUnsupported(f"normsys {mname!r} with κ ≤ 0")
                        normsys_data[(r, mname)] = (hi, lo)
                else:
                    if gamma_kind_of.setdefault(mname, mtype) != mtype or mname in scalar_kind:
                        raise FastPathUnsupported(f"modifier name {mname!r} reused")
                    unc = np.zeros(n_bins)
                    unc[offsets[cname]:offsets[cname] + nbins_of[cname]] = np.asarray(
                        mod["data"], dtype=float)
                    gamma_members.setdefault(mname, []).append((r, unc))
            row_scalars.append(mine)
    if poi not in scalar_kind or scalar_kind[poi] != "normfactor":
        raise FastPathUnsupported(f"the POI {poi!r} is not a normfactor")
    names = tuple(sorted(scalar_kind))
    kinds = tuple(scalar_kind[n] for n in names)
    n_rows, n_k = len(rows), len(names)
    nom_arr = np.asarray(noms).reshape(n_rows, n_bins)
    uses = np.zeros((n_rows, n_k), dtype=bool)
    log_khi = np.zeros((n_rows, n_k))
    log_klo = np.zeros((n_rows, n_k))
    for r, mine in enumerate(row_scalars):
        for k, pname in enumerate(names):
            if pname in mine:
                uses[r, k] = True
                if scalar_kind[pname] == "normsys":
                    hi, lo = normsys_data[(r, pname)]
                    log_khi[r, k], log_klo[r, k] = math.log(hi), math.log(lo)

    gamma_kind = np.zeros(n_bins, dtype=int)
    gamma_rows = np.zeros((n_rows, n_bins), dtype=bool)
    g_sigma = np.ones(n_bins)
    g_fixed = np.ones(n_bins, dtype=bool)
    g_aux = np.ones(n_bins)
    g_init = np.ones(n_bins)
    g_lo = np.full(n_bins, GAMMA_BOUNDS[0])
    g_hi = np.full(n_bins, GAMMA_BOUNDS[1])
    gamma_sets: list[tuple[str, str, tuple[int, ...]]] = []
    for gname in sorted(gamma_members):
        members = gamma_members[gname]
        gtype = gamma_kind_of[gname]
        chans = sorted({rows[r][0] for r, _ in members}, key=order.index)
        bins = np.concatenate([np.arange(offsets[c], offsets[c] + nbins_of[c]) for c in chans])
        if np.any(gamma_kind[bins] != _NONE):
            raise FastPathUnsupported(f"bins with two per-bin modifiers ({gname!r})")
        if gtype == "staterror":
            gamma_kind[bins] = _NORMAL
            nomsum = np.zeros(n_bins)
            var = np.zeros(n_bins)
            for r, unc in members:
                gamma_rows[r, bins] = True
                nomsum += nom_arr[r]
                var += unc**2
            sig = np.where(nomsum > 0, np.sqrt(var) / np.where(nomsum > 0, nomsum, 1.0), 0.0)
            fixed = sig[bins] == 0
            g_fixed[bins] = fixed
            g_sigma[bins] = np.where(fixed, 1.0, sig[bins])
            g_aux[bins] = 1.0
        else:
            if len(members) != 1:
                raise FastPathUnsupported(f"shapesys {gname!r} on more than one sample")
            r, unc = members[0]
            gamma_kind[bins] = _POISSON
            gamma_rows[r, bins] = True
            valid = (nom_arr[r, bins] > 0) & (unc[bins] > 0)
            tau = np.where(valid, nom_arr[r, bins] ** 2 / np.where(valid, unc[bins], 1.0) ** 2,
                           1.0)
            g_fixed[bins] = ~valid
            g_sigma[bins] = tau
            g_aux[bins] = tau
        gamma_sets.append((gname, gtype, tuple(int(b) for b in bins)))

    s_init = np.array([0.0 if kd == "normsys" else 1.0 for kd in kinds])
    s_lo = np.array([-5.0 if kd == "normsys" else 0.0 for kd in kinds])
    s_hi = np.array([5.0 if kd == "normsys" else 10.0 for kd in kinds])
    s_fixed = np.zeros(n_k, dtype=bool)
    s_sigma = np.array([1.0 if kd == "normsys" else math.nan for kd in kinds])
    s_aux = np.array([0.0 if kd == "normsys" else math.nan for kd in kinds])
    gamma_index = {g[0]: np.asarray(g[2]) for g in gamma_sets}
    seen: set[str] = set()
    for p in parameters:
        pname = str(p["name"])
        if pname in seen:
            raise FastPathUnsupported(f"parameter {pname!r} configured twice")
        seen.add(pname)
        if pname in scalar_kind:
            k = names.index(pname)
            if "inits" in p:
                s_init[k] = float(_as_list(p["inits"], 1, pname)[0])
            if "bounds" in p:
                s_lo[k], s_hi[k] = (float(x) for x in _as_list(p["bounds"], 1, pname)[0])
            if "fixed" in p:
                s_fixed[k] = bool(p["fixed"])
            if kinds[k] == "lumi":
                if "auxdata" in p:
                    s_aux[k] = float(_as_list(p["auxdata"], 1, pname)[0])
                if "sigmas" in p:
                    s_sigma[k] = float(_as_list(p["sigmas"], 1, pname)[0])
                if "bounds" not in p or "inits" not in p:
                    raise FastPathUnsupported(f"lumi {pname!r} without inits and bounds")
            elif "auxdata" in p or "sigmas" in p:
                if kinds[k] == "normsys" and "auxdata" in p:
                    s_aux[k] = float(_as_list(p["auxdata"], 1, pname)[0])
                else:
                    raise FastPathUnsupported(f"parameter {pname!r}: auxdata/sigmas settings")
        elif pname in gamma_index:
            b = gamma_index[pname]
            if "inits" in p:
                g_init[b] = np.asarray(_as_list(p["inits"], len(b), pname), dtype=float)
            if "bounds" in p:
                bounds = np.asarray(_as_list(p["bounds"], len(b), pname), dtype=float)
                g_lo[b], g_hi[b] = bounds[:, 0], bounds[:, 1]
            if "fixed" in p:
                g_fixed[b] = np.asarray(_as_list(p["fixed"], len(b), pname), dtype=bool)
            if "auxdata" in p or "sigmas" in p or "factors" in p:
                raise FastPathUnsupported(f"parameter {pname!r}: auxdata/sigmas settings")
    for k, kd in enumerate(kinds):
        if kd == "lumi" and not (math.isfinite(s_aux[k]) and s_sigma[k] > 0):
            raise FastPathUnsupported(f"lumi {names[k]!r} without auxdata and sigmas")
    if np.any(s_lo > s_hi) or np.any(g_lo > g_hi):
        raise FastPathUnsupported("parameter bounds with low > high")
    n_obs = np.zeros(n_bins)
    for cname in order:
        if cname not in observations:
            raise FastPathUnsupported(f"no observations for channel {cname!r}")
        obs = np.asarray(observations[cname], dtype=float)
        if obs.shape != (nbins_of[cname],) or np.any(obs < 0) or not np.all(np.isfinite(obs)):
            raise FastPathUnsupported(f"observations of channel {cname!r}")
        n_obs[offsets[cname]:offsets[cname] + nbins_of[cname]] = obs

    structure = Structure(
        channels=tuple((c, nbins_of[c]) for c in order), rows=tuple(rows), scalar_names=names,
        scalar_kinds=kinds, poi=names.index(poi),
        uses=tuple(tuple(bool(x) for x in row) for row in uses),
        gamma_sets=tuple(gamma_sets), gamma_kind=tuple(int(x) for x in gamma_kind),
        gamma_rows=tuple(tuple(bool(x) for x in row) for row in gamma_rows),
        interpcode=interpcode,
    )
    one = np.newaxis
    return FastModel(
        structure, nom_arr[one], log_khi[one], log_klo[one], n_obs[one], g_sigma[one],
        g_init[one], g_lo[one], g_hi[one], g_fixed[one], g_aux[one], s_init[one], s_lo[one],
        s_hi[one], s_fixed[one], s_sigma[one], s_aux[one],
    )


def model_from_workspace(workspace: Mapping[str, Any], measurement: str | None = None,
                         interpcode: str = "code4") -> FastModel:
    """A one-point :class:`FastModel` of a pyhf workspace mapping.

    Raises:
        FastPathUnsupported: Outside the fast path, or a workspace without the needed fields.
    """
    try:
        measurements = list(workspace["measurements"])
        if measurement is None:
            meas = measurements[0]
        else:
            meas = next(m for m in measurements if m["name"] == measurement)
        config = meas["config"]
        obs = {str(o["name"]): o["data"] for o in workspace["observations"]}
        return model_from_spec(workspace["channels"], config.get("parameters", []),
                               str(config["poi"]), obs, interpcode)
    except (KeyError, IndexError, StopIteration, TypeError, ValueError) as exc:
        raise FastPathUnsupported(f"workspace not understood ({type(exc).__name__}: {exc})"
                                  ) from None


# --------------------------------------------------------------------------- likelihood


@dataclass
class Evaluation:
    """−ln L profiled over γ, its gradient and Hessian in the scalar parameters (per lane)."""

    nll: Arr     # [L]
    gamma: Arr   # [L, B]
    nu: Arr      # [L, B]
    grad: Arr | None = None  # [L, K]
    hess: Arr | None = None  # [L, K, K]


def _scalar_factors(m: FastModel, theta: Arr) -> tuple[Arr, Arr, Arr]:
    """Per sample row and scalar parameter: factor, first and second derivative."""
    n_l, n_k = theta.shape
    n_s = m.nom.shape[1]
    fac = np.ones((n_l, n_s, n_k))
    d1 = np.zeros((n_l, n_s, n_k))
    d2 = np.zeros((n_l, n_s, n_k))
    for k in range(n_k):
        t = theta[:, k:k + 1]
        if m.is_normsys[k]:
            lh, ll = m.log_khi[:, :, k], m.log_klo[:, :, k]
            c = np.where(t >= 0, lh, -ll)
            f = np.exp(t * c)
            fk, d1k, d2k = f, f * c, f * c * c
            if m.poly is not None:
                inside = np.abs(t) < 1.0
                if inside.any():
                    a = m.poly[:, :, k, :]
                    tt = np.where(inside, t, 0.0)[:, :, None]
                    pw = tt ** np.arange(7)
                    i = np.arange(1, 7)
                    p0 = 1.0 + np.sum(a * pw[..., 1:], axis=-1)
                    p1 = np.sum(a * i * pw[..., :6], axis=-1)
                    p2 = np.sum((a * i * (i - 1))[..., 1:] * pw[..., :5], axis=-1)
                    fk = np.where(inside, p0, fk)
                    d1k = np.where(inside, p1, d1k)
                    d2k = np.where(inside, p2, d2k)
            fac[:, :, k], d1[:, :, k], d2[:, :, k] = fk, d1k, d2k
        else:
            used = m.use[:, k]
            fac[:, used, k] = t
            d1[:, used, k] = 1.0
    return fac, d1, d2


def evaluate(m: FastModel, data: Data, theta: Arr, derivs: bool = True) -> Evaluation:
    """Profile the per-bin γ in closed form at ``theta`` and return −ln L (and derivatives).

    ``m`` and ``data`` have one entry per lane (see :meth:`FastModel.take`).
    """
    fac, d1, d2 = _scalar_factors(m, theta)
    n_l, n_s, n_k = fac.shape
    big_f = np.prod(fac, axis=2)                      # [L, S]
    nom_f = m.nom * big_f[:, :, None]                 # [L, S, B]
    u = m.u[None]
    a_b = np.sum(np.where(u, nom_f, 0.0), axis=1)     # [L, B]
    c_b = np.sum(np.where(u, 0.0, nom_f), axis=1)
    n = data.n
    aux = data.g_aux
    sig = m.g_sigma
    kind = m.gkind[None]
    free_g = ~m.g_fixed
    normal = kind == _NORMAL
    # larger root of q2 γ² + q1 γ + q0 = 0 (stationarity of Poisson × constraint in γ)
    s2 = sig * sig
    q2 = np.where(normal, a_b, (a_b + sig) * a_b)
    q1 = np.where(normal, a_b * a_b * s2 + c_b - aux * a_b,
                  -(n * a_b + aux * a_b - (a_b + sig) * c_b))
    q0 = np.where(normal, -(n * a_b * s2 - a_b * c_b * s2 + aux * c_b), -aux * c_b)
    disc = np.sqrt(np.maximum(q1 * q1 - 4.0 * q2 * q0, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.where(q1 > 0, -2.0 * q0 / (q1 + disc), (-q1 + disc) / (2.0 * q2))
    degenerate = ~np.isfinite(root)
    root = np.where(degenerate, np.where(normal, aux, aux / sig), root)
    gamma = np.where(free_g, np.clip(root, m.g_lo, m.g_hi), m.g_init)
    gamma = np.where(kind == _NONE, 1.0, gamma)
    nu = gamma * a_b + c_b
    with np.errstate(divide="ignore", invalid="ignore"):
        main = nu - xlogy(n, nu) + gammaln(n + 1.0)
        main = np.where(nu < 0, np.inf, main)
        cons_n = 0.5 * ((aux - gamma) / sig) ** 2 + np.log(sig) + _LOG_SQRT_2PI
        rate = gamma * sig
        cons_p = -(xlogy(aux, rate) - rate - gammaln(aux + 1.0))
    cons = np.where(normal, cons_n, np.where(kind == _POISSON, cons_p, 0.0))
    s_cons = np.where(m.constrained, 0.5 * ((data.s_aux - theta) / m.s_sigma) ** 2
                      + np.log(m.s_sigma) + _LOG_SQRT_2PI, 0.0)
    nll = np.sum(main, axis=1) + np.sum(cons, axis=1) + np.sum(s_cons, axis=1)
    nll = np.where(np.isnan(nll), np.inf, nll)
    ev = Evaluation(nll, gamma, nu)
    if not derivs:
        return ev
    # derivatives of the sample-row factors
    g_rows = np.empty_like(fac)
    h_rows = np.zeros((n_l, n_s, n_k, n_k))
    for k in range(n_k):
        excl = np.prod(fac[:, :, m.others[k]], axis=2)
        g_rows[:, :, k] = d1[:, :, k] * excl
        h_rows[:, :, k, k] = d2[:, :, k] * excl
    for k, j in m.pairs:
        rest = np.prod(fac[:, :, m.others2[(k, j)]], axis=2)
        h_rows[:, :, k, j] = h_rows[:, :, j, k] = d1[:, :, k] * d1[:, :, j] * rest
    w_rows = np.where(u, gamma[:, None, :], 1.0) * m.nom     # [L, S, B]
    dnu = np.einsum("lsb,lsk->lbk", w_rows, g_rows)
    d2nu = np.einsum("lsb,lskj->lbkj", w_rows, h_rows)
    da = np.einsum("lsb,lsk->lbk", np.where(u, m.nom, 0.0), g_rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(nu > 0, 1.0 - n / nu, 1.0)
        w = np.where(nu > 0, n / (nu * nu), 0.0)
    inv_s2 = np.where(m.constrained, 1.0 / m.s_sigma**2, 0.0)
    grad = np.einsum("lb,lbk->lk", r, dnu) + np.where(
        m.constrained, inv_s2 * (theta - data.s_aux), 0.0)
    hess = (np.einsum("lb,lbk,lbj->lkj", w, dnu, dnu) + np.einsum("lb,lbkj->lkj", r, d2nu))
    hess += inv_s2[:, :, None] * np.eye(n_k)[None]
    interior = free_g & (gamma > m.g_lo) & (gamma < m.g_hi) & (kind != _NONE)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_gg = w * a_b * a_b + np.where(normal, 1.0 / s2, aux / (gamma * gamma))
        h_tg = w[:, :, None] * dnu * a_b[:, :, None] + r[:, :, None] * da
        scale = np.where(interior & (h_gg > 0), 1.0 / h_gg, 0.0)
    hess -= np.einsum("lbk,lbj,lb->lkj", h_tg, h_tg, scale)
    ev.grad, ev.hess = grad, hess
    return ev


def logpdf(m: FastModel, data: Data, theta: Arr, gamma: Arr) -> Arr:
    """ln L at explicit parameter values (no profiling), for checks against pyhf.

    Args:
        m: Models, one per lane.
        data: Data, one per lane.
        theta: Scalar parameters [L, K].
        gamma: Per-bin factors [L, B] (ignored in bins without γ).
    """
    fac, _, _ = _scalar_factors(m, theta)
    nom_f = m.nom * np.prod(fac, axis=2)[:, :, None]
    kind = m.gkind[None]
    gam = np.where(kind == _NONE, 1.0, gamma)
    nu = np.sum(np.where(m.u[None], gam[:, None, :], 1.0) * nom_f, axis=1)
    n, aux, sig = data.n, data.g_aux, m.g_sigma
    main = xlogy(n, nu) - nu - gammaln(n + 1.0)
    cons_n = -0.5 * ((aux - gam) / sig) ** 2 - np.log(sig) - _LOG_SQRT_2PI
    rate = gam * sig
    cons_p = xlogy(aux, rate) - rate - gammaln(aux + 1.0)
    cons = np.where(kind == _NORMAL, cons_n, np.where(kind == _POISSON, cons_p, 0.0))
    s_cons = np.where(m.constrained, -0.5 * ((data.s_aux - theta) / m.s_sigma) ** 2
                      - np.log(m.s_sigma) - _LOG_SQRT_2PI, 0.0)
    out: Arr = main.sum(1) + cons.sum(1) + s_cons.sum(1)
    return out


# --------------------------------------------------------------------------- fits


@dataclass
class FitResult:
    """Best fits per lane: scalar parameters, per-bin γ, −ln L, convergence."""

    theta: Arr
    gamma: Arr
    nll: Arr
    converged: Arr
    iterations: int


def _project(theta: Arr, lo: Arr, hi: Arr, free: Arr, fixed_values: Arr) -> Arr:
    out: Arr = np.where(free, np.clip(theta, lo, hi), fixed_values)
    return out


def fit(m: FastModel, data: Data, theta0: Arr, free: Arr, *, tol: float = DECREMENT_TOL,
        max_iter: int = MAX_NEWTON) -> FitResult:
    """Minimize −ln L per lane over the free scalar parameters (γ profiled in closed form).

    Args:
        m: Models, one per lane.
        data: Data, one per lane.
        theta0: Starting values [L, K]; fixed parameters keep these values.
        free: Which scalar parameters float [L, K].
        tol: Newton decrement at which a lane has converged.
        max_iter: Most Newton iterations.
    """
    lo, hi = m.s_lo, m.s_hi
    theta = _project(theta0, lo, hi, free, theta0)
    ev = evaluate(m, data, theta)
    n_l, n_k = theta.shape
    done = np.zeros(n_l, dtype=bool)
    failed = ~np.isfinite(ev.nll)
    eye = np.eye(n_k)[None]
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        assert ev.grad is not None
        assert ev.hess is not None
        g = ev.grad
        act = free & ~((theta <= lo) & (g > 0)) & ~((theta >= hi) & (g < 0))
        pair = act[:, :, None] & act[:, None, :]
        hm = np.where(pair, ev.hess, 0.0) + eye * (~act)[:, :, None]
        gm = np.where(act, g, 0.0)
        eig = np.linalg.eigvalsh(hm)
        top = np.maximum(np.abs(eig).max(axis=1), 1e-300)
        low = eig.min(axis=1)
        shift = np.where(low <= 1e-10 * top, np.abs(low) + 1e-8 * top, 0.0)
        step = -np.linalg.solve(hm + shift[:, None, None] * eye, gm[:, :, None])[:, :, 0]
        step = np.where(act, step, 0.0)
        dec = -np.sum(gm * step, axis=1)
        done |= (dec < tol) & ~failed
        work = ~done & ~failed
        if not work.any():
            break
        idx = np.flatnonzero(work)
        sub_m, sub_d = m.take(idx), data.take(idx)
        t = np.ones(idx.size)
        accepted = np.zeros(idx.size, dtype=bool)
        base_theta, base_nll, d = theta[idx], ev.nll[idx], step[idx]
        g_sub, f_sub = g[idx], free[idx]
        new_theta = base_theta.copy()
        for _ in range(40):
            pending = ~accepted
            if not pending.any():
                break
            trial = _project(base_theta + t[:, None] * d, lo[idx], hi[idx], f_sub, base_theta)
            trial_ev = evaluate(sub_m, sub_d, trial, derivs=False)
            slope = np.sum(g_sub * (trial - base_theta), axis=1)
            ok = trial_ev.nll <= base_nll + 1e-4 * slope + 1e-12 * np.abs(base_nll)
            newly = pending & ok
            new_theta[newly] = trial[newly]
            accepted |= newly
            t = np.where(accepted, t, 0.5 * t)
        lane_ok = idx[accepted]
        stuck = idx[~accepted]
        # a line search that cannot decrease −ln L at a tiny decrement: rounding-limited optimum
        small = dec[stuck] < 1e-6
        done[stuck[small]] = True
        failed[stuck[~small]] = True
        if lane_ok.size:
            theta[lane_ok] = new_theta[accepted]
            new_ev = evaluate(m.take(lane_ok), data.take(lane_ok), theta[lane_ok])
            ev.nll[lane_ok] = new_ev.nll
            ev.gamma[lane_ok] = new_ev.gamma
            ev.nu[lane_ok] = new_ev.nu
            assert new_ev.grad is not None
            assert new_ev.hess is not None
            ev.grad[lane_ok] = new_ev.grad
            ev.hess[lane_ok] = new_ev.hess
            failed[lane_ok] |= ~np.isfinite(new_ev.nll)
    converged = done & ~failed & np.isfinite(ev.nll)
    return FitResult(theta, ev.gamma, ev.nll, converged, it)


def fixed_free(m: FastModel, poi_fixed: bool) -> Arr:
    """The ``free`` mask of :func:`fit`: non-fixed parameters, without the POI if fixed."""
    free = ~m.s_fixed.copy()
    if poi_fixed:
        free[:, m.structure.poi] = False
    out: Arr = free
    return out


# --------------------------------------------------------------------------- asymptotics


def cls_from_q(q: Arr, q_a: Arr, test_stat: str) -> tuple[Arr, Arr]:
    """Observed CLs and the expected band from q_μ and q_μ,A as pyhf's asymptotic calculator.

    The test statistic in the −μ̂/σ space is √q − √q_A, and for q̃ above √q_A it is
    (q − q_A)/(2√q_A) (Cowan et al., arXiv:1007.1727, eq. 66); CLs+b and CLb are its normal
    tail probabilities shifted by −√q_A and 0. The expected band uses the background-only
    quantiles n = 2, 1, 0, −1, −2 (pyhf's order: −2σ limit first).

    Returns:
        ``(cls_obs [L], cls_exp [L, 5])``.
    """
    sq, sqa = np.sqrt(q), np.sqrt(q_a)
    ts = sq - sqa
    if test_stat == "qtilde":
        with np.errstate(divide="ignore", invalid="ignore"):
            ts = np.where(sq <= sqa, ts, (q - q_a) / (2.0 * sqa))
    with np.errstate(divide="ignore", invalid="ignore"):
        obs = ndtr(-(ts + sqa)) / ndtr(-ts)
        nsig = np.asarray(BAND_NSIGMA)[None, :]
        exp = ndtr(-(nsig + sqa[:, None])) / ndtr(-nsig)
    return obs, exp


def _log_cls(q: Arr, q_a: Arr, test_stat: str) -> Arr:
    sq, sqa = np.sqrt(q), np.sqrt(q_a)
    ts = sq - sqa
    if test_stat == "qtilde":
        with np.errstate(divide="ignore", invalid="ignore"):
            ts = np.where(sq <= sqa, ts, (q - q_a) / (2.0 * sqa))
    out: Arr = log_ndtr(-(ts + sqa)) - log_ndtr(-ts)
    return out


def expected_targets(level: float) -> Arr:
    """√q_μ,A at which each expected CLs (n = 2 … −2) equals ``level``."""
    nsig = np.asarray(BAND_NSIGMA)
    out: Arr = -nsig - ndtri(level * ndtr(-nsig))
    return out


@dataclass
class Prepared:
    """The μ-independent fits of each point: free fit, background-only fit, Asimov data.

    Attributes:
        model: The points.
        data: Their observed data.
        free: Free fit to the data (μ̂, θ̂).
        asimov: The Asimov data (μ = 0, nuisance parameters at the background-only fit).
        asimov_free: Free fit to the Asimov data.
        bonly_theta: Background-only fit parameters.
        sigma_mu: σ of μ from the Asimov Hessian (for starting values; NaN if unknown).
        ok: All three fits converged.
    """

    model: FastModel
    data: Data
    free: FitResult
    asimov: Data
    asimov_free: FitResult
    bonly_theta: Arr
    sigma_mu: Arr
    ok: Arr

    @property
    def muhat(self) -> Arr:
        """Best-fit μ per point."""
        out: Arr = self.free.theta[:, self.model.structure.poi]
        return out


def prepare(m: FastModel) -> Prepared:
    """Run the μ-independent fits of every point (vectorized)."""
    poi = m.structure.poi
    data = m.observed()
    init = m.s_init.copy()
    free_fit = fit(m, data, init, fixed_free(m, False))
    theta0 = np.where(m.s_fixed, init, free_fit.theta)
    theta0[:, poi] = 0.0
    bonly = fit(m, data, theta0, fixed_free(m, True))
    ev = evaluate(m, data, bonly.theta, derivs=True)
    kind = m.gkind[None]
    g_aux = np.where(kind == _POISSON, ev.gamma * m.g_sigma,
                     np.where(kind == _NORMAL, ev.gamma, data.g_aux))
    s_aux = np.where(m.constrained, bonly.theta, data.s_aux)
    asimov = Data(ev.nu.copy(), g_aux, s_aux)
    asimov_free = fit(m, asimov, bonly.theta, fixed_free(m, False))
    # σ_μ from the profiled Hessian of the Asimov likelihood at its minimum
    assert ev.hess is not None
    av = evaluate(m, asimov, bonly.theta)
    assert av.hess is not None
    act = fixed_free(m, False)
    k = act.shape[1]
    hm = np.where(act[:, :, None] & act[:, None, :], av.hess, 0.0) + np.eye(k)[None] * (
        ~act)[:, :, None]
    sigma = np.full(m.n_points, math.nan)
    try:
        cov = np.linalg.inv(hm)
        var = cov[:, poi, poi]
        sigma = np.where(var > 0, np.sqrt(np.abs(var)), math.nan)
    except np.linalg.LinAlgError:
        pass
    ok = free_fit.converged & bonly.converged & asimov_free.converged
    return Prepared(m, data, free_fit, asimov, asimov_free, bonly.theta, sigma, ok)


@dataclass
class LaneState:
    """Warm starts per lane: the last fixed-μ fits to the data and to the Asimov data."""

    point: Arr
    theta_data: Arr
    theta_asimov: Arr

    @classmethod
    def start(cls, prep: Prepared, point: Arr) -> LaneState:
        """Lanes of the points ``point`` starting at the free fits."""
        return cls(point, prep.free.theta[point].copy(), prep.bonly_theta[point].copy())


def q_values(prep: Prepared, lanes: LaneState, sel: Arr, mu: Arr, need_obs: Arr
             ) -> tuple[Arr, Arr, Arr]:
    """q_μ (data) and q_μ,A (Asimov) for the lanes ``sel`` at their μ values.

    Updates the lanes' warm starts. Returns ``(q [n], q_a [n], ok [n])``; q is NaN where
    ``need_obs`` is False.
    """
    m_all = prep.model
    poi = m_all.structure.poi
    pts = lanes.point[sel]
    m = m_all.take(pts)
    free = fixed_free(m, True)
    ok = prep.ok[pts].copy()
    # Asimov
    th = lanes.theta_asimov[sel].copy()
    th[:, poi] = mu
    fa = fit(m, prep.asimov.take(pts), th, free)
    lanes.theta_asimov[sel] = np.where(fa.converged[:, None], fa.theta, lanes.theta_asimov[sel])
    t_a = np.clip(2.0 * (fa.nll - prep.asimov_free.nll[pts]), 0.0, None)
    q_a = np.where(prep.asimov_free.theta[pts, poi] > mu, 0.0, t_a)
    ok &= fa.converged
    q = np.full(pts.size, math.nan)
    obs = np.flatnonzero(need_obs)
    if obs.size:
        po = pts[obs]
        th = lanes.theta_data[sel][obs].copy()
        th[:, poi] = mu[obs]
        fd = fit(m.take(obs), prep.data.take(po), th, free[obs])
        rows = np.flatnonzero(sel) if sel.dtype == bool else np.asarray(sel)
        lanes.theta_data[rows[obs]] = np.where(fd.converged[:, None], fd.theta,
                                               lanes.theta_data[rows[obs]])
        t_o = np.clip(2.0 * (fd.nll - prep.free.nll[po]), 0.0, None)
        q[obs] = np.where(prep.free.theta[po, poi] > mu[obs], 0.0, t_o)
        ok[obs] &= fd.converged
    return q, q_a, ok


def cls_at(prep: Prepared, points: Arr, mu: Arr, test_stat: str
           ) -> tuple[Arr, Arr, Arr]:
    """Observed and expected CLs of ``points`` at ``mu`` (one lane each).

    Returns ``(cls_obs [n], cls_exp [n, 5], ok [n])``; CLs ≡ 1 at μ = 0.
    """
    lanes = LaneState.start(prep, points)
    sel = np.arange(points.size)
    q, q_a, ok = q_values(prep, lanes, sel, mu, np.ones(points.size, dtype=bool))
    obs, exp = cls_from_q(q, q_a, test_stat)
    zero = mu == 0
    obs = np.where(zero, 1.0, obs)
    exp = np.where(zero[:, None], 1.0, exp)
    ok &= np.isfinite(obs) & np.all(np.isfinite(exp), axis=1)
    return obs, exp, ok


def _curve_values(prep: Prepared, lanes: LaneState, sel: Arr, curve: Arr, mu: Arr, *,
                  level: float, test_stat: str, targets: Arr) -> tuple[Arr, Arr]:
    """f(μ) per lane, increasing in μ and zero where that lane's CLs equals ``level``."""
    need_obs = curve == 0
    q, q_a, ok = q_values(prep, lanes, sel, mu, need_obs)
    f = np.sqrt(q_a) - targets[np.maximum(curve - 1, 0)]
    if need_obs.any():
        log_cls = np.minimum(_log_cls(q[need_obs], q_a[need_obs], test_stat), 0.0)
        f_obs = ndtri(level) - ndtri_exp(log_cls)
        f[need_obs] = f_obs
    f = np.where(np.isnan(f), math.nan, f)
    return f, ok & ~np.isnan(f)


def solve_limits(prep: Prepared, level: float = 0.05, test_stat: str = "qtilde", *,
                 rtol: float = 1e-9, max_iter: int = 100) -> tuple[Arr, Arr, list[str]]:
    """Observed and expected upper limits (CLs = ``level``) of every point, vectorized.

    Each of the six curves of each point is a lane. Brackets are found from a starting value
    σ_μ × (√q_A target) by widening, then the crossing is found by Anderson–Björck
    regula falsi (bisection when an end is not finite) on a function that is nearly linear in
    μ: √q_μ,A minus its target for the expected curves, Φ⁻¹(level) − Φ⁻¹(CLs) for the
    observed one.

    Returns:
        ``(limits [P, 6], ok [P], reasons)``: observed then −2σ … +2σ; ``reasons[p]`` says why
        point p is not ok (empty when it is).
    """
    n_p = prep.model.n_points
    targets = expected_targets(level)
    point = np.repeat(np.arange(n_p), 6)
    curve = np.tile(np.arange(6), n_p)
    lanes = LaneState.start(prep, point)
    sigma = prep.sigma_mu[point]
    muhat = np.maximum(prep.muhat[point], 0.0)
    target = np.where(curve == 0, targets[2], targets[np.maximum(curve - 1, 0)])
    guess = np.where(curve == 0, muhat + sigma * targets[2], sigma * target)
    guess = np.where(np.isfinite(guess) & (guess > 0), guess, 1.0)
    n_l = point.size
    lo = np.full(n_l, math.nan)
    f_lo = np.full(n_l, math.nan)
    hi = np.full(n_l, math.nan)
    f_hi = np.full(n_l, math.nan)
    lane_ok = np.ones(n_l, dtype=bool)
    mu = guess.copy()
    factor = np.full(n_l, 1.25)
    for _ in range(80):
        todo = np.flatnonzero(lane_ok & (np.isnan(lo) | np.isnan(hi)))
        if not todo.size:
            break
        f, ok = _curve_values(prep, lanes, todo, curve[todo], mu[todo], level=level,
                              test_stat=test_stat, targets=targets)
        lane_ok[todo] &= ok
        below = f < 0
        lo[todo[below]], f_lo[todo[below]] = mu[todo[below]], f[below]
        hi[todo[~below]], f_hi[todo[~below]] = mu[todo[~below]], f[~below]
        grow = np.where(below, factor[todo], 1.0 / factor[todo])
        mu[todo] = mu[todo] * grow
        factor[todo] = np.minimum(factor[todo] * 2.0, 16.0)
        lane_ok[todo] &= (mu[todo] > 1e-12 * guess[todo]) & (mu[todo] < 1e12 * guess[todo])
    lane_ok &= np.isfinite(lo) & np.isfinite(hi)
    result = np.full(n_l, math.nan)
    side = np.zeros(n_l, dtype=int)  # −1: lo replaced last, +1: hi replaced last
    active = lane_ok.copy()
    for _ in range(max_iter):
        todo = np.flatnonzero(active)
        if not todo.size:
            break
        a, fa, b, fb = lo[todo], f_lo[todo], hi[todo], f_hi[todo]
        with np.errstate(divide="ignore", invalid="ignore"):
            c = (a * fb - b * fa) / (fb - fa)
        bad = ~np.isfinite(c) | (c <= np.minimum(a, b)) | (c >= np.maximum(a, b))
        c = np.where(bad, 0.5 * (a + b), c)
        f, ok = _curve_values(prep, lanes, todo, curve[todo], c, level=level,
                              test_stat=test_stat, targets=targets)
        lane_ok[todo] &= ok
        active[todo] &= ok
        neg = f < 0
        # Anderson–Björck: scale the retained end's value when the same end is kept twice
        with np.errstate(divide="ignore", invalid="ignore"):
            m_lo = 1.0 - f / f_hi[todo]
            m_hi = 1.0 - f / f_lo[todo]
        keep_hi_twice = neg & (side[todo] == -1)
        keep_lo_twice = ~neg & (side[todo] == 1)
        f_hi[todo[keep_hi_twice]] *= np.where(m_lo[keep_hi_twice] > 0, m_lo[keep_hi_twice], 0.5)
        f_lo[todo[keep_lo_twice]] *= np.where(m_hi[keep_lo_twice] > 0, m_hi[keep_lo_twice], 0.5)
        lo[todo[neg]], f_lo[todo[neg]] = c[neg], f[neg]
        hi[todo[~neg]], f_hi[todo[~neg]] = c[~neg], f[~neg]
        side[todo] = np.where(neg, -1, 1)
        width = np.abs(hi[todo] - lo[todo])
        fin = (np.abs(f) < 1e-10) | (width <= rtol * np.abs(c))
        result[todo[fin]] = c[fin]
        active[todo[fin]] = False
    lane_ok &= np.isfinite(result)
    limits = result.reshape(n_p, 6)
    ok_p = lane_ok.reshape(n_p, 6).all(axis=1) & prep.ok
    reasons = []
    for p in range(n_p):
        if ok_p[p]:
            reasons.append("")
        elif not prep.ok[p]:
            reasons.append("a μ-independent fit (free, background-only or Asimov) did not "
                           "converge")
        else:
            bad = [("observed", "-2σ", "-1σ", "median", "+1σ", "+2σ")[i] for i in range(6)
                   if not lane_ok[6 * p + i]]
            reasons.append(f"no converged crossing for the {', '.join(bad)} curve(s)")
    return limits, ok_p, reasons


def chunks(n: int, size: int) -> Iterable[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``."""
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + size))
