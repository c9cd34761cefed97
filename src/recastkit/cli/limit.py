"""``recastkit limit``: observed and expected upper limits on μ of any pyhf workspace.

The limits are the crossings CLs(μ) = 1 − CL of the observed and of each expected curve,
found by root finding (never interpolated): on the fast path for models with MC-stat and
normalization nuisance parameters, with pyhf's ``toms748_scan`` otherwise (the table says
which). Patches: JSON Patch files (RFC 6902 lists or pyhf patches), or one patch of a pyhf
patchset as ``PATCHSET.json:NAME``; applied in order.
"""

from __future__ import annotations

import os
from typing import Any

import click

from recastkit.cli.cls import _read_json


def _patch(spec: str) -> tuple[str, Any]:
    """``PATCH.json`` or ``PATCHSET.json:NAME`` -> (label, patch operations or document)."""
    from recastkit.stats.engine import patch_from_patchset

    path, name = spec, None
    if ":" in spec and not os.path.exists(spec):
        path, name = spec.rsplit(":", 1)
    doc = _read_json(path, "patch")
    if name is not None:
        return spec, patch_from_patchset(doc, name, path)
    return spec, doc


@click.command(name="limit")
@click.argument("workspace", default="-", metavar="WORKSPACE.json")
@click.option("-p", "--patch", "patches", multiple=True, metavar="PATCH.json|PATCHSET.json:NAME",
              help="JSON Patch, or one patch of a pyhf patchset, to apply first (repeatable).")
@click.option("--measurement", default=None, help="Measurement name (default: the first).")
@click.option("--cl", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Confidence level.")
@click.option("--test-stat", type=click.Choice(["qtilde", "q"]), default="qtilde",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
def command(workspace: str, patches: tuple[str, ...], measurement: str | None, cl: float,
            test_stat: str, as_json: bool) -> None:
    """Upper limits on the POI of a pyhf WORKSPACE ('-' reads stdin), by root finding.

    \b
    Example (a signal point of ATLAS SUSY-2018-31, HEPData):
      recastkit limit BkgOnly.json -p patch.sbottom_1300_205_60.json
    """
    from recastkit.cli._common import echo_json, echo_table
    from recastkit.exceptions import StatsError
    from recastkit.stats.engine import limits_of_likelihood
    from recastkit.stats.grid import apply_patches
    from recastkit.stats.model import likelihood_from_workspace
    from recastkit.stats.results import BAND_LABELS
    from recastkit.stats.workspace_checks import check_workspace

    doc = _read_json(workspace, "workspace")
    source = "<stdin>" if workspace == "-" else workspace
    if not isinstance(doc, dict):
        check_workspace(doc, source)  # names the file: a workspace is a JSON object
    patched = apply_patches(doc, [_patch(p) for p in patches])
    if patches:
        source += f" patched with {', '.join(patches)}"
    check_workspace(patched, source, integer=False)
    try:
        lh = likelihood_from_workspace(patched, measurement=measurement)
    except StatsError as exc:
        raise StatsError(f"{source}: {exc}") from None
    try:
        res = limits_of_likelihood(lh, cl=cl, test_stat=test_stat)
    except Exception as exc:  # pyhf's own failures (e.g. FailedMinimization): one line
        if not type(exc).__module__.startswith("pyhf"):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = (f"{source}: the limit search failed ({type(exc).__name__}: {reason}); "
               "check the workspace's sample yields and modifiers")
        raise StatsError(msg) from None
    seconds = res.seconds
    if as_json:
        echo_json({"observed": res.observed, "expected": list(res.expected),
                   "expected_band_labels": list(BAND_LABELS), "cl": res.cl,
                   "test_stat": res.test_stat, "poi": lh.poi_name, "path": res.path,
                   "notes": list(res.notes), "seconds": seconds,
                   "workspace": workspace, "patches": list(patches)})
        return
    labels = ("Observed", "Expected -2σ", "Expected -1σ", "Expected median", "Expected +1σ",
              "Expected +2σ")
    rows = [(lab, f"{v:.6g}") for lab, v in zip(labels, (res.observed, *res.expected),
                                                 strict=True)]
    echo_table(("", lh.poi_name), rows,
               title=f"{100 * cl:g}% CL upper limits on {lh.poi_name} ({test_stat})")
    click.echo(f"{res.path} path, {seconds:.2f} s")
    for note in res.notes:
        click.echo(f"note: {note}")
