"""CLs scans, upper limits and significances against pyhf called directly and formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyhf
import pytest

from recastkit.exceptions import StatsError
from recastkit.stats import (
    ChannelSpec,
    Likelihood,
    LimitResult,
    ModelSpec,
    ModifierSpec,
    SampleSpec,
    build_workspace,
    compute_cls,
    discovery_significance,
    make_likelihood,
    upper_limit,
)


def _counting(s: float = 10.0, b: float = 50.0, n: float = 55.0) -> Likelihood:
    spec = ModelSpec(
        (ChannelSpec("sr", (SampleSpec("sig", (s,), modifiers=(ModifierSpec.normfactor(),)),
                            SampleSpec("bkg", (b,)))),),
        {"sr": (n,)},
    )
    return make_likelihood(spec)


def _three_bins() -> tuple[ModelSpec, Likelihood]:
    spec = ModelSpec(
        (ChannelSpec("sr", (
            SampleSpec("sig", (3.0, 8.0, 2.0), (0.1, 0.4, 0.1),
                       (ModifierSpec.normfactor(), ModifierSpec.normsys("xsec", 0.9, 1.1))),
            SampleSpec("bkg", (40.0, 35.0, 20.0), (4.0, 4.0, 3.0)),
        )),),
        {"sr": (42.0, 37.0, 19.0)},
    )
    return spec, make_likelihood(spec)


def _pyhf_direct(spec: ModelSpec, mu: float, tolerance: float | None = 1e-10
                 ) -> tuple[float, list[float]]:
    """pyhf's hypotest; a tight optimizer tolerance so that its fits converge to ~1e-8."""
    ws = pyhf.Workspace(build_workspace(spec))
    model = ws.model()
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=tolerance))
    try:
        obs, exp = pyhf.infer.hypotest(mu, ws.data(model), model, return_expected_set=True)
    finally:
        pyhf.set_backend("numpy", "scipy")
    return float(obs), [float(e) for e in exp]


@pytest.fixture(scope="module")
def three_bin_limit() -> tuple[ModelSpec, LimitResult]:
    spec, lh = _three_bins()
    return spec, upper_limit(lh, mu_max=5.0, n_points=21, xsec_ref_fb=44.837,
                             settings={"seed": 1})


def test_significance_matches_counting_formulas() -> None:
    s, b, n = 10.0, 50.0, 55.0
    p0_obs, p0_exp, z_obs, z_exp = discovery_significance(_counting(s, b, n))
    # Cowan et al. Eq. (97): Z = sqrt(2 (n ln(n/b) - (n - b))); Asimov n = s + b for expected
    assert z_obs == pytest.approx(math.sqrt(2 * (n * math.log(n / b) - (n - b))), rel=1e-4)
    assert z_exp == pytest.approx(math.sqrt(2 * ((s + b) * math.log(1 + s / b) - s)), rel=1e-4)
    assert p0_obs == pytest.approx(0.5 * math.erfc(z_obs / math.sqrt(2)), rel=1e-9)
    assert p0_exp < p0_obs


def test_limit_scan_equals_pyhf_and_cls_at_limit(
    three_bin_limit: tuple[ModelSpec, LimitResult],
) -> None:
    spec, res = three_bin_limit
    assert res.mu_values[0] == 0.0
    assert len(res.mu_values) == 21
    assert len(res.cls_expected) == 5
    assert all(len(row) == 21 for row in res.cls_expected)
    i = 7
    obs, exp = _pyhf_direct(spec, res.mu_values[i])
    # the limit engine's exact profile fits vs pyhf's converged fits
    assert res.cls_observed[i] == pytest.approx(obs, rel=1e-5)
    assert [row[i] for row in res.cls_expected] == pytest.approx(exp, rel=1e-5)
    assert res.settings["engine"] == "fast"
    # self-consistency: CLs at the observed limit is 0.05
    obs_at_limit, _ = _pyhf_direct(spec, res.observed_mu)
    assert obs_at_limit == pytest.approx(0.05, abs=1e-3)
    _, exp_at_median = _pyhf_direct(spec, res.expected_mu[2])
    assert exp_at_median[2] == pytest.approx(0.05, abs=2e-3)
    assert list(res.expected_mu) == sorted(res.expected_mu)
    assert res.observed_xsec_fb == pytest.approx(res.observed_mu * 44.837, rel=1e-12)
    assert res.expected_xsec_fb is not None
    assert res.expected_xsec_fb[2] == pytest.approx(res.expected_mu[2] * 44.837, rel=1e-12)
    assert res.settings["seed"] == 1
    assert res.settings["pyhf_version"] == pyhf.__version__
    assert res.settings["backend"] == "numpy"
    assert res.settings["test_stat"] == "qtilde"


def test_json_has_every_number(three_bin_limit: tuple[ModelSpec, LimitResult],
                               tmp_path: Path) -> None:
    _, res = three_bin_limit
    out = tmp_path / "limit.json"
    res.write_json(out)
    doc = json.loads(out.read_text())
    assert doc["observed_mu"] == res.observed_mu
    assert doc["expected_mu"] == list(res.expected_mu)
    assert doc["cls_expected"][4] == list(res.cls_expected[4])
    assert doc["settings"]["mu_range"] == [0.0, 5.0]
    assert doc["expected_band_labels"][0] == "-2sigma"
    assert list(doc) == sorted(doc)
    assert [p.name for p in tmp_path.iterdir()] == ["limit.json"]  # no temp files left


def test_range_is_extended_and_noted() -> None:
    _, lh = _three_bins()
    res = upper_limit(lh, mu_max=0.5, n_points=5, refine=False)
    assert res.settings["mu_range"][1] > 0.5
    assert any("extended" in n for n in res.notes)
    assert res.cls_observed[-1] < 0.05
    assert max(row[-1] for row in res.cls_expected) < 0.05


def test_range_is_shrunk_and_noted() -> None:
    lh = _counting()
    res = upper_limit(lh, mu_max=400.0, n_points=5, refine=False)
    assert res.settings["mu_range"][1] < 400.0 / 4
    assert any("shrunk" in n for n in res.notes)
    assert res.xsec_ref_fb is None
    assert res.observed_xsec_fb is None
    assert any("no σ × BR limit" in n for n in res.notes)


def test_parallel_scan_gives_identical_numbers() -> None:
    _, lh = _three_bins()
    serial = upper_limit(lh, mu_max=4.0, n_points=4, refine=False)
    parallel = upper_limit(lh, mu_max=4.0, n_points=4, refine=False, workers=2)
    assert parallel.cls_observed == serial.cls_observed
    assert parallel.cls_expected == serial.cls_expected


def test_bad_requests() -> None:
    lh = _counting()
    with pytest.raises(StatsError, match="valid choices: qtilde, q"):
        compute_cls(lh, 1.0, "q1")
    with pytest.raises(StatsError, match=r"outside the bounds \[0, 10\]"):
        compute_cls(lh, 11.0)
    with pytest.raises(StatsError, match="n_points must be at least 3"):
        upper_limit(lh, n_points=2)
    zero = ModelSpec(
        (ChannelSpec("sr", (SampleSpec("sig", (1e-12,), modifiers=(ModifierSpec.normfactor(),)),
                            SampleSpec("bkg", (50.0,)))),),
        {"sr": (50.0,)},
    )
    with pytest.raises(StatsError, match="no sensitivity"):
        upper_limit(make_likelihood(zero), mu_max=1e3, n_points=3)
    assert np.isfinite(compute_cls(lh, 1.0).cls_observed)
