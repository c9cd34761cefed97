"""The limit engine: which path a model takes, exact single limits, batched signal points.

Models whose nuisance parameters are only per-bin MC-stat factors (``staterror``,
``shapesys``) and normalizations (``normsys`` code 1/4, ``lumi``, ``normfactor``) take the
**fast path** (:mod:`recastkit.stats.fastfit`: γ profiled in closed form, Newton steps with
exact Hessians, every point of a grid in the same numpy operations). Every other model takes
**pyhf's path**: :func:`pyhf.infer.hypotest` and
:func:`pyhf.infer.intervals.upper_limits.toms748_scan`. A fast-path point whose fits or
root finding do not converge is recomputed with pyhf's path and flagged (``notes`` of a
:class:`~recastkit.stats.results.LimitResult`, ``status="fallback"`` and ``reason`` of a
:class:`~recastkit.stats.results.PointResult`); nothing is returned silently wrong.

Upper limits are the crossings CLs(μ) = 1 − CL of the observed and of each expected curve,
found by root finding (never by interpolating a scan): asymptotic formulae of Cowan,
Cranmer, Gross, Vitells, Eur. Phys. J. C 71 (2011) 1554 (arXiv:1007.1727), CLs of Read,
J. Phys. G 28 (2002) 2693.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recastkit.exceptions import StatsError
from recastkit.stats.fastfit import (
    FastModel,
    FastPathUnsupported,
    Prepared,
    chunks,
    cls_at,
    model_from_spec,
    model_from_workspace,
    prepare,
    solve_limits,
)
from recastkit.stats.model import Likelihood, likelihood_from_workspace
from recastkit.stats.results import PointResult

log = logging.getLogger(__name__)

TEST_STATS: tuple[str, ...] = ("qtilde", "q")
#: Relative tolerance of the pyhf-path root finding (``toms748_scan``).
PYHF_RTOL = 1e-6
#: Points evaluated together on the fast path (bounds the memory of a large grid).
CHUNK_SIZE = 500

Five = tuple[float, float, float, float, float]


def _five(values: Sequence[float] | np.ndarray) -> Five:
    v = [float(x) for x in values]
    return (v[0], v[1], v[2], v[3], v[4])


def check_settings(cl: float, test_stat: str) -> None:
    """Reject a confidence level outside (0, 1) or an unknown test statistic.

    Raises:
        StatsError: Naming the bad value and the valid choices.
    """
    if test_stat not in TEST_STATS:
        msg = f"unknown test statistic {test_stat!r}; valid choices: {', '.join(TEST_STATS)}"
        raise StatsError(msg)
    if not (isinstance(cl, (int, float)) and 0 < cl < 1):
        raise StatsError(f"confidence level must be in (0, 1), got {cl!r}")


# --------------------------------------------------------------------------- path choice


def fast_model_from_likelihood(lh: Likelihood) -> FastModel:
    """The fast-path model of a compiled :class:`Likelihood` (its data, inits, bounds, fixed).

    The per-bin widths and Poisson factors are checked against pyhf's own parameter sets.

    Raises:
        FastPathUnsupported: Outside the fast path (the message says why).
    """
    model = lh.model
    cfg = model.config
    spec = model.spec
    interp = str(getattr(cfg, "modifier_settings", {}).get("normsys", {})
                 .get("interpcode", "code4"))
    data = np.asarray(lh.data, dtype=float)
    obs: dict[str, Any] = {}
    off = 0
    for ch in cfg.channels:
        n = int(cfg.channel_nbins[ch])
        obs[ch] = data[off:off + n]
        off += n
    fm = model_from_spec(spec["channels"], spec.get("parameters", []), str(cfg.poi_name), obs,
                         interp)
    st = fm.structure
    gamma_bins = {name: np.asarray(bins) for name, _, bins in st.gamma_sets}
    init = np.asarray(lh.init_pars, dtype=float)
    bounds = np.asarray(lh.par_bounds, dtype=float)
    fixed = np.asarray(lh.fixed_params, dtype=bool)
    for name in cfg.par_order:
        sl = cfg.par_slice(name)
        if name in st.scalar_names:
            k = st.scalar_names.index(name)
            fm.s_init[0, k] = init[sl][0]
            fm.s_lo[0, k], fm.s_hi[0, k] = bounds[sl][0]
            fm.s_fixed[0, k] = fixed[sl][0]
        elif name in gamma_bins:
            b = gamma_bins[name]
            if len(b) != sl.stop - sl.start:
                raise FastPathUnsupported(f"parameter set {name!r} has a different size")
            fm.g_init[0, b] = init[sl]
            fm.g_lo[0, b], fm.g_hi[0, b] = bounds[sl][:, 0], bounds[sl][:, 1]
            fm.g_fixed[0, b] = fixed[sl]
        else:
            raise FastPathUnsupported(f"parameter {name!r} unknown to the fast path")
    aux = data[off:]
    pos = 0
    for name in cfg.auxdata_order:
        ps = cfg.param_set(name)
        n = int(ps.n_parameters)
        vals = aux[pos:pos + n]
        pos += n
        if name in st.scalar_names:
            k = st.scalar_names.index(name)
            fm.s_aux[0, k] = vals[0]
            if st.scalar_kinds[k] == "lumi" and not math.isclose(
                    float(ps.width()[0]), float(fm.s_sigma[0, k]), rel_tol=1e-9):
                raise FastPathUnsupported(f"lumi {name!r}: width differs from pyhf's")
        elif name in gamma_bins:
            b = gamma_bins[name]
            fm.g_aux[0, b] = vals
            mine = fm.g_sigma[0, b]
            theirs = np.asarray(ps.factors if ps.pdf_type == "poisson" else ps.width(),
                                dtype=float)
            if not np.allclose(mine, theirs, rtol=1e-9, atol=0.0):
                raise FastPathUnsupported(f"{name!r}: constraint widths differ from pyhf's")
        else:
            raise FastPathUnsupported(f"constrained parameter {name!r} unknown to the fast path")
    if pos != aux.size:
        raise FastPathUnsupported("auxiliary data of unexpected length")
    fm.__post_init__()
    return fm


def supports_fast_path(workspace: Mapping[str, Any], measurement: str | None = None,
                       interpcode: str = "code4") -> bool:
    """Whether the model of a pyhf workspace mapping takes the fast path."""
    return fast_path_reason(workspace, measurement, interpcode) == ""


def fast_path_reason(workspace: Mapping[str, Any], measurement: str | None = None,
                     interpcode: str = "code4") -> str:
    """Why a workspace is not on the fast path (empty string when it is)."""
    try:
        model_from_workspace(workspace, measurement, interpcode)
    except FastPathUnsupported as exc:
        return str(exc)
    return ""


# --------------------------------------------------------------------------- pyhf's path


def _pyhf_hypotest(lh: Likelihood, mu: float, test_stat: str) -> tuple[float, Five]:
    import warnings

    import pyhf

    bounds = [list(b) for b in lh.par_bounds]
    poi = lh.poi_index
    bounds[poi][1] = max(bounds[poi][1], float(mu))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obs, exp = pyhf.infer.hypotest(
            float(mu), np.asarray(lh.data, dtype=float), lh.model, init_pars=list(lh.init_pars),
            par_bounds=bounds, fixed_params=list(lh.fixed_params), test_stat=test_stat,
            return_expected_set=True)
    values = [float(obs), *(float(e) for e in exp)]
    if mu == 0.0:
        values = [1.0 if math.isnan(v) else v for v in values]
    return values[0], _five(values[1:])


def _fit_free_estimate(lh: Likelihood) -> float:
    from recastkit.stats.limits import asimov_limit_estimate

    est = asimov_limit_estimate(lh)
    return 1.0 if est is None or not math.isfinite(est) else float(est)


def pyhf_limits(lh: Likelihood, cl: float = 0.95, test_stat: str = "qtilde",
                rtol: float = PYHF_RTOL) -> tuple[float, Five]:
    """Observed and expected limits with pyhf's ``toms748_scan`` (bracket from an estimate).

    The POI upper bound is widened so that the fixed-μ fits of the bracket search stay
    inside it.

    Raises:
        StatsError: When pyhf's fits fail.
    """
    import warnings

    import pyhf
    from pyhf.infer.intervals.upper_limits import toms748_scan

    est = _fit_free_estimate(lh)
    bounds = [list(b) for b in lh.par_bounds]
    poi = lh.poi_index
    bounds[poi][1] = max(bounds[poi][1], 1000.0 * est)
    from recastkit.stats.limits import fit_cache

    try:
        with warnings.catch_warnings(), fit_cache():
            warnings.simplefilter("ignore", RuntimeWarning)
            obs, exp = toms748_scan(
                np.asarray(lh.data, dtype=float), lh.model, 0.5 * est, 3.0 * est,
                level=1.0 - cl, atol=1e-12 * est, rtol=rtol, init_pars=list(lh.init_pars),
                par_bounds=bounds, fixed_params=list(lh.fixed_params), test_stat=test_stat)
    except (pyhf.exceptions.FailedMinimization, ValueError, RuntimeError) as exc:
        raise StatsError(f"pyhf's limit scan failed: {exc}") from None
    return float(obs), _five([float(e) for e in exp])


# --------------------------------------------------------------------------- single model


@dataclass(frozen=True)
class SingleLimit:
    """Observed and expected limits of one model and how they were obtained.

    Attributes:
        observed: Observed upper limit on μ.
        expected: Expected limits, −2σ … +2σ.
        cl: Confidence level.
        test_stat: ``"qtilde"`` or ``"q"``.
        path: ``"fast"`` or ``"pyhf"``.
        notes: Why pyhf's path was used, fallbacks.
        seconds: Wall time.
    """

    observed: float
    expected: Five
    cl: float
    test_stat: str
    path: str
    notes: tuple[str, ...] = ()
    seconds: float = 0.0


class LikelihoodEngine:
    """Limits and CLs of one compiled :class:`Likelihood` on the fast path when possible.

    Attributes:
        lh: The likelihood.
        path: ``"fast"`` or ``"pyhf"``.
        reason: Why pyhf's path is used (empty on the fast path).
        notes: Remarks accumulated (fallbacks).
    """

    def __init__(self, lh: Likelihood, test_stat: str = "qtilde") -> None:
        check_settings(0.95, test_stat)
        self.lh = lh
        self.test_stat = test_stat
        self.notes: list[str] = []
        self.prep: Prepared | None = None
        self.reason = ""
        try:
            self.prep = prepare(fast_model_from_likelihood(lh))
        except FastPathUnsupported as exc:
            self.reason = str(exc)
            self.notes.append(f"pyhf's fits used (not on the fast path: {exc})")
        if self.prep is not None and not bool(self.prep.ok[0]):
            self._fallback("the free, background-only or Asimov fit did not converge")

    @property
    def path(self) -> str:
        """``"fast"`` or ``"pyhf"``."""
        return "fast" if self.prep is not None else "pyhf"

    def _fallback(self, why: str) -> None:
        note = f"fast path did not converge ({why}); recomputed with pyhf's fits"
        log.warning(note)
        self.notes.append(note)
        self.prep = None
        self.reason = why

    def limits(self, cl: float = 0.95) -> SingleLimit:
        """Observed and expected upper limits (root finding on each curve)."""
        check_settings(cl, self.test_stat)
        t0 = time.perf_counter()
        if self.prep is not None:
            lim, ok, reasons = solve_limits(self.prep, 1.0 - cl, self.test_stat)
            if bool(ok[0]):
                return SingleLimit(float(lim[0, 0]), _five(lim[0, 1:]), cl, self.test_stat,
                                   "fast", tuple(self.notes), time.perf_counter() - t0)
            self._fallback(reasons[0])
        obs, exp = pyhf_limits(self.lh, cl, self.test_stat)
        return SingleLimit(obs, exp, cl, self.test_stat, "pyhf", tuple(self.notes),
                           time.perf_counter() - t0)

    def cls(self, mus: Sequence[float], *, workers: int = 1,
            progress: Callable[[int, str], None] | None = None
            ) -> tuple[list[float], list[Five]]:
        """Observed and expected CLs at each μ (CLs ≡ 1 at μ = 0)."""
        mu = np.asarray([float(m) for m in mus], dtype=float)
        if self.prep is not None and mu.size:
            obs, exp, ok = cls_at(self.prep, np.zeros(mu.size, dtype=int), mu, self.test_stat)
            if bool(ok.all()):
                return [float(x) for x in obs], [_five(row) for row in exp]
            self._fallback("a fixed-μ fit of the CLs scan")
        from recastkit.stats.limits import _ClsCurve, fit_cache

        lh = self.lh
        poi = lh.poi_index
        if mu.size and float(mu.max()) > lh.par_bounds[poi][1]:
            # pyhf refuses fits whose initial μ lies outside the POI bounds: widen them, as
            # pyhf_limits does for its bracket search
            bounds = list(lh.par_bounds)
            bounds[poi] = (bounds[poi][0], 2.0 * float(mu.max()))
            lh = dataclasses.replace(lh, par_bounds=tuple(bounds))
        curve = _ClsCurve(lh, self.test_stat, workers, progress)
        with fit_cache():
            curve.many(mu.tolist())
            values = [curve(float(m)) for m in mu]
        return [v[0] for v in values], [_five(v[1]) for v in values]


def limits_of_likelihood(lh: Likelihood, *, cl: float = 0.95, test_stat: str = "qtilde"
                         ) -> SingleLimit:
    """Observed and expected upper limits of ``lh`` (fast path when possible)."""
    return LikelihoodEngine(lh, test_stat).limits(cl)


# --------------------------------------------------------------------------- batches


def patch_from_patchset(patchset: Any, name: str, source: str = "patchset"
                        ) -> list[Mapping[str, Any]]:
    """The operations of the patch ``name`` of a pyhf PatchSet document.

    Raises:
        StatsError: If ``patchset`` is not a patchset or has no patch of that name (lists
            the first names).
    """
    if not isinstance(patchset, Mapping) or not isinstance(patchset.get("patches"), list):
        raise StatsError(f"{source}: not a pyhf patchset (no 'patches' list)")
    names = []
    for patch in patchset["patches"]:
        pname = str(patch.get("metadata", {}).get("name", ""))
        if pname == name:
            ops = patch.get("patch")
            if not isinstance(ops, list):
                raise StatsError(f"{source}: patch {name!r} has no 'patch' list")
            return list(ops)
        names.append(pname)
    shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
    raise StatsError(f"{source}: no patch named {name!r}; {len(names)} patches: {shown}")


def _apply(background: Mapping[str, Any], name: str,
           ops: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, Any]:
    import jsonpatch

    # a pyhf patch {"metadata": ..., "patch": [...]} or the operations themselves
    operations: Any = ops.get("patch", ops) if isinstance(ops, Mapping) else ops
    try:
        out: dict[str, Any] = jsonpatch.apply_patch(dict(background), list(operations))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
            KeyError, ValueError) as exc:
        raise StatsError(f"{name}: the patch does not apply to the workspace ({exc})") from None
    return out


def pyhf_point(workspace: Mapping[str, Any], name: str, *, mu: float = 1.0,
               limits: bool = False, cl: float = 0.95, test_stat: str = "qtilde",
               measurement: str | None = None, interpcode: str = "code4",
               status: str = "converged", reason: str = "") -> PointResult:
    """One point with pyhf's own fits (NaN CLs from pyhf are reported as NaN).

    ``status``/``reason`` label the result (``"fallback"`` when it replaces a fast-path
    point). A failure of pyhf gives ``status="failed"``.
    """
    try:
        lh = likelihood_from_workspace(
            workspace, measurement=measurement,
            modifier_settings={"normsys": {"interpcode": interpcode},
                               "histosys": {"interpcode": "code4p"}})
        obs, exp = _pyhf_hypotest(lh, mu, test_stat)
        obs_lim: float | None = None
        exp_lim: Five | None = None
        if limits:
            obs_lim, exp_lim = pyhf_limits(lh, cl, test_stat)
    except StatsError as exc:
        why = f"{reason}; " if reason else ""
        return PointResult(name, float(mu), math.nan, (math.nan,) * 5, "failed", cl=cl,
                           test_stat=test_stat, reason=f"{why}pyhf: {exc}", path="pyhf")
    stat: Any = status
    return PointResult(name, float(mu), obs, exp, stat, obs_lim, exp_lim, cl, test_stat,
                       reason, path="pyhf")


def evaluate_points(background_workspace: Mapping[str, Any],
                    signals: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *,
                    mu: float = 1.0, limits: bool = False, cl: float = 0.95,
                    test_stat: str = "qtilde", measurement: str | None = None,
                    interpcode: str = "code4", chunk_size: int = CHUNK_SIZE,
                    progress: Callable[[int, str], None] | None = None) -> list[PointResult]:
    """CLs at ``mu`` (and optionally the upper limits) of many signals over one background.

    Each signal is a name and JSON Patch operations (RFC 6902) applied to
    ``background_workspace``. Points on the fast path are evaluated together, ``chunk_size``
    at a time: the μ-independent fits, the CLs at ``mu`` and the six limit curves of every
    point of a chunk are one vectorized computation. A fast-path point that does not
    converge is recomputed with pyhf (``status="fallback"``, ``reason``); points outside
    the fast path use pyhf (``path="pyhf"``); a point that pyhf cannot evaluate has
    ``status="failed"``. :func:`iter_points` yields the same results chunk by chunk (memory
    independent of the number of points).

    Module-level and picklable: worker processes can call it on slices of ``signals``.

    Args:
        background_workspace: The background-only pyhf workspace.
        signals: ``(name, patch operations)`` per point.
        mu: Signal strength at which CLs is computed.
        limits: Also compute the observed and expected upper limits on μ.
        cl: Confidence level of the limits.
        test_stat: ``"qtilde"`` or ``"q"``.
        measurement: Measurement name (default: the first).
        interpcode: Interpolation code of normsys modifiers (pyhf's default code4).
        chunk_size: Points per vectorized batch.
        progress: Called after each chunk with the number of points done and the last name.

    Returns:
        One :class:`PointResult` per signal, in order.

    Raises:
        StatsError: Invalid ``cl``, ``test_stat`` or ``mu``.
    """
    return list(iter_points(background_workspace, signals, mu=mu, limits=limits, cl=cl,
                            test_stat=test_stat, measurement=measurement,
                            interpcode=interpcode, chunk_size=chunk_size, progress=progress))


def iter_points(background_workspace: Mapping[str, Any],
                signals: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *,
                mu: float = 1.0, limits: bool = False, cl: float = 0.95,
                test_stat: str = "qtilde", measurement: str | None = None,
                interpcode: str = "code4", chunk_size: int = CHUNK_SIZE,
                progress: Callable[[int, str], None] | None = None) -> Iterator[PointResult]:
    """:func:`evaluate_points` as a generator: results in order, one chunk at a time.

    Only one chunk of models and results is held at a time, so a caller that stores each
    result as it comes (and a ``signals`` sequence that builds its items on access) runs
    any number of points in constant memory.
    """
    check_settings(cl, test_stat)
    if not (math.isfinite(mu) and mu >= 0):
        raise StatsError(f"μ must be a non-negative number, got {mu!r}")
    settings: dict[str, Any] = {"mu": mu, "limits": limits, "cl": cl, "test_stat": test_stat,
                                "measurement": measurement, "interpcode": interpcode}
    for part in chunks(len(signals), chunk_size):
        out: dict[int, PointResult] = {}
        names: dict[int, str] = {}
        groups: dict[Any, list[tuple[int, FastModel, dict[str, Any]]]] = {}
        for i in range(part.start, part.stop):
            name, ops = signals[i]
            names[i] = name
            try:
                ws = _apply(background_workspace, name, ops)
            except StatsError as exc:
                out[i] = PointResult(name, float(mu), math.nan, (math.nan,) * 5, "failed",
                                     cl=cl, test_stat=test_stat, reason=str(exc))
                continue
            try:
                fm = model_from_workspace(ws, measurement, interpcode)
            except FastPathUnsupported:
                out[i] = pyhf_point(ws, name, **settings)
                continue
            groups.setdefault(fm.structure, []).append((i, fm, ws))
        for members in groups.values():
            batch = FastModel.stack([fm for _, fm, _ in members])
            fast = _fast_batch(batch, [names[i] for i, _, _ in members], mu=mu, limits=limits,
                               cl=cl, test_stat=test_stat)
            for (i, _, ws), res in zip(members, fast, strict=True):
                out[i] = res if res.status == "converged" else pyhf_point(
                    ws, res.name, **settings, status="fallback", reason=res.reason)
        for i in range(part.start, part.stop):
            yield out[i]
        if progress is not None and part.stop > part.start:
            progress(part.stop, names[part.stop - 1])


def _fast_batch(batch: FastModel, names: Sequence[str], *, mu: float, limits: bool, cl: float,
                test_stat: str) -> list[PointResult]:
    """Fast-path results of a stacked batch; unconverged points get status ``fallback``."""
    prep = prepare(batch)
    n = batch.n_points
    obs, exp, ok = cls_at(prep, np.arange(n), np.full(n, float(mu)), test_stat)
    reasons = ["" if good else "a fit at the tested μ did not converge" for good in ok]
    for bad in np.flatnonzero(~prep.ok).tolist():
        reasons[bad] = "the free, background-only or Asimov fit did not converge"
    lim = None
    if limits:
        lim, ok_lim, why = solve_limits(prep, 1.0 - cl, test_stat)
        for p in range(n):
            if not ok_lim[p] and not reasons[p]:
                reasons[p] = why[p]
    results = []
    for p in range(n):
        good = not reasons[p]
        results.append(PointResult(
            names[p], float(mu), float(obs[p]), _five(exp[p]),
            "converged" if good else "fallback",
            None if lim is None else float(lim[p, 0]),
            None if lim is None else _five(lim[p, 1:]),
            cl, test_stat, reasons[p], path="fast"))
    return results
