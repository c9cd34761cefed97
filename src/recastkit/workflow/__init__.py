"""The analysis chain: normalization, the fit step and the demo.

- :mod:`~recastkit.workflow.normalization`: resolve every factor of σ × ε × k × L / Σw into a
  :class:`~recastkit.scaling.Ledger` and scale histogram files;
- :mod:`~recastkit.workflow.fit`: the fit step with its staged outputs;
- :mod:`~recastkit.workflow.demo`: the generated example chain.
"""

from __future__ import annotations

from recastkit.workflow.demo import DemoResult, run_demo
from recastkit.workflow.fit import FROM_METADATA, FitOutcome, FitRequest, load_hist, run_fit
from recastkit.workflow.normalization import (
    DEFAULT_HIST,
    NormalizationRequest,
    ScaleResult,
    resolve_normalization,
    scale_file,
    scale_hists,
)

__all__ = [
    "DEFAULT_HIST",
    "FROM_METADATA",
    "DemoResult",
    "FitOutcome",
    "FitRequest",
    "NormalizationRequest",
    "ScaleResult",
    "load_hist",
    "resolve_normalization",
    "run_demo",
    "run_fit",
    "scale_file",
    "scale_hists",
]
