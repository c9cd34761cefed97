"""``recastkit fit``: CLs scan and upper limits for a scaled signal on top of backgrounds.

Writes ``DIR/workspace.json`` (pyhf JSON, accepted by ``pyhf cls``), ``DIR/limit.json``,
``DIR/hists.png`` and ``DIR/limit.png``. Every input is validated and the fit is done before
anything is written; each file is written atomically.

The σ × BR limit is μ_up × σ_ref with σ_ref = ``xsec_fb × k_factor`` from the signal file's
``normalization`` metadata (the scale step), or ``--xsec``. It is on the same σ × BR
convention as the catalog value; the filter efficiency is part of the acceptance.

Several regions (``--region NAME``, repeatable) are fitted together, one channel each
(:mod:`recastkit.workflow.multiregion`): ``--signal REGION=FILE[:HIST]`` (a control region may
have none), ``--background NAME@REGION=FILE[:HIST]`` (the same NAME in several regions is one
sample), ``--data REGION=FILE[:HIST]``; ``--free-background NAME`` gives that background a free
normalization factor ``mu_<NAME>`` shared by every region; ``--theory NAME=RULE:VAR[,VAR...]``
adds the signal's theory uncertainties from its variation histograms. It writes
``workspace.json``, ``limit.json``, ``limit.png`` and ``hists_<region>.png``.
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


def _region_value(text: str, option: str, regions: tuple[str, ...]) -> tuple[str, str]:
    """``REGION=VALUE`` of a multi-region fit -> (region, value)."""
    region, sep, value = text.partition("=")
    if not sep or not value or region not in regions:
        msg = (f"with --region, expected REGION=FILE[:HIST] with REGION one of "
               f"{', '.join(regions)}, got {text!r}")
        raise click.BadParameter(msg, param_hint=option)
    return region, value


def _theory_group(text: str) -> Any:
    """``NAME=RULE:VAR[,VAR...]`` -> a :class:`~recastkit.theory.TheoryGroup`."""
    from recastkit.theory import RULES, TheoryGroup

    name, _, rest = text.partition("=")
    rule, _, members = rest.partition(":")
    variations = tuple(v.strip() for v in members.split(",") if v.strip())
    if not name or rule not in RULES or not variations:
        msg = (f"expected NAME=RULE:VAR[,VAR...] with RULE one of {', '.join(RULES)}, "
               f"got {text!r}")
        raise click.BadParameter(msg, param_hint="--theory")
    return TheoryGroup(name, rule, variations)


@click.command(name="fit")
@click.option("--signal", "signal_specs", required=True, multiple=True,
              metavar="[REGION=]S.root[:HIST]",
              help="Scaled signal histogram (output of 'recastkit scale'); with --region, "
                   "REGION=FILE[:HIST], once per region with a signal.")
@click.option("--background", "background_specs", multiple=True,
              metavar="[NAME@REGION=]B.root[:HIST]",
              help="Background histogram (repeatable); with --region, NAME@REGION=FILE[:HIST] "
                   "(the same NAME in several regions is one sample).")
@click.option("--mock-background", is_flag=True,
              help="Use the tutorial's mock background: 50 000 events, exponential in m_jj "
                   "with decay constant 150 GeV (with --region: in every region).")
@click.option("--mock-name", default="background", show_default=True, metavar="NAME",
              help="Sample name of the mock background (what --free-background refers to).")
@click.option("--data", "data_specs", multiple=True, metavar="[REGION=]D.root[:HIST]",
              help="Observed data histogram; with --region, REGION=FILE[:HIST] per region.")
@click.option("--region", "regions", multiple=True, metavar="NAME",
              help="Fit several regions together, one channel each (repeatable, in order).")
@click.option("--free-background", "free_backgrounds", multiple=True, metavar="NAME",
              help="Give this background a free normalization factor mu_NAME shared by every "
                   "region (repeatable; needs --region).")
@click.option("--theory", "theory_specs", multiple=True, metavar="NAME=RULE:VAR[,VAR...]",
              help="A theory uncertainty of the signal from its variation histograms "
                   "(HIST__VAR), combined by RULE (repeatable; needs --region).")
@click.option("--theory-normalize", type=click.Choice(["acceptance", "total"]),
              default="acceptance", show_default=True,
              help="Divide each variation by its own Σw (acceptance) or the nominal one.")
@click.option("--theory-split", is_flag=True,
              help="Model each theory band as normsys + shape-only histosys.")
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
def command(signal_specs: tuple[str, ...], background_specs: tuple[str, ...],
            mock_background: bool, mock_name: str, data_specs: tuple[str, ...],
            regions: tuple[str, ...], free_backgrounds: tuple[str, ...],
            theory_specs: tuple[str, ...], theory_normalize: str, theory_split: bool,
            toy_data: bool, seed: int, xsec_unc: str | None,
            lumi_unc: str | None, xsec_text: str | None, lumi_text: str | None,
            mu_max: float | None, n_points: int, test_stat: str, cl: float, rebin: int,
            backend: str, significance: bool, workers: int, outdir: Path, as_json: bool
            ) -> None:
    """Upper limits on the signal strength μ and on σ × BR for a scaled signal."""
    from recastkit.cli._common import progress_reporter
    from recastkit.units import parse_lumi, parse_xsec
    from recastkit.workflow import FitRequest, run_fit

    if not regions and (free_backgrounds or theory_specs):
        option = "--free-background" if free_backgrounds else "--theory"
        raise click.UsageError(f"{option} needs the fitted regions: give --region NAME for "
                               "each (and REGION= in --signal, --background, --data)")
    if not regions and bool(background_specs) == mock_background:
        raise click.UsageError("give either --background (one or more) or --mock-background")
    if bool(data_specs) == toy_data:
        raise click.UsageError("give either --data or --toy-data")
    if not regions and (len(signal_specs) > 1 or len(data_specs) > 1):
        option = "--signal" if len(signal_specs) > 1 else "--data"
        raise click.UsageError(f"{option} given several times: fit several regions with "
                               "--region NAME and REGION=FILE[:HIST]")
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
    if regions:
        result = _multiregion(
            regions, signal_specs, background_specs, mock_background, mock_name, data_specs,
            free_backgrounds, theory_specs, theory_normalize, theory_split,
            {"toy_data": toy_data, "seed": seed, "xsec_rel_unc": xsec_rel,
             "lumi_rel_unc": lumi_rel,
             "xsec": None if xsec_text is None else parse_xsec(xsec_text),
             "lumi": None if lumi_text is None else parse_lumi(lumi_text),
             "mu_max": mu_max, "n_points": n_points, "test_stat": test_stat, "cl": cl,
             "rebin": rebin, "significance": significance, "workers": workers,
             "backend": backend},
            outdir)
        _echo(result, outdir, as_json)
        return
    req = FitRequest(
        signal=signal_specs[0], output=outdir, backgrounds=background_specs,
        mock_background=mock_background, data=data_specs[0] if data_specs else None,
        toy_data=toy_data, seed=seed,
        xsec_rel_unc=xsec_rel, lumi_rel_unc=lumi_rel,
        xsec=None if xsec_text is None else parse_xsec(xsec_text),
        lumi=None if lumi_text is None else parse_lumi(lumi_text),
        mu_max=mu_max, n_points=n_points, test_stat=test_stat, cl=cl, rebin=rebin,
        significance=significance, workers=workers, backend=backend,
    )
    with progress_reporter("CLs hypotests") as progress:
        result = run_fit(req, progress=progress).result
    _echo(result, outdir, as_json)


def _multiregion(regions: tuple[str, ...], signal_specs: tuple[str, ...],
                 background_specs: tuple[str, ...], mock_background: bool, mock_name: str,
                 data_specs: tuple[str, ...], free_backgrounds: tuple[str, ...],
                 theory_specs: tuple[str, ...], theory_normalize: str, theory_split: bool,
                 settings: dict[str, Any], outdir: Path) -> Any:
    """The multi-region fit of ``recastkit fit --region ...``."""
    from recastkit.cli._common import progress_reporter
    from recastkit.workflow.multiregion import (
        MultiRegionFitRequest,
        RegionFitInput,
        run_multiregion_fit,
    )
    from recastkit.workflow.variations import TheorySettings

    dup = sorted({r for r in regions if regions.count(r) > 1})
    if dup:
        raise click.BadParameter(f"region {dup[0]!r} given twice", param_hint="--region")
    signals: dict[str, str] = {}
    for text in signal_specs:
        region, value = _region_value(text, "--signal", regions)
        if region in signals:
            raise click.BadParameter(f"two signals in region {region!r}", param_hint="--signal")
        signals[region] = value
    data: dict[str, str] = {}
    for text in data_specs:
        region, value = _region_value(text, "--data", regions)
        if region in data:
            raise click.BadParameter(f"two data histograms in region {region!r}",
                                     param_hint="--data")
        data[region] = value
    if data and set(data) != set(regions):
        missing = ", ".join(r for r in regions if r not in data)
        raise click.BadParameter(f"no data histogram for region(s) {missing}",
                                 param_hint="--data")
    backgrounds: dict[str, list[tuple[str, str]]] = {r: [] for r in regions}
    for text in background_specs:
        target, sep, value = text.partition("=")
        name, at, region = target.rpartition("@")
        if not sep or not value or not at or not name or region not in regions:
            msg = (f"with --region, expected NAME@REGION=FILE[:HIST] with REGION one of "
                   f"{', '.join(regions)}, got {text!r}")
            raise click.BadParameter(msg, param_hint="--background")
        if any(n == name for n, _ in backgrounds[region]):
            raise click.BadParameter(f"background {name!r} twice in region {region!r}",
                                     param_hint="--background")
        backgrounds[region].append((name, value))
    names = {n for bkgs in backgrounds.values() for n, _ in bkgs}
    if mock_background:
        names.add(mock_name)
    for name in free_backgrounds:
        if name not in names:
            msg = (f"{name!r} is no background of the fit (valid choices: "
                   f"{', '.join(sorted(names)) or 'none'})")
            raise click.BadParameter(msg, param_hint="--free-background")
    for r in regions:
        if not backgrounds[r] and not mock_background:
            raise click.UsageError(f"region {r!r} has no background: give --background "
                                   f"NAME@{r}=FILE[:HIST] or --mock-background")
    theory = None
    if theory_specs:
        theory = TheorySettings(tuple(_theory_group(t) for t in theory_specs),
                                theory_normalize, theory_split)
    req = MultiRegionFitRequest(
        regions=tuple(RegionFitInput(name=r, backgrounds=tuple(backgrounds[r]),
                                     signal=signals.get(r), data=data.get(r),
                                     mock_background=mock_background, mock_name=mock_name)
                      for r in regions),
        output=outdir, free_backgrounds=tuple(dict.fromkeys(free_backgrounds)), theory=theory,
        **settings)
    with progress_reporter("CLs hypotests") as progress:
        outcome = run_multiregion_fit(req, progress=progress)
    return outcome.result


def _echo(result: Any, outdir: Path, as_json: bool) -> None:
    """Print the limits (a table, or JSON)."""
    from recastkit.cli._common import echo_json, echo_table

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
    for name, value in (result.settings.get("best_fit_normfactors") or {}).items():
        click.echo(f"background {name}: best-fit normalization {value:.4g}")
    for note in result.notes:
        click.echo(f"note: {note}")
