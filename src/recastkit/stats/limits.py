"""CLs, μ scans, upper limits and discovery significance with pyhf's asymptotic calculator.

Statistics follow Cowan, Cranmer, Gross, Vitells, Eur. Phys. J. C 71 (2011) 1554
(arXiv:1007.1727): the test statistic q̃_μ (``"qtilde"``, POI bounded at 0) or q_μ (``"q"``),
q₀ for discovery, and the CLs method of Read, J. Phys. G 28 (2002) 2693. Every CLs value is
computed by :func:`pyhf.infer.hypotest` (numpy backend, scipy optimizer).

Speed: a hypotest runs five maximum-likelihood fits, three of which do not depend on the
tested μ (the free fits to the data and to the Asimov data, and the background-only fit that
generates the Asimov data). Within a scan those fits are memoized (:func:`fit_cache`), so each
further μ costs two fits. The fits are deterministic, so the numbers are bit-identical to
calling :func:`pyhf.infer.hypotest` directly. The fits use finite-difference gradients (numpy
backend), so their cost grows with the square of the number of parameters: a one-channel model
with 100 bins (100 staterror parameters) needs ~10 s per μ point, a 10-bin model ~0.2 s.

Upper limits: the initial μ range is three times a fit-free Asimov estimate of the median
expected limit; it then adapts until the observed and every expected CLs curve cross the
level ``1 − cl`` (extending or shrinking it, with a log message and a note in the result);
the scan is interpolated linearly in log CLs between the two bracketing points, and the
observed limit is then refined with :func:`scipy.optimize.toms748` on CLs(μ) − (1 − cl).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from recastkit.exceptions import StatsError
from recastkit.stats.model import Likelihood
from recastkit.stats.results import ClsResult, LimitResult

log = logging.getLogger(__name__)

TestStat = Literal["qtilde", "q"]
#: Progress callback: (hypotests done so far, what is being computed).
Progress = Callable[[int, str], None]
TEST_STATS: tuple[str, ...] = ("qtilde", "q")
#: Largest number of doublings/halvings of the μ range before giving up.
MAX_RANGE_STEPS = 30

_CACHE_LOCK = threading.RLock()


def _key(*parts: Any) -> tuple[Any, ...]:
    out: list[Any] = []
    for p in parts:
        if isinstance(p, (list, tuple, np.ndarray)):
            arr = np.asarray(p, dtype=float)
            out.append((arr.shape, arr.tobytes()))
        else:
            out.append(p)
    return tuple(out)


@contextlib.contextmanager
def fit_cache() -> Iterator[None]:
    """Memoize pyhf's maximum-likelihood fits while the context is active.

    The fits called by :func:`pyhf.infer.hypotest` (``mle.fit`` and ``mle.fixed_poi_fit`` as
    imported by ``pyhf.infer.test_statistics`` and ``pyhf.infer.calculators``) are wrapped by
    a cache keyed on the model, the data, the POI value, the initial values, bounds and fixed
    flags. Results are identical to uncached calls; only repeated fits are skipped.
    """
    from pyhf.infer import calculators, test_statistics

    with _CACHE_LOCK:
        if getattr(test_statistics.fit, "_recastkit_cached", False):
            yield  # already active (nested call)
            return
        store: dict[tuple[Any, ...], Any] = {}
        orig_fit = test_statistics.fit
        orig_fixed_ts = test_statistics.fixed_poi_fit
        orig_fixed_calc = calculators.fixed_poi_fit

        def wrap(fn: Callable[..., Any], name: str, with_poi: bool) -> Callable[..., Any]:
            def cached(*args: Any, **kwargs: Any) -> Any:
                try:
                    if with_poi:
                        poi, data, pdf, init, bounds, fixed = args[:6]
                    else:
                        poi, (data, pdf, init, bounds, fixed) = None, args[:5]
                    key = _key(name, id(pdf), None if poi is None else float(poi), data, init,
                               bounds, fixed, tuple(sorted(kwargs.items())))
                except (TypeError, ValueError):
                    return fn(*args, **kwargs)
                if key not in store:
                    store[key] = fn(*args, **kwargs)
                return store[key]

            cached._recastkit_cached = True  # type: ignore[attr-defined]
            return cached

        test_statistics.fit = wrap(orig_fit, "fit", with_poi=False)
        test_statistics.fixed_poi_fit = wrap(orig_fixed_ts, "fixed", with_poi=True)
        calculators.fixed_poi_fit = wrap(orig_fixed_calc, "fixed", with_poi=True)
        try:
            yield
        finally:
            test_statistics.fit = orig_fit
            test_statistics.fixed_poi_fit = orig_fixed_ts
            calculators.fixed_poi_fit = orig_fixed_calc


def _check_test_stat(test_stat: str) -> None:
    if test_stat not in TEST_STATS:
        msg = f"unknown test statistic {test_stat!r}; valid choices: {', '.join(TEST_STATS)}"
        raise StatsError(msg)


def _hypotest(lh: Likelihood, mu: float, test_stat: str) -> tuple[float, tuple[float, ...]]:
    """pyhf's hypotest; at μ = 0, where s+b and b-only coincide, CLs ≡ 1 (pyhf may give 0/0)."""
    import warnings

    import pyhf

    with warnings.catch_warnings():
        if mu == 0.0:
            warnings.simplefilter("ignore", RuntimeWarning)
        obs, exp = _raw_hypotest(pyhf, lh, mu, test_stat)
    values = (float(obs), *(float(e) for e in exp))
    if mu == 0.0:
        values = tuple(1.0 if math.isnan(v) else v for v in values)
    if any(math.isnan(v) for v in values):
        msg = f"CLs at μ = {mu:g} is NaN (a fit failed); check the model and the POI bounds"
        raise StatsError(msg)
    return values[0], values[1:]


