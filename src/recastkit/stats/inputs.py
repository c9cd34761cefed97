"""From histograms to a search model: validation, the mock background and toy data.

The one-channel "signal on top of background" model of the tutorial: the scaled signal with a
normfactor ``mu`` (the POI), one or more backgrounds, observed or toy data, MC statistical
uncertainties from Σw² (``staterror``), and optional normalization uncertainties on the
signal: the cross-section uncertainty (``normsys`` ``xsec_signal``) and the luminosity
uncertainty (``lumi`` modifier), and the signal's theory uncertainties from generator-weight
variations (a ``histosys`` per :class:`~recastkit.theory.TheoryBand`, optionally split into
``normsys`` + shape-only ``histosys`` sharing one parameter, see :func:`theory_modifiers`).
A background normalized by recastkit from MC (its file carries a ledger:
:attr:`BinnedSample.lumi_scaled`) scales with the same luminosity and gets the same, fully
correlated ``lumi`` modifier; other backgrounds are taken as data-driven, without ``lumi``.

Several regions: :func:`prepare_region` validates one region (a control region may have no
signal) and :func:`build_multiregion_model` makes each region a channel; backgrounds named in
``free_backgrounds`` get a free ``normfactor`` ``mu_<background>`` shared by every region in
which a background of that name appears, so a control region fixes a background that the
signal region then uses. Theory modifiers of the same name are correlated across regions.

Every input is validated before any model is built: binning mismatches (the message shows
both edge lists), negative or NaN bins, an all-zero signal, and non-integer observed counts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from recastkit.exceptions import HistogramError, StatsError
from recastkit.stats.model import (
    ChannelSpec,
    ModelSpec,
    ModifierSpec,
    ParameterSetting,
    SampleSpec,
)
from recastkit.theory import TheoryBand

log = logging.getLogger(__name__)

#: Defaults of the tutorial's mock background.
MOCK_N_EVENTS = 50_000
MOCK_DECAY_GEV = 150.0
#: Relative tolerance when comparing bin edges.
EDGE_RTOL = 1e-9


@dataclass(frozen=True)
class BinnedSample:
    """A binned sample: per-bin sum of weights and sum of squared weights.

    Attributes:
        name: Sample name (used in the workspace and in plot legends).
        edges: Bin edges (GeV for m_jj).
        values: Σw per bin.
        variances: Σw² per bin, or None when unknown.
        source: Where it came from (a file spec, ``"mock"``, ...), for messages.
        lumi_scaled: The sample was normalized to σ × L (MC with a ledger), so it carries
            the luminosity modifier in the model.
    """

    name: str
    edges: tuple[float, ...]
    values: tuple[float, ...]
    variances: tuple[float, ...] | None = None
    source: str = ""
    lumi_scaled: bool = False

    @classmethod
    def from_hist(cls, h: Any, name: str, source: str = "") -> BinnedSample:
        """Build from a 1D ``hist.Hist`` (flow bins are ignored).

        Raises:
            HistogramError: If ``h`` is not one-dimensional.
        """
        from recastkit.io.hists import as_weighted

        w = as_weighted(h, source or name)
        variances = w.variances()
        return cls(
            name=name,
            edges=tuple(float(e) for e in w.axes[0].edges),
            values=tuple(float(v) for v in w.values()),
            variances=None if variances is None else tuple(float(v) for v in variances),
            source=source or name,
        )

    def rebinned(self, factor: int) -> BinnedSample:
        """Merge every ``factor`` adjacent bins (contents and variances add).

        Raises:
            HistogramError: If the number of bins is not a multiple of ``factor``.
        """
        n = len(self.values)
        if factor < 1 or n % factor:
            msg = (
                f"{self.source or self.name}: cannot merge {n} bins in groups of {factor}; "
                f"valid factors: {', '.join(str(k) for k in range(1, n + 1) if n % k == 0)}"
            )
            raise HistogramError(msg)
        if factor == 1:
            return self

        def merge(arr: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(float(x) for x in np.asarray(arr).reshape(-1, factor).sum(axis=1))

        return BinnedSample(
            self.name, self.edges[::factor], merge(self.values),
            None if self.variances is None else merge(self.variances), self.source,
            self.lumi_scaled,
        )

    @property
    def total(self) -> float:
        """Σ of the bin values."""
        return math.fsum(self.values)


@dataclass(frozen=True)
class SearchInputs:
    """Validated inputs of a one-channel search.

    Attributes:
        signal: The signal at μ = 1 (scaled to σ × L).
        backgrounds: Background samples, same binning as the signal.
        data: Observed (or toy) counts per bin.
        data_kind: ``"observed"`` or ``"toy"``.
        xsec_rel_unc: Relative (up, down) signal cross-section uncertainty, or None.
        lumi_rel_unc: Relative luminosity uncertainty, or None.
        theory: Theory uncertainty bands of the signal, in the signal's normalization.
        theory_split: Split each band into ``normsys`` + shape-only ``histosys``.
    """

    signal: BinnedSample
    backgrounds: tuple[BinnedSample, ...]
    data: tuple[float, ...]
    data_kind: Literal["observed", "toy"]
    xsec_rel_unc: tuple[float, float] | None = None
    lumi_rel_unc: float | None = None
    theory: tuple[TheoryBand, ...] = ()
    theory_split: bool = False

    @property
    def edges(self) -> tuple[float, ...]:
        """The common bin edges."""
        return self.signal.edges

    def background_total(self) -> np.ndarray:
        """Σ of the background values per bin."""
        total: np.ndarray = np.sum([b.values for b in self.backgrounds], axis=0)
        return total


def _fmt_edges(edges: Sequence[float] | np.ndarray) -> str:
    return "[" + ", ".join(f"{e:g}" for e in edges) + "]"


def check_sample(sample: BinnedSample) -> None:
    """Reject NaN/inf or negative bin contents and variances.

    Raises:
        HistogramError: Naming the sample's source, the bins and the values.
    """
    for field, arr in (("contents", sample.values), ("variances", sample.variances)):
        if arr is None:
            continue
        a = np.asarray(arr, dtype=float)
        bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
        if bad.size:
            shown = ", ".join(f"bin {i}: {float(a[i])!r}" for i in bad[:5])
            more = f" (and {bad.size - 5} more)" if bad.size > 5 else ""
            msg = (
                f"{sample.source or sample.name}: {sample.name} has negative or NaN bin "
                f"{field}: {shown}{more}; contents must be finite and ≥ 0"
            )
            raise HistogramError(msg)


def check_observed(counts: Sequence[float], where: str, n_bins: int | None = None,
                   hint: str = " (a weighted or scaled histogram cannot be observed data; "
                               "use --toy-data)", *, integer: bool = True) -> None:
    """Require observed data to be non-negative (integer) counts (and ``n_bins`` of them).

    Args:
        counts: The observed counts per bin.
        where: The file (and field) they come from, for the message.
        n_bins: Expected number of bins, if known.
        hint: Appended to the message for non-integer or negative counts.
        integer: Also require integer counts.

    Raises:
        StatsError: Naming ``where`` and the first bad bins.
    """
    try:
        arr = np.asarray(counts, dtype=float)
    except (TypeError, ValueError):
        raise StatsError(f"{where}: observed data must be a list of numbers") from None
    if arr.ndim != 1:
        raise StatsError(f"{where}: observed data must be a flat list of counts")
    if n_bins is not None and arr.size != n_bins:
        raise StatsError(f"{where}: {arr.size} observed counts for {n_bins} bins")
    wrong = ~np.isfinite(arr) | (arr < 0)
    if integer:
        wrong |= arr != np.round(arr)
    bad = np.flatnonzero(wrong)
    if bad.size:
        shown = ", ".join(f"bin {i}: {float(arr[i])!r}" for i in bad[:5])
        kind = "integer counts" if integer else "finite counts"
        msg = (
            f"{where}: observed data must be non-negative {kind}; got {shown}"
            + (f" (and {bad.size - 5} more)" if bad.size > 5 else "") + hint
        )
        raise StatsError(msg)


def validate_samples(signal: BinnedSample, backgrounds: Sequence[BinnedSample],
                     data: BinnedSample | None = None) -> None:
    """The per-bin checks of :func:`prepare_inputs`, for samples before any rebinning.

    Merging bins first could hide a negative or NaN bin (or a non-integer count) in a sum,
    so the fit validates the samples as read, then rebins.

    Raises:
        HistogramError: Negative/NaN/inf bins, a binning mismatch.
        StatsError: Observed data that are not non-negative integer counts.
    """
    check_sample(signal)
    for b in backgrounds:
        check_sample(b)
        check_same_binning(signal, b)
    if data is not None:
        check_same_binning(signal, data)
        check_observed(data.values, data.source or data.name)
        check_sample(data)


def check_same_binning(reference: BinnedSample, other: BinnedSample) -> None:
    """Require ``other`` to have the bin edges of ``reference``.

    Raises:
        HistogramError: Showing both edge lists.
    """
    a, b = np.asarray(reference.edges), np.asarray(other.edges)
    if a.shape == b.shape and np.allclose(a, b, rtol=EDGE_RTOL, atol=0.0):
        return
    msg = (
        f"binning mismatch: {other.source or other.name} ({other.name}, {b.size - 1} bins) has "
        f"edges {_fmt_edges(b)} but {reference.source or reference.name} ({reference.name}, "
        f"{a.size - 1} bins) has edges {_fmt_edges(a)}"
    )
    raise HistogramError(msg)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def mock_background(edges: Sequence[float], rng: np.random.Generator | int | None,
                    n_events: int = MOCK_N_EVENTS, decay_gev: float = MOCK_DECAY_GEV,
                    name: str = "background") -> BinnedSample:
    """The tutorial's mock background: ``n_events`` m_jj values from an exponential.

    Events are drawn with ``rng.exponential(decay_gev, n_events)`` and binned on ``edges``;
    events outside the edges are dropped. Each event has weight 1 (variances = counts).

    Args:
        edges: Bin edges in GeV.
        rng: A numpy Generator, or a seed for ``numpy.random.default_rng``.
        n_events: Number of events drawn.
        decay_gev: Decay constant of the exponential in GeV.
        name: Sample name.
    """
    if n_events <= 0 or not decay_gev > 0:
        msg = (
            f"mock background: n_events and decay_gev must be positive, "
            f"got {n_events}, {decay_gev}"
        )
        raise StatsError(msg)
    mjj_gev = _as_rng(rng).exponential(decay_gev, int(n_events))
    counts, _ = np.histogram(mjj_gev, bins=np.asarray(edges, dtype=float))
    values = tuple(float(c) for c in counts)
    source = f"mock (N={n_events}, exponential with decay {decay_gev:g} GeV)"
    return BinnedSample(name, tuple(float(e) for e in edges), values, values, source)


def toy_data(expected: Sequence[float], rng: np.random.Generator | int | None
             ) -> tuple[float, ...]:
    """A Poisson toy of the expected counts per bin (``rng.poisson``)."""
    lam = np.asarray(expected, dtype=float)
    return tuple(float(x) for x in _as_rng(rng).poisson(lam))


def _data_counts(reference: BinnedSample, bkg_total: np.ndarray,
                 data: BinnedSample | Sequence[float] | None,
                 rng: np.random.Generator | int | None
                 ) -> tuple[tuple[float, ...], Literal["observed", "toy"]]:
    """Observed counts validated against ``reference``'s binning, or a Poisson toy."""
    signal = reference
    kind: Literal["observed", "toy"]
    if data is None:
        counts = toy_data(bkg_total.tolist(), rng)
        kind = "toy"
    else:
        if isinstance(data, BinnedSample):
            check_sample(data)
            check_same_binning(signal, data)
            counts, where = data.values, data.source or data.name
        else:
            counts, where = tuple(float(x) for x in data), "data"
            if len(counts) != len(signal.values):
                msg = f"data: {len(counts)} counts for {len(signal.values)} signal bins"
                raise HistogramError(msg)
        check_observed(counts, where)
        kind = "observed"
    return tuple(counts), kind


