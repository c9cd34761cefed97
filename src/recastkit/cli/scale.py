"""``recastkit scale``: normalize histograms to σ × ε × k × L / Σw and print the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _xsec(value: str | None, value_fb: float | None) -> Any:
    from recastkit.units import CrossSection, parse_xsec

    if value is not None and value_fb is not None:
        raise click.UsageError("give either --xsec or --xsec-fb, not both")
    if value_fb is not None:
        return CrossSection.from_fb(value_fb)
    return None if value is None else parse_xsec(value)


def _lumi(value: str | None, value_ifb: float | None) -> Any:
    from recastkit.units import Luminosity, parse_lumi

    if value is not None and value_ifb is not None:
        raise click.UsageError("give either --lumi or --lumi-ifb, not both")
    if value_ifb is not None:
        return Luminosity.from_ifb(value_ifb)
    return None if value is None else parse_lumi(value)


@click.command("scale")
@click.argument("input_spec", metavar="INPUT[:HIST]")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file; the format follows the extension (.root, .json, .txt).")
@click.option("--dataset", help="Dataset name or DSID for the catalog and the campaign's L.")
@click.option("--etag", help="Evgen tag selecting the catalog row (if the DSID has several).")
@click.option("--sumw", type=float, help="Sum of generator weights of the un-skimmed sample.")
@click.option("--sumw-from", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Read Σw from these files' bookkeeping metadata (repeatable).")
@click.option("--allow-mixed-dsids", is_flag=True,
              help="The --sumw-from files are one sample although they name several DSIDs "
                   "(recorded in the ledger).")
@click.option("--xsec", "xsec_text",
              help="Cross section with unit, e.g. '44.837 fb'; ε and k are then 1 unless "
                   "--filter-eff/--k-factor are given.")
@click.option("--xsec-fb", type=float, help="Cross section in fb (bare number).")
@click.option("--xsec-source", help="Use only catalog records from this source file.")
@click.option("--filter-eff", type=float, help="Generator filter efficiency.")
@click.option("--k-factor", type=float, help="k-factor.")
@click.option("--lumi", "lumi_text", help="Integrated luminosity with unit, e.g. '140.1 fb^-1'.")
@click.option("--lumi-ifb", type=float, help="Integrated luminosity in fb^-1 (bare number).")
@click.option("--lumi-unc", type=float, help="Relative luminosity uncertainty (0.0083).")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path),
              help="Catalog database (default: $RECASTKIT_CATALOG or the user data dir).")
@click.option("--force", is_flag=True,
              help="Scale an input that is already scaled (its ledger is kept in the output).")
@click.option("--json", "as_json", is_flag=True, help="Print the ledger as one JSON document.")
def command(
    input_spec: str, output: Path, dataset: str | None, etag: str | None, sumw: float | None,
    sumw_from: tuple[Path, ...], allow_mixed_dsids: bool, xsec_text: str | None,
    xsec_fb: float | None,
    xsec_source: str | None, filter_eff: float | None, k_factor: float | None,
    lumi_text: str | None, lumi_ifb: float | None, lumi_unc: float | None,
    catalog: Path | None, force: bool, as_json: bool,
) -> None:
    """Scale the histograms of INPUT (a selection output, or any ROOT/JSON/text histogram).

    Every factor of σ × ε × k × L / Σw is resolved (user value, catalog, campaign,
    bookkeeping) and printed with its source. Factors of different sources are never
    combined silently: a σ given by hand takes ε = k = 1 unless --filter-eff/--k-factor are
    given too (see README, "Normalization rule").

    \b
    Example (the worked example, scale 0.922008):
      recastkit scale hist.txt -o scaled.txt --sumw 6813.0258 \\
          --xsec '44.837 fb' --lumi '140.1 fb^-1'
    """
    from recastkit.cli._common import echo_json, echo_table
    from recastkit.workflow import NormalizationRequest, scale_file

    if sumw is not None and sumw_from:
        raise click.UsageError("give either --sumw or --sumw-from, not both")
    req = NormalizationRequest(
        dataset=dataset, etag=etag, xsec=_xsec(xsec_text, xsec_fb), filter_eff=filter_eff,
        k_factor=k_factor, lumi=_lumi(lumi_text, lumi_ifb), lumi_rel_unc=lumi_unc,
        sum_of_weights=sumw, sumw_files=tuple(sumw_from), catalog_path=catalog,
        xsec_source=xsec_source, allow_mixed_dsids=allow_mixed_dsids,
    )
    result = scale_file(input_spec, output, req, force=force)
    ledger = result.ledger
    if as_json:
        doc = ledger.to_dict()
        doc["output"] = str(result.output)
        doc["histograms"] = list(result.histograms)
        doc["yields"] = dict(result.yields)
        echo_json(doc)
        return
    rows = []
    for f in ledger.factors:
        op = "÷" if f.role == "denominator" else "×"
        rows.append((op, f.name, f"{f.value:.10g}", f.unit, f.source))
    rows.append(("=", "scale", f"{ledger.scale:.6g}", "", "σ·ε·k·L / Σw"))
    rows.append(("", "expected yield", f"{ledger.expected_yield:.6g}", "events", "σ·ε·k·L"))
    echo_table(["", "factor", "value", "unit", "source"], rows,
               title=f"Normalization of {ledger.dataset or input_spec}")
    for note in ledger.notes:
        click.echo(f"note: {note}")
    for name in result.histograms:
        click.echo(f"{name}: {result.yields[name]:.6g} expected events in range")
    click.echo(f"wrote {result.output}")
