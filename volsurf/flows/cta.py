"""Trend-following (CTA) positioning model: signals, vol-targeted positions, trigger levels, scenario flows.

The model (issue 19; full write-up with the defaults' sources in ``docs/cta.md``)
---------------------------------------------------------------------------------
Prices ``P_t`` are daily closes (one row per session). For each lookback ``L`` (sessions; default 21, 63, 126,
252 = about 1, 3, 6 and 12 months):

* **signal** ``s_L(t)`` in [-1, 1], by one of three rules:

  - ``"sign"`` (default): ``sign(P_t - P_{t-L})``, the sign of the lookback return;
  - ``"zscore"``: ``clip(z / z_cap, -1, 1)`` with ``z = ln(P_t / P_{t-L}) / (sigma_d(t) sqrt(L))``, the
    lookback log return in units of its own standard deviation, capped;
  - ``"ma"``: ``sign(P_t - MA_L(t))`` with ``MA_L(t)`` the mean of the last ``L`` closes ``P_{t-L+1} .. P_t``.

* **realized vol** ``sigma(t) = sigma_d(t) sqrt(252)``, with ``sigma_d`` the sample standard deviation
  (``ddof=1``) of the last ``vol_window`` daily log returns (default 63);
* **position** ``w_L(t) = clip(s_L(t) * target_vol / sigma(t), -leverage_cap, leverage_cap)``: exposure as a
  multiple of the capital of the equity sleeve (default target 10 % a year, cap 1.5x);
* **leverage** ``lev(t) = mean_L w_L(t)`` (equal weights), **aggregate position**
  ``a(t) = lev(t) / leverage_cap`` in [-1, 1];
* **notional** ``N(t) = aum * equity_allocation * lev(t)`` dollars of equity-index futures (negative = short).

Trigger levels
--------------
For the session ``t + k`` (k = 1..5) the trigger of lookback ``L`` is the constant price ``P*`` that, held from
``t + 1`` to ``t + k``, puts the signal at exactly zero at ``t + k`` (above it the signal is long, below it
short):

* ``sign`` and ``zscore``: ``P* = P_{t+k-L}``, the close that rolls into the comparison (the z-score's
  sign is the return's sign, whatever the vol);
* ``ma``: ``P* = (P_{t+k-L+1} + ... + P_t) / (L - k)``, the mean of the ``L - k`` known closes still in the
  window (solve ``P* = (k P* + S) / L``).

The trigger of the next session (k = 1) is *the* trigger; the five values are its path as old prices roll out.

Scenarios
---------
Over the next 5 sessions the price moves log-linearly to ``P_t exp(m sigma_d(t) sqrt(5))`` for
``m in (-2, -1, 0, 1, 2)`` (a 5-day move of ``m`` realized-vol standard deviations); the model is rerun on the
extended series with the realized vol held at today's value (a smooth or flat path would otherwise shrink the
estimate and show buying from vol compression alone), so the scenario flow ``N(t+5) - N(t)`` comes from the
signals: old prices rolling out of the lookbacks and the path crossing trigger levels.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import DataError, FormatError, ParameterError
from volsurf.flag import Flag

__all__ = [
    "DEFAULT_EQUITY_ALLOCATION",
    "DEFAULT_LEVERAGE_CAP",
    "DEFAULT_LOOKBACKS",
    "DEFAULT_TARGET_VOL",
    "DEFAULT_TREND_AUM",
    "DEFAULT_VOL_WINDOW",
    "RULES",
    "SCENARIO_MOVES",
    "CtaParams",
    "CtaResult",
    "LookbackState",
    "Scenario",
    "cta_alignment_flag",
    "cta_history",
    "cta_positioning",
    "load_prices",
    "parse_lookbacks",
    "pnl_by_year",
    "trend_model",
]

#: Lookbacks in sessions: about 1, 3, 6 and 12 months (21 sessions a month).
DEFAULT_LOOKBACKS: tuple[int, ...] = (21, 63, 126, 252)

#: Signal rules (see the module docstring).
RULES = ("sign", "zscore", "ma")

#: Annualized volatility each lookback's position is scaled to (10 %: the usual target of diversified
#: trend programmes, e.g. the SG Trend Index constituents run 10-15 %; per sleeve before diversification).
DEFAULT_TARGET_VOL = 0.10

#: Largest exposure of one lookback, as a multiple of the sleeve's capital: binds when realized vol falls below
#: target_vol / cap = 6.7 % (rare for the S&P 500: calm years such as 2017).
DEFAULT_LEVERAGE_CAP = 1.5

#: Sessions of daily log returns in the realized-vol estimate (one quarter).
DEFAULT_VOL_WINDOW = 63

#: Cap of the z-score rule: full signal at a lookback return of one standard deviation.
DEFAULT_Z_CAP = 1.0

#: Assets of trend-following CTAs: BarclayHedge's managed-futures (CTA) universe was roughly $300-350bn over
#: 2021-2024 and trend followers are most of it; $300bn, an order of magnitude (notionals are linear in it).
DEFAULT_TREND_AUM = 300e9

#: Share of that capital behind equity-index futures: diversified trend programmes split risk roughly equally
#: across equities, rates, currencies and commodities, so about a quarter.
DEFAULT_EQUITY_ALLOCATION = 0.25

#: Sessions ahead for trigger paths and scenarios.
HORIZON = 5

#: Scenario name -> 5-session move in realized-vol standard deviations.
SCENARIO_MOVES: dict[str, float] = {
    "down_2vol": -2.0,
    "down_1vol": -1.0,
    "flat": 0.0,
    "up_1vol": 1.0,
    "up_2vol": 2.0,
}

_YEAR = 252


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------


def load_prices(path: str | Path, column: str | None = None) -> pd.Series:
    """Daily closes from a CSV (the study's reader, :func:`volsurf.flows.rebalance.load_price_series`).

    Parameters
    ----------
    path : str or Path
        CSV with a date column and a close column.
    column : str, optional
        Column to read (case-insensitive; rows with a missing-value marker such as FRED's ``.`` are dropped);
        default ``Adj Close``, else ``Close``, else the only numeric column.

    Raises
    ------
    FormatError
        No such column, unparseable rows.
    DataError
        Non-positive prices.
    """
    from volsurf.flows.rebalance import load_price_series
    from volsurf.io.series import read_dated_series

    if column is None:
        return load_price_series(path)
    s = read_dated_series(path, (column,), what=f"{column} price", column=column, missing="drop")
    if s.name is None or str(s.name).strip().lower() != column.strip().lower():
        raise FormatError(str(path), f"no column {column!r}", column=column, hint=f"the file has {s.name!r}")
    s = s.dropna()
    if (s <= 0).any():
        raise DataError(
            f"{path}: {int((s <= 0).sum())} non-positive prices in {column!r}", "prices must be > 0"
        )
    return s


def parse_lookbacks(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"21,63,126,252"`` (or a sequence) -> sorted unique lookbacks in sessions, each >= 2."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise ParameterError(
                f"lookbacks {text!r} are not whole numbers", "e.g. --lookbacks 21,63,126,252"
            ) from None
    else:
        vals = [int(v) for v in text]
    if not vals or any(v < 2 for v in vals):
        raise ParameterError(f"lookbacks must be whole numbers of sessions >= 2, got {text!r}")
    return tuple(sorted(set(vals)))


@dataclass(frozen=True)
class CtaParams:
    """Model settings (see the module docstring for the formulas and ``docs/cta.md`` for the defaults)."""

    lookbacks: tuple[int, ...] = DEFAULT_LOOKBACKS
    rule: str = "sign"
    target_vol: float = DEFAULT_TARGET_VOL
    leverage_cap: float = DEFAULT_LEVERAGE_CAP
    vol_window: int = DEFAULT_VOL_WINDOW
    z_cap: float = DEFAULT_Z_CAP
    aum: float = DEFAULT_TREND_AUM
    equity_allocation: float = DEFAULT_EQUITY_ALLOCATION

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookbacks", parse_lookbacks(self.lookbacks))
        if self.rule not in RULES:
            raise ParameterError(f"unknown trend rule {self.rule!r}", f"use one of {', '.join(RULES)}")
        checks = {
            "target_vol": self.target_vol,
            "leverage_cap": self.leverage_cap,
            "z_cap": self.z_cap,
            "aum": self.aum,
            "equity_allocation": self.equity_allocation,
        }
        for name, v in checks.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"{name} must be a positive number, got {v!r}")
        if self.equity_allocation > 1:
            raise ParameterError(
                f"equity_allocation is a share of AUM in (0, 1], got {self.equity_allocation}"
            )
        if int(self.vol_window) < 2:
            raise ParameterError(f"vol_window must be >= 2 sessions, got {self.vol_window}")
        if self.rule == "ma" and min(self.lookbacks) <= HORIZON:
            raise ParameterError(
                f"the moving-average rule needs lookbacks > {HORIZON} sessions (trigger paths)",
                "e.g. --lookbacks 21,63,126,252",
            )

    @property
    def sleeve_usd(self) -> float:
        """Capital behind equity futures: ``aum * equity_allocation``."""
        return float(self.aum * self.equity_allocation)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------------------------------------------------
# The model on a whole series (vectorized)
# ---------------------------------------------------------------------------------------------------------


def _sign(x: pd.Series) -> pd.Series:
    """Elementwise sign (NaN stays NaN) as a Series on the same index."""
    return pd.Series(np.sign(x.to_numpy(dtype=float)), index=x.index)


def trend_model(
    prices: pd.Series, params: CtaParams | None = None, freeze_vol_after: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Signals, positions, leverage, aggregate position and notional on every date of a price series.

    Parameters
    ----------
    prices : pd.Series
        Daily closes (> 0) on a sorted DatetimeIndex.
    params : CtaParams, optional
    freeze_vol_after : Timestamp, optional
        Hold the realized vol at its value on this date for all later dates (scenario paths).

    Returns
    -------
    pd.DataFrame
        Indexed like ``prices``: ``price``, ``realized_vol`` (annualized, decimal), ``signal_<L>`` and
        ``position_<L>`` per lookback, ``leverage`` (mean position, multiple of the sleeve), ``position``
        (aggregate, ``leverage / leverage_cap``) and ``notional_usd``. Rows without a full lookback or vol
        window are NaN.

    Notes
    -----
    See the module docstring: ``w_L = clip(s_L target_vol / sigma, -cap, cap)``, ``a = mean_L w_L / cap``.
    """
    p = params or CtaParams()
    px = prices.astype(float)
    logp = pd.Series(np.log(px.to_numpy()), index=px.index)
    sigma_d = logp.diff().rolling(int(p.vol_window), min_periods=int(p.vol_window)).std(ddof=1)
    if freeze_vol_after is not None:
        sigma_d = sigma_d.mask(sigma_d.index > freeze_vol_after).ffill()
    vol = sigma_d * math.sqrt(_YEAR)
    out = {"price": px, "realized_vol": vol}
    positions: list[pd.Series] = []
    for L in p.lookbacks:  # a handful of lookbacks; each column is vectorized over all dates
        if p.rule == "sign":
            sig = _sign(logp - logp.shift(L))
        elif p.rule == "zscore":
            z = (logp - logp.shift(L)) / (sigma_d * math.sqrt(L))
            sig = (z / p.z_cap).clip(-1.0, 1.0)
        else:
            sig = _sign(px - px.rolling(L, min_periods=L).mean())
        pos = (sig * p.target_vol / vol).clip(-p.leverage_cap, p.leverage_cap)
        out[f"signal_{L}"] = sig
        out[f"position_{L}"] = pos
        positions.append(pos)
    frame = pd.DataFrame(out, index=px.index)
    lev = pd.concat(positions, axis=1).mean(axis=1, skipna=False)
    frame["leverage"] = lev
    frame["position"] = lev / p.leverage_cap
    frame["notional_usd"] = lev * p.sleeve_usd
    return frame


def _min_history(p: CtaParams) -> int:
    """Prices needed before the first full row: the longest lookback (or MA window) and the vol window."""
    need_signal = max(p.lookbacks) + (0 if p.rule == "ma" else 1)
    return max(need_signal, int(p.vol_window) + 1)


def cta_history(prices: pd.Series, params: CtaParams | None = None) -> pd.DataFrame:
    """The model on every date plus its daily P&L.

    Returns :func:`trend_model`'s frame from the first full row on, with ``price_return`` (close to close,
    decimal), ``cta_return = leverage_{t-1} * price_return_t`` (return on the sleeve's capital: the position
    set at one close is held to the next) and ``pnl_usd = notional_{t-1} * price_return_t``.

    Notes
    -----
    No transaction costs, no financing: with dividend-adjusted closes ``price_return`` is a total return, while
    futures earn the excess return (total return minus the cash rate), so long years are overstated and short
    years understated by about ``leverage x cash rate``.
    """
    p = params or CtaParams()
    frame = trend_model(prices, p)
    frame["price_return"] = frame["price"].pct_change()
    frame["cta_return"] = frame["leverage"].shift(1) * frame["price_return"]
    frame["pnl_usd"] = frame["notional_usd"].shift(1) * frame["price_return"]
    first = frame["leverage"].first_valid_index()
    if first is None:
        raise DataError(
            f"{len(prices)} prices are too few for the model (needs {_min_history(p)})",
            "use a longer price history or shorter --lookbacks",
        )
    return frame.loc[first:]


def pnl_by_year(history: pd.DataFrame) -> pd.DataFrame:
    """Per calendar year: the model's compounded return on its sleeve, dollars P&L, and the price return.

    Columns ``year``, ``sessions``, ``cta_return`` (``prod(1 + cta_return) - 1``), ``pnl_usd`` (sum),
    ``price_return`` (``prod(1 + price_return) - 1`` over the same sessions), ``mean_position`` (aggregate),
    ``made_money``. The first year starts at the first session with a position (its return counts from the
    next session), so it can be partial (``sessions`` tells).
    """
    h = history.iloc[1:]  # the first row has no position held into it
    year = pd.DatetimeIndex(h.index).year
    g = h.groupby(year)
    out = pd.DataFrame(
        {
            "sessions": g.size(),
            "cta_return": g["cta_return"].apply(lambda r: float(np.prod(1.0 + r.to_numpy()) - 1.0)),
            "pnl_usd": g["pnl_usd"].sum(),
            "price_return": g["price_return"].apply(lambda r: float(np.prod(1.0 + r.to_numpy()) - 1.0)),
            "mean_position": history["position"].shift(1).iloc[1:].groupby(year).mean(),
        }
    )
    out.index.name = "year"
    out = out.reset_index()
    out["made_money"] = out["cta_return"] > 0
    return out


# ---------------------------------------------------------------------------------------------------------
# One date: state, triggers, scenarios
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookbackState:
    """One lookback on the analysis date.

    ``trigger_price`` is the next session's flip level and ``distance_pct`` its distance from today's close in
    percent (``100 (trigger / price - 1)``); ``trigger_path`` holds ``(date, price, distance_pct)`` for the
    next ``HORIZON`` sessions.
    """

    days: int
    signal: float
    position: float
    lookback_return: float
    trigger_price: float
    distance_pct: float
    trigger_path: tuple[tuple[dt.date, float, float], ...]

    @property
    def side(self) -> str:
        """Whether the next-session trigger is above or below today's close."""
        return "above" if self.distance_pct > 0 else "below"

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "signal": self.signal,
            "position": self.position,
            "lookback_return": self.lookback_return,
            "trigger_price": self.trigger_price,
            "distance_pct": self.distance_pct,
            "side": self.side,
            "trigger_path": [
                {"date": d.isoformat(), "price": p, "distance_pct": x} for d, p, x in self.trigger_path
            ],
        }


@dataclass(frozen=True)
class Scenario:
    """Model state after a 5-session price path (see the module docstring)."""

    name: str
    move_vol: float
    price: float
    return_pct: float
    position: float
    notional_usd: float
    flow_usd: float
    flow_share_of_adv: float | None
    path_positions: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "move_vol": self.move_vol,
            "price": self.price,
            "return_pct": self.return_pct,
            "position": self.position,
            "notional_usd": self.notional_usd,
            "flow_usd": self.flow_usd,
            "flow_share_of_adv": self.flow_share_of_adv,
            "path_positions": list(self.path_positions),
        }


