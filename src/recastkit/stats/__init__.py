"""Statistical interpretation with pyhf: models, CLs, upper limits and likelihood grids.

This package is the only user of pyhf in recastkit. The high-level API:

- :func:`build_workspace` / :func:`spec_from_workspace`: frozen :class:`ModelSpec` <-> pyhf JSON.
- :func:`prepare_inputs` / :func:`build_search_model`: histograms -> validated inputs -> model
  (with :func:`mock_background` and :func:`toy_data` for the tutorial).
- :func:`make_likelihood` / :func:`likelihood_from_workspace`: compile for pyhf.
- :func:`compute_cls`, :func:`upper_limit`, :func:`discovery_significance`: inference,
  returning :class:`ClsResult` / :class:`LimitResult`.
- :func:`recastkit.stats.grid.run_grid`: published likelihoods + signal patches, resumable
  (inputs in :mod:`~recastkit.stats.gridinputs`, the fast engine in
  :mod:`~recastkit.stats.batchfit`, contours in :mod:`~recastkit.stats.contour`).
"""

from __future__ import annotations

from recastkit.stats.inputs import (
    BinnedSample,
    RegionInputs,
    SearchInputs,
    build_multiregion_model,
    build_search_model,
    mock_background,
    normfactor_name,
    prepare_inputs,
    prepare_region,
    theory_modifiers,
    toy_data,
)
from recastkit.stats.limits import (
    best_fit,
    compute_cls,
    discovery_significance,
    fit_cache,
    upper_limit,
)
from recastkit.stats.model import (
    ChannelSpec,
    Likelihood,
    ModelSpec,
    ModifierSpec,
    ParameterSetting,
    SampleSpec,
    build_workspace,
    likelihood_from_workspace,
    make_likelihood,
    spec_from_workspace,
)
from recastkit.stats.results import BAND_LABELS, ClsResult, LimitResult, PointResult

__all__ = [
    "BAND_LABELS",
    "BinnedSample",
    "ChannelSpec",
    "ClsResult",
    "Likelihood",
    "LimitResult",
    "ModelSpec",
    "ModifierSpec",
    "ParameterSetting",
    "PointResult",
    "RegionInputs",
    "SampleSpec",
    "SearchInputs",
    "best_fit",
    "build_multiregion_model",
    "build_search_model",
    "build_workspace",
    "compute_cls",
    "discovery_significance",
    "fit_cache",
    "likelihood_from_workspace",
    "make_likelihood",
    "mock_background",
    "normfactor_name",
    "prepare_inputs",
    "prepare_region",
    "spec_from_workspace",
    "theory_modifiers",
    "toy_data",
    "upper_limit",
]
