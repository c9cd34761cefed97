"""The analysis spec: schema, semantic checks, paths, and no credentials ever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.exceptions import ConfigError
from recastkit.workflow.spec import load_spec, looks_like_credential

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _edit(path: Path, change: Any) -> Path:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_demo_example_loads() -> None:
    spec = load_spec(EXAMPLES / "demo" / "analysis.yml")
    assert spec.version == 1
    assert spec.samples.signal.dataset.split(".")[1] == "345055"
    assert spec.samples.signal.generate is not None
    assert spec.samples.signal.generate.sum_of_weights == 6813.0258
    assert [b.kind for b in spec.samples.backgrounds] == ["mock"]
    assert spec.samples.data.kind == "toy"
    assert spec.normalization.catalogs == (EXAMPLES / "demo" / "xsec_demo.txt",)
    assert spec.normalization.lumi is not None
    assert spec.normalization.lumi.ifb == 140.1
    assert spec.interpretation.regions == ("SR", "CR")
    assert spec.interpretation.free_backgrounds == ("mock",)
    assert [r.selection.mjj_bins for r in spec.regions] == [20, 65]


def test_relative_paths_resolve_against_the_spec(tiny: Any, tmp_path: Path) -> None:
    path = _edit(tiny.write_spec(tmp_path / "a"), lambda d: d["samples"]["backgrounds"][0].update(
        {"files": ["data/bkg_*.root"], "generate": None}) or
        d["samples"]["backgrounds"][0].pop("generate"))
    spec = load_spec(path)
    assert spec.samples.backgrounds[0].files == (str(tmp_path / "a" / "data" / "bkg_*.root"),)
    assert spec.normalization.catalogs == (tmp_path / "a" / "xsec.txt",)


def test_environment_variables_expand_and_unset_ones_are_named(
        tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _edit(tiny.write_spec(tmp_path), lambda d: d["normalization"].update(
        {"catalogs": ["${RK_TEST_TABLES}/x.txt"]}))
    monkeypatch.setenv("RK_TEST_TABLES", "/somewhere")
    assert load_spec(path).normalization.catalogs == (Path("/somewhere/x.txt"),)
    monkeypatch.delenv("RK_TEST_TABLES")
    with pytest.raises(ConfigError, match=r"\$\.normalization\.catalogs\[0\].*RK_TEST_TABLES"):
        load_spec(path)


@pytest.mark.parametrize("where", [
    ("samples", "signal", "password"),
    ("normalization", "overrides", "sig", "apiKey"),
    ("regions", 0, "selection", "input", "GRID_TOKEN"),
    ("outputs", "Secret"),
    ("interpretation", "private-key"),
    ("x_credentials",),
])
def test_credential_like_fields_are_rejected(tiny: Any, tmp_path: Path,
                                             where: tuple[Any, ...]) -> None:
    def put(doc: Any) -> None:
        node = doc
        for part in where[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
        node[where[-1]] = "hunter2"

    path = _edit(tiny.write_spec(tmp_path), put)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    text = str(err.value)
    assert where[-1] in text
    assert "credentials never go in an analysis spec" in text
    assert "hunter2" not in text
    res = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "credential" in res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("key", "expected"), [
    ("password", True), ("PASSWD", True), ("token", True), ("accessToken", True),
    ("aws_secret_access_key", True), ("key", True), ("api_key", True), ("apikey", True),
    ("credential", True), ("k_factor", False), ("xsec_source", False), ("keep", False),
    ("monkey", False), ("name", False), ("sumw", False),
])
def test_looks_like_credential(key: str, expected: bool) -> None:
    assert looks_like_credential(key) is expected


@pytest.mark.parametrize(("change", "pattern"), [
    (lambda d: d.update(version=2), r"\$\.version.*valid choices: 1"),
    (lambda d: d["interpretation"].update(backend="torch"),
     r"\$\.interpretation\.backend.*valid choices: numpy, jax"),
    (lambda d: d["interpretation"].update(regions=["CR"]),
     r"\$\.interpretation\.regions\[0\].*'CR'.*valid choices: SR"),
    (lambda d: d["interpretation"].update(observable="h_met"),
     r"\$\.interpretation\.observable.*h_met.*h_mjj_kin"),
    (lambda d: d["regions"][0]["selection"]["jets"].update(min_jets=1),
     r"\$\.regions\[0\]\.selection.*min_jets"),
    (lambda d: d["normalization"]["overrides"].update(nosuch={"k_factor": 1.1}),
     r"overrides\.nosuch.*no sample named 'nosuch'"),
    (lambda d: d["samples"]["backgrounds"][1].update(name="sig"), r"used twice: sig"),
    (lambda d: d["normalization"]["overrides"]["dijet"].update(xsec="2"),
     r"overrides\.dijet\.xsec.*no unit"),
    (lambda d: d.update(extra=1), r"Additional properties"),
    (lambda d: d["samples"]["data"].update(files=["d.root"]),
     r"\$\.samples\.data: give exactly one of files .* and toy"),
    (lambda d: d["samples"]["signal"].update(files=["s.root"]),
     r"\$\.samples\.signal: give exactly one of files .* and generate"),
    (lambda d: d["samples"]["backgrounds"][1].update(files=["b.root"]),
     r"\$\.samples\.backgrounds\[1\]: the mock background takes no files"),
    (lambda d: d["samples"]["backgrounds"][0].pop("dataset"),
     r"\$\.samples\.backgrounds\[0\]: an MC sample needs a dataset"),
    (lambda d: d["samples"]["backgrounds"][0].update(filez=["b.root"]),
     r"\$\.samples\.backgrounds\[0\].*'filez' was unexpected"),
])
def test_bad_specs_name_the_field(tiny: Any, tmp_path: Path, change: Any, pattern: str) -> None:
    path = _edit(tiny.write_spec(tmp_path), change)
    with pytest.raises(ConfigError, match=pattern) as err:
        load_spec(path)
    assert str(path) in str(err.value)


def test_interpretation_free_backgrounds_and_theory_are_checked(tiny: Any, tmp_path: Path
                                                                ) -> None:
    from recastkit.exceptions import ConfigError

    path = _edit(tiny.write_spec(tmp_path / "a"), lambda d: d["interpretation"].update(
        {"free_backgrounds": ["nope"]}))
    with pytest.raises(ConfigError, match=r"free_backgrounds\[0\]: no background 'nope'"):
        load_spec(path)
    path = _edit(tiny.write_spec(tmp_path / "b"), lambda d: d["interpretation"].update(
        {"theory": {"uncertainties": [{"name": "s", "rule": "envelope",
                                       "variations": ["a"]}]}}))
    with pytest.raises(ConfigError, match="rule"):
        load_spec(path)
