"""TH1 header sums of the ROOT histograms recastkit writes (issue 7, item 7)."""

from __future__ import annotations

from pathlib import Path

import hist
import pytest
import uproot

from recastkit.io.hists import read_hist, write_hists
from recastkit.scaling import scale_hist


def _filled() -> hist.Hist:
    h = hist.Hist(hist.axis.Regular(4, 0.0, 4.0), storage=hist.storage.Weight())
    # in range: 2 at x=0.5, 3 and 3 at x=1.5, 1 at x=3.5; overflow: 4 at x=5
    h.fill([0.5, 1.5, 1.5, 3.5, 5.0], weight=[2.0, 3.0, 3.0, 1.0, 4.0])
    return h


def _header(path: Path, name: str = "h") -> dict[str, float]:
    with uproot.open(path) as f:
        obj = f[name]
        return {k: float(obj.member(k))
                for k in ("fEntries", "fTsumw", "fTsumw2", "fTsumwx", "fTsumwx2")}


def test_header_sums_by_hand(tmp_path: Path) -> None:
    out = tmp_path / "h.root"
    write_hists(out, {"h": _filled()})
    head = _header(out)
    # Hand computation over the in-range bins (ROOT's default statistics):
    sumw = 2 + 3 + 3 + 1                      # 9
    sumw2 = 2**2 + 3**2 + 3**2 + 1**2         # 23 (uproot alone writes fTsumw2 = fTsumw = 9)
    assert head["fTsumw"] == sumw
    assert head["fTsumw2"] == sumw2
    assert head["fTsumwx"] == pytest.approx(2 * 0.5 + 6 * 1.5 + 1 * 3.5, rel=1e-15)
    assert head["fTsumwx2"] == pytest.approx(2 * 0.25 + 6 * 2.25 + 1 * 12.25, rel=1e-15)
    # ROOT's GetEffectiveEntries() = fTsumw² / fTsumw2 = 81 / 23; fEntries (no fill count
    # known) is the same number, as after TH1::ResetStats.
    assert head["fTsumw"] ** 2 / head["fTsumw2"] == pytest.approx(81 / 23, rel=1e-15)
    assert head["fEntries"] == pytest.approx(81 / 23, rel=1e-15)
    # The bins themselves are unchanged (overflow included).
    back = read_hist(f"{out}:h")
    assert list(back.values(flow=True)) == [0.0, 2.0, 6.0, 0.0, 1.0, 4.0]
    assert list(back.variances(flow=True)) == [0.0, 4.0, 18.0, 0.0, 1.0, 16.0]


def test_fill_count_and_scaling(tmp_path: Path) -> None:
    out = tmp_path / "h.root"
    write_hists(out, {"h": _filled(), "g": _filled()}, entries={"h": 5})
    assert _header(out, "h")["fEntries"] == 5.0  # the number of fills, when known
    s = 0.922008
    write_hists(out, {"h": scale_hist(_filled(), s)})
    head = _header(out)
    assert head["fTsumw"] == pytest.approx(9 * s, rel=1e-14)
    assert head["fTsumw2"] == pytest.approx(23 * s * s, rel=1e-14)
    # Effective entries do not change under scaling (as ROOT's TH1::Scale keeps fEntries).
    assert head["fEntries"] == pytest.approx(81 / 23, rel=1e-14)
    # A negative total (interference sample): |fTsumw|, as in TH1::ResetStats.
    write_hists(out, {"h": scale_hist(_filled(), -2.0)})
    assert _header(out)["fEntries"] == pytest.approx(18.0, rel=1e-15)
