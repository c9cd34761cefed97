"""Integrated luminosity of ATLAS data years, MC campaigns and datasets.

Per-year good-for-physics integrated luminosities come from a named *calibration*:

* ``"Run2-final"``: the final Run 2 calibration, arXiv:2212.09379 (Eur. Phys. J. C 83 (2023)
  982). 2015-2018 sum to 140.06894 fb⁻¹; the paper quotes 140.1 ± 1.2 fb⁻¹ (0.83 %).
* ``"Run2-2019"``: the preliminary calibration of ATLAS-CONF-2019-021 (lumicalc tags
  OflLumi-13TeV-008/-009/-010), 138.96516 fb⁻¹ ± 1.7 % for 2015-2018.

Run 2 years default to ``"Run2-final"``. No Run 3 (13.6 TeV) year is tabulated yet: the
published 2022+ numbers could not be confirmed when this table was written, and a wrong
luminosity is worse than none. For Run 3 campaigns pass a user value (``"51.8 fb^-1"``),
which always wins and is recorded as such.

Uncertainty of one year or a sum of years (documented choice):

* a single year carries that year's uncertainty. For "Run2-final" these are the per-year
  total uncertainties of arXiv:2212.09379 (summary table of the per-year calibrations): 2015
  1.13 %, 2016 0.89 %, 2017 1.13 %, 2018 1.10 %; the abstract quotes "0.9 % to 1.1 %,
  partially correlated between years". So mc16d/mc20d (2017) gets 1.13 % and mc16e/mc20e
  (2018) 1.10 %, never the 0.83 % of the full Run 2;
* the sum of *all* years of a calibration gets the published combined uncertainty
  (0.83 % for Run2-final, 1.7 % for Run2-2019), which accounts for the partial
  correlations between years;
* any other subset (mc16a/mc20a = 2015+2016, or 2017+2018) is treated as fully correlated
  across years: the luminosity-weighted mean of the per-year relative uncertainties
  (2015+2016: 0.91 %). The papers do not give the correlation matrix, and full correlation
  is the conservative choice (partial correlation can only lower it).
* "Run2-2019" (ATLAS-CONF-2019-021) has no per-year values tabulated here: each year
  carries the combined 1.7 % (the note quotes about 2 % per year, so a single year of this
  older calibration is underestimated; use "Run2-final").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from recastkit.datasets import (
    CAMPAIGNS,
    Campaign,
    DatasetName,
    campaign_from_tags,
    get_campaign,
    is_dataset_name,
    parse_dataset_name,
)
from recastkit.exceptions import CampaignError, UnitError
from recastkit.units import Luminosity, parse_lumi

log = logging.getLogger(__name__)

__all__ = [
    "CALIBRATIONS",
    "DEFAULT_CALIBRATION",
    "Calibration",
    "LumiRecord",
    "lumi_for_campaign",
    "lumi_for_dataset",
    "lumi_for_years",
    "resolve_lumi",
    "user_lumi",
]


@dataclass(frozen=True)
class Calibration:
    """A luminosity calibration: per-year integrated luminosities and their uncertainty.

    Attributes:
        name: Short name (``"Run2-final"``).
        lumi_ipb: Data year -> good-for-physics integrated luminosity in pb⁻¹.
        rel_unc: Data year -> relative uncertainty of that year.
        combined_rel_unc: Published relative uncertainty of the sum of all its years.
        source: Publication (and tag) the numbers come from.
    """

    name: str
    lumi_ipb: Mapping[int, float]
    rel_unc: Mapping[int, float]
    combined_rel_unc: float
    source: str

    @property
    def years(self) -> tuple[int, ...]:
        """The data years this calibration covers, sorted."""
        return tuple(sorted(self.lumi_ipb))

    @property
    def total_ipb(self) -> float:
        """Sum over all years in pb⁻¹."""
        return sum(self.lumi_ipb[y] for y in self.years)


def _calibration(name: str, lumi_ipb: dict[int, float], combined_rel_unc: float, source: str,
                 rel_unc: dict[int, float] | None = None) -> Calibration:
    per_year = rel_unc if rel_unc is not None else dict.fromkeys(lumi_ipb, combined_rel_unc)
    return Calibration(
        name=name,
        lumi_ipb=MappingProxyType(dict(lumi_ipb)),
        rel_unc=MappingProxyType(per_year),
        combined_rel_unc=combined_rel_unc,
        source=source,
    )


#: Calibration name -> :class:`Calibration` (read-only).
CALIBRATIONS: Mapping[str, Calibration] = MappingProxyType({
    # arXiv:2212.09379, Eur. Phys. J. C 83 (2023) 982: 140.1 ± 1.2 fb⁻¹ (0.83 %) for the full
    # Run 2 after standard data-quality selections; per-year values as in the ATLAS
    # "LuminosityForPhysics" recommendation (2015-2018 good-run lists). Per-year total
    # uncertainties transcribed from the paper's summary of the per-year calibrations; when
    # this was written only the abstract's "0.9 % to 1.1 %" could be re-checked, so verify
    # the four values against the paper's table when touching them.
    "Run2-final": _calibration(
        "Run2-final",
        {2015: 3244.54, 2016: 33402.2, 2017: 44630.6, 2018: 58791.6},
        0.0083,
        "arXiv:2212.09379 (final Run 2 luminosity calibration)",
        rel_unc={2015: 0.0113, 2016: 0.0089, 2017: 0.0113, 2018: 0.0110},
    ),
    # ATLAS-CONF-2019-021: 139 fb⁻¹ ± 1.7 % (the "139 fb⁻¹" of 2019-2022 papers); lumicalc
    # tags OflLumi-13TeV-008 (2015), -009 (2016), -010 (2017, 2018).
    "Run2-2019": _calibration(
        "Run2-2019",
        {2015: 3219.56, 2016: 32988.1, 2017: 44307.4, 2018: 58450.1},
        0.017,
        "ATLAS-CONF-2019-021 (OflLumi-13TeV-008/009/010)",
    ),
})

#: The calibration used for Run 2 years when none is given.
DEFAULT_CALIBRATION = "Run2-final"
# Year -> default calibration. Run 3 years would get their own entry here once tabulated.
_DEFAULT_FOR_YEAR: Mapping[int, str] = MappingProxyType(
    dict.fromkeys(CALIBRATIONS[DEFAULT_CALIBRATION].lumi_ipb, DEFAULT_CALIBRATION)
)
_RUN2_ALIASES = frozenset({"run2", "run-2", "run_2", "run 2", "mc16", "mc20"})


@dataclass(frozen=True)
class LumiRecord:
    """An integrated luminosity with where it comes from.

    Attributes:
        lumi: The integrated luminosity.
        years: Data years it covers (empty for a user value).
        calibration: Calibration name, ``"A+B"`` when years use different ones, or ``"user"``.
        rel_unc: Relative uncertainty (0.0083), None if unknown.
        source: The publication, or ``"user value"``.
        per_year: ``(year, luminosity)`` pairs that add up to ``lumi`` (empty for a user value).
    """

    lumi: Luminosity
    years: tuple[int, ...]
    calibration: str
    rel_unc: float | None
    source: str
    per_year: tuple[tuple[int, Luminosity], ...] = field(default=(), compare=False)

    @property
    def lumi_ifb(self) -> float:
        """The luminosity in fb⁻¹."""
        return self.lumi.ifb

    @property
    def abs_unc_ifb(self) -> float | None:
        """The absolute uncertainty in fb⁻¹, None if unknown."""
        return None if self.rel_unc is None else self.rel_unc * self.lumi.ifb


def _get_calibration(name: str) -> Calibration:
    for key, calib in CALIBRATIONS.items():
        if key.lower() == str(name).strip().lower():
            return calib
    msg = f"unknown luminosity calibration {name!r}; valid calibrations: {', '.join(CALIBRATIONS)}"
    raise CampaignError(msg)


def _valid_years_text() -> str:
    parts = [f"{name}: {', '.join(map(str, c.years))}" for name, c in CALIBRATIONS.items()]
    return "; ".join(parts)


def lumi_for_years(years: Iterable[int], calibration: str | None = None) -> LumiRecord:
    """Sum the integrated luminosity of data years.

    Args:
        years: Data years (duplicates are ignored).
        calibration: Calibration name; None picks the default of each year ("Run2-final"
            for 2015-2018).

    Returns:
        The summed luminosity (kept in pb⁻¹, exact sums of the tabulated numbers) with its
        relative uncertainty (see the module docstring for the choice).

    Raises:
        CampaignError: For no years, an unknown year or calibration (listing the valid ones).
    """
    try:
        wanted = tuple(sorted({int(y) for y in years}))
    except (TypeError, ValueError):
        msg = f"data years must be integers, got {years!r}; valid years: {_valid_years_text()}"
        raise CampaignError(msg) from None
    if not wanted:
        raise CampaignError(f"no data years given; valid years: {_valid_years_text()}")

    per_calib: dict[str, list[int]] = {}
    for year in wanted:
        if calibration is not None:
            calib = _get_calibration(calibration)
            if year not in calib.lumi_ipb:
                msg = (
                    f"no integrated luminosity for year {year} in calibration {calib.name!r}; "
                    f"valid years: {', '.join(map(str, calib.years))}"
                )
                raise CampaignError(msg)
            name = calib.name
        else:
            default = _DEFAULT_FOR_YEAR.get(year)
            if default is None:
                msg = (
                    f"no published integrated luminosity tabulated for year {year}; valid "
                    f"years: {_valid_years_text()} (give a user value such as '30 fb^-1')"
                )
                raise CampaignError(msg)
            name = default
        per_calib.setdefault(name, []).append(year)

    per_year: list[tuple[int, Luminosity]] = []
    total_ipb = 0.0
    weighted_unc = 0.0
    sources: list[str] = []
    for name, calib_years in per_calib.items():
        calib = CALIBRATIONS[name]
        sources.append(calib.source)
        for year in calib_years:
            value = calib.lumi_ipb[year]
            per_year.append((year, Luminosity.from_ipb(value)))
            total_ipb += value
            weighted_unc += value * calib.rel_unc[year]

    # One year: its own uncertainty. Several: fully correlated across years (the
    # luminosity-weighted mean of the relative uncertainties, conservative); the published
    # combined number when all years of one calibration are used.
    rel_unc = weighted_unc / total_ipb
    if len(per_calib) == 1:
        calib = CALIBRATIONS[next(iter(per_calib))]
        if wanted == calib.years:
            rel_unc = calib.combined_rel_unc
    record = LumiRecord(
        lumi=Luminosity.from_ipb(total_ipb),
        years=wanted,
        calibration="+".join(per_calib),
        rel_unc=rel_unc,
        source="; ".join(sources),
        per_year=tuple(sorted(per_year)),
    )
    log.debug("luminosity of %s: %s (%s)", wanted, record.lumi, record.calibration)
    return record


def lumi_for_campaign(campaign: str | Campaign, calibration: str | None = None) -> LumiRecord:
    """The integrated luminosity of the data years an MC campaign models.

    Raises:
        CampaignError: For an unknown campaign or a campaign whose years have no tabulated
            luminosity.
    """
    camp = campaign if isinstance(campaign, Campaign) else get_campaign(campaign)
    try:
        return lumi_for_years(camp.years, calibration)
    except CampaignError as exc:
        raise CampaignError(f"campaign {camp.name}: {exc}") from None


def lumi_for_dataset(name: str | DatasetName, calibration: str | None = None) -> LumiRecord:
    """The integrated luminosity matching an MC dataset, through the campaign of its r-tag.

    Raises:
        DatasetNameError: For a malformed name.
        CampaignError: For a data dataset, or no known campaign r-tag in the name.
    """
    parsed = name if isinstance(name, DatasetName) else parse_dataset_name(name)
    if parsed.is_data:
        msg = (
            f"dataset {parsed} is real data: its luminosity comes from the good-run list and "
            "lumicalc of the run, not from an MC campaign"
        )
        raise CampaignError(msg)
    try:
        campaign = campaign_from_tags(parsed.tags)
    except CampaignError as exc:
        raise CampaignError(f"dataset {parsed}: {exc}") from None
    return lumi_for_campaign(campaign, calibration)


def user_lumi(lumi: Luminosity, rel_unc: float | None = None) -> LumiRecord:
    """A luminosity given by the user: it always wins and is recorded as ``"user value"``.

    Raises:
        UnitError: If ``lumi`` is not a :class:`Luminosity` or ``rel_unc`` is negative.
    """
    if not isinstance(lumi, Luminosity):
        msg = f"a user luminosity must be a Luminosity with its unit, got {lumi!r}"
        raise UnitError(msg)
    if rel_unc is not None and not (rel_unc >= 0.0):
        raise UnitError(f"a relative luminosity uncertainty must be >= 0, got {rel_unc!r}")
    return LumiRecord(lumi=lumi, years=(), calibration="user", rel_unc=rel_unc,
                      source="user value")


_YEARS_RE = re.compile(r"^\s*[0-9]{4}(?:\s*[,+ ]\s*[0-9]{4})*\s*$")
_NUMBER_START_RE = re.compile(r"^\s*[-+]?(?:[0-9]|\.[0-9])")


def resolve_lumi(spec: str, calibration: str | None = None) -> LumiRecord:
    """Resolve a luminosity specification.

    Accepted forms: a campaign (``"mc16e"``), a year or years (``"2017"``, ``"2015,2016"``,
    ``"2015+2016"``), ``"run2"`` (also ``"mc16"``, ``"mc20"``: all of 2015-2018), a dataset
    name (resolved through its r-tag), or a value with a unit (``"140.1 fb^-1"``: a user
    value, which always wins; ``calibration`` is ignored for it).

    Raises:
        CampaignError: For anything else, listing the accepted forms.
        UnitError: For a number with a bad unit.
    """
    text = str(spec).strip()
    key = text.lower()
    if key in _RUN2_ALIASES:
        calib = _get_calibration(calibration or DEFAULT_CALIBRATION)
        return lumi_for_years(calib.years, calib.name)
    if key in CAMPAIGNS:
        return lumi_for_campaign(key, calibration)
    if _YEARS_RE.match(text):
        return lumi_for_years((int(y) for y in re.findall(r"[0-9]{4}", text)), calibration)
    if is_dataset_name(text):
        return lumi_for_dataset(text, calibration)
    if _NUMBER_START_RE.match(text):
        if calibration is not None:
            log.warning("calibration %r ignored: %r is a user value", calibration, text)
        return user_lumi(parse_lumi(text))
    msg = (
        f"cannot resolve luminosity {spec!r}; give a campaign ({', '.join(CAMPAIGNS)}), "
        "data year(s) like '2017' or '2015,2016', 'run2', a dataset name, "
        "or a value with a unit like '140.1 fb^-1'"
    )
    raise CampaignError(msg)
