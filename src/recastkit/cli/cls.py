"""``recastkit cls``: observed and expected CLs of any pyhf workspace at a signal strength.

Accepts the HistFactory JSON likelihoods published on HEPData: a workspace (``-`` reads
stdin) and optional JSON Patch files (RFC 6902 lists, e.g. ``patch.sbottom_*.json``, or a
pyhf patch with ``metadata``/``patch``), applied in order with ``jsonpatch``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click


def _read_json(spec: str, what: str) -> Any:
    from recastkit._files import decode_error_reason, read_text
    from recastkit.exceptions import StatsError

    if spec == "-":
        spec = "<stdin>"
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError as exc:
            raise StatsError(f"{spec}: cannot read {what}: {decode_error_reason(exc)}"
                             ) from None
    else:
        text = read_text(spec, what, StatsError)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StatsError(f"{spec}: {what} is not valid JSON ({exc})") from None


@click.command(name="cls")
@click.argument("workspace", default="-", metavar="WORKSPACE.json")
@click.option("--mu", type=float, default=1.0, show_default=True,
              help="Signal strength to test.")
@click.option("-p", "--patch", "patches", multiple=True, metavar="PATCH.json",
              help="JSON Patch to apply first (repeatable, applied in order).")
@click.option("--measurement", default=None, help="Measurement name (default: the first).")
@click.option("--test-stat", type=click.Choice(["qtilde", "q"]), default="qtilde",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(workspace: str, mu: float, patches: tuple[str, ...], measurement: str | None,
            test_stat: str, as_json: bool) -> None:
    """CLs (observed and expected band) of a pyhf WORKSPACE ('-' reads stdin)."""
    from recastkit.cli._common import echo_json, echo_table
    from recastkit.exceptions import StatsError
    from recastkit.stats import compute_cls
    from recastkit.stats.grid import apply_patches, likelihood_with_poi_bound
    from recastkit.stats.workspace_checks import check_workspace

    doc = _read_json(workspace, "workspace")
    source = "<stdin>" if workspace == "-" else workspace
    if not isinstance(doc, dict):
        check_workspace(doc, source)  # names the file: a workspace is a JSON object
    patched = apply_patches(doc, [(p, _read_json(p, "patch")) for p in patches])
    if patches:
        source += f" patched with {', '.join(patches)}"
    check_workspace(patched, source)
    try:
        lh = likelihood_with_poi_bound(patched, mu, measurement=measurement)
    except StatsError as exc:
        raise StatsError(f"{source}: {exc}") from None
    try:
        result = compute_cls(lh, mu, test_stat)
    except Exception as exc:  # pyhf's own failures (e.g. FailedMinimization): one line
        if not type(exc).__module__.startswith("pyhf"):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = (f"{source}: the fit at mu = {mu:g} failed ({type(exc).__name__}: {reason}); "
               "check the workspace's sample yields and modifiers")
        raise StatsError(msg) from None
    if as_json:
        echo_json({"CLs_obs": result.cls_observed, "CLs_exp": list(result.cls_expected),
                   "mu": result.mu, "test_stat": result.test_stat})
        return
    rows = [("Observed", f"{result.cls_observed:.6g}")]
    for label, value in zip(("Expected -2σ", "Expected -1σ", "Expected median",
                             "Expected +1σ", "Expected +2σ"), result.cls_expected, strict=True):
        rows.append((label, f"{value:.6g}"))
    echo_table(("", "CLs"), rows, title=f"CLs at μ = {mu:g} ({test_stat})")
