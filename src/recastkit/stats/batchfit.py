"""Fast exact CLs for grids of a general HistFactory model (placeholder, filled below)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recastkit.stats.grid import GridSettings
    from recastkit.stats.gridinputs import SignalPoint
    from recastkit.stats.results import PointResult


def evaluate(background: Mapping[str, Any], point: SignalPoint, settings: GridSettings,
             cache: dict[str, Any]) -> PointResult | None:
    """The point's result from a fast engine, or None when no fast engine applies."""
    return None