@dataclass(frozen=True)
class CtaResult:
    """The model on one date: aggregate position, notional, per-lookback triggers and scenario flows."""

    date: dt.date
    price: float
    position: float
    leverage: float
    notional_usd: float
    realized_vol: float
    lookbacks: tuple[LookbackState, ...]
    scenarios: tuple[Scenario, ...]
    path_dates: tuple[dt.date, ...]
    params: CtaParams
    adv_usd: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def nearest_trigger_above(self) -> LookbackState | None:
        above = [lb for lb in self.lookbacks if lb.distance_pct > 0]
        return min(above, key=lambda lb: lb.distance_pct) if above else None

    @property
    def nearest_trigger_below(self) -> LookbackState | None:
        below = [lb for lb in self.lookbacks if lb.distance_pct <= 0]
        return max(below, key=lambda lb: lb.distance_pct) if below else None

    def scenario(self, name: str) -> Scenario:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        def nearest(lb: LookbackState | None) -> dict[str, Any] | None:
            return (
                None
                if lb is None
                else {"days": lb.days, "price": lb.trigger_price, "distance_pct": lb.distance_pct}
            )

        return {
            "date": self.date.isoformat(),
            "price": self.price,
            "position": self.position,
            "leverage": self.leverage,
            "notional_usd": self.notional_usd,
            "realized_vol": self.realized_vol,
            "adv_usd": self.adv_usd,
            "nearest_trigger_above": nearest(self.nearest_trigger_above),
            "nearest_trigger_below": nearest(self.nearest_trigger_below),
            "lookbacks": [lb.to_dict() for lb in self.lookbacks],
            "scenarios": [s.to_dict() for s in self.scenarios],
            "path_dates": [d.isoformat() for d in self.path_dates],
            "params": self.params.to_dict(),
            "warnings": list(self.warnings),
        }


