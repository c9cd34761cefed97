"""``recastkit select``: fill weighted histograms from event files (the skimming step).

Two kinds of configuration (``--config``): the dijet selection (m_jj and n_jets, the fused
numba fast path) and an analysis with objects, regions, observables, weights and variations
(:mod:`recastkit.regions`), told apart by the presence of ``regions``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from recastkit.cli._common import echo_json, echo_table

#: Layout choices (kept here so ``--help`` does not import uproot).
_LAYOUTS = ("auto", "physlite", "physlite_rntuple", "nanoaod", "flat", "flat_cartesian")
_EXECUTORS = ("iterative", "processes", "dask")
_DECODERS = ("auto", "zlib", "deflate", "isal")


def _summary(result: Any, root_path: Path, json_path: Path, sample: str | None) -> dict[str, Any]:
    meta = result.metadata()
    out = {
        "sample": sample,
        "output": str(root_path),
        "output_json": str(json_path),
        "dataset": result.dataset,
        "dsid": result.dsid,
        "layout": result.layout,
        "executor": result.executor,
        "n_events_processed": result.n_events,
        "cutflow": meta["cutflow"],
        "sum_of_weights": meta["sum_of_weights"],
        "sum_of_weights_squared": meta["sum_of_weights_squared"],
        "sum_of_weights_source": meta["sum_of_weights_source"],
        "sum_of_weights_error": meta["sum_of_weights_error"],
        "files": meta["files"],
        "skipped_files": meta["skipped_files"],
    }
    for key in ("cutflows", "variations", "hooks", "reading"):
        if key in meta:
            out[key] = meta[key]
    return out


def _print_human(summary: dict[str, Any]) -> None:
    of = f" of sample {summary['sample']}" if summary["sample"] else ""
    flows = summary.get("cutflows") or {"": summary["cutflow"]}
    for region, cutflow in flows.items():
        title = "Cutflow" + (f" of region {region}" if region else "") + of
        rows = [(c["name"], c["n_events"], f"{c['sum_of_weights']:.10g}",
                 f"{c['sum_of_weights_squared']:.10g}") for c in cutflow]
        echo_table(["cut", "events", "Σw", "Σw²"], rows, title=title)
    if summary["sum_of_weights"] is not None:
        click.echo(f"bookkeeping sum of weights: {summary['sum_of_weights']:.17g} "
                   f"({summary['sum_of_weights_source']})")
    else:
        click.echo(f"bookkeeping sum of weights: unavailable ({summary['sum_of_weights_error']})")
    if summary["skipped_files"]:
        echo_table(["skipped file", "reason"],
                   [(s["path"], s["reason"]) for s in summary["skipped_files"]],
                   title=f"{len(summary['skipped_files'])} file(s) skipped")
    click.echo(f"wrote {summary['output']}")
    click.echo(f"wrote {summary['output_json']}")


@click.command(name="select")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output ROOT file (a JSON twin with the same stem is written beside it).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Selection YAML (schema selection.json); default: >=2 jets, no cuts.")
@click.option("--layout", type=click.Choice(_LAYOUTS), default=None,
              help="Event layout; default: the config's, else detected per file.")
@click.option("--executor", type=click.Choice(_EXECUTORS), default=None,
              help="Executor (default: processes, or dask when --scheduler is given).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores).")
@click.option("--scheduler", default=None,
              help="Dask scheduler address tcp://HOST:PORT, or 'local' for a LocalCluster.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=200_000, show_default=True,
              help="Events read per chunk.")
@click.option("--dataset", default=None, help="Dataset name recorded in the output metadata.")
@click.option("--skip-bad-files", is_flag=True,
              help="Skip unreadable files or files missing a tree/branch, and list them.")
@click.option("--decoder", type=click.Choice(_DECODERS), default=None,
              help="zlib decoder (default: the config's reading.decoder, else auto: deflate, "
                   "else isal, else zlib).")
@click.option("--decompression-threads", type=click.IntRange(min=0), default=None,
              help="Basket decompression threads per process (0: one per core; 1: none). "
                   "Default: the config's reading.decompression_threads, else 0.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def command(inputs: tuple[str, ...], output: Path, config_path: Path | None, layout: str | None,
            executor: str | None, workers: int | None, scheduler: str | None, chunk_size: int,
            dataset: str | None, skip_bad_files: bool, decoder: str | None,
            decompression_threads: int | None, as_json: bool) -> None:
    """Fill histograms from INPUT files, globs or a sample list.

    Without --config, or with a dijet config: h_mjj and h_njets (raw and after cuts). With an
    analysis config (regions): one histogram per region and observable (ROOT directories
    region/observable) and a cutflow per region, all in one pass.

    A sample list is a YAML file mapping sample names to {files: [...], dataset: NAME}; with
    several samples one output per sample is written, OUT.<sample>.root.
    """
    from recastkit.io.decoding import ReadOptions
    from recastkit.io.events import Sample, is_sample_list, read_sample_list
    from recastkit.processing import run_selection, write_selection
    from recastkit.regions import load_selection_config
    from recastkit.selection import SelectionConfig

    if output.suffix.lower() != ".root":
        raise click.BadParameter(f"{output} must end in .root", param_hint="-o/--output")
    from recastkit._files import check_output_dir

    check_output_dir(output.parent, "output folder")
    if executor is None:
        executor = "dask" if scheduler else "processes"
    elif scheduler and executor != "dask":
        raise click.UsageError(f"--scheduler needs --executor dask, got --executor {executor}")
    config = load_selection_config(config_path) if config_path else SelectionConfig()
    if layout is not None:
        config = config.with_layout(layout)
    reading = ReadOptions(
        decoder if decoder is not None else config.reading.decoder,
        decompression_threads if decompression_threads is not None
        else config.reading.decompression_threads)

    lists = [i for i in inputs if is_sample_list(i)]
    if lists and len(inputs) > 1:
        raise click.UsageError("give either one sample-list YAML or event files/globs, not both")
    if lists:
        samples = read_sample_list(lists[0])
        if dataset is not None and len(samples) > 1:
            raise click.UsageError("--dataset applies to one sample; the sample list has "
                                   f"{len(samples)} (set 'dataset' per sample in the YAML)")
    else:
        samples = [Sample("", tuple(Path(i) for i in inputs), None)]

    summaries = []
    for sample in samples:
        out = output if len(samples) == 1 else output.with_name(
            f"{output.stem}.{sample.name}{output.suffix}")
        result = run_selection(
            list(sample.files), config, executor=executor, workers=workers,
            scheduler=scheduler, chunk_size=chunk_size, dataset=dataset or sample.dataset,
            skip_bad_files=skip_bad_files,
            read_options=None if reading == config.reading else reading,
        )
        root_path, json_path = write_selection(result, out)
        summaries.append(_summary(result, root_path, json_path, sample.name or None))

    if as_json:
        if len(summaries) == 1:
            echo_json(summaries[0])
        else:
            echo_json({"samples": {s["sample"]: s for s in summaries}})
        return
    for summary in summaries:
        _print_human(summary)
