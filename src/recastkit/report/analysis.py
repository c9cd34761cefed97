"""The report of one analysis run (``recastkit run`` / ``reinterpret``): one self-contained page.

The workflow fills an :class:`AnalysisReport` from the run's results and calls
:func:`write_analysis_report`; this module only reads the containers (no pyhf, no ROOT).

The page shows, in this order: the limits (table and CLs scan), every sample's normalization
ledger with the source of each factor and any catalog conflicts, the cutflows per sample and
region, the distributions per region × observable (stacked backgrounds, the μ = 1 signal,
data, a data/prediction panel) with their yields, extra tables (e.g. theory uncertainties),
the steps of the run and the provenance. It is one file: plots are embedded as base64 PNG,
the CSS is inline and nothing refers to the network, so it can be mailed, attached to an
analysis record or opened offline. All user text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import hist
import numpy as np

from recastkit._atomic import write_text_atomic
from recastkit.scaling import Ledger
from recastkit.selection import CutflowEntry
from recastkit.stats.results import LimitResult

log = logging.getLogger(__name__)

SampleRole = Literal["signal", "background", "data"]


@dataclass(frozen=True)
class SampleReport:
    """One sample of the run as the report shows it.

    Attributes:
        name: The sample's name in the analysis spec.
        role: ``"signal"``, ``"background"`` or ``"data"``.
        dataset: Dataset name (DSID + tags) or None (mock background, toy data).
        ledger: The normalization ledger (None for data and the mock background).
        notes: Remarks to show with the ledger: catalog conflicts, assumed factors, warnings.
        cutflows: Region name -> the region's cutflow (generator weights, before scaling).
    """

    name: str
    role: SampleRole
    dataset: str | None = None
    ledger: Ledger | None = None
    notes: tuple[str, ...] = ()
    cutflows: Mapping[str, Sequence[CutflowEntry]] = field(default_factory=dict)


@dataclass(frozen=True)
class RegionPlot:
    """The histograms of one region × observable, scaled to the expected events.

    Attributes:
        region: Region name.
        observable: Observable name (the histogram's axis label gives its unit).
        signal: Signal histogram at μ = 1, or None.
        backgrounds: Background name -> histogram (stacked in this order).
        data: Observed (or toy) data, or None.
        signal_name: Label of the signal in the legend.
    """

    region: str
    observable: str
    signal: hist.Hist | None
    backgrounds: Mapping[str, hist.Hist]
    data: hist.Hist | None = None
    signal_name: str = "signal"


@dataclass(frozen=True)
class AnalysisReport:
    """Everything one run's report shows.

    Attributes:
        title: Page heading (analysis name and signal).
        samples: Every sample with its ledger and cutflows.
        regions: The histograms per region × observable.
        limits: Signal name -> its limit result (CLs scan and limits table).
        manifest: The provenance manifest (as written to ``manifest.json``).
        steps: The entries of ``steps.json`` (name, status, key, seconds).
        tables: Extra titled tables (title -> (headers, rows)), e.g. theory uncertainties.
    """

    title: str
    samples: tuple[SampleReport, ...]
    regions: tuple[RegionPlot, ...]
    limits: Mapping[str, LimitResult]
    manifest: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[Mapping[str, Any], ...] = ()
    tables: Mapping[str, tuple[Sequence[str], Sequence[Sequence[Any]]]] = field(
        default_factory=dict)


_CSS = """
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #d7dbe0; --head: #f1f3f6; --warn: #8a4b00;
        --warnbg: #fff4e0; --ok: #1e6b2f; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       max-width: 74em; margin: 1.5em auto; padding: 0 1.5em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 2px solid var(--line);
     padding-bottom: 0.2em; }
