"""``recastkit run ANALYSIS.yml``: the preserved analysis, select → scale → fit, cached."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("run")
@click.argument("spec_path", metavar="ANALYSIS.yml",
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: ./<analysis name>-output); the step cache is "
                   "OUTPUT/steps.")
@click.option("--executor", type=click.Choice(["iterative", "processes", "dask"]),
              default="iterative", show_default=True, help="Selection executor.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes for the selection and the CLs scan.")
@click.option("--scheduler", metavar="tcp://HOST:PORT|local",
              help="Dask scheduler (with --executor dask).")
@click.option("--force", is_flag=True,
              help="Run every step even when it is cached (e.g. after changing recastkit's "
                   "code without changing its version).")
def command(spec_path: Path, outdir: Path | None, executor: str, workers: int | None,
            scheduler: str | None, force: bool) -> None:
    """Run every step of an analysis spec; steps whose inputs did not change are reused.

    Writes OUTPUT/steps.json (each step: ran or cached), result.json, fit/ (workspace,
    limit.json, plots), manifest.json and report.html.
    """
    from recastkit.cli._common import echo_run_summary, progress_reporter
    from recastkit.workflow.run import run_analysis
    from recastkit.workflow.spec import load_spec

    spec = load_spec(spec_path)
    out = outdir or Path(f"{spec.name}-output")
    with progress_reporter("CLs hypotests") as progress:
        result = run_analysis(spec, out, executor=executor, workers=workers,
                              scheduler=scheduler, command=["recastkit", *sys.argv[1:]],
                              progress=progress, force=force)
    # printed after the work, so that a refused input gives exactly one line on stderr
    click.echo(f"recastkit run {spec.name} → {out}/")
    echo_run_summary(result)
