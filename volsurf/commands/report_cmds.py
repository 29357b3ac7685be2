"""``volsurf report``: the main job."""

from __future__ import annotations

import click

from volsurf.commands.common import format_option


@click.command("report")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default="volsurf_report",
              show_default=True, help="Directory for report.html, summary.json and the PNG charts.")
@click.option("--previous", type=click.Path(dir_okay=False), default=None,
              help="An earlier snapshot of the same underlying (changes in skew and demand).")
@click.option("--history", multiple=True, help="Earlier snapshots (files, directories or globs) for baselines.")
@click.option("--equity-ytd", type=float, default=None, help="Equity return since the last rebalance (decimal).")
@click.option("--bond-ytd", type=float, default=None, help="Bond return since the last rebalance (decimal).")
@click.option("--assumption", default=None, help="Dealer positioning for GEX (see `volsurf gex --help`).")
@format_option("table")
def report_cmd(file: str, out_dir: str, previous: str | None, history: tuple[str, ...], equity_ytd: float | None,
               bond_ytd: float | None, assumption: str | None, fmt: str) -> None:
    """Full analysis of chain FILE: writes DIR/report.html (self-contained), DIR/summary.json and the charts.

    The page opens with the verdict (calendar position, gamma regime and flip, walls, ATM IV, variance index,
    risk reversal, OTM put demand, flags with evidence), then the surface, skew and demand, gamma exposure,
    rebalancing context, data hygiene and the assumptions used.

    \b
    Example:
      volsurf report sample_chains/spx_2026-07-31_close.csv -o out/
      volsurf report today.csv --previous yesterday.csv --equity-ytd 0.12 --bond-ytd -0.01 -o out/
    """
    from tqdm import tqdm

    from volsurf.errors import ParameterError
    from volsurf.output import dumps_json, key_values_table
    from volsurf.report import analyze, write_report

    if (equity_ytd is None) != (bond_ytd is None):
        raise ParameterError("--equity-ytd and --bond-ytd go together", hint="give both returns, or neither")
    stages = 10 + bool(previous) + bool(history)
    with tqdm(total=stages, desc="volsurf report", unit="step", disable=None, leave=False) as bar:

        def step(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        analysis = analyze(file, previous=previous, history=list(history) or None, equity_ytd=equity_ytd,
                           bond_ytd=bond_ytd, assumption=assumption, progress=step)
        page = write_report(analysis, out_dir, progress=step)
    if fmt == "json":
        click.echo(dumps_json(analysis.summary["headline"]))
    elif fmt == "csv":
        from volsurf.output import records_csv

        click.echo(records_csv([analysis.summary["headline"]]), nl=False)
    else:
        click.echo(key_values_table(analysis.summary["headline"]))
    click.echo(f"Report written to {page}", err=fmt != "table")
