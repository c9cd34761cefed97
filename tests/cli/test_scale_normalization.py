"""``recastkit scale``: the normalization rule of issue 7 ("Why" examples), through the CLI.

Numbers are checked against hand computations written here (44.837 × 140.1 / 6813.0258 is the
tutorial's worked example, scale 0.922008).
"""

from __future__ import annotations

import json
from pathlib import Path

import hist
import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.io.hists import read_hists_and_metadata, write_hists
from recastkit.metadata import Catalog

WORKED = ["--xsec", "44.837 fb", "--lumi", "140.1 fb^-1", "--sumw", "6813.0258"]
WORKED_SCALE = 44.837 * 140.1 / 6813.0258  # 0.922008...

# SUSYTools-format rows (values of the SUSYTools table rows for 410470, 345055 and 342098).
SUSY_ROWS = (
    "#id/I:name/C:xsec/F:kfac/F:eff/F:relunc/F\n"
    "410470 PhPy8EG_A14_ttbar_hdamp258p75_nonallhad 729.77 1.13975636159 5.4383E-01 0.0\n"
    "345055 PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT 0.076107 1.0 1.0 0.0\n"
    "342098 aMcAtNloPythia8EvtGen_A14NNPDF23LO_bbH125_ybyt_gamgam -0.033518 1.0 1.0 0.0\n"
)
# PMG-format row of 345055 with its e-tag (the PMG excerpt: 0.044837 pb, e5706).
PMG_ROWS = (
    "dataset_number/I:physics_short/C:crossSection_pb/D:genFiltEff/D:kFactor/D:relUncertUP/D:"
    "relUncertDOWN/D:generator_name/C:etag/C\n"
    "345055\t\tZH125J_llbb\t\t0.044837\t\t1.0\t\t1.0\t\t0.0\t\t0.0\t\tPowheg\t\te5706\n"
)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    (tmp_path / "susy.txt").write_text(SUSY_ROWS)
    (tmp_path / "pmg.txt").write_text(PMG_ROWS)
    path = tmp_path / "cat.sqlite"
    with Catalog(path) as cat:
        cat.import_table(tmp_path / "susy.txt")
        cat.import_table(tmp_path / "pmg.txt")
    return path


def selection_output(path: Path, dsid: int) -> Path:
    """A selection output of one DSID: h_mjj_kin (3 bins) and the selection metadata."""
    h = hist.Hist(hist.axis.Regular(3, 0.0, 300.0), storage=hist.storage.Weight())
    h.fill([50.0, 150.0, 150.0, 250.0], weight=[1.0, 2.0, 3.0, 4.0])
    write_hists(path, {"h_mjj_kin": h}, {"dsid": dsid, "dataset": None,
                                         "sum_of_weights": None})
    return path


def scale(tmp_path: Path, *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["scale", *args, "-o", str(tmp_path / "out.root"),
                                       "--json"])
    doc = json.loads(result.stdout) if result.exit_code == 0 else {}
    return result.exit_code, doc, result.stderr


def test_hand_given_xsec_is_not_multiplied_by_catalog_eff_k(tmp_path: Path, catalog: Path
                                                           ) -> None:
    """Why #1: σ by hand on DSID 410470 with a catalog holding it: 0.922008, not 0.5715."""
    sel = selection_output(tmp_path / "sel.root", 410470)
    code, doc, err = scale(tmp_path, str(sel), *WORKED, "--catalog", str(catalog))
    assert code == 0, err
    assert doc["scale"] == pytest.approx(WORKED_SCALE, rel=1e-12)
    assert doc["scale"] == pytest.approx(0.922008, rel=1e-6)
    factors = {f["name"]: f for f in doc["factors"]}
    for name in ("filter efficiency", "k-factor"):
        assert factors[name]["value"] == 1.0
        assert factors[name]["source"] == "assumed 1 (σ given by hand)"
    # The warning names the record and the options that would apply it.
    assert "--filter-eff 0.54383" in err
    assert "--k-factor 1.13975636159" in err
    assert "410470" in err
    assert "susy.txt:2" in err
    assert doc["notes"]
    assert "--filter-eff 0.54383" in doc["notes"][0]
    # The written histograms carry the same scale: 2 + 3 in the middle bin.
    hists, meta = read_hists_and_metadata(tmp_path / "out.root")
    assert hists["h_mjj_kin"].values()[1] == pytest.approx(5.0 * WORKED_SCALE, rel=1e-12)
    assert meta["normalization"]["factors"][1]["source"] == "assumed 1 (σ given by hand)"

    # Given explicitly, ε and k enter: 44.837 × 0.54383 × 1.13975636159 × 140.1 / 6813.0258.
    code, doc, err = scale(tmp_path, str(sel), *WORKED, "--catalog", str(catalog),
                           "--filter-eff", "0.54383", "--k-factor", "1.13975636159")
    assert code == 0, err
    assert doc["scale"] == pytest.approx(WORKED_SCALE * 0.54383 * 1.13975636159, rel=1e-12)
    assert "--filter-eff" not in err

    # --xsec-source selects a catalog record: with a hand-given σ it is an error.
    code, _, err = scale(tmp_path, str(sel), *WORKED, "--catalog", str(catalog),
                         "--xsec-source", "susy.txt")
    assert code == 2
    assert "--xsec-source 'susy.txt' selects a catalog record" in err


