"""Cross-section records and where they came from.

An :class:`XsecRecord` is one row of one cross-section table (or one answer of a metadata
service, or one value typed by a user): the generator cross section σ, the generator filter
efficiency ε and the k-factor k of a sample, keyed by its DSID (or, for name-keyed tables
such as the ATLAS Open Data ``Files_*.txt``, by its name), with the :class:`Source` it was read
from. The normalization uses the *effective* cross section σ × ε × k.

The record keeps the table's unit (``CrossSection(0.044837, "pb")``); ``xsec_fb`` converts.

A negative σ is a valid record: interference samples (e.g. DSID 342098 of the SUSYTools
table, bbH with the y_b·y_t interference term) have one. Such a record is flagged
(:attr:`XsecRecord.negative`) and every user of it says so. σ = 0 is never a record (tables
use it as a placeholder; the readers skip and count those rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePath

from recastkit.exceptions import InvalidRecordError
from recastkit.units import CrossSection

#: Filter efficiencies up to ``1 + FILTER_EFF_TOLERANCE`` are accepted (rounding in tables).
FILTER_EFF_TOLERANCE = 1e-6

#: The kinds of :class:`Source`.
SOURCE_KINDS = ("table", "service", "user")


@dataclass(frozen=True)
class Source:
    """Where a record was read from.

    Attributes:
        kind: ``"table"`` (a text table), ``"service"`` (a metadata service query such as AMI)
            or ``"user"`` (a value given by hand).
        location: Absolute path of the table file, or the service query.
        line: 1-based line number in the table, ``None`` for services and users.
        timestamp: ISO 8601 time of the service query or of the import into the catalog.
    """

    kind: str
    location: str
    line: int | None = None
    timestamp: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            msg = (
                f"source kind {self.kind!r} for {self.location!r} is not valid; "
                f"valid kinds: {', '.join(SOURCE_KINDS)}"
            )
            raise InvalidRecordError(msg)
        if self.line is not None and self.line < 1:
            msg = f"source line of {self.location!r} must be >= 1 (1-based), got {self.line!r}"
            raise InvalidRecordError(msg)

    @property
    def name(self) -> str:
        """The file name of a table (without directories), else the location itself."""
        if self.kind == "table":
            return PurePath(self.location).name
        return self.location

    def __str__(self) -> str:
        """``PMGxsecDB_mc16_excerpt_345053-345058.txt:4`` for a table row."""
        if self.line is not None:
            return f"{self.name}:{self.line}"
        return self.name if self.kind == "table" else f"{self.kind}:{self.location}"


def _finite(value: float, field: str, where: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        msg = f"{field} of {where} must be a finite number, got {value!r}"
        raise InvalidRecordError(msg)
    return value


@dataclass(frozen=True, kw_only=True)
class XsecRecord:
    """One cross-section entry: σ, ε and k of a sample, with its source.

    Records are keyed by ``dsid``; rows of name-keyed tables (ATLAS Open Data) have
    ``dsid=None`` and are keyed by ``physics_short``.

    Attributes:
        dsid: The dataset number (``None`` for name-keyed tables).
        xsec: The generator cross section σ, in the unit of the table; non-zero, negative for
            interference samples (flagged by :attr:`negative`).
        filter_eff: Generator filter efficiency ε, 0 < ε ≤ 1.
        k_factor: Higher-order k-factor, > 0.
        etag: The AMI e-tag the row is valid for (``"e5706"``), ``None`` if the table has none.
        physics_short: The physics short name (the key of name-keyed tables).
        generator: Generator name as written in the table.
        branching_ratio: A branching ratio the table states separately (``None`` if unknown;
            it is informative only: σ is used as given).
        rel_unc_up: Relative up uncertainty of σ (``None`` if the table has none).
        rel_unc_down: Relative down uncertainty of σ.
        sum_of_weights: Sum of generator weights given by the table (ATLAS Open Data).
        note: A remark on the convention of the table (e.g. σ already includes ε).
        source: Where the record was read from.
    """

    dsid: int | None = None
    xsec: CrossSection
    filter_eff: float = 1.0
    k_factor: float = 1.0
    etag: str | None = None
    physics_short: str | None = None
    generator: str | None = None
    branching_ratio: float | None = None
    rel_unc_up: float | None = None
    rel_unc_down: float | None = None
    sum_of_weights: float | None = None
    note: str | None = None
    source: Source

    def __post_init__(self) -> None:
        where = f"record {self.key!r} from {self.source}"
        if not isinstance(self.xsec, CrossSection):
            msg = (
                f"xsec of {where} must be a recastkit.units.CrossSection (a σ with its unit), "
                f"got {self.xsec!r}"
            )
            raise InvalidRecordError(msg)
        if self.xsec.value == 0.0:
            msg = (
                f"xsec of {where} must be non-zero (σ = 0 is a placeholder), got {self.xsec!r}"
            )
            raise InvalidRecordError(msg)
        if self.dsid is None:
            if not self.physics_short:
                msg = (
                    f"a record from {self.source} needs a dsid or a physics_short name "
                    "as its key; both are empty"
                )
                raise InvalidRecordError(msg)
        elif isinstance(self.dsid, bool) or not isinstance(self.dsid, int) or self.dsid < 0:
            msg = f"dsid of {where} must be a non-negative integer, got {self.dsid!r}"
            raise InvalidRecordError(msg)
        eff = _finite(self.filter_eff, "filter_eff", where)
        if not 0.0 < eff <= 1.0 + FILTER_EFF_TOLERANCE:
            msg = f"filter_eff of {where} must satisfy 0 < filter_eff <= 1, got {eff!r}"
            raise InvalidRecordError(msg)
        object.__setattr__(self, "filter_eff", eff)
        k = _finite(self.k_factor, "k_factor", where)
        if k <= 0.0:
            msg = f"k_factor of {where} must be > 0, got {k!r}"
            raise InvalidRecordError(msg)
        object.__setattr__(self, "k_factor", k)
        if self.branching_ratio is not None:
            br = _finite(self.branching_ratio, "branching_ratio", where)
            if not 0.0 < br <= 1.0:
                msg = f"branching_ratio of {where} must satisfy 0 < BR <= 1, got {br!r}"
                raise InvalidRecordError(msg)
            object.__setattr__(self, "branching_ratio", br)
        for field in ("rel_unc_up", "rel_unc_down"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, _finite(value, field, where))
        if self.sum_of_weights is not None:
            object.__setattr__(
                self, "sum_of_weights", _finite(self.sum_of_weights, "sum_of_weights", where)
            )
        if self.etag is not None:
            etag = self.etag.strip().lower()
            object.__setattr__(self, "etag", etag or None)

    @property
    def key(self) -> int | str:
        """The DSID, or the name for name-keyed records."""
        if self.dsid is not None:
            return self.dsid
        return self.physics_short or ""

    @property
    def negative(self) -> bool:
        """True for a negative σ (an interference sample)."""
        return self.xsec.value < 0.0

    @property
    def flags(self) -> tuple[str, ...]:
        """Remarks on the record shown next to it (``("negative σ (interference)",)``)."""
        return ("negative σ (interference)",) if self.negative else ()

    @property
    def xsec_fb(self) -> float:
        """The generator cross section σ in femtobarn."""
        return self.xsec.fb

    @property
    def effective_xsec(self) -> CrossSection:
        """σ × ε × k, in the unit of the table."""
        return self.xsec * (self.filter_eff * self.k_factor)

    @property
    def effective_xsec_fb(self) -> float:
        """σ × ε × k in femtobarn."""
        return self.effective_xsec.fb

    def describe(self) -> str:
        """One line naming the key, e-tag, σ × ε × k and the source (for error messages)."""
        etag = f" {self.etag}" if self.etag else ""
        flags = "".join(f" [{f}]" for f in self.flags)
        return (
            f"{self.key}{etag}: σ={self.xsec} ε={self.filter_eff!r} k={self.k_factor!r} "
            f"-> σ·ε·k = {self.effective_xsec_fb:.8g} fb ({self.source}){flags}"
        )
