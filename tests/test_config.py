"""Config loading: schema validation errors carry a JSON path, the value and the choices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recastkit import config
from recastkit.exceptions import ConfigError

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "executor": {"enum": ["iterative", "processes", "dask"]},
        "jets": {"type": "object", "properties": {"pt_min_gev": {"type": "number", "minimum": 0}}},
    },
}


@pytest.fixture
def schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "load_schema", lambda name: SCHEMA)


@pytest.mark.usefixtures("schema")
def test_error_path_and_choices(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("executor: threads\n")
    with pytest.raises(ConfigError) as info:
        config.load_yaml(path, "x")
    msg = str(info.value)
    assert str(path) in msg
    assert "$.executor" in msg
    assert "valid choices: iterative, processes, dask" in msg


@pytest.mark.usefixtures("schema")
def test_nested_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("jets:\n  pt_min_gev: -5\n")
    with pytest.raises(ConfigError, match=r"\$\.jets\.pt_min_gev: -5 is less than the minimum"):
        config.load_yaml(path, "x")


@pytest.mark.usefixtures("schema")
def test_valid_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("executor: dask\njets: {pt_min_gev: 25}\n")
    assert config.load_yaml(path, "x") == {"executor": "dask", "jets": {"pt_min_gev": 25}}
    empty = tmp_path / "e.yml"
    empty.write_text("")
    assert config.load_yaml(empty, "x") == {}


def test_unreadable_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config.load_yaml(tmp_path / "missing.yml", "x")
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load_yaml(bad, "x")


def test_packaged_schemas_are_valid_json() -> None:
    from importlib import resources

    for entry in resources.files("recastkit.schemas").iterdir():
        if entry.name.endswith(".json"):
            schema = json.loads(entry.read_text("utf-8"))
            assert schema.get("additionalProperties") is False, entry.name
