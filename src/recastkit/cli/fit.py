"""``recastkit fit``: CLs scan and upper limits for a scaled signal on top of backgrounds.

Writes ``DIR/workspace.json`` (pyhf JSON, accepted by ``pyhf cls``), ``DIR/limit.json``,
``DIR/hists.png`` and ``DIR/limit.png``. Every input is validated and the fit is done before
anything is written; each file is written atomically.

The σ × BR limit is μ_up × σ_ref with σ_ref = ``xsec_fb × k_factor`` from the signal file's
``normalization`` metadata (the scale step), or ``--xsec``. It is on the same σ × BR
convention as the catalog value; the filter efficiency is part of the acceptance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

FROM_CATALOG = "from-catalog"


def _parse_unc(text: str, option: str, n_max: int) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        values = ()
    if not 1 <= len(values) <= n_max or not all(0 <= v < 1 for v in values):
        shape = "UP[,DOWN]" if n_max == 2 else "REL"
        msg = (
            f"expected {FROM_CATALOG!r} or {shape} relative uncertainties in [0, 1) "
            f"(e.g. 0.1{',0.08' if n_max == 2 else ''}), got {text!r}"
        )
        raise click.BadParameter(msg, param_hint=option)
    return values


@click.command(name="fit")
@click.option("--signal", "signal_spec", required=True, metavar="S.root[:HIST]",
              help="Scaled signal histogram (output of 'recastkit scale').")
@click.option("--background", "background_specs", multiple=True, metavar="B.root[:HIST]",
              help="Background histogram (repeatable).")
@click.option("--mock-background", is_flag=True,
              help="Use the tutorial's mock background: 50 000 events, exponential in m_jj "
                   "with decay constant 150 GeV.")
@click.option("--data", "data_spec", metavar="D.root[:HIST]", help="Observed data histogram.")
@click.option("--toy-data", is_flag=True, help="Poisson toy data from the background (seeded).")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed of numpy.random.default_rng for the mock background and toy data.")
@click.option("--xsec-unc", is_flag=False, flag_value=FROM_CATALOG, default=None,
              metavar="[from-catalog|UP[,DOWN]]",
              help="Signal cross-section normalization uncertainty (relative); without a "
                   "value, taken from the signal's normalization metadata.")
@click.option("--lumi-unc", is_flag=False, flag_value=FROM_CATALOG, default=None,
              metavar="[from-catalog|REL]",
              help="Relative luminosity uncertainty on the signal; without a value, taken "
                   "from the signal's normalization metadata.")
@click.option("--xsec", "xsec_text", metavar="'44.837 fb'",
              help="Reference σ × BR of the μ = 1 signal (overrides the metadata).")
@click.option("--lumi", "lumi_text", metavar="'140 fb^-1'",
              help="Luminosity for the plot label (default: from the signal metadata).")
@click.option("--mu-max", type=float, default=None,
              help="Upper end of the μ scan (default: automatic).")
@click.option("--n-points", type=click.IntRange(min=3), default=41, show_default=True,
              help="Number of scan points.")
@click.option("--test-stat", type=click.Choice(["qtilde", "q"]), default="qtilde",
              show_default=True)
@click.option("--cl", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the upper limits.")
@click.option("--rebin", type=click.IntRange(min=1), default=1, show_default=True,
              help="Merge this many adjacent bins of every input first. Each bin gets an "
                   "MC-stat parameter; the limit engine's fast path profiles them in closed "
                   "form (a 100-bin limit takes well under a second).")
@click.option("--backend", type=click.Choice(["numpy", "jax"]), default="numpy",
              show_default=True,
              help="pyhf backend of pyhf's own fits (the significance, and models off the "
                   "limit engine's fast path); jax (pip install 'recastkit[jax]') has exact "
                   "gradients.")
@click.option("--significance", is_flag=True, help="Also compute the discovery significance.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for the CLs scan on pyhf's path.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(signal_spec: str, background_specs: tuple[str, ...], mock_background: bool,
            data_spec: str | None, toy_data: bool, seed: int, xsec_unc: str | None,
            lumi_unc: str | None, xsec_text: str | None, lumi_text: str | None,
            mu_max: float | None, n_points: int, test_stat: str, cl: float, rebin: int,
            backend: str, significance: bool, workers: int, outdir: Path, as_json: bool
            ) -> None:
    """Upper limits on the signal strength μ and on σ × BR for a scaled signal."""
    from recastkit.cli._common import echo_json, echo_table, progress_reporter
    from recastkit.units import parse_lumi, parse_xsec
    from recastkit.workflow import FitRequest, run_fit

    if bool(background_specs) == mock_background:
        raise click.UsageError("give either --background (one or more) or --mock-background")
    if (data_spec is not None) == toy_data:
        raise click.UsageError("give either --data or --toy-data")
    xsec_rel: Any = None
    if xsec_unc is not None:
        if xsec_unc == FROM_CATALOG:
            xsec_rel = FROM_CATALOG
        else:
            vals = _parse_unc(xsec_unc, "--xsec-unc", 2)
            xsec_rel = (vals[0], vals[-1])
    lumi_rel: Any = None
    if lumi_unc is not None:
        lumi_rel = (FROM_CATALOG if lumi_unc == FROM_CATALOG
                    else _parse_unc(lumi_unc, "--lumi-unc", 1)[0])
    req = FitRequest(
        signal=signal_spec, output=outdir, backgrounds=background_specs,
        mock_background=mock_background, data=data_spec, toy_data=toy_data, seed=seed,
        xsec_rel_unc=xsec_rel, lumi_rel_unc=lumi_rel,
        xsec=None if xsec_text is None else parse_xsec(xsec_text),
        lumi=None if lumi_text is None else parse_lumi(lumi_text),
        mu_max=mu_max, n_points=n_points, test_stat=test_stat, cl=cl, rebin=rebin,
        significance=significance, workers=workers, backend=backend,
    )
    with progress_reporter("CLs hypotests") as progress:
        result = run_fit(req, progress=progress).result
    if as_json:
        echo_json(result.to_dict())
        return
    labels = ("Observed", "Expected -2σ", "Expected -1σ", "Expected median", "Expected +1σ",
              "Expected +2σ")
    mus = (result.observed_mu, *result.expected_mu)
    xs: tuple[float | None, ...] = (
        (result.observed_xsec_fb, *result.expected_xsec_fb) if result.expected_xsec_fb
        else (None,) * 6
    )
    rows = [(lab, f"{m:.4g}", None if x is None else f"{x:.4g}")
            for lab, m, x in zip(labels, mus, xs, strict=True)]
    if result.significance_observed is not None:
        rows.append(("Significance obs. / exp.", f"{result.significance_observed:.3g} / "
                     f"{result.significance_expected:.3g} σ", None))
    echo_table((f"Limit ({100 * result.cl:.0f}% CL)", "μ", "σ × BR [fb]"), rows,
               title=f"recastkit fit → {outdir}")
    for note in result.notes:
        click.echo(f"note: {note}")
