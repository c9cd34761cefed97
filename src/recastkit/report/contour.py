"""The exclusion-contour plot of a grid (``contour.png``) and its JSON (``contour.json``).

matplotlib (Agg) with the mplhep ATLAS style: observed line (solid), expected median (dashed)
with the ±1σ band drawn as its two edge lines filled where possible, and the points marked
excluded (observed CLs < level) or allowed. Reads :class:`recastkit.stats.contour.Contour`
only.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recastkit._atomic import atomic_path, write_text_atomic
from recastkit._json import dumps

if TYPE_CHECKING:
    from recastkit.stats.contour import Contour

log = logging.getLogger(__name__)


_SUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉₊₋", "0123456789+-")
_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")


def _mathtext(label: str) -> str:
    """Unicode sub/superscripts (``m(χ̃₂⁰)``) as mathtext: the ATLAS font lacks the glyphs."""
    def repl(m: re.Match[str]) -> str:
        sub, sup = m.group(1).translate(_SUB), m.group(2).translate(_SUP)
        return "$" + (f"_{{{sub}}}" if sub else "") + (f"^{{{sup}}}" if sup else "") + "$"

    return re.sub(r"([₀-₉₊₋]*)([⁰¹²³⁴-⁹⁺⁻]*)", lambda m: repl(m) if m.group() else "", label)


def write_contour_json(path: str | os.PathLike[str], contour: Contour) -> Path:
    """``contour.json``: observed, expected, expected_up, expected_down as lists of [x, y]."""
    write_text_atomic(path, dumps(contour.to_dict()) + "\n")
    return Path(path)


def plot_contour(path: str | os.PathLike[str], contour: Contour, *,
                 labels: Mapping[str, str] | None = None, title: str = "") -> Path:
    """Draw the contour lines and the points; write ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    labels = dict(labels or {})
    plt.style.use(mplhep.style.ATLAS)
    fig, ax = plt.subplots(figsize=(8, 6.5))
    try:
        pts = contour.points
        exc = [(x, y) for x, y, c, _ in pts if math.isfinite(c) and c < contour.level]
        alw = [(x, y) for x, y, c, _ in pts if math.isfinite(c) and c >= contour.level]
        bad = [(x, y) for x, y, c, _ in pts if not math.isfinite(c)]
        for sel, marker, colour, lab in ((exc, "o", "#d62728", "excluded (observed)"),
                                         (alw, "o", "none", "allowed"),
                                         (bad, "x", "grey", "CLs undefined")):
            if sel and marker == "x":
                ax.scatter([p[0] for p in sel], [p[1] for p in sel], marker=marker,
                           c=colour, s=14, label=lab, zorder=3)
            elif sel:
                ax.scatter([p[0] for p in sel], [p[1] for p in sel], marker=marker,
                           facecolors=colour, edgecolors="#444444" if colour == "none"
                           else colour, s=14, label=lab, zorder=3)
        styles: list[tuple[str, dict[str, Any]]] = [
            ("expected_up", {"color": "#f2c744", "lw": 1.5, "ls": ":"}),
            ("expected_down", {"color": "#f2c744", "lw": 1.5, "ls": ":"}),
            ("expected", {"color": "#1f3b73", "lw": 2.0, "ls": "--"}),
            ("observed", {"color": "#c0392b", "lw": 2.5, "ls": "-"}),
        ]
        names = {"observed": "Observed limit", "expected": "Expected limit",
                 "expected_up": r"Expected $\pm 1\sigma$", "expected_down": None}
        for attr, style in styles:
            for k, line in enumerate(getattr(contour, attr)):
                xs = [p[0] for p in line]
                ys = [p[1] for p in line]
                ax.plot(xs, ys, label=names[attr] if k == 0 else None, **style)
        ax.set_xlabel(_mathtext(labels.get(contour.x, contour.x)))
        ax.set_ylabel(_mathtext(labels.get(contour.y, contour.y)))
        fixed = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                          for k, v in contour.fixed.items())
        text = f"CLs = {contour.level:g}" + (f", {fixed}" if fixed else "")
        mplhep.atlas.text("Internal", ax=ax, loc=1)
        ax.text(0.02, 0.90, (title + "\n" if title else "") + text, transform=ax.transAxes,
                fontsize=11, va="top")
        ax.legend(loc="upper right", fontsize=10, frameon=False)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    log.info("wrote %s", path)
    return Path(path)