def _raw_hypotest(pyhf: Any, lh: Likelihood, mu: float, test_stat: str) -> Any:
    return pyhf.infer.hypotest(
        float(mu), np.asarray(lh.data, dtype=float), lh.model,
        init_pars=list(lh.init_pars), par_bounds=[list(b) for b in lh.par_bounds],
        fixed_params=list(lh.fixed_params), test_stat=test_stat, return_expected_set=True,
    )


def compute_cls(lh: Likelihood, mu: float = 1.0, test_stat: TestStat | str = "qtilde"
                ) -> ClsResult:
    """Observed and expected CLs at signal strength ``mu``.

    Args:
        lh: The compiled model and data.
        mu: Tested signal strength (within the POI bounds).
        test_stat: ``"qtilde"`` (default, as ``pyhf cls``) or ``"q"``.

    Raises:
        StatsError: For an unknown test statistic or a μ outside the POI bounds.
    """
    _check_test_stat(test_stat)
    low, high = lh.par_bounds[lh.poi_index]
    if not (math.isfinite(mu) and low <= mu <= high):
        msg = f"μ = {mu!r} is outside the bounds [{low:g}, {high:g}] of the POI {lh.poi_name!r}"
        raise StatsError(msg)
    obs, exp = _hypotest(lh, mu, test_stat)
    return ClsResult(float(mu), obs, (exp[0], exp[1], exp[2], exp[3], exp[4]), str(test_stat))


def best_fit(lh: Likelihood, fixed_poi: float | None = None) -> dict[str, tuple[float, ...]]:
    """Maximum-likelihood parameter values (``pyhf.infer.mle.fit``), by parameter name.

    Args:
        lh: The compiled model and data.
        fixed_poi: Fix the POI at this value (``pyhf.infer.mle.fixed_poi_fit``); free if None.

    Raises:
        StatsError: If the fit fails (one line, pyhf's reason).
    """
    import pyhf

    data = np.asarray(lh.data, dtype=float)
    kwargs: dict[str, Any] = {"init_pars": list(lh.init_pars),
                              "par_bounds": [list(b) for b in lh.par_bounds],
                              "fixed_params": list(lh.fixed_params)}
    try:
        if fixed_poi is None:
            pars = pyhf.infer.mle.fit(data, lh.model, **kwargs)
        else:
            pars = pyhf.infer.mle.fixed_poi_fit(float(fixed_poi), data, lh.model, **kwargs)
    except pyhf.exceptions.FailedMinimization as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "no reason given"
        raise StatsError(f"the maximum-likelihood fit failed: {reason}") from None
    values = np.asarray(pars, dtype=float)
    out: dict[str, tuple[float, ...]] = {}
    for name in lh.model.config.par_order:
        out[name] = tuple(float(v) for v in np.atleast_1d(values[lh.model.config.par_slice(name)]))
    return out


# --------------------------------------------------------------------------- parallel scan

