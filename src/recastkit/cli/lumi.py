"""``recastkit lumi``: integrated luminosity of a campaign, data years or a dataset."""

from __future__ import annotations

import re

import click

# A number followed by a unit, e.g. "140.1 fb^-1" (but not a list of years "2015 2016").
_VALUE_RE = re.compile(r"^\s*[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*[^0-9\s,+].*$")


@click.command(name="lumi")
@click.argument("spec", nargs=-1, required=True, metavar="CAMPAIGN|YEAR...|DATASET|VALUE")
@click.option(
    "--calibration",
    default=None,
    metavar="NAME",
    help="Luminosity calibration (Run2-final, Run2-2019); default: Run2-final for Run 2 years.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def command(spec: tuple[str, ...], calibration: str | None, as_json: bool) -> None:
    """Integrated luminosity of an MC campaign, data years, a dataset name or a user value.

    \b
    Examples:
      recastkit lumi mc16a
      recastkit lumi 2015 2016 2017 2018
      recastkit lumi run2 --calibration Run2-2019
      recastkit lumi mc16_13TeV.410470.PhPy8EG_A14_ttbar_hdamp258p75_nonallhad.deriv.\
DAOD_PHYS.e6337_s3126_r10724_p4512   (one argument)
      recastkit lumi 140.1 fb^-1      (a user value wins)
    """
    from recastkit.cli._common import echo_json, echo_table
    from recastkit.lumi import LumiRecord, lumi_for_years, resolve_lumi

    record: LumiRecord
    joined = " ".join(spec)
    if len(spec) == 1 or _VALUE_RE.match(joined):
        # One argument, or a value whose unit the shell split off ("140.1 fb^-1").
        record = resolve_lumi(joined, calibration)
    else:
        # Several arguments (years, campaigns, datasets): the union of their data years.
        years: set[int] = set()
        for item in spec:
            part = resolve_lumi(item, calibration)
            if not part.years:
                msg = (
                    f"{item!r} is a user value; a user luminosity cannot be combined with "
                    "other arguments"
                )
                raise click.BadParameter(msg, param_hint="SPEC")
            years.update(part.years)
        record = lumi_for_years(years, calibration)

    if as_json:
        echo_json({
            "lumi_ifb": record.lumi_ifb,
            "years": list(record.years),
            "calibration": record.calibration,
            "rel_unc": record.rel_unc,
            "source": record.source,
        })
        return

    def unc(lumi_ifb: float) -> str:
        return "" if record.rel_unc is None else f"{record.rel_unc * lumi_ifb:.5g}"

    from recastkit.lumi import lumi_for_years

    calib = None if "+" in record.calibration else record.calibration

    def year_unc(year: int, lumi_ifb: float) -> str:
        rel_unc = lumi_for_years([year], calib).rel_unc  # that year's own uncertainty
        return "" if rel_unc is None else f"{rel_unc * lumi_ifb:.5g}"

    rows: list[tuple[str, str, str]] = [
        (str(year), f"{lumi.ifb:.8g}", year_unc(year, lumi.ifb)) for year, lumi in record.per_year
    ]
    rows.append(("total", f"{record.lumi_ifb:.8g}", unc(record.lumi_ifb)))
    rel = "unknown" if record.rel_unc is None else f"{100 * record.rel_unc:.3g} %"
    click.echo(f"{joined}: calibration {record.calibration}, relative uncertainty {rel}")
    echo_table(["year", "L (fb^-1)", "± (fb^-1)"], rows)
    click.echo(f"source: {record.source}")
