"""``recastkit export``: hand an analysis spec to the field's workflow engines."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="export")
def command() -> None:
    """Export an analysis spec to a workflow engine (yadage on REANA, recast-atlas)."""


@command.command("yadage")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--image", default=None,
              help="Container image of the steps (default: recastkit/recastkit).")
@click.option("--tag", default=None, help="Image tag (default: the recastkit version).")
@click.option("--copy-inputs", is_flag=True,
              help="Copy the event files into DIRECTORY/inputs so that it is self-contained "
                   "(REANA uploads only files inside it).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def yadage(spec: Path, directory: Path, image: str | None, tag: str | None, copy_inputs: bool,
           as_json: bool) -> None:
    """Write SPEC as a yadage workflow into DIRECTORY.

    DIRECTORY gets workflow.yml + steps.yml (each step calls a recastkit command), inputs.yml
    (the init parameters: the signal's dataset name and files are parameters, so the same
    workflow re-runs on a new signal), inputs/ (region selections, cross-section tables,
    generated events), reana.yaml and a recast-atlas catalogue entry recast.yml.

    \b
    Run it with yadage (docker), or on REANA from DIRECTORY:
      yadage-run work workflow.yml inputs.yml -t DIRECTORY -d initdir=$PWD/DIRECTORY
      reana-client run -w my-analysis
    """
    from recastkit.cli._common import echo_json
    from recastkit.workflow.export import DEFAULT_IMAGE, export_yadage

    result = export_yadage(spec, directory, image=image or DEFAULT_IMAGE, tag=tag,
                           copy_inputs=copy_inputs)
    if as_json:
        echo_json({"directory": str(result.directory), "files": [str(f) for f in result.files],
                   "stages": list(result.stages), "parameters": dict(result.parameters),
                   "results": list(result.results), "notes": list(result.notes)})
        return
    click.echo(f"wrote the yadage workflow of {spec} to {directory}: {len(result.stages)} "
               f"stages ({', '.join(result.stages)})")
    for f in result.files:
        click.echo(f"  {f}")
    click.echo("results of a run: " + ", ".join(result.results))
    for note in result.notes:
        click.echo(f"note: {note}")
