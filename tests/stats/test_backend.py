"""The opt-in jax backend gives the numpy backend's numbers (exact vs finite-difference grads)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyhf
import pytest

from recastkit import stats
from recastkit.exceptions import StatsError
from recastkit.stats.model import use_backend


@pytest.fixture(autouse=True)
def _restore_numpy() -> Iterator[None]:
    yield
    pyhf.set_backend("numpy", "scipy")


def _inputs() -> stats.SearchInputs:
    edges = np.linspace(0.0, 500.0, 21)
    centers = 0.5 * (edges[1:] + edges[:-1])
    signal_values = 60.0 * np.exp(-0.5 * ((centers - 125.0) / 15.0) ** 2)
    signal = stats.BinnedSample("signal", tuple(edges), tuple(signal_values),
                                tuple(0.01 * signal_values), "test")
    rng = np.random.default_rng(5)
    background = stats.mock_background(tuple(edges), rng)
    return stats.prepare_inputs(signal, [background], None, rng=rng, xsec_rel_unc=None,
                                lumi_rel_unc=0.0083)


def test_jax_matches_numpy() -> None:
    pytest.importorskip("jax")
    inputs = _inputs()
    model = stats.build_search_model(inputs, mu_bound=10.0)
    numpy_lh = stats.make_likelihood(model, backend="numpy")
    numpy_cls = stats.compute_cls(numpy_lh, 0.5)
    numpy_limit = stats.upper_limit(numpy_lh, n_points=11)
    jax_lh = stats.make_likelihood(model, backend="jax")
    assert pyhf.get_backend()[0].name == "jax"
    jax_cls = stats.compute_cls(jax_lh, 0.5)
    jax_limit = stats.upper_limit(jax_lh, n_points=11)
    # the minimizers stop at slightly different points: agreement to 1e-4 relative
    assert jax_cls.cls_observed == pytest.approx(numpy_cls.cls_observed, rel=1e-4)
    np.testing.assert_allclose(jax_cls.cls_expected, numpy_cls.cls_expected, rtol=1e-4)
    assert jax_limit.observed_mu == pytest.approx(numpy_limit.observed_mu, rel=1e-4)
    np.testing.assert_allclose(jax_limit.expected_mu, numpy_limit.expected_mu, rtol=1e-4)
    assert jax_limit.settings["backend"] == "jax"


def test_unknown_backend_lists_choices() -> None:
    with pytest.raises(StatsError, match="supported: numpy, jax"):
        use_backend("tensorflow")
