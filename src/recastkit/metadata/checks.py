"""Cross-source checks: find records of the same sample that disagree, and say why.

:func:`cross_check` never picks a value. It compares the effective cross sections σ × ε × k of
every pair of records of the same sample (same DSID, or same name for name-keyed tables; pairs
with two different e-tags are different samples and are not compared) and classifies each
disagreement:

``unit``
    The ratio is 10³ or 10⁶ (to ``rel_tol``): one table is probably in pb and the other in fb
    or nb.
``branching_ratio``
    The ratio is within :data:`BR_REL_TOL` of a known branching ratio (:data:`KNOWN_BRS`): one
    value probably includes the decay, the other does not. Example: DSID 345055
    (ZH → ℓℓbb) is 0.044837 pb in the PMG database and 0.076107 pb in SUSYTools; the ratio
    0.5891 is 1.15 % above BR(H→bb) = 0.5824 (YR4, m_H = 125 GeV) — the tolerance is 1.5 % so
    that branching ratios used by generators, which differ from the YR4 value at the percent
    level, are recognised.
``typo``
    Only one of σ, ε, k differs and its digit strings are a permutation of each other or one
    edit apart (44.837 vs 44.873): a probable typing error. This is reported even when the two
    values agree within ``rel_tol`` (44.837 vs 44.873 differ by 8e-4); a value that is the other
    one rounded or truncated (0.5438 vs 0.54383) is not a typo.
``value``
    Anything else.

Branching ratios (:data:`KNOWN_BRS`) are from the LHC Higgs Cross Section Working Group,
Yellow Report 4, CERN-2017-002-M (arXiv:1610.07922), Table of BRs at m_H = 125.00 GeV (and
125.09 GeV for H→bb), and from the Review of Particle Physics, PDG 2022 (Z and W branching
fractions, lepton-universal averages; sums over lepton flavours are multiples of them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from recastkit.metadata.records import XsecRecord

#: Relative distance to a known branching ratio under which a ratio is called BR-like.
BR_REL_TOL = 0.015


@dataclass(frozen=True)
class KnownBR:
    """A branching ratio with its reference.

    Attributes:
        decay: The decay, e.g. ``"H→bb"``.
        value: The branching ratio.
        reference: Where the value is from.
    """

    decay: str
    value: float
    reference: str


_YR4 = "LHC HXSWG YR4 (CERN-2017-002-M), m_H = 125 GeV"
_PDG = "PDG 2022"
#: The branching ratios :func:`cross_check` recognises.
KNOWN_BRS: tuple[KnownBR, ...] = (
    KnownBR("H→bb", 0.5824, _YR4),
    KnownBR("H→bb", 0.5809, "LHC HXSWG YR4 (CERN-2017-002-M), m_H = 125.09 GeV"),
    KnownBR("H→WW*", 0.2137, _YR4),
    KnownBR("H→ττ", 0.06272, _YR4),
    KnownBR("H→ZZ*", 0.02619, _YR4),
    KnownBR("H→γγ", 0.00227, _YR4),
    KnownBR("Z→ℓℓ (one flavour)", 0.033658, _PDG),
    KnownBR("Z→ℓℓ (ℓ = e, μ)", 2 * 0.033658, _PDG),
    KnownBR("Z→ℓℓ (ℓ = e, μ, τ)", 3 * 0.033658, _PDG),
    KnownBR("Z→νν", 0.2000, _PDG),
    KnownBR("W→ℓν (one flavour)", 0.1086, _PDG),
    KnownBR("W→ℓν (ℓ = e, μ)", 2 * 0.1086, _PDG),
    KnownBR("W→ℓν (ℓ = e, μ, τ)", 3 * 0.1086, _PDG),
)

#: Ratios that mean a unit mix-up (pb/fb, nb/pb: 10³; nb/fb: 10⁶).
_UNIT_FACTORS = {1e3: "pb vs fb or nb vs pb", 1e6: "nb vs fb"}


@dataclass(frozen=True)
class Conflict:
    """Two records of one sample that disagree.

    Attributes:
        kind: ``"branching_ratio"``, ``"typo"``, ``"unit"``, ``"sign"`` (one σ is negative,
            an interference term, the other is not) or ``"value"``.
        records: The two records, the smaller σ × ε × k first.
        ratio: σ·ε·k of the first over σ·ε·k of the second (≤ 1).
        message: Both values with their sources, and the probable reason.
        detail: The known BR, the unit factor or the field with the typo (empty for ``value``).
    """

    kind: str
    records: tuple[XsecRecord, ...]
    ratio: float
    message: str
    detail: str = ""


def _compatible(a: XsecRecord, b: XsecRecord) -> bool:
    return a.etag is None or b.etag is None or a.etag == b.etag


def _plain(value: float) -> str:
    """Digits of a number as written, e.g. ``44.837`` -> ``"44.837"`` (12 significant)."""
    try:
        text = format(Decimal(format(value, ".12g")), "f")
    except InvalidOperation:  # pragma: no cover - only finite values reach here
        return repr(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _edit_distance_at_most_one(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def is_probable_typo(a: float, b: float) -> bool:
    """Whether two numbers differ by permuted digits or one digit edit (44.837 vs 44.873)."""
    if a == b:
        return False
    sa, sb = _plain(a), _plain(b)
    if sa == sb or sa.startswith(sb) or sb.startswith(sa):
        return False  # equal to 12 digits, or one is the other rounded/truncated
    same_shape = len(sa) == len(sb) and sa.find(".") == sb.find(".")
    if same_shape and sorted(sa) == sorted(sb):
        return True
    return _edit_distance_at_most_one(sa, sb)


def _value_text(r: XsecRecord) -> str:
    etag = f", {r.etag}" if r.etag else ""
    return (
        f"{r.effective_xsec_fb:.8g} fb (σ = {r.xsec}, ε = {r.filter_eff!r}, k = {r.k_factor!r}; "
        f"{r.source}{etag})"
    )


def _typo(a: XsecRecord, b: XsecRecord) -> tuple[str, str, str] | None:
    """A typo classification when exactly one of σ, ε, k differs, by a typo-like edit."""
    fields = {
        "σ [pb]": (a.xsec.pb, b.xsec.pb),
        "ε": (a.filter_eff, b.filter_eff),
        "k": (a.k_factor, b.k_factor),
    }
    differing = [name for name, (x, y) in fields.items() if _plain(x) != _plain(y)]
    if len(differing) != 1:
        return None
    name = differing[0]
    x, y = fields[name]
    if not is_probable_typo(x, y):
        return None
    return ("typo", name,
            f"{name} {_plain(x)} vs {_plain(y)}: same digits permuted or one digit changed, "
            "probably a typing error in one table")


def _classify(a: XsecRecord, b: XsecRecord, ratio: float, rel_tol: float
              ) -> tuple[str, str, str]:
    """(kind, detail, reason) for a disagreeing pair with ratio = a/b <= 1."""
    for factor, what in _UNIT_FACTORS.items():
        if math.isclose(ratio * factor, 1.0, rel_tol=rel_tol):
            return ("unit", f"{factor:g}",
                    f"the ratio is 1/{factor:g}: probably a unit mix-up ({what})")
    best: KnownBR | None = None
    for br in KNOWN_BRS:
        off = abs(ratio / br.value - 1.0)
        if off <= BR_REL_TOL and (best is None or off < abs(ratio / best.value - 1.0)):
            best = br
    if best is not None:
        off = ratio / best.value - 1.0
        return ("branching_ratio", f"BR({best.decay}) = {best.value:.6g}",
                f"the ratio is close to BR({best.decay}) = {best.value:.6g} ({best.reference}; "
                f"{off:+.2%} off): one value probably includes this branching ratio, the other "
                "does not")
    typo = _typo(a, b)
    if typo is not None:
        return typo
    return ("value", "", "no known branching ratio, unit factor or typo explains it; check "
                         "the generator setup and the higher-order normalisation of each source")


def cross_check(records: Sequence[XsecRecord], rel_tol: float = 1e-3) -> list[Conflict]:
    """Every pair of records of the same sample whose σ × ε × k disagree, classified.

    Args:
        records: Records of any samples (typically the result of ``Catalog.query``).
        rel_tol: Relative tolerance under which two effective cross sections agree; also
            the tolerance of the unit (10³) test and of the typo field comparison.

    Returns:
        One :class:`Conflict` per disagreeing pair, in input order of the pairs.
    """
    conflicts: list[Conflict] = []
    by_key: dict[int | str, list[XsecRecord]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(r)
    for key, group in by_key.items():
        for i, first in enumerate(group):
            for second in group[i + 1:]:
                if not _compatible(first, second):
                    continue
                x, y = first.effective_xsec_fb, second.effective_xsec_fb
                label = f"DSID {key}" if isinstance(key, int) else f"sample {key!r}"
                if (x < 0) != (y < 0):
                    a, b = (first, second) if x < y else (second, first)
                    message = (
                        f"{label}: σ·ε·k = {_value_text(a)} vs {_value_text(b)}; opposite "
                        "signs — one source gives the interference term (negative σ), the "
                        "other does not"
                    )
                    conflicts.append(Conflict("sign", (a, b), min(x, y) / max(x, y),
                                              message, ""))
                    continue
                x, y = abs(x), abs(y)
                a, b = (first, second) if x <= y else (second, first)
                ratio = min(x, y) / max(x, y)
                if math.isclose(x, y, rel_tol=rel_tol):
                    # Agreeing values can still carry a typo (44.837 vs 44.873: 8e-4 apart).
                    typo = _typo(a, b)
                    if typo is None:
                        continue
                    kind, detail, reason = typo
                else:
                    kind, detail, reason = _classify(a, b, ratio, rel_tol)
                message = (
                    f"{label}: σ·ε·k = {_value_text(a)} vs {_value_text(b)}; "
                    f"ratio {ratio:.4f} — {reason}"
                )
                conflicts.append(Conflict(kind, (a, b), ratio, message, detail))
    return conflicts
