"""Result containers of the statistical interpretation (frozen dataclasses, JSON output)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from recastkit._atomic import write_text_atomic
from recastkit._json import dumps as _dumps
from recastkit._json import to_jsonable as _jsonable

#: Order of the expected-band entries everywhere: −2σ, −1σ, median, +1σ, +2σ.
BAND_LABELS: tuple[str, ...] = ("-2sigma", "-1sigma", "median", "+1sigma", "+2sigma")


def dumps(obj: Any) -> str:
    """JSON of a result: sorted keys, indent 4, a trailing newline; NaN/inf become null."""
    return _dumps(obj) + "\n"


@dataclass(frozen=True)
class ClsResult:
    """CLs at one signal strength.

    Attributes:
        mu: The tested signal strength.
        cls_observed: Observed CLs.
        cls_expected: Expected CLs, ordered −2σ, −1σ, median, +1σ, +2σ.
        test_stat: ``"qtilde"`` or ``"q"``.
    """

    mu: float
    cls_observed: float
    cls_expected: tuple[float, float, float, float, float]
    test_stat: str

    def to_json(self) -> str:
        """Sorted-key JSON of every field."""
        return dumps(self)


@dataclass(frozen=True)
class LimitResult:
    """Upper limits on the signal strength μ (and on σ × BR) from a CLs scan.

    The σ limits are ``μ_up × xsec_ref_fb`` on the same σ × BR convention as the reference
    cross section (the catalog value times the k-factor; the filter efficiency is part of the
    acceptance, not of σ).

    Attributes:
        observed_mu: Observed upper limit on μ at confidence level ``cl``.
        expected_mu: Expected limits, ordered −2σ, −1σ, median, +1σ, +2σ.
        mu_values: The scan points.
        cls_observed: Observed CLs at each scan point.
        cls_expected: Expected CLs, five bands (−2σ … +2σ) × scan points.
        cl: Confidence level (0.95: the limit is where CLs = 1 − cl).
        test_stat: ``"qtilde"`` or ``"q"``.
        xsec_ref_fb: Reference σ × BR (fb) of the μ = 1 signal, or None.
        observed_xsec_fb: Observed σ × BR limit in fb, or None.
        expected_xsec_fb: Expected σ × BR limits in fb (5 entries), or None.
        significance_observed: Observed discovery significance Z (q0), or None.
        significance_expected: Expected significance for μ = 1, or None.
        p0_observed: Observed discovery p-value, or None.
        p0_expected: Expected discovery p-value for μ = 1, or None.
        settings: Seed, μ range, number of points, test statistic, pyhf version, backend,
            calculator, …
        notes: Human-readable remarks (range adaptations, missing σ, …).
    """

    observed_mu: float
    expected_mu: tuple[float, float, float, float, float]
    mu_values: tuple[float, ...]
    cls_observed: tuple[float, ...]
    cls_expected: tuple[tuple[float, ...], ...]
    cl: float
    test_stat: str
    xsec_ref_fb: float | None = None
    observed_xsec_fb: float | None = None
    expected_xsec_fb: tuple[float, float, float, float, float] | None = None
    significance_observed: float | None = None
    significance_expected: float | None = None
    p0_observed: float | None = None
    p0_expected: float | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # a private copy, so that the caller's mapping cannot change the result
        object.__setattr__(self, "settings", dict(self.settings))

    @property
    def level(self) -> float:
        """The CLs threshold, 1 − cl."""
        return 1.0 - self.cl

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values."""
        out: dict[str, Any] = _jsonable(self)
        out["expected_band_labels"] = list(BAND_LABELS)
        return out

    def to_json(self) -> str:
        """Sorted-key JSON with every number and the settings."""
        return dumps(self.to_dict())

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path`` atomically."""
        write_text_atomic(path, self.to_json())


#: Status of one grid point: fast path converged, recomputed with pyhf's own fits, or failed.
PointStatus = Literal["converged", "fallback", "failed"]


@dataclass(frozen=True)
class PointResult:
    """CLs and (optionally) upper limits of one signal point of a grid.

    Attributes:
        name: The point's name (patch name, or signal sample name).
        mu: Signal strength at which the CLs values were computed.
        cls_observed: Observed CLs at ``mu`` (NaN where the fit failed or pyhf gives NaN).
        cls_expected: Expected CLs at ``mu``, ordered −2σ, −1σ, median, +1σ, +2σ.
        status: ``"converged"`` (the engine's own fits converged), ``"fallback"`` (recomputed
            with pyhf's own path, see ``reason``) or ``"failed"`` (see ``reason``).
        observed_limit: Observed upper limit on μ at confidence level ``cl``, if computed.
        expected_limits: Expected limits on μ (5 entries, −2σ … +2σ), if computed.
        cl: Confidence level of the limits.
        test_stat: ``"qtilde"`` or ``"q"``.
        reason: Why a fallback was used or the point failed; empty otherwise.
        parameters: Values parsed from the name with the user's pattern (e.g. ``m1``, ``m2``).
        path: Which fits produced the numbers: ``"fast"`` (closed-form profile likelihood of
            :mod:`recastkit.stats.fastfit`) or ``"pyhf"`` (pyhf's own fits); empty if none.
    """

    name: str
    mu: float
    cls_observed: float
    cls_expected: tuple[float, float, float, float, float]
    status: PointStatus
    observed_limit: float | None = None
    expected_limits: tuple[float, float, float, float, float] | None = None
    cl: float = 0.95
    test_stat: str = "qtilde"
    reason: str = ""
    parameters: Mapping[str, float | str] = dataclasses.field(default_factory=dict)
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (NaN becomes null)."""
        out: dict[str, Any] = _jsonable(self)
        return out
