"""``recastkit xsec``: import, show and export cross-section catalog records."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from recastkit.cli._common import echo_json, echo_table

if TYPE_CHECKING:
    from recastkit.metadata import Catalog, Conflict, XsecRecord

_FORMATS = ("pmg", "susytools", "topdataprep", "opendata", "getmetadata")

_catalog_option = click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Catalog file (default: $RECASTKIT_CATALOG or the user data folder).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _open(catalog_path: Path | None) -> Catalog:
    from recastkit.metadata import Catalog

    return Catalog(catalog_path)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.8g}"


def _record_json(r: XsecRecord) -> dict[str, Any]:
    return {
        "dsid": r.dsid,
        "etag": r.etag,
        "physics_short": r.physics_short,
        "xsec_fb": r.xsec_fb,
        "xsec": str(r.xsec),
        "filter_eff": r.filter_eff,
        "k_factor": r.k_factor,
        "effective_xsec_fb": r.effective_xsec_fb,
        "rel_unc_up": r.rel_unc_up,
        "rel_unc_down": r.rel_unc_down,
        "generator": r.generator,
        "sum_of_weights": r.sum_of_weights,
        "note": r.note,
        "negative": r.negative,
        "flags": list(r.flags),
        "source": str(r.source),
        "source_location": r.source.location,
        "source_line": r.source.line,
        "imported_at": r.source.timestamp,
    }


def _conflict_json(c: Conflict) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "message": c.message,
        "ratio": c.ratio,
        "detail": c.detail,
        "sources": [str(r.source) for r in c.records],
        "effective_xsec_fb": [r.effective_xsec_fb for r in c.records],
    }


@click.group(name="xsec")
def command() -> None:
    """Import, show and export cross-section catalog records."""


@command.command("import")
@click.argument(
    "tables", nargs=-1, required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--format", "fmt", type=click.Choice(_FORMATS), default=None,
    help="Table format (default: detected from the header).",
)
@click.option(
    "--xsec-unit", type=click.Choice(["ab", "fb", "pb", "nb"]), default=None,
    help="Override the cross-section unit of the tables (default: from the column name).",
)
@_catalog_option
@_json_option
def import_(tables: tuple[Path, ...], fmt: str | None, xsec_unit: str | None,
            catalog_path: Path | None, as_json: bool) -> None:
    """Import cross-section TABLE files (re-importing a file replaces its records).

    The tables are imported together or not at all: a bad table stores nothing.
    """
    with _open(catalog_path) as catalog:  # all tables or none
        summaries = catalog.import_tables(tables, format=fmt, xsec_unit=xsec_unit)
        path = catalog.path
    if as_json:
        echo_json({
            "catalog": str(path),
            "imports": [
                {"path": str(s.path), "format": s.format, "n_records": s.n_records,
                 "n_skipped": s.n_skipped, "n_placeholders": s.n_placeholders,
                 "n_negative": s.n_negative, "replaced": s.replaced}
                for s in summaries
            ],
        })
        return
    echo_table(
        ["table", "format", "records", "skipped", "replaced"],
        [(s.path.name, s.format, s.n_records, s.n_skipped, s.replaced) for s in summaries],
        title=f"imported into {path}",
    )
    for s in summaries:
        if s.n_placeholders:
            click.echo(f"{s.path.name}: {s.n_placeholders} placeholder row(s) with σ = 0 "
                       "skipped")
        if s.n_negative:
            click.echo(f"{s.path.name}: {s.n_negative} record(s) with a negative σ "
                       "(interference samples) imported and flagged")
        other = s.n_skipped - s.n_placeholders
        if other:
            click.echo(f"{s.path.name}: {other} other row(s) skipped (see the log for reasons)")


@command.command("show")
@click.argument("key")
@click.option("--etag", default=None, help="Only records of this e-tag (and e-tag-less ones).")
@_catalog_option
@_json_option
def show(key: str, etag: str | None, catalog_path: Path | None, as_json: bool) -> None:
    """Show every record of a DSID, dataset name or sample name, and their conflicts."""
    from recastkit.exceptions import MissingMetadataError
    from recastkit.metadata import cross_check
    from recastkit.metadata.store import check_etag

    etag = check_etag(etag)
    with _open(catalog_path) as catalog:
        records = catalog.query(key, etag=etag)
        known = catalog.etags(key) if etag is not None else []
        path = catalog.path
    if known and etag not in known:
        msg = (
            f"no cross-section record for {key!r} with e-tag {etag} (--etag) in catalog "
            f"{path}; e-tags in the catalog for it: {', '.join(known)}"
        )
        raise MissingMetadataError(msg)
    if not records:
        etag_text = f" with e-tag {etag}" if etag else ""
        msg = (
            f"no cross-section record for {key!r}{etag_text} in catalog {path}; "
            "import a table first with `recastkit xsec import TABLE`"
        )
        raise MissingMetadataError(msg)
    conflicts = cross_check(records)
    if as_json:
        echo_json({
            "key": key,
            "catalog": str(path),
            "records": [_record_json(r) for r in records],
            "conflicts": [_conflict_json(c) for c in conflicts],
        })
        return
    echo_table(
        ["key", "e-tag", "σ (fb)", "ε", "k", "σ·ε·k (fb)", "source", "flags"],
        [
            (r.key, r.etag, _fmt(r.xsec_fb), _fmt(r.filter_eff), _fmt(r.k_factor),
             _fmt(r.effective_xsec_fb), str(r.source), ", ".join(r.flags))
            for r in records
        ],
        title=f"{key}: {len(records)} record(s)",
    )
    notes = sorted({r.note for r in records if r.note})
    for note in notes:
        click.echo(f"note: {note}")
    if conflicts:
        click.echo(f"{len(conflicts)} conflict(s):")
        for c in conflicts:
            click.echo(f"  [{c.kind}] {c.message}")
    else:
        click.echo("no conflicts")


@command.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dsid", "dsids", type=int, multiple=True, help="Only these DSIDs (repeatable).")
@_catalog_option
def export(out: Path, dsids: tuple[int, ...], catalog_path: Path | None) -> None:
    """Write the catalog (or some DSIDs) to OUT as a PMG table (crossSection_pb, etag)."""
    with _open(catalog_path) as catalog:
        n = catalog.export(out, keys=dsids or None)
    click.echo(f"wrote {n} records to {out}")


@command.command("sources")
@_catalog_option
@_json_option
def sources(catalog_path: Path | None, as_json: bool) -> None:
    """List the sources in the catalog."""
    with _open(catalog_path) as catalog:
        infos = catalog.sources()
        path = catalog.path
    if as_json:
        echo_json({"catalog": str(path), "sources": infos})
        return
    echo_table(
        ["source", "kind", "format", "records", "skipped", "imported at"],
        [(s.name, s.kind, s.format, s.n_records, s.n_skipped, s.imported_at) for s in infos],
        title=f"catalog {path}",
    )
