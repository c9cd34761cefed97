"""Checks of a pyhf workspace's observations before pyhf compiles it.

pyhf's schema does not require an observation to have as many counts as its channel has bins;
a short one fails only at evaluation time, deep inside a fit. Observed counts must also be
non-negative (integer, for ``recastkit cls``: the rule ``recastkit fit`` applies to
``--data``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recastkit.exceptions import StatsError
from recastkit.stats.inputs import check_observed


def _channel_bins(channel: Mapping[str, Any]) -> int | None:
    samples = channel.get("samples")
    if not isinstance(samples, list) or not samples or not isinstance(samples[0], Mapping):
        return None
    data = samples[0].get("data")
    return len(data) if isinstance(data, list) else None


def check_workspace(workspace: Any, source: str = "workspace", *, integer: bool = True
                    ) -> None:
    """Require every channel's observation to be present, as long as the channel and counts.

    Structures the pyhf schema rejects anyway (a missing ``channels`` list, ...) are left to
    pyhf's validation, whose message carries the JSON path.

    Args:
        workspace: The decoded workspace (patches applied).
        source: The file name, for the message.
        integer: Require integer observed counts (``recastkit cls``, like ``fit --data``);
            without it only negative and NaN/inf counts are refused.

    Raises:
        StatsError: Naming the file and the field (``observations[i].data``).
    """
    if not isinstance(workspace, Mapping):
        msg = f"{source}: a pyhf workspace is a JSON object, got {type(workspace).__name__}"
        raise StatsError(msg)
    channels = workspace.get("channels")
    observations = workspace.get("observations")
    if not isinstance(channels, list) or not isinstance(observations, list):
        return
    by_name = {o.get("name"): (i, o) for i, o in enumerate(observations)
               if isinstance(o, Mapping)}
    for channel in channels:
        if not isinstance(channel, Mapping):
            continue
        name = channel.get("name")
        n_bins = _channel_bins(channel)
        if name not in by_name:
            have = ", ".join(str(n) for n in by_name) or "none"
            msg = (f"{source}: field 'observations' has no entry for channel {name!r} "
                   f"(observations for: {have})")
            raise StatsError(msg)
        i, obs = by_name[name]
        data = obs.get("data")
        if not isinstance(data, list):
            continue
        where = f"{source}: field 'observations[{i}].data' (channel {name!r})"
        if n_bins is not None and len(data) != n_bins:
            msg = f"{where} has {len(data)} counts but the channel has {n_bins} bins"
            raise StatsError(msg)
        check_observed(data, where, hint="", integer=integer)
