"""Exchange calendar facts (NYSE sessions via ``exchange_calendars``): trade dates, closes, quarter-ends.

All times are America/New_York unless stated otherwise.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import pandas as pd

NY = "America/New_York"


@lru_cache(maxsize=1)
def nyse():
    """The XNYS exchange calendar (loaded once; importing exchange_calendars is slow)."""
    import exchange_calendars as xcals

    return xcals.get_calendar("XNYS", start="2000-01-01", end="2035-12-31")


def _as_ny(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        ts = ts.tz_localize(NY)
    return ts.tz_convert(NY)


def is_session(day: dt.date) -> bool:
    """True when NYSE holds a regular session on ``day``."""
    return bool(nyse().is_session(pd.Timestamp(day)))


def session_open_close(day: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Open and close of the session on ``day`` (New York time; early closes included)."""
    cal = nyse()
    d = pd.Timestamp(day)
    return cal.session_open(d).tz_convert(NY), cal.session_close(d).tz_convert(NY)


def previous_session(day: dt.date) -> dt.date:
    """The last session strictly before ``day``."""
    return nyse().date_to_session(pd.Timestamp(day) - pd.Timedelta(days=1), direction="previous").date()


def trade_date_for(quote_time: pd.Timestamp) -> dt.date:
    """The session whose prices a file stamped ``quote_time`` holds.

    During or after a session: that session. Before the open, on a weekend or on a holiday: the previous
    session (a download then shows the last close).
    """
    ts = _as_ny(quote_time)
    day = ts.date()
    if is_session(day):
        open_, _ = session_open_close(day)
        if ts >= open_:
            return day
    return previous_session(day)


def valuation_time_for(quote_time: pd.Timestamp) -> pd.Timestamp:
    """When prices in a file stamped ``quote_time`` were valid: the quote time inside a session, else the
    close of :func:`trade_date_for` (early closes respected)."""
    ts = _as_ny(quote_time)
    day = trade_date_for(ts)
    open_, close = session_open_close(day)
    if open_ <= ts <= close:
        return ts
    return close