_POOL_STATE: dict[str, Any] = {}


def _pool_eval(mu: float) -> tuple[float, tuple[float, ...]]:
    return _hypotest(_POOL_STATE["lh"], mu, _POOL_STATE["test_stat"])


class _ClsCurve:
    """Memoized CLs(μ) for one likelihood (observed + 5 expected)."""

    def __init__(self, lh: Likelihood, test_stat: str, workers: int,
                 progress: Progress | None = None) -> None:
        self.lh = lh
        self.test_stat = test_stat
        self.workers = max(1, int(workers))
        self.values: dict[float, tuple[float, tuple[float, ...]]] = {}
        self.n_hypotests = 0
        self.progress = progress

    def set_likelihood(self, lh: Likelihood) -> None:
        """Switch to ``lh`` (e.g. wider POI bounds); forget values computed with another."""
        if lh.par_bounds != self.lh.par_bounds:
            self.values.clear()
        self.lh = lh

    def __call__(self, mu: float) -> tuple[float, tuple[float, ...]]:
        mu = float(mu)
        if mu not in self.values:
            self.values[mu] = _hypotest(self.lh, mu, self.test_stat)
            self.n_hypotests += 1
            log.debug("CLs(μ=%.6g) = %.6g", mu, self.values[mu][0])
            if self.progress is not None:
                self.progress(self.n_hypotests, f"CLs(μ={mu:.4g})")
        return self.values[mu]

    def all_curves(self, mu: float) -> list[float]:
        obs, exp = self(mu)
        return [obs, *exp]

    def many(self, mus: Sequence[float]) -> None:
        todo = [float(m) for m in mus if float(m) not in self.values]
        if not todo:
            return
        import pyhf

        forkable = pyhf.get_backend()[0].name == "numpy"  # jax is multithreaded: no fork
        if (self.workers > 1 and forkable and len(todo) > 1
                and "fork" in multiprocessing.get_all_start_methods()):
            _POOL_STATE.update(lh=self.lh, test_stat=self.test_stat)
            try:
                ctx = multiprocessing.get_context("fork")
                with ctx.Pool(min(self.workers, len(todo))) as pool:
                    results = []
                    for res in pool.imap(_pool_eval, todo, chunksize=1):
                        results.append(res)
                        if self.progress is not None:
                            self.progress(self.n_hypotests + len(results), "CLs scan")
            finally:
                _POOL_STATE.clear()
            for mu, res in zip(todo, results, strict=True):
                self.values[mu] = res
            self.n_hypotests += len(todo)
        else:
            for mu in todo:
                self(mu)


def _crossing(mus: np.ndarray, cls: np.ndarray, level: float) -> int | None:
    """Index i of the first scan interval with cls[i] ≥ level > cls[i+1]."""
    for i in range(len(mus) - 1):
        if cls[i] >= level > cls[i + 1]:
            return i
    return None


def _interp_log(mus: np.ndarray, cls: np.ndarray, i: int, level: float) -> float:
    a, b = max(cls[i], 1e-300), max(cls[i + 1], 1e-300)
    la, lb, lt = math.log(a), math.log(b), math.log(level)
    if la == lb:
        return float(mus[i])
    t = (la - lt) / (la - lb)
    return float(mus[i] + t * (mus[i + 1] - mus[i]))


def asimov_limit_estimate(lh: Likelihood) -> float | None:
    """A cheap estimate of the median expected 95% CL limit on μ (no fit).

    With s and b the expected signal (μ = 1) and background yields per bin at the initial
    parameters, the Asimov discovery-free approximation gives σ_μ ≈ (Σ s²/b)^(-1/2) and the
    median expected CLs limit ≈ 1.96 σ_μ (Cowan et al., arXiv:1007.1727, eq. 88 for small
    signals, no systematic uncertainties). Used only to choose the initial scan range.

    Returns:
        The estimate, or None when the model gives no signal or no background.
    """
    pars = np.asarray(lh.init_pars, dtype=float)
    with_signal, without = pars.copy(), pars.copy()
    with_signal[lh.poi_index], without[lh.poi_index] = 1.0, 0.0
    sb = np.asarray(lh.model.expected_actualdata(with_signal), dtype=float)
    b = np.asarray(lh.model.expected_actualdata(without), dtype=float)
    s = sb - b
    mask = b > 0
    q = float(np.sum(s[mask] ** 2 / b[mask]))
    if not math.isfinite(q) or q <= 0:
        return None
    return 1.96 / math.sqrt(q)