def check_theory(signal: BinnedSample, bands: Sequence[TheoryBand]) -> None:
    """Require each band's nominal to be the signal's bin contents.

    Raises:
        StatsError: Naming the band, for a wrong bin count or different nominal contents.
    """
    sig = np.asarray(signal.values, dtype=float)
    names = [b.name for b in bands]
    if len(set(names)) != len(names):
        raise StatsError(f"theory uncertainties of {signal.name!r} must have unique names, "
                         f"got {names}")
    for band in bands:
        if band.nominal.shape != sig.shape:
            msg = (f"theory uncertainty {band.name!r}: {band.nominal.size} bins, the signal "
                   f"{signal.source or signal.name} has {sig.size}")
            raise StatsError(msg)
        if not np.allclose(band.nominal, sig, rtol=1e-6, atol=1e-12 * max(1.0, sig.max())):
            msg = (f"theory uncertainty {band.name!r}: its nominal {band.nominal.tolist()[:5]} "
                   f"differs from the signal {sig.tolist()[:5]} (bands must be built from the "
                   "signal histogram, in its normalization)")
            raise StatsError(msg)


def theory_modifiers(band: TheoryBand, *, split: bool = False, prefix: str = "theory_"
                     ) -> tuple[ModifierSpec, ...]:
    """The modifiers of one theory band on the signal, named ``<prefix><band.name>``.

    Without ``split``: one ``histosys`` whose templates are the band's up/down contents
    (negative contents clipped at 0); none for a band that is zero everywhere (a region without
    signal). With ``split``: a ``normsys`` with the total-yield ratios
    Σup/Σnominal and Σdown/Σnominal, plus a shape-only ``histosys`` whose templates are the
    up/down contents rescaled to the nominal total; both share one parameter (as a HistFactory
    OverallSys + HistoSys pair).

    Raises:
        StatsError: If ``split`` is asked for a band whose up or down total is not positive.
    """
    name = prefix + band.name
    nom = np.asarray(band.nominal, dtype=float)
    up = np.clip(np.asarray(band.up, dtype=float), 0.0, None)
    down = np.clip(np.asarray(band.down, dtype=float), 0.0, None)
    if not (np.any(nom) or np.any(up) or np.any(down)):
        return ()  # no signal in this region: nothing to vary
    if not split:
        return (ModifierSpec.histosys(name, down, up),)
    total, t_up, t_down = float(nom.sum()), float(up.sum()), float(down.sum())
    if total <= 0 or t_up <= 0 or t_down <= 0:
        msg = (f"theory uncertainty {band.name!r}: cannot split into normsys + shape with totals "
               f"nominal {total:g}, up {t_up:g}, down {t_down:g}")
        raise StatsError(msg)
    return (
        ModifierSpec.normsys(name, lo=t_down / total, hi=t_up / total),
        ModifierSpec.histosys(name, down * (total / t_down), up * (total / t_up)),
    )


