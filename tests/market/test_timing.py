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
