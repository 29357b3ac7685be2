"""Calibrated flag thresholds (volsurf.signals.calibration): percentiles of the N-session change.

References: histories built so that the N-session changes are known integers (percentiles and ranks by hand),
and the exchange calendar for session spacing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from volsurf.errors import ParameterError
from volsurf.market.calendar import sessions_between
from volsurf.signals.calibration import (
    MIN_HISTORY,
    calibrate_records,
    calibrated_threshold,
    session_changes,
)


def _sessions(n: int, start: str = "2023-01-03") -> pd.DatetimeIndex:
    return pd.DatetimeIndex(sessions_between(start, "2030-12-31")[:n])


def test_undated_changes_known_percentile():
    # x_i = i^2 / 2 with lookback 1: changes are i - 0.5 -> 0.5, 1.5, ..., 98.5 (past), today 99.5
    x = np.arange(101) ** 2 / 2.0
    c = calibrated_threshold(x, lookback=1, percentile=90, default=0.01)
    assert c.calibrated and c.n_observations == 99
    # numpy linear percentile of 0.5..98.5 at 90: position 0.9 * 98 = 88.2 -> 88.5 + 0.2
    assert c.threshold == pytest.approx(88.7)
    assert c.change_today == pytest.approx(99.5) and c.percentile_of_today == pytest.approx(100.0)


def test_percentile_of_today_ties_count_half():
    # changes (lookback 1) of x: past = [1, 2, 2, 3], today = 2 -> (1 + 0.5 * 2) / 4 = 50 %
    x = np.cumsum([0, 1, 2, 2, 3, 2])
    c = calibrated_threshold(x, lookback=1, min_history=3, default=1.0)
    assert c.percentile_of_today == pytest.approx(50.0) and c.n_observations == 4


def test_direction_minus_one_for_risk_reversal():
    # a falling risk reversal steepens the skew: thresholds and ranks are on -change
    x = -(np.arange(101) ** 2) / 2.0
    c = calibrated_threshold(x, lookback=1, direction=-1, default=0.01)
    assert c.threshold == pytest.approx(88.7) and c.change_today == pytest.approx(-99.5)
    assert c.evidence()["threshold_change"] == pytest.approx(-88.7)
    assert c.percentile_of_today == pytest.approx(100.0)


def test_dated_history_uses_sessions_and_skips_gaps():
    idx = _sessions(80)
    s = pd.Series(np.arange(80.0) ** 2, index=idx)
    ch = session_changes(s, 5)
    # (i)^2 - (i-5)^2 = 10 i - 25
    np.testing.assert_allclose(ch.iloc[5:].to_numpy(), 10 * np.arange(5, 80) - 25)
    gap = s.drop(idx[40])
    chg = session_changes(gap, 5)
    assert chg.isna().sum() == 5 + 2  # the first five, and both changes touching the gap
    c = calibrated_threshold(gap, 5, default=0.01)
    assert c.n_observations == 80 - 5 - 2 - 1 and c.calibrated
    assert c.history_end == str(idx[-2].date())


def test_weekend_values_ignored():
    days = pd.date_range("2024-01-01", periods=200, freq="D")
    s = pd.Series(np.arange(200.0), index=days)
    ch = session_changes(s, 1).dropna()
    sess = pd.DatetimeIndex(sessions_between("2024-01-01", str(days[-1].date())))
    # value = calendar day number, so a one-session change is the calendar gap (3 over a weekend)
    np.testing.assert_allclose(ch.to_numpy(), np.diff(sess).astype("timedelta64[D]").astype(float)[-len(ch):])


def test_short_history_keeps_default_and_says_so():
    c = calibrated_threshold(np.arange(30.0), lookback=10, default=0.01)
    assert not c.calibrated and c.threshold == 0.01
    ev = c.evidence()
    assert ev["threshold_source"] == "default" and "fewer than the 60" in ev["threshold_note"]
    assert "0.01" in ev["threshold_note"]
    assert MIN_HISTORY == 60


def test_non_positive_calibration_falls_back():
    x = -np.arange(100.0)  # only ever falls: the 90th percentile of the (rising) change is negative
    c = calibrated_threshold(x, lookback=1, default=0.02)
    assert not c.calibrated and c.threshold == 0.02 and "not positive" in c.reason
    f = calibrated_threshold(x, lookback=1, default=0.02, floor=0.5)
    assert f.calibrated and f.threshold == 0.5


def test_today_change_given_keeps_every_past_change():
    x = np.arange(100.0)
    c = calibrated_threshold(x, lookback=1, today_change=2.0)
    assert c.n_observations == 99 and c.percentile_of_today == pytest.approx(100.0)
    u = calibrated_threshold(x, lookback=1, today_change=math.nan, default=0.01)
    assert u.change_today is None and u.percentile_of_today is None and "unknown" in u.reason


def test_calibrate_records_store_rows():
    idx = _sessions(70)
    rows = [
        {"trade_date": d.date().isoformat(), "rr25_30d": -0.001 * i * i, "otm_put_oi_share": 0.5 + i / 1024}
        for i, d in enumerate(idx)
    ]
    out = calibrate_records(rows[::-1], {"rr25_30d": (-1, 0.01), "otm_put_oi_share": (1, 0.01)}, lookback=10)
    rr = out["rr25_30d"]
    # -change = 0.001 (i^2 - (i-10)^2) = 0.001 (20 i - 100) for i = 10..68 (past); today i = 69
    past = 0.001 * (20 * np.arange(10, 69) - 100)
    assert rr.calibrated and rr.n_observations == 59
    assert rr.threshold == pytest.approx(np.percentile(past, 90))
    assert rr.change_today == pytest.approx(-0.001 * (20 * 69 - 100))
    share = out["otm_put_oi_share"]
    # constant change 10/1024 (exact in binary): every past change ties with today's
    assert share.threshold == 10 / 1024 and share.percentile_of_today == pytest.approx(50.0)
    few = calibrate_records(rows[:59], {"rr25_30d": (-1, 0.01)})["rr25_30d"]
    assert not few.calibrated and few.threshold == 0.01


@pytest.mark.parametrize(
    "kwargs",
    [{"lookback": 0}, {"percentile": 100}, {"percentile": 0}, {"direction": 2}, {"lookback": 10, "min_history": 5}],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ParameterError):
        calibrated_threshold(np.arange(100.0), **kwargs)


def test_calibrate_records_same_day_keeps_the_latest_row():
    idx = _sessions(70)
    rows = [{"trade_date": str(d.date()), "m": float(i)} for i, d in enumerate(idx)]
    # a second snapshot of the last day (listed after the first): it is today's value
    rows.append({"trade_date": str(idx[-1].date()), "m": 1000.0})
    c = calibrate_records(rows, {"m": (1, 0.5)}, lookback=10)["m"]
    assert c.change_today == pytest.approx(1000.0 - 59.0)
