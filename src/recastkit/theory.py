"""Signal theory uncertainties from generator-weight variations: combination rules by name.

Each variation is a histogram filled with one generator weight (μR/μF scale, PDF member, αs)
and normalized by that variation's own sum of weights from the bookkeeping, so that only the
acceptance × shape effect remains (or by the nominal Σw, to keep the cross-section effect too).
The rules here combine variations into one up/down band per named uncertainty:

- ``scale``: envelope of the 7-point μR/μF variations, (μR, μF) ∈ {(½,½), (½,1), (1,½),
  (1,2), (2,1), (2,2)} around the nominal, the two anti-correlated points (½,2) and (2,½)
  excluded (the usual 7-point convention, e.g. LHC Higgs XS WG, CERN-2017-002, sec. I.4).
- ``pdf_hessian``: symmetric Hessian uncertainty, δ = sqrt(Σ_k (X_k − X_0)²) over the
  eigenvector members (PDF4LHC recommendations, arXiv:1510.03865, eq. 20).
- ``pdf_replicas``: standard deviation over Monte Carlo replicas,
  δ = sqrt(Σ_k (X_k − ⟨X⟩)² / (N_rep − 1)) (arXiv:1510.03865, eq. 21).
- ``alphas``: δ = (X(αs↑) − X(αs↓)) / 2 (arXiv:1510.03865, eq. 27).

All functions work bin by bin on numpy arrays and never modify their inputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recastkit.exceptions import RecastkitError

FloatArray = npt.NDArray[np.float64]

#: Names of the combination rules.
RULES: tuple[str, ...] = ("scale", "pdf_hessian", "pdf_replicas", "alphas")

#: The 7-point scale variations kept in the envelope (the nominal (1, 1) is the centre).
SCALE_POINTS: tuple[tuple[float, float], ...] = (
    (0.5, 0.5), (0.5, 1.0), (1.0, 0.5), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0),
)
#: The anti-correlated points excluded from the 7-point envelope.
SCALE_EXCLUDED: tuple[tuple[float, float], ...] = ((0.5, 2.0), (2.0, 0.5))

#: (μR, μF) of the 9 entries of NanoAOD's ``LHEScaleWeight`` (its branch title:
#: "[0] is MUF=0.5 MUR=0.5; [1] is MUF=1.0 MUR=0.5; ... [8] is MUF=2.0 MUR=2.0").
NANOAOD_SCALE_ORDER_9: tuple[tuple[float, float], ...] = (
    (0.5, 0.5), (0.5, 1.0), (0.5, 2.0),
    (1.0, 0.5), (1.0, 1.0), (1.0, 2.0),
    (2.0, 0.5), (2.0, 1.0), (2.0, 2.0),
)
#: The 8-entry variant of ``LHEScaleWeight`` (the nominal (1, 1) omitted).
NANOAOD_SCALE_ORDER_8: tuple[tuple[float, float], ...] = tuple(
    p for p in NANOAOD_SCALE_ORDER_9 if p != (1.0, 1.0)
)

_MUR = re.compile(r"mu_?r\s*[=_:]?\s*([0-9.][0-9.p]*(?:[eE][-+]?[0-9]+)?)", re.IGNORECASE)
_MUF = re.compile(r"mu_?f\s*[=_:]?\s*([0-9.][0-9.p]*(?:[eE][-+]?[0-9]+)?)", re.IGNORECASE)


class TheoryError(RecastkitError, ValueError):
    """Variations that cannot be combined by the requested rule."""


@dataclass(frozen=True)
class TheoryBand:
    """One combined theory uncertainty on a histogram.

    Attributes:
        name: Name of the uncertainty (e.g. ``"scale"``), used for the modifier.
        rule: The combination rule (one of :data:`RULES`).
        nominal: Nominal bin contents.
        up: Upward-varied bin contents.
        down: Downward-varied bin contents.
        members: Names of the variations that entered.
    """

    name: str
    rule: str
    nominal: FloatArray
    up: FloatArray
    down: FloatArray
    members: tuple[str, ...]

    @property
    def relative_total(self) -> tuple[float, float]:
        """Relative change of the total yield, ``(down, up)`` (e.g. ``(-0.05, 0.07)``)."""
        total = float(np.sum(self.nominal))
        if total == 0.0:
            return (0.0, 0.0)
        return (float(np.sum(self.down)) / total - 1.0, float(np.sum(self.up)) / total - 1.0)


def _arrays(nominal: npt.ArrayLike, variations: Sequence[npt.ArrayLike], what: str
            ) -> tuple[FloatArray, FloatArray]:
    nom = np.array(nominal, dtype=np.float64)
    if not variations:
        raise TheoryError(f"{what}: no variations given")
    var = np.array([np.asarray(v, dtype=np.float64) for v in variations])
    if var.shape[1:] != nom.shape:
        raise TheoryError(
            f"{what}: variation histograms have shape {var.shape[1:]}, the nominal {nom.shape}"
        )
    if not (np.all(np.isfinite(nom)) and np.all(np.isfinite(var))):
        raise TheoryError(f"{what}: NaN or infinite bin contents")
    return nom, var


def parse_scale_name(name: str) -> tuple[float, float] | None:
    """(μR, μF) of a scale-variation weight name, or None if the name is not one.

    Understands the TruthMetaData spellings such as ``" muR = 0.5, muF = 2.0 "`` (PHYSLITE),
    ``" muR=0.50000E+00 muF=0.20000E+01 "``, ``"MUR0.5_MUF2_PDF261000"``, ``"muR=2,muF=1"`` and
    ``"muR0p5_muF2"`` (``p`` as the decimal point, as in histogram-safe names).
    """
    r, f = _MUR.search(name), _MUF.search(name)
    if r is None or f is None:
        return None
    try:
        return (float(r.group(1).replace("p", ".")), float(f.group(1).replace("p", ".")))
    except ValueError:
        return None


def scale_envelope(nominal: npt.ArrayLike,
                   variations: Mapping[tuple[float, float], npt.ArrayLike],
                   name: str = "scale") -> TheoryBand:
    """Envelope of the 7-point μR/μF variations (the two anti-correlated ones excluded).

    Args:
        nominal: Nominal bin contents.
        variations: (μR, μF) → bin contents; extra points (the nominal, the anti-correlated
            ones) are ignored.
        name: Name of the resulting uncertainty.

    Returns:
        The band: per bin the maximum and minimum over the six kept variations and the nominal.

    Raises:
        TheoryError: If one of the six required points is missing.
    """
    missing = [p for p in SCALE_POINTS if p not in variations]
    if missing:
        have = ", ".join(f"(μR={r:g}, μF={f:g})" for r, f in sorted(variations))
        need = ", ".join(f"(μR={r:g}, μF={f:g})" for r, f in missing)
        raise TheoryError(f"scale envelope: missing variations {need}; given: {have or 'none'}")
    nom, var = _arrays(nominal, [variations[p] for p in SCALE_POINTS], "scale envelope")
    stacked = np.vstack([var, nom[np.newaxis]])
    members = tuple(f"muR={r:g},muF={f:g}" for r, f in SCALE_POINTS)
    return TheoryBand(name, "scale", nom, stacked.max(axis=0), stacked.min(axis=0), members)


def pdf_hessian(nominal: npt.ArrayLike, members: Mapping[str, npt.ArrayLike],
                name: str = "pdf") -> TheoryBand:
    """Symmetric Hessian PDF uncertainty: δ = sqrt(Σ_k (X_k − X_0)²) (arXiv:1510.03865)."""
    nom, var = _arrays(nominal, list(members.values()), "pdf_hessian")
    delta = np.sqrt(np.sum((var - nom) ** 2, axis=0))
    return TheoryBand(name, "pdf_hessian", nom, nom + delta, nom - delta, tuple(members))


def pdf_replicas(nominal: npt.ArrayLike, replicas: Mapping[str, npt.ArrayLike],
                 name: str = "pdf") -> TheoryBand:
    """MC-replica PDF uncertainty: the standard deviation over replicas (N − 1 in the
    denominator, arXiv:1510.03865), applied symmetrically around the nominal."""
    nom, var = _arrays(nominal, list(replicas.values()), "pdf_replicas")
    if var.shape[0] < 2:
        raise TheoryError("pdf_replicas: at least two replicas are needed")
    delta = np.std(var, axis=0, ddof=1)
    return TheoryBand(name, "pdf_replicas", nom, nom + delta, nom - delta, tuple(replicas))


def alphas(nominal: npt.ArrayLike, down: npt.ArrayLike, up: npt.ArrayLike,
           name: str = "alphas", members: tuple[str, str] = ("alphas_down", "alphas_up")
           ) -> TheoryBand:
    """αs uncertainty: δ = (X(αs↑) − X(αs↓)) / 2, symmetric around the nominal
    (arXiv:1510.03865)."""
    nom, var = _arrays(nominal, [down, up], "alphas")
    delta = np.abs(var[1] - var[0]) / 2.0
    return TheoryBand(name, "alphas", nom, nom + delta, nom - delta, members)


def combine(rule: str, nominal: npt.ArrayLike, variations: Mapping[str, npt.ArrayLike],
            name: str | None = None) -> TheoryBand:
    """Combine named variations by the rule named ``rule`` (one of :data:`RULES`).

    For ``scale`` the (μR, μF) of each variation is parsed from its name
    (:func:`parse_scale_name`); for ``alphas`` exactly two variations are expected, the
    one with the smaller total yield taken as ``down``.

    Raises:
        TheoryError: Unknown rule, or variations the rule cannot use.
    """
    label = name or ("pdf" if rule.startswith("pdf") else rule)
    if rule == "scale":
        points: dict[tuple[float, float], npt.ArrayLike] = {}
        for vname, values in variations.items():
            point = parse_scale_name(vname)
            if point is None:
                raise TheoryError(
                    f"scale: cannot read μR/μF from the variation name {vname!r} "
                    "(expected e.g. 'muR=0.5,muF=2')"
                )
            points[point] = values
        return scale_envelope(nominal, points, label)
    if rule == "pdf_hessian":
        return pdf_hessian(nominal, variations, label)
    if rule == "pdf_replicas":
        return pdf_replicas(nominal, variations, label)
    if rule == "alphas":
        if len(variations) != 2:
            raise TheoryError(f"alphas: exactly two variations needed, got {len(variations)}")
        (n1, v1), (n2, v2) = variations.items()
        if float(np.sum(v1)) > float(np.sum(v2)):
            (n1, v1), (n2, v2) = (n2, v2), (n1, v1)
        return alphas(nominal, v1, v2, label, (n1, n2))
    raise TheoryError(f"unknown combination rule {rule!r}; choose one of {', '.join(RULES)}")


#: How a variation's histogram is normalized: ``acceptance`` divides by the variation's own
#: Σw (only the acceptance × shape effect remains), ``total`` by the nominal Σw (the
#: cross-section effect of the variation is kept too).
NORMALIZE_MODES: tuple[str, ...] = ("acceptance", "total")


@dataclass(frozen=True)
class TheoryGroup:
    """One named theory uncertainty: which variations enter and how they are combined.

    Attributes:
        name: Name of the uncertainty (the modifier becomes ``theory_<name>``).
        rule: Combination rule, one of :data:`RULES`.
        members: Names of the variation histograms that enter (``region/observable__<name>``).
    """

    name: str
    rule: str
    members: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members))
        if not self.name or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise TheoryError(f"theory uncertainty name {self.name!r}: use letters, digits, _.-")
        if self.rule not in RULES:
            raise TheoryError(
                f"theory uncertainty {self.name!r}: unknown rule {self.rule!r}; "
                f"choose one of {', '.join(RULES)}"
            )
        if not self.members:
            raise TheoryError(f"theory uncertainty {self.name!r}: no variations listed")


def normalization_factor(sumw_nominal: float, sumw_variation: float, normalize: str) -> float:
    """Factor bringing a variation histogram, scaled like the nominal (σ × L / Σw_nominal),
    to its own normalization.

    ``acceptance``: Σw_nominal / Σw_variation (the variation normalized by its own Σw);
    ``total``: 1 (normalized by the nominal Σw).

    Raises:
        TheoryError: Unknown mode, or a Σw that is not positive and finite.
    """
    if normalize not in NORMALIZE_MODES:
        raise TheoryError(
            f"unknown normalization {normalize!r}; choose one of {', '.join(NORMALIZE_MODES)}"
        )
    if normalize == "total":
        return 1.0
    for what, value in (("nominal", sumw_nominal), ("variation", sumw_variation)):
        if not (np.isfinite(value) and value > 0):
            raise TheoryError(f"the {what} sum of weights must be positive, got {value!r}")
    return float(sumw_nominal) / float(sumw_variation)


def theory_bands(nominal: npt.ArrayLike, variations: Mapping[str, npt.ArrayLike],
                 groups: Sequence[TheoryGroup], *, normalize: str = "acceptance",
                 sumw_nominal: float | None = None,
                 sumw: Mapping[str, float] | None = None) -> tuple[TheoryBand, ...]:
    """Normalize the variation histograms and combine them into one band per group.

    The variation histograms are expected in the nominal's normalization (both scaled by
    σ × L / Σw_nominal, or both unscaled); with ``normalize="acceptance"`` each is multiplied
    by Σw_nominal / Σw_variation (:func:`normalization_factor`) before combining.

    Args:
        nominal: Nominal bin contents.
        variations: Variation name -> bin contents.
        groups: The uncertainties to build.
        normalize: One of :data:`NORMALIZE_MODES`.
        sumw_nominal: Σw of the nominal weight (needed for ``acceptance``).
        sumw: Variation name -> its Σw (needed for ``acceptance``).

    Raises:
        TheoryError: A missing variation or Σw (the message lists the available ones), or
            variations the rule cannot combine.
    """
    if normalize not in NORMALIZE_MODES:
        raise TheoryError(
            f"unknown normalization {normalize!r}; choose one of {', '.join(NORMALIZE_MODES)}"
        )
    bands: list[TheoryBand] = []
    for group in groups:
        chosen: dict[str, FloatArray] = {}
        for member in group.members:
            if member not in variations:
                raise TheoryError(
                    f"theory uncertainty {group.name!r}: no variation {member!r}; available: "
                    f"{', '.join(sorted(variations)) or 'none'}"
                )
            factor = 1.0
            if normalize == "acceptance":
                if sumw_nominal is None or sumw is None or member not in sumw:
                    raise TheoryError(
                        f"theory uncertainty {group.name!r}: normalize 'acceptance' needs the "
                        f"sum of weights of the nominal and of {member!r}"
                    )
                factor = normalization_factor(sumw_nominal, sumw[member], normalize)
            chosen[member] = np.asarray(variations[member], dtype=np.float64) * factor
        bands.append(combine(group.rule, nominal, chosen, group.name))
    return tuple(bands)
