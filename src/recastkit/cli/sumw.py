"""``recastkit sumw``: sums of generator weights of the files of one sample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from recastkit.cli._common import echo_json, echo_table

if TYPE_CHECKING:
    from recastkit.bookkeeping import SumOfWeights, SumwReport

_METHODS = ("auto", "cutbookkeepers", "runs-tree", "sumweights-tree", "cutflow", "events")


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _row_doc(sow: SumOfWeights, *, with_path: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "sum_of_weights": sow.sum_of_weights,
        "sum_of_weights_squared": sow.sum_of_weights_squared,
        "n_events": sow.n_events,
        "source": sow.source,
        "weight_index": sow.weight_index,
        "weight_name": sow.weight_name,
        "kind": sow.kind,
        "dsid": sow.dsid,
        "file_uuid": sow.file_uuid,
    }
    if with_path:
        doc["path"] = sow.path
    return doc


def report_document(report: SumwReport) -> dict[str, Any]:
    """The JSON document of a :class:`~recastkit.bookkeeping.SumwReport`."""
    doc: dict[str, Any] = {
        "files": [_row_doc(f, with_path=True) for f in report.files],
        "total": _row_doc(report.total, with_path=False),
    }
    if report.skim is not None:
        doc["skim"] = {
            "n_events_in_files": report.skim.n_events_in_files,
            "sumw_in_files": report.skim.sumw_in_files,
            "event_efficiency": report.skim.event_efficiency,
            "weight_efficiency": report.skim.weight_efficiency,
        }
    return doc


def _echo_human(report: SumwReport) -> None:
    rows: list[list[Any]] = [
        [f.path, _fmt(f.sum_of_weights), _fmt(f.sum_of_weights_squared), f.n_events]
        for f in report.files
    ]
    t = report.total
    rows.append(["TOTAL", _fmt(t.sum_of_weights), _fmt(t.sum_of_weights_squared), t.n_events])
    name = f" ({t.weight_name})" if t.weight_name else ""
    dsid = f", DSID {t.dsid}" if t.dsid is not None else ""
    title = f"Sum of generator weights, weight index {t.weight_index}{name}{dsid}"
    echo_table(["file", "Σw", "Σw²", "events"], rows, title=title)
    click.echo(f"source: {t.source}")
    if t.n_effective is not None:
        click.echo(f"effective number of events (Σw)²/Σw²: {t.n_effective!r}")
    if report.skim is not None:
        s = report.skim
        click.echo(
            f"events in files: {s.n_events_in_files}, Σw in files: {s.sumw_in_files!r}; "
            f"skim efficiency: events {_fmt(s.event_efficiency) or 'unknown'}, "
            f"Σw {_fmt(s.weight_efficiency) or 'unknown'}"
        )


@click.command(name="sumw")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--weight-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Generator weight (0 = nominal, N > 0 = variation N).")
@click.option("--from-events", is_flag=True,
              help="Sum the per-event weights stored in the files (over-normalizes a skimmed "
                   "derivation).")
@click.option("--method", type=click.Choice(_METHODS), default="auto", show_default=True,
              help="Where to read Σw from; auto = CutBookkeepers, then Runs tree, then "
                   "sumWeights tree.")
@click.option("--cutflow", default=None, metavar="NAME",
              help="Cutflow histogram to read Σw from (implies --method cutflow).")
@click.option("--cutflow-bin", default="Initial", show_default=True, metavar="LABEL",
              help="Bin label of the cutflow histogram.")
@click.option("--weight-branch", default=None, metavar="[TREE/]BRANCH",
              help="Per-event weight branch of a flat ntuple (with --from-events).")
@click.option("--compare-events", is_flag=True,
              help="Also sum the stored event weights and report the skim efficiency.")
@click.option("--allow-mixed-dsids", is_flag=True,
              help="The files are one sample although their bookkeeping names several DSIDs "
                   "(recorded in the source).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def command(files: tuple[str, ...], weight_index: int, from_events: bool, method: str,
            cutflow: str | None, cutflow_bin: str, weight_branch: str | None,
            compare_events: bool, allow_mixed_dsids: bool, as_json: bool) -> None:
    """Sums of generator weights (Σw, Σw², events) of the FILES of one sample, and their total.

    Reads the bookkeeping metadata (ATLAS CutBookkeepers, CMS Runs tree, AnalysisTop
    sumWeights tree) or, on request, a cutflow histogram or the stored event weights.
    The same file twice (by path or as a byte copy) is an error, and so are files of several
    DSIDs unless --allow-mixed-dsids says they are one sample.
    """
    from recastkit.bookkeeping import sum_of_weights_files

    if from_events:
        if method not in ("auto", "events"):
            raise click.UsageError(f"--from-events conflicts with --method {method}")
        if cutflow is not None:
            raise click.UsageError("--from-events conflicts with --cutflow")
        method = "events"
    if cutflow is not None:
        if method not in ("auto", "cutflow"):
            raise click.UsageError(f"--cutflow conflicts with --method {method}")
        method = "cutflow"
    elif method == "cutflow":
        raise click.UsageError("--method cutflow needs --cutflow NAME")
    if weight_branch is not None and method != "events":
        raise click.UsageError("--weight-branch needs --from-events (or --method events)")

    report = sum_of_weights_files(
        list(files), weight_index=weight_index, method=method, cutflow=cutflow,
        cutflow_bin=cutflow_bin, compare_events=compare_events, weight_branch=weight_branch,
        allow_mixed_dsids=allow_mixed_dsids,
    )
    if as_json:
        echo_json(report_document(report))
    else:
        _echo_human(report)