def _check_rel_unc(value: float, what: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0 <= value < 1):
        raise StatsError(f"{what}: expected a relative uncertainty in [0, 1), got {value!r}")
    return value


def prepare_inputs(signal: BinnedSample, backgrounds: Sequence[BinnedSample],
                   data: BinnedSample | Sequence[float] | None = None, *,
                   rng: np.random.Generator | int | None = None,
                   xsec_rel_unc: tuple[float, float] | None = None,
                   lumi_rel_unc: float | None = None,
                   theory: Sequence[TheoryBand] = (),
                   theory_split: bool = False) -> SearchInputs:
    """Validate the samples and the data; draw a Poisson toy when ``data`` is None.

    Args:
        signal: The scaled signal (μ = 1).
        backgrounds: One or more backgrounds.
        data: Observed counts (a sample with the same binning, or the bare counts), or None
            for a background-only Poisson toy drawn with ``rng``.
        rng: Generator or seed for the toy.
        xsec_rel_unc: Relative (up, down) signal σ uncertainty.
        lumi_rel_unc: Relative luminosity uncertainty.
        theory: Theory uncertainty bands of the signal, in the signal's normalization.
        theory_split: Split each band into ``normsys`` + shape-only ``histosys``.

    Raises:
        HistogramError: Binning mismatch, negative/NaN bins.
        StatsError: No background, an all-zero signal, non-integer or negative observed counts,
            uncertainties outside [0, 1).
    """
    if not backgrounds:
        raise StatsError("a search model needs at least one background")
    check_sample(signal)
    for b in backgrounds:
        check_sample(b)
        check_same_binning(signal, b)
    if signal.total <= 0:
        msg = (
            f"{signal.source or signal.name}: the signal histogram is empty (all "
            f"{len(signal.values)} bins are zero); nothing to set a limit on"
        )
        raise StatsError(msg)
    names = [signal.name, *(b.name for b in backgrounds)]
    if len(set(names)) != len(names):
        raise StatsError(f"sample names must be unique, got {names}")
    bkg_total = np.sum([b.values for b in backgrounds], axis=0)
    if np.any(bkg_total + np.asarray(signal.values) <= 0):
        empty = np.flatnonzero(bkg_total + np.asarray(signal.values) <= 0)
        log.warning("bins %s have no expected events; they carry no information",
                    empty.tolist()[:10])
    counts, kind = _data_counts(signal, bkg_total, data, rng)
    check_theory(signal, theory)
    xsec = None
    if xsec_rel_unc is not None:
        xsec = (_check_rel_unc(xsec_rel_unc[0], "signal cross-section uncertainty (up)"),
                _check_rel_unc(xsec_rel_unc[1], "signal cross-section uncertainty (down)"))
    lumi = None if lumi_rel_unc is None else _check_rel_unc(lumi_rel_unc, "luminosity uncertainty")
    if lumi == 0.0:
        lumi = None
    return SearchInputs(signal, tuple(backgrounds), tuple(counts), kind, xsec, lumi,
                        tuple(theory), theory_split)


