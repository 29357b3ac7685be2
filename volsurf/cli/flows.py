"""``volsurf rebalance`` and ``volsurf volume-spikes``: rebalancing-flow estimate and period-end volume spikes."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import click

from volsurf.cli.common import emit, format_option, output_option
from volsurf.errors import ParameterError

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _number(text: str, what: str) -> float:
    """A decimal number; ``20%`` means 0.20."""
    t = text.strip()
    scale = 1.0
    if t.endswith("%"):
        t, scale = t[:-1], 0.01
    try:
        x = float(t) * scale
    except ValueError:
        raise ParameterError(f"{what}: {text!r} is not a number", "e.g. 0.2 or 20%") from None
    if not math.isfinite(x):
        raise ParameterError(f"{what}: {text!r} is not a finite number")
    return x


def _pairs(items: tuple[str, ...] | list[str], what: str) -> dict[str, float]:
    """``asset=x`` items (each may hold several, comma-separated) into an ordered dict."""
    out: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise ParameterError(
                    f"{what}: {part!r} is not asset=value", f"e.g. {what} equity=0.6,bond=0.4"
                )
            name = name.strip()
            if name in out:
                raise ParameterError(f"{what}: asset {name!r} given twice")
            out[name] = _number(value, f"{what} {name}")
    return out


def _adv(text: str | None) -> float | dict[str, float] | None:
    if text is None:
        return None
    if "=" in text:
        return _pairs([text], "--adv")
    return _number(text, "--adv")


def _returns_from_files(
    equity_prices: str | None,
    bond_prices: str | None,
    bond_yields: str | None,
    yield_column: str,
    duration: float,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> tuple[dict[str, float], dict[str, object]]:
    from volsurf.flows.rebalance import bond_proxy_return, load_bond_yields, load_price_series, period_return

    if bond_prices and bond_yields:
        raise ParameterError("give --bond-prices or --bond-yields, not both")
    if start is None or end is None:
        raise ParameterError(
            "returns from files need --start and --end", "e.g. --start 2023-12-29 --end 2024-03-28"
        )
    returns: dict[str, float] = {}
    source: dict[str, object] = {"start": start.date().isoformat(), "end": end.date().isoformat()}
    if equity_prices:
        returns["equity"] = period_return(load_price_series(equity_prices), start, end, "equity")
        source["equity"] = equity_prices
    if bond_prices:
        returns["bond"] = period_return(load_price_series(bond_prices), start, end, "bond")
        source["bond"] = bond_prices
    if bond_yields:
        returns["bond"] = bond_proxy_return(load_bond_yields(bond_yields, yield_column), start, end, duration)
        source["bond"] = f"{bond_yields} ({yield_column} yield proxy, duration {duration:g} years)"
    return returns, source


@click.command("rebalance")
@click.option("--equity-return", default=None, help="Equity return over the period (0.2 or 20%).")
@click.option("--bond-return", default=None, help="Bond return over the period (0.01 or 1%).")
@click.option("--return", "returns_opt", multiple=True, help="asset=return, repeatable (for more assets).")
@click.option(
    "--weights", default=None, help="Target weights asset=w,... summing to 1 [default: equity=0.6,bond=0.4]."
)
@click.option(
    "--aum", default=None, type=float, help="Book value today, after the drift, dollars [default: 1e13]."
)
@click.option("--band", default=None, type=float, help="Drift band in weight units (0.05 = 5 points).")
@click.option("--adv", default=None, help="Average daily dollar volume: one number, or asset=x,...")
@click.option("--schedule-days", default=None, type=int, help="Spread the trade over the last N sessions.")
@click.option(
    "--period",
    type=click.Choice(["month", "quarter", "year"]),
    default="quarter",
    show_default=True,
    help="Period whose last sessions carry the schedule.",
)
@click.option(
    "--as-of", type=_DATE, default=None, help="A day in the scheduled period [default: --end or today]."
)
@click.option(
    "--equity-prices", type=click.Path(), default=None, help="Daily equity price CSV (date + close)."
)
@click.option("--bond-prices", type=click.Path(), default=None, help="Daily bond price CSV (date + close).")
@click.option(
    "--bond-yields", type=click.Path(), default=None, help="Monthly yield CSV (percent) for the proxy."
)
@click.option("--yield-column", default="AAA", show_default=True, help="Column of --bond-yields to use.")
@click.option(
    "--bond-duration", default=None, type=float, help="Duration of the yield proxy, years [default: 6]."
)
@click.option("--start", type=_DATE, default=None, help="Start date for returns from files (YYYY-MM-DD).")
@click.option("--end", type=_DATE, default=None, help="End date for returns from files (YYYY-MM-DD).")
@click.option(
    "--history",
    type=click.Choice(["month", "quarter", "year"]),
    default=None,
    help="Per-period flow history from --equity-prices and --bond-yields instead of one rebalance.",
)
@format_option()
@output_option()
def rebalance_cmd(
    equity_return: str | None,
    bond_return: str | None,
    returns_opt: tuple[str, ...],
    weights: str | None,
    aum: float | None,
    band: float | None,
    adv: str | None,
    schedule_days: int | None,
    period: str,
    as_of: dt.datetime | None,
    equity_prices: str | None,
    bond_prices: str | None,
    bond_yields: str | None,
    yield_column: str,
    bond_duration: float | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    history: str | None,
    fmt: str,
    output: str | None,
) -> None:
    """Estimate the rebalancing flow of a fixed-weight (60/40) book after a period's returns.

    The book starts at its target weights; after the returns it has drifted; the command prints the
    drifted weights and the trades (dollars, negative = sell) that restore the targets, for a book worth
    --aum today. Returns are typed in or computed from price / yield files.

    \b
    Examples:
      volsurf rebalance --equity-return 0.20 --bond-return 0 --aum 1e12 --format json
      volsurf rebalance --weights equity=0.5,bond=0.3,gold=0.2 \\
          --return equity=0.15 --return bond=-0.02 --return gold=0.05 --band 0.03
      volsurf rebalance --equity-return 10% --bond-return 1% --schedule-days 5 --period quarter --as-of 2024-03-01
      volsurf rebalance --equity-prices sp500_daily.csv --bond-yields corporate_bond_yields_monthly.csv \\
          --start 2017-12-29 --end 2018-12-31 --adv 2e11
      volsurf rebalance --history year --equity-prices sp500_daily.csv --bond-yields corporate_bond_yields_monthly.csv
    """
    from volsurf.cli.output import key_values_table, records_table, write_text
    from volsurf.flows.rebalance import (
        DEFAULT_AUM,
        DEFAULT_BOND_DURATION,
        historical_rebalance_flows,
        load_bond_yields,
        load_price_series,
        rebalance_flow,
        rebalance_schedule,
    )

    aum = DEFAULT_AUM if aum is None else aum
    duration = DEFAULT_BOND_DURATION if bond_duration is None else bond_duration
    target = _pairs([weights], "--weights") if weights else None

    if history:
        if not (equity_prices and bond_yields):
            raise ParameterError("--history needs --equity-prices and --bond-yields")
        table = historical_rebalance_flows(
            load_price_series(equity_prices),
            load_bond_yields(bond_yields, yield_column),
            history,
            target_weights=target,
            aum=aum,
            duration=duration,
        )
        records = table.to_dict(orient="records")
        summary = {
            "periods": len(table),
            "period": history,
            "aum": aum,
            "bond_duration": duration,
            "mean_abs_trade_pct": float(table["equity_trade_pct"].abs().mean()),
            "max_abs_trade_pct": float(table["equity_trade_pct"].abs().max()),
        }
        emit(fmt, json_obj={**summary, "rows": records}, records=records, header=summary, output=output)
        return

    returns = _pairs(list(returns_opt), "--return")
    for name, text in (("equity", equity_return), ("bond", bond_return)):
        if text is not None:
            if name in returns:
                raise ParameterError(f"{name} return given twice (--{name}-return and --return {name}=...)")
            returns[name] = _number(text, f"--{name}-return")
    source: dict[str, object] = {"returns": "typed"}
    if equity_prices or bond_prices or bond_yields:
        file_returns, source = _returns_from_files(
            equity_prices, bond_prices, bond_yields, yield_column, duration, start, end
        )
        clash = sorted(set(file_returns) & set(returns))
        if clash:
            raise ParameterError(f"return of {clash} given both typed and from a file")
        returns.update(file_returns)
    if not returns:
        raise ParameterError(
            "no returns given", "use --equity-return/--bond-return, --return asset=x, or --equity-prices ..."
        )

    result = rebalance_flow(returns, target, aum=aum, adv=_adv(adv), band=band)
    obj: dict[str, object] = {**result.to_dict(), "source": source}
    schedule = None
    if schedule_days is not None:
        day = as_of or end or dt.datetime.now()
        schedule = rebalance_schedule(result, day.date(), period, schedule_days)
        obj["schedule"] = schedule.to_dict()

    header = {
        "aum": result.aum,
        "book_return": result.book_return,
        "band": result.band,
        "gross_traded": result.gross_traded,
        **{f"source_{k}": v for k, v in source.items()},
    }
    if fmt == "table" and schedule is not None:
        text = "\n\n".join(
            [key_values_table(header), records_table(result.records()), records_table(schedule.records())]
        )
        write_text(text, output)
        return
    rows: Sequence[Mapping[Any, Any]] = schedule.records() if (schedule is not None and fmt == "csv") else result.records()
    emit(fmt, json_obj=obj, records=rows, header=header, output=output)


@click.command("volume-spikes")
@click.argument("file", type=click.Path())
@click.option(
    "--window", default=None, type=int, help="Trailing sessions in the baseline median [default: 20]."
)
@click.option(
    "--threshold", default=None, type=float, help="Spike when volume/baseline >= this [default: 1.5]."
)
@click.option(
    "--last-n",
    default=None,
    type=int,
    help="Sessions at the end of a period that form its window [default: 3].",
)
@click.option(
    "--spikes", "list_spikes", is_flag=True, help="List the flagged days instead of the clustering table."
)
@format_option()
@output_option()
def volume_spikes_cmd(file: str, window: int, threshold: float, last_n: int, list_spikes: bool, fmt: str,
                      output: str | None) -> None:
    """Flag volume spikes in a daily volume CSV and test whether they cluster at month/quarter ends.

    A day is a spike when its volume is at least THRESHOLD times the median of the WINDOW sessions before
    it. The flag rate in the last N sessions of each month/quarter/year (NYSE calendar) is compared with
    all other days (rate ratio, one-sided Fisher exact p-value, Mann-Whitney p-value on the ratios).

    \b
    Examples:
      volsurf volume-spikes sp500_daily.csv
      volsurf volume-spikes sp500_daily.csv --last-n 1 --format json
      volsurf volume-spikes sp500_daily.csv --spikes --format csv -o spikes.csv
    """
    from volsurf.flows.volume import (
        DEFAULT_LAST_N,
        DEFAULT_THRESHOLD,
        DEFAULT_WINDOW,
        detect_volume_spikes,
        load_volume_series,
        spike_clustering,
    )

    window = DEFAULT_WINDOW if window is None else window
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    last_n = DEFAULT_LAST_N if last_n is None else last_n
    spikes = detect_volume_spikes(load_volume_series(file), window=window, threshold=threshold)
    rows = [r.to_dict() for r in spike_clustering(spikes, last_n)]
    flagged = spikes.frame[spikes.frame["spike"]]
    spike_rows = flagged[
        [
            "date",
            "volume",
            "baseline",
            "ratio",
            "robust_z",
            "month_end_rank",
            "quarter_end_rank",
            "quarterly_expiry",
        ]
    ].to_dict(orient="records")
    header = {
        "file": file,
        "statistic": f"volume / median of previous {window} sessions >= {threshold:g}",
        "first_day": spikes.frame["date"].iloc[0],
        "last_day": spikes.frame["date"].iloc[-1],
        "days_scored": spikes.n_scored,
        "spikes": spikes.n_spikes,
        "spike_rate": spikes.n_spikes / spikes.n_scored if spikes.n_scored else None,
        "last_n": last_n,
    }
    obj = {**header, "window": window, "threshold": threshold, "clustering": rows, "spike_days": spike_rows}
    emit(fmt, json_obj=obj, records=spike_rows if list_spikes else rows, header=header, output=output)
