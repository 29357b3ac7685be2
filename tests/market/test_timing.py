"""Settlement instants and year fractions (ACT/365 on minutes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volsurf.market.timing import exercise_style, settlement_for_root, settlement_times, year_fraction


@pytest.mark.parametrize(
    "root,settlement,style",
    [("SPX", "AM", "european"), ("SPXW", "PM", "european"), ("NDX", "AM", "european"), ("NDXP", "PM", "european"),
     ("XSP", "PM", "european"), ("SPY", "PM", "american"), ("AAPL", "PM", "american")],
)
def test_root_conventions(root, settlement, style):
    assert settlement_for_root(root) == settlement
    assert exercise_style(root) == style


def test_settlement_times_match_wall_clock_across_dst():
    dates = ["2023-03-10", "2023-03-17", "2023-03-17", "2023-11-03", "2023-11-10"]
    sett = ["PM", "AM", "PM", "AM", "PM"]
    got = settlement_times(dates, sett)
    expected = [pd.Timestamp(f"{d} {'09:30' if s == 'AM' else '16:00'}", tz="America/New_York") for d, s in zip(dates, sett, strict=True)]
    assert list(got) == expected


def test_year_fraction_is_minutes_over_525600():
    val = pd.Timestamp("2022-09-27 10:45", tz="America/New_York")
    # Cboe VIX example: near term 2022-10-21 AM settlement = 34,484 minutes after 10:45:15 (seconds dropped)
    t = year_fraction(val, settlement_times(["2022-10-21", "2022-10-28"], ["AM", "PM"]))
    np.testing.assert_allclose(t * 525_600, [34_485, 44_955])  # 10:45 exactly: one minute more than 10:45:15's count
    # 0DTE: 30 minutes before the close
    t0 = year_fraction(pd.Timestamp("2024-01-02 15:30", tz="America/New_York"), settlement_times(["2024-01-02"], ["PM"]))
    assert t0[0] == pytest.approx(30 / 525_600)


def test_pm_settlement_honours_early_closes():
    # NYSE 2025 holiday schedule (nyse.com/markets/hours-calendars): early close at 1:00 p.m. on Friday
    # November 28 (day after Thanksgiving) and Wednesday December 24; a regular 4:00 p.m. close on December 26.
    got = settlement_times(["2025-11-28", "2025-12-24", "2025-12-26", "2025-11-28"], ["PM", "PM", "PM", "AM"])
    assert [(ts.hour, ts.minute) for ts in got] == [(13, 0), (13, 0), (16, 0), (9, 30)]


def test_after_close_file_on_an_early_close_day_has_the_same_day_expiry_expired():
    from volsurf.io.common import _finalize

    frame = pd.DataFrame({
        "root": ["SPXW"] * 4,
        "expiry_date": ["2025-11-28", "2025-11-28", "2025-12-01", "2025-12-01"],
        "type": ["call", "put"] * 2,
        "strike": [6800.0] * 4,
        "bid": [1.0] * 4,
        "ask": [1.2] * 4,
    })
    # a download at 16:30 on the day after Thanksgiving: prices are those of the 13:00 close
    snap = _finalize(frame, path="x.csv", source_format="test", spot=6800.0,
                     quote_time=pd.Timestamp("2025-11-28 16:30", tz="America/New_York"))
    assert snap.meta.valuation_time == pd.Timestamp("2025-11-28 13:00", tz="America/New_York")
    assert set(snap.frame["expiry_date"].astype(str)) == {"2025-12-01"}
    assert snap.meta.hygiene["expired"] == 2
    assert set(snap.removed["expiry_date"].astype(str)) == {"2025-11-28"}
    # intraday on that day, time to the same-day expiry ends at 13:00: 30 minutes from 12:30
    intraday = _finalize(frame, path="x.csv", source_format="test", spot=6800.0,
                         quote_time=pd.Timestamp("2025-11-28 12:30", tz="America/New_York"))
    same_day = intraday.frame["expiry_date"].astype(str) == "2025-11-28"
    t = year_fraction(intraday.meta.valuation_time, intraday.frame.loc[same_day, "expiry"])
    np.testing.assert_allclose(t, 30.0 / 525_600.0, rtol=0, atol=1e-15)
