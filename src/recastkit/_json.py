"""The one JSON style of recastkit outputs: dataclasses flattened, sorted keys, indent 4."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Turn dataclasses, mappings, tuples, paths and numpy values into JSON-ready values.

    Non-finite floats become ``None`` (JSON has no NaN or infinity).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any) -> str:
    """JSON text: sorted keys, indent 4, no NaN (no trailing newline)."""
    return json.dumps(to_jsonable(obj), indent=4, sort_keys=True, allow_nan=False)