def _next_sessions(day: pd.Timestamp, n: int) -> list[dt.date]:
    """The ``n`` NYSE sessions after ``day`` (weekdays when ``day`` is outside the exchange calendar)."""
    from volsurf.market.calendar import first_n_trading_days

    try:
        return first_n_trading_days(day + pd.Timedelta(days=1), n)
    except ParameterError:
        return [d.date() for d in pd.bdate_range(day + pd.Timedelta(days=1), periods=n)]


def trigger_path(prices: np.ndarray, lookback: int, rule: str, horizon: int = HORIZON) -> np.ndarray:
    """Flip levels of one lookback for the next ``1..horizon`` sessions, from closes ending today.

    ``sign``/``zscore``: ``P_{t+k-L}``; ``ma``: mean of ``P_{t+k-L+1} .. P_t`` (see the module docstring).
    ``prices`` must hold at least ``lookback`` closes (oldest first, today last).
    """
    P = np.asarray(prices, dtype=float)
    n = P.size
    k = np.arange(1, horizon + 1)
    if rule == "ma":
        c = np.concatenate([[0.0], np.cumsum(P)])  # c[j] = sum of P[:j]
        lo = n - lookback + k  # first index still in the window at t+k
        ok = lo >= 0
        out = np.full(horizon, np.nan)
        out[ok] = (c[n] - c[lo[ok]]) / (lookback - k[ok])
        return out
    idx = n - 1 + k - lookback
    out = np.full(horizon, np.nan)
    ok = (idx >= 0) & (idx <= n - 1)
    out[ok] = P[idx[ok]]
    return out


