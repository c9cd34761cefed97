"""The report of one analysis run (``recastkit run`` / ``reinterpret``): one self-contained page.

The workflow fills an :class:`AnalysisReport` from the run's results and calls
:func:`write_analysis_report`; this module only reads the containers (no pyhf, no ROOT).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import hist

from recastkit.report.html import _esc, _ledger_section, _limit_section, _table
from recastkit.scaling import Ledger
from recastkit.selection import CutflowEntry
from recastkit.stats.results import LimitResult

SampleRole = Literal["signal", "background", "data"]


@dataclass(frozen=True)
class SampleReport:
    """One sample of the run as the report shows it.

    Attributes:
        name: The sample's name in the analysis spec.
        role: ``"signal"``, ``"background"`` or ``"data"``.
        dataset: Dataset name (DSID + tags) or None (mock background, toy data).
        ledger: The normalization ledger (None for data and the mock background).
        notes: Remarks to show with the ledger: catalog conflicts, assumed factors, warnings.
        cutflows: Region name -> the region's cutflow (generator weights, before scaling).
    """

    name: str
    role: SampleRole
    dataset: str | None = None
    ledger: Ledger | None = None
    notes: tuple[str, ...] = ()
    cutflows: Mapping[str, Sequence[CutflowEntry]] = field(default_factory=dict)


@dataclass(frozen=True)
class RegionPlot:
    """The histograms of one region × observable, scaled to the expected events.

    Attributes:
        region: Region name.
        observable: Observable name (the histogram's axis label gives its unit).
        signal: Signal histogram at μ = 1, or None.
        backgrounds: Background name -> histogram (stacked in this order).
        data: Observed (or toy) data, or None.
        signal_name: Label of the signal in the legend.
    """

    region: str
    observable: str
    signal: hist.Hist | None
    backgrounds: Mapping[str, hist.Hist]
    data: hist.Hist | None = None
    signal_name: str = "signal"


@dataclass(frozen=True)
class AnalysisReport:
    """Everything one run's report shows.

    Attributes:
        title: Page heading (analysis name and signal).
        samples: Every sample with its ledger and cutflows.
        regions: The histograms per region × observable.
        limits: Signal name -> its limit result (CLs scan and limits table).
        manifest: The provenance manifest (as written to ``manifest.json``).
        steps: The entries of ``steps.json`` (name, status, key, seconds).
        tables: Extra titled tables (title -> (headers, rows)), e.g. theory uncertainties.
    """

    title: str
    samples: tuple[SampleReport, ...]
    regions: tuple[RegionPlot, ...]
    limits: Mapping[str, LimitResult]
    manifest: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[Mapping[str, Any], ...] = ()
    tables: Mapping[str, tuple[Sequence[str], Sequence[Sequence[Any]]]] = field(
        default_factory=dict)


def write_analysis_report(report: AnalysisReport, path: str | os.PathLike[str]) -> Path:
    """Write the run's report as one self-contained HTML page (atomically).

    Args:
        report: The run's contents.
        path: Output ``.html`` file.

    Returns:
        The written path.
    """
    from recastkit._atomic import write_text_atomic

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(report.title)}"
             f"</title></head><body><h1>{_esc(report.title)}</h1>"]
    for sample in report.samples:
        parts.append(f"<h2>Sample {_esc(sample.name)} ({_esc(sample.role)})</h2>")
        if sample.ledger is not None:
            parts.append(_ledger_section(sample.ledger))
    for name, limit in report.limits.items():
        parts.append(f"<h2>{_esc(name)}</h2>{_limit_section(limit)}")
    for title, (headers, rows) in report.tables.items():
        parts.append(f"<h2>{_esc(title)}</h2>{_table(headers, rows)}")
    parts.append("</body></html>\n")
    out = Path(path)
    write_text_atomic(out, "".join(parts))
    return out
