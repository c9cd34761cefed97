"""Integrated luminosity per year, campaign and dataset."""

from __future__ import annotations

import math

import pytest

from recastkit.datasets import get_campaign, parse_dataset_name
from recastkit.exceptions import CampaignError, DatasetNameError, UnitError
from recastkit.lumi import (
    CALIBRATIONS,
    DEFAULT_CALIBRATION,
    LumiRecord,
    lumi_for_campaign,
    lumi_for_dataset,
    lumi_for_years,
    resolve_lumi,
    user_lumi,
)
from recastkit.units import Luminosity

# Published per-year values in pb^-1 (arXiv:2212.09379 / ATLAS-CONF-2019-021).
FINAL = {2015: 3244.54, 2016: 33402.2, 2017: 44630.6, 2018: 58791.6}
# Per-year total relative uncertainties of arXiv:2212.09379 (0.9-1.1 % per the abstract).
FINAL_UNC = {2015: 0.0113, 2016: 0.0089, 2017: 0.0113, 2018: 0.0110}
PRELIM = {2015: 3219.56, 2016: 32988.1, 2017: 44307.4, 2018: 58450.1}
ZH = (
    "mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
    "DAOD_EXOT27.e5706_e5984_s3126_r10201_r10210_p3712"
)


def test_calibration_tables() -> None:
    assert DEFAULT_CALIBRATION == "Run2-final"
    assert dict(CALIBRATIONS["Run2-final"].lumi_ipb) == FINAL
    assert dict(CALIBRATIONS["Run2-2019"].lumi_ipb) == PRELIM
    assert CALIBRATIONS["Run2-final"].combined_rel_unc == 0.0083
    assert CALIBRATIONS["Run2-2019"].combined_rel_unc == 0.017
    assert "2212.09379" in CALIBRATIONS["Run2-final"].source


@pytest.mark.parametrize(
    ("campaign", "years"),
    [("mc16a", (2015, 2016)), ("mc16d", (2017,)), ("mc16e", (2018,)),
     ("mc20a", (2015, 2016)), ("mc20d", (2017,)), ("mc20e", (2018,))],
)
def test_campaign_sums(campaign: str, years: tuple[int, ...]) -> None:
    rec = lumi_for_campaign(campaign)
    assert isinstance(rec, LumiRecord)
    assert rec.years == years
    assert rec.calibration == "Run2-final"
    assert rec.lumi_ifb == pytest.approx(sum(FINAL[y] for y in years) / 1000, rel=1e-12)
    # One year: that year's uncertainty; 2015+2016: their luminosity-weighted mean (fully
    # correlated, conservative). Never the 0.83 % of the full Run 2.
    expected = sum(FINAL[y] * FINAL_UNC[y] for y in years) / sum(FINAL[y] for y in years)
    assert rec.rel_unc == pytest.approx(expected, rel=1e-12)
    assert 0.009 - 0.0005 <= rec.rel_unc <= 0.011 + 0.0005  # the abstract's 0.9-1.1 %
    assert [y for y, _ in rec.per_year] == list(years)
    assert math.fsum(lumi.ifb for _, lumi in rec.per_year) == pytest.approx(rec.lumi_ifb,
                                                                          rel=1e-12)


def test_mc16a_value() -> None:
    assert lumi_for_campaign("mc16a").lumi_ifb == pytest.approx(36.64674, rel=1e-12)
    assert lumi_for_campaign(get_campaign("mc16a")).lumi.ipb == pytest.approx(36646.74,
                                                                              rel=1e-12)


def test_run2_totals() -> None:
    final = lumi_for_years([2015, 2016, 2017, 2018])
    assert final.lumi_ifb == pytest.approx(140.06894, rel=1e-12)
    assert final.lumi_ifb == pytest.approx(140.1, abs=0.05)  # paper: 140.1 ± 1.2 fb^-1
    assert final.rel_unc == 0.0083
    assert final.abs_unc_ifb == pytest.approx(0.0083 * 140.06894, rel=1e-12)
    assert final.abs_unc_ifb == pytest.approx(1.2, abs=0.05)
    prelim = lumi_for_years([2018, 2017, 2016, 2015, 2015], "Run2-2019")
    assert prelim.years == (2015, 2016, 2017, 2018)
    assert prelim.lumi_ifb == pytest.approx(138.96516, rel=1e-12)
    assert prelim.lumi_ifb == pytest.approx(138.97, abs=0.005)
    assert prelim.rel_unc == 0.017
    assert prelim.calibration == "Run2-2019"


def test_calibration_choice() -> None:
    default = lumi_for_campaign("mc16e")
    explicit = lumi_for_campaign("mc16e", calibration="Run2-final")
    old = lumi_for_campaign("mc16e", calibration="run2-2019")  # case-insensitive
    assert default == explicit
    assert old.lumi_ifb == pytest.approx(58.4501, rel=1e-12)
    assert old.rel_unc == pytest.approx(0.017, rel=1e-12)
    assert old.calibration == "Run2-2019"
    assert "ATLAS-CONF-2019-021" in old.source
    assert default.lumi_ifb / old.lumi_ifb == pytest.approx(58791.6 / 58450.1, rel=1e-12)