h3 { font-size: 1.08em; margin: 1.4em 0 0.4em; }
h4 { font-size: 1em; margin: 1em 0 0.3em; color: var(--muted); }
nav { background: var(--head); padding: 0.5em 1em; border-radius: 6px; }
nav a { margin-right: 1.2em; text-decoration: none; color: #0b57d0; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid var(--line); padding: 0.22em 0.6em; text-align: left;
         vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.src { color: var(--muted); font-size: 0.95em; }
tr.total td { font-weight: 600; border-top: 2px solid #999; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em; }
.muted { color: var(--muted); }
.warn { background: var(--warnbg); color: var(--warn); border-left: 4px solid #e8a33d;
        padding: 0.3em 0.8em; margin: 0.4em 0; list-style: none; }
.note { background: #eef3fb; color: #243b63; border-left: 4px solid #8fb0e0;
        padding: 0.3em 0.8em; margin: 0.4em 0; list-style: none; }
.scroll { overflow-x: auto; max-width: 100%; }
td.ds { overflow-wrap: anywhere; min-width: 14em; max-width: 30em; }
details { margin: 0.3em 0 0.8em; } summary { cursor: pointer; color: var(--muted); }
.ran { color: var(--warn); font-weight: 600; }
.cached { color: var(--ok); }
figure { margin: 0.6em 0 1.2em; }
figure img { max-width: 100%; width: 46em; border: 1px solid #eee; }
figcaption { color: var(--muted); font-size: 0.9em; max-width: 52em; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 0.6em 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 0.5em 0.9em;
        min-width: 13em; }
.card .big { font-size: 1.35em; font-weight: 600; }
"""

#: Manifest keys shown first (in this order) in the provenance section, when present.
_MANIFEST_FIRST = ("command", "argv", "started_utc", "started", "start", "start_time",
                   "finished_utc", "finished", "end", "end_time", "analysis", "spec",
                   "spec_hash", "software", "versions", "inputs", "input_files", "files",
                   "catalog")
#: Manifest keys not repeated in the provenance section when the page shows them already.
_MANIFEST_SHOWN = {"samples": "samples", "steps": "steps"}
_HASH_KEY = re.compile(r"(sha|md5|checksum|hash|digest|key|uuid)", re.IGNORECASE)
_HEXLIKE = re.compile(r"^(?:[a-z0-9]+[:-])?[0-9a-fA-F]{24,}$")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


class _Raw(str):
    """Already-escaped HTML (inserted into a table cell as it is)."""

    __slots__ = ()


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, _Raw):
        return str(value)
    return _esc(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *,
           numeric: Sequence[int] = (), classes: Mapping[int, str] | None = None,
           row_classes: Sequence[str | None] | None = None) -> str:
    """An HTML table; cells are escaped unless they are :class:`_Raw`."""
    out = ['<div class="scroll"><table>']
    if any(headers):
        out += ["<thead><tr>", *(f"<th>{_esc(h)}</th>" for h in headers), "</tr></thead>"]
    out.append("<tbody>")
    for r, row in enumerate(rows):
        rc = row_classes[r] if row_classes is not None and r < len(row_classes) else None
        out.append(f'<tr class="{_esc(rc)}">' if rc else "<tr>")
        for i, value in enumerate(row):
            cls = [c for c in (("num" if i in numeric else None),
                               (classes or {}).get(i)) if c]
            attr = f' class="{" ".join(cls)}"' if cls else ""
            out.append(f"<td{attr}>{_cell(value)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _fmt(x: float | None, spec: str = ".6g") -> str:
    if x is None:
        return ""
    x = float(x)
    return format(x, spec) if math.isfinite(x) else str(x)


def _short(value: str, n: int = 12) -> _Raw:
    """A checksum or key cut to ``n`` characters, the full value in the tooltip."""
    if len(value) <= n:
        return _Raw(f'<span class="mono">{_esc(value)}</span>')
    return _Raw(f'<span class="mono" title="{_esc(value)}">{_esc(value[:n])}…</span>')


def _slug(text: str) -> str:
    return _SLUG.sub("_", text).strip("_") or "plot"


def _anchor(prefix: str, text: str) -> str:
    return f"{prefix}-{_slug(text)}"


def _image(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


_WARN_WORDS = re.compile(r"conflict|warn|differ|mismatch|inconsistent|missing|assumed|skipped",
                         re.IGNORECASE)


def _notes(notes: Sequence[str]) -> str:
    """Remarks as a list: conflicts and warnings highlighted, the rest as plain notes."""
    out = []
    for cls in ("warn", "note"):
        items = [n for n in notes if bool(_WARN_WORDS.search(n)) == (cls == "warn")]
        if items:
            out.append(f'<ul class="{cls}">' + "".join(f"<li>{_esc(n)}</li>" for n in items)
                       + "</ul>")
    return "".join(out)


def _signal_sample(report: AnalysisReport, name: str | None = None) -> SampleReport | None:
    signals = [s for s in report.samples if s.role == "signal"]
    for s in signals:
        if s.name == name:
            return s
    return signals[0] if len(signals) == 1 or (name is None and signals) else None


def _lumi_ifb(report: AnalysisReport) -> float | None:
    ledgers = [s.ledger for s in report.samples if s.ledger is not None]
    sig = _signal_sample(report)
    if sig is not None and sig.ledger is not None:
        return sig.ledger.lumi_ifb
    return ledgers[0].lumi_ifb if ledgers else None


def _signal_xsec_fb(report: AnalysisReport, name: str) -> float | None:
    limit = report.limits.get(name)
    if limit is not None and limit.xsec_ref_fb is not None:
        return limit.xsec_ref_fb
    sample = _signal_sample(report, name)
    if sample is not None and sample.ledger is not None:
        return sample.ledger.xsec_fb * sample.ledger.k_factor
    return None


# ---------------------------------------------------------------------------- sections

def _limits_section(report: AnalysisReport, images: Mapping[str, bytes]) -> str:
    parts = ['<h2 id="limits">Limits</h2>']
    if not report.limits:
        return parts[0] + '<p class="muted">No limit was computed in this run.</p>'
    cards = []
    for name, r in report.limits.items():
        xs = (f"<br>σ × BR &lt; {_esc(_fmt(r.observed_xsec_fb, '.4g'))} fb"
              if r.observed_xsec_fb is not None else "")
        cards.append(f'<div class="card"><div class="muted">{_esc(name)}, '
                     f"{100 * r.cl:.0f}% CL observed</div>"
                     f'<div class="big">μ &lt; {_esc(_fmt(r.observed_mu, ".4g"))}{xs}</div>'
                     f'<div class="muted">expected μ &lt; {_esc(_fmt(r.expected_mu[2], ".4g"))}'
                     "</div></div>")
    parts.append(f'<div class="cards">{"".join(cards)}</div>')
    for name, r in report.limits.items():
        parts.append(f'<h3 id="{_esc(_anchor("limit", name))}">{_esc(name)}: upper limits at '
                     f"{100 * r.cl:.0f}% CL (CLs, test statistic {_esc(r.test_stat)})</h3>")
        labels = ("Observed", "Expected −2σ", "Expected −1σ", "Expected median",
                  "Expected +1σ", "Expected +2σ")
        mus = (r.observed_mu, *r.expected_mu)
        xsecs: Sequence[float | None] = (
            (r.observed_xsec_fb, *r.expected_xsec_fb)
            if r.observed_xsec_fb is not None and r.expected_xsec_fb is not None
            else (None,) * 6)
        rows: list[Sequence[Any]] = [(lab, _fmt(mu, ".4g"), _fmt(x, ".4g"))
                                     for lab, mu, x in zip(labels, mus, xsecs, strict=True)]
        if r.significance_observed is not None:
            rows.append(("Discovery significance obs. / exp.",
                         f"{_fmt(r.significance_observed, '.3g')} / "
                         f"{_fmt(r.significance_expected, '.3g')} σ", ""))
        parts.append(_table(["", "μ", "σ × BR [fb]"], rows, numeric=(1, 2)))
        ref = (f"σ × BR of the μ = 1 signal: {_fmt(r.xsec_ref_fb, '.6g')} fb. "
               if r.xsec_ref_fb is not None else "No reference σ: limits on μ only. ")
        parts.append(f'<p class="muted">{_esc(ref)}</p>')
        parts.append(_notes(r.notes))
        if r.settings:
            rows_s = [(k, _scalar(str(k), v) if _is_scalar(v) else
                       _Raw(f"<code>{_esc(_compact(v))}</code>"))
                      for k, v in sorted(r.settings.items(), key=lambda kv: str(kv[0]))]
            parts.append("<details><summary>Fit settings</summary>"
                         f"{_table(['', ''], rows_s)}</details>")
        png = images.get(f"limit:{name}")
        if png is not None:
            parts.append(_image(
                png, f"CLs scan of {name}",
                f"CLs scan of {name}: observed (solid), expected median (dashed) with ±1σ "
                f"(green) and ±2σ (yellow) bands; the red line is CLs = {r.level:.2g}."))
    return "".join(parts)


def _ledger_table(ledger: Ledger) -> str:
    rows: list[Sequence[Any]] = [
        ("÷" if f.role == "denominator" else "×", f.name, _fmt(f.value, ".10g"), f.unit,
         f.source) for f in ledger.factors]
    rows.append(("=", "scale", _fmt(ledger.scale, ".6g"), "", "σ · ε · k · L / Σw"))
    rows.append(("", "expected yield", _fmt(ledger.expected_yield, ".6g"), "events",
                 "σ · ε · k · L (before selection)"))
    uncs = []
    if ledger.xsec_rel_unc_up is not None or ledger.xsec_rel_unc_down is not None:
        uncs.append(f"σ uncertainty +{_fmt(ledger.xsec_rel_unc_up, '.3g')} / "
                    f"−{_fmt(ledger.xsec_rel_unc_down, '.3g')} (relative)")
    if ledger.lumi_rel_unc is not None:
        uncs.append(f"L uncertainty {_fmt(ledger.lumi_rel_unc, '.3g')} (relative)")
    classes = ["total" if r[0] == "=" else None for r in rows]
    out = _table(["", "factor", "value", "unit", "source"], rows, numeric=(2,),
                 classes={4: "src"}, row_classes=classes)
    if uncs:
        out += f'<p class="muted">{_esc("; ".join(uncs))}</p>'
    return out


def _samples_section(report: AnalysisReport) -> str:
    parts = ['<h2 id="samples">Samples and normalization</h2>']
    rows = []
    for s in report.samples:
        lg = s.ledger
        rows.append((
            _Raw(f'<a href="#{_esc(_anchor("sample", s.name))}">{_esc(s.name)}</a>'),
            s.role, s.dataset or "",
            _fmt(lg.xsec_fb, ".6g") if lg else "", _fmt(lg.filter_eff, ".6g") if lg else "",
            _fmt(lg.k_factor, ".6g") if lg else "", _fmt(lg.lumi_ifb, ".6g") if lg else "",
            _fmt(lg.sum_of_weights, ".10g") if lg else "", _fmt(lg.scale, ".6g") if lg else "",
            len(s.notes) or ""))
    parts.append(_table(["sample", "role", "dataset", "σ [fb]", "ε", "k", "L [fb⁻¹]", "Σw",
                         "scale", "notes"], rows, numeric=(3, 4, 5, 6, 7, 8, 9),
                        classes={2: "ds"}))
    for s in report.samples:
        title = f"{s.name} ({s.role})"
        parts.append(f'<h3 id="{_esc(_anchor("sample", s.name))}">{_esc(title)}</h3>')
        if s.dataset:
            parts.append(f'<p>Dataset <code>{_esc(s.dataset)}</code></p>')
        parts.append(_notes(s.notes))
        if s.ledger is not None:
            parts.append(_ledger_table(s.ledger))
        elif s.role == "data":
            parts.append('<p class="muted">Data: not normalized.</p>')
        else:
            parts.append('<p class="muted">No normalization ledger (normalized by '
                         "construction, e.g. the mock background).</p>")
    return "".join(parts)


def _cut_fields(entry: Any) -> tuple[str, int, float, float]:
    if isinstance(entry, Mapping):
        return (str(entry["name"]), int(entry["n_events"]), float(entry["sum_of_weights"]),
                float(entry.get("sum_of_weights_squared", math.nan)))
    return (entry.name, int(entry.n_events), float(entry.sum_of_weights),
            float(entry.sum_of_weights_squared))


def _cutflow_table(cutflow: Sequence[Any], scale: float | None) -> str:
    entries = [_cut_fields(e) for e in cutflow]
    if not entries:
        return '<p class="muted">Empty cutflow.</p>'
    first = entries[0][2]
    rows = []
    prev = None
    for name, n, sw, sw2 in entries:
        eff = sw / first if first else math.nan
        step = sw / prev if prev else math.nan
        row: list[Any] = [name, n, _fmt(sw, ".8g"), _fmt(sw2, ".6g"), _fmt(eff, ".4g"),
                          "" if prev is None else _fmt(step, ".4g")]
        if scale is not None:
            row.append(_fmt(sw * scale, ".6g"))
        rows.append(row)
        prev = sw
    headers = ["cut", "events", "Σw", "Σw²", "ε (vs first)", "ε (vs previous)"]
    if scale is not None:
        headers.append("expected events")
    return _table(headers, rows, numeric=(1, 2, 3, 4, 5, 6))


def _cutflows_section(report: AnalysisReport) -> str:
    parts = ['<h2 id="cutflows">Cutflows</h2>',
             '<p class="muted">Generator weights before scaling; ε is Σw after the cut over Σw '
             "at the first step (and over the previous step); expected events are Σw × scale."
             "</p>"]
    any_cf = False
    for s in report.samples:
        for region, cutflow in s.cutflows.items():
            any_cf = True
            parts.append(f"<h3>{_esc(s.name)} in region {_esc(region)}</h3>")
            parts.append(_cutflow_table(cutflow, s.ledger.scale if s.ledger else None))
    if not any_cf:
        parts.append('<p class="muted">No cutflow recorded.</p>')
    return "".join(parts)


def _sum_hist(h: hist.Hist | None) -> tuple[float, float | None] | None:
    if h is None:
        return None
    values = np.asarray(h.values(), dtype=float)
    var = h.variances()
    err = None if var is None else math.sqrt(float(np.sum(np.asarray(var, dtype=float))))
    return float(np.sum(values)), err


def _yields_table(plot: RegionPlot) -> str:
    rows: list[Sequence[Any]] = []
    total, total_var, have_var = 0.0, 0.0, True
    for name, h in plot.backgrounds.items():
        got = _sum_hist(h)
        assert got is not None
        total += got[0]
        if got[1] is None:
            have_var = False
        else:
            total_var += got[1] ** 2
        rows.append((name, "background", _fmt(got[0], ".6g"), _fmt(got[1], ".3g")))
    classes: list[str | None] = [None] * len(rows)
    if plot.backgrounds:
        rows.append(("total background", "", _fmt(total, ".6g"),
                     _fmt(math.sqrt(total_var), ".3g") if have_var else ""))
        classes.append("total")
    sig = _sum_hist(plot.signal)
    if sig is not None:
        rows.append((f"{plot.signal_name} (μ = 1)", "signal", _fmt(sig[0], ".6g"),
                     _fmt(sig[1], ".3g")))
        classes.append(None)
    data = _sum_hist(plot.data)
    if data is not None:
        rows.append(("data", "data", _fmt(data[0], ".8g"), ""))
        classes.append(None)
    return _table(["sample", "role", "events in range", "MC stat. unc."], rows,
                  numeric=(2, 3), row_classes=classes)


def _regions_section(report: AnalysisReport, images: Mapping[str, bytes],
                     errors: Mapping[str, str]) -> str:
    parts = ['<h2 id="regions">Distributions</h2>']
    if not report.regions:
        return parts[0] + '<p class="muted">No histogram in this run.</p>'
    for i, plot in enumerate(report.regions):
        title = f"Region {plot.region}: {plot.observable}"
        parts.append(f'<h3 id="{_esc(_anchor("region", f"{plot.region}_{plot.observable}"))}">'
                     f"{_esc(title)}</h3>")
        key = f"region:{i}"
        if key in images:
            parts.append(_image(
                images[key], title,
                f"{title}. Backgrounds stacked, {plot.signal_name} (μ = 1) on top and dashed "
                "alone; hatched: MC statistical uncertainty of the background; data with "
                "Poisson (Garwood) errors. Lower panel: data / background prediction, "
                "dashed: (signal + background) / background."))
        elif key in errors:
            parts.append(f'<p class="warn">No plot: {_esc(errors[key])}</p>')
        parts.append(_yields_table(plot))
    return "".join(parts)


def _tables_section(report: AnalysisReport) -> str:
    parts = []
    for title, (headers, rows) in report.tables.items():
        num = tuple(i for i in range(len(headers))
                    if rows and all(isinstance(r[i], (int, float)) for r in rows
                                    if i < len(r)))
        fmt_rows = [[_fmt(v, ".6g") if isinstance(v, float) else v for v in r] for r in rows]
        parts.append(f'<h3 id="{_esc(_anchor("table", title))}">{_esc(title)}</h3>'
                     + _table(list(headers), fmt_rows, numeric=num))
    if not parts:
        return ""
    return '<h2 id="tables">Further tables</h2>' + "".join(parts)


def _steps_section(report: AnalysisReport) -> str:
    parts = ['<h2 id="steps">Steps</h2>']
    if not report.steps:
        return parts[0] + '<p class="muted">No step record.</p>'
    rows, total = [], 0.0
    n_ran = 0
    for st in report.steps:
        status = str(st.get("status", ""))
        n_ran += status == "ran"
        secs = st.get("seconds")
        if isinstance(secs, (int, float)):
            total += float(secs)
        rows.append((st.get("name", ""),
                     _Raw(f'<span class="{_esc(status)}">{_esc(status)}</span>'),
                     _short(str(st.get("key", ""))),
                     _fmt(secs, ".2f") if isinstance(secs, (int, float)) else ""))
    parts.append(f'<p class="muted">{len(rows)} steps: {n_ran} ran, {len(rows) - n_ran} '
                 f"taken from the cache; {total:.2f} s in total.</p>")
    parts.append(_table(["step", "status", "key", "seconds"], rows, numeric=(3,)))
    return "".join(parts)


def _scalar(key: str, value: Any) -> Any:
    if isinstance(value, str) and (_HEXLIKE.match(value) or (
            _HASH_KEY.search(key) and len(value) > 16 and " " not in value)):
        return _short(value)
    if isinstance(value, float):
        return _fmt(value, ".10g")
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return ", ".join(_fmt(v, ".6g") for v in value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return _Raw(f"<code>{_esc(shlex.join(value))}</code>") if key in (
            "command", "argv") else ", ".join(value)
    return value


def _compact(value: Any, limit: int = 300) -> str:
    """Nested manifest content as one line of JSON (cut at ``limit`` characters)."""
    import json

    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool)) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float))
                                                 for v in value))


def _render_value(key: str, value: Any, depth: int) -> str:
    """Nested manifest content: mappings of scalars as tables, lists of mappings as tables."""
    if _is_scalar(value):
        return _table(["", ""], [(key, _scalar(key, value))])
    if isinstance(value, Mapping):
        flat = [(k, v) for k, v in value.items() if _is_scalar(v)]
        nested = [(k, v) for k, v in value.items() if not _is_scalar(v)]
        out = _table(["", ""], [(k, _scalar(str(k), v)) for k, v in flat]) if flat else ""
        for k, v in nested:
            tag = "h4" if depth >= 1 else "h3"
            out += f"<{tag}>{_esc(k)}</{tag}>" + _render_value(str(k), v, depth + 1)
        return out
    if isinstance(value, (list, tuple)) and all(isinstance(v, Mapping) for v in value):
        cols: list[str] = []
        for item in value:
            cols.extend(str(k) for k in item if str(k) not in cols)
        rows = [[_scalar(c, item.get(c)) if _is_scalar(item.get(c)) else
                 _Raw(f"<code>{_esc(_compact(item.get(c)))}</code>") for c in cols]
                for item in value]
        return _table(cols, rows)
    return f"<pre>{_esc(value)}</pre>"


def _provenance_section(report: AnalysisReport) -> str:
    parts = ['<h2 id="provenance">Provenance</h2>']
    manifest = report.manifest
    if not manifest:
        return parts[0] + '<p class="muted">No manifest.</p>'
    shown = [k for k, attr in _MANIFEST_SHOWN.items() if k in manifest and getattr(report, attr)]
    keys = [k for k in _MANIFEST_FIRST if k in manifest]
    keys += sorted(k for k in manifest if k not in keys and k not in shown)
    flat = [(k, _scalar(k, manifest[k])) for k in keys if _is_scalar(manifest[k])]
    if flat:
        parts.append(_table(["", ""], flat))
    for k in keys:
        if not _is_scalar(manifest[k]):
            parts.append(f"<h3>{_esc(k)}</h3>{_render_value(k, manifest[k], 1)}")
    if shown:
        parts.append(f'<p class="muted">Also in manifest.json: {_esc(", ".join(shown))} '
                     "(shown above).</p>")
    return "".join(parts)


# ---------------------------------------------------------------------------- plots

def _plot_names(report: AnalysisReport) -> dict[str, str]:
    """Image key -> PNG file name (unique, file-system safe)."""
    names: dict[str, str] = {}
    used: set[str] = set()

    def unique(stem: str) -> str:
        name, n = f"{stem}.png", 2
        while name in used:
            name, n = f"{stem}_{n}.png", n + 1
        used.add(name)
        return name

    single = len(report.limits) == 1
    for name in report.limits:
        names[f"limit:{name}"] = unique("cls_scan" if single else f"cls_scan_{_slug(name)}")
    for i, plot in enumerate(report.regions):
        names[f"region:{i}"] = unique(f"{_slug(plot.region)}_{_slug(plot.observable)}")
    return names


def _make_plots(report: AnalysisReport, directory: Path
                ) -> tuple[dict[str, bytes], dict[str, str], dict[str, Path]]:
    from recastkit.report.plots import plot_limit, plot_region

    lumi = _lumi_ifb(report)
    images: dict[str, bytes] = {}
    errors: dict[str, str] = {}
    paths: dict[str, Path] = {}
    names = _plot_names(report)
    for name, result in report.limits.items():
        key = f"limit:{name}"
        path = directory / names[key]
        if len(result.mu_values) < 2:
            errors[key] = "fewer than two scan points"
            continue
        plot_limit(result, path, lumi_ifb=lumi)
        images[key], paths[key] = path.read_bytes(), path
    for i, region in enumerate(report.regions):
        key = f"region:{i}"
        path = directory / names[key]
        try:
            plot_region(region, path, lumi_ifb=lumi,
                        xsec_fb=_signal_xsec_fb(report, region.signal_name))
        except ValueError as exc:
            log.warning("no plot for %s: %s", key, exc)
            errors[key] = str(exc)
            continue
        images[key], paths[key] = path.read_bytes(), path
    return images, errors, paths


def render_analysis_report(report: AnalysisReport, images: Mapping[str, bytes] | None = None,
                           errors: Mapping[str, str] | None = None) -> str:
    """The page's HTML text.

    Args:
        report: The run's contents.
        images: PNG bytes by key (``"limit:<signal>"``, ``"region:<index>"``); missing keys
            are shown without a plot.
        errors: Why a plot is missing, by the same keys.

    Returns:
        The HTML document.
    """
    images = images or {}
    errors = errors or {}
    nav = [("limits", "Limits"), ("samples", "Samples"), ("cutflows", "Cutflows"),
           ("regions", "Distributions")]
    if report.tables:
        nav.append(("tables", "Further tables"))
    nav += [("steps", "Steps"), ("provenance", "Provenance")]
    sub = []
    signals = [s.name for s in report.samples if s.role == "signal"]
    if signals:
        sub.append("signal " + ", ".join(signals))
    sub.append(f"{len(report.samples)} samples, {len({r.region for r in report.regions})} "
               "regions")
    lumi = _lumi_ifb(report)
    if lumi is not None:
        sub.append(f"L = {lumi:.6g} fb⁻¹")
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_esc(report.title)}</h1>",
        f'<p class="muted">{_esc("; ".join(sub))}</p></header>',
        "<nav>" + "".join(f'<a href="#{a}">{_esc(t)}</a>' for a, t in nav) + "</nav>",
        "<main>",
        _limits_section(report, images),
        _samples_section(report),
        _cutflows_section(report),
        _regions_section(report, images, errors),
        _tables_section(report),
        _steps_section(report),
        _provenance_section(report),
        "</main>",
        '<footer><p class="muted">Written by recastkit; self-contained (plots embedded, no '
        "network access needed).</p></footer></body></html>\n",
    ]
    return "".join(parts)


def write_analysis_report(report: AnalysisReport, path: str | os.PathLike[str], *,
                          plots_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write the run's report as one self-contained HTML page (atomically).

    Args:
        report: The run's contents.
        path: Output ``.html`` file.
        plots_dir: Also keep the plots as PNG files in this directory
            (``<region>_<observable>.png``, ``cls_scan.png`` or ``cls_scan_<signal>.png``
            with several signals); by default they are only embedded in the page.

    Returns:
        The written path.
    """
    out = Path(path)
    if plots_dir is not None:
        images, errors, _ = _make_plots(report, Path(plots_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="recastkit-report-") as tmp:
            images, errors, _ = _make_plots(report, Path(tmp))
    write_text_atomic(out, render_analysis_report(report, images, errors))
    log.info("wrote %s", out)
    return out
