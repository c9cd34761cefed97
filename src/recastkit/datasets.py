"""ATLAS dataset names, AMI tags and MC campaigns.

A dataset name follows the pattern::

    [<scope>:]<project>.<DSID>.<physics_short>.<prod_step>.<data_type>.<tags>[_tid<N>_<NN>][/]

for example ``mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv.
DAOD_EXOT27.e5706_e5984_s3126_r10201_r10210_p3712``. The tags are AMI configuration tags,
one letter and a number each (``e`` event generation, ``s`` full simulation, ``a`` fast
simulation, ``r`` reconstruction, ``p`` derivation, ``f``/``m`` Tier-0 reconstruction and
merging, ``t``/``d``/... other steps), joined by ``_`` in production order.

The MC *campaign* (mc16e, mc20a, mc23c, ...) of a sample is defined by its first known
reconstruction r-tag; it fixes which data years (and so which luminosity) the sample models.
Each campaign also has the "random run number(s)" written into the events by the pile-up
simulation, from which the campaign can be recovered when no name is at hand.

This module imports only the base layer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from recastkit.exceptions import CampaignError, DatasetNameError

log = logging.getLogger(__name__)

__all__ = [
    "CAMPAIGNS",
    "AmiTags",
    "Campaign",
    "DatasetName",
    "campaign_from_rtag",
    "campaign_from_run_number",
    "campaign_from_tags",
    "get_campaign",
    "is_dataset_name",
    "parse_ami_tags",
    "parse_dataset_name",
]

# --------------------------------------------------------------------------------------------
# AMI tags
# --------------------------------------------------------------------------------------------

_TAG = r"[a-z][0-9]+"
_TAG_RE = re.compile(rf"^{_TAG}$")
_TAGS_RE = re.compile(rf"^{_TAG}(?:_{_TAG})*$")
AMI_TAGS_PATTERN = "<letter><number>[_<letter><number>...], e.g. e5706_s3126_r10201_p3712"


@dataclass(frozen=True)
class AmiTags:
    """An ordered list of AMI configuration tags (``e5706_e5984_s3126_r10201_r10210_p3712``).

    Attributes:
        tags: The tags in production order, repeated tags kept (``("r10724", "r10724")``).
    """

    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        tags = tuple(self.tags)
        if not tags:
            raise DatasetNameError(f"empty AMI tag list; expected {AMI_TAGS_PATTERN}")
        for tag in tags:
            if not isinstance(tag, str) or _TAG_RE.match(tag) is None:
                msg = (
                    f"invalid AMI tag {tag!r} in {'_'.join(map(str, tags))!r}; "
                    f"expected {AMI_TAGS_PATTERN}"
                )
                raise DatasetNameError(msg)
        object.__setattr__(self, "tags", tags)

    def of_letter(self, letter: str) -> tuple[str, ...]:
        """All tags starting with ``letter``, in order (``of_letter("r")`` is ``rtags``)."""
        return tuple(t for t in self.tags if t[0] == letter)

    @property
    def etag(self) -> str | None:
        """The first e-tag (the event-generation configuration), or None."""
        return next(iter(self.etags), None)

    @property
    def etags(self) -> tuple[str, ...]:
        """All e-tags in order."""
        return self.of_letter("e")

    @property
    def stags(self) -> tuple[str, ...]:
        """All s-tags (full simulation) in order."""
        return self.of_letter("s")

    @property
    def atags(self) -> tuple[str, ...]:
        """All a-tags (fast simulation) in order."""
        return self.of_letter("a")

    @property
    def rtags(self) -> tuple[str, ...]:
        """All r-tags (reconstruction, merging) in order."""
        return self.of_letter("r")

    @property
    def ptags(self) -> tuple[str, ...]:
        """All p-tags (derivation) in order."""
        return self.of_letter("p")

    @property
    def rtag(self) -> str | None:
        """The first r-tag: the reconstruction tag that defines the MC campaign."""
        return next(iter(self.rtags), None)

    @property
    def ptag(self) -> str | None:
        """The last p-tag (the derivation that made the file), or None."""
        return self.ptags[-1] if self.ptags else None

    def __iter__(self) -> Iterator[str]:
        return iter(self.tags)

    def __len__(self) -> int:
        return len(self.tags)

    def __contains__(self, tag: object) -> bool:
        return tag in self.tags

    def __str__(self) -> str:
        return "_".join(self.tags)


def parse_ami_tags(text: str) -> AmiTags:
    """Parse an AMI tag string such as ``e5706_e5984_s3126_r10201_r10210_p3712``.

    Any lowercase letter followed by digits is accepted as a tag (AMI uses e, s, a, r, f, m,
    p, t, d, ...). Repeated tags are kept, so ``str(parse_ami_tags(x)) == x``.

    Raises:
        DatasetNameError: For an empty string or a malformed tag, showing the pattern.
    """
    if not isinstance(text, str):
        msg = f"AMI tags must be a string, got {text!r}; expected {AMI_TAGS_PATTERN}"
        raise DatasetNameError(msg)
    stripped = text.strip()
    if _TAGS_RE.match(stripped) is None:
        bad = [t for t in stripped.split("_") if _TAG_RE.match(t) is None]
        detail = f" (bad tag {bad[0]!r})" if bad and stripped else ""
        msg = f"cannot parse AMI tags {text!r}{detail}; expected {AMI_TAGS_PATTERN}"
        raise DatasetNameError(msg)
    return AmiTags(tuple(stripped.split("_")))


# --------------------------------------------------------------------------------------------
# Campaigns
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Campaign:
    """An ATLAS MC production campaign.

    Attributes:
        name: Campaign name, lowercase (``"mc16e"``).
        run: LHC run (``"Run 2"``, ``"Run 3"``).
        years: The data-taking years it models (what the luminosity depends on).
        rtags: Reconstruction r-tags that define it; the first is the main one.
        random_run_numbers: The MC run number(s) written into its events.
        source: Where the mapping comes from.
    """

    name: str
    run: str
    years: tuple[int, ...]
    rtags: tuple[str, ...]
    random_run_numbers: tuple[int, ...]
    source: str = field(default="", compare=False)

    def __str__(self) -> str:
        years = "+".join(map(str, self.years))
        return f"{self.name} ({self.run}, {years})"


# Sources of the mappings below:
# * mc16a/d/e r-tags r9364/r10201/r10724 and run numbers 284500/300000/310000: ATLAS PMG
#   "MC16 campaigns" TWiki and the pile-up reweighting configuration used by SUSYTools
#   (campaignMap {284500: "mc20a", 300000: "mc20d", 310000: "mc20e"} in SUSYTools
#   jobOptions; the MC16 and MC20 campaigns share these run numbers). The shared test file
#   DAOD_PHYSLITE_21.2.108.0.art.pool.root (amiTag r10724_..._r10726, runNumber 310000) is mc16e.
# * mc20a/d/e r-tags r13167/r13144/r13145: ATLAS PMG "MC20 campaigns" TWiki; the same r-tag
#   to sub-campaign mapping is used by public ATLAS analysis code (e.g. HH4b VariableDumper).
#   The re-reconstruction r-tags r14859/r14860/r14861 and the fast-simulation tags
#   r13297/r13298/r13299 are taken from public ATLAS analysis code (IRIS-HEP AGC notebooks),
#   not checked against AMI.
# * mc21a r13829, run number 330000: Athena Campaigns/python/MC21.py uses the pile-up profile
#   "PileUpProfile_run330000_MC21a"; the r-tag r13829 is NOT confirmed (kept from the project
#   brief; mc21a was an early, preliminary Run 3 campaign superseded by mc23a).
# * mc23a/c/d/e run numbers 410000/450000/450000/470000: Athena Campaigns/python/MC23.py
#   (pile-up profiles PileUpProfile_run410000_MC23a, run450000_MC23c, run450000_MC23d,
#   run470000_MC23e). r-tags r14622 (mc23a), r14799 (mc23c), r15224 (mc23d), r16083 (mc23e),
#   plus the re-reconstructions r15540 (mc23a) and r15530 (mc23d): PMG "MC23 campaigns" TWiki
#   and public ATLAS analysis code; the shared RNTuple file (amiTag e8514_s4159_s4114_r14799,
#   runNumber 450000) is mc23c.
_RUN2_SOURCE = "ATLAS PMG MC16/MC20 campaign TWiki; SUSYTools campaign map"
_RUN3_SOURCE = "Athena Campaigns/python/MC23.py; ATLAS PMG MC23 campaign TWiki"

# Order matters for campaign_from_run_number: when campaigns share a run number, the first
# one listed here wins (mc16x before mc20x, mc23c before mc23d). The years are the same
# either way, which is all the luminosity needs.
_CAMPAIGN_LIST: tuple[Campaign, ...] = (
    Campaign("mc16a", "Run 2", (2015, 2016), ("r9364",), (284500,), _RUN2_SOURCE),
    Campaign("mc16d", "Run 2", (2017,), ("r10201",), (300000,), _RUN2_SOURCE),
    Campaign("mc16e", "Run 2", (2018,), ("r10724",), (310000,), _RUN2_SOURCE),
    Campaign("mc20a", "Run 2", (2015, 2016), ("r13167", "r14859", "r13297"), (284500,),
             _RUN2_SOURCE),
    Campaign("mc20d", "Run 2", (2017,), ("r13144", "r14860", "r13298"), (300000,),
             _RUN2_SOURCE),
    Campaign("mc20e", "Run 2", (2018,), ("r13145", "r14861", "r13299"), (310000,),
             _RUN2_SOURCE),
    Campaign("mc21a", "Run 3", (2022,), ("r13829",), (330000,),
             "Athena Campaigns/python/MC21.py (run number); r-tag unconfirmed"),
    Campaign("mc23a", "Run 3", (2022,), ("r14622", "r15540"), (410000,), _RUN3_SOURCE),
    Campaign("mc23c", "Run 3", (2023,), ("r14799",), (450000,), _RUN3_SOURCE),
    Campaign("mc23d", "Run 3", (2023,), ("r15224", "r15530"), (450000,), _RUN3_SOURCE),
    Campaign("mc23e", "Run 3", (2024,), ("r16083",), (470000,), _RUN3_SOURCE),
)

#: Campaign name -> :class:`Campaign` (read-only).
CAMPAIGNS: Mapping[str, Campaign] = MappingProxyType({c.name: c for c in _CAMPAIGN_LIST})

_BY_RTAG: Mapping[str, Campaign] = MappingProxyType(
    {rtag: c for c in _CAMPAIGN_LIST for rtag in c.rtags}
)


def _by_run_number() -> dict[int, Campaign]:
    table: dict[int, Campaign] = {}
    for campaign in _CAMPAIGN_LIST:
        for run in campaign.random_run_numbers:
            table.setdefault(run, campaign)  # first listed wins (see the ordering note above)
    return table


#: MC random run number -> campaign (the first listed campaign when several share one).
BY_RUN_NUMBER: Mapping[int, Campaign] = MappingProxyType(_by_run_number())


def get_campaign(name: str) -> Campaign:
    """Return the campaign called ``name`` (case-insensitive, ``"MC16e"`` works).

    Raises:
        CampaignError: For an unknown name, listing the valid ones.
    """
    key = str(name).strip().lower()
    try:
        return CAMPAIGNS[key]
    except KeyError:
        msg = f"unknown MC campaign {name!r}; valid campaigns: {', '.join(CAMPAIGNS)}"
        raise CampaignError(msg) from None


def campaign_from_rtag(rtag: str) -> Campaign:
    """Return the campaign defined by a reconstruction tag (``"r10724"`` -> mc16e).

    Raises:
        CampaignError: For an r-tag that defines no known campaign, listing the known ones.
    """
    key = str(rtag).strip().lower()
    try:
        return _BY_RTAG[key]
    except KeyError:
        known = ", ".join(f"{t} ({c.name})" for t, c in _BY_RTAG.items())
        msg = f"r-tag {rtag!r} defines no known MC campaign; known r-tags: {known}"
        raise CampaignError(msg) from None


def campaign_from_tags(tags: AmiTags | str) -> Campaign:
    """Return the campaign of a tag list: the first r-tag that defines a known campaign wins.

    Args:
        tags: An :class:`AmiTags` or a tag string (``"e8514_s4159_s4114_r14799"``).

    Raises:
        DatasetNameError: If ``tags`` is a malformed string.
        CampaignError: If no r-tag in the list is known (the message lists the r-tags seen
            and the known ones).
    """
    parsed = tags if isinstance(tags, AmiTags) else parse_ami_tags(tags)
    for rtag in parsed.rtags:
        campaign = _BY_RTAG.get(rtag)
        if campaign is not None:
            return campaign
    seen = ", ".join(parsed.rtags) if parsed.rtags else "none"
    known = ", ".join(f"{t} ({c.name})" for t, c in _BY_RTAG.items())
    msg = (
        f"no known campaign r-tag in AMI tags {str(parsed)!r} (r-tags: {seen}); "
        f"known r-tags: {known}"
    )
    raise CampaignError(msg)


def campaign_from_run_number(run_number: int) -> Campaign:
    """Return the campaign of an MC "random run number" (``310000`` -> mc16e).

    MC16 and MC20 sub-campaigns share run numbers (284500, 300000, 310000), as do mc23c and
    mc23d (450000). The run number alone cannot tell them apart; the campaign listed first
    is returned (mc16a/d/e, mc23c). They model the same data years, so the luminosity is the
    same either way; use :func:`campaign_from_tags` when the AMI tags are known.

    Raises:
        CampaignError: For an unknown run number, listing the known ones.
    """
    try:
        key = int(run_number)
    except (TypeError, ValueError):
        key = -1
    campaign = BY_RUN_NUMBER.get(key)
    if campaign is None:
        known = ", ".join(f"{r} ({c.name})" for r, c in BY_RUN_NUMBER.items())
        msg = f"run number {run_number!r} is no known MC random run number; known: {known}"
        raise CampaignError(msg)
    return campaign


# --------------------------------------------------------------------------------------------
# Dataset names
# --------------------------------------------------------------------------------------------

DATASET_NAME_PATTERN = "<project>.<DSID>.<physics_short>.<prod_step>.<data_type>.<tags>"
_DATASET_EXAMPLE = (
    "mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
    "DAOD_EXOT27.e5706_e5984_s3126_r10201_r10210_p3712"
)
_PROJECT = r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*"
_NAME_RE = re.compile(
    rf"""^
    (?:(?P<scope>[A-Za-z0-9_.\-]+):)?
    (?P<project>{_PROJECT})\.
    (?P<dsid>[0-9]{{6,8}})\.
    (?P<short>[A-Za-z0-9][A-Za-z0-9_+\-]*)\.
    (?P<step>[A-Za-z][A-Za-z0-9]*)\.
    (?P<dtype>[A-Za-z][A-Za-z0-9_]*)\.
    (?P<tags>{_TAG}(?:_{_TAG})*)
    (?:_tid[0-9]+_[0-9]+)?
    /?$""",
    re.VERBOSE,
)
_ENERGY_RE = re.compile(r"_(?P<int>[0-9]+)(?:p(?P<frac>[0-9]+))?TeV$")
_FIELD_NAMES = ("project", "DSID", "physics_short", "prod_step", "data_type", "tags")


@dataclass(frozen=True)
class DatasetName:
    """A parsed ATLAS dataset name.

    Attributes:
        scope: The Rucio scope before ``:`` (``"mc16_13TeV"``), or None.
        project: The project (``"mc16_13TeV"``, ``"data18_13TeV"``).
        energy_tev: Centre-of-mass energy from the project (``13.0``; ``13p6TeV`` -> 13.6),
            None when the project names none.
        dsid: Dataset number (the run number for data).
        physics_short: The physics short name.
        prod_step: Production step (``evgen``, ``simul``, ``recon``, ``merge``, ``deriv``).
        data_type: Data format (``AOD``, ``DAOD_PHYSLITE``, ``EVNT``).
        tags: The AMI tags.
    """

    scope: str | None
    project: str
    energy_tev: float | None
    dsid: int
    physics_short: str
    prod_step: str
    data_type: str
    tags: AmiTags

    @property
    def is_data(self) -> bool:
        """Whether the project is a data project (``data18_13TeV``)."""
        return self.project.lower().startswith("data")

    @property
    def campaign(self) -> Campaign | None:
        """The MC campaign from the first known r-tag; None when unknown (e.g. evgen, data)."""
        if self.is_data:
            return None
        for rtag in self.tags.rtags:
            campaign = _BY_RTAG.get(rtag)
            if campaign is not None:
                return campaign
        return None

    def __str__(self) -> str:
        # Data run numbers are written with 8 digits, MC dataset numbers with 6.
        dsid = f"{self.dsid:08d}" if self.is_data else f"{self.dsid:06d}"
        return ".".join(
            (self.project, dsid, self.physics_short, self.prod_step, self.data_type,
             str(self.tags))
        )


def _energy_tev(project: str) -> float | None:
    match = _ENERGY_RE.search(project)
    if match is None:
        return None
    text = match["int"] + (f".{match['frac']}" if match["frac"] else "")
    return float(text)


def _diagnose(text: str) -> str:
    """A short hint naming the first field of ``text`` that breaks the pattern."""
    body = text.split(":", 1)[1] if ":" in text else text
    body = body.rstrip("/")
    parts = body.split(".")
    if len(parts) != len(_FIELD_NAMES):
        return f"found {len(parts)} dot-separated fields, expected {len(_FIELD_NAMES)}"
    checks = (
        re.compile(rf"^{_PROJECT}$"),
        re.compile(r"^[0-9]{6,8}$"),
        re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+\-]*$"),
        re.compile(r"^[A-Za-z][A-Za-z0-9]*$"),
        re.compile(r"^[A-Za-z][A-Za-z0-9_]*$"),
        re.compile(rf"^{_TAG}(?:_{_TAG})*(?:_tid[0-9]+_[0-9]+)?$"),
    )
    for name, value, check in zip(_FIELD_NAMES, parts, checks, strict=True):
        if check.match(value) is None:
            return f"bad {name} field {value!r}"
    return "malformed name"


def parse_dataset_name(text: str) -> DatasetName:
    """Parse an ATLAS dataset name.

    Accepts an optional Rucio ``scope:`` prefix, a trailing ``/`` (containers), a
    ``_tid<N>_<NN>`` task suffix and repeated tags. Surrounding whitespace is ignored.

    Raises:
        DatasetNameError: For a malformed name; the message shows the expected pattern
            ``<project>.<DSID>.<physics_short>.<prod_step>.<data_type>.<tags>``.
    """
    if not isinstance(text, str):
        msg = f"a dataset name must be a string, got {text!r}; expected {DATASET_NAME_PATTERN}"
        raise DatasetNameError(msg)
    stripped = text.strip()
    match = _NAME_RE.match(stripped)
    if match is None:
        msg = (
            f"cannot parse dataset name {text!r} ({_diagnose(stripped)}); expected "
            f"[<scope>:]{DATASET_NAME_PATTERN}, e.g. {_DATASET_EXAMPLE}"
        )
        raise DatasetNameError(msg)
    project = match["project"]
    return DatasetName(
        scope=match["scope"],
        project=project,
        energy_tev=_energy_tev(project),
        dsid=int(match["dsid"]),
        physics_short=match["short"],
        prod_step=match["step"],
        data_type=match["dtype"],
        tags=parse_ami_tags(match["tags"]),
    )


def is_dataset_name(text: str) -> bool:
    """Whether ``text`` parses as a dataset name (never raises)."""
    return isinstance(text, str) and _NAME_RE.match(text.strip()) is not None
