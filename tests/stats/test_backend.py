"""The opt-in jax backend gives the numpy backend's numbers (exact vs finite-difference grads)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from recastkit.exceptions import StatsError
from recastkit.stats.model import use_backend

_SCRIPT = """
import json, sys
import numpy as np
from recastkit import stats

edges = np.linspace(0.0, 500.0, 21)
centers = 0.5 * (edges[1:] + edges[:-1])
signal_values = 60.0 * np.exp(-0.5 * ((centers - 125.0) / 15.0) ** 2)
signal = stats.BinnedSample("signal", tuple(edges), tuple(signal_values),
                            tuple(0.01 * signal_values), "test")
rng = np.random.default_rng(5)
background = stats.mock_background(tuple(edges), rng)
inputs = stats.prepare_inputs(signal, [background], None, rng=rng, xsec_rel_unc=None,
                              lumi_rel_unc=0.0083)
model = stats.build_search_model(inputs, mu_bound=10.0)
out = {}
for backend in ("numpy", "jax"):
    lh = stats.make_likelihood(model, backend=backend)
    cls = stats.compute_cls(lh, 0.5)
    limit = stats.upper_limit(lh, n_points=11)
    out[backend] = {"cls_obs": cls.cls_observed, "cls_exp": list(cls.cls_expected),
                    "obs_mu": limit.observed_mu, "exp_mu": list(limit.expected_mu),
                    "backend": limit.settings["backend"]}
json.dump(out, sys.stdout)
"""


def test_jax_matches_numpy() -> None:
    # In a subprocess: jax is multithreaded, and once imported into the test process the
    # fork-based executors of other tests could deadlock.
    pytest.importorskip("jax")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    numpy_res, jax_res = res["numpy"], res["jax"]
    assert jax_res["backend"] == "jax"
    assert numpy_res["backend"] == "numpy"
    # the minimizers stop at slightly different points: agreement to 1e-4 relative
    assert jax_res["cls_obs"] == pytest.approx(numpy_res["cls_obs"], rel=1e-4)
    np.testing.assert_allclose(jax_res["cls_exp"], numpy_res["cls_exp"], rtol=1e-4)
    assert jax_res["obs_mu"] == pytest.approx(numpy_res["obs_mu"], rel=1e-4)
    np.testing.assert_allclose(jax_res["exp_mu"], numpy_res["exp_mu"], rtol=1e-4)


def test_unknown_backend_lists_choices() -> None:
    with pytest.raises(StatsError, match="supported: numpy, jax"):
        use_backend("tensorflow")
