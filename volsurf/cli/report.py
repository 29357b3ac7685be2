"""``volsurf report``: the main job."""

from __future__ import annotations

from typing import Any

import click

from volsurf.cli.common import as_of_option, format_option, rebalance_options, resolve_returns


def _readable(h: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers in trader units for the terminal (the JSON keeps raw decimals and dollars)."""

    def f(v: Any, fmt: str) -> str:
        return "n/a" if v is None else fmt.format(v)

    return {
        "underlying": h["underlying"],
        "trade date": h["trade_date"],
        "spot": f(h["spot"], "{:,.2f}"),
        "net GEX": f(None if h["net_gex"] is None else h["net_gex"] / 1e9, "${:,.2f}bn per 1% move"),
        "regime": f"{h['regime']} (robust: {h['regime_robust']})",
        "gamma flip": f(h["gamma_flip"], "{:,.2f}") + f(h["gamma_flip_distance_pct"], " ({:+.2f}% from the spot GEX uses)"),
        "call / put wall": f"{f(h['call_wall'], '{:,.0f}')} / {f(h['put_wall'], '{:,.0f}')}",
        "ATM IV 30d": f(None if h["atm_iv_30d"] is None else h["atm_iv_30d"] * 100, "{:.2f}%"),
        "variance index 30d": f(h["variance_index_30d"], "{:.2f}"),
        "SKEW index 30d": f(h.get("skew_index_30d"), "{:.1f}"),
        "25d RR 30d": f(None if h["rr25_30d"] is None else h["rr25_30d"] * 100, "{:+.2f} vol pts"),
        "25d RR change": f(None if h["rr25_30d_change"] is None else h["rr25_30d_change"] * 100, "{:+.2f} vol pts"),
        "OTM put OI share": f(None if h["otm_put_oi_share"] is None else h["otm_put_oi_share"] * 100, "{:.1f}%"),
        "OTM put OI share change": f(
            None if h["otm_put_oi_share_change"] is None else h["otm_put_oi_share_change"] * 100, "{:+.2f} pts"
        ),
        "flags triggered": ", ".join(h["flags_triggered"]) or "none",
    }


@click.command("report")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default="volsurf_report",
              show_default=True, help="Directory for report.html, summary.json and the PNG charts.")
@click.option("--previous", type=click.Path(dir_okay=False), default=None,
              help="An earlier snapshot of the same underlying (changes in skew and demand).")
@click.option("--history", multiple=True, help="Earlier snapshots (files, directories or globs) for baselines.")
@click.option("--history-store", default=None,
              help="A Parquet store (volsurf ingest) as the history: baselines and flags without refitting.")
@rebalance_options
@click.option("--assumption", default=None, help="Dealer positioning for GEX (see `volsurf gex --help`).")
@click.option("--study", "study_specs", multiple=True, metavar="SERIES.csv[:COLUMN]",
              help="Daily series (e.g. Cboe SKEW history) for the quarter-end event study shown beside the calendar "
                   "(repeatable; see `volsurf study quarter-end --help`).")
@format_option("table")
@as_of_option()
def report_cmd(file: str, out_dir: str, previous: str | None, history: tuple[str, ...], equity_ytd: float | None,
               bond_ytd: float | None, equity_prices: str | None, bond_prices: str | None, since: str,
               cta_prices: str | None, assumption: str | None, fmt: str, as_of: str | None,
               history_store: str | None = None, study_specs: tuple[str, ...] = ()) -> None:
    """Full analysis of chain FILE: writes DIR/report.html (self-contained), DIR/summary.json and the charts.

    The page opens with the verdict (calendar position, gamma regime and flip, walls, ATM IV, variance index,
    risk reversal, OTM put demand, flags with evidence), then the surface, skew and demand, gamma exposure,
    rebalancing context, data hygiene and the assumptions used.

    \b
    Example:
      volsurf report sample_chains/spx_2026-07-31_close.csv -o out/
      volsurf report today.csv --previous yesterday.csv --equity-ytd 0.12 --bond-ytd -0.01 -o out/
      volsurf report spx.csv --equity-prices spx_daily.csv --bond-prices agg_daily.csv -o out/
    """
    from tqdm import tqdm

    from volsurf._paths import output_dir, staging
    from volsurf.cli.output import dumps_json, key_values_table
    from volsurf.cli.study import _inputs as study_inputs_from
    from volsurf.io import load
    from volsurf.report.charts import start_surface_charts
    from volsurf.report.html import write_report
    from volsurf.report.pipeline import analyze

    study_inputs = study_inputs_from(study_specs, (), None) if study_specs else None
    # The trade date is needed only to compute returns from price files.
    trade_date = load(file, as_of=as_of).meta.trade_date if equity_prices is not None else None
    equity_ytd, bond_ytd = resolve_returns(equity_ytd, bond_ytd, equity_prices, bond_prices, since, trade_date)
    # No tqdm monitor thread: charts are drawn in forked workers, and fork() wants a single-threaded parent.
    tqdm.monitor_interval = 0
    stages = 11
    out = output_dir(out_dir, "report folder")
    jobs: list[Any] = []

    def charts_early(snap: Any, surf: Any) -> Any:
        job = start_surface_charts(snap, surf, stage)
        jobs.append(job)
        return job

    # Everything is drawn into a staging folder inside DIR and moved into place when complete: an interrupted
    # or failed run leaves the previous report as it was.
    with tqdm(total=stages, desc="volsurf report", unit="step", disable=None, leave=False) as bar, \
            staging(out) as stage:

        def step(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        try:
            # The surface charts start drawing in a forked child as soon as the fit exists.
            # --as-of applies to FILE only, not to --previous/--history
            analysis = analyze(file, previous=previous, history=list(history) or None, equity_ytd=equity_ytd,
                               bond_ytd=bond_ytd, assumption=assumption, cta_prices=cta_prices or equity_prices,
                               as_of=as_of, study_series=study_inputs, progress=step, on_surface=charts_early, history_store=history_store)
            page = write_report(analysis, out, progress=step, stage=stage)
        finally:
            for job in jobs:
                if job is not None:
                    job.terminate()
    if fmt == "json":
        click.echo(dumps_json(analysis.summary["headline"]))
    elif fmt == "csv":
        from volsurf.cli.output import records_csv

        click.echo(records_csv([analysis.summary["headline"]]), nl=False)
    else:
        click.echo(key_values_table(_readable(analysis.summary["headline"])))
    click.echo(f"Report written to {page}", err=fmt != "table")
