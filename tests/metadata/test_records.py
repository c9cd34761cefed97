from __future__ import annotations

import math

import pytest

from recastkit.exceptions import InvalidRecordError
from recastkit.metadata.records import Source, XsecRecord
from recastkit.units import CrossSection

SRC = Source("table", "/data/xsec/PMGxsecDB_mc16_excerpt_345053-345058.txt", 4)


def test_source_str_is_file_and_line() -> None:
    assert str(SRC) == "PMGxsecDB_mc16_excerpt_345053-345058.txt:4"
    assert str(Source("table", "/a/b.txt")) == "b.txt"
    assert str(Source("service", "AMI GetPhysicsParamsForDataset 345055")) == (
        "service:AMI GetPhysicsParamsForDataset 345055"
    )


def test_source_rejects_bad_kind_and_line() -> None:
    with pytest.raises(InvalidRecordError, match="valid kinds: table, service, user"):
        Source("file", "/a")
    with pytest.raises(InvalidRecordError, match="1-based"):
        Source("table", "/a", 0)


def test_effective_xsec_and_fb() -> None:
    # SUSYTools 410470: 729.77 pb, eff 0.54383, k 1.13975636159.
    r = XsecRecord(dsid=410470, xsec=CrossSection(729.77, "pb"), filter_eff=0.54383,
                   k_factor=1.13975636159, source=SRC)
    assert r.xsec_fb == pytest.approx(729770.0, rel=1e-15)
    assert r.effective_xsec.unit == "pb"
    assert r.effective_xsec.pb == pytest.approx(729.77 * 0.54383 * 1.13975636159, rel=1e-15)
    # Shared README worked example: scale = σ·ε·k·L/Σw = 2149.20398… for L = 140 fb⁻¹ and
    # Σw = 29465.34912109375, so σ·ε·k = 2149.20398 × Σw / 140 fb (9 significant digits).
    assert r.effective_xsec_fb == pytest.approx(2149.20398 * 29465.34912109375 / 140, rel=1e-8)
    assert r.key == 410470


def test_name_keyed_record() -> None:
    r = XsecRecord(xsec=CrossSection(1950.5295, "pb"), physics_short="Zee",
                   sum_of_weights=150277594200.0, source=SRC)
    assert r.dsid is None
    assert r.key == "Zee"
    assert r.sum_of_weights == 150277594200.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filter_eff": 0.0}, "0 < filter_eff <= 1"),
        ({"filter_eff": 1.01}, "0 < filter_eff <= 1"),
        ({"filter_eff": math.nan}, "finite"),
        ({"k_factor": 0.0}, "k_factor .* must be > 0"),
        ({"k_factor": math.inf}, "finite"),
        ({"branching_ratio": 1.5}, "0 < BR <= 1"),
        ({"rel_unc_up": math.nan}, "finite"),
        ({"dsid": -1}, "non-negative integer"),
        ({"dsid": None}, "needs a dsid or a physics_short"),
    ],
)
def test_validation(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"dsid": 1, "xsec": CrossSection(1.0, "pb"), "source": SRC}
    base.update(kwargs)
    with pytest.raises(InvalidRecordError, match=match):
        XsecRecord(**base)  # type: ignore[arg-type]


def test_filter_eff_tolerance_and_zero_xsec() -> None:
    r = XsecRecord(dsid=1, xsec=CrossSection(1.0, "pb"), filter_eff=1.0000005, source=SRC)
    assert r.filter_eff == 1.0000005
    with pytest.raises(InvalidRecordError, match="must be non-zero"):
        XsecRecord(dsid=1, xsec=CrossSection(0.0, "pb"), source=SRC)
    # A negative σ (interference sample) is a record, flagged.
    neg = XsecRecord(dsid=342098, xsec=CrossSection(-0.033518, "pb"), source=SRC)
    assert neg.negative
    assert neg.flags == ("negative σ (interference)",)
    assert neg.effective_xsec_fb == pytest.approx(-33.518, rel=1e-12)
    with pytest.raises(InvalidRecordError, match="CrossSection"):
        XsecRecord(dsid=1, xsec=0.5, source=SRC)  # type: ignore[arg-type]


def test_etag_normalised_and_describe() -> None:
    r = XsecRecord(dsid=345055, xsec=CrossSection(0.044837, "pb"), etag=" E5706 ", source=SRC)
    assert r.etag == "e5706"
    assert r.describe() == (
        "345055 e5706: σ=0.044837 pb ε=1.0 k=1.0 -> σ·ε·k = 44.837 fb "
        "(PMGxsecDB_mc16_excerpt_345053-345058.txt:4)"
    )
