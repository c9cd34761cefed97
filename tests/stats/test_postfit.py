"""Pre-/post-fit yields per channel and sample (recastkit.stats.postfit)."""

from __future__ import annotations

import pytest

from recastkit.stats import make_likelihood
from recastkit.stats.model import ChannelSpec, ModelSpec, ModifierSpec, ParameterSetting, SampleSpec
from recastkit.stats.postfit import parameter_vector, sample_yields


def test_yields_at_given_parameters_by_hand() -> None:
    """SR: signal (mu) + bkg (mu_bkg); CR: bkg only. Expected events = nominal × factors."""
    model = ModelSpec(
        channels=(
            ChannelSpec("SR", (
                SampleSpec("signal", (2.0, 3.0), None, (ModifierSpec.normfactor("mu"),)),
                SampleSpec("bkg", (10.0, 20.0), None, (ModifierSpec.normfactor("mu_bkg"),)))),
            ChannelSpec("CR", (
                SampleSpec("bkg", (100.0,), None, (ModifierSpec.normfactor("mu_bkg"),)),)),
        ),
        observations={"SR": (12.0, 23.0), "CR": (100.0,)},
        poi="mu",
        parameters=(ParameterSetting("mu", inits=(1.0,), bounds=((0.0, 10.0),)),
                    ParameterSetting("mu_bkg", inits=(1.0,), bounds=((0.0, 10.0),))),
        measurement_name="m")
    lh = make_likelihood(model)
    pre = sample_yields(lh, parameter_vector(lh, {}))
    assert pre == {"SR": {"signal": pytest.approx(5.0), "bkg": pytest.approx(30.0)},
                   "CR": {"bkg": pytest.approx(100.0)}}
    post = sample_yields(lh, parameter_vector(lh, {"mu": (0.5,), "mu_bkg": (1.2,)}))
    assert post == {"SR": {"signal": pytest.approx(2.5), "bkg": pytest.approx(36.0)},
                    "CR": {"bkg": pytest.approx(120.0)}}
