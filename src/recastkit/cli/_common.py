"""Helpers shared by the CLI commands: JSON output, table output, parameter types."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from recastkit._json import dumps, to_jsonable

__all__ = ["dumps", "echo_json", "echo_table", "progress_reporter", "to_jsonable"]


def echo_json(doc: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(dumps(doc))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
               ) -> None:
    """Print a readable table on stdout (rich, no colours when piped)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=None if title is None else escape(title), title_justify="left")
    for h in headers:
        table.add_column(escape(h), overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else escape(str(v)) for v in row))
    Console(soft_wrap=False, width=max(100, len(headers) * 16)).print(table)


@contextlib.contextmanager
def progress_reporter(description: str, every: int = 10) -> Iterator[Callable[[int, str], None]]:
    """Yield a ``(count, label)`` callback showing progress of open-ended work.

    On a terminal: a rich spinner with the count and the current step. Otherwise (CI, logs,
    pipes): an INFO log line every ``every`` steps, so nothing floods the output.
    """
    if sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (SpinnerColumn(), TextColumn("{task.description}"),
                   TextColumn("{task.completed} done · {task.fields[label]}"),
                   TimeElapsedColumn())
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task(description, total=None, label="")

            def update(count: int, label: str) -> None:
                bar.update(task, completed=count, label=label)

            yield update
        return
    log = logging.getLogger("recastkit.cli")

    def log_update(count: int, label: str) -> None:
        if count % every == 0:
            log.info("%s: %d done (%s)", description, count, label)

    yield log_update


def echo_ledger(ledger: Any) -> None:
    """Print a normalization ledger (every factor with its source), indented."""
    click.echo("   " + ledger.format().replace("\n", "\n   "))


def echo_limits(result: Any) -> None:
    """Print the limits table of a :class:`~recastkit.stats.results.LimitResult`."""
    labels = ("Expected −2σ", "Expected −1σ", "Expected median", "Expected +1σ",
              "Expected +2σ")
    rows = [("Observed", f"{result.observed_mu:.4g}",
             None if result.observed_xsec_fb is None else f"{result.observed_xsec_fb:.4g}")]
    for i, lab in enumerate(labels):
        xs = None if result.expected_xsec_fb is None else f"{result.expected_xsec_fb[i]:.4g}"
        rows.append((lab, f"{result.expected_mu[i]:.4g}", xs))
    echo_table((f"{100 * result.cl:g}% CL upper limit", "μ", "σ × BR [fb]"), rows)


def echo_run_summary(result: Any) -> None:
    """Print a run: the steps, the signal's ledger, the limits and the output paths."""
    ran = sum(s.status == "ran" for s in result.steps)
    click.echo(f"steps: {ran} ran, {len(result.steps) - ran} cached "
               f"({result.files['steps']})")
    signal = result.signal
    click.echo(f"normalization ledger of the signal {signal.name} ({signal.dataset}):")
    if signal.ledger is not None:
        echo_ledger(signal.ledger)
    for note in signal.notes:
        click.echo(f"   ! {note}")
    backgrounds = ", ".join(s.name for s in result.samples if s.role == "background")
    data = next(s for s in result.samples if s.role == "data")
    it = result.spec.interpretation
    where = (f"regions {', '.join(it.regions)} fitted together" if len(it.regions) > 1
             else f"region {result.fit_region}")
    click.echo(f"limits ({where}; backgrounds: {backgrounds}; "
               f"data: {data.name}, {data.kind}):")
    echo_limits(result.limit)
    for name, value in (result.limit.settings.get("best_fit_normfactors") or {}).items():
        click.echo(f"   background {name}: best-fit normalization {value:.4g}")
    theory = result.limit.settings.get("theory") or {}
    for region, unc, rule, down, up in theory.get("rows") or []:
        click.echo(f"   theory {unc} ({rule}) in {region}: {down} % / {up} %")
    keys = ["report", "result", "manifest", "limit.json", "workspace.json", "hists.png",
            "limit.png"]
    # a multi-region fit draws one hists_<region>.png per region with a signal
    keys += sorted(k for k in result.files if k.startswith("hists_") and k.endswith(".png"))
    for key in keys:
        if key in result.files:
            click.echo(f"   {key:<15} {result.files[key]}")