def cta_positioning(
    prices: pd.Series,
    date: dt.date | str | None = None,
    params: CtaParams | None = None,
    adv_usd: float | None = None,
) -> CtaResult:
    """The model's state on ``date`` (default: the last date), trigger levels and 5-session scenario flows.

    Parameters
    ----------
    prices : pd.Series
        Daily closes on a sorted DatetimeIndex (e.g. from :func:`load_prices`).
    date : date, optional
        Analysis date; the last close on or before it is used.
    params : CtaParams, optional
    adv_usd : float, optional
        Average daily dollar volume of the traded index futures (adds ``flow_share_of_adv`` to scenarios).

    Returns
    -------
    CtaResult

    Raises
    ------
    DataError
        Too few prices before ``date``.
    ParameterError
        A bad ``adv_usd`` or a date before the series.
    """
    p = params or CtaParams()
    if adv_usd is not None and not (math.isfinite(adv_usd) and adv_usd > 0):
        raise ParameterError(f"ADV must be a positive number of dollars per day, got {adv_usd}")
    px = prices.dropna().astype(float).sort_index()
    if date is not None:
        cut = pd.Timestamp(date)
        px = px.loc[:cut]
        if px.empty:
            raise ParameterError(
                f"no price on or before {cut.date()}", f"the series starts {prices.index[0].date()}"
            )
    need = _min_history(p) + HORIZON
    tail_len = max(p.lookbacks) + int(p.vol_window) + HORIZON + 2
    if len(px) < _min_history(p):
        raise DataError(
            f"{len(px)} prices up to {px.index[-1].date()} are too few for the model (needs {_min_history(p)})",
            "use a longer price history, a later --date or shorter --lookbacks",
        )
    tail = px.iloc[-tail_len:]
    base = trend_model(tail, p)
    today = base.iloc[-1]
    day = px.index[-1]
    dates = _next_sessions(day, HORIZON)
    P = tail.to_numpy()
    price = float(P[-1])
    warnings_: list[str] = []
    if len(px) < need:
        warnings_.append(f"only {len(px)} prices: trigger paths beyond the history are NaN")

    states = []
    for L in p.lookbacks:
        path = trigger_path(P, L, p.rule)
        dist = 100.0 * (path / price - 1.0)
        states.append(
            LookbackState(
                days=L,
                signal=float(today[f"signal_{L}"]),
                position=float(today[f"position_{L}"]),
                lookback_return=float(price / P[-1 - L] - 1.0) if len(P) > L else math.nan,
                trigger_price=float(path[0]),
                distance_pct=float(dist[0]),
                trigger_path=tuple(zip(dates, path.tolist(), dist.tolist(), strict=True)),
            )
        )

    sigma_d = float(today["realized_vol"]) / math.sqrt(_YEAR)
    steps = np.arange(1, HORIZON + 1) / HORIZON
    idx = pd.DatetimeIndex(pd.to_datetime(dates))
    scenarios: list[Scenario] = []
    for name, m in SCENARIO_MOVES.items():  # five what-if paths, each a vectorized rerun of the model
        total_log = m * sigma_d * math.sqrt(HORIZON)
        path_px = pd.Series(price * np.exp(total_log * steps), index=idx)
        run = trend_model(pd.concat([tail, path_px]), p, freeze_vol_after=day).iloc[-HORIZON:]
        end = run.iloc[-1]
        flow = float(end["notional_usd"] - today["notional_usd"])
        scenarios.append(
            Scenario(
                name=name,
                move_vol=m,
                price=float(path_px.iloc[-1]),
                return_pct=100.0 * math.expm1(total_log),
                position=float(end["position"]),
                notional_usd=float(end["notional_usd"]),
                flow_usd=flow,
                flow_share_of_adv=None if adv_usd is None else flow / adv_usd,
                path_positions=tuple(float(x) for x in run["position"]),
            )
        )
    return CtaResult(
        date=day.date(),
        price=price,
        position=float(today["position"]),
        leverage=float(today["leverage"]),
        notional_usd=float(today["notional_usd"]),
        realized_vol=float(today["realized_vol"]),
        lookbacks=tuple(states),
        scenarios=tuple(scenarios),
        path_dates=tuple(dates),
        params=p,
        adv_usd=adv_usd,
        warnings=warnings_,
    )


