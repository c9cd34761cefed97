"""Exclusion contours of a signal grid: where CLs crosses 1 − CL in a 2-D parameter plane.

The points of one slice (the other parameters fixed) are triangulated in coordinates scaled to
the unit square (so that GeV ranges of different size do not skew the triangles), log CLs is
interpolated linearly on the triangles onto a regular grid (one Delaunay triangulation,
:class:`scipy.spatial.Delaunay` and barycentric weights; a point without CLs masks its
triangles)
and :mod:`contourpy` draws the lines at log(1 − CL). Outside the convex hull of the points no
line is drawn. Observed, expected median and the expected ±1σ lines come out as lists of
``[x, y]`` polylines.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recastkit.exceptions import StatsError
from recastkit.stats.results import PointResult

log = logging.getLogger(__name__)

Line = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Contour:
    """Exclusion contour lines in the plane (``x``, ``y``).

    Attributes:
        x: Name of the x parameter.
        y: Name of the y parameter.
        fixed: Values of the other parameters in this slice.
        level: The CLs level of the lines (1 − CL).
        observed: Observed lines (each a tuple of (x, y) points).
        expected: Expected median lines.
        expected_up: Lines of the expected +1σ CLs (``cls_expected[3]``).
        expected_down: Lines of the expected −1σ CLs (``cls_expected[1]``).
        points: (x, y, CLs_obs, CLs_exp median) of every point of the slice.
    """

    x: str
    y: str
    fixed: Mapping[str, float | str]
    level: float
    observed: tuple[Line, ...]
    expected: tuple[Line, ...]
    expected_up: tuple[Line, ...]
    expected_down: tuple[Line, ...]
    points: tuple[tuple[float, float, float, float], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: lines as lists of [x, y]."""
        def lines(ls: tuple[Line, ...]) -> list[list[list[float]]]:
            return [[[a, b] for a, b in line] for line in ls]

        return {
            "x": self.x, "y": self.y, "fixed": dict(self.fixed), "level": self.level,
            "observed": lines(self.observed), "expected": lines(self.expected),
            "expected_up": lines(self.expected_up), "expected_down": lines(self.expected_down),
            "points": [{"x": a, "y": b,
                        "cls_observed": c if math.isfinite(c) else None,
                        "cls_expected": d if math.isfinite(d) else None}
                       for a, b, c, d in self.points],
        }


