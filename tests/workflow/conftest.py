"""Fixtures of the workflow tests: a tiny analysis spec (generated signal and MC background,
mock background, toy data) and its constants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

SIGNAL_DATASET = (
    "mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
    "DAOD_EXOT27.e5706_s3126_r10724_p3840"
)
BKG_DATASET = "mc16_13TeV.999002.Synthetic_dijet_bkg.deriv.DAOD_EXOT27.e1111_s3126_r10724_p3840"
#: The worked example: σ = 0.044837 pb, L = 140.1 fb^-1, Σw = 6813.0258.
XSEC_PB = 0.044837
LUMI_IFB = 140.1
SUMW = 6813.025800

PMG_HEADER = (
    "dataset_number/I:physics_short/C:crossSection_pb/D:genFiltEff/D:kFactor/D:"
    "relUncertUP/D:relUncertDOWN/D:generator_name/C:etag/C"
)


def pmg_row(dsid: int, short: str, xsec_pb: float, eff: float, k: float, *, etag: str) -> str:
    """One row of a PMG-format table (double-tab separated)."""
    return "\t\t".join(
        [str(dsid), short, repr(xsec_pb), repr(eff), repr(k), "0.0", "0.0", "Synthetic", etag]
    )


def write_spec(directory: Path, *, fast: bool = False, **interpretation: Any) -> Path:
    """Write ``analysis.yml`` and its table into ``directory`` (tiny: 5 bins, 5 points).

    ``fast``: no plots and no report (the fit's numbers only).
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "xsec.txt").write_text(
        PMG_HEADER + "\n" + pmg_row(345055, "ZH125J_llbb", XSEC_PB, 1.0, 1.0, etag="e5706") + "\n"
    )
    it = {
        "regions": ["SR"],
        "observable": "h_mjj_kin",
        "n_points": 5,
        "mu_max": 0.8,
        "lumi_unc": "from-catalog",
    }
    it.update(interpretation)
    doc = {
        "version": 1,
        "name": "tiny",
        "samples": {
            "signal": {
                "name": "sig",
                "dataset": SIGNAL_DATASET,
                "generate": {"events": 2000, "seed": 3},
            },
            "backgrounds": [
                {
                    "name": "dijet",
                    "dataset": BKG_DATASET,
                    "generate": {
                        "events": 2000,
                        "seed": 4,
                        "resonance_gev": 300,
                        "sum_of_weights": 1000.0,
                    },
                },
                {"name": "mock", "mock": {"seed": 5}},
            ],
            "data": {"toy": {"seed": 6}},
        },
        "regions": [
            {
                "name": "SR",
                "selection": {
                    "jets": {"min_jets": 2},
                    "histograms": {"mjj": {"bins": 5, "low_gev": 0, "high_gev": 500}},
                },
            }
        ],
        "normalization": {
            "catalogs": ["xsec.txt"],
            "lumi": f"{LUMI_IFB} fb^-1",
            "lumi_rel_unc": 0.0083,
            "overrides": {"dijet": {"xsec": "2 pb", "filter_eff": 1.0, "k_factor": 1.0}},
        },
        "interpretation": it,
        "outputs": {"report": not fast, "plots": not fast},
    }
    path = directory / "analysis.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class Tiny:
    """The constants of the tiny analysis, and its writer."""

    SIGNAL_DATASET = SIGNAL_DATASET
    BKG_DATASET = BKG_DATASET
    XSEC_PB = XSEC_PB
    LUMI_IFB = LUMI_IFB
    SUMW = SUMW
    pmg_row = staticmethod(pmg_row)
    PMG_HEADER = PMG_HEADER
    write_spec: Callable[..., Path] = staticmethod(write_spec)


@pytest.fixture(scope="session")
def tiny() -> type[Tiny]:
    """The tiny analysis: ``tiny.write_spec(directory, **interpretation)`` and constants."""
    return Tiny


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny analysis run once (every step ran; report and plots on)."""
    from recastkit.workflow.run import run_analysis
    from recastkit.workflow.spec import load_spec

    base = tmp_path_factory.mktemp("tiny")
    spec = load_spec(write_spec(base / "spec"))
    return run_analysis(spec, base / "out", command=["recastkit", "run", "analysis.yml"])


DEMO_SPEC = Path(__file__).resolve().parents[2] / "examples" / "demo" / "analysis.yml"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``recastkit run examples/demo/analysis.yml`` (what ``make demo`` runs), once per session,
    with the spec's outputs (report and plots)."""
    from recastkit.workflow.run import run_analysis
    from recastkit.workflow.spec import load_spec

    return run_analysis(load_spec(DEMO_SPEC), tmp_path_factory.mktemp("demo") / "out")