def build_search_model(inputs: SearchInputs, *, poi: str = "mu", channel: str = "mjj",
                       mu_bound: float = 10.0) -> ModelSpec:
    """The HistFactory model of a validated one-channel search.

    Args:
        inputs: From :func:`prepare_inputs`.
        poi: Name of the signal-strength normfactor.
        channel: Channel name.
        mu_bound: Upper bound of the POI in the measurement (lower bound 0).
    """
    region = RegionInputs(channel, inputs.signal, inputs.backgrounds, inputs.data,
                          inputs.data_kind, inputs.theory)
    return build_multiregion_model((region,), poi=poi, mu_bound=mu_bound,
                                   xsec_rel_unc=inputs.xsec_rel_unc,
                                   lumi_rel_unc=inputs.lumi_rel_unc,
                                   theory_split=inputs.theory_split)


@dataclass(frozen=True)
class RegionInputs:
    """Validated inputs of one region (one channel) of a multi-region fit.

    Attributes:
        name: Region (channel) name.
        signal: The signal at μ = 1, or None (a control region without signal).
        backgrounds: Backgrounds; a background of the same name in several regions is the
            same process (a free normalization factor is shared between them).
        data: Observed (or toy) counts per bin.
        data_kind: ``"observed"`` or ``"toy"``.
        theory: Theory uncertainty bands of the signal in this region.
    """

    name: str
    signal: BinnedSample | None
    backgrounds: tuple[BinnedSample, ...]
    data: tuple[float, ...]
    data_kind: Literal["observed", "toy"]
    theory: tuple[TheoryBand, ...] = ()

    @property
    def edges(self) -> tuple[float, ...]:
        """The common bin edges."""
        return (self.signal or self.backgrounds[0]).edges