def test_partial_sum_uncertainty_is_weighted_mean() -> None:
    rec = lumi_for_years([2017, 2018])
    expected = (44630.6 * 0.0113 + 58791.6 * 0.0110) / (44630.6 + 58791.6)
    assert rec.rel_unc == pytest.approx(expected, rel=1e-12)
    assert rec.lumi_ifb == pytest.approx((44630.6 + 58791.6) / 1000, rel=1e-12)


def test_unknown_year_and_calibration() -> None:
    with pytest.raises(CampaignError, match=r"2012.*2015, 2016, 2017, 2018"):
        lumi_for_years([2012])
    with pytest.raises(CampaignError, match="Run2-final, Run2-2019"):
        lumi_for_years([2017], calibration="Run1")
    with pytest.raises(CampaignError, match="no data years"):
        lumi_for_years([])
    with pytest.raises(CampaignError, match="year 2022 in calibration 'Run2-final'"):
        lumi_for_years([2022], calibration="Run2-final")


def test_run3_campaigns_have_no_tabulated_lumi() -> None:
    # No Run 3 luminosity is tabulated (not confirmed); the error says how to proceed.
    with pytest.raises(CampaignError, match=r"mc23c.*2023.*user value"):
        lumi_for_campaign("mc23c")
    with pytest.raises(CampaignError, match="valid campaigns"):
        lumi_for_campaign("mc99x")


def test_lumi_for_dataset_through_rtag() -> None:
    rec = lumi_for_dataset(ZH)
    assert rec.years == (2017,)
    assert rec.lumi_ifb == pytest.approx(44.6306, rel=1e-12)
    assert lumi_for_dataset(parse_dataset_name(ZH), "Run2-2019").lumi_ifb == pytest.approx(
        44.3074, rel=1e-12
    )
    with pytest.raises(CampaignError, match="no known campaign r-tag"):
        lumi_for_dataset("mc16_13TeV.345055.X.evgen.EVNT.e5706")
    with pytest.raises(CampaignError, match="real data"):
        lumi_for_dataset("data18_13TeV.00348885.physics_Main.deriv.DAOD_PHYS.r11969_p4072")
    with pytest.raises(DatasetNameError):
        lumi_for_dataset("not-a-dataset")


def test_user_value_wins() -> None:
    rec = user_lumi(Luminosity(140.1, "fb^-1"), rel_unc=0.01)
    assert rec.lumi_ifb == 140.1
    assert rec.calibration == "user"
    assert rec.source == "user value"
    assert rec.years == ()
    assert rec.rel_unc == 0.01
    resolved = resolve_lumi("36207.66 pb^-1", calibration="Run2-2019")
    assert resolved.calibration == "user"
    assert resolved.lumi_ifb == pytest.approx(36.20766, rel=1e-12)
    assert resolved.rel_unc is None
    with pytest.raises(UnitError):
        user_lumi(140.1)  # type: ignore[arg-type]
    with pytest.raises(UnitError):
        user_lumi(Luminosity(1.0), rel_unc=-0.1)
    with pytest.raises(UnitError, match="no unit"):
        resolve_lumi("140.1")


@pytest.mark.parametrize(
    ("spec", "years", "lumi_ifb"),
    [
        ("mc16e", (2018,), 58.7916),
        ("MC20a", (2015, 2016), 36.64674),
        ("2017", (2017,), 44.6306),
        ("2015,2016", (2015, 2016), 36.64674),
        ("2015+2016", (2015, 2016), 36.64674),
        ("2015 2016 2017 2018", (2015, 2016, 2017, 2018), 140.06894),
        ("run2", (2015, 2016, 2017, 2018), 140.06894),
        ("Run 2", (2015, 2016, 2017, 2018), 140.06894),
        ("mc16", (2015, 2016, 2017, 2018), 140.06894),
        (f"mc16_13TeV:{ZH}_tid0123_00/", (2017,), 44.6306),
        ("140.1 fb^-1", (), 140.1),
        ("0.1401 ab^-1", (), 140.1),
    ],
)
def test_resolve_lumi(spec: str, years: tuple[int, ...], lumi_ifb: float) -> None:
    rec = resolve_lumi(spec)
    assert rec.years == years
    assert rec.lumi_ifb == pytest.approx(lumi_ifb, rel=1e-12)


def test_resolve_lumi_run2_with_calibration() -> None:
    assert resolve_lumi("run2", "Run2-2019").lumi_ifb == pytest.approx(138.96516, rel=1e-12)


def test_resolve_lumi_unknown_lists_forms() -> None:
    with pytest.raises(CampaignError, match=r"mc16a, .*'run2'.*140.1 fb\^-1"):
        resolve_lumi("mc17z")


def test_single_year_uncertainty_is_that_years() -> None:
    """Issue 7: one year (mc16d = 2017, mc16e = 2018) carries its own uncertainty."""
    assert lumi_for_campaign("mc16d").rel_unc == 0.0113
    assert lumi_for_campaign("mc16e").rel_unc == 0.0110
    assert lumi_for_years([2016]).rel_unc == 0.0089
    # 2015+2016 by hand: (3244.54 × 1.13 % + 33402.2 × 0.89 %) / 36646.74 = 0.9112 %
    assert lumi_for_campaign("mc16a").rel_unc == pytest.approx(0.0091125, rel=1e-4)
    # The full Run 2 keeps the published combination (partially correlated years).
    assert lumi_for_years(FINAL).rel_unc == 0.0083
    assert lumi_for_dataset(ZH).rel_unc == 0.0113  # r10201: mc16d, 2017
