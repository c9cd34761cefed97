"""Expected yields of a compiled model per channel and sample, at given parameter values.

:func:`sample_yields` evaluates the main model (``pyhf``'s ``expected_data`` with
``return_by_sample=True``: every modifier applied, no auxiliary data) and sums each sample's
bins per channel. At the initial parameters it gives the pre-fit yields, at the best-fit values
(:func:`recastkit.stats.best_fit`) the post-fit ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from recastkit.stats.model import Likelihood


def parameter_vector(lh: Likelihood, values: Mapping[str, Sequence[float]]) -> list[float]:
    """The model's parameter vector from named values (missing names: the initial values).

    Args:
        lh: The compiled model.
        values: Parameter name -> its values (as :func:`recastkit.stats.best_fit` returns).
    """
    pars = [float(x) for x in lh.init_pars]
    config = lh.model.config
    for name in config.par_order:
        if name in values:
            sl = config.par_slice(name)
            pars[sl] = [float(v) for v in values[name]]
    return pars


def sample_yields(lh: Likelihood, pars: Sequence[float]) -> dict[str, dict[str, float]]:
    """Channel -> sample -> expected events (sum over the channel's bins) at ``pars``.

    Args:
        lh: The compiled model.
        pars: The full parameter vector (:func:`parameter_vector`).
    """
    model = lh.model
    by_sample = np.asarray(
        model.main_model.expected_data(np.asarray(pars, dtype=float), return_by_sample=True),
        dtype=float)
    out: dict[str, dict[str, float]] = {}
    for channel in model.config.channels:
        sl = model.config.channel_slices[channel]
        out[channel] = {}
        for i, sample in enumerate(model.config.samples):
            total = float(np.sum(by_sample[i][sl]))
            # pyhf lists every sample of the model in every channel; skip the absent ones
            if sample in _channel_samples(lh, channel):
                out[channel][sample] = total
    return out


def _channel_samples(lh: Likelihood, channel: str) -> set[str]:
    spec = lh.model.spec
    for ch in spec["channels"]:
        if ch["name"] == channel:
            return {s["name"] for s in ch["samples"]}
    return set()
