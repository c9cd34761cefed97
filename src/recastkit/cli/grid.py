"""``recastkit grid``: CLs of every signal point of a published (HEPData) likelihood."""

from __future__ import annotations

from pathlib import Path

import click


def _inputs(paths: tuple[Path, ...]) -> tuple[Path, list[Path]]:
    """``DIR`` (holding BkgOnly.json and patch.*.json) or ``BkgOnly.json PATCH...``."""
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        bkg = folder / "BkgOnly.json"
        patches = sorted(folder.glob("patch.*.json"))
        if not bkg.exists() or not patches:
            msg = (f"{folder}: expected a BkgOnly.json and patch.*.json files (the layout of "
                   "HEPData likelihood archives)")
            raise click.BadParameter(msg, param_hint="INPUTS")
        return bkg, patches
    if len(paths) < 2:
        raise click.BadParameter("give BkgOnly.json and at least one patch, or a folder",
                                 param_hint="INPUTS")
    return paths[0], list(paths[1:])


@click.command("grid")
@click.argument("inputs", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path), metavar="DIR | BKG.json PATCH...")
@click.option("--mu", type=float, default=1.0, show_default=True,
              help="Signal strength at which CLs is computed.")
@click.option("--limits", is_flag=True, help="Also compute the upper limits on μ (slower).")
@click.option("--n-points", type=click.IntRange(min=3), default=11, show_default=True,
              help="Scan points per signal point with --limits.")
@click.option("--test-stat", type=click.Choice(["qtilde", "q"]), default="qtilde",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results as JSON to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(inputs: tuple[Path, ...], mu: float, limits: bool, n_points: int, test_stat: str,
            output: Path | None, as_json: bool) -> None:
    """Evaluate a background-only workspace with each signal patch (a signal grid).

    \b
    Example (ATLAS SUSY-2018-31, HEPData):
      recastkit grid RegionA/ -o regionA.json
    """
    from recastkit._atomic import write_text_atomic
    from recastkit.cli._common import dumps, echo_json, echo_table, progress_reporter
    from recastkit.stats.grid import evaluate_grid

    bkg, patches = _inputs(inputs)
    with progress_reporter("signal points", every=1) as progress:
        points = evaluate_grid(bkg, patches, mu=mu, test_stat=test_stat, limits=limits,
                               n_points=n_points, progress=progress)
    doc = {"background_only": str(bkg), "mu": mu, "test_stat": test_stat,
           "points": list(points)}
    if output is not None:
        write_text_atomic(output, dumps(doc) + "\n")
    if as_json:
        echo_json(doc)
        return
    rows = []
    for p in points:
        row = [p.name, f"{p.cls_observed:.4g}", f"{p.cls_expected[2]:.4g}",
               "excluded" if p.excluded else "allowed"]
        if limits:
            row += [f"{p.observed_mu:.4g}" if p.observed_mu is not None else "",
                    f"{p.expected_mu[2]:.4g}" if p.expected_mu is not None else ""]
        rows.append(row)
    headers = ["point", "CLs obs", "CLs exp", f"at μ = {mu:g}"]
    if limits:
        headers += ["μ_up obs", "μ_up exp"]
    echo_table(headers, rows, title=f"{len(points)} signal points, {bkg}")
    if output is not None:
        click.echo(f"wrote {output}")
