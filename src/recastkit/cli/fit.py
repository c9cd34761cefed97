"""``recastkit fit``: CLs scan and upper limits for a scaled signal on top of backgrounds.

Writes ``DIR/workspace.json`` (pyhf JSON, accepted by ``pyhf cls``), ``DIR/limit.json``,
``DIR/hists.png`` and ``DIR/limit.png``. Every input is validated and the fit is done before
anything is written; each file is written atomically.

The σ × BR limit is μ_up × σ_ref with σ_ref = ``xsec_fb × k_factor`` from the signal file's
``normalization`` metadata (the scale step), or ``--xsec``. It is on the same σ × BR
convention as the catalog value; the filter efficiency is part of the acceptance.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

log = logging.getLogger(__name__)

DEFAULT_HIST = "h_mjj_kin"
FROM_CATALOG = "from-catalog"


def _load(spec: str, role: str) -> tuple[Any, dict[str, Any], str]:
    """Read one histogram (the only one in the file, or ``h_mjj_kin``) and the metadata."""
    from recastkit.exceptions import MissingObjectError
    from recastkit.io.hists import read_hists_and_metadata, split_spec
    from recastkit.io.root import missing_object_error

    path, name = split_spec(spec)
    hists, meta = read_hists_and_metadata(path)
    if name is None:
        if len(hists) == 1:
            name = next(iter(hists))
        elif DEFAULT_HIST in hists:
            name = DEFAULT_HIST
        else:
            msg = (
                f"{path}: {role} file holds {len(hists)} histograms and none is named "
                f"{DEFAULT_HIST!r}; name one as {path}:NAME "
                f"(choices: {', '.join(sorted(hists)) or 'none'})"
            )
            raise MissingObjectError(msg)
    if name not in hists:
        raise missing_object_error(path, "histogram", name, hists)
    return hists[name], meta, f"{path}:{name}"


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


def _write_outputs(outdir: Path, workspace: dict[str, Any], result: Any, inputs: Any,
                   lumi_ifb: float | None, xsec_ref_fb: float | None) -> None:
    """Render all four files into a staging folder, then move each into ``outdir``.

    A failure while rendering leaves ``outdir`` untouched; each final move is atomic.
    """
    import os
    import shutil
    import tempfile

    from recastkit.report import plot_hists, plot_limit
    from recastkit.stats.results import dumps

    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.staging-", dir=outdir.parent))
    try:
        (staging / "workspace.json").write_text(dumps(workspace), encoding="utf-8")
        result.write_json(staging / "limit.json")
        plot_hists(inputs, staging / "hists.png", lumi_ifb=lumi_ifb, xsec_fb=xsec_ref_fb)
        plot_limit(result, staging / "limit.png", lumi_ifb=lumi_ifb)
        outdir.mkdir(parents=True, exist_ok=True)
        for name in ("workspace.json", "limit.json", "hists.png", "limit.png"):
            os.replace(staging / name, outdir / name)
            log.info("wrote %s", outdir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
@click.option("--rebin", type=click.IntRange(min=1), default=1, show_default=True,
              help="Merge this many adjacent bins of every input first. Each bin gets an "
                   "MC-stat parameter; with the numpy backend a 100-bin model takes ~10 s "
                   "per CLs point, a 10-bin one ~0.2 s.")
@click.option("--significance", is_flag=True, help="Also compute the discovery significance.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes for the CLs scan.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(signal_spec: str, background_specs: tuple[str, ...], mock_background: bool,
            data_spec: str | None, toy_data: bool, seed: int, xsec_unc: str | None,
            lumi_unc: str | None, xsec_text: str | None, lumi_text: str | None,
            mu_max: float | None, n_points: int, test_stat: str, rebin: int,
            significance: bool, workers: int, outdir: Path, as_json: bool) -> None:
    """Upper limits on the signal strength μ and on σ × BR for a scaled signal."""
    import numpy as np

    from recastkit import stats
    from recastkit.cli._common import echo_json, echo_table
    from recastkit.units import parse_lumi, parse_xsec

    if bool(background_specs) == mock_background:
        raise click.UsageError("give either --background (one or more) or --mock-background")
    if (data_spec is not None) == toy_data:
        raise click.UsageError("give either --data or --toy-data")

    sig_hist, meta, sig_label = _load(signal_spec, "signal")
    norm: dict[str, Any] = meta.get("normalization", {}) if isinstance(meta, dict) else {}

    def from_norm(key: str, option: str) -> float:
        if key not in norm or norm[key] is None:
            msg = (
                f"{sig_label}: no '{key}' in the 'normalization' metadata needed by "
                f"{option} {FROM_CATALOG}; give the value explicitly"
            )
            raise click.UsageError(msg)
        return float(norm[key])

    xsec_rel: tuple[float, float] | None = None
    if xsec_unc is not None:
        if xsec_unc == FROM_CATALOG:
            up = from_norm("xsec_rel_unc_up", "--xsec-unc")
            down = float(norm.get("xsec_rel_unc_down", up))
            xsec_rel = (up, down)
        else:
            vals = _parse_unc(xsec_unc, "--xsec-unc", 2)
            xsec_rel = (vals[0], vals[-1])
    lumi_rel: float | None = None
    if lumi_unc is not None:
        lumi_rel = (from_norm("lumi_rel_unc", "--lumi-unc") if lumi_unc == FROM_CATALOG
                    else _parse_unc(lumi_unc, "--lumi-unc", 1)[0])

    notes: list[str] = []
    xsec_ref_fb: float | None = None
    if xsec_text is not None:
        xsec_ref_fb = parse_xsec(xsec_text).fb
        notes.append(f"reference σ × BR from --xsec: {xsec_text}")
    elif "xsec_fb" in norm:
        xsec_ref_fb = float(norm["xsec_fb"]) * float(norm.get("k_factor", 1.0))
        notes.append(
            f"reference σ × BR = xsec_fb × k_factor = {xsec_ref_fb:.6g} fb from the signal's "
            "normalization metadata (filter efficiency is part of the acceptance)"
        )
    else:
        notes.append("no reference cross section (no --xsec and no normalization metadata): "
                     "no σ × BR limit")
    lumi_ifb: float | None = None
    if lumi_text is not None:
        lumi_ifb = parse_lumi(lumi_text).ifb
    elif "lumi_ifb" in norm:
        lumi_ifb = float(norm["lumi_ifb"])

    signal = stats.BinnedSample.from_hist(sig_hist, "signal", sig_label).rebinned(rebin)
    rng = np.random.default_rng(seed)
    backgrounds: list[stats.BinnedSample] = []
    if mock_background:
        backgrounds.append(stats.mock_background(signal.edges, rng))
    for i, spec in enumerate(background_specs):
        h, _, label = _load(spec, "background")
        name = "background" if len(background_specs) == 1 else f"background_{i + 1}"
        backgrounds.append(stats.BinnedSample.from_hist(h, name, label).rebinned(rebin))
    data = None
    if data_spec is not None:
        h, _, label = _load(data_spec, "data")
        data = stats.BinnedSample.from_hist(h, "data", label).rebinned(rebin)
    inputs = stats.prepare_inputs(signal, backgrounds, data, rng=rng, xsec_rel_unc=xsec_rel,
                                  lumi_rel_unc=lumi_rel)

    mu_bound = max(10.0, mu_max or 0.0)
    lh = stats.make_likelihood(stats.build_search_model(inputs, mu_bound=mu_bound))
    settings = {
        "seed": seed,
        "signal": sig_label,
        "backgrounds": [b.source for b in backgrounds],
        "data": inputs.data_kind if data is None else data.source,
        "data_kind": inputs.data_kind,
        "xsec_rel_unc": None if xsec_rel is None else list(xsec_rel),
        "lumi_rel_unc": lumi_rel,
        "lumi_ifb": lumi_ifb,
        "rebin": rebin,
    }
    result = stats.upper_limit(lh, mu_max=mu_max, n_points=n_points, test_stat=test_stat,
                               xsec_ref_fb=xsec_ref_fb, significance=significance,
                               workers=workers, settings=settings, notes=notes)
    final_bound = float(result.settings["poi_bounds"][1])
    workspace = stats.build_workspace(stats.build_search_model(inputs, mu_bound=final_bound))

    _write_outputs(outdir, workspace, result, inputs, lumi_ifb, xsec_ref_fb)
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