def _number(value: float | str | None, what: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise StatsError(f"{what}: not a number ({value!r})") from None


def select_slice(results: Sequence[PointResult], x: str, y: str,
                 fix: Mapping[str, float] | None = None
                 ) -> tuple[list[PointResult], dict[str, float | str]]:
    """The points of one (x, y) slice: ``fix`` given, or the most common other values.

    Raises:
        StatsError: For a parameter not in the points' parameters (lists the valid names),
            or a slice with fewer than three points.
    """
    if not results:
        raise StatsError("no points to draw a contour from")
    names = sorted({k for r in results for k in r.parameters})
    for what, name in (("--x", x), ("--y", y), *(("--fix", n) for n in (fix or {}))):
        if name not in names:
            valid = ", ".join(names) if names else "none (give --pattern)"
            raise StatsError(f"{what} {name}: not a parameter of the points; parameters: "
                             f"{valid}")
    fixed: dict[str, float | str] = {k: float(v) for k, v in (fix or {}).items()}
    others = [n for n in names if n not in (x, y) and n not in fixed]
    for name in others:
        counts = Counter(r.parameters.get(name) for r in results)
        if len(counts) > 1:
            value, _ = counts.most_common(1)[0]
            if value is not None:
                fixed[name] = value
            log.info("contour: %s fixed to %s (the most common value; others: %s) — "
                     "choose with --fix %s=VALUE", name, value,
                     ", ".join(str(v) for v in counts if v != value), name)
    chosen = [r for r in results
              if all(_eq(r.parameters.get(k), v) for k, v in fixed.items())]
    if len(chosen) < 3:
        raise StatsError(f"contour: only {len(chosen)} points with {fixed}; need at least 3")
    return chosen, fixed


def _eq(a: float | str | None, b: float | str) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _lines(grid_x: np.ndarray, grid_y: np.ndarray, z: np.ndarray, level: float
           ) -> tuple[Line, ...]:
    import contourpy

    gen = contourpy.contour_generator(grid_x, grid_y, np.ma.masked_invalid(z),
                                      line_type=contourpy.LineType.Separate)
    out = []
    for seg in gen.lines(math.log(level)):
        arr = np.asarray(seg, dtype=float)
        if len(arr) >= 2:
            out.append(tuple((float(a), float(b)) for a, b in arr))
    return tuple(out)


def _interpolated(xs: np.ndarray, ys: np.ndarray, fields: Sequence[np.ndarray], n_grid: int
                  ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None:
    """log CLs of each field, linear on one Delaunay triangulation, on a regular grid."""
    from scipy.spatial import Delaunay, QhullError

    x0, x1, y0, y1 = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
    if x1 <= x0 or y1 <= y0:
        return None
    uv = np.column_stack([(xs - x0) / (x1 - x0), (ys - y0) / (y1 - y0)])
    try:
        tri = Delaunay(uv)
    except QhullError as exc:
        log.warning("contour: cannot triangulate the points (%s)", exc)
        return None
    gu, gv = np.meshgrid(np.linspace(0, 1, n_grid), np.linspace(0, 1, n_grid))
    q = np.column_stack([gu.ravel(), gv.ravel()])
    # locate the grid nodes once; the barycentric weights serve every field
    simplex = tri.find_simplex(q)
    inside = simplex >= 0
    trans = tri.transform[simplex[inside]]
    b2 = np.einsum("nij,nj->ni", trans[:, :2], q[inside] - trans[:, 2])
    bary = np.column_stack([b2, 1.0 - b2.sum(axis=1)])
    corners = tri.simplices[simplex[inside]]
    out = []
    for cls in fields:
        with np.errstate(divide="ignore", invalid="ignore"):
            logc = np.log(np.clip(cls, 1e-300, None))
        z = np.full(len(q), np.nan)
        # a point without CLs (NaN) masks its triangles
        z[inside] = np.sum(bary * logc[corners], axis=1)
        out.append(z.reshape(gu.shape))
    return gu * (x1 - x0) + x0, gv * (y1 - y0) + y0, out


def exclusion_contour(results: Sequence[PointResult], x: str, y: str, *,
                      fix: Mapping[str, float] | None = None, level: float = 0.05,
                      n_grid: int = 160) -> Contour:
    """Observed and expected (median, ±1σ) exclusion lines at CLs = ``level``.

    Args:
        results: The grid's points with their ``parameters``.
        x: Parameter on the x axis.
        y: Parameter on the y axis.
        fix: Values of other parameters (else the most common value of each).
        level: CLs level (1 − CL).
        n_grid: Size of the regular interpolation grid per axis.

    Raises:
        StatsError: See :func:`select_slice`.
    """
    chosen, fixed = select_slice(results, x, y, fix)
    xs = np.array([_number(r.parameters[x], f"{r.name} {x}") for r in chosen])
    ys = np.array([_number(r.parameters[y], f"{r.name} {y}") for r in chosen])
    obs = np.array([r.cls_observed for r in chosen], dtype=float)
    exp = np.array([r.cls_expected for r in chosen], dtype=float)
    points = tuple((float(a), float(b), float(c), float(d))
                   for a, b, c, d in zip(xs, ys, obs, exp[:, 2], strict=True))
    fields = [obs, exp[:, 2], exp[:, 3], exp[:, 1]]
    grid = _interpolated(xs, ys, fields, n_grid)
    lines: list[tuple[Line, ...]] = [(), (), (), ()]
    if grid is not None:
        gx, gy, zs = grid
        lines = [_lines(gx, gy, z, level) for z in zs]
    return Contour(x=x, y=y, fixed=fixed, level=level, observed=lines[0], expected=lines[1],
                   expected_up=lines[2], expected_down=lines[3], points=points)