def _find_range(curve: _ClsCurve, hi: float, level: float, user_range: bool,
                notes: list[str]) -> float:
    """Adapt the upper end of the μ range until every CLs curve is below ``level`` there."""
    start = hi
    steps = 0
    curve.many([hi, hi / 2])  # both first probes at once when there are several workers
    while max(curve.all_curves(hi)) >= level:
        steps += 1
        if steps > MAX_RANGE_STEPS:
            msg = (
                f"CLs stays above {level:g} up to μ = {hi:g}: the model has no sensitivity to "
                "the signal (check the signal normalization)"
            )
            raise StatsError(msg)
        hi *= 2.0
        curve.set_likelihood(curve.lh.with_poi_bound(hi))
    extended = hi > start
    while not extended and hi / 2 > 1e-9 and max(curve.all_curves(hi / 2)) < level:
        steps += 1
        if steps > MAX_RANGE_STEPS:
            break
        hi /= 2.0
    if hi != start:
        verb = "extended" if hi > start else "shrunk"
        what = "requested" if user_range else "initial"
        note = (
            f"μ range {verb} from the {what} [0, {start:g}] to [0, {hi:g}] so that it brackets "
            f"the observed and expected limits"
        )
        if user_range:
            log.warning(note)
        else:
            log.info(note)
        notes.append(note)
    return hi


def discovery_significance(lh: Likelihood) -> tuple[float, float, float, float]:
    """Discovery p-values and significances from q₀ (asymptotic).

    Returns:
        ``(p0_observed, p0_expected, z_observed, z_expected)``; the expected values are for
        the signal at μ = 1 (pyhf's Asimov convention for q₀).
    """
    import pyhf
    from scipy.stats import norm

    p0_obs, p0_exp = pyhf.infer.hypotest(
        0.0, np.asarray(lh.data, dtype=float), lh.model, init_pars=list(lh.init_pars),
        par_bounds=[list(b) for b in lh.par_bounds], fixed_params=list(lh.fixed_params),
        test_stat="q0", return_expected=True,
    )
    p0_obs, p0_exp = float(p0_obs), float(p0_exp)
    return p0_obs, p0_exp, float(norm.isf(p0_obs)), float(norm.isf(p0_exp))