def prepare_region(name: str, signal: BinnedSample | None, backgrounds: Sequence[BinnedSample],
                   data: BinnedSample | Sequence[float] | None = None, *,
                   rng: np.random.Generator | int | None = None,
                   theory: Sequence[TheoryBand] = ()) -> RegionInputs:
    """Validate one region's samples and data (a Poisson toy of the backgrounds when ``data``
    is None).

    Raises:
        HistogramError: Binning mismatch, negative/NaN bins.
        StatsError: No background, duplicate sample names, theory bands without a signal,
            invalid observed counts.
    """
    if not backgrounds:
        raise StatsError(f"region {name!r}: needs at least one background")
    samples = ([] if signal is None else [signal]) + list(backgrounds)
    for s in samples:
        check_sample(s)
        check_same_binning(samples[0], s)
    names = [s.name for s in samples]
    if len(set(names)) != len(names):
        raise StatsError(f"region {name!r}: sample names must be unique, got {names}")
    if theory and signal is None:
        raise StatsError(f"region {name!r}: theory uncertainties need a signal in the region")
    if signal is not None:
        check_theory(signal, theory)
    bkg_total = np.sum([b.values for b in backgrounds], axis=0)
    counts, kind = _data_counts(samples[0], bkg_total, data, rng)
    return RegionInputs(name, signal, tuple(backgrounds), counts, kind, tuple(theory))


