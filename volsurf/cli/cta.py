"""``volsurf cta`` and ``volsurf divergence``: trend-follower positioning and broad vs tech index divergence."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import click

from volsurf.cli.common import emit, format_option, output_option, plot_dir_option
from volsurf.errors import ParameterError

_DATE = click.DateTime(formats=["%Y-%m-%d"])

LOOKBACK_COLUMNS = ["days", "signal", "position", "lookback_return", "trigger_price", "distance_pct", "side"]
SCENARIO_COLUMNS = [
    "name",
    "move_vol",
    "price",
    "return_pct",
    "position",
    "notional_usd",
    "flow_usd",
    "flow_share_of_adv",
]
CSV_COLUMNS = [
    "section",
    "days",
    "name",
    "signal",
    "position",
    "trigger_price",
    "distance_pct",
    "side",
    "price",
    "return_pct",
    "notional_usd",
    "flow_usd",
    "flow_share_of_adv",
]


def _positive(value: float | None, what: str) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{what} must be a positive number, got {value}")
    return value


def _save(ax: Any, path: Path) -> str:
    from volsurf.plots import save_figure

    return save_figure(ax, path, dpi=110)[0]


def _cta_plots(res: Any, prices: Any, history: Any, plot_dir: str, name: str) -> list[str]:
    from volsurf._paths import output_dir, safe_stem
    from volsurf.plots.cta_plots import plot_cta_position_history, plot_cta_scenarios, plot_cta_triggers

    out = output_dir(plot_dir, "plot folder")
    stem = safe_stem(f"{name}_{res.date.isoformat()}")
    day = res.date.isoformat()
    ax = plot_cta_scenarios(
        [s.name for s in res.scenarios],
        [s.flow_usd for s in res.scenarios],
        [s.position for s in res.scenarios],
        date=day,
        underlying=name,
    )
    written = [_save(ax, out / f"{stem}_cta_scenarios.png")]
    recent = prices.loc[: res.date.isoformat()].iloc[-126:]
    trig = {
        f"{lb.days}d": ([d for d, _, _ in lb.trigger_path], [p for _, p, _ in lb.trigger_path])
        for lb in res.lookbacks
    }
    ax = plot_cta_triggers(list(recent.index), recent.to_numpy(), trig, date=day, underlying=name)
    written.append(_save(ax, out / f"{stem}_cta_triggers.png"))
    ax = plot_cta_position_history(list(history.index), history["position"].to_numpy(), underlying=name)
    written.append(_save(ax, out / f"{stem}_cta_position_history.png"))
    return written


@click.command("cta")
@click.argument("prices", type=click.Path())
@click.option("--date", "date_", type=_DATE, default=None, help="Analysis date (last close on or before it).")
@click.option("--lookbacks", default="21,63,126,252", show_default=True, help="Lookbacks in sessions.")
@click.option(
    "--rule",
    type=click.Choice(["sign", "zscore", "ma"]),
    default="sign",
    show_default=True,
    help="Trend signal rule (see docs/cta.md).",
)
@click.option("--aum", type=float, default=None, help="Trend-following AUM, USD [default: 3e11].")
@click.option(
    "--equity-allocation",
    type=float,
    default=None,
    help="Share of the AUM behind equity-index futures [default: 0.25].",
)
@click.option(
    "--target-vol", type=float, default=None, help="Annualized vol target per lookback [default: 0.10]."
)
@click.option(
    "--leverage-cap", type=float, default=None, help="Largest exposure per lookback, x [default: 1.5]."
)
@click.option("--vol-window", type=int, default=None, help="Sessions in the realized vol [default: 63].")
@click.option(
    "--adv", type=float, default=None, help="Average daily dollar volume, USD (flow as a share of it)."
)
@click.option("--column", default=None, help="Price column of the CSV [default: Adj Close, else Close].")
@click.option("--history", "history_", is_flag=True, help="Print the model's P&L by calendar year instead.")
@format_option()
@output_option()
@plot_dir_option()
def cta_cmd(
    prices: str,
    date_: dt.datetime | None,
    lookbacks: str,
    rule: str,
    aum: float | None,
    equity_allocation: float | None,
    target_vol: float | None,
    leverage_cap: float | None,
    vol_window: int | None,
    adv: float | None,
    column: str | None,
    history_: bool,
    fmt: str,
    output: str | None,
    plot_dir: str | None,
) -> None:
    """Model trend-follower (CTA) positioning in an equity index from its daily closes.

    Per lookback: trend signal, vol-targeted position, and the price at which the signal flips on the next
    session (with its path over 5 sessions); the aggregate position in [-1, 1], the futures notional for
    --aum, and the flow over the next 5 sessions under flat and +/-1, +/-2 realized-vol price paths
    (as a share of --adv when given). Negative notional/flow = short/selling.

    \b
    Examples:
      volsurf cta spy_daily_1993_2024.csv --column adjusted_close
      volsurf cta spy_daily_1993_2024.csv --date 2020-03-20 --adv 3e11 --format json
      volsurf cta sp500_daily.csv --lookbacks 21,63,126,252 --aum 3e11 --plot charts/
      volsurf cta spy_daily_1993_2024.csv --column adjusted_close --history --format csv
    """
    from volsurf.cli.output import key_values_table, records_table, write_text
    from volsurf.flows.cta import (
        DEFAULT_EQUITY_ALLOCATION,
        DEFAULT_LEVERAGE_CAP,
        DEFAULT_TARGET_VOL,
        DEFAULT_TREND_AUM,
        DEFAULT_VOL_WINDOW,
        CtaParams,
        cta_history,
        cta_positioning,
        load_prices,
        parse_lookbacks,
        pnl_by_year,
    )

    params = CtaParams(
        lookbacks=parse_lookbacks(lookbacks),
        rule=rule,
        target_vol=DEFAULT_TARGET_VOL if target_vol is None else target_vol,
        leverage_cap=DEFAULT_LEVERAGE_CAP if leverage_cap is None else leverage_cap,
        vol_window=DEFAULT_VOL_WINDOW if vol_window is None else vol_window,
        aum=DEFAULT_TREND_AUM if aum is None else aum,
        equity_allocation=DEFAULT_EQUITY_ALLOCATION if equity_allocation is None else equity_allocation,
    )
    _positive(adv, "--adv")
    series = load_prices(prices, column)
    name = Path(prices).stem
    if history_:
        hist = cta_history(series if date_ is None else series.loc[: date_.date().isoformat()], params)
        years = pnl_by_year(hist)
        rows = years.to_dict(orient="records")
        header = {
            "file": prices,
            "column": series.name,
            "first_date": hist.index[0].date().isoformat(),
            "last_date": hist.index[-1].date().isoformat(),
            "years": len(years),
            "years_made_money": int(years["made_money"].sum()),
            "years_lost_money": int((~years["made_money"]).sum()),
            "aum": params.aum,
            "equity_allocation": params.equity_allocation,
        }
        emit(
            fmt,
            json_obj={**header, "params": params.to_dict(), "rows": rows},
            records=rows,
            header=header,
            output=output,
        )
        return

    res = cta_positioning(series, None if date_ is None else date_.date(), params, adv_usd=adv)
    d = res.to_dict()
    above, below = d["nearest_trigger_above"], d["nearest_trigger_below"]
    header = {
        "file": prices,
        "column": series.name,
        "date": d["date"],
        "price": res.price,
        "position": res.position,
        "leverage": res.leverage,
        "notional_usd": res.notional_usd,
        "realized_vol": res.realized_vol,
        "rule": params.rule,
        "nearest_trigger_above": None
        if above is None
        else f"{above['price']:.2f} ({above['days']}d, {above['distance_pct']:+.2f}%)",
        "nearest_trigger_below": None
        if below is None
        else f"{below['price']:.2f} ({below['days']}d, {below['distance_pct']:+.2f}%)",
        "aum": params.aum,
        "equity_allocation": params.equity_allocation,
        "adv_usd": adv,
    }
    lb_rows = [{k: lb[k] for k in LOOKBACK_COLUMNS} for lb in d["lookbacks"]]
    sc_rows = [{k: s[k] for k in SCENARIO_COLUMNS} for s in d["scenarios"]]
    if fmt == "table":
        path_rows = [
            {"days": lb["days"], **{p["date"]: p["price"] for p in lb["trigger_path"]}}
            for lb in d["lookbacks"]
        ]
        text = "\n\n".join(
            [
                key_values_table(header),
                "Lookbacks (trigger = next session's flip level):\n" + records_table(lb_rows),
                "Trigger paths over the next sessions:\n" + records_table(path_rows),
                "Scenarios (next 5 sessions; flow = change in notional, USD):\n" + records_table(sc_rows),
            ]
        )
        write_text(text, output)
    else:
        csv_rows = [{"section": "lookback", **r} for r in lb_rows] + [
            {"section": "scenario", **r} for r in sc_rows
        ]
        emit(
            fmt,
            json_obj={"file": prices, "column": series.name, **d},
            records=csv_rows,
            columns=CSV_COLUMNS,
            output=output,
        )
    if plot_dir:
        hist = cta_history(series.loc[: d["date"]], params)
        for p in _cta_plots(res, series, hist, plot_dir, name):
            click.echo(f"wrote {p}", err=True)


@click.command("divergence")
@click.argument("broad", type=click.Path())
@click.argument("narrow", type=click.Path())
@click.option("--window", type=int, default=None, help="Sessions in the rolling returns [default: 20].")
@click.option("--baseline", type=int, default=None, help="Trailing spreads in the z-score [default: 252].")
@click.option("--threshold", type=float, default=None, help="|z| at or above this is extreme [default: 2].")
@click.option("--broad-column", default=None, help="Price column of BROAD [default: Adj Close, else Close].")
@click.option(
    "--narrow-column", default=None, help="Price column of NARROW [default: Adj Close, else Close]."
)
@click.option(
    "--flags", "list_flags", is_flag=True, help="List the flagged days instead of the frequency table."
)
@format_option()
@output_option()
@plot_dir_option()
def divergence_cmd(
    broad: str,
    narrow: str,
    window: int | None,
    baseline: int | None,
    threshold: float | None,
    broad_column: str | None,
    narrow_column: str | None,
    list_flags: bool,
    fmt: str,
    output: str | None,
    plot_dir: str | None,
) -> None:
    """Broad index (SPX/SPY/ES) vs narrow index (NDX/QQQ) rolling return spread and its quarter-end flag.

    spread = broad return - narrow return over WINDOW sessions; z = its z-score against the previous
    BASELINE spreads; the flag fires when |z| >= THRESHOLD inside the quarter-end window (last 5 NYSE
    sessions of the quarter). Prints how often the spread is extreme inside vs outside the window.

    \b
    Examples:
      volsurf divergence spy_daily_1993_2024.csv ndx_vix_rates_daily_2000_2026.csv --narrow-column NDX_close
      volsurf divergence sp500_daily.csv nasdaq_daily.csv --window 20 --format json
      volsurf divergence spy.csv qqq.csv --flags --format csv -o flags.csv --plot charts/
    """
    from volsurf.flows.cta import load_prices
    from volsurf.flows.divergence import (
        DEFAULT_BASELINE,
        DEFAULT_WINDOW,
        DEFAULT_Z_THRESHOLD,
        divergence_frequency,
        index_divergence,
    )

    b = load_prices(broad, broad_column)
    n = load_prices(narrow, narrow_column)
    res = index_divergence(
        b,
        n,
        window=DEFAULT_WINDOW if window is None else window,
        baseline=DEFAULT_BASELINE if baseline is None else baseline,
        z_threshold=DEFAULT_Z_THRESHOLD if threshold is None else threshold,
    )
    freq = divergence_frequency(res)
    flags = res.flag_days()[
        ["date", "quarter_end", "trading_days_to_quarter_end", "broad_return", "narrow_return", "spread", "z"]
    ]
    flag_rows = flags.to_dict(orient="records")
    rows = [
        {
            "where": "inside quarter-end window",
            "days": freq["days_in_window"],
            "extreme_days": freq["extreme_in_window"],
            "rate": freq["rate_in_window"],
        },
        {
            "where": "outside",
            "days": freq["days_outside"],
            "extreme_days": freq["extreme_outside"],
            "rate": freq["rate_outside"],
        },
    ]
    last = res.last
    header = {
        "broad": broad,
        "narrow": narrow,
        **freq,
        "last_date": last.get("date"),
        "last_spread": last.get("spread"),
        "last_z": last.get("z"),
        "last_flag": last.get("flag"),
    }
    obj = {**header, "frequency": rows, "last": last, "flag_days": flag_rows}
    emit(fmt, json_obj=obj, records=flag_rows if list_flags else rows, header=header, output=output)
    if plot_dir:
        from volsurf.plots.cta_plots import plot_divergence

        f = res.frame
        q_ends = sorted(set(f.loc[f["spread"].notna(), "quarter_end"]))
        q_ends = [q for q in q_ends if q <= f["date"].iloc[-1]]
        ax = plot_divergence(
            list(f["date"]),
            f["spread"].to_numpy(),
            q_ends,
            flagged=f["flag"].to_numpy(),
            window=res.window,
            broad=Path(broad).stem,
            narrow=Path(narrow).stem,
        )
        from volsurf._paths import output_dir, safe_stem

        stem = safe_stem(f"{Path(broad).stem}_vs_{Path(narrow).stem}")
        out = output_dir(plot_dir, "plot folder")
        click.echo(f"wrote {_save(ax, out / f'{stem}_divergence.png')}", err=True)
