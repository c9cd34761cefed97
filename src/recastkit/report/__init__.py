"""Reports of a search: plots of the inputs and of the CLs scan (no pyhf here)."""

from __future__ import annotations

from recastkit.report.plots import plot_hists, plot_limit

__all__ = ["plot_hists", "plot_limit"]
