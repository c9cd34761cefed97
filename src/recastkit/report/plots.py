"""Plots of a search: the m_jj distributions (``hists.png``) and the CLs scan (``limit.png``).

matplotlib with the Agg backend and the mplhep ATLAS style; the label carries "Internal",
√s and the integrated luminosity. Files are written atomically. This module reads result
containers only (:class:`recastkit.stats.SearchInputs`, :class:`recastkit.stats.LimitResult`);
it never imports pyhf.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from recastkit._atomic import atomic_path

if TYPE_CHECKING:
    from recastkit.report.analysis import RegionPlot
    from recastkit.stats.inputs import SearchInputs
    from recastkit.stats.results import LimitResult

log = logging.getLogger(__name__)

#: Colours of the stacked backgrounds (cycled), the signal and the expected bands.
BKG_COLOURS = ("#6baed6", "#fd8d3c", "#74c476", "#9e9ac8", "#fdd0a2")
SIGNAL_COLOUR = "#e31a1c"
BAND_1SIGMA = "#00cc00"
BAND_2SIGMA = "#ffff00"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _num(x: float) -> float | int:
    """13.0 -> 13 so that labels read '13 TeV', '140 fb⁻¹'."""
    return int(x) if float(x).is_integer() else x


def _atlas_label(ax: Any, lumi_ifb: float | None, com_tev: float) -> None:
    import inspect

    import mplhep

    # mplhep ≥ 1.0 names the free text ``text``; older versions call it ``label``
    text_kw = "text" if "text" in inspect.signature(mplhep.atlas.label).parameters else "label"
    kwargs: dict[str, Any] = {text_kw: "Internal", "data": True, "com": _num(com_tev),
                              "ax": ax, "loc": 0}
    if lumi_ifb is not None:
        kwargs["lumi"] = _num(float(f"{lumi_ifb:.4g}"))
    mplhep.atlas.label(**kwargs)


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    log.info("wrote %s", path)


def _fmt_xsec(xsec_fb: float) -> str:
    if xsec_fb >= 1e3:
        return f"{xsec_fb / 1e3:.3g} pb"
    return f"{xsec_fb:.3g} fb"


def plot_hists(inputs: SearchInputs, path: str | os.PathLike[str], *,
               lumi_ifb: float | None = None, xsec_fb: float | None = None,
               com_tev: float = 13.0, xlabel: str = r"$m_{jj}$ [GeV]",
               logy: bool = True, region: str | None = None) -> None:
    """Stacked backgrounds with the μ = 1 signal on top, data points and the MC stat band.

    Args:
        inputs: The validated search inputs.
        path: Output PNG.
        lumi_ifb: Integrated luminosity for the label (fb⁻¹).
        xsec_fb: Signal σ × BR for the legend (fb), if known.
        com_tev: Centre-of-mass energy for the label (TeV).
        xlabel: x-axis label.
        logy: Logarithmic y axis (default: a falling m_jj spectrum with a small signal).
        region: Region name written under the experiment label (multi-region fits).
    """
    import mplhep

    plt = _pyplot()
    plt.style.use(mplhep.style.ATLAS)
    edges = np.asarray(inputs.edges, dtype=float)
    fig, ax = plt.subplots(figsize=(8, 6))
    bkgs = [np.asarray(b.values, dtype=float) for b in inputs.backgrounds]
    sig = np.asarray(inputs.signal.values, dtype=float)
    labels = [b.name[:1].upper() + b.name[1:] for b in inputs.backgrounds]
    sig_label = "Signal (μ = 1" + (f", σ = {_fmt_xsec(xsec_fb)})" if xsec_fb else ")")
    mplhep.histplot([*bkgs, sig], edges, ax=ax, stack=True, histtype="fill",
                    label=[*labels, sig_label],
                    color=[*(BKG_COLOURS[i % len(BKG_COLOURS)] for i in range(len(bkgs))),
                           SIGNAL_COLOUR],
                    edgecolor="black", linewidth=0.3)
    ax.stairs(sig, edges, color=SIGNAL_COLOUR, linestyle="--", linewidth=1.5,
              label="Signal alone (μ = 1)")
    total_b = np.sum(bkgs, axis=0)
    var = np.zeros_like(total_b)
    for s in (*inputs.backgrounds,):
        if s.variances is not None:
            var += np.asarray(s.variances, dtype=float)
    unc = np.sqrt(var)
    ax.stairs(total_b + unc, edges, baseline=total_b - unc, fill=True, color="none",
              hatch="////", edgecolor="grey", linewidth=0, label="Bkg. MC stat. unc.")
    data = np.asarray(inputs.data, dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    data_label = "Data" if inputs.data_kind == "observed" else "Toy data (bkg-only)"
    ax.errorbar(centres, data, yerr=np.sqrt(data), fmt="o", color="black", markersize=3,
                linewidth=1, label=data_label)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Events / bin")
    if not logy:
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    top = float(max(np.max(total_b + sig), np.max(data + np.sqrt(data)), 1.0))
    if logy:
        ax.set_yscale("log")
        positive = sig[sig > 0]
        bottom = max(0.1, 0.3 * float(np.max(positive))) if positive.size else 0.5
        ax.set_ylim(min(bottom, 0.5), top * 40)
    else:
        ax.set_ylim(0, top * 1.45)
    ax.legend(loc="upper right", fontsize="small")
    _atlas_label(ax, lumi_ifb, com_tev)
    if region is not None:
        ax.text(0.04, 0.94, region, transform=ax.transAxes, ha="left", va="top",
                fontsize="large")
    fig.tight_layout()
    _save(fig, path)


def plot_limit(result: LimitResult, path: str | os.PathLike[str], *,
               lumi_ifb: float | None = None, com_tev: float = 13.0,
               poi_label: str = r"$\mu$") -> None:
    """Observed CLs vs μ, expected median (dashed) with ±1σ/±2σ bands and the CLs level.

    Args:
        result: The limit result.
        path: Output PNG.
        lumi_ifb: Integrated luminosity for the label (fb⁻¹).
        com_tev: Centre-of-mass energy for the label (TeV).
        poi_label: x-axis label.
    """
    import mplhep

    plt = _pyplot()
    plt.style.use(mplhep.style.ATLAS)
    mu = np.asarray(result.mu_values, dtype=float)
    exp = np.asarray(result.cls_expected, dtype=float)
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.fill_between(mu, exp[0], exp[4], color=BAND_2SIGMA, label=r"Expected $\pm 2\sigma$",
                    linewidth=0)
    ax.fill_between(mu, exp[1], exp[3], color=BAND_1SIGMA, label=r"Expected $\pm 1\sigma$",
                    linewidth=0)
    ax.plot(mu, exp[2], "k--", label="Expected (median)")
    ax.plot(mu, result.cls_observed, "k-", marker="o", markersize=3, label="Observed")
    level = result.level
    ax.axhline(level, color="red", linewidth=1.5,
               label=f"CLs = {level:.2g} ({100 * result.cl:.0f}% CL)")
    ax.axvline(result.observed_mu, color="black", linewidth=0.8, linestyle=":")
    ax.axvline(result.expected_mu[2], color="grey", linewidth=0.8, linestyle=":")
    text = (
        f"Obs. limit: $\\mu$ < {result.observed_mu:.3g}\n"
        f"Exp. limit: $\\mu$ < {result.expected_mu[2]:.3g}"
        f" $^{{+{result.expected_mu[3] - result.expected_mu[2]:.2g}}}"
        f"_{{-{result.expected_mu[2] - result.expected_mu[1]:.2g}}}$"
    )
    if result.observed_xsec_fb is not None and result.expected_xsec_fb is not None:
        text += (
            f"\nσ×BR < {_fmt_xsec(result.observed_xsec_fb)} "
            f"(exp. {_fmt_xsec(result.expected_xsec_fb[2])})"
        )
    ax.text(0.97, 0.62, text, transform=ax.transAxes, ha="right", va="top", fontsize="small",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax.set_xlim(mu[0], mu[-1])
    ax.set_ylim(0, 1.3)
    ax.set_xlabel(poi_label)
    ax.set_ylabel(r"CL$_s$")
    ax.legend(loc="upper right", fontsize="small", ncol=2)
    _atlas_label(ax, lumi_ifb, com_tev)
    fig.tight_layout()
    _save(fig, path)


def poisson_errors(counts: Any, cl: float = 0.682689492137086) -> tuple[Any, Any]:
    """Garwood (central, exact) Poisson confidence interval half-widths of observed counts.

    For n observed events the interval is
    [χ²((1 − cl)/2; 2n) / 2, χ²((1 + cl)/2; 2n + 2) / 2] (F. Garwood, Biometrika 28 (1936)
    437; the convention of the PDG review "Statistics", eq. 40.76 and ROOT's kPoisson).

    Args:
        counts: Observed counts (non-negative; non-integers are used as they are).
        cl: Coverage (default 68.27 %, ±1σ).

    Returns:
        (lower, upper) distances from the counts, each an array like ``counts``.
    """
    from scipy.stats import chi2

    n = np.asarray(counts, dtype=float)
    alpha = 1.0 - cl
    low = np.where(n > 0, 0.5 * chi2.ppf(alpha / 2, 2 * np.maximum(n, 1e-300)), 0.0)
    high = 0.5 * chi2.ppf(1 - alpha / 2, 2 * (n + 1))
    return n - low, high - n


def _plain(text: str) -> str:
    """User text shown literally by matplotlib (a ``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def _values_variances(h: Any) -> tuple[Any, Any]:
    values = np.asarray(h.values(), dtype=float)
    var = h.variances()
    return values, (np.zeros_like(values) if var is None else np.asarray(var, dtype=float))


def plot_region(region: RegionPlot, path: str | os.PathLike[str], *,
                lumi_ifb: float | None = None, xsec_fb: float | None = None,
                com_tev: float = 13.0, logy: bool | None = None) -> None:
    """One region × observable: stacked MC backgrounds, the μ = 1 signal, data, ratio panel.

    The backgrounds are stacked in their order, the signal (μ = 1) is stacked on top and also
    drawn alone (dashed); the hatched band is the MC statistical uncertainty of the summed
    backgrounds (√Σσ²); data are points with Garwood Poisson errors. The lower panel shows
    data / prediction, the prediction being the sum of the backgrounds (the signal alone
    when there are none), with the relative MC-stat band and (signal + prediction) /
    prediction as a dashed line.

    Args:
        region: The histograms (one-dimensional, with identical binning).
        path: Output PNG.
        lumi_ifb: Integrated luminosity for the label (fb⁻¹).
        xsec_fb: Signal σ for the legend (fb), if known.
        com_tev: Centre-of-mass energy for the label (TeV).
        logy: Logarithmic y axis; default: when the prediction spans more than two decades.

    Raises:
        ValueError: If the histograms are not one-dimensional or their binnings differ.
    """
    import mplhep

    hists = [*region.backgrounds.values(),
             *(h for h in (region.signal, region.data) if h is not None)]
    if not hists:
        msg = f"region {region.region!r}, observable {region.observable!r}: no histogram"
        raise ValueError(msg)
    if any(h.ndim != 1 for h in hists):
        msg = (f"region {region.region!r}, observable {region.observable!r}: only "
               "one-dimensional histograms can be plotted")
        raise ValueError(msg)
    edges = np.asarray(hists[0].axes[0].edges, dtype=float)
    for h in hists[1:]:
        other = np.asarray(h.axes[0].edges, dtype=float)
        if other.shape != edges.shape or not np.allclose(other, edges, rtol=1e-9, atol=0):
            msg = (f"region {region.region!r}, observable {region.observable!r}: the "
                   "histograms have different binnings")
            raise ValueError(msg)
    xlabel = hists[0].axes[0].label or region.observable

    plt = _pyplot()
    plt.style.use(mplhep.style.ATLAS)
    fig, (ax, rax) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    n_bins = edges.size - 1
    bkg_names = list(region.backgrounds)
    bkg_vals, total_var = [], np.zeros(n_bins)
    for h in region.backgrounds.values():
        values, var = _values_variances(h)
        bkg_vals.append(values)
        total_var += var
    total_b = np.sum(bkg_vals, axis=0) if bkg_vals else np.zeros(n_bins)
    sig = None if region.signal is None else _values_variances(region.signal)[0]

    stack = list(bkg_vals)
    labels = [_plain(n) for n in bkg_names]
    colours = [BKG_COLOURS[i % len(BKG_COLOURS)] for i in range(len(bkg_vals))]
    sig_name = _plain(region.signal_name)
    sig_label = f"{sig_name} (μ = 1" + (
        f", σ = {_fmt_xsec(xsec_fb)})" if xsec_fb else ")")
    if sig is not None:
        stack.append(sig)
        labels.append(sig_label)
        colours.append(SIGNAL_COLOUR)
    if stack:
        mplhep.histplot(stack, edges, ax=ax, stack=True, histtype="fill", label=labels,
                        color=colours, edgecolor="black", linewidth=0.3)
    if sig is not None and bkg_vals:
        ax.stairs(sig, edges, color=SIGNAL_COLOUR, linestyle="--", linewidth=1.5,
                  label=f"{sig_name} alone")
    unc = np.sqrt(total_var)
    if bkg_vals:
        ax.stairs(total_b + unc, edges, baseline=total_b - unc, fill=True, color="none",
                  hatch="////", edgecolor="grey", linewidth=0, label="Bkg. MC stat. unc.")

    pred = total_b if bkg_vals else (sig if sig is not None else np.zeros(n_bins))
    pred_unc = unc if bkg_vals else np.zeros(n_bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    data = None
    if region.data is not None:
        data = _values_variances(region.data)[0]
        lo, hi = poisson_errors(data)
        ax.errorbar(centres, data, yerr=(lo, hi), fmt="o", color="black", markersize=3,
                    linewidth=1, label="Data")
    top_candidates = [float(np.max(total_b + (0 if sig is None else sig))), 1.0]
    if data is not None:
        top_candidates.append(float(np.max(data)))
    top = max(top_candidates)
    positive = pred[pred > 0]
    if logy is None:
        logy = bool(positive.size) and top / float(np.min(positive)) > 100
    if logy:
        ax.set_yscale("log")
        shown = np.concatenate([positive, [] if sig is None else sig[sig > 0]])
        low = float(np.min(shown)) if shown.size else 0.5
        ax.set_ylim(max(low * 0.3, top * 1e-6), top * 60)
    else:
        ax.set_ylim(0, top * 1.5)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.set_ylabel("Events / bin")
    ax.legend(loc="upper right", fontsize="small")
    _atlas_label(ax, lumi_ifb, com_tev)
    ax.text(0.04, 0.95, _plain(region.region), transform=ax.transAxes, fontsize="small",
            va="top")

    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(pred > 0, pred, np.nan)
        rel = pred_unc / safe
        rax.stairs(1 + rel, edges, baseline=1 - rel, fill=True, color="none", hatch="////",
                   edgecolor="grey", linewidth=0)
        if sig is not None and bkg_vals:
            rax.stairs((pred + sig) / safe, edges, color=SIGNAL_COLOUR, linestyle="--",
                       linewidth=1.2)
        if data is not None:
            lo, hi = poisson_errors(data)
            rax.errorbar(centres, data / safe, yerr=(lo / safe, hi / safe), fmt="o",
                         color="black", markersize=3, linewidth=1)
    rax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    rax.set_ylim(0.0, 2.0)
    rax.set_xlim(edges[0], edges[-1])
    rax.set_ylabel("Data / Pred." if data is not None else "(S+B) / B")
    rax.set_xlabel(xlabel)
    ax.set_xlabel("")
    fig.subplots_adjust(left=0.15, right=0.96, top=0.95, bottom=0.10)
    fig.align_ylabels([ax, rax])
    _save(fig, path)