def normfactor_name(background: str) -> str:
    """Name of the free normalization factor of a background: ``mu_<background>``."""
    return f"mu_{background}"


def build_multiregion_model(regions: Sequence[RegionInputs], *, poi: str = "mu",
                            mu_bound: float = 10.0, free_backgrounds: Sequence[str] = (),
                            normfactor_bound: float = 10.0,
                            xsec_rel_unc: tuple[float, float] | None = None,
                            lumi_rel_unc: float | None = None,
                            theory_split: bool = False) -> ModelSpec:
    """The HistFactory model of several regions, each region a channel.

    The signal (where present) carries the POI ``poi``, the cross-section ``normsys``
    ``xsec_signal``, the ``lumi`` modifier and its theory modifiers (:func:`theory_modifiers`,
    same names in every region, hence correlated). Backgrounds named in ``free_backgrounds``
    carry a ``normfactor`` :func:`normfactor_name` (init 1, bounds [0, ``normfactor_bound``])
    shared by all regions. Samples with variances get ``staterror_<region>``.

    Raises:
        StatsError: No region with a non-empty signal, a free background that no region has,
            a normfactor name equal to the POI, uncertainties outside [0, 1).
    """
    if not any(r.signal is not None and r.signal.total > 0 for r in regions):
        raise StatsError("no region has a non-empty signal; nothing to set a limit on")
    bkg_names = {b.name for r in regions for b in r.backgrounds}
    unknown = [b for b in free_backgrounds if b not in bkg_names]
    if unknown:
        msg = (f"free background normalization for {unknown}: no region has such a background; "
               f"backgrounds: {', '.join(sorted(bkg_names))}")
        raise StatsError(msg)
    if poi in {normfactor_name(b) for b in free_backgrounds}:
        raise StatsError(f"the background normalization factor {poi!r} clashes with the POI")
    xsec = None
    if xsec_rel_unc is not None:
        xsec = (_check_rel_unc(xsec_rel_unc[0], "signal cross-section uncertainty (up)"),
                _check_rel_unc(xsec_rel_unc[1], "signal cross-section uncertainty (down)"))
    lumi = None if lumi_rel_unc is None else _check_rel_unc(lumi_rel_unc, "luminosity uncertainty")
    params = [ParameterSetting(poi, inits=(1.0,), bounds=((0.0, float(mu_bound)),))]
    if lumi:
        params.append(ParameterSetting.lumi(lumi))
    for free in dict.fromkeys(free_backgrounds):
        params.append(ParameterSetting(normfactor_name(free), inits=(1.0,),
                                       bounds=((0.0, float(normfactor_bound)),)))
    channels = []
    for region in regions:
        samples = []
        if region.signal is not None:
            sig_mods = [ModifierSpec.normfactor(poi)]
            if xsec is not None and any(xsec):
                sig_mods.append(ModifierSpec.normsys("xsec_signal", lo=1.0 - xsec[1],
                                                     hi=1.0 + xsec[0]))
            if lumi:
                sig_mods.append(ModifierSpec.lumi("lumi"))
            for band in region.theory:
                sig_mods.extend(theory_modifiers(band, split=theory_split))
            samples.append(SampleSpec(region.signal.name, region.signal.values,
                                      region.signal.variances, tuple(sig_mods)))
        for b in region.backgrounds:
            mods: tuple[ModifierSpec, ...] = (
                (ModifierSpec.normfactor(normfactor_name(b.name)),)
                if b.name in free_backgrounds else ())
            if lumi and b.lumi_scaled:
                # MC normalized to σ × L shares the signal's (correlated) lumi parameter.
                mods += (ModifierSpec.lumi("lumi"),)
            samples.append(SampleSpec(b.name, b.values, b.variances, mods))
        channels.append(ChannelSpec(region.name, tuple(samples)))
    return ModelSpec(
        channels=tuple(channels),
        observations={r.name: r.data for r in regions},
        poi=poi,
        parameters=tuple(params),
        measurement_name="recastkit",
    )
