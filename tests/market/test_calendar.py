"""Calendar facts checked against the published NYSE holiday calendar (expected dates written by hand)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volsurf.errors import ParameterError
from volsurf.market.calendar import (
    calendar_context,
    first_n_trading_days,
    is_session,
    last_n_trading_days,
    last_trading_day_of_month,
    last_trading_day_of_quarter,
    last_trading_day_of_year,
    monthly_expiry,
    next_monthly_expiry,
    previous_session,
    session_open_close,
    sessions_between,
    third_friday,
    trade_date_for,
    trading_days_between,
    trading_days_from_period_start,
    trading_days_to_period_end,
    valuation_time_for,
)

D = dt.date


# --- holidays and special closures -------------------------------------------------------------------------

CLOSED = [
    D(2024, 3, 29),  # Good Friday
    D(2025, 4, 18),  # Good Friday
    D(2022, 4, 15),  # Good Friday
    D(2022, 6, 20),  # Juneteenth (Sunday 19th) observed Monday, first year NYSE closed for it
    D(2023, 6, 19),  # Juneteenth
    D(2024, 6, 19),  # Juneteenth
    D(2023, 11, 23),  # Thanksgiving
    D(2024, 11, 28),  # Thanksgiving
    D(2022, 12, 26),  # Christmas (Sunday) observed Monday
    D(2023, 12, 25),  # Christmas
    D(2023, 1, 2),  # New Year's Day (Sunday) observed Monday
    D(2025, 1, 9),  # national day of mourning, President Carter
    D(2018, 12, 5),  # national day of mourning, President G.H.W. Bush
    D(2012, 10, 29),  # Hurricane Sandy
    D(2012, 10, 30),  # Hurricane Sandy
    D(2001, 9, 11),  # September 11
    D(2001, 9, 14),
    D(2023, 9, 4),  # Labor Day
    D(2024, 3, 30),  # Saturday
]

OPEN = [
    D(2021, 6, 18),  # Juneteenth not yet an NYSE holiday in 2021
    D(2021, 12, 31),  # New Year 2022 fell on a Saturday: NYSE does not close the Friday before
    D(2023, 11, 24),  # day after Thanksgiving (early close)
    D(2024, 3, 28),  # Thursday before Good Friday
    D(2025, 1, 8),
    D(2025, 1, 10),
    D(2001, 9, 17),  # reopening after September 11
]


@pytest.mark.parametrize("day", CLOSED)
def test_closed_days(day):
    assert not is_session(day)


@pytest.mark.parametrize("day", OPEN)
def test_open_days(day):
    assert is_session(day)


def test_early_close_day_after_thanksgiving():
    open_, close = session_open_close(D(2023, 11, 24))
    assert (open_.hour, open_.minute) == (9, 30)
    assert (close.hour, close.minute) == (13, 0)


# --- quarter / year / month ends ---------------------------------------------------------------------------

# Last trading day of each quarter, from the calendar facts: weekend quarter-ends roll back to Friday, and
# Q1 2024 ends Thursday 03-28 because Friday 03-29 was Good Friday.
QUARTER_ENDS = [
    (D(2022, 2, 10), D(2022, 3, 31)),  # Thu
    (D(2022, 4, 1), D(2022, 6, 30)),  # Thu
    (D(2022, 9, 30), D(2022, 9, 30)),  # Fri
    (D(2022, 10, 3), D(2022, 12, 30)),  # Fri (31st Saturday)
    (D(2023, 1, 3), D(2023, 3, 31)),  # Fri
    (D(2023, 5, 5), D(2023, 6, 30)),  # Fri
    (D(2023, 7, 3), D(2023, 9, 29)),  # Fri (30th Saturday)
    (D(2023, 12, 31), D(2023, 12, 29)),  # Fri (31st Sunday)
    (D(2024, 1, 2), D(2024, 3, 28)),  # Thu (29th Good Friday, 31st Sunday)
    (D(2024, 6, 1), D(2024, 6, 28)),  # Fri (30th Sunday)
    (D(2024, 9, 1), D(2024, 9, 30)),  # Mon
    (D(2024, 11, 11), D(2024, 12, 31)),  # Tue
    (D(2025, 1, 9), D(2025, 3, 31)),  # Mon
    (D(2025, 4, 18), D(2025, 6, 30)),  # Mon
    (D(2025, 7, 4), D(2025, 9, 30)),  # Tue
    (D(2025, 12, 25), D(2025, 12, 31)),  # Wed
    (D(2026, 3, 1), D(2026, 3, 31)),  # Tue
    (D(2026, 6, 30), D(2026, 6, 30)),  # Tue
    (D(2026, 8, 3), D(2026, 9, 30)),  # Wed
    (D(2026, 10, 1), D(2026, 12, 31)),  # Thu
]


@pytest.mark.parametrize(("day", "expected"), QUARTER_ENDS)
def test_last_trading_day_of_quarter(day, expected):
    assert last_trading_day_of_quarter(day) == expected
    assert expected.weekday() < 5


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2023, 4, 3), D(2023, 4, 28)),  # 30th Sunday
        (D(2024, 5, 1), D(2024, 5, 31)),
        (D(2024, 2, 1), D(2024, 2, 29)),  # leap year
        (D(2025, 8, 15), D(2025, 8, 29)),  # 30/31 weekend
    ],
)
def test_last_trading_day_of_month(day, expected):
    assert last_trading_day_of_month(day) == expected


@pytest.mark.parametrize(
    ("year", "expected"), [(2021, D(2021, 12, 31)), (2022, D(2022, 12, 30)), (2023, D(2023, 12, 29))]
)
def test_last_trading_day_of_year(year, expected):
    assert last_trading_day_of_year(D(year, 6, 1)) == expected


def test_last_5_trading_days_of_q1_2024_skip_good_friday():
    assert last_n_trading_days(D(2024, 3, 31), 5) == [
        D(2024, 3, 22),
        D(2024, 3, 25),
        D(2024, 3, 26),
        D(2024, 3, 27),
        D(2024, 3, 28),
    ]


def test_last_5_trading_days_of_2022_skip_christmas_observed():
    assert last_n_trading_days(D(2022, 12, 31), 5) == [
        D(2022, 12, 23),
        D(2022, 12, 27),
        D(2022, 12, 28),
        D(2022, 12, 29),
        D(2022, 12, 30),
    ]


def test_first_trading_days_2025_skip_carter_closure():
    assert first_n_trading_days(D(2025, 1, 1), 5) == [
        D(2025, 1, 2),
        D(2025, 1, 3),
        D(2025, 1, 6),
        D(2025, 1, 7),
        D(2025, 1, 8),
    ]


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [
        (D(2024, 3, 28), D(2024, 3, 28), 0),
        (D(2024, 3, 28), D(2024, 4, 1), 1),  # over Good Friday and the weekend
        (D(2024, 3, 21), D(2024, 3, 28), 5),
        (D(2025, 1, 8), D(2025, 1, 10), 1),  # 2025-01-09 closed
        (D(2024, 3, 29), D(2024, 4, 1), 1),  # from a holiday
        (D(2024, 4, 1), D(2024, 3, 28), -1),
    ],
)
def test_trading_days_between(a, b, n):
    assert trading_days_between(a, b) == n


def test_sessions_between_inclusive():
    assert sessions_between(D(2024, 3, 27), D(2024, 4, 2)) == [
        D(2024, 3, 27),
        D(2024, 3, 28),
        D(2024, 4, 1),
        D(2024, 4, 2),
    ]


# --- expiries ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "raw", "adjusted"),
    [
        (2025, 4, D(2025, 4, 18), D(2025, 4, 17)),  # Good Friday
        (2019, 4, D(2019, 4, 19), D(2019, 4, 18)),  # Good Friday
        (2014, 4, D(2014, 4, 18), D(2014, 4, 17)),  # Good Friday
        (2027, 6, D(2027, 6, 18), D(2027, 6, 17)),  # Juneteenth (Saturday) observed Friday 2027-06-18
        (2024, 3, D(2024, 3, 15), D(2024, 3, 15)),
        (2022, 6, D(2022, 6, 17), D(2022, 6, 17)),
        (2024, 12, D(2024, 12, 20), D(2024, 12, 20)),
        (2026, 5, D(2026, 5, 15), D(2026, 5, 15)),  # May 1st is a Friday
    ],
)
def test_third_friday(year, month, raw, adjusted):
    assert third_friday(year, month) == raw
    assert raw.weekday() == 4 and 15 <= raw.day <= 21
    assert third_friday(year, month, holiday_adjusted=True) == adjusted
    assert monthly_expiry(year, month) == adjusted


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2025, 4, 17), D(2025, 4, 17)),  # expiry day itself
        (D(2025, 4, 16), D(2025, 4, 17)),
        (D(2025, 4, 21), D(2025, 5, 16)),
        (D(2024, 12, 23), D(2025, 1, 17)),
    ],
)
def test_next_monthly_expiry(day, expected):
    assert next_monthly_expiry(day) == expected


# --- the context -------------------------------------------------------------------------------------------


def test_context_q1_2024():
    c = calendar_context(D(2024, 3, 25))
    assert c.quarter_end_date == D(2024, 3, 28)
    assert c.trading_days_to_quarter_end == 3  # 26, 27, 28
    assert c.days_to_quarter_end == 3
    assert c.in_quarter_end_window and c.in_month_end_window
    assert not c.in_year_end_window and not c.in_first_week_of_january
    assert c.next_monthly_expiry == D(2024, 4, 19)
    assert c.days_to_next_monthly_expiry == 25
    assert c.next_quarterly_expiry == D(2024, 3, 28)
    assert c.december_opex == D(2024, 12, 20)
    assert c.days_to_december_opex == (D(2024, 12, 20) - D(2024, 3, 25)).days
    d = c.to_dict()
    assert d["quarter_end_date"] == "2024-03-28" and d["in_quarter_end_window"] is True


@pytest.mark.parametrize(
    ("day", "in_q"),
    [
        (D(2024, 3, 21), False),  # 5 sessions left after it: 22, 25, 26, 27, 28
        (D(2024, 3, 22), True),  # first of the last 5
        (D(2024, 3, 28), True),
        (D(2024, 4, 1), False),
    ],
)
def test_quarter_end_window_edges(day, in_q):
    assert calendar_context(day).in_quarter_end_window is in_q


def test_quarter_end_day_counts_zero():
    c = calendar_context(D(2022, 12, 30))
    assert c.trading_days_to_quarter_end == 0
    assert c.trading_days_to_year_end == 0
    assert c.in_year_end_window
    assert c.december_opex == D(2023, 12, 15)  # 2022's (12-16) has passed


@pytest.mark.parametrize(
    ("day", "in_y"),
    [(D(2022, 12, 22), False), (D(2022, 12, 23), True), (D(2022, 12, 27), True), (D(2022, 12, 30), True)],
)
def test_year_end_window_2022(day, in_y):
    assert calendar_context(day).in_year_end_window is in_y


@pytest.mark.parametrize(
    ("day", "first_week"),
    [
        (D(2025, 1, 2), True),
        (D(2025, 1, 8), True),  # 5th session (01-09 closed)
        (D(2025, 1, 10), False),  # 6th session
        (D(2023, 1, 9), True),  # 2023: 3, 4, 5, 6, 9 (01-02 observed holiday)
        (D(2023, 1, 10), False),
    ],
)
def test_first_week_of_january(day, first_week):
    assert calendar_context(day).in_first_week_of_january is first_week


def test_context_rejects_holiday():
    with pytest.raises(ParameterError, match="not an NYSE session"):
        calendar_context(D(2024, 3, 29))


def test_out_of_range_date():
    with pytest.raises(ParameterError, match="outside the exchange calendar"):
        last_trading_day_of_quarter(D(1980, 1, 1))


# --- trade dates from quote times --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2023-09-04 14:56", D(2023, 9, 1)),  # Labor Day
        ("2026-08-03 05:22", D(2026, 7, 31)),  # Monday before the open -> Friday
        ("2024-03-29 10:00", D(2024, 3, 28)),  # Good Friday
        ("2025-01-09 12:00", D(2025, 1, 8)),  # Carter closure
        ("2024-06-29 11:00", D(2024, 6, 28)),  # Saturday
        ("2023-12-08 16:30", D(2023, 12, 8)),  # after the close
        ("2023-12-08 09:29", D(2023, 12, 7)),  # one minute before the open
        ("2023-12-08 09:30", D(2023, 12, 8)),
    ],
)
def test_trade_date_for(stamp, expected):
    assert trade_date_for(pd.Timestamp(stamp)) == expected


def test_trade_date_for_utc_stamp():
    # 2026-08-03 09:22 UTC = 05:22 EDT
    assert trade_date_for(pd.Timestamp("2026-08-03 09:22", tz="UTC")) == D(2026, 7, 31)
    # 2023-09-14 20:30 UTC = 16:30 EDT, after that day's close
    assert trade_date_for(pd.Timestamp("2023-09-14 20:30", tz="UTC")) == D(2023, 9, 14)


def test_valuation_time_early_close():
    v = valuation_time_for(pd.Timestamp("2023-11-24 15:00"))
    assert v == pd.Timestamp("2023-11-24 13:00", tz="America/New_York")


def test_previous_session_over_good_friday():
    assert previous_session(D(2024, 4, 1)) == D(2024, 3, 28)


# --- properties --------------------------------------------------------------------------------------------

dates = st.dates(min_value=D(1995, 1, 1), max_value=D(2034, 6, 30))


@settings(max_examples=60, deadline=None)
@given(dates)
def test_quarter_end_is_last_session_of_its_quarter(day):
    q_end = last_trading_day_of_quarter(day)
    q = (day.month - 1) // 3
    assert is_session(q_end)
    assert q_end.year == day.year and (q_end.month - 1) // 3 == q
    # no session after it inside the quarter
    last_cal = (pd.Timestamp(D(day.year, 3 * q + 1, 1)) + pd.offsets.QuarterEnd(0)).date()
    assert sessions_between(q_end, last_cal) == [q_end]


@settings(max_examples=60, deadline=None)
@given(dates, dates, dates)
def test_trading_days_between_additive(a, b, c):
    assert trading_days_between(a, b) + trading_days_between(b, c) == trading_days_between(a, c)


@settings(max_examples=30, deadline=None)
@given(st.lists(dates, min_size=1, max_size=20), st.sampled_from(["month", "quarter", "year"]))
def test_vectorized_counts_match_scalar(days, period):
    to_end = trading_days_to_period_end(days, period)
    from_start = trading_days_from_period_start(days, period)
    end_fn = {"month": last_trading_day_of_month, "quarter": last_trading_day_of_quarter}.get(
        period, last_trading_day_of_year
    )
    for d, n_end, n_start in zip(days, to_end, from_start, strict=True):
        assert n_end == trading_days_between(d, end_fn(d))
        if is_session(d):
            assert n_start >= 1
    assert isinstance(to_end, np.ndarray)
