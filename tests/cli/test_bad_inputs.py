"""Every bad input ends the same way: one ``Error: ...`` line, exit code 2, nothing written.

One parametrized case per kind of bad input, across every command. Each case builds its
inputs in ``tmp_path/in`` and points outputs at ``tmp_path/out``; the test compares the listing
of ``tmp_path`` before and after the command (no output, no temporary file left behind) and
checks that the message names what is wrong (the file, the field or the option).

Cases that need permission bits are skipped under root (root ignores them); the permission
denied kind that runs as root writes under ``/sys``, where nobody may create files.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hist
import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from recastkit.cli import main

WORKED = ["--sumw", "6813.0258", "--xsec", "44.837 fb", "--lumi", "140.1 fb^-1"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------- input builders


def _weighted(edges: list[float], values: list[float], variances: list[float],
              flow: tuple[float, float] | None = None) -> hist.Hist:
    h = hist.Hist(hist.axis.Variable(edges, name="x"), storage=hist.storage.Weight())
    view = h.view()
    view.value = values
    view.variance = variances
    if flow is not None:
        full = h.view(flow=True)
        full.value[-1], full.variance[-1] = flow
    return h


def _txt(path: Path, *rows: str) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _hist_json(path: Path, hists: dict[str, hist.Hist], metadata: object = None) -> Path:
    from recastkit.io.hists import write_hists

    write_hists(path, hists)
    if metadata is not None:
        doc = json.loads(path.read_text())
        doc["metadata"] = metadata
        path.write_text(json.dumps(doc, allow_nan=True))
    return path


def _hist_root(path: Path, hists: dict[str, hist.Hist], metadata_text: str | None = None
               ) -> Path:
    with uproot.recreate(path) as f:
        for name, h in hists.items():
            f[name] = h
        if metadata_text is not None:
            f["recastkit_metadata"] = metadata_text
    return path


def _h3(tmp: Path) -> Path:
    """A good three-bin text histogram (edges, contents, variances)."""
    return _txt(tmp / "in" / "h.txt", "0 100 200 300", "1 2 3", "0.5 1 4")


def _workspace(obs: list[float] | None = None, *, channel_obs: str = "c",
               version: bool = True) -> dict[str, object]:
    ws: dict[str, object] = {
        "channels": [{"name": "c", "samples": [
            {"name": "signal", "data": [2.0, 3.0],
             "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "background", "data": [10.0, 12.0], "modifiers": []},
        ]}],
        "observations": [{"name": channel_obs, "data": [11.0, 13.0] if obs is None else obs}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    }
    if version:
        ws["version"] = "1.0.0"
    return ws


def _with_background(data: list[float], modifiers: list[object] | None = None
                     ) -> dict[str, object]:
    ws = _workspace()
    background = ws["channels"][0]["samples"][1]  # type: ignore[index]
    background["data"] = data
    background["modifiers"] = modifiers or []
    return ws


def _write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _bad_bytes(path: Path, head: bytes = b"") -> Path:
    path.write_bytes(head + b"\xff\xfe\x00\x81 undecodable\n")
    return path


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


def _a_file(tmp: Path) -> Path:
    return _txt(tmp / "in" / "plainfile", "not a folder")


def _fit_inputs(tmp: Path, data: str = "3 1 2 2", background: str = "10 10 10 10"
                ) -> list[str]:
    edges = "0 50 100 150 200"
    sig = _txt(tmp / "in" / "sig.txt", edges, "1 2 3 1", "0.1 0.2 0.3 0.1")
    bkg = _txt(tmp / "in" / "bkg.txt", edges, background, background.replace("-", ""))
    dat = _txt(tmp / "in" / "data.txt", edges, data, "1 1 1 1")
    return ["fit", "--signal", str(sig), "--background", str(bkg), "--data", str(dat),
            "-o", str(tmp / "out" / "fit")]


def _fit_regions(tmp: Path, *extra: str, free: str = "bkg", bkg_in: str = "CR",
                 data_cr: bool = True) -> list[str]:
    """A two-region fit (SR, CR) of the text histograms of :func:`_fit_inputs`."""
    args = _fit_inputs(tmp)
    sig, bkg, dat = args[2], args[4], args[6]
    return ["fit", "--region", "SR", "--region", "CR", "--signal", f"SR={sig}",
            "--background", f"bkg@SR={bkg}", "--background", f"bkg@{bkg_in}={bkg}",
            "--data", f"SR={dat}", *(["--data", f"CR={dat}"] if data_cr else []),
            "--free-background", free,
            *extra, "-o", str(tmp / "out" / "fit")]


def _cls(tmp: Path, doc: object) -> list[str]:
    return ["cls", str(_write_json(tmp / "in" / "ws.json", doc))]


def _grid_inputs(tmp: Path) -> tuple[Path, Path]:
    ws = _workspace()
    ws["channels"][0]["samples"] = ws["channels"][0]["samples"][1:]  # type: ignore[index]
    bkg = _write_json(tmp / "in" / "BkgOnly.json", ws)
    patch = _write_json(tmp / "in" / "patch.point_1.json", [
        {"op": "add", "path": "/channels/0/samples/0",
         "value": {"name": "signal", "data": [2.0, 3.0],
                   "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}}])
    return bkg, patch


def _catalog(tmp: Path) -> Path:
    """A catalog holding one record (imported into tmp/in)."""
    table = _txt(tmp / "in" / "xsec.txt",
                 "dataset_number/I:physics_short/C:crossSection_pb/D:genFiltEff/D:kFactor/D:"
                 "relUncertUP/D:relUncertDOWN/D:generator_name/C:etag/C",
                 "410470 PhPy8EG_ttbar 0.729 0.54383 1.1398 0.05 0.05 Powheg e6337")
    cat = tmp / "in" / "catalog.sqlite"
    res = CliRunner().invoke(main, ["xsec", "import", str(table), "--catalog", str(cat)])
    assert res.exit_code == 0, res.output
    return cat


def _unwritable_dir(tmp: Path) -> Path:
    folder = tmp / "out" / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return folder


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """One kind of bad input: build the inputs, return the argv; the message must match."""

    build: Callable[[Path], list[str]]
    message: str
    needs_non_root: bool = False
    needs: str | None = None
    stdin: bytes | None = None


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _spec(tmp: Path, text: str) -> Path:
    return _txt(tmp / "in" / "analysis.yml", text)


def _demo_spec(tmp: Path) -> Path:
    """The demo analysis copied into ``tmp/in`` (its catalog table beside it)."""
    for name in ("analysis.yml", "xsec_demo.txt"):
        (tmp / "in" / name).write_bytes((EXAMPLES / "demo" / name).read_bytes())
    return tmp / "in" / "analysis.yml"


def _run_dir(tmp: Path, manifest: bytes) -> Path:
    run = _dir(tmp / "in" / "run")
    (run / "manifest.json").write_bytes(manifest)
    return run


CASES: dict[str, Case] = {
    # --- histogram contents and scale safety (item 3)
    "scale/nan-content": Case(
        lambda t: ["scale", str(_hist_json(t / "in" / "nan.json", {"h": _weighted(
            [0, 1, 2, 3], [1, float("nan"), 3], [1, 1, 1])})), "-o", str(t / "out" / "o.json"),
            *WORKED],
        "nan.json:h: bin contents must be finite; got bin 1 [1, 2): nan"),
    "scale/inf-content": Case(
        lambda t: ["scale", str(_txt(t / "in" / "inf.txt", "0 1 2", "1 inf", "1 1")), "-o",
                   str(t / "out" / "o.txt"), *WORKED],
        "inf.txt:h: bin contents must be finite; got bin 1 [1, 2): inf"),
    "scale/negative-variance": Case(
        lambda t: ["scale", str(_txt(t / "in" / "nv.txt", "0 1 2", "1 2", "1 -2")), "-o",
                   str(t / "out" / "o.json"), *WORKED],
        "nv.txt:h: bin variances must be finite and ≥ 0; got bin 1 [1, 2): -2.0"),
    "scale/nan-variance-in-overflow": Case(
        lambda t: ["scale", str(_hist_json(t / "in" / "ovf.json", {"h_mjj_kin": _weighted(
            [0, 1, 2], [1, 2], [1, 2], flow=(5.0, float("nan")))})) + ":h_mjj_kin", "-o",
            str(t / "out" / "o.root"), *WORKED],
        "ovf.json:h_mjj_kin: bin variances must be finite and ≥ 0; got overflow: nan"),
    "scale/already-scaled": Case(
        lambda t: ["scale", str(_hist_json(t / "in" / "scaled.json", {"h": _weighted(
            [0, 1], [1], [1])}, {"normalization": {"scale": 0.922008}})), "-o",
            str(t / "out" / "again.json"), *WORKED],
        "scaled.json: already scaled (its metadata holds a normalization ledger, scale "
        "0.922008); scale the unscaled selection output, or give --force"),
    "scale/output-is-input": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(t / "in" / "h.txt"), *WORKED],
        "h.txt is the input file"),
    "scale/output-is-input-via-symlink": Case(
        lambda t: (os.symlink(_h3(t), t / "out" / "link.txt"),
                   ["scale", str(t / "in" / "h.txt"), "-o", str(t / "out" / "link.txt"),
                    *WORKED])[1],
        "link.txt is the input file"),
    "scale/output-is-input-via-relative-path": Case(
        lambda t: ["scale", str(_h3(t)), "-o",
                   os.path.relpath(t / "out" / ".." / "in" / "h.txt"), *WORKED],
        "is the input file"),
    "scale/no-histogram-json": Case(
        lambda t: ["scale", str(_write_json(t / "in" / "empty.json", {"histograms": {}})),
                   "-o", str(t / "out" / "o.json"), *WORKED],
        "empty.json: no histogram to scale"),
    "scale/no-histogram-root": Case(
        lambda t: ["scale", str(_hist_root(t / "in" / "meta_only.root", {}, "{}")), "-o",
                   str(t / "out" / "o.root"), *WORKED],
        "meta_only.root: no histogram to scale"),
    "scale/2d-histogram-to-text": Case(
        lambda t: ["scale", str(_hist_root(t / "in" / "h2.root", {
            "h2": hist.Hist.new.Reg(2, 0, 1).Reg(2, 0, 1).Weight()})) + ":h2", "-o",
            str(t / "out" / "o.txt"), *WORKED],
        "h2: the text format holds a one-dimensional histogram, this one has 2 axes"),
    "scale/histogram-name-typo": Case(
        lambda t: ["scale", str(_hist_root(t / "in" / "sel.root", {
            "h_mjj_kin": _weighted([0, 1], [1], [1])})) + ":h_mjj_kni", "-o",
            str(t / "out" / "o.root"), *WORKED],
        "no histogram named 'h_mjj_kni'; close matches: h_mjj_kin"),
    # --- input files: decoding, file system, corruption (item 4)
    "scale/undecodable-text-histogram": Case(
        lambda t: ["scale", str(_bad_bytes(t / "in" / "bad.txt")), "-o",
                   str(t / "out" / "o.json"), *WORKED],
        "bad.txt: cannot read histogram file: not UTF-8 text (undecodable byte 0xff at "
        "offset 0)"),
    "scale/undecodable-json-histogram": Case(
        lambda t: ["scale", str(_bad_bytes(t / "in" / "bad.json", b"{")), "-o",
                   str(t / "out" / "o.json"), *WORKED],
        "bad.json: cannot read histogram file: not UTF-8 text (undecodable byte 0xff at "
        "offset 1)"),
    "scale/directory-as-input": Case(
        lambda t: ["scale", str(_dir(t / "in" / "folder.json")), "-o",
                   str(t / "out" / "o.json"), *WORKED],
        "folder.json: cannot read histogram file: is a directory, not a file"),
    "scale/truncated-root-input": Case(
        lambda t: ["scale", str(_truncated(t)), "-o", str(t / "out" / "o.json"), *WORKED],
        "cut.root: "),
    "scale/not-a-root-file": Case(
        lambda t: ["scale", str(_txt(t / "in" / "fake.root", "hello")), "-o",
                   str(t / "out" / "o.json"), *WORKED],
        "fake.root: not a ROOT file"),
    "scale/corrupt-root-metadata-json": Case(
        lambda t: ["scale", str(_hist_root(t / "in" / "cm.root", {
            "h": _weighted([0, 1], [1], [1])}, "{not json")), "-o",
            str(t / "out" / "o.json"), *WORKED],
        "cm.root: recastkit_metadata is corrupt: not valid JSON"),
    "scale/corrupt-json-twin-metadata": Case(
        lambda t: ["scale", str(_hist_json(t / "in" / "twin.json", {
            "h": _weighted([0, 1], [1], [1])}, [1, 2])), "-o", str(t / "out" / "o.json"),
            *WORKED],
        "twin.json: field 'metadata' is corrupt: expected a JSON object, got list"),
    "scale/corrupt-metadata-field": Case(
        lambda t: ["scale", str(_hist_json(t / "in" / "twin.json", {
            "h": _weighted([0, 1], [1], [1])}, {"sum_of_weights": "6813,0258"})), "-o",
            str(t / "out" / "o.json"), "--xsec", "1 fb", "--lumi", "1 fb^-1"],
        "field 'sum_of_weights' must be a number or null, got \"6813,0258\""),
    "scale/non-numeric-text-histogram": Case(
        lambda t: ["scale", str(_txt(t / "in" / "nn.txt", "0 1 2", "1 two", "1 1")), "-o",
                   str(t / "out" / "o.json"), *WORKED],
        "nn.txt: non-numeric entry"),
    "scale/missing-input": Case(
        lambda t: ["scale", str(t / "in" / "nope.txt"), "-o", str(t / "out" / "o.json"),
                   *WORKED],
        "nope.txt: no such file"),
    "cls/undecodable-workspace": Case(
        lambda t: ["cls", str(_bad_bytes(t / "in" / "ws.json"))],
        "ws.json: cannot read workspace: not UTF-8 text (undecodable byte 0xff at offset 0)"),
    "cls/directory-as-workspace": Case(
        lambda t: ["cls", str(_dir(t / "in" / "ws.json"))],
        "ws.json: cannot read workspace: is a directory, not a file"),
    "cls/invalid-json": Case(
        lambda t: ["cls", str(_txt(t / "in" / "ws.json", '{"channels": ['))],
        "ws.json: workspace is not valid JSON"),
    "grid/undecodable-background": Case(
        lambda t: ["grid", *map(str, _undecodable_background(t))],
        "BkgOnly.json: cannot read background-only workspace: not UTF-8 text"),
    "grid/observations-shorter-than-channel": Case(
        lambda t: ["grid", *map(str, _short_background(t))],
        "BkgOnly.json: field 'observations[0].data' (channel 'c') has 1 counts but the "
        "channel has 2 bins"),
    "cls/undecodable-stdin": Case(
        lambda t: ["cls", "-"],
        "<stdin>: cannot read workspace: not UTF-8 text (undecodable byte 0xff at offset 0)",
        stdin=b"\xff\xfe{"),
    "cls/patch-does-not-apply": Case(
        lambda t: ["cls", str(_write_json(t / "in" / "ws.json", _workspace())), "--patch",
                   str(_write_json(t / "in" / "p.json", [
                       {"op": "replace", "path": "/channels/7/name", "value": "x"}]))],
        "p.json: the patch does not apply to the workspace"),
    "scale/sumw-from-a-directory": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(t / "out" / "o.json"), "--xsec", "1 fb",
                   "--lumi", "1 fb^-1", "--sumw-from", str(_dir(t / "in" / "files.root"))],
        "files.root: is a directory, not a ROOT file"),
    "scale/catalog-not-a-database": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(t / "out" / "o.json"), "--dataset",
                   "410470", "--sumw", "1", "--lumi", "1 fb^-1", "--catalog",
                   str(_txt(t / "in" / "c.sqlite", "not sqlite"))],
        "c.sqlite: file is not a database"),
    "fit/2d-histogram-as-signal": Case(
        lambda t: ["fit", "--signal", str(_hist_root(t / "in" / "s2.root", {
            "h2": hist.Hist.new.Reg(2, 0, 1).Reg(2, 0, 1).Weight()})), "--mock-background",
            "--toy-data", "-o", str(t / "out" / "fit")],
        "s2.root:h2: expected a one-dimensional histogram, got 2 axes"),
    "sumw/cutflow-method-without-name": Case(
        lambda t: ["sumw", str(_truncated(t)), "--method", "cutflow"],
        "--method cutflow needs --cutflow NAME"),
    "lumi/unknown-calibration": Case(
        lambda t: ["lumi", "2017", "--calibration", "Run3-final"], "Run3-final"),
    "select/undecodable-config": Case(
        lambda t: ["select", str(_txt(t / "in" / "ev.root", "x")), "-o",
                   str(t / "out" / "sel.root"), "--config",
                   str(_bad_bytes(t / "in" / "sel.yml"))],
        "sel.yml: cannot read configuration file: not UTF-8 text"),
    "select/undecodable-sample-list": Case(
        lambda t: ["select", str(_bad_bytes(t / "in" / "samples.yaml")), "-o",
                   str(t / "out" / "sel.root")],
        "samples.yaml: cannot read sample list: not UTF-8 text"),
    "select/directory-as-config": Case(
        lambda t: ["select", str(_txt(t / "in" / "ev.root", "x")), "-o",
                   str(t / "out" / "sel.root"), "--config", str(_dir(t / "in" / "cfg.yml"))],
        "Invalid value for '--config'"),
    "sumw/directory-as-input": Case(
        lambda t: ["sumw", str(_dir(t / "in" / "d.root"))],
        "d.root' is a directory"),
    "sumw/text-file-as-root": Case(
        lambda t: ["sumw", str(_txt(t / "in" / "a.root", "text"))],
        "a.root: not a ROOT file"),
    "sumw/truncated-root": Case(
        lambda t: ["sumw", str(_truncated(t))], "cut.root: "),
    "xsec-import/undecodable-table": Case(
        lambda t: ["xsec", "import", str(_bad_bytes(t / "in" / "table.txt")), "--catalog",
                   str(_catalog(t))],
        "table.txt is not UTF-8 text"),
    "xsec-show/catalog-not-a-database": Case(
        lambda t: ["xsec", "show", "410470", "--catalog",
                   str(_txt(t / "in" / "cat.sqlite", "not sqlite"))],
        "cat.sqlite: file is not a database"),
    "xsec-sources/catalog-is-a-directory": Case(
        lambda t: ["xsec", "sources", "--catalog", str(_dir(t / "in" / "cat.sqlite"))],
        "Invalid value for '--catalog'"),
    "lumi/unknown-campaign": Case(
        lambda t: ["lumi", "mc16z"], "cannot resolve luminosity 'mc16z'"),
    # --- outputs: file system (item 4)
    "scale/output-under-a-file": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(_a_file(t) / "o.json"), *WORKED],
        "plainfile is a file, not a folder"),
    "scale/output-is-a-directory": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(_dir(t / "out" / "o.json")), *WORKED],
        "Invalid value for '-o' / '--output'"),
    "scale/output-permission-denied-sys": Case(
        lambda t: ["scale", str(_h3(t)), "-o", "/sys/recastkit-test-output.json", *WORKED],
        "/sys/recastkit-test-output.json: cannot write the output: ", needs="/sys"),
    "scale/output-permission-denied": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(_unwritable_dir(t) / "o.json"), *WORKED],
        "cannot write the output: permission denied", needs_non_root=True),
    "xsec-export/disk-full": Case(
        lambda t: ["xsec", "export", "/dev/full", "--catalog", str(_catalog(t))],
        "/dev/full: cannot write the output: no space left on device (disk full)",
        needs="/dev/full"),
    "xsec-export/output-under-a-file": Case(
        lambda t: ["xsec", "export", str(_a_file(t) / "x.txt"), "--catalog",
                   str(_catalog(t))],
        "plainfile is a file, not a folder"),
    "xsec-export/permission-denied": Case(
        lambda t: ["xsec", "export", str(_unwritable_dir(t) / "x.txt"), "--catalog",
                   str(_catalog(t))],
        "permission denied", needs_non_root=True),
    "grid/output-disk-full": Case(
        lambda t: ["grid", *map(str, _grid_inputs(t)), "-o", "/dev/full"],
        "/dev/full: cannot write the grid output folder: it is a file, not a folder",
        needs="/dev/full"),
    "fit/output-under-a-file": Case(
        lambda t: [*_fit_inputs(t)[:-2], "-o", str(_a_file(t) / "fit")],
        "fit: cannot write the fit output folder: "),
    "select/output-under-a-file": Case(
        lambda t: ["select", str(_txt(t / "in" / "ev.root", "x")), "-o",
                   str(_a_file(t) / "sel.root")],
        "plainfile: cannot write the output folder: it is a file, not a folder"),
    "demo/output-under-a-file": Case(
        lambda t: ["demo", "-o", str(_a_file(t) / "demo")],
        "plainfile is a file, not a folder"),
    # --- option values: units, choices, combinations
    "scale/lumi-with-xsec-unit": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(t / "out" / "o.json"), "--sumw", "1",
                   "--xsec", "1 fb", "--lumi", "140 fb"],
        "cannot parse luminosity '140 fb'"),
    "scale/xsec-with-lumi-unit": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(t / "out" / "o.json"), "--sumw", "1",
                   "--xsec", "1 fb^-1", "--lumi", "140 fb^-1"],
        "cannot parse cross section '1 fb^-1'"),
    "scale/xsec-without-unit": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(t / "out" / "o.json"), "--sumw", "1",
                   "--xsec", "44.837", "--lumi", "140 fb^-1"],
        "has no unit"),
    "scale/unknown-output-extension": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(t / "out" / "o.csv"), *WORKED],
        "o.csv: unsupported histogram file extension '.csv'; supported: .root, .json, .txt"),
    "scale/xsec-and-xsec-fb": Case(
        lambda t: ["scale", str(_h3(t)), "-o", str(t / "out" / "o.json"), *WORKED,
                   "--xsec-fb", "44.837"],
        "give either --xsec or --xsec-fb, not both"),
    "xsec-import/unknown-format": Case(
        lambda t: ["xsec", "import", str(_h3(t)), "--format", "xml", "--catalog",
                   str(_catalog(t))],
        "Invalid value for '--format': 'xml' is not one of 'pmg'"),
    "xsec-import/undetectable-format": Case(
        lambda t: ["xsec", "import", str(_txt(t / "in" / "t.txt", "hello world")),
                   "--catalog", str(_catalog(t))],
        "give --format (one of pmg"),
    "select/unknown-executor": Case(
        lambda t: ["select", "x.root", "-o", str(t / "out" / "s.root"), "--executor", "gpu"],
        "Invalid value for '--executor'"),
    "fit/unknown-test-statistic": Case(
        lambda t: [*_fit_inputs(t), "--test-stat", "q0"], "Invalid value for '--test-stat'"),
    "fit/xsec-unc-out-of-range": Case(
        lambda t: [*_fit_inputs(t), "--xsec-unc", "1.5"], "Invalid value for --xsec-unc: expected"),
    # --- fit of several regions (issue 10 item 5)
    "fit/free-background-without-regions": Case(
        lambda t: [*_fit_inputs(t), "--free-background", "bkg"],
        "--free-background needs the fitted regions: give --region NAME"),
    "fit/region-input-without-region-prefix": Case(
        lambda t: [*_fit_regions(t)[:7], "--signal", str(t / "in" / "sig.txt"),
                   *_fit_regions(t)[9:]],
        "Invalid value for --signal: with --region, expected REGION=FILE[:HIST] with REGION "
        "one of SR, CR"),
    "fit/background-in-an-unknown-region": Case(
        lambda t: _fit_regions(t, bkg_in="VR"),
        "Invalid value for --background: with --region, expected NAME@REGION=FILE[:HIST] "
        "with REGION one of SR, CR"),
    "fit/unknown-free-background": Case(
        lambda t: _fit_regions(t, free="ttbar"),
        "Invalid value for --free-background: 'ttbar' is no background of the fit (valid "
        "choices: bkg)"),
    "fit/region-without-data": Case(
        lambda t: _fit_regions(t, data_cr=False),
        "Invalid value for --data: no data histogram for region(s) CR"),
    "fit/unknown-theory-rule": Case(
        lambda t: _fit_regions(t, "--theory", "scale=envelope:a,b"),
        "Invalid value for --theory: expected NAME=RULE:VAR[,VAR...] with RULE one of scale, "
        "pdf_hessian"),
    # --- fit and cls data (item 3)
    "fit/negative-data-hidden-by-rebin": Case(
        lambda t: [*_fit_inputs(t, data="3 -1 2 2"), "--rebin", "2"],
        "data.txt:h: observed data must be non-negative integer counts; got bin 1: -1.0"),
    "fit/non-integer-data-hidden-by-rebin": Case(
        lambda t: [*_fit_inputs(t, data="1.5 0.5 2 2"), "--rebin", "2"],
        "got bin 0: 1.5, bin 1: 0.5"),
    "fit/negative-background-hidden-by-rebin": Case(
        lambda t: [*_fit_inputs(t, background="10 -1 10 10"), "--rebin", "2"],
        "bkg.txt:h: background has negative or NaN bin contents: bin 1: -1.0"),
    "fit/data-binning-mismatch": Case(
        lambda t: [*_fit_inputs(t)[:6],
                   str(_txt(t / "in" / "d3.txt", "0 50 100 200", "1 2 3", "1 2 3")),
                   "-o", str(t / "out" / "fit")],
        "binning mismatch: "),
    "cls/observations-shorter-than-channel": Case(
        lambda t: _cls(t, _workspace([11.0])),
        "ws.json: field 'observations[0].data' (channel 'c') has 1 counts but the channel "
        "has 2 bins"),
    "cls/negative-observed-count": Case(
        lambda t: _cls(t, _workspace([11.0, -2.0])),
        "field 'observations[0].data' (channel 'c'): observed data must be non-negative "
        "integer counts; got bin 1: -2.0"),
    "cls/non-integer-observed-count": Case(
        lambda t: _cls(t, _workspace([11.5, 13.0])), "got bin 0: 11.5"),
    "cls/nan-observed-count": Case(
        lambda t: ["cls", str(_txt(t / "in" / "ws.json", json.dumps(
            _workspace([11.0, float("nan")]))))], "got bin 1: nan"),
    "cls/observation-missing-for-channel": Case(
        lambda t: _cls(t, _workspace(channel_obs="other")),
        "field 'observations' has no entry for channel 'c' (observations for: other)"),
    "cls/pyhf-schema-error": Case(
        lambda t: _cls(t, {**_workspace(), "channels": [{"name": "c", "samples": [
            {"name": "s", "data": "many", "modifiers": []}]}]}),
        "ws.json: invalid pyhf workspace at field 'channels[0].samples[0].data': 'many' is "
        "not of type 'array'"),
    "cls/nan-sample-yield": Case(
        lambda t: ["cls", str(_txt(t / "in" / "ws.json", json.dumps(_with_background(
            [10.0, float("nan")]))))],
        "ws.json: field 'channels[0].samples[1].data' (sample 'background') must be "
        "finite; got bin 1: nan"),
    "cls/negative-total-yield": Case(
        lambda t: _cls(t, _with_background([10.0, -20.0])),
        "ws.json: field 'channels[0].samples' (channel 'c'): the total nominal yield is "
        "negative; bin 1: -17"),
    "cls/modifier-shape-mismatch": Case(
        lambda t: _cls(t, _with_background([10.0, 12.0], [
            {"name": "st", "type": "staterror", "data": [1.0]}])),
        "ws.json: invalid pyhf workspace: The 'background' sample staterror modifier 'st' "
        "has data shape inconsistent with the sample"),
    "cls/workspace-not-an-object": Case(
        lambda t: _cls(t, [1, 2]), "ws.json: a pyhf workspace is a JSON object, got list"),
    # --- the preserved analysis (run, reinterpret, provenance, export) and limit
    "run/missing-spec": Case(
        lambda t: ["run", str(t / "in" / "nope.yml"), "-o", str(t / "out" / "run")],
        "nope.yml"),
    "run/credential-in-spec": Case(
        lambda t: ["run", str(_spec(t, "version: 1\nname: x\napi_token: abc\n")),
                   "-o", str(t / "out" / "run")],
        "looks like a credential"),
    "run/unknown-spec-field": Case(
        lambda t: ["run", str(_spec(t, "version: 1\nname: x\nsamples: {}\nbogus: 1\n")),
                   "-o", str(t / "out" / "run")],
        "'bogus' was unexpected"),
    "run/undecodable-spec": Case(
        lambda t: ["run", str(_bad_bytes(t / "in" / "analysis.yml")),
                   "-o", str(t / "out" / "run")],
        "analysis.yml"),
    "run/unknown-executor": Case(
        lambda t: ["run", str(_demo_spec(t)), "-o", str(t / "out" / "run"), "--executor", "gpu"],
        "Invalid value for '--executor'"),
    "reinterpret/signal-without-files": Case(
        lambda t: ["reinterpret", str(_demo_spec(t)), "--signal", "345055",
                   "-o", str(t / "out" / "run")],
        "expected DATASET_NAME=FILE"),
    "reinterpret/missing-signal-file": Case(
        lambda t: ["reinterpret", str(_demo_spec(t)), "--signal",
                   f"345055={t / 'in' / 'nope.root'}", "-o", str(t / "out" / "run")],
        "--signal.files: file"),
    "provenance/corrupt-manifest": Case(
        lambda t: ["provenance", str(_run_dir(t, b"{"))], "not a readable JSON manifest"),
    "provenance/undecodable-manifest": Case(
        lambda t: ["provenance", str(_run_dir(t, b"\xff\xfe"))], "manifest.json"),
    "export/credential-in-spec": Case(
        lambda t: ["export", "yadage", str(_spec(t, "version: 1\nname: x\npassword: y\n")),
                   str(t / "out" / "wf")],
        "looks like a credential"),
    "limit/undecodable-workspace": Case(
        lambda t: ["limit", str(_bad_bytes(t / "in" / "ws.json"))], "ws.json"),
    "limit/short-observations": Case(
        lambda t: ["limit", str(_write_json(t / "in" / "ws.json", _workspace([11.0])))],
        "ws.json"),
}


def _truncated(tmp: Path) -> Path:
    full = _hist_root(tmp / "in" / "full.root", {"h": _weighted([0, 1, 2], [1, 2], [1, 2])})
    cut = tmp / "in" / "cut.root"
    cut.write_bytes(full.read_bytes()[:600])
    full.unlink()
    return cut


def _short_background(tmp: Path) -> tuple[Path, Path]:
    bkg, patch = _grid_inputs(tmp)
    doc = json.loads(bkg.read_text())
    doc["observations"][0]["data"] = [11.0]
    return _write_json(bkg, doc), patch


def _undecodable_background(tmp: Path) -> tuple[Path, Path]:
    bkg, patch = _grid_inputs(tmp)
    return _bad_bytes(bkg), patch


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_input(kind: str, tmp_path: Path) -> None:
    case = CASES[kind]
    if case.needs_non_root and IS_ROOT:
        pytest.skip("root ignores permission bits; /sys gives the permission-denied case")
    if case.needs == "/dev/full" and not (
            Path("/dev/full").exists() and stat.S_ISCHR(os.stat("/dev/full").st_mode)):
        pytest.skip("no /dev/full character device")
    if case.needs == "/sys" and not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    args = case.build(tmp_path)
    before = _listing(tmp_path)
    result = CliRunner().invoke(main, args, input=case.stdin)
    try:
        assert result.exit_code == 2, (result.exit_code, result.output)
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: "), lines[0]
        assert case.message in lines[0], lines[0]
        assert "\\x" not in lines[0]  # never raw bytes
        if case.needs == "/sys":  # sysfs refuses new files, also to root
            assert lines[0].endswith(("permission denied", "read-only file system")), lines[0]
        assert _listing(tmp_path) == before  # nothing written, no temporary file left
    finally:
        for p in tmp_path.rglob("*"):
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o700)
    if case.needs == "/dev/full":
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode), "/dev/full was replaced"


def test_at_least_forty_kinds_run_as_root() -> None:
    """The issue asks for ≥ 40 kinds; that many must run even where root skips some."""
    assert sum(not c.needs_non_root for c in CASES.values()) >= 40
    commands = {kind.split("/")[0].split("-")[0] for kind in CASES}
    assert commands >= {"sumw", "xsec", "lumi", "scale", "select", "fit", "cls", "grid",
                        "demo", "run", "reinterpret", "provenance", "export", "limit"}
    sub = {kind.split("/")[0] for kind in CASES if kind.startswith("xsec")}
    assert sub >= {"xsec-import", "xsec-show", "xsec-export", "xsec-sources"}


def test_force_rescales_an_already_scaled_input(tmp_path: Path) -> None:
    """``--force`` scales again: values × s₂, variances × s₂², the input's ledger is kept."""
    from recastkit.io.hists import read_hists_and_metadata

    src = _hist_json(tmp_path / "scaled.json", {"h": _weighted([0, 1, 2], [2.0, 4.0],
                                                               [1.0, 3.0])},
                     {"normalization": {"scale": 0.5}})
    out = tmp_path / "again.json"
    args = ["scale", str(src), "-o", str(out), "--sumw", "10", "--xsec", "2 fb", "--lumi",
            "3 fb^-1", "--force"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    hists, meta = read_hists_and_metadata(out)
    s = 2.0 * 3.0 / 10.0
    np.testing.assert_allclose(hists["h"].values(), [2.0 * s, 4.0 * s], rtol=1e-12)
    np.testing.assert_allclose(hists["h"].variances(), [1.0 * s * s, 3.0 * s * s], rtol=1e-12)
    assert meta["input_normalization"] == {"scale": 0.5}


def test_pyhf_tracebacks_are_not_logged_by_default() -> None:
    """pyhf logs a failed fit with its traceback; the CLI shows it only with -vv."""
    import logging

    pyhf_log = logging.getLogger("pyhf")
    CliRunner().invoke(main, ["lumi", "mc16a"])
    assert not pyhf_log.propagate
    assert all(isinstance(h, logging.NullHandler) for h in pyhf_log.handlers)
    CliRunner().invoke(main, ["-vv", "lumi", "mc16a"])
    assert not any(isinstance(h, logging.NullHandler) for h in pyhf_log.handlers)
    CliRunner().invoke(main, ["lumi", "mc16a"])
