"""Unit-carrying quantities: cross sections (fb, pb, nb, ab) and integrated luminosities.

A :class:`CrossSection` times a :class:`Luminosity` is a plain ``float``: the dimensionless
expected number of events. Bare numbers never cross an API boundary as a σ or an L; they are
accepted only where the name carries the unit (``CrossSection.from_fb(44.837)``,
``--xsec-fb 44.837``). Strings are parsed with :func:`parse_xsec` and :func:`parse_lumi`.

Conversions: 1 pb = 10³ fb, 1 nb = 10⁶ fb, 1 ab = 10⁻³ fb; 1 pb⁻¹ = 10⁻³ fb⁻¹.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, overload

from recastkit.exceptions import UnitError

XsecUnit = Literal["ab", "fb", "pb", "nb"]
LumiUnit = Literal["ab^-1", "fb^-1", "pb^-1", "nb^-1"]

#: Multiply a value in the key unit by this factor to get femtobarn.
XSEC_UNITS_TO_FB: dict[str, float] = {"ab": 1e-3, "fb": 1.0, "pb": 1e3, "nb": 1e6}
#: Multiply a value in the key unit by this factor to get inverse femtobarn.
LUMI_UNITS_TO_IFB: dict[str, float] = {"ab^-1": 1e3, "fb^-1": 1.0, "pb^-1": 1e-3, "nb^-1": 1e-6}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_XSEC_RE = re.compile(rf"^\s*(?P<num>{_NUMBER})\s*(?P<unit>[a-zA-Z]+)\s*$")
# Accepted spellings of inverse barn units: fb^-1, fb-1, fb**-1, fb⁻¹, /fb, 1/fb, ifb, invfb.
_LUMI_RE = re.compile(
    rf"""^\s*(?P<num>{_NUMBER})\s*
    (?:
        (?:1\s*)?/\s*(?P<u1>[a-zA-Z]+)                # 140.1/fb, 140.1 1/fb
      | (?P<u2>[a-zA-Z]+)\s*(?:\^|\*\*)?\s*(?:-1|⁻¹)  # 140.1 fb^-1, fb-1, fb**-1, fb⁻¹
      | (?:inv|i)(?P<u3>[a-zA-Z]b)                    # 140.1 ifb, invfb
    )\s*$""",
    re.VERBOSE,
)


def _check_finite(value: float, what: str, *, signed: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise UnitError(f"{what} must be a finite number, got {value!r}")
    if value < 0 and not signed:
        raise UnitError(f"{what} must not be negative, got {value!r}")
    return value


def _xsec_unit(text: str, original: str) -> XsecUnit:
    unit = text.lower()
    if unit not in XSEC_UNITS_TO_FB:
        msg = (
            f"unknown cross-section unit {text!r} in {original!r}; "
            f"accepted units: {', '.join(XSEC_UNITS_TO_FB)}"
        )
        raise UnitError(msg)
    return unit  # type: ignore[return-value]


def _lumi_unit(text: str, original: str) -> LumiUnit:
    unit = f"{text.lower()}^-1"
    if unit not in LUMI_UNITS_TO_IFB:
        msg = (
            f"unknown luminosity unit in {original!r}; accepted units: "
            f"{', '.join(LUMI_UNITS_TO_IFB)} (also written fb-1, /fb, fb⁻¹, ifb)"
        )
        raise UnitError(msg)
    return unit  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class CrossSection:
    """A cross section with its unit.

    The value may be negative: the cross section of an interference sample (e.g. DSID 342098
    of the SUSYTools table, bbH y_b·y_t interference) is negative. Whether a negative σ may
    be used is decided where it is used (:class:`recastkit.scaling.Ledger` flags it).

    Attributes:
        value: The number in ``unit``.
        unit: One of ``ab``, ``fb``, ``pb``, ``nb``.
    """

    value: float
    unit: XsecUnit = "fb"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _check_finite(self.value, "a cross section", signed=True))
        object.__setattr__(self, "unit", _xsec_unit(self.unit, f"{self.value} {self.unit}"))

    @classmethod
    def from_fb(cls, xsec_fb: float) -> CrossSection:
        """Build from a value in femtobarn."""
        return cls(xsec_fb, "fb")

    @classmethod
    def from_pb(cls, xsec_pb: float) -> CrossSection:
        """Build from a value in picobarn."""
        return cls(xsec_pb, "pb")

    @classmethod
    def from_nb(cls, xsec_nb: float) -> CrossSection:
        """Build from a value in nanobarn."""
        return cls(xsec_nb, "nb")

    @classmethod
    def parse(cls, text: str) -> CrossSection:
        """Parse ``'44.837 fb'``, ``'0.044837 pb'``, ``'4.4837e-5nb'``.

        Raises:
            UnitError: For a bare number or an unknown unit, listing the accepted units.
        """
        return parse_xsec(text)

    @property
    def fb(self) -> float:
        """The value in femtobarn."""
        return self.value * XSEC_UNITS_TO_FB[self.unit]

    @property
    def pb(self) -> float:
        """The value in picobarn."""
        return self.fb / XSEC_UNITS_TO_FB["pb"]

    @property
    def nb(self) -> float:
        """The value in nanobarn."""
        return self.fb / XSEC_UNITS_TO_FB["nb"]

    def to(self, unit: XsecUnit) -> CrossSection:
        """Return the same cross section expressed in ``unit``."""
        target = _xsec_unit(unit, unit)
        return CrossSection(self.fb / XSEC_UNITS_TO_FB[target], target)

    @overload
    def __mul__(self, other: Luminosity) -> float: ...
    @overload
    def __mul__(self, other: float) -> CrossSection: ...
    def __mul__(self, other: Luminosity | float) -> float | CrossSection:
        """σ × L is the expected event count; σ × number (efficiency, BR, μ) is a σ."""
        if isinstance(other, Luminosity):
            return self.fb * other.ifb
        if isinstance(other, CrossSection):
            return NotImplemented
        return CrossSection(self.value * float(other), self.unit)

    def __rmul__(self, other: float) -> CrossSection:
        if isinstance(other, (Luminosity, CrossSection)):
            return NotImplemented
        return CrossSection(self.value * float(other), self.unit)

    def __truediv__(self, other: CrossSection) -> float:
        """The dimensionless ratio of two cross sections."""
        if not isinstance(other, CrossSection):
            return NotImplemented
        return self.fb / other.fb

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CrossSection):
            return NotImplemented
        return self.fb == other.fb

    def __lt__(self, other: CrossSection) -> bool:
        return self.fb < other.fb

    def __hash__(self) -> int:
        return hash(("xsec", self.fb))

    def isclose(self, other: CrossSection, rel_tol: float = 1e-9) -> bool:
        """Whether two cross sections agree to ``rel_tol`` whatever their units."""
        return math.isclose(self.fb, other.fb, rel_tol=rel_tol)

    def __str__(self) -> str:
        return f"{self.value:.10g} {self.unit}"

    def __repr__(self) -> str:
        return f"CrossSection({self.value!r}, {self.unit!r})"


@dataclass(frozen=True, eq=False)
class Luminosity:
    """An integrated luminosity with its unit.

    Attributes:
        value: The number in ``unit``.
        unit: One of ``ab^-1``, ``fb^-1``, ``pb^-1``, ``nb^-1``.
    """

    value: float
    unit: LumiUnit = "fb^-1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _check_finite(self.value, "a luminosity"))
        base = self.unit.removesuffix("^-1")
        object.__setattr__(self, "unit", _lumi_unit(base, f"{self.value} {self.unit}"))

    @classmethod
    def from_ifb(cls, lumi_ifb: float) -> Luminosity:
        """Build from a value in inverse femtobarn."""
        return cls(lumi_ifb, "fb^-1")

    @classmethod
    def from_ipb(cls, lumi_ipb: float) -> Luminosity:
        """Build from a value in inverse picobarn."""
        return cls(lumi_ipb, "pb^-1")

    @classmethod
    def parse(cls, text: str) -> Luminosity:
        """Parse ``'140.1 fb^-1'``, ``'140.1/fb'``, ``'36207.66 pb-1'``.

        Raises:
            UnitError: For a bare number or an unknown unit, listing the accepted units.
        """
        return parse_lumi(text)

    @property
    def ifb(self) -> float:
        """The value in inverse femtobarn."""
        return self.value * LUMI_UNITS_TO_IFB[self.unit]

    @property
    def ipb(self) -> float:
        """The value in inverse picobarn."""
        return self.ifb / LUMI_UNITS_TO_IFB["pb^-1"]

    def to(self, unit: LumiUnit) -> Luminosity:
        """Return the same luminosity expressed in ``unit``."""
        target = _lumi_unit(unit.removesuffix("^-1"), unit)
        return Luminosity(self.ifb / LUMI_UNITS_TO_IFB[target], target)

    def __add__(self, other: Luminosity) -> Luminosity:
        if not isinstance(other, Luminosity):
            return NotImplemented
        return Luminosity(self.value + other.to(self.unit).value, self.unit)

    @overload
    def __mul__(self, other: CrossSection) -> float: ...
    @overload
    def __mul__(self, other: float) -> Luminosity: ...
    def __mul__(self, other: CrossSection | float) -> float | Luminosity:
        if isinstance(other, CrossSection):
            return self.ifb * other.fb
        if isinstance(other, Luminosity):
            return NotImplemented
        return Luminosity(self.value * float(other), self.unit)

    def __rmul__(self, other: float) -> Luminosity:
        if isinstance(other, (Luminosity, CrossSection)):
            return NotImplemented
        return Luminosity(self.value * float(other), self.unit)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Luminosity):
            return NotImplemented
        return self.ifb == other.ifb

    def __hash__(self) -> int:
        return hash(("lumi", self.ifb))

    def isclose(self, other: Luminosity, rel_tol: float = 1e-9) -> bool:
        """Whether two luminosities agree to ``rel_tol`` whatever their units."""
        return math.isclose(self.ifb, other.ifb, rel_tol=rel_tol)

    def __str__(self) -> str:
        return f"{self.value:.10g} {self.unit}"

    def __repr__(self) -> str:
        return f"Luminosity({self.value!r}, {self.unit!r})"


def _bare_number(text: str) -> bool:
    return re.fullmatch(rf"\s*{_NUMBER}\s*", text) is not None


def parse_xsec(text: str | CrossSection) -> CrossSection:
    """Parse a cross section string with its unit (``'44.837 fb'``, ``'0.044837 pb'``).

    Raises:
        UnitError: For a bare number, an unknown unit or a malformed string.
    """
    if isinstance(text, CrossSection):
        return text
    if not isinstance(text, str):
        msg = (
            f"a cross section needs a unit, got the bare number {text!r}; "
            f"write e.g. '{text} fb' (accepted units: {', '.join(XSEC_UNITS_TO_FB)})"
        )
        raise UnitError(msg)
    if _bare_number(text):
        msg = (
            f"cross section {text.strip()!r} has no unit; write e.g. '{text.strip()} fb' "
            f"(accepted units: {', '.join(XSEC_UNITS_TO_FB)})"
        )
        raise UnitError(msg)
    match = _XSEC_RE.match(text)
    if match is None:
        msg = (
            f"cannot parse cross section {text!r}; expected '<number> <unit>' "
            f"with unit one of {', '.join(XSEC_UNITS_TO_FB)}"
        )
        raise UnitError(msg)
    return CrossSection(float(match["num"]), _xsec_unit(match["unit"], text))


def parse_lumi(text: str | Luminosity) -> Luminosity:
    """Parse an integrated luminosity (``'140.1 fb^-1'``, ``'140.1/fb'``, ``'36207.66 pb-1'``).

    Raises:
        UnitError: For a bare number, an unknown unit or a malformed string.
    """
    if isinstance(text, Luminosity):
        return text
    accepted = f"{', '.join(LUMI_UNITS_TO_IFB)} (also fb-1, /fb, fb⁻¹, ifb)"
    if not isinstance(text, str):
        msg = (
            f"a luminosity needs a unit, got the bare number {text!r}; "
            f"write e.g. '{text} fb^-1' (accepted units: {accepted})"
        )
        raise UnitError(msg)
    if _bare_number(text):
        msg = (
            f"luminosity {text.strip()!r} has no unit; write e.g. '{text.strip()} fb^-1' "
            f"(accepted units: {accepted})"
        )
        raise UnitError(msg)
    match = _LUMI_RE.match(text)
    if match is None:
        msg = f"cannot parse luminosity {text!r}; expected '<number> <unit>' with unit {accepted}"
        raise UnitError(msg)
    base = match["u1"] or match["u2"] or match["u3"]
    return Luminosity(float(match["num"]), _lumi_unit(base, text))
