"""CLs, μ scans, upper limits and discovery significance with pyhf's asymptotic calculator.

Statistics follow Cowan, Cranmer, Gross, Vitells, Eur. Phys. J. C 71 (2011) 1554
(arXiv:1007.1727): the test statistic q̃_μ (``"qtilde"``, POI bounded at 0) or q_μ (``"q"``),
q₀ for discovery, and the CLs method of Read, J. Phys. G 28 (2002) 2693. Every CLs value is
computed by :func:`pyhf.infer.hypotest` (numpy backend, scipy optimizer) in
:func:`compute_cls`.

Speed: a hypotest runs five maximum-likelihood fits, three of which do not depend on the
tested μ (the free fits to the data and to the Asimov data, and the background-only fit that
generates the Asimov data). Within a scan those fits are memoized (:func:`fit_cache`), so each
further μ costs two fits. The fits are deterministic, so the numbers are bit-identical to
calling :func:`pyhf.infer.hypotest` directly. The fits use finite-difference gradients (numpy
backend), so their cost grows with the square of the number of parameters: a one-channel model
with 100 bins (100 staterror parameters) needs ~10 s per μ point, a 10-bin model ~0.2 s.

Upper limits (:func:`upper_limit`) are found by root finding on each CLs curve with the
limit engine (:mod:`recastkit.stats.engine`): the closed-form profile likelihood of
:mod:`recastkit.stats.fastfit` for models with MC-stat and normalization nuisance parameters,
pyhf's ``toms748_scan`` otherwise; the CLs scan kept in the result is for the plot.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
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
                from recastkit._workers import init_worker

                with ctx.Pool(min(self.workers, len(todo)), initializer=init_worker,
                              initargs=(os.getpid(),)) as pool:
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


def _nice_ceiling(x: float) -> float:
    """The smallest number with two significant digits that is ≥ ``x``."""
    if x <= 0 or not math.isfinite(x):
        return 1.0
    exponent = math.floor(math.log10(x)) - 1
    step = 10.0**exponent
    return float(f"{math.ceil(x / step - 1e-9) * step:.2g}")


def upper_limit(lh: Likelihood, *, mu_max: float | None = None, n_points: int = 41,
                cl: float = 0.95, test_stat: TestStat | str = "qtilde",
                xsec_ref_fb: float | None = None, significance: bool = False,
                refine: bool = True, workers: int = 1,
                settings: Mapping[str, Any] | None = None,
                notes: Sequence[str] = (), progress: Progress | None = None) -> LimitResult:
    """Observed and expected upper limits by root finding, and a CLs scan for the plot.

    The limits are the crossings CLs(μ) = 1 − ``cl`` of the observed curve and of each of
    the five expected curves, found by root finding (:mod:`recastkit.stats.engine`): on the
    fast path (closed-form profile likelihood, :mod:`recastkit.stats.fastfit`) for models
    with MC-stat and normalization nuisance parameters, with pyhf's ``toms748_scan``
    otherwise. The scan (``mu_values``, ``cls_observed``, ``cls_expected``) is only for the
    plot: ``n_points`` values from 0 to ``mu_max``.

    Args:
        lh: The compiled model and data.
        mu_max: Upper end of the scan; by default 1.2 × the largest limit rounded up to two
            digits. A given range that does not reach beyond every limit is doubled until it
            does, a range more than twice the largest limit is halved; both are noted.
        n_points: Number of scan points from 0 to ``mu_max`` (≥ 3).
        cl: Confidence level (the limit is where CLs = 1 − ``cl``).
        test_stat: ``"qtilde"`` or ``"q"``.
        xsec_ref_fb: σ × BR (fb) of the μ = 1 signal; gives the σ × BR limits.
        significance: Also compute the discovery significance (q₀, pyhf).
        refine: Ignored (kept for compatibility): every limit is found by root finding.
        workers: Processes for the scan on pyhf's path (fork; 1 = serial).
        settings: Extra settings to record (e.g. the seed).
        notes: Remarks to carry into the result.
        progress: Called with a count and a label after the limits and after the scan.

    Raises:
        StatsError: Invalid arguments, or no sensitivity within 2³⁰ × the requested range.
    """
    import time

    import pyhf

    from recastkit.stats.engine import LikelihoodEngine

    del refine
    _check_test_stat(test_stat)
    if not 0 < cl < 1:
        raise StatsError(f"confidence level must be in (0, 1), got {cl!r}")
    if n_points < 3:
        raise StatsError(f"n_points must be at least 3, got {n_points}")
    if mu_max is not None and not (math.isfinite(mu_max) and mu_max > 0):
        raise StatsError(f"mu_max must be a positive number, got {mu_max!r}")
    t0 = time.perf_counter()
    level = 1.0 - cl
    all_notes = list(notes)
    engine = LikelihoodEngine(lh, str(test_stat))
    lim = engine.limits(cl)
    if progress is not None:
        progress(1, "limits")
    limits = [lim.observed, *lim.expected]
    top = max(limits)
    if mu_max is not None:
        if not math.isfinite(top) or top > mu_max * 2.0**MAX_RANGE_STEPS:
            msg = (
                f"CLs stays above {level:g} up to μ = {mu_max * 2.0**MAX_RANGE_STEPS:g}: the "
                "model has no sensitivity to the signal (check the signal normalization)"
            )
            raise StatsError(msg)
        hi = float(mu_max)
        while hi <= top:
            hi *= 2.0
        while hi / 2.0 > top:
            hi /= 2.0
        if hi != mu_max:
            verb = "extended" if hi > mu_max else "shrunk"
            note = (
                f"μ range {verb} from the requested [0, {mu_max:g}] to [0, {hi:g}] so that it "
                "brackets the observed and expected limits"
            )
            log.warning(note)
            all_notes.append(note)
    else:
        hi = _nice_ceiling(1.2 * top)
    mus = np.linspace(0.0, hi, int(n_points))
    final_lh = lh.with_poi_bound(hi)
    obs_list, exp_list = engine.cls([*mus.tolist(), lim.observed], workers=workers,
                                    progress=progress)
    cls_obs_at_limit = obs_list.pop()
    exp_list.pop()
    if progress is not None:
        progress(2, "CLs scan")
    obs_arr = np.asarray(obs_list)
    exp_arr = np.asarray(exp_list).T  # 5 × n
    sig = discovery_significance(final_lh) if significance else None
    all_notes.extend(n for n in engine.notes if n not in lim.notes)
    all_notes.extend(lim.notes)
    exp_mu = lim.expected
    exp_xsec = None
    obs_xsec = None
    if xsec_ref_fb is not None:
        obs_xsec = lim.observed * xsec_ref_fb
        exp_xsec = (exp_mu[0] * xsec_ref_fb, exp_mu[1] * xsec_ref_fb, exp_mu[2] * xsec_ref_fb,
                    exp_mu[3] * xsec_ref_fb, exp_mu[4] * xsec_ref_fb)
    elif not any("σ × BR" in n for n in all_notes):
        all_notes.append("no reference cross section given: no σ × BR limit")
    backend, optimizer = pyhf.get_backend()
    poi_bounds = final_lh.par_bounds[final_lh.poi_index]
    method = ("root finding (Anderson–Björck) on the fast profile likelihood"
              if lim.path == "fast" else "pyhf toms748_scan")
    record: dict[str, Any] = {
        "mu_range": [0.0, float(hi)],
        "n_points": int(n_points),
        "test_stat": str(test_stat),
        "cl": cl,
        "pyhf_version": pyhf.__version__,
        "backend": getattr(backend, "name", type(backend).__name__),
        "optimizer": getattr(optimizer, "name", type(optimizer).__name__),
        "calculator": "asymptotics",
        "engine": engine.path if lim.path == "fast" else "pyhf",
        "poi": final_lh.poi_name,
        "poi_bounds": [float(poi_bounds[0]), float(poi_bounds[1])],
        "observed_limit_method": method,
        "expected_limit_method": method,
        "cls_observed_at_limit": cls_obs_at_limit,
    }
    record.update(dict(settings or {}))
    log.info("observed limit μ < %.4g, expected %.4g (%s path, %.2f s)", lim.observed,
             exp_mu[2], record["engine"], time.perf_counter() - t0)
    return LimitResult(
        observed_mu=lim.observed,
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
