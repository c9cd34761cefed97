"""Observations of a pyhf workspace are checked before pyhf compiles it."""

from __future__ import annotations

from typing import Any

import pytest

from recastkit.exceptions import StatsError
from recastkit.stats import likelihood_from_workspace
from recastkit.stats.workspace_checks import check_workspace


def _ws(obs: list[Any]) -> dict[str, Any]:
    return {
        "channels": [{"name": "sr", "samples": [
            {"name": "s", "data": [1.0, 2.0, 3.0],
             "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "b", "data": [5.0, 5.0, 5.0], "modifiers": []}]}],
        "observations": [{"name": "sr", "data": obs}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def test_good_workspace_passes() -> None:
    check_workspace(_ws([5.0, 6.0, 7.0]), "ws.json")


def test_short_observation_is_an_error_before_any_fit() -> None:
    with pytest.raises(StatsError, match=r"ws\.json: field 'observations\[0\]\.data' "
                                         r"\(channel 'sr'\) has 2 counts but the channel "
                                         r"has 3 bins"):
        check_workspace(_ws([5.0, 6.0]), "ws.json")
    # the library entry point refuses it too, instead of failing inside pyhf's fit
    with pytest.raises(StatsError, match="has 2 counts but the channel has 3 bins"):
        likelihood_from_workspace(_ws([5.0, 6.0]))


def test_integer_rule_is_optional_but_negative_counts_never_pass() -> None:
    check_workspace(_ws([5.5, 6.0, 7.0]), integer=False)
    with pytest.raises(StatsError, match=r"non-negative integer counts; got bin 0: 5\.5"):
        check_workspace(_ws([5.5, 6.0, 7.0]))
    with pytest.raises(StatsError, match=r"non-negative finite counts; got bin 2: -1\.0"):
        check_workspace(_ws([5.0, 6.0, -1.0]), integer=False)


def test_schema_error_names_the_field() -> None:
    ws = _ws([5.0, 6.0, 7.0])
    ws["channels"][0]["samples"][1]["data"] = "x"
    with pytest.raises(StatsError, match=r"at field 'channels\[0\]\.samples\[1\]\.data'"):
        likelihood_from_workspace(ws)
