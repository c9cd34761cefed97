"""Exclusion contours from a CLs field with a known 0.05 line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recastkit.exceptions import StatsError
from recastkit.stats.contour import exclusion_contour
from recastkit.stats.results import PointResult


def _points(m3: float = 60.0) -> list[PointResult]:
    # CLs = 0.05 · exp((x + y − 1000) / 100): the observed line is x + y = 1000; the
    # expected ones are shifted by ±50 (−1σ: x + y = 950; +1σ: x + y = 1050)
    out = []
    for x in np.arange(200.0, 1001.0, 50.0):
        for y in np.arange(0.0, 801.0, 50.0):
            s = x + y
            obs = 0.05 * math.exp((s - 1000.0) / 100.0)
            exp = tuple(0.05 * math.exp((s - c) / 100.0) for c in (900, 950, 1000, 1050, 1100))
            out.append(PointResult(f"p_{x:g}_{y:g}_{m3:g}", 1.0, min(obs, 1.0),
                                   tuple(min(e, 1.0) for e in exp),  # type: ignore[arg-type]
                                   "converged", parameters={"m1": x, "m2": y, "m3": m3}))
    return out


def test_contour_lines_follow_the_cls_level() -> None:
    pts = _points() + _points(m3=1.0)[:10]
    c = exclusion_contour(pts, "m1", "m2")
    assert c.fixed == {"m3": 60.0}  # the most common value
    assert len(c.points) == len(_points())
    for lines, total in ((c.observed, 1000.0), (c.expected, 1000.0),
                         (c.expected_down, 950.0), (c.expected_up, 1050.0)):
        assert len(lines) == 1
        xy = np.array(lines[0])
        assert len(xy) > 10
        assert np.allclose(xy.sum(axis=1), total, atol=1.0)
    d = c.to_dict()
    assert set(d) >= {"observed", "expected", "expected_up", "expected_down", "x", "y"}
    assert d["observed"][0][0] == list(c.observed[0][0])


def test_contour_errors() -> None:
    pts = _points()
    with pytest.raises(StatsError, match=r"--x mass: not a parameter.*m1, m2, m3"):
        exclusion_contour(pts, "mass", "m2")
    with pytest.raises(StatsError, match="only 0 points"):
        exclusion_contour(pts, "m1", "m2", fix={"m3": 5.0})
