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

    def load(path: Path) -> hist.Hist:
        return _display(read_hist(path, it.observable), it.rebin)

    def plot(name: str) -> RegionPlot:
        backgrounds = {s.name: load(s.region_files[name]) for s in run.samples
                       if s.role == "background" and name in s.region_files}
        data = next((load(s.region_files[name]) for s in run.samples
                     if s.role == "data" and name in s.region_files), None)
        return RegionPlot(region=name, observable=it.observable,
                          signal=load(run.signal.region_files[name]),
                          backgrounds=backgrounds, data=data, signal_name=run.signal.name)

    # every fitted region (a multi-region fit: the signal region and its control regions)
    plots = tuple(plot(name) for name in it.regions if name in run.signal.region_files)
    ledger = run.signal.ledger
    facts: list[tuple[str, Any]] = [
        ("analysis", spec.name), ("spec SHA-256", spec.sha256),
        ("signal", f"{run.signal.name} ({run.signal.dataset})"),
        ("fitted region(s) / observable", f"{', '.join(it.regions)} / {it.observable}"),
        ("test statistic, CL", f"{it.test_stat}, {it.cl:g}"),
    ]
    if ledger is not None:
        facts.append(("signal scale σ·ε·k·L/Σw", f"{ledger.scale:.6g}"))
    steps = tuple(r.to_dict() for r in run.steps)
    tables: dict[str, tuple[Sequence[str], Sequence[Sequence[Any]]]] = {
        "Run": (("item", "value"), facts),
    }
    fit_settings = run.limit.settings
    theory = fit_settings.get("theory") or {}
    if theory.get("rows"):
        title = f"Signal theory uncertainties (normalize: {theory.get('normalize')})"
        tables[title] = (tuple(theory["headers"]), [tuple(r) for r in theory["rows"]])
    normfactors = fit_settings.get("best_fit_normfactors") or {}
    if normfactors:
        tables["Background normalizations (best fit, shared across regions)"] = (
            ("background", "factor", "regions"),
            [(name, f"{value:.4g}", ", ".join(it.regions))
             for name, value in normfactors.items()])
    yields = fit_settings.get("yields") or {}
    if yields:
        mu_hat = fit_settings.get("best_fit_mu")
        fit_text = ", ".join(
            [f"μ̂ = {mu_hat:.4g}"] if mu_hat is not None else []) + "".join(
            f", mu_{name} = {value:.4g}" for name, value in normfactors.items())
        title = (f"Yields per fitted region, pre-fit (μ = 1, normalizations 1) and post-fit "
                 f"({fit_text.lstrip(', ')})")
        rows: list[tuple[Any, ...]] = []
        for region, doc in yields.items():
            pre, post = doc.get("prefit") or {}, doc.get("postfit") or {}
            for sample in pre:
                rows.append((region, sample, f"{pre[sample]:.6g}",
                             f"{post.get(sample, float('nan')):.6g}"))
            rows.append((region, "total", f"{sum(pre.values()):.6g}",
                         f"{sum(post.values()):.6g}"))
            rows.append((region, "data", f"{doc.get('data', float('nan')):.8g}", ""))
        tables[title] = (("region", "sample", "pre-fit events", "post-fit events"), rows)
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