def test_catalog_xsec_with_hand_given_eff_is_reported(tmp_path: Path, catalog: Path) -> None:
    sel = selection_output(tmp_path / "sel.root", 410470)
    code, doc, err = scale(tmp_path, str(sel), "--lumi", "140 fb^-1", "--sumw", "29465.3491",
                           "--catalog", str(catalog), "--filter-eff", "0.5")
    assert code == 0, err
    # σ and k of the catalog record, ε by hand: 729.77 pb × 0.5 × 1.13975636159 × 140 / Σw
    assert doc["scale"] == pytest.approx(729770 * 0.5 * 1.13975636159 * 140 / 29465.3491,
                                         rel=1e-12)
    assert "--filter-eff 0.5 given by hand replaces the filter_eff 0.54383" in err
    factors = {f["name"]: f["source"] for f in doc["factors"]}
    assert factors["filter efficiency"] == "user value"
    assert factors["k-factor"].startswith("catalog susy.txt:2")


def test_etag_typo_is_an_error_not_a_fallback(tmp_path: Path, catalog: Path) -> None:
    """Why #2: --etag e5707 (a typo of e5706) never falls back to the e-tag-less 76.107 fb."""
    sel = selection_output(tmp_path / "sel.root", 345055)
    base = [str(sel), "--lumi", "140.1 fb^-1", "--sumw", "6813.0258", "--catalog", str(catalog)]
    code, _, err = scale(tmp_path, *base, "--etag", "e5707")
    assert code == 2
    assert "e-tag e5707" in err
    assert "e-tags in the catalog for it: e5706" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.root").exists()
    # A malformed e-tag names --etag.
    code, _, err = scale(tmp_path, *base, "--etag", "5706")
    assert code == 2
    assert "--etag '5706' is not an e-tag" in err
    # e5706 matches the PMG row and the e-tag-less SUSYTools row (two conventions): choose.
    code, _, err = scale(tmp_path, *base, "--etag", "e5706")
    assert code == 2
    assert "--xsec-source one of" in err
    code, doc, err = scale(tmp_path, *base, "--etag", "e5706", "--xsec-source", "pmg.txt")
    assert code == 0, err
    assert doc["xsec_fb"] == pytest.approx(44.837, rel=1e-12)
    assert doc["scale"] == pytest.approx(WORKED_SCALE, rel=1e-12)


def test_negative_xsec_is_scaled_and_flagged(tmp_path: Path, catalog: Path) -> None:
    sel = selection_output(tmp_path / "sel.root", 342098)
    code, doc, err = scale(tmp_path, str(sel), "--lumi", "140 fb^-1", "--sumw", "1000",
                           "--catalog", str(catalog))
    assert code == 0, err
    # -0.033518 pb = -33.518 fb; × 140 fb^-1 / 1000
    assert doc["scale"] == pytest.approx(-33.518 * 140 / 1000, rel=1e-12)
    assert doc["negative_xsec"] is True
    assert "negative cross section" in err
    h = read_hists_and_metadata(tmp_path / "out.root")[0]["h_mjj_kin"]
    s = doc["scale"]
    np.testing.assert_allclose(h.values(), np.array([1.0, 5.0, 4.0]) * s, rtol=1e-12)
    np.testing.assert_allclose(h.variances(), np.array([1.0, 13.0, 16.0]) * s * s, rtol=1e-12)


