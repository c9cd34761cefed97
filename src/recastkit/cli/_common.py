"""Helpers shared by the CLI commands: JSON output, table output, parameter types."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from recastkit._json import dumps, to_jsonable

__all__ = ["dumps", "echo_json", "echo_table", "progress_reporter", "to_jsonable"]


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
