"""Exchange calendar facts (NYSE sessions via ``exchange_calendars``): trade dates, closes, quarter-ends.

All times are America/New_York unless stated otherwise. Holidays and special closures (e.g. 2025-01-09, the
national day of mourning for President Carter) come from the ``exchange_calendars`` XNYS calendar; there is no
hand-written holiday list here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from volsurf._typing import DatesLike
from volsurf.errors import ParameterError
from volsurf.units import NY


@lru_cache(maxsize=1)
def nyse() -> Any:
    """The XNYS exchange calendar (loaded once; importing exchange_calendars is slow).

    Starts in 1990 so that historical daily series (e.g. the S&P 500 from 1999) can be placed in it.
    """
    import warnings

    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange_calendars builds its tables with Series.values on tz-aware data, which pandas >= 3.1
        # deprecates (Pandas4Warning). It is the library's internal use, harmless for the values we read.
        warnings.filterwarnings("ignore", message=".*Series.values.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*Series.values.*", category=DeprecationWarning)
        return xcals.get_calendar("XNYS", start="1990-01-01", end="2035-12-31")


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
    # Read the schedule table directly: cal.session_open() trips a pandas>=3.1 deprecation warning inside
    # exchange_calendars (Series.values on tz-aware data).
    row = cal.schedule.loc[d]
    return pd.Timestamp(row["open"]).tz_convert(NY), pd.Timestamp(row["close"]).tz_convert(NY)


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


# ---------------------------------------------------------------------------------------------------------
# Period ends, windows and expiries (all counted in NYSE sessions from the exchange calendar).
# ---------------------------------------------------------------------------------------------------------

#: Trading days that make up a "window" (last N of a quarter/year, first N of January).
WINDOW_DAYS = 5

PERIODS = ("month", "quarter", "year")

DateLike = dt.date | str | pd.Timestamp | np.datetime64


@lru_cache(maxsize=1)
def _sessions() -> np.ndarray:
    """All XNYS sessions as a sorted ``datetime64[D]`` array (for vectorized searchsorted look-ups)."""
    return nyse().sessions.to_numpy().astype("datetime64[D]")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_days(values: np.ndarray) -> np.ndarray | None:
    """``datetime64[D]`` of an array of ``YYYY-MM-DD`` strings (the dates ``pd.to_datetime`` gives them, parsed by
    numpy without pandas' format inference); None when any value is something else."""
    items = values.tolist()
    if not all(type(v) is str and _ISO_DATE.fullmatch(v) for v in items):
        return None
    try:
        return np.array(items, dtype="datetime64[D]")
    except ValueError:
        return None


def date_days(values: Any) -> np.ndarray:
    """``datetime64[D]`` of an array of dates: ``YYYY-MM-DD`` strings through :func:`iso_days`, anything else
    through ``pd.to_datetime`` (a zone-aware time gives its local date)."""
    arr = np.asarray(values)
    days = iso_days(arr)
    if days is not None:
        return days
    idx = pd.DatetimeIndex(pd.to_datetime(arr.ravel()))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.to_numpy().astype("datetime64[D]")


def _to_day(day: DateLike) -> np.datetime64:
    try:
        d = np.datetime64(pd.Timestamp(day).date(), "D")
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"not a date: {day!r}", "use YYYY-MM-DD") from exc
    s = _sessions()
    if d < s[0] or d > s[-1]:
        raise ParameterError(
            f"date {d} is outside the exchange calendar ({s[0]} .. {s[-1]})", "use a date in that range"
        )
    return d


def _to_days(days: DatesLike) -> np.ndarray:
    """Dates (any array-like of date-likes) as ``datetime64[D]``, checked against the calendar's range."""
    arr = pd.DatetimeIndex(pd.to_datetime(np.asarray(days).ravel())).to_numpy().astype("datetime64[D]")
    s = _sessions()
    if arr.size and (arr.min() < s[0] or arr.max() > s[-1]):
        raise ParameterError(
            f"dates {arr.min()} .. {arr.max()} fall outside the exchange calendar ({s[0]} .. {s[-1]})",
            "use dates in that range",
        )
    return arr


def _as_date(d: np.datetime64) -> dt.date:
    return pd.Timestamp(d).date()


def _session_on_or_before(days: np.ndarray) -> np.ndarray:
    """The last session on or before each day (vectorized)."""
    s = _sessions()
    return s[np.searchsorted(s, days, side="right") - 1]


