"""Published likelihoods (HEPData) evaluated over a grid of signal points.

A HEPData HistFactory likelihood is a background-only workspace (``BkgOnly.json``) and one
JSON Patch (RFC 6902 list of ``{op, path, value}``) per signal point that adds the signal
samples. :func:`evaluate_grid` applies each patch, compiles the model and returns one frozen
:class:`GridPoint` per signal point: the observed and expected CLs at μ (1 by default) and
optionally the upper limits on μ. Progress is logged at INFO level.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recastkit.exceptions import StatsError
from recastkit.stats.limits import compute_cls, fit_cache, upper_limit
from recastkit.stats.model import Likelihood, likelihood_from_workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridPoint:
    """The result of one signal point.

    Attributes:
        name: Signal point name (the patch file stem without ``patch.``).
        mu: Tested signal strength.
        cls_observed: Observed CLs at ``mu``.
        cls_expected: Expected CLs at ``mu`` (−2σ, −1σ, median, +1σ, +2σ).
        excluded: Whether ``cls_observed`` < 0.05.
        observed_mu: Observed 95% CL upper limit on μ, or None when not computed.
        expected_mu: Expected limits on μ (5 entries), or None.
        seconds: Wall time for this point.
    """

    name: str
    mu: float
    cls_observed: float
    cls_expected: tuple[float, float, float, float, float]
    excluded: bool
    observed_mu: float | None = None
    expected_mu: tuple[float, float, float, float, float] | None = None
    seconds: float = 0.0


def _read_json(path: str | os.PathLike[str], what: str) -> Any:
    from recastkit._files import read_text

    text = read_text(path, what, StatsError)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StatsError(f"{path}: {what} is not valid JSON ({exc})") from None


def apply_patches(workspace: Mapping[str, Any], patches: Iterable[tuple[str, Any]]
                  ) -> dict[str, Any]:
    """Apply JSON Patches in order and return a new workspace mapping.

    Args:
        workspace: The background-only workspace.
        patches: ``(name, patch)`` pairs; a patch is an RFC 6902 list of operations or a
            pyhf patch object ``{"metadata": ..., "patch": [...]}``.

    Raises:
        StatsError: For a patch that is not a list of operations or does not apply (names it).
    """
    import jsonpatch

    doc: dict[str, Any] = copy.deepcopy(dict(workspace))
    for name, patch in patches:
        ops = patch
        if isinstance(patch, Mapping):
            if "patches" in patch:
                names = [p.get("metadata", {}).get("name", "?") for p in patch["patches"]][:10]
                msg = (
                    f"{name}: is a pyhf patchset with {len(patch['patches'])} patches; "
                    f"extract one (e.g. 'pyhf patchset extract') — first names: {names}"
                )
                raise StatsError(msg)
            ops = patch.get("patch")
        if not isinstance(ops, list):
            msg = (
                f"{name}: expected a JSON Patch (a list of {{op, path, value}} operations or "
                f"a pyhf patch with a 'patch' list), got {type(patch).__name__}"
            )
            raise StatsError(msg)
        try:
            doc = jsonpatch.apply_patch(doc, ops)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException,
                TypeError, KeyError) as exc:
            raise StatsError(f"{name}: the patch does not apply to the workspace ({exc})") from None
    return doc


def likelihood_with_poi_bound(workspace: Mapping[str, Any], mu: float,
                              measurement: str | None = None) -> Likelihood:
    """Compile ``workspace``; widen the POI upper bound to ``mu`` when needed (logged)."""
    lh = likelihood_from_workspace(workspace, measurement=measurement)
    if lh.poi_index < 0 or lh.model.config.poi_name is None:
        raise StatsError("workspace: the measurement defines no parameter of interest")
    high = lh.par_bounds[lh.poi_index][1]
    if mu > high:
        log.warning("μ = %g is above the POI upper bound %g; widening the bound", mu, high)
        lh = lh.with_poi_bound(mu)
    return lh


def point_name(path: str | os.PathLike[str]) -> str:
    """``patch.sbottom_1300_205_60.json`` -> ``sbottom_1300_205_60``."""
    stem = Path(path).name.removesuffix(".json")
    return stem.removeprefix("patch.")


def evaluate_grid(background_only: str | os.PathLike[str] | Mapping[str, Any],
                  patches: Sequence[str | os.PathLike[str]] | Mapping[str, Any], *,
                  mu: float = 1.0, test_stat: str = "qtilde", limits: bool = False,
                  n_points: int = 11,
                  progress: Callable[[int, str], None] | None = None
                  ) -> tuple[GridPoint, ...]:
    """Evaluate a published likelihood for several signal points.

    Args:
        background_only: ``BkgOnly.json`` path or its parsed content.
        patches: Patch file paths, or ``{name: patch}``.
        mu: Signal strength at which CLs is computed.
        test_stat: ``"qtilde"`` or ``"q"``.
        limits: Also compute the upper limits on μ (:func:`upper_limit`: automatic range,
            ``n_points`` scan points, toms748 refinement of the observed limit; slower).
        n_points: Scan points per signal point when ``limits`` is set.
        progress: Called after each signal point with the count done and the point name.

    Returns:
        One :class:`GridPoint` per patch, in the given order.
    """
    bkg = (_read_json(background_only, "background-only workspace")
           if not isinstance(background_only, Mapping) else background_only)
    if not isinstance(background_only, Mapping):
        from recastkit.stats.workspace_checks import check_workspace

        check_workspace(bkg, str(background_only), integer=False)
    items: list[tuple[str, Any]]
    if isinstance(patches, Mapping):
        items = list(patches.items())
    else:
        items = [(point_name(p), _read_json(p, "patch")) for p in patches]
    out: list[GridPoint] = []
    for k, (name, patch) in enumerate(items, start=1):
        t0 = time.perf_counter()
        lh = likelihood_with_poi_bound(apply_patches(bkg, [(name, patch)]), mu)
        with fit_cache():
            res = compute_cls(lh, mu, test_stat)
            obs_mu: float | None = None
            exp_mu: tuple[float, float, float, float, float] | None = None
            if limits:
                lim = upper_limit(lh, n_points=n_points, test_stat=test_stat)
                obs_mu, exp_mu = lim.observed_mu, lim.expected_mu
        seconds = time.perf_counter() - t0
        point = GridPoint(name, float(mu), res.cls_observed, res.cls_expected,
                          res.cls_observed < 0.05, obs_mu, exp_mu, seconds)
        log.info("[%d/%d] %s: CLs_obs = %.4g, CLs_exp = %.4g (%s, %.1f s)", k, len(items),
                 name, point.cls_observed, point.cls_expected[2],
                 "excluded" if point.excluded else "allowed", seconds)
        out.append(point)
        if progress is not None:
            progress(k, name)
    return tuple(out)
