"""``recastkit provenance DIR``: where every number of a run came from (manifest.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _short(text: Any, n: int = 16) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[:n] + "…"


@click.command("provenance")
@click.argument("run_dir", metavar="DIR", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as one JSON document.")
def command(run_dir: Path, as_json: bool) -> None:
    """Show the provenance of a run: inputs, catalog records, ledgers, software, steps."""
    from recastkit.cli._common import echo_json, echo_table
    from recastkit.workflow.provenance import read_manifest

    m = read_manifest(run_dir)
    if as_json:
        echo_json(m)
        return
    a = m.get("analysis", {})
    click.echo(f"analysis {a.get('name')} (spec {a.get('spec')}, sha256 {a.get('spec_sha256')})")
    click.echo(f"command: {' '.join(m.get('command', []))}")
    click.echo(f"started {m.get('started_utc')}, finished {m.get('finished_utc')}")
    sw = m.get("software", {})
    echo_table(("software", "version"), sorted(sw.items()), title="Software")
    echo_table(("sample", "role", "file", "size", "identity"),
               [(i.get("sample"), i.get("role"), i.get("path"), i.get("size"),
                 f"sha256 {i['sha256']}" if i.get("method") == "sha256"
                 else f"size+mtime+uuid {i.get('mtime_ns')} {i.get('uuid')}")
                for i in m.get("inputs", [])], title="Input files")
    cat = m.get("catalog", {})
    if cat.get("tables"):
        echo_table(("table", "sha256"), [(t.get("path"), t.get("sha256"))
                                         for t in cat["tables"]], title="Catalog tables")
    if cat.get("records"):
        echo_table(("sample", "DSID", "e-tag", "σ", "ε", "k", "source"),
                   [(r.get("sample"), r.get("dsid"), r.get("etag"), r.get("xsec"),
                     r.get("filter_eff"), r.get("k_factor"), r.get("source"))
                    for r in cat["records"]], title="Catalog records used")
    for s in m.get("samples", []):
        ledger = s.get("ledger")
        if ledger:
            rows = [(f["name"], f"{f['value']:.10g} {f['unit']}".strip(), f["source"])
                    for f in ledger["factors"]]
            rows.append(("scale", f"{ledger['scale']:.6g}", "σ·ε·k·L / Σw"))
            echo_table(("factor", "value", "source"), rows,
                       title=f"Ledger of {s['name']} ({s['role']}, {s.get('dataset')})")
        elif s.get("source"):
            click.echo(f"{s['name']} ({s['role']}): {s['source']}")
        for note in s.get("notes", []):
            click.echo(f"  ! {note}")
    echo_table(("step", "status", "key", "seconds"),
               [(st["name"], st["status"], st["key"], f"{st['seconds']:.2f}")
                for st in m.get("steps", [])], title="Steps")
    r = m.get("results", {})
    if r:
        click.echo(f"result: observed μ < {r.get('observed_mu'):.4g} at {r.get('cl')} CL "
                   f"(signal {r.get('signal')})")
