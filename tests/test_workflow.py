"""Normalization resolution: user values win, catalog and campaign fill the rest, sources kept."""

from __future__ import annotations

from pathlib import Path

import hist
import numpy as np
import pytest

from recastkit.exceptions import AmbiguousMetadataError, ScalingError
from recastkit.io.hists import read_hists_and_metadata, write_hists
from recastkit.units import CrossSection, Luminosity
from recastkit.workflow import NormalizationRequest, resolve_normalization, scale_file

ZH = ("mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
      "DAOD_EXOT27.e5706_s3126_r10724_p3840")


@pytest.fixture
def pmg_catalog(tmp_path: Path, shared_file):  # type: ignore[no-untyped-def]
    from recastkit.metadata import Catalog

    path = tmp_path / "cat.sqlite"
    cat = Catalog(path)
    cat.import_table(shared_file("xsec/PMGTools/PMGxsecDB_mc16_excerpt_345053-345058.txt"))
    return path


def test_user_values_only() -> None:
    req = NormalizationRequest(xsec=CrossSection.from_fb(44.837), lumi=Luminosity.from_ifb(140.1),
                               sum_of_weights=6813.0258)
    ledger = resolve_normalization(req)
    assert ledger.scale == pytest.approx(0.922008, rel=1e-6)
    assert ledger.filter_eff_source.startswith("assumed 1")


def test_catalog_and_campaign(pmg_catalog: Path) -> None:
    req = NormalizationRequest(dataset=ZH, sum_of_weights=6813.0258, catalog_path=pmg_catalog)
    ledger = resolve_normalization(req)
    assert ledger.xsec.fb == pytest.approx(44.837, rel=1e-9)
    assert "PMGxsecDB_mc16_excerpt" in ledger.xsec_source
    # r10724 -> mc16e -> 2018 only, Run-2 final calibration: 58791.6 pb^-1
    assert ledger.lumi.ifb == pytest.approx(58.7916, rel=1e-9)
    assert "2018" in ledger.lumi_source
    assert ledger.scale == pytest.approx(44.837 * 58.7916 / 6813.0258, rel=1e-9)


def test_user_lumi_wins_over_campaign(pmg_catalog: Path) -> None:
    req = NormalizationRequest(dataset=ZH, sum_of_weights=6813.0258, catalog_path=pmg_catalog,
                               lumi=Luminosity.from_ifb(140.1))
    ledger = resolve_normalization(req)
    assert ledger.lumi_source == "user value"
    assert ledger.scale == pytest.approx(0.922008, rel=1e-6)


def test_conflicting_sources_are_never_picked_silently(tmp_path: Path, shared_file) -> None:  # type: ignore[no-untyped-def]
    from recastkit.metadata import Catalog

    path = tmp_path / "cat.sqlite"
    cat = Catalog(path)
    cat.import_table(shared_file("xsec/PMGTools/PMGxsecDB_mc16_excerpt_345053-345058.txt"))
    cat.import_table(shared_file("xsec/SUSYTools/mc16_13TeV_Backgrounds.txt"))
    req = NormalizationRequest(dataset="345055", sum_of_weights=6813.0258, catalog_path=path,
                               lumi=Luminosity.from_ifb(140.1))
    with pytest.raises(AmbiguousMetadataError) as info:
        resolve_normalization(req)
    assert "0.076107" in str(info.value) or "76.107" in str(info.value)
    chosen = NormalizationRequest(dataset="345055", sum_of_weights=6813.0258, catalog_path=path,
                                  lumi=Luminosity.from_ifb(140.1),
                                  xsec_source="mc16_13TeV_Backgrounds.txt")
    assert resolve_normalization(chosen).xsec.fb == pytest.approx(76.107, rel=1e-9)


def test_sumw_from_selection_metadata(tmp_path: Path) -> None:
    h = hist.Hist(hist.axis.Regular(4, 0, 400), storage=hist.storage.Weight())
    h.fill([50.0, 150.0, 150.0], weight=[2.0, 1.0, 3.0])
    src = tmp_path / "sel.root"
    write_hists(src, {"h_mjj_kin": h, "h_njets_kin": h},
                {"sum_of_weights": 6813.0258, "sum_of_weights_source": "CutBookkeepers X"})
    req = NormalizationRequest(xsec=CrossSection.from_fb(44.837), lumi=Luminosity.from_ifb(140.1))
    result = scale_file(src, tmp_path / "scaled.root", req)
    assert result.ledger.scale == pytest.approx(0.922008, rel=1e-6)
    assert "CutBookkeepers X" in result.ledger.sum_of_weights_source
    hists, meta = read_hists_and_metadata(tmp_path / "scaled.root")
    assert sorted(hists) == ["h_mjj_kin", "h_njets_kin"]
    np.testing.assert_allclose(hists["h_mjj_kin"].values(), h.values() * result.ledger.scale)
    assert meta["normalization"]["xsec_fb"] == pytest.approx(44.837)
    assert result.yields["h_mjj_kin"] == pytest.approx(6.0 * result.ledger.scale)


def test_missing_sumw_reports_selection_error(tmp_path: Path) -> None:
    h = hist.Hist(hist.axis.Regular(2, 0, 2), storage=hist.storage.Weight())
    src = tmp_path / "sel.json"
    write_hists(src, {"h": h}, {"sum_of_weights": None,
                                "sum_of_weights_error": "x.root: no MetaData tree"})
    req = NormalizationRequest(xsec=CrossSection.from_fb(1), lumi=Luminosity.from_ifb(1))
    with pytest.raises(ScalingError, match="no MetaData tree"):
        scale_file(src, tmp_path / "o.json", req)
    assert not (tmp_path / "o.json").exists()
