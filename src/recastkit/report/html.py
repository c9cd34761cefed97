"""A single self-contained HTML page summarizing a chain: ledger, cutflow, limits, plots.

Plots are embedded as base64 PNG so the page can be mailed or attached to an analysis
record on its own. Every number shown is also in the machine-readable JSON written next to it.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recastkit._atomic import write_text_atomic
from recastkit.scaling import Ledger
from recastkit.stats.results import BAND_LABELS, LimitResult

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
           numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            cells.append(f"<td{cls}>{_esc('' if value is None else value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _ledger_section(ledger: Ledger) -> str:
    rows = [("÷" if f.role == "denominator" else "×", f.name, f"{f.value:.10g}", f.unit,
             f.source) for f in ledger.factors]
    rows.append(("=", "scale", f"{ledger.scale:.6g}", "", "σ·ε·k·L / Σw"))
    rows.append(("", "expected yield", f"{ledger.expected_yield:.6g}", "events", "σ·ε·k·L"))
    return "<h2>Normalization ledger</h2>" + _table(
        ["", "factor", "value", "unit", "source"], rows, numeric=(2,))


def _cutflow_section(cutflow: Sequence[Mapping[str, Any]]) -> str:
    rows = [(c["name"], c["n_events"], f"{c['sum_of_weights']:.6g}",
             f"{c['sum_of_weights_squared']:.6g}") for c in cutflow]
    return "<h2>Cutflow (generator weights, before scaling)</h2>" + _table(
        ["cut", "events", "Σw", "Σw²"], rows, numeric=(1, 2, 3))


def _limit_section(result: LimitResult) -> str:
    labels = ("Observed", *(f"Expected {b}" for b in BAND_LABELS))
    mus = (result.observed_mu, *result.expected_mu)
    xsecs: Sequence[float | None] = (
        (result.observed_xsec_fb, *result.expected_xsec_fb)
        if result.expected_xsec_fb is not None and result.observed_xsec_fb is not None
        else (None,) * 6
    )
    rows = [(lab, f"{mu:.4g}", None if x is None else f"{x:.4g}")
            for lab, mu, x in zip(labels, mus, xsecs, strict=True)]
    notes = "".join(f"<li>{_esc(n)}</li>" for n in result.notes)
    cl = f"{100 * result.cl:.0f}%"
    return (f"<h2>Upper limits ({cl} CL, CLs, test statistic {_esc(result.test_stat)})</h2>"
            + _table(["", "μ", "σ × BR [fb]"], rows, numeric=(1, 2))
            + (f'<ul class="note">{notes}</ul>' if notes else ""))


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}"></figure>'


def write_html_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    ledger: Ledger,
    cutflow: Sequence[Mapping[str, Any]],
    limit: LimitResult,
    plots: Mapping[str, Path],
    facts: Mapping[str, str] | None = None,
) -> Path:
    """Write the summary page atomically.

    Args:
        path: Output ``.html`` file.
        title: Page heading.
        ledger: The normalization ledger.
        cutflow: Cutflow rows with ``name``, ``n_events``, ``sum_of_weights`` and
            ``sum_of_weights_squared`` (as recorded by the selection step).
        limit: The limit result.
        plots: Caption → PNG file, embedded in order.
        facts: Extra "key: value" lines shown at the top (inputs, versions, seeds).

    Returns:
        The written path.
    """
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"]
    if facts:
        parts.append(_table(["", ""], list(facts.items())))
    parts.append(_ledger_section(ledger))
    parts.append(_cutflow_section(cutflow))
    parts.append(_limit_section(limit))
    for caption, png in plots.items():
        parts.append(f"<h2>{_esc(caption)}</h2>{_image(Path(png), caption)}")
    parts.append("</body></html>\n")
    out = Path(path)
    write_text_atomic(out, "".join(parts))
    return out