def _sumweights_file(path: Path, sumw: float, dsid: int) -> Path:
    """An AnalysisTop-style file whose ``sumWeights`` tree gives Σw and the DSID."""
    with uproot.recreate(path) as f:
        f.mktree("sumWeights", {"dsid": np.int32, "totalEventsWeighted": np.float32,
                                "totalEvents": np.uint64})
        f["sumWeights"].extend({"dsid": np.array([dsid], np.int32),
                                "totalEventsWeighted": np.array([sumw], np.float32),
                                "totalEvents": np.array([10], np.uint64)})
    return path


def test_sumw_from_must_be_one_sample(tmp_path: Path) -> None:
    sel = selection_output(tmp_path / "sel.root", 410470)
    a = _sumweights_file(tmp_path / "a.root", 4000.0, 410470)
    b = _sumweights_file(tmp_path / "b.root", 2813.0258, 410470)
    other = _sumweights_file(tmp_path / "other.root", 2813.0258, 345055)
    base = [str(sel), "--xsec", "44.837 fb", "--lumi", "140.1 fb^-1"]
    # The same file twice.
    code, _, err = scale(tmp_path, *base, "--sumw-from", str(a), "--sumw-from", str(a))
    assert code == 2
    assert "are the same file" in err
    # Two files of the sample: Σw = 4000 + 2813.0258 (float32 storage: 2813.0258 -> float32).
    code, doc, err = scale(tmp_path, *base, "--sumw-from", str(a), "--sumw-from", str(b))
    assert code == 0, err
    sumw = 4000.0 + float(np.float32(2813.0258))
    assert doc["sum_of_weights"] == pytest.approx(sumw, rel=1e-12)
    assert doc["scale"] == pytest.approx(44.837 * 140.1 / sumw, rel=1e-12)
    # Files of two DSIDs: an error, unless the user says they are one sample (recorded).
    code, _, err = scale(tmp_path, *base, "--sumw-from", str(a), "--sumw-from", str(other))
    assert code == 2
    assert "--allow-mixed-dsids" in err
    code, doc, err = scale(tmp_path, *base, "--sumw-from", str(a), "--sumw-from", str(other),
                           "--allow-mixed-dsids")
    assert code == 0, err
    assert "(--allow-mixed-dsids)" in doc["factors"][-1]["source"]
    # Σw of another sample than the input's DSID.
    code, _, err = scale(tmp_path, *base, "--sumw-from", str(other))
    assert code == 2
    assert "--sumw-from files are DSID 345055 but the input histograms are DSID 410470" in err


def test_campaign_lumi_carries_that_years_uncertainty(tmp_path: Path, catalog: Path) -> None:
    """The luminosity of an mc16d dataset (2017) comes with 2017's 1.13 %, not 0.83 %."""
    sel = selection_output(tmp_path / "sel.root", 345055)
    name = ("mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
            "DAOD_EXOT27.e5706_e5984_s3126_r10201_r10210_p3712")
    code, doc, err = scale(tmp_path, str(sel), "--dataset", name, "--sumw", "6813.0258",
                           "--catalog", str(catalog), "--xsec-source", "pmg.txt")
    assert code == 0, err
    assert doc["lumi_ifb"] == pytest.approx(44.6306, rel=1e-12)  # 2017, arXiv:2212.09379
    assert doc["lumi_rel_unc"] == 0.0113
    assert doc["scale"] == pytest.approx(44.837 * 44.6306 / 6813.0258, rel=1e-12)


def test_sumw_cli_two_dsids(tmp_path: Path) -> None:
    """`recastkit sumw` on files of two DSIDs: an error, unless --allow-mixed-dsids."""
    a = _sumweights_file(tmp_path / "a.root", 4000.0, 410470)
    b = _sumweights_file(tmp_path / "b.root", 1000.0, 345055)
    result = CliRunner().invoke(main, ["sumw", str(a), str(b)])
    assert result.exit_code == 2
    assert "the files belong to 2 samples (DSID 345055: " in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["sumw", str(a), str(b), "--allow-mixed-dsids", "--json"])
    assert result.exit_code == 0, result.stderr
    total = json.loads(result.stdout)["total"]
    assert total["sum_of_weights"] == 5000.0
    assert "summed as one sample (--allow-mixed-dsids)" in total["source"]
