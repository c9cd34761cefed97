"""YAML configuration: load, validate against a packaged JSON schema, report errors by path.

Each consumer (selection, workflow) owns a schema in ``recastkit/schemas/`` and turns the
validated mapping into frozen dataclasses. Validation errors carry the JSON path of the bad
field, the bad value and, where the schema has an ``enum``, the valid choices.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from recastkit._files import read_text
from recastkit.exceptions import ConfigError


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the packaged JSON schema ``recastkit/schemas/<name>.json``."""
    text = resources.files("recastkit.schemas").joinpath(f"{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _json_path(error: jsonschema.ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate(data: Any, schema_name: str, source: str = "<config>") -> dict[str, Any]:
    """Validate ``data`` against the named schema.

    Args:
        data: The parsed document.
        schema_name: Schema file stem in ``recastkit/schemas``.
        source: File name used in error messages.

    Returns:
        ``data`` unchanged, typed as a mapping.

    Raises:
        ConfigError: Naming the file, the JSON path, the bad value and the valid choices.
    """
    schema = load_schema(schema_name)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors) or errors[0]
        msg = f"{source}: invalid configuration at {_json_path(err)}: {err.message}"
        enum = err.schema.get("enum") if isinstance(err.schema, dict) else None
        if enum:
            msg += f" (valid choices: {', '.join(map(str, enum))})"
        raise ConfigError(msg)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a configuration must be a mapping, got {type(data).__name__}")
    return data


def load_yaml(path: str | Path, schema_name: str) -> dict[str, Any]:
    """Read a YAML file and validate it against the named schema.

    Raises:
        ConfigError: If the file is missing, is not valid YAML, or fails validation.
    """
    path = Path(path)
    text = read_text(path, "configuration file", ConfigError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return validate({} if data is None else data, schema_name, source=str(path))
