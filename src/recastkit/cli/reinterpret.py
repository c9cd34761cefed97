"""``recastkit reinterpret ANALYSIS.yml --signal NAME=FILES``: the analysis on new signals."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("reinterpret")
@click.argument("spec_path", metavar="ANALYSIS.yml",
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--signal", "signals", multiple=True, required=True,
              metavar="DATASET_NAME=FILE[,FILE...]",
              help="A new signal: its dataset name (full ATLAS name or DSID; its DSID and "
                   "e-tag select the catalog row) and files (repeatable: one result each).")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: ./<analysis name>-output, the one of "
                   "`recastkit run`, whose cached background and data steps are reused).")
@click.option("--xsec", "xsec_text", help="Cross section with unit for the new signal(s).")
@click.option("--filter-eff", type=float, help="Generator filter efficiency.")
@click.option("--k-factor", type=float, help="k-factor.")
@click.option("--sumw", type=float, help="Sum of generator weights of the un-skimmed sample.")
@click.option("--etag", help="Evgen tag selecting the catalog row.")
@click.option("--xsec-source", help="Use only catalog records from this source file.")
@click.option("--lumi", "lumi_text", help="Luminosity with unit for the new signal(s).")
@click.option("--catalog", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Catalog database (recastkit xsec import) or a cross-section table used "
                   "for the new signal(s).")
@click.option("--executor", type=click.Choice(["iterative", "processes", "dask"]),
              default="iterative", show_default=True, help="Selection executor.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes for the selection and the CLs scan.")
def command(spec_path: Path, signals: tuple[str, ...], outdir: Path | None,
            xsec_text: str | None, filter_eff: float | None, k_factor: float | None,
            sumw: float | None, etag: str | None, xsec_source: str | None,
            lumi_text: str | None, catalog: Path | None, executor: str,
            workers: int | None) -> None:
    """Re-run the preserved analysis with new signal samples.

    Each signal is normalized like any sample: σ, ε, k from the catalog by its dataset name,
    L from the spec (or its campaign), Σw from its files' bookkeeping; options override them.
    """
    from recastkit.cli._common import echo_ledger, echo_limits, echo_table
    from recastkit.units import parse_lumi, parse_xsec
    from recastkit.workflow.run import SignalInput, reinterpret
    from recastkit.workflow.spec import Overrides, load_spec

    spec = load_spec(spec_path)
    out = outdir or Path(f"{spec.name}-output")
    over = Overrides(
        xsec=None if xsec_text is None else parse_xsec(xsec_text), filter_eff=filter_eff,
        k_factor=k_factor, sumw=sumw, etag=etag, xsec_source=xsec_source,
        lumi=None if lumi_text is None else parse_lumi(lumi_text))
    inputs = [SignalInput.parse(s) for s in signals]
    result = reinterpret(spec, inputs, out, overrides=over, catalog=catalog,
                         executor=executor, workers=workers,
                         command=["recastkit", *sys.argv[1:]])
    # printed after the work, so that a refused input gives exactly one line on stderr
    click.echo(f"recastkit reinterpret {spec.name} → {out}/")
    for r in result.results:
        click.echo(f"\n== {r.signal.name} ({r.signal.dataset})")
        if r.signal.ledger is not None:
            echo_ledger(r.signal.ledger)
        echo_limits(r.limit)
        click.echo(f"report: {r.files.get('report', r.files['result'])}")
    rows = [(r.signal.name, None if r.signal.ledger is None else f"{r.signal.ledger.scale:.6g}",
             f"{r.limit.observed_mu:.4g}", f"{r.limit.expected_mu[2]:.4g}",
             None if r.limit.observed_xsec_fb is None else f"{r.limit.observed_xsec_fb:.4g}")
            for r in result.results]
    click.echo("")
    echo_table(("signal", "scale", "μ obs.", "μ exp.", "σ × BR obs. [fb]"), rows,
               title=f"Reinterpretation of {spec.name} ({100 * result.results[0].limit.cl:g}% "
                     "CL upper limits)")
    ran = sum(s.status == "ran" for s in result.steps)
    click.echo(f"\nsteps: {ran} ran, {len(result.steps) - ran} cached ({out / 'steps.json'})")
    click.echo(f"results table: {result.table}")
