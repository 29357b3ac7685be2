"""Broad vs narrow index divergence: spread and z-score against hand computations, the quarter-end window flag,
frequencies, errors and the shared SPY / NASDAQ-100 histories."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, require_shared

from volsurf.errors import DataError, ParameterError
from volsurf.flows.cta import load_prices
from volsurf.flows.divergence import divergence_frequency, index_divergence
from volsurf.market.calendar import sessions_between

W, BASE = 5, 60


@pytest.fixture(scope="module")
def pair():
    days = pd.DatetimeIndex(pd.to_datetime(sessions_between("2022-01-03", "2023-12-29")))
    rng = np.random.default_rng(11)
    rb = 0.01 * rng.standard_normal(days.size)
    rn = rb + 0.002 * rng.standard_normal(days.size)  # the narrow index tracks the broad one closely
    jumps = {dt.date(2023, 3, 28): 0.08, dt.date(2023, 5, 10): 0.08}  # inside / outside the Q1 window
    for d, j in jumps.items():
        rn[days.get_loc(pd.Timestamp(d))] += j
    b = pd.Series(100 * np.exp(np.cumsum(rb)), index=days)
    n = pd.Series(50 * np.exp(np.cumsum(rn)), index=days)
    return b, n


def test_spread_and_z_against_hand_computation(pair):
    b, n = pair
    res = index_divergence(b, n, window=W, baseline=BASE)
    f = res.frame.set_index("date")
    B, N = b.to_numpy(), n.to_numpy()
    spread = np.full(B.size, np.nan)
    for i in range(W, B.size):
        spread[i] = (B[i] / B[i - W] - 1) - (N[i] / N[i - W] - 1)
    np.testing.assert_allclose(f["spread"].to_numpy()[W:], spread[W:], rtol=1e-12)
    for i in (W + BASE, 200, 310, B.size - 1):
        prev = spread[i - BASE : i]
        z = (spread[i] - prev.mean()) / prev.std(ddof=1)
        assert f["z"].iloc[i] == pytest.approx(z, rel=1e-9)
    assert f["z"].iloc[: W + BASE].isna().all()  # no z before BASE trailing spreads exist


def test_flag_only_inside_quarter_end_window(pair):
    b, n = pair
    res = index_divergence(b, n, window=W, baseline=BASE, z_threshold=3.0)
    f = res.frame.set_index("date")
    # the last 5 sessions of Q1 2023 (03-31 is a Friday) and of 2022 (12-26 was a holiday)
    q1 = pd.to_datetime(["2023-03-27", "2023-03-28", "2023-03-29", "2023-03-30", "2023-03-31"])
    y22 = pd.to_datetime(["2022-12-23", "2022-12-27", "2022-12-28", "2022-12-29", "2022-12-30"])
    assert f.loc[q1, "in_quarter_end_window"].all() and f.loc[y22, "in_quarter_end_window"].all()
    assert not f.loc[
        pd.to_datetime(["2023-03-24", "2022-12-22", "2023-04-03"]), "in_quarter_end_window"
    ].any()
    # the jump of 03-28 stays in the 5-session return 03-28 .. 04-03; the window keeps 03-28 .. 03-31
    assert f.loc["2023-03-28", "extreme"] and f.loc["2023-03-28", "flag"]
    assert f.loc["2023-05-10", "extreme"] and not f.loc["2023-05-10", "flag"]
    assert f.loc["2023-03-28", "spread"] < 0  # the narrow index outran the broad one
    flagged = set(res.flag_days()["date"])
    assert flagged <= set(q1) | set(
        pd.to_datetime(["2023-06-26", "2023-06-27", "2023-06-28", "2023-06-29", "2023-06-30"])
    ) | set(y22)
    assert pd.Timestamp("2023-03-28") in flagged


def test_frequency_counts(pair):
    b, n = pair
    res = index_divergence(b, n, window=W, baseline=BASE, z_threshold=2.0)
    freq = divergence_frequency(res)
    f = res.frame[res.frame["z"].notna()]
    # hand: the windows are the last 5 sessions of each quarter of 2022-2023
    ends = [
        "2022-03-31",
        "2022-06-30",
        "2022-09-30",
        "2022-12-30",
        "2023-03-31",
        "2023-06-30",
        "2023-09-29",
        "2023-12-29",
    ]
    all_days = pd.DatetimeIndex(pd.to_datetime(sessions_between("2022-01-03", "2023-12-29")))
    window_days = set()
    for e in ends:
        i = all_days.get_loc(pd.Timestamp(e))
        window_days |= set(all_days[i - 4 : i + 1])
    inside = f["date"].isin(window_days)
    extreme = f["z"].abs() >= 2.0
    assert freq["days_in_window"] == int(inside.sum())
    assert freq["extreme_in_window"] == int((extreme & inside).sum())
    assert freq["days_outside"] == int((~inside).sum())
    assert freq["extreme_outside"] == int((extreme & ~inside).sum())
    assert freq["rate_in_window"] == pytest.approx(freq["extreme_in_window"] / freq["days_in_window"])
    assert 0 <= freq["fisher_p_greater"] <= 1
    assert freq["windows_with_flag"] >= 1 and freq["windows"] >= 4


def test_errors(pair):
    b, n = pair
    with pytest.raises(DataError, match="share"):
        index_divergence(b.iloc[:50], n.iloc[:50])
    with pytest.raises(DataError):
        index_divergence(b.iloc[:200], n.iloc[250:])  # no overlap
    with pytest.raises(ParameterError):
        index_divergence(b, n, window=0)
    with pytest.raises(ParameterError):
        index_divergence(b, n, z_threshold=-1)


@pytest.mark.slow
def test_spy_vs_ndx_shared():
    require_shared()
    spy_path = SHARED / "real_series" / "spy_daily_1993_2024.csv"
    ndx_path = SHARED / "real_series" / "ndx_vix_rates_daily_2000_2026.csv"
    if not (spy_path.exists() and ndx_path.exists()):
        pytest.skip("shared SPY / NDX series not present")
    spy, ndx = load_prices(spy_path, "close"), load_prices(ndx_path, "NDX_close")
    res = index_divergence(spy, ndx)
    freq = divergence_frequency(res)
    f = res.frame.set_index("date")
    # hand check of one spread: 2020-03-31 against 20 common sessions earlier
    i = f.index.get_loc(pd.Timestamp("2020-03-31"))
    d0 = f.index[i - 20]
    s = (spy[pd.Timestamp("2020-03-31")] / spy[d0] - 1) - (ndx[pd.Timestamp("2020-03-31")] / ndx[d0] - 1)
    assert f["spread"].iloc[i] == pytest.approx(s)
    assert freq["last_scored"] == "2024-04-15"
    assert freq["days_in_window"] + freq["days_outside"] == int(f["z"].notna().sum())
    # about 1 day in 20 is |z| >= 2 (heavy tails, clustering); the flag needs the window as well
    assert 0.02 < freq["rate_outside"] < 0.10 and 0.0 < freq["rate_in_window"] < 0.15
    assert math.isfinite(freq["rate_ratio"])