def _period_last_calendar_day(days: np.ndarray, period: str) -> np.ndarray:
    """Last calendar day of the month / quarter / year containing each day."""
    months = days.astype("datetime64[M]")
    if period == "month":
        end_month = months
    elif period == "quarter":
        m0 = months.astype(np.int64)  # months since 1970-01; 1970-01 starts a quarter
        end_month = (m0 - m0 % 3 + 2).astype("datetime64[M]")
    elif period == "year":
        end_month = (days.astype("datetime64[Y]") + 1).astype("datetime64[M]") - 1
    else:
        raise ParameterError(f"unknown period {period!r}", f"use one of {', '.join(PERIODS)}")
    return (end_month + 1).astype("datetime64[D]") - 1


def _period_first_calendar_day(days: np.ndarray, period: str) -> np.ndarray:
    last = _period_last_calendar_day(days, period)
    span = {"month": 1, "quarter": 3, "year": 12}[period]
    return (last.astype("datetime64[M]") - (span - 1)).astype("datetime64[D]")


def period_end_sessions(days: DatesLike, period: str) -> np.ndarray:
    """Last trading day of the month / quarter / year containing each of ``days`` (``datetime64[D]`` array)."""
    d = _to_days(days)
    return _session_on_or_before(_period_last_calendar_day(d, period))


def trading_days_to_period_end(days: DatesLike, period: str) -> np.ndarray:
    """Sessions strictly after each day up to and including its period's last session (0 on the last day).

    Vectorized over ``days``; a non-session day counts the sessions after it.
    """
    d = _to_days(days)
    s = _sessions()
    end = _session_on_or_before(_period_last_calendar_day(d, period))
    return np.searchsorted(s, end, side="right") - np.searchsorted(s, d, side="right")


def trading_days_from_period_start(days: DatesLike, period: str) -> np.ndarray:
    """1-based index of each session inside its period (1 on the first trading day of the month/quarter/year)."""
    d = _to_days(days)
    s = _sessions()
    first = _period_first_calendar_day(d, period)
    return np.searchsorted(s, d, side="right") - np.searchsorted(s, first, side="left")


def trading_days_between(a: DateLike, b: DateLike) -> int:
    """Number of sessions ``s`` with ``a < s <= b`` (negative when ``b < a``).

    So ``trading_days_between(d, d) == 0`` and, from a session to the next one, 1.
    """
    s = _sessions()
    da, db = _to_day(a), _to_day(b)
    return int(np.searchsorted(s, db, side="right") - np.searchsorted(s, da, side="right"))


def sessions_between(start: DateLike, end: DateLike) -> list[dt.date]:
    """Sessions ``s`` with ``start <= s <= end`` (both inclusive)."""
    s = _sessions()
    lo = np.searchsorted(s, _to_day(start), side="left")
    hi = np.searchsorted(s, _to_day(end), side="right")
    return [_as_date(x) for x in s[lo:hi]]


def last_trading_day_of(day: DateLike, period: str) -> dt.date:
    """Last session of the month / quarter / year containing ``day``."""
    return _as_date(period_end_sessions([_to_day(day)], period)[0])


def last_trading_day_of_month(day: DateLike) -> dt.date:
    """Last session of the calendar month containing ``day``."""
    return last_trading_day_of(day, "month")


def last_trading_day_of_quarter(day: DateLike) -> dt.date:
    """Last session of the calendar quarter containing ``day`` (e.g. 2024-03-28: 03-29 was Good Friday)."""
    return last_trading_day_of(day, "quarter")


def last_trading_day_of_year(day: DateLike) -> dt.date:
    """Last session of the calendar year containing ``day``."""
    return last_trading_day_of(day, "year")


def last_n_trading_days(period_end: DateLike, n: int) -> list[dt.date]:
    """The last ``n`` sessions on or before ``period_end`` (oldest first).

    ``period_end`` may be a calendar date (e.g. 2024-03-31): the window ends at the last session on or before it.
    """
    if n < 1:
        raise ParameterError(f"n must be >= 1, got {n}")
    s = _sessions()
    hi = int(np.searchsorted(s, _to_day(period_end), side="right"))
    if hi - n < 0:
        raise ParameterError(f"fewer than {n} sessions before {period_end}")
    return [_as_date(x) for x in s[hi - n : hi]]


def first_n_trading_days(period_start: DateLike, n: int) -> list[dt.date]:
    """The first ``n`` sessions on or after ``period_start`` (oldest first)."""
    if n < 1:
        raise ParameterError(f"n must be >= 1, got {n}")
    s = _sessions()
    lo = int(np.searchsorted(s, _to_day(period_start), side="left"))
    if lo + n > s.size:
        raise ParameterError(f"fewer than {n} sessions after {period_start} in the calendar")
    return [_as_date(x) for x in s[lo : lo + n]]


