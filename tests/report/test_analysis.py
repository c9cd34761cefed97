"""The run's report: a self-contained page that parses, shows the ledger and renders in Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import hist
import numpy as np
import pytest

from recastkit.report.analysis import (
    AnalysisReport,
    RegionPlot,
    SampleReport,
    write_analysis_report,
)
from recastkit.scaling import Ledger
from recastkit.selection import CutflowEntry
from recastkit.stats.results import LimitResult
from recastkit.units import CrossSection, Luminosity

#: The worked example: σ = 44.837 fb, L = 140.1 fb⁻¹, pre-skim Σw = 6813.0258.
XSEC_FB, LUMI_IFB, SUMW = 44.837, 140.1, 6813.0258
#: HTML elements without an end tag.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NASTY = "<b>&'\"x $1_y"


class _Balanced(HTMLParser):
    """Collects every tag and fails on an end tag that does not close the innermost open one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> while open: {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _hist(values: list[float], variances: list[float] | None = None) -> hist.Hist:
    h = hist.Hist(hist.axis.Regular(len(values), 0.0, 500.0, name="mjj",
                                    label="$m_{jj}$ [GeV]"), storage=hist.storage.Weight())
    h.view().value = np.asarray(values, dtype=float)
    h.view().variance = np.asarray(variances if variances is not None else values, dtype=float)
    return h


def _report() -> AnalysisReport:
    signal_ledger = Ledger(
        xsec=CrossSection.from_fb(XSEC_FB), filter_eff=1.0, k_factor=1.0,
        lumi=Luminosity.from_ifb(LUMI_IFB), sum_of_weights=SUMW,
        xsec_source="examples/xsec.txt line 2 (DSID 999001, e-tag e8000)",
        filter_eff_source="examples/xsec.txt line 2", k_factor_source="examples/xsec.txt line 2",
        lumi_source="campaign mc20e+d+a (140.1 fb^-1)",
        sum_of_weights_source="CutBookkeepers AllExecutedEvents", dataset="mc20_13TeV.999001")
    ttbar_ledger = Ledger(
        xsec=CrossSection.from_pb(729.77), filter_eff=0.5438, k_factor=1.13975,
        lumi=Luminosity.from_ifb(LUMI_IFB), sum_of_weights=2.0e6,
        xsec_source="PMGxsecDB line 8", filter_eff_source="PMGxsecDB line 8",
        k_factor_source="PMGxsecDB line 8", lumi_source="campaign",
        sum_of_weights_source="CutBookkeepers", dataset="mc20_13TeV.410470")
    cutflow = (CutflowEntry("all events", 1000, 100.0, 10.0),
               CutflowEntry(">= 2 jets", 800, 80.0, 8.0),
               CutflowEntry("m_jj window", 500, 50.0, 5.0))
    samples = (
        SampleReport(name="ZH", role="signal", dataset="mc20_13TeV.999001", ledger=signal_ledger,
                     cutflows={"SR": cutflow}),
        SampleReport(name="ttbar", role="background", dataset="mc20_13TeV.410470",
                     ledger=ttbar_ledger, cutflows={"SR": cutflow},
                     notes=("catalog conflict: PMGxsecDB σ = 729.77 pb, SUSYTools σ = 730.1 pb;"
                            " the first was used",)),
        SampleReport(name=f"mock {NASTY}", role="background"),
        SampleReport(name="data", role="data", cutflows={"SR": cutflow[:2]}),
    )
    bkg1 = [400.0, 300.0, 200.0, 120.0, 60.0, 30.0, 15.0, 8.0, 4.0, 2.0]
    bkg2 = [100.0, 80.0, 60.0, 40.0, 20.0, 10.0, 5.0, 3.0, 2.0, 1.0]
    sig = [0.5, 2.0, 15.0, 20.0, 6.0, 1.0, 0.2, 0.1, 0.0, 0.0]
    data = [505.0, 371.0, 270.0, 170.0, 85.0, 36.0, 18.0, 12.0, 5.0, 2.0]
    regions = tuple(
        RegionPlot(region=region, observable=obs, signal=_hist(sig, [0.01 * s for s in sig]),
                   backgrounds={"ttbar": _hist(bkg1), f"mock {NASTY}": _hist(bkg2)},
                   data=_hist(data), signal_name="ZH")
        for region, obs in (("SR", "mjj"), ("CR low", "mjj")))
    mus = np.linspace(0.0, 4.0, 9)
    cls = np.exp(-mus)
    limit = LimitResult(
        observed_mu=2.9957, expected_mu=(1.5, 2.0, 3.0, 4.0, 5.0), mu_values=tuple(mus),
        cls_observed=tuple(cls),
        cls_expected=tuple(tuple(cls**k) for k in (2.0, 1.5, 1.0, 0.75, 0.5)),
        cl=0.95, test_stat="qtilde", xsec_ref_fb=XSEC_FB, observed_xsec_fb=2.9957 * XSEC_FB,
        expected_xsec_fb=tuple(m * XSEC_FB for m in (1.5, 2.0, 3.0, 4.0, 5.0)),  # type: ignore[arg-type]
        settings={"backend": "numpy", "n_points": 9}, notes=("μ range extended once",))
    manifest = {
        "manifest_version": 1,
        "analysis": {"name": "zh", "version": 1, "spec": "analysis.yml", "spec_sha256": "ab" * 32},
        "command": ["recastkit", "run", "analysis.yml", "-o", "out"],
        "started_utc": "2026-11-29T08:00:00+00:00", "finished_utc": "2026-11-29T08:01:00+00:00",
        "software": {"recastkit": "0.1.0", "pyhf": "0.7.6", "python": "3.11.2"},
        "inputs": [{"sample": "ZH", "role": "signal", "path": "sig.root", "size": 1234,
                    "method": "sha256", "sha256": "cd" * 32}],
        "catalog": {"tables": [{"path": "xsec.txt", "sha256": "98" * 32}],
                    "records": [{"sample": "ZH", "dsid": 999001, "source": "xsec.txt:2",
                                 "detail": {"nested": [1, 2]}}]},
        "samples": [{"name": "ZH", "ledger": {"scale": 0.922}}],
        "steps": [{"name": "select/ZH/SR"}],
        "outputs": {"report": "report.html"},
    }
    steps = ({"name": "select/ZH/SR", "status": "ran", "key": "ef" * 32, "seconds": 1.5},
             {"name": "fit/ZH", "status": "cached", "key": "12" * 32, "seconds": 0.0})
    tables = {"Theory uncertainties in SR": (["variation", "yield", "rel."],
                                             [["scale up", 44.1, 0.03], ["scale down", 40.2,
                                                                        -0.05]])}
    return AnalysisReport(title=f"ZH search {NASTY}", samples=samples, regions=regions,
                          limits={"ZH": limit}, manifest=manifest, steps=steps, tables=tables)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("report")
    page = write_analysis_report(_report(), out / "report.html", plots_dir=out / "plots")
    return page, out / "plots"


def test_page_parses_and_shows_the_ledger(written: tuple[Path, Path]) -> None:
    page, plots = written
    text = page.read_text(encoding="utf-8")
    parser = _Balanced()
    parser.feed(text)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    body = "".join(parser.text)

    # the ledger, computed here: σ·L/Σw and σ·L
    scale = XSEC_FB * LUMI_IFB / SUMW
    assert f"{scale:.6f}" == "0.922008"
    assert f"<td class=\"num\">{scale:.6g}</td>" in text
    assert f"{XSEC_FB * LUMI_IFB:.6g}" in body  # expected yield 6281.66
    assert "6813.0258" in body
    assert "44.837" in body
    assert "140.1" in body
    assert "CutBookkeepers AllExecutedEvents" in body
    assert "examples/xsec.txt line 2 (DSID 999001, e-tag e8000)" in body
    assert "catalog conflict: PMGxsecDB" in body
    ttbar_scale = 729.77e3 * 0.5438 * 1.13975 * LUMI_IFB / 2.0e6
    assert f"{ttbar_scale:.6g}" in body
    # cutflow: ε relative to the first step and expected events Σw × scale
    assert re.search(r"<td>m_jj window</td><td class=\"num\">500</td><td class=\"num\">50</td>"
                     r"<td class=\"num\">5</td><td class=\"num\">0.5</td>"
                     r"<td class=\"num\">0.625</td>"
                     + re.escape(f"<td class=\"num\">{50.0 * scale:.6g}</td>"), text)
    # limits in μ and in fb
    assert "2.996" in body
    assert f"{2.9957 * XSEC_FB:.4g}" in body
    # yields per region: total background and data
    assert f"{sum([400.0, 300.0, 200.0, 120.0, 60.0, 30.0, 15.0, 8.0, 4.0, 2.0]) + 321:.6g}" \
        in body
    # steps with short keys, the provenance with short checksums and the command
    assert "select/ZH/SR" in body
    assert "ef" * 6 + "…" in body
    assert "ef" * 32 not in body
    assert "cd" * 6 + "…" in body
    assert "0.7.6" in body
    assert "recastkit run analysis.yml -o out" in body
    assert "2026-11-29T08:01:00+00:00" in body
    assert "98" * 6 + "…" in body
    assert "Also in manifest.json: samples, steps (shown above)" in body
    assert "Theory uncertainties in SR" in body

    # user text is escaped; the page is self-contained
    assert NASTY not in text
    assert "mock &lt;b&gt;&amp;&#x27;&quot;x $1_y" in text
    assert "<b>" not in text
    assert "http://" not in text
    assert "https://" not in text
    assert 'src="//' not in text
    imgs = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(imgs) == 3  # CLs scan + 2 regions
    for attrs in imgs:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert all(a.get("href", "#").startswith("#") for t, a in parser.tags if t == "a")
    assert not [t for t, a in parser.tags if t in ("script", "link", "iframe")]

    # the PNGs beside it
    assert sorted(p.name for p in plots.iterdir()) == ["CR_low_mjj.png", "SR_mjj.png",
                                                       "cls_scan.png"]
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == PNG_MAGIC


def test_report_without_plots_dir_writes_only_the_page(tmp_path: Path) -> None:
    report = _report()
    minimal = AnalysisReport(title="t", samples=report.samples[:1], regions=(), limits={})
    page = write_analysis_report(minimal, tmp_path / "r.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
    parser = _Balanced()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.errors == []
    assert parser.stack == []


def test_page_renders_in_headless_chromium(written: tuple[Path, Path], tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no headless browser: Debian's 'chromium' package is not installed "
                    "(.ci/run installs it with apt-get)")
    page, _ = written
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,3000", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert shot.is_file(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (3000, 1200)
    grey = pixels[..., :3].mean(axis=2)
    # not blank: text, tables and the embedded plots give many non-white pixels
    assert grey.std() > 0.05
    assert (grey < 0.5).mean() > 0.005