# ---------------------------------------------------------------------------------------------------------
# Alignment with the rebalancing estimate (item 4; the lead wires it into flags/report)
# ---------------------------------------------------------------------------------------------------------

#: Both flows must be at least this many dollars for the alignment flag (strength = smaller flow / this).
DEFAULT_MIN_ALIGNED_FLOW_USD = 1e9


def _direction(x: float) -> str:
    return "buy equities" if x > 0 else "sell equities" if x < 0 else "none"


def cta_alignment_flag(
    rebalance: Any | None,
    cta: CtaResult | None,
    scenario: str = "flat",
    min_flow_usd: float = DEFAULT_MIN_ALIGNED_FLOW_USD,
) -> Flag:
    """Flag when the rebalancing trade and the CTA scenario flow both sell (or both buy) equities.

    Parameters
    ----------
    rebalance : RebalanceResult or None
        From :func:`volsurf.flows.rebalance.rebalance_flow`; its ``trades['equity']`` is dollars, negative =
        sell equities.
    cta : CtaResult or None
        From :func:`cta_positioning`; the flow of ``scenario`` (default ``flat``: the mechanical flow over the
        next 5 sessions if prices do not move) is dollars, negative = sell.
    scenario : str
        Which scenario's flow to compare.
    min_flow_usd : float
        Both flows must be at least this large (default $1bn).

    Returns
    -------
    Flag
        ``triggered`` when the signs agree and ``min(|rebalance|, |cta|) >= min_flow_usd``; ``strength`` =
        ``min(|rebalance|, |cta|) / min_flow_usd`` when the signs agree, else 0.0; not evaluated (strength
        None) without both inputs. ``evidence`` holds both sizes and directions and every scenario's flow
        with whether it aligns.
    """
    name = "cta_rebalance_alignment"
    desc = (
        f"the quarter-end rebalancing trade and the trend followers' '{scenario}' 5-session flow point the same "
        f"way (both sell or both buy equities), each at least ${min_flow_usd / 1e9:g}bn: the moves can extend"
    )

    def not_evaluated(reason: str, **ev: Any) -> Flag:
        return Flag(name, False, None, {"reason": reason, **ev}, desc, evaluated=False)

    if rebalance is None:
        return not_evaluated("no rebalancing estimate (give equity/bond returns or price files)")
    if cta is None:
        return not_evaluated("no CTA model (give an equity price file)")
    trades = getattr(rebalance, "trades", {}) or {}
    if "equity" not in trades:
        return not_evaluated("the rebalancing estimate has no 'equity' asset")
    names = [s.name for s in cta.scenarios]
    if scenario not in names:
        raise ParameterError(f"unknown CTA scenario {scenario!r}", f"use one of {', '.join(names)}")
    reb = float(trades["equity"])
    flow = float(cta.scenario(scenario).flow_usd)
    if not (math.isfinite(reb) and math.isfinite(flow)):
        return not_evaluated(
            "a flow is not a finite number", rebalance_equity_trade_usd=reb, cta_flow_usd=flow
        )
    aligned = reb * flow > 0
    size = min(abs(reb), abs(flow))
    strength = size / min_flow_usd if aligned else 0.0
    evidence = {
        "rebalance_equity_trade_usd": reb,
        "rebalance_direction": _direction(reb),
        "cta_scenario": scenario,
        "cta_flow_usd": flow,
        "cta_direction": _direction(flow),
        "combined_flow_usd": reb + flow if aligned else None,
        "cta_date": cta.date.isoformat(),
        "cta_position": cta.position,
        "cta_notional_usd": cta.notional_usd,
        "scenario_flows_usd": {s.name: s.flow_usd for s in cta.scenarios},
        "aligned_scenarios": [s.name for s in cta.scenarios if s.flow_usd * reb > 0],
        "min_flow_usd": min_flow_usd,
    }
    if cta.adv_usd is not None:
        evidence["cta_flow_share_of_adv"] = flow / cta.adv_usd
    return Flag(name, bool(aligned and strength >= 1.0), float(strength), evidence, desc)
