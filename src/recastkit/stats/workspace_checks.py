"""Checks of a pyhf workspace's observations before pyhf compiles it.

pyhf's schema does not require an observation to have as many counts as its channel has bins;
a short one fails only at evaluation time, deep inside a fit. Observed counts must also be
non-negative (integer, for ``recastkit cls``: the rule ``recastkit fit`` applies to
``--data``).
"""

from __future__ import annotations

import math
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


def _check_sample_data(channel: Mapping[str, Any], c: int, source: str) -> None:
    """Sample yields must be finite numbers (NaN makes every fit fail deep inside pyhf)."""
    samples = channel.get("samples")
    for j, sample in enumerate(samples if isinstance(samples, list) else []):
        data = sample.get("data") if isinstance(sample, Mapping) else None
        if not isinstance(data, list):
            continue
        bad = [(k, x) for k, x in enumerate(data)
               if isinstance(x, (int, float)) and not math.isfinite(x)]
        if bad:
            shown = ", ".join(f"bin {k}: {x!r}" for k, x in bad[:5])
            msg = (f"{source}: field 'channels[{c}].samples[{j}].data' (sample "
                   f"{sample.get('name')!r}) must be finite; got {shown}")
            raise StatsError(msg)
    rows: list[list[float]] = []
    for sample in samples if isinstance(samples, list) else []:
        data = sample.get("data") if isinstance(sample, Mapping) else None
        if not isinstance(data, list) or not all(isinstance(x, (int, float)) for x in data):
            return  # pyhf's schema reports it
        rows.append(data)
    if rows and all(len(r) == len(rows[0]) for r in rows):
        totals = [math.fsum(col) for col in zip(*rows, strict=True)]
        negative = [(k, t) for k, t in enumerate(totals) if t < 0]
        if negative:
            shown = ", ".join(f"bin {k}: {t:g}" for k, t in negative[:5])
            msg = (f"{source}: field 'channels[{c}].samples' (channel {channel.get('name')!r}): "
                   f"the total nominal yield is negative; {shown}")
            raise StatsError(msg)


def check_workspace(workspace: Any, source: str = "workspace", *, integer: bool = True
                    ) -> None:
    """Require finite sample yields, and for every channel an observation as long as the
    channel with non-negative (integer) counts.

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
    for c, channel in enumerate(channels):
        if not isinstance(channel, Mapping):
            continue
        _check_sample_data(channel, c, source)
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