def upper_limit(lh: Likelihood, *, mu_max: float | None = None, n_points: int = 41,
                cl: float = 0.95, test_stat: TestStat | str = "qtilde",
                xsec_ref_fb: float | None = None, significance: bool = False,
                refine: bool = True, workers: int = 1,
                settings: Mapping[str, Any] | None = None,
                notes: Sequence[str] = (), progress: Progress | None = None) -> LimitResult:
    """Scan CLs in μ and compute the observed and expected upper limits.

    Args:
        lh: The compiled model and data.
        mu_max: Upper end of the scan; chosen automatically when None (starting at three
            times :func:`asimov_limit_estimate`, then doubling or halving). A range that
            does not bracket every limit is extended, a range much wider than the largest
            limit is shrunk; both are noted.
        n_points: Number of scan points from 0 to ``mu_max`` (≥ 3).
        cl: Confidence level (the limit is where CLs = 1 − ``cl``).
        test_stat: ``"qtilde"`` or ``"q"``.
        xsec_ref_fb: σ × BR (fb) of the μ = 1 signal; gives the σ × BR limits.
        significance: Also compute the discovery significance (q₀).
        refine: Refine the observed limit with toms748 (otherwise interpolate only).
        workers: Processes for the scan (fork; 1 = serial).
        settings: Extra settings to record (e.g. the seed).
        notes: Remarks to carry into the result.
        progress: Called after each hypotest with the count so far and a label.

    Raises:
        StatsError: Invalid arguments, or no sensitivity within 2³⁰ × the initial range.
    """
    import pyhf
    from scipy.optimize import toms748

    _check_test_stat(test_stat)
    if not 0 < cl < 1:
        raise StatsError(f"confidence level must be in (0, 1), got {cl!r}")
    if n_points < 3:
        raise StatsError(f"n_points must be at least 3, got {n_points}")
    if mu_max is not None and not (math.isfinite(mu_max) and mu_max > 0):
        raise StatsError(f"mu_max must be a positive number, got {mu_max!r}")
    level = 1.0 - cl
    all_notes = list(notes)
    with fit_cache():
        if mu_max is not None:
            start = float(mu_max)
        else:
            estimate = asimov_limit_estimate(lh)
            # 3 × the median estimate covers the +2σ band (≈ 1.9 × median) with margin.
            start = 1.0 if estimate is None else float(f"{3.0 * estimate:.2g}")
        curve = _ClsCurve(lh.with_poi_bound(start), str(test_stat), workers, progress)
        hi = _find_range(curve, start, level, mu_max is not None, all_notes)
        mus = np.linspace(0.0, hi, int(n_points))
        curve.many(mus.tolist())
        obs_arr = np.array([curve(m)[0] for m in mus])
        exp_arr = np.array([curve(m)[1] for m in mus]).T  # 5 × n
        limits: list[float] = []
        for row in (obs_arr, *exp_arr):
            i = _crossing(mus, row, level)
            if i is None:
                msg = (
                    f"CLs does not cross {level:g} in the scan [0, {hi:g}] (values "
                    f"{row[0]:.3g} … {row[-1]:.3g}); try a larger --n-points or --mu-max"
                )
                raise StatsError(msg)
            limits.append(_interp_log(mus, row, i, level))
        if refine:
            i_obs = _crossing(mus, obs_arr, level)
            assert i_obs is not None
            a, b = float(mus[i_obs]), float(mus[i_obs + 1])
            # rtol 1e-5 on μ keeps |CLs(limit) − level| far below 1e-4 at a few evaluations
            limits[0] = float(toms748(lambda m: curve(m)[0] - level, a, b, k=2,
                                      xtol=1e-12, rtol=1e-5))
        cls_obs_at_limit = curve(limits[0])[0] if refine else None
        final_lh = curve.lh
        sig = discovery_significance(final_lh) if significance else None
    exp_mu = (limits[1], limits[2], limits[3], limits[4], limits[5])
    exp_xsec = None
    obs_xsec = None
    if xsec_ref_fb is not None:
        obs_xsec = limits[0] * xsec_ref_fb
        exp_xsec = (exp_mu[0] * xsec_ref_fb, exp_mu[1] * xsec_ref_fb, exp_mu[2] * xsec_ref_fb,
                    exp_mu[3] * xsec_ref_fb, exp_mu[4] * xsec_ref_fb)
    elif not any("σ × BR" in n for n in all_notes):
        all_notes.append("no reference cross section given: no σ × BR limit")
    backend, optimizer = pyhf.get_backend()
    poi_bounds = final_lh.par_bounds[final_lh.poi_index]
    record: dict[str, Any] = {
        "mu_range": [0.0, float(hi)],
        "n_points": int(n_points),
        "test_stat": str(test_stat),
        "cl": cl,
        "pyhf_version": pyhf.__version__,
        "backend": getattr(backend, "name", type(backend).__name__),
        "optimizer": getattr(optimizer, "name", type(optimizer).__name__),
        "calculator": "asymptotics",
        "poi": final_lh.poi_name,
        "poi_bounds": [float(poi_bounds[0]), float(poi_bounds[1])],
        "observed_limit_method": "toms748" if refine else "log-linear interpolation",
        "expected_limit_method": "log-linear interpolation of the scan",
        "n_hypotests": curve.n_hypotests,
    }
    if cls_obs_at_limit is not None:
        record["cls_observed_at_limit"] = cls_obs_at_limit
    record.update(dict(settings or {}))
    log.info("observed limit μ < %.4g, expected %.4g (%d hypotests)", limits[0], exp_mu[2],
             curve.n_hypotests)
    return LimitResult(
        observed_mu=limits[0],
        expected_mu=exp_mu,
        mu_values=tuple(float(m) for m in mus),
        cls_observed=tuple(float(x) for x in obs_arr),
        cls_expected=tuple(tuple(float(x) for x in row) for row in exp_arr),
        cl=cl,
        test_stat=str(test_stat),
        xsec_ref_fb=xsec_ref_fb,
        observed_xsec_fb=obs_xsec,
        expected_xsec_fb=exp_xsec,
        p0_observed=None if sig is None else sig[0],
        p0_expected=None if sig is None else sig[1],
        significance_observed=None if sig is None else sig[2],
        significance_expected=None if sig is None else sig[3],
        settings=record,
        notes=tuple(all_notes),
    )
