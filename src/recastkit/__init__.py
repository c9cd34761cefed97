"""recastkit: from a Monte Carlo signal sample to a cross-section limit.

Every normalization factor (cross section, filter efficiency, k-factor, luminosity, sum of
generator weights) is explicit, carries its unit and records where it came from.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
