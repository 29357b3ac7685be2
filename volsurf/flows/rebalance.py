"""Rebalancing-flow estimate for fixed-weight (60/40-style) books (issue 9).

A book that was at its target weights ``w`` at the start of a period and whose assets returned ``r`` has
drifted to ``d_i = w_i (1 + r_i) / sum_j w_j (1 + r_j)``. With ``V`` the book's value *today* (after the
drift), restoring the targets trades ``V (w_i - d_i)`` dollars of asset ``i`` (negative = sell). Example: a
60/40 book after +20 % equities and 0 % bonds holds 72/112 = 64.29 % equities and sells 4.29 % of today's
book in equities.

Defaults and their sources are in docs/rebalance.md: ``DEFAULT_AUM`` ($10 trillion) and
``DEFAULT_BOND_DURATION`` (6 years).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from volsurf.errors import DataError, FormatError, ParameterError
from volsurf.io.series import read_dated_series

#: The classic balanced mandate.
DEFAULT_TARGET: Mapping[str, float] = {"equity": 0.6, "bond": 0.4}

#: Dollars in books that rebalance mechanically between equities and bonds, US only: US defined-benefit
#: pension plans "just over $9tr" (J.P. Morgan Flows & Liquidity, June 2024) plus US balanced (60/40) mutual
#: funds about $1.5tr (J.P. Morgan, March 2020), about $10.5tr, rounded down to $10tr because DB plans are not
#: all 60/40 and not all rebalance on the calendar. An order-of-magnitude figure: trades scale linearly in it.
DEFAULT_AUM = 10e12

#: Modified duration (years) of the bond sleeve in the yield-based total-return proxy: a core (Aggregate-like)
#: sleeve of a balanced book, about 4.5-6.5 years over 1999-2018. The Moody's seasoned AAA/BAA yields are
#: long (20+ year) bond yields, whose own duration is nearer 12-14; applying long-yield changes to a 6-year
#: sleeve assumes parallel curve moves.
DEFAULT_BOND_DURATION = 6.0

_WEIGHT_TOL = 1e-6


# ---------------------------------------------------------------------------------------------------------
# The core: drift and trades
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RebalanceResult:
    """Drift and rebalancing trades of one book.

    Weights are fractions of the book (sum 1); ``trades`` are dollars (negative = sell);
    ``trades_of_book`` are fractions of today's book; ``adv_multiple`` is each trade divided by one day's dollar
    volume (``None`` when no ADV was given); ``rebalanced`` tells which assets were outside their band (all
    True without a band).
    """

    assets: tuple[str, ...]
    returns: dict[str, float]
    start_weights: dict[str, float]
    target_weights: dict[str, float]
    drifted_weights: dict[str, float]
    final_weights: dict[str, float]
    drift: dict[str, float]
    trades: dict[str, float]
    trades_of_book: dict[str, float]
    adv_multiple: dict[str, float] | None
    rebalanced: dict[str, bool]
    aum: float
    band: float | None
    book_return: float

    @property
    def gross_traded(self) -> float:
        """Dollars bought (= dollars sold)."""
        return float(sum(v for v in self.trades.values() if v > 0))

    def to_dict(self) -> dict[str, object]:
        return {
            "assets": list(self.assets),
            "aum": self.aum,
            "band": self.band,
            "book_return": self.book_return,
            "returns": self.returns,
            "start_weights": self.start_weights,
            "target_weights": self.target_weights,
            "drifted_weights": self.drifted_weights,
            "final_weights": self.final_weights,
            "drift": self.drift,
            "trades": self.trades,
            "trades_of_book": self.trades_of_book,
            "adv_multiple": self.adv_multiple,
            "rebalanced": self.rebalanced,
            "gross_traded": self.gross_traded,
        }

    def records(self) -> list[dict[str, object]]:
        """One row per asset (for tables and CSV)."""
        return [
            {
                "asset": a,
                "return": self.returns[a],
                "target": self.target_weights[a],
                "drifted": self.drifted_weights[a],
                "drift": self.drift[a],
                "rebalanced": self.rebalanced[a],
                "final": self.final_weights[a],
                "trade_usd": self.trades[a],
                "trade_of_book": self.trades_of_book[a],
                "adv_multiple": None if self.adv_multiple is None else self.adv_multiple[a],
            }
            for a in self.assets
        ]


def _check_weights(weights: Mapping[str, float], what: str) -> None:
    if not weights:
        raise ParameterError(
            f"{what} weights are empty", "give at least two assets, e.g. equity=0.6,bond=0.4"
        )
    w = np.array([float(v) for v in weights.values()])
    if not np.isfinite(w).all() or (w < 0).any():
        raise ParameterError(f"{what} weights must be finite and >= 0, got {dict(weights)}")
    if abs(w.sum() - 1.0) > _WEIGHT_TOL:
        raise ParameterError(
            f"{what} weights sum to {w.sum():.6g}, not 1", "e.g. --weights equity=0.6,bond=0.4"
        )


def rebalance_flow(
    returns: Mapping[str, float],
    target_weights: Mapping[str, float] | None = None,
    aum: float = DEFAULT_AUM,
    adv: float | Mapping[str, float] | None = None,
    band: float | None = None,
    start_weights: Mapping[str, float] | None = None,
) -> RebalanceResult:
    """Drifted weights and the trades that restore the targets.

    Parameters
    ----------
    returns : mapping asset -> float
        Each asset's total return over the period, decimal (0.20 = +20 %); one entry per asset.
    target_weights : mapping asset -> float, optional
        Target weights summing to 1 (default 60/40 ``equity``/``bond``).
    aum : float
        Value of the book today, after the drift (dollars).
    adv : float or mapping, optional
        Average daily dollar volume, one number for all assets or one per asset; adds ``adv_multiple``.
    band : float, optional
        Drift band in weight units (0.05 = 5 points). Only assets with ``|drifted - target| > band`` trade,
        back to their *target*; the net cash of those trades is taken from / put into the in-band assets
        pro rata to their current (drifted) weights, so in-band assets keep their mix. With two assets both
        are always on the same side of the band, so this is all-or-nothing.
    start_weights : mapping, optional
        Weights at the start of the period (default: the targets, i.e. the book was rebalanced then).

    Returns
    -------
    RebalanceResult
    """
    target = dict(DEFAULT_TARGET if target_weights is None else target_weights)
    _check_weights(target, "target")
    assets = tuple(target)
    start = dict(target if start_weights is None else start_weights)
    _check_weights(start, "start")
    missing = [a for a in assets if a not in returns]
    extra = [a for a in returns if a not in target]
    if missing or extra or set(start) != set(assets):
        raise ParameterError(
            f"assets do not match: weights {list(assets)}, returns {list(returns)}, start {list(start)}",
            "give one return per weighted asset, e.g. --return equity=0.2 --return bond=0.01",
        )
    if not (math.isfinite(aum) and aum > 0):
        raise ParameterError(f"aum must be a positive number of dollars, got {aum}")
    r = np.array([float(returns[a]) for a in assets])
    if not np.isfinite(r).all() or (r <= -1).any():
        raise ParameterError(f"returns must be finite and > -1 (decimal, 0.2 = +20%), got {dict(returns)}")
    w = np.array([target[a] for a in assets])
    w0 = np.array([float(start[a]) for a in assets])

    grown = w0 * (1.0 + r)
    book_growth = grown.sum()
    d = grown / book_growth
    dev = d - w

    if band is None:
        out = np.ones(len(assets), dtype=bool)
        final = w.copy()
    else:
        if not (math.isfinite(band) and 0 <= band < 1):
            raise ParameterError(f"band must be in [0, 1) (0.05 = 5 points), got {band}")
        out = np.abs(dev) > band
        final = d.copy()
        if out.any():
            final[out] = w[out]
            room = 1.0 - w[out].sum()
            held = d[~out].sum()
            if (~out).any():
                # pro rata to current holdings; if they are all zero, to their targets
                share = d[~out] / held if held > 0 else w[~out] / w[~out].sum() if w[~out].sum() > 0 else None
                if share is None:
                    final[~out] = room / (~out).sum()
                else:
                    final[~out] = room * share
    trades_of_book = final - d
    trades = aum * trades_of_book

    adv_mult: dict[str, float] | None = None
    if adv is not None:
        if isinstance(adv, Mapping):
            unknown = [a for a in adv if a not in target]
            if unknown:
                raise ParameterError(f"ADV given for unknown assets {unknown}", f"assets are {list(assets)}")
            advs = np.array([float(adv.get(a, math.nan)) for a in assets])
        else:
            advs = np.full(len(assets), float(adv))
        if (advs[np.isfinite(advs)] <= 0).any():
            raise ParameterError(f"ADV must be positive dollars per day, got {adv}")
        with np.errstate(invalid="ignore"):
            mult = trades / advs  # NaN for assets without an ADV
        adv_mult = dict(zip(assets, mult.tolist(), strict=True))

    def as_dict(x: np.ndarray) -> dict[str, float]:
        return dict(zip(assets, (float(v) for v in x), strict=True))

    return RebalanceResult(
        assets=assets,
        returns=as_dict(r),
        start_weights=as_dict(w0),
        target_weights=as_dict(w),
        drifted_weights=as_dict(d),
        final_weights=as_dict(final),
        drift=as_dict(dev),
        trades=as_dict(trades),
        trades_of_book=as_dict(trades_of_book),
        adv_multiple=adv_mult,
        rebalanced=dict(zip(assets, (bool(x) for x in out), strict=True)),
        aum=float(aum),
        band=band,
        book_return=float(book_growth / w0.sum() - 1.0),
    )


# ---------------------------------------------------------------------------------------------------------
# Staggered execution over the last N trading days of a period
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RebalanceSchedule:
    """Per-day dollars per asset: ``amounts[i, j]`` is traded on ``days[i]`` in ``assets[j]``."""

    period: str
    period_end: dt.date
    days: tuple[dt.date, ...]
    assets: tuple[str, ...]
    amounts: np.ndarray
    adv_multiple: np.ndarray | None = None

    def records(self) -> list[dict[str, object]]:
        """One row per (day, asset), with the running total."""
        cum = np.cumsum(self.amounts, axis=0)
        rows = []
        for i, day in enumerate(self.days):
            for j, a in enumerate(self.assets):
                row: dict[str, object] = {
                    "date": day.isoformat(),
                    "day": i + 1,
                    "asset": a,
                    "trade_usd": float(self.amounts[i, j]),
                    "cumulative_usd": float(cum[i, j]),
                }
                if self.adv_multiple is not None:
                    row["adv_multiple"] = float(self.adv_multiple[i, j])
                rows.append(row)
        return rows

    def to_dict(self) -> dict[str, object]:
        return {
            "period": self.period,
            "period_end": self.period_end.isoformat(),
            "days": [d.isoformat() for d in self.days],
            "rows": self.records(),
        }


def rebalance_schedule(
    result: RebalanceResult,
    as_of: dt.date | str,
    period: str = "quarter",
    n_days: int = 5,
    day_weights: Sequence[float] | None = None,
) -> RebalanceSchedule:
    """Split a rebalance over the last ``n_days`` sessions of the month / quarter / year containing ``as_of``.

    Parameters
    ----------
    result : RebalanceResult
        The total trades.
    as_of : date
        Any day of the period (it only selects the period; the whole window is scheduled).
    period : {"month", "quarter", "year"}
    n_days : int
        Sessions in the window (from the XNYS calendar, so holidays are skipped).
    day_weights : sequence of float, optional
        Fraction of the total traded each day (normalised to 1); default equal slices.

    Notes
    -----
    The dollar slices are the trade sized at ``as_of`` prices; price moves during the window are ignored.
    """
    from volsurf.market.calendar import PERIODS, last_n_trading_days, last_trading_day_of, sessions_between

    if period not in PERIODS:
        raise ParameterError(f"unknown period {period!r}", f"use one of {', '.join(PERIODS)}")
    if n_days < 1:
        raise ParameterError(f"schedule days must be >= 1, got {n_days}")
    end = last_trading_day_of(as_of, period)
    first_cal = {"month": 1, "quarter": 3, "year": 12}[period]
    start_month = pd.Timestamp(end).to_period("M") - (first_cal - 1)
    in_period = len(sessions_between(start_month.start_time.date(), end))
    if n_days > in_period:
        raise ParameterError(f"{n_days} schedule days but the {period} ending {end} has {in_period} sessions")
    days = tuple(last_n_trading_days(end, n_days))
    if day_weights is None:
        f = np.full(n_days, 1.0 / n_days)
    else:
        f = np.asarray(day_weights, dtype=float)
        if f.shape != (n_days,) or not np.isfinite(f).all() or (f < 0).any() or f.sum() <= 0:
            raise ParameterError(
                f"day_weights must be {n_days} non-negative numbers, got {list(day_weights)}"
            )
        f = f / f.sum()
    total = np.array([result.trades[a] for a in result.assets])
    amounts = f[:, None] * total[None, :]
    adv_mult = None
    if result.adv_multiple is not None:
        per_asset = np.array([result.adv_multiple[a] for a in result.assets])
        adv_mult = f[:, None] * per_asset[None, :]
    return RebalanceSchedule(
        period=period, period_end=end, days=days, assets=result.assets, amounts=amounts, adv_multiple=adv_mult
    )


# ---------------------------------------------------------------------------------------------------------
# Returns from data: price CSVs and the yield-based bond proxy
# ---------------------------------------------------------------------------------------------------------


def load_price_series(path: str | Path) -> pd.Series:
    """Daily closes from a CSV with a date column: ``Adj Close``, else ``Close``, else the only numeric column."""
    s = read_dated_series(
        path, ("Adj Close", "Adj_Close", "adjclose", "Close", "close", "price"), what="price"
    )
    if (s <= 0).any():
        raise DataError(f"{path}: {int((s <= 0).sum())} non-positive prices", "prices must be > 0")
    return s


def _price_on_or_before(prices: pd.Series, day: pd.Timestamp, what: str) -> tuple[pd.Timestamp, float]:
    i = int(prices.index.searchsorted(day, side="right")) - 1
    if i < 0:
        raise DataError(
            f"no {what} price on or before {day.date()} (series starts {prices.index[0].date()})",
            "choose a later start date",
        )
    return prices.index[i], float(prices.iloc[i])


def period_return(prices: pd.Series, start: dt.date | str, end: dt.date | str, what: str = "") -> float:
    """Return from the close on (or last before) ``start`` to the close on (or last before) ``end``."""
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    if t1 <= t0:
        raise ParameterError(f"end {t1.date()} must be after start {t0.date()}")
    d1, p1 = _price_on_or_before(prices, t1, what)
    d0, p0 = _price_on_or_before(prices, t0, what)
    if d1 <= d0 or t1 - d1 > pd.Timedelta(days=7):
        raise DataError(
            f"{what} prices do not cover {t0.date()} .. {t1.date()} (last price {prices.index[-1].date()})",
            "use dates inside the file's range",
        )
    return p1 / p0 - 1.0


def load_bond_yields(path: str | Path, column: str = "AAA") -> pd.Series:
    """Monthly yields in percent (e.g. Moody's AAA) on a month-start index."""
    s = read_dated_series(path, (column,), what=f"{column} yield")
    if s.name is None or str(s.name).lower() != column.lower():
        raise FormatError(str(path), f"no column {column!r}", column=column)
    return s.set_axis(pd.DatetimeIndex(s.index).to_period("M").to_timestamp())


def bond_proxy_monthly_returns(yields_pct: pd.Series, duration: float = DEFAULT_BOND_DURATION) -> pd.Series:
    """Total-return proxy per month from yield levels: carry minus duration times the yield change.

    ``r_m = y_{m-1} / 12 - D (y_m - y_{m-1})`` with yields as decimals; indexed by month ``m``. Convexity is
    left out (for a 6-year duration and a 50 bp monthly move it adds 0.5 x 45 x 0.005^2 = 0.06 %).
    """
    if not (math.isfinite(duration) and duration >= 0):
        raise ParameterError(f"bond duration must be >= 0 years, got {duration}")
    y = yields_pct.astype(float) / 100.0
    r = y.shift(1) / 12.0 - duration * y.diff()
    return r.iloc[1:]


def bond_proxy_return(
    yields_pct: pd.Series, start: dt.date | str, end: dt.date | str, duration: float = DEFAULT_BOND_DURATION
) -> float:
    """Compounded proxy return over the months after ``start``'s month up to and including ``end``'s month."""
    m = bond_proxy_monthly_returns(yields_pct, duration)
    p0, p1 = pd.Timestamp(start).to_period("M"), pd.Timestamp(end).to_period("M")
    months = pd.DatetimeIndex(m.index).to_period("M")
    sel = (months > p0) & (months <= p1)
    need = (p1 - p0).n
    if need <= 0:
        raise ParameterError("the bond proxy is monthly: start and end must be in different months")
    if int(sel.sum()) != need:
        raise DataError(f"yield series does not cover {p0} .. {p1}", "use months inside the yield file")
    return float(np.prod(1.0 + m[sel].to_numpy()) - 1.0)


def historical_rebalance_flows(
    equity_prices: pd.Series,
    yields_pct: pd.Series,
    period: str = "year",
    target_weights: Mapping[str, float] | None = None,
    aum: float = DEFAULT_AUM,
    duration: float = DEFAULT_BOND_DURATION,
) -> pd.DataFrame:
    """Per-period 60/40-style drift and rebalancing trade implied by a price history and a yield history.

    The book is assumed rebalanced to target at every period end (calendar rebalancing). Equity return:
    last close of the period over the last close of the previous period (the first period starts at the
    series' first close and is marked ``complete=False``). Bond return: the yield proxy over the period's
    months. Columns: ``period``, ``start``, ``end``, ``complete``, ``equity_return``, ``bond_return``,
    ``drifted_equity_weight``, ``drift_pts`` (percentage points), ``equity_trade_pct`` (% of book, negative =
    sell equities) and ``equity_trade_usd`` for ``aum``.
    """
    if period not in ("month", "quarter", "year"):
        raise ParameterError(f"unknown period {period!r}", "use month, quarter or year")
    target = dict(DEFAULT_TARGET if target_weights is None else target_weights)
    _check_weights(target, "target")
    if set(target) != {"equity", "bond"}:
        raise ParameterError("historical flows need exactly the assets 'equity' and 'bond'")
    freq = {"month": "M", "quarter": "Q", "year": "Y"}[period]
    px = equity_prices.sort_index()
    labels = pd.DatetimeIndex(px.index).to_period(freq)
    last = px.groupby(labels).tail(1)  # last close of each period (vectorized)
    ends = last.index
    prev = np.concatenate([[px.iloc[0]], last.to_numpy()[:-1]])
    starts = np.concatenate([[px.index[0]], ends[:-1].to_numpy()])
    eq = last.to_numpy() / prev - 1.0

    bm = bond_proxy_monthly_returns(yields_pct, duration)
    bm_lab = pd.DatetimeIndex(bm.index).to_period(freq)
    growth = (1.0 + bm).groupby(bm_lab).prod()
    count = bm.groupby(bm_lab).size()
    per_labels = pd.DatetimeIndex(last.index).to_period(freq)
    months_in = {"month": 1, "quarter": 3, "year": 12}[period]
    full = count.reindex(per_labels).to_numpy() == months_in
    bond = growth.reindex(per_labels).to_numpy() - 1.0
    if not full.all():
        missing = [str(p) for p, ok in zip(per_labels, full, strict=True) if not ok]
        raise DataError(f"yield series does not cover periods {missing[:3]}...", "use a longer yield file")

    we, wb = target["equity"], target["bond"]
    grown_e = we * (1.0 + eq)
    d_e = grown_e / (grown_e + wb * (1.0 + bond))
    trade_pct = we - d_e
    complete = np.ones(len(ends), dtype=bool)
    # the first period starts at the series' first close, not at the previous period's last close
    complete[0] = False
    return pd.DataFrame(
        {
            "period": [str(p) for p in per_labels],
            "start": [pd.Timestamp(s).date() for s in starts],
            "end": [e.date() for e in ends],
            "complete": complete,
            "equity_return": eq,
            "bond_return": bond,
            "drifted_equity_weight": d_e,
            "drift_pts": 100.0 * (d_e - we),
            "equity_trade_pct": 100.0 * trade_pct,
            "equity_trade_usd": aum * trade_pct,
        }
    )


def returns_since_rebalance(
    equity_prices: str | Path, bond_prices: str | Path, as_of: dt.date, since: str = "year"
) -> tuple[float, float]:
    """Equity and bond returns from the last close of the previous ``since`` period (year or quarter) to ``as_of``.

    Both files are daily price CSVs with a date column (see :func:`load_price_series`); the start is the last
    NYSE session of the previous calendar year (``year``, i.e. year to date) or quarter (``quarter``).
    """
    from volsurf.market.calendar import last_trading_day_of_quarter, last_trading_day_of_year

    if since not in ("year", "quarter"):
        raise ParameterError(f"unknown period {since!r}", hint="year or quarter")
    day = pd.Timestamp(as_of)
    if since == "year":
        start = last_trading_day_of_year(dt.date(day.year - 1, 12, 31))
    else:
        q_start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        start = last_trading_day_of_quarter(q_start - dt.timedelta(days=1))
    eq = period_return(load_price_series(equity_prices), start, as_of, "equity")
    bd = period_return(load_price_series(bond_prices), start, as_of, "bond")
    return eq, bd
