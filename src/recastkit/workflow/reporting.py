"""Fill the run's report (:class:`recastkit.report.analysis.AnalysisReport`) from a run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hist

from recastkit.report.analysis import (
    AnalysisReport,
    RegionPlot,
    SampleReport,
    write_analysis_report,
)

if TYPE_CHECKING:
    from recastkit.workflow.run import RunResult


def _display(h: hist.Hist, rebin: int) -> hist.Hist:
    n = h.axes[0].size
    if rebin > 1 and n % rebin == 0:
        return h[:: hist.rebin(rebin)]
    return h


def build_report(run: RunResult) -> AnalysisReport:
    """The report's contents: samples with ledgers and cutflows, the fitted region, limits."""
    from recastkit.io.hists import read_hist

    spec = run.spec
    it = spec.interpretation
    samples = tuple(
        SampleReport(name=s.name, role=s.role,  # type: ignore[arg-type]
                     dataset=s.dataset, ledger=s.ledger,
                     notes=tuple(s.notes) + ((s.source,) if s.source else ()),
                     cutflows=dict(s.cutflows))
        for s in run.samples
    )
    region = run.fit_region

    def load(path: Path) -> hist.Hist:
        return _display(read_hist(path, it.observable), it.rebin)

    backgrounds = {s.name: load(s.region_files[region]) for s in run.samples
                   if s.role == "background" and region in s.region_files}
    data = next((load(s.region_files[region]) for s in run.samples
                 if s.role == "data" and region in s.region_files), None)
    plots = (RegionPlot(region=region, observable=it.observable,
                        signal=load(run.signal.region_files[region]),
                        backgrounds=backgrounds, data=data, signal_name=run.signal.name),)
    ledger = run.signal.ledger
    facts: list[tuple[str, Any]] = [
        ("analysis", spec.name), ("spec SHA-256", spec.sha256),
        ("signal", f"{run.signal.name} ({run.signal.dataset})"),
        ("fitted region / observable", f"{region} / {it.observable}"),
        ("test statistic, CL", f"{it.test_stat}, {it.cl:g}"),
    ]
    if ledger is not None:
        facts.append(("signal scale σ·ε·k·L/Σw", f"{ledger.scale:.6g}"))
    steps = tuple(r.to_dict() for r in run.steps)
    tables: dict[str, tuple[Sequence[str], Sequence[Sequence[Any]]]] = {
        "Run": (("item", "value"), facts),
    }
    return AnalysisReport(
        title=f"{spec.name}: {run.signal.name}", samples=samples, regions=plots,
        limits={run.signal.name: run.limit}, manifest=dict(run.manifest), steps=steps,
        tables=tables,
    )


def write_run_report(run: RunResult, path: str | os.PathLike[str]) -> Path:
    """Build the report of ``run`` and write it (one self-contained HTML file).

    The plots embedded in the page are also written as PNG files to ``plots/`` beside it.
    """
    out = Path(path)
    return write_analysis_report(build_report(run), out, plots_dir=out.parent / "plots")
