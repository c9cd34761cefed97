"""Helpers shared by the CLI commands: JSON output, table output, parameter types."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click


def to_jsonable(obj: Any) -> Any:
    """Turn dataclasses, paths, numpy scalars/arrays and tuples into JSON-ready values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(doc: Any) -> str:
    """The one JSON style of the CLI: sorted keys, indent 4."""
    return json.dumps(to_jsonable(doc), indent=4, sort_keys=True)


def echo_json(doc: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(dumps(doc))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
               ) -> None:
    """Print a readable table on stdout (rich, no colours when piped)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=None if title is None else escape(title), title_justify="left")
    for h in headers:
        table.add_column(escape(h), overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else escape(str(v)) for v in row))
    Console(soft_wrap=False, width=max(100, len(headers) * 16)).print(table)


@contextlib.contextmanager
def progress_reporter(description: str, every: int = 10) -> Iterator[Callable[[int, str], None]]:
    """Yield a ``(count, label)`` callback showing progress of open-ended work.

    On a terminal: a rich spinner with the count and the current step. Otherwise (CI, logs,
    pipes): an INFO log line every ``every`` steps, so nothing floods the output.
    """
    if sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (SpinnerColumn(), TextColumn("{task.description}"),
                   TextColumn("{task.completed} done · {task.fields[label]}"),
                   TimeElapsedColumn())
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task(description, total=None, label="")

            def update(count: int, label: str) -> None:
                bar.update(task, completed=count, label=label)

            yield update
        return
    log = logging.getLogger("recastkit.cli")

    def log_update(count: int, label: str) -> None:
        if count % every == 0:
            log.info("%s: %d done (%s)", description, count, label)

    yield log_update