def third_friday(year: int, month: int, *, holiday_adjusted: bool = False) -> dt.date:
    """Third Friday of ``year``-``month``; with ``holiday_adjusted`` the previous session when it is a holiday.

    Standard monthly equity/index options expire on the third Friday; when the exchange is closed that day
    (e.g. Good Friday 2025-04-18) they expire on the preceding trading day (Thursday 2025-04-17).
    """
    first = dt.date(year, month, 1)
    # weekday(): Monday=0 .. Friday=4
    day = first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)
    if holiday_adjusted:
        return _as_date(_session_on_or_before(np.array([_to_day(day)]))[0])
    return day


def monthly_expiry(year: int, month: int) -> dt.date:
    """Standard monthly option expiry: the holiday-adjusted third Friday of the month."""
    return third_friday(year, month, holiday_adjusted=True)


def next_monthly_expiry(day: DateLike) -> dt.date:
    """First standard monthly expiry on or after ``day``."""
    d = pd.Timestamp(_to_day(day)).date()
    exp = monthly_expiry(d.year, d.month)
    if exp < d:
        nxt = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        exp = monthly_expiry(nxt.year, nxt.month)
    return exp


@dataclass(frozen=True)
class CalendarContext:
    """Where a trade date sits in the month/quarter/year cycle (sessions from the XNYS calendar).

    ``trading_days_to_*`` count sessions strictly after ``trade_date`` up to and including the target
    (0 on the day itself); ``days_to_*`` are calendar days.
    """

    trade_date: dt.date
    month_end_date: dt.date
    trading_days_to_month_end: int
    quarter_end_date: dt.date
    trading_days_to_quarter_end: int
    days_to_quarter_end: int
    year_end_date: dt.date
    trading_days_to_year_end: int
    days_to_year_end: int
    in_month_end_window: bool
    in_quarter_end_window: bool
    in_year_end_window: bool
    in_first_week_of_january: bool
    next_monthly_expiry: dt.date
    days_to_next_monthly_expiry: int
    trading_days_to_next_monthly_expiry: int
    next_quarterly_expiry: dt.date
    days_to_next_quarterly_expiry: int
    trading_days_to_next_quarterly_expiry: int
    december_opex: dt.date
    days_to_december_opex: int
    trading_days_to_december_opex: int
    window_days: int = WINDOW_DAYS

    def to_dict(self) -> dict[str, object]:
        """Plain dict; dates as ISO strings."""
        out: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.isoformat() if isinstance(v, dt.date) else v
        return out


def calendar_context(trade_date: DateLike, window: int = WINDOW_DAYS) -> CalendarContext:
    """Calendar context of a session: period ends, end-of-period windows and the next expiries.

    Parameters
    ----------
    trade_date : date
        An NYSE session (use :func:`trade_date_for` to get one from a quote time).
    window : int
        Length in sessions of the quarter-end / year-end / month-end windows and of the first week of January.

    Notes
    -----
    ``next_quarterly_expiry`` is the last trading day of the quarter (SPX quarterly options, PM-settled), so it
    equals ``quarter_end_date``. ``december_opex`` is the holiday-adjusted third Friday of December of the
    trade date's year, or of the next year once that date has passed.
    """
    d = _to_day(trade_date)
    day = _as_date(d)
    if not is_session(day):
        raise ParameterError(
            f"{day} is not an NYSE session",
            "pass a trading day (volsurf.market.calendar.trade_date_for maps a time to one)",
        )
    month_end = last_trading_day_of_month(day)
    q_end = last_trading_day_of_quarter(day)
    y_end = last_trading_day_of_year(day)
    td_m = trading_days_between(day, month_end)
    td_q = trading_days_between(day, q_end)
    td_y = trading_days_between(day, y_end)
    td_from_jan = int(trading_days_from_period_start([d], "year")[0])
    nme = next_monthly_expiry(day)
    dec = monthly_expiry(day.year, 12)
    if dec < day:
        dec = monthly_expiry(day.year + 1, 12)
    return CalendarContext(
        trade_date=day,
        month_end_date=month_end,
        trading_days_to_month_end=td_m,
        quarter_end_date=q_end,
        trading_days_to_quarter_end=td_q,
        days_to_quarter_end=(q_end - day).days,
        year_end_date=y_end,
        trading_days_to_year_end=td_y,
        days_to_year_end=(y_end - day).days,
        in_month_end_window=td_m < window,
        in_quarter_end_window=td_q < window,
        in_year_end_window=td_y < window,
        in_first_week_of_january=td_from_jan <= window,
        next_monthly_expiry=nme,
        days_to_next_monthly_expiry=(nme - day).days,
        trading_days_to_next_monthly_expiry=trading_days_between(day, nme),
        next_quarterly_expiry=q_end,
        days_to_next_quarterly_expiry=(q_end - day).days,
        trading_days_to_next_quarterly_expiry=td_q,
        december_opex=dec,
        days_to_december_opex=(dec - day).days,
        trading_days_to_december_opex=trading_days_between(day, dec),
        window_days=window,
    )
