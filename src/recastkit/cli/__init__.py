"""The ``recastkit`` command line: a thin click layer over the library.

Subcommands live in their own modules and are imported only when invoked, so ``--help`` is
instant. Library errors (:class:`recastkit.exceptions.RecastkitError`) become one line on
stderr and exit code 2, never a traceback; Ctrl-C becomes one line ("Interrupted: ...") and
exit code 130 (128 + SIGINT). Nothing in the library imports this package.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
from typing import Any

import click

from recastkit import __version__

#: Exit code after Ctrl-C: 128 + SIGINT, the shell convention.
EXIT_INTERRUPTED = 130

#: Subcommand name -> "module:attribute" (imported lazily).
COMMANDS: dict[str, tuple[str, str]] = {
    "sumw": ("recastkit.cli.sumw", "Sums of generator weights from bookkeeping metadata."),
    "xsec": ("recastkit.cli.xsec", "Import, show and export cross-section catalog records."),
    "lumi": ("recastkit.cli.lumi", "Integrated luminosity of a campaign, data years or dataset."),
    "scale": ("recastkit.cli.scale", "Normalize a histogram to σ × ε × k × L / Σw."),
    "select": ("recastkit.cli.select", "Fill weighted histograms from events (skimming step)."),
    "fit": ("recastkit.cli.fit", "CLs scan and upper limits for a scaled signal."),
    "cls": ("recastkit.cli.cls", "CLs of any pyhf workspace at a signal strength."),
    "limit": ("recastkit.cli.limit", "Upper limits on μ of any pyhf workspace (root finding)."),
    "grid": ("recastkit.cli.grid", "CLs over the signal points of a published likelihood."),
    "demo": ("recastkit.cli.demo", "Run the whole chain on generated example data."),
    "export": ("recastkit.cli.export",
               "Export an analysis spec to yadage/REANA and recast-atlas."),
    "run": ("recastkit.cli.run", "Run an analysis spec (select → scale → fit), cached by step."),
    "reinterpret": ("recastkit.cli.reinterpret",
                    "Re-run an analysis spec with new signal samples."),
    "provenance": ("recastkit.cli.provenance", "Show where every number of a run came from."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[cmd_name][0])
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; every bad input ends as one ``Error: ...`` line and exit 2.

        Library errors carry their own message. Usage errors (bad option values) are
        flattened to one line. A stray ``OSError`` or ``UnicodeDecodeError`` (a backstop:
        readers and writers name the file themselves) becomes one line with the file name.
        """
        from recastkit.exceptions import RecastkitError

        try:
            return super().invoke(ctx)
        except RecastkitError as exc:
            _fail(ctx, str(exc))
        except KeyboardInterrupt:
            # Ctrl-C: the library has already stopped its workers and removed its temporary
            # files on the way up; one line and the shell's convention 128 + SIGINT.
            click.echo("Interrupted: stopped by Ctrl-C (SIGINT); outputs not finished were "
                       "not written", err=True)
            # Exit promptly: the interpreter's final garbage collections over the large heap
            # of numba/awkward objects take ~1 s (more on a loaded machine); nothing needs them.
            gc.freeze()
            ctx.exit(EXIT_INTERRUPTED)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
            _fail(ctx, exc.format_message() + hint)
        except UnicodeDecodeError as exc:
            from recastkit._files import decode_error_reason

            _fail(ctx, f"cannot read the input: {decode_error_reason(exc)}")
        except OSError as exc:
            import errno

            if exc.errno == errno.EPIPE:  # stdout closed early (| head): click handles it
                raise
            from recastkit._files import os_error_reason

            where = f"{exc.filename}: " if exc.filename is not None else "file access failed: "
            _fail(ctx, where + os_error_reason(exc))


def _fail(ctx: click.Context, message: str) -> None:
    """Print ``Error: message`` as one line on stderr and exit with code 2."""
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    ctx.exit(2)


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    if quiet:
        level = logging.ERROR
    from rich.logging import RichHandler

    handler = RichHandler(
        console=None, show_time=False, show_path=False, markup=False, rich_tracebacks=False
    )
    if not sys.stderr.isatty():
        handler = logging.StreamHandler()  # type: ignore[assignment]
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("recastkit")
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pyhf logs failed fits with their traceback; recastkit reports them in one line, so
    # pyhf's own records are shown only with -vv.
    pyhf_log = logging.getLogger("pyhf")
    pyhf_log.handlers[:] = [handler] if verbose >= 2 else [logging.NullHandler()]
    pyhf_log.propagate = False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="recastkit")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
def main(verbose: int, quiet: bool) -> None:
    """recastkit: from a Monte Carlo signal sample to a cross-section limit."""
    _configure_logging(verbose, quiet)
