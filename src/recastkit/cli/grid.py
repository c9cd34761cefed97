"""``recastkit grid``: CLs (and limits) of every signal point of a grid, resumable, with contour."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int, int, str], None]]:
    """A (done, total, name) callback: a rich bar with ETA on a TTY, log lines otherwise."""
    if sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskID,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn("signal points"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                      TextColumn("{task.fields[label]}"), transient=True) as bar:
            task: list[TaskID] = []

            def update(done: int, total: int, name: str) -> None:
                if not task:
                    task.append(bar.add_task("grid", total=total, completed=done - 1,
                                             label=""))
                bar.update(task[0], completed=done, label=name)

            yield update
        return
    log = logging.getLogger("recastkit.cli")
    state: dict[str, float] = {}

    def log_update(done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if not state:
            state.update(t0=now, first=done - 1, last=0.0)
        new = done - state["first"]
        if done == total or now - state["last"] >= 10.0 or new == 1:
            state["last"] = now
            rate = new / max(now - state["t0"], 1e-9)
            eta = (total - done) / rate if rate > 0 else float("nan")
            log.info("signal points: %d/%d done (%s), ETA %.0f s", done, total, name, eta)

    yield log_update


def _fix(values: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: expected NAME=NUMBER, e.g. m3=60",
                                     param_hint="--fix") from None
    return out


def _labels(values: tuple[str, ...], x: str | None, y: str | None, x_label: str | None,
            y_label: str | None) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=TEXT, e.g. 'm3=m(χ̃₁⁰) [GeV]'",
                                     param_hint="--label")
        out[name] = text
    if x and x_label:
        out[x] = x_label
    if y and y_label:
        out[y] = y_label
    return out


@click.command("grid")
@click.argument("inputs", nargs=-1, required=True, metavar="[BKGONLY.json] PATCHES")
@click.option("-o", "--output", "output_dir", type=click.Path(path_type=Path),
              help="Output folder: points.csv/json, the resumable store points.jsonl, "
                   "contour.json/png, hepdata/. A re-run with the same folder resumes.")
@click.option("--pattern", help="Point-name pattern giving the parameters, e.g. "
                                "'sbottom_{m1}_{m2}_{m3}' (numbers become floats).")
@click.option("--select", "select", multiple=True,
              help="Only points whose name matches this glob (repeatable), e.g. "
                   "'sbottom_1[3-5]00_*'.")
@click.option("--limit-points", type=click.IntRange(min=1),
              help="Only the first N points (after --select).")
@click.option("--x", "x", help="Contour x parameter (from --pattern), e.g. m1.")
@click.option("--y", "y", help="Contour y parameter, e.g. m2.")
@click.option("--fix", "fix", multiple=True, help="Fix another parameter for the contour, "
                                                  "e.g. m3=60 (repeatable).")
@click.option("--x-label", help="x-axis label with units, e.g. 'm(b̃₁) [GeV]'.")
@click.option("--y-label", help="y-axis label with units.")
@click.option("--label", "label", multiple=True, help="NAME=TEXT label of another parameter.")
@click.option("--mu", type=float, default=1.0, show_default=True,
              help="Signal strength at which CLs is computed.")
@click.option("--limits", is_flag=True, help="Also compute the upper limits on μ.")
@click.option("--cl", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the limits and the contour.")
@click.option("--test-stat", type=click.Choice(["qtilde", "q"]), default="qtilde",
              show_default=True)
@click.option("--engine", type=click.Choice(["auto", "pyhf-path", "pyhf"]), default="auto",
              show_default=True,
              help="auto: the fast engine, fits converged to floating-point precision (pyhf "
                   "where it does not apply); pyhf-path: the fast model with pyhf's own SLSQP "
                   "fits (stops where pyhf's default fits stop); pyhf: pyhf's hypotest per "
                   "point.")
@click.option("--executor", type=click.Choice(["iterative", "processes", "dask"]),
              default="processes", show_default=True, help="Where the points run.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes / Dask workers (default: the number of CPUs).")
@click.option("--scheduler-address", help="Dask scheduler (default: a LocalCluster).")
@click.option("--cross-check", type=click.IntRange(min=0), default=0, show_default=True,
              help="Recompute N random points with plain pyhf; print the worst deviation.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of --cross-check (and of the mock background / toy data).")
@click.option("--signal-hists", is_flag=True,
              help="INPUTS are scaled signal histograms S.root[:HIST] of recastkit runs; the "
                   "model is recastkit fit's, over --background (or --mock-background) and "
                   "--data (or --toy-data).")
@click.option("--background", "background_specs", multiple=True, metavar="B.root[:HIST]",
              help="Background histogram (repeatable), with --signal-hists.")
@click.option("--mock-background", is_flag=True, help="The tutorial's mock background.")
@click.option("--data", "data_spec", metavar="D.root[:HIST]", help="Observed data histogram.")
@click.option("--toy-data", is_flag=True, help="Poisson toy data from the background.")
@click.option("--rebin", type=click.IntRange(min=1), default=1, show_default=True,
              help="Merge this many adjacent bins (with --signal-hists).")
@click.option("--no-hepdata", is_flag=True, help="Do not write the HEPData submission.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def command(inputs: tuple[str, ...], output_dir: Path | None, pattern: str | None,
            select: tuple[str, ...], limit_points: int | None, x: str | None, y: str | None,
            fix: tuple[str, ...], x_label: str | None, y_label: str | None,
            label: tuple[str, ...], mu: float, limits: bool, cl: float, test_stat: str,
            engine: str, executor: str, workers: int | None, scheduler_address: str | None,
            cross_check: int, seed: int, signal_hists: bool,
            background_specs: tuple[str, ...], mock_background: bool, data_spec: str | None,
            toy_data: bool, rebin: int, no_hepdata: bool, as_json: bool) -> None:
    """Evaluate a background-only workspace with every signal patch (a signal grid).

    PATCHES is a folder of patch.*.json (with its BkgOnly.json when BKGONLY.json is not
    given), a pyhf patchset.json, patch files, or the HEPData archive ARCHIVE.tar.gz[:REGION]
    (read without unpacking; BKGONLY.json then comes from the archive). With --signal-hists,
    INPUTS are scaled signal histograms over one background and data (recastkit fit's model).

    \b
    Example (ATLAS SUSY-2018-31, HEPData):
      recastkit grid pyhf-ins1748602-probability-models.tar.gz:RegionA \\
          --pattern 'sbottom_{m1}_{m2}_{m3}' --x m1 --y m2 --fix m3=60 \\
          --x-label 'm(b̃₁) [GeV]' --y-label 'm(χ̃₂⁰) [GeV]' -o regionA/
    """
    import tempfile

    from recastkit.cli._common import echo_table
    from recastkit.stats.grid import GridSettings
    from recastkit.workflow.grid import (
        GridRequest,
        run_grid_step,
        source_from_histograms,
        table_json,
    )

    settings = GridSettings(mu=mu, test_stat=test_stat, limits=limits, cl=cl, engine=engine)
    source = None
    if signal_hists:
        source = source_from_histograms(inputs, backgrounds=background_specs,
                                        mock_background=mock_background, data=data_spec,
                                        toy_data=toy_data, seed=seed, rebin=rebin)
    tmp = None
    if output_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="recastkit-grid-")
    try:
        req = GridRequest(
            inputs=inputs, output_dir=output_dir or Path(tmp.name if tmp else "."),
            settings=settings, pattern=pattern, select=select, limit_points=limit_points,
            x=x, y=y, fix=_fix(fix), labels=_labels(label, x, y, x_label, y_label),
            executor=executor, workers=workers, scheduler=scheduler_address,
            cross_check=cross_check, seed=seed, hepdata=not no_hepdata and tmp is None,
            source=source)
        with _progress() as progress:
            outcome = run_grid_step(req, progress=progress)
    finally:
        if tmp is not None:
            tmp.cleanup()
    results = outcome.results
    if as_json:
        click.echo(table_json(results, {"source": outcome.source_label}), nl=False)
    else:
        rows = []
        for p in results:
            row = [p.name, f"{p.cls_observed:.4g}", f"{p.cls_expected[2]:.4g}",
                   "excluded" if p.cls_observed < 1 - cl else "allowed", p.status]
            if limits:
                row += [f"{p.observed_limit:.4g}" if p.observed_limit is not None else "",
                        f"{p.expected_limits[2]:.4g}" if p.expected_limits else ""]
            rows.append(row)
        headers = ["point", "CLs obs", "CLs exp", f"at μ = {mu:g}", "status"]
        if limits:
            headers += ["μ_up obs", "μ_up exp"]
        echo_table(headers, rows, title=f"{len(results)} signal points, {outcome.source_label}")
    n_bad = sum(r.status != "converged" for r in results)
    click.echo(f"{len(results)} points ({outcome.reused} from the store, {n_bad} not "
               f"'converged') in {outcome.seconds:.1f} s", err=True)
    if output_dir is not None:
        for name in sorted(outcome.files):
            click.echo(f"wrote {outcome.files[name]}", err=True)
    if outcome.cross_check is not None:
        cc = outcome.cross_check
        click.echo(f"cross-check with plain pyhf on {len(cc.names)} points: worst relative "
                   f"deviation {cc.worst_relative_deviation:.3g} ({cc.worst_point})"
                   + (f"; pyhf NaN at {', '.join(cc.nan_points)}" if cc.nan_points else ""),
                   err=True)
