from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recastkit.metadata import KNOWN_BRS, Source, XsecRecord, cross_check, read_table
from recastkit.metadata.checks import BR_REL_TOL, is_probable_typo
from recastkit.units import CrossSection


def _rec(value: float, unit: str = "pb", *, dsid: int = 345055, name: str = "a.txt",
         line: int = 1, etag: str | None = None, eff: float = 1.0, k: float = 1.0
         ) -> XsecRecord:
    return XsecRecord(dsid=dsid, xsec=CrossSection(value, unit),  # type: ignore[arg-type]
                      filter_eff=eff, k_factor=k, etag=etag,
                      source=Source("table", f"/t/{name}", line))


def test_real_345055_pair_is_branching_ratio(shared_file: Callable[[str], Path]) -> None:
    pmg = read_table(shared_file("xsec/PMGTools/PMGxsecDB_mc16_excerpt_345053-345058.txt"))
    susy = read_table(shared_file("xsec/SUSYTools/mc16_13TeV_Backgrounds.txt"))
    records = [r for r in (*susy.records, *pmg.records) if r.dsid == 345055]
    (c,) = cross_check(records)
    assert c.kind == "branching_ratio"
    assert c.ratio == pytest.approx(44.837 / 76.107, rel=1e-12)
    assert c.ratio == pytest.approx(0.5891, abs=5e-5)
    assert c.detail == "BR(H→bb) = 0.5824"
    assert [r.source.name for r in c.records] == [
        "PMGxsecDB_mc16_excerpt_345053-345058.txt", "mc16_13TeV_Backgrounds.txt"
    ]
    for text in ("44.837 fb", "76.107 fb", "PMGxsecDB_mc16_excerpt_345053-345058.txt:4",
                 "mc16_13TeV_Backgrounds.txt:653", "YR4", "branching ratio"):
        assert text in c.message


def test_unit_mixup() -> None:
    (c,) = cross_check([_rec(44.837, "pb"), _rec(44.837, "nb", name="b.txt")])
    assert c.kind == "unit"
    assert c.ratio == pytest.approx(1e-3, rel=1e-12)
    assert "unit mix-up" in c.message
    # The same number read as fb and as pb.
    (c2,) = cross_check([_rec(44.837, "fb"), _rec(44.837, "pb", name="b.txt")])
    assert c2.kind == "unit"
    (c3,) = cross_check([_rec(2.0, "fb"), _rec(2.0, "nb", name="b.txt")])
    assert (c3.kind, c3.detail) == ("unit", "1e+06")


def test_typo_permuted_digits_and_one_edit() -> None:
    (c,) = cross_check([_rec(44.837), _rec(44.873, name="b.txt")])
    assert c.kind == "typo"
    assert "44.837 vs 44.873" in c.message
    assert c.ratio == pytest.approx(44.837 / 44.873, rel=1e-12)
    (c2,) = cross_check([_rec(1.0, eff=0.54383), _rec(1.0, eff=0.54883, name="b.txt")])
    assert (c2.kind, c2.detail) == ("typo", "ε")
    assert is_probable_typo(729.77, 79.77) is True  # one digit dropped
    assert is_probable_typo(729.77, 729.7) is False  # rounded, not a typo
    assert is_probable_typo(729.77, 72.977) is False  # decimal point moved: not one digit
    assert is_probable_typo(0.076107, 0.044837) is False
    assert is_probable_typo(1.2e-05, 2.1e-05) is True
    assert is_probable_typo(1.0, 1.0) is False


def test_value_and_agreement() -> None:
    (c,) = cross_check([_rec(14.299, "fb"), _rec(11.38 * 1.7, "fb", name="b.txt")])
    assert c.kind == "value"
    assert cross_check([_rec(1.0), _rec(1.0005, name="b.txt")]) == []
    (c,) = cross_check([_rec(1.0), _rec(1.0005, name="b.txt")], rel_tol=1e-4)
    assert c.kind == "value"
    # Rounded values of σ, ε and k (SUSYTools vs TopDataPreparation for 410470) agree.
    assert cross_check([_rec(729.77, eff=0.54383, k=1.13975636159),
                        _rec(396.87, k=1.1398, name="b.txt")]) == []


def test_different_etags_or_keys_are_not_compared() -> None:
    records = [_rec(0.014299, etag="e5706"), _rec(0.01138, etag="e6004", line=2),
               _rec(5.0, dsid=1)]
    assert cross_check(records) == []
    # An e-tag-less record is compared with every e-tag.
    with_any = [*records, _rec(0.05, name="c.txt")]
    assert len(cross_check(with_any)) == 2


def test_every_known_br_is_recognised() -> None:
    for br in KNOWN_BRS:
        (c,) = cross_check([_rec(100.0 * br.value), _rec(100.0, name="b.txt")])
        assert c.kind == "branching_ratio", br
        assert c.ratio == pytest.approx(br.value, rel=1e-12)
    # 2 % away from H→bb is not BR-like.
    assert BR_REL_TOL == 0.015
    (c,) = cross_check([_rec(100.0 * 0.5824 * 1.02), _rec(100.0, name="b.txt")])
    assert c.kind == "value"
