"""Time to expiry and settlement times.

Day count: ACT/365 on minutes, ``t = minutes(valuation -> settlement) / 525,600``, the convention of the
Cboe VIX methodology. Valuation and settlement are timezone-aware instants, so 0DTE options get a real,
small ``t`` (e.g. 30 minutes before a 16:00 settlement: t = 30/525,600 = 5.7e-5 years); there is no
one-day floor.

Settlement: AM-settled roots (standard monthly SPX, NDX, RUT, XSP AM...) settle on the opening print,
modelled as 09:30 New York on the expiry date; every other root (SPXW, NDXP, SPY, equities...) at the session
close: 16:00, or 13:00 on the NYSE early-close days (the day after Thanksgiving, Christmas Eve, July 3...; from the
exchange calendar, :func:`volsurf.market.calendar.session_open_close`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from volsurf.units import MINUTES_PER_YEAR, NY

# Roots whose standard monthly options are AM-settled (settle on the special opening quotation).
AM_SETTLED_ROOTS: frozenset[str] = frozenset({"SPX", "NDX", "RUT", "DJX", "OEX_AM", "MXEA", "MXEF", "VIX"})


# Cash-settled European index option roots; everything else (ETFs, stocks) is American-style.
EUROPEAN_ROOTS: frozenset[str] = frozenset(
    {"SPX", "SPXW", "SPXPM", "XSP", "NDX", "NDXP", "RUT", "RUTW", "DJX", "VIX", "VIXW", "MXEA", "MXEF", "OEX", "XEO"}
)


def exercise_style(root: str) -> str:
    """``european`` for cash-settled index roots, ``american`` otherwise.

    volsurf prices with Black-76 (European) throughout; for American options the out-of-the-money side, which
    the smile uses, carries little early-exercise premium, while ITM puts/calls may read slightly high.
    """
    return "european" if root.upper() in EUROPEAN_ROOTS else "american"


def settlement_for_root(root: str) -> str:
    """``AM`` for AM-settled roots (SPX, NDX, RUT...), ``PM`` for everything else (SPXW, NDXP, SPY...)."""
    return "AM" if root.upper() in AM_SETTLED_ROOTS else "PM"


def pm_close_minutes(dates: pd.DatetimeIndex) -> np.ndarray:
    """Minutes after midnight (New York) of the PM settlement on each date: the NYSE session close, 16:00 on a
    regular day and 13:00 on an early-close day; 16:00 on a date that is not a session."""
    from volsurf.market.calendar import nyse

    out = np.full(len(dates), 16 * 60)
    days = pd.DatetimeIndex(dates).normalize()
    if len(days) == 0:
        return out
    sched = nyse().schedule
    hit = days.isin(sched.index)
    if hit.any():
        closes = pd.DatetimeIndex(sched.loc[days[hit], "close"]).tz_convert(NY)
        out[np.flatnonzero(hit)] = closes.hour * 60 + closes.minute
    return out


def settlement_times(expiry_dates: Any, settlements: Any) -> pd.DatetimeIndex:
    """Settlement instants (America/New_York) for expiry dates and ``AM``/``PM`` labels (vectorized).

    AM: 09:30. PM: the session close of the expiry date (:func:`pm_close_minutes`: 13:00 on early closes)."""
    raw = pd.Series(expiry_dates).astype(str)
    am = np.asarray(settlements) == "AM"
    if len(raw) == 0:
        offsets = np.where(am, 9 * 60 + 30, 16 * 60)
        return pd.DatetimeIndex(pd.to_datetime(raw) + pd.to_timedelta(offsets, unit="m")).tz_localize(NY)
    # A chain holds a few dozen (date, settlement) pairs among thousands of rows: parse, offset and localize each
    # distinct pair once, then broadcast (string parsing and DST look-ups dominate otherwise).
    codes, uniq = pd.factorize(raw, use_na_sentinel=False)
    pair, inverse = np.unique(codes * 2 + am, return_inverse=True)
    dates = pd.DatetimeIndex(pd.to_datetime(list(uniq))).take(pair // 2)
    offsets = np.where(pair % 2 == 1, 9 * 60 + 30, pm_close_minutes(dates))
    local = dates + pd.to_timedelta(offsets, unit="m")
    return pd.DatetimeIndex(local).tz_localize(NY).take(inverse.ravel())


def year_fraction(valuation_time: pd.Timestamp, expiry: Any) -> np.ndarray:
    """Years from ``valuation_time`` to each ``expiry`` (ACT/365 on minutes, may be <= 0 when expired)."""
    val = pd.Timestamp(valuation_time)
    exp = pd.DatetimeIndex(expiry)
    minutes = (exp - val).total_seconds().to_numpy() / 60.0
    return minutes / MINUTES_PER_YEAR
