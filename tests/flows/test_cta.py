"""Trend-following model: signals, positions, triggers and scenarios on synthetic paths against hand computations;
the alignment flag; the P&L by year; the shared SPY history."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, require_shared

from volsurf.errors import DataError, FormatError, ParameterError
from volsurf.flows.cta import (
    CtaParams,
    Scenario,
    cta_alignment_flag,
    cta_history,
    cta_positioning,
    load_prices,
    parse_lookbacks,
    pnl_by_year,
    trend_model,
    trigger_path,
)
from volsurf.flows.rebalance import rebalance_flow

SPY = SHARED / "real_series" / "spy_daily_1993_2024.csv"
LBS = (21, 63, 126, 252)
TARGET, CAP, AUM, ALLOC = 0.10, 1.5, 300e9, 0.25


def series_from_returns(log_returns, start="2015-01-02", p0=100.0) -> pd.Series:
    r = np.asarray(log_returns, dtype=float)
    px = p0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    return pd.Series(px, index=pd.bdate_range(start, periods=px.size), name="close")


def alternating(n, drift, amp=0.01):
    """Daily log returns drift +/- amp, alternating (a trend with a known, constant realized vol)."""
    return drift + amp * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def hand_vol(prices: pd.Series, window=63) -> float:
    r = np.diff(np.log(prices.to_numpy()))[-window:]
    return float(np.std(r, ddof=1) * math.sqrt(252))


def hand_position(signal: float, vol: float) -> float:
    return float(np.clip(signal * TARGET / vol, -CAP, CAP))


# --- signals and positions on known trends ----------------------------------------------------------------


@pytest.mark.parametrize("drift, sign", [(0.0005, 1.0), (-0.0005, -1.0)], ids=["steady_rise", "steady_fall"])
def test_steady_trend_all_lookbacks_agree(drift, sign):
    px = series_from_returns(alternating(400, drift))
    res = cta_positioning(px)
    vol = hand_vol(px)
    assert res.realized_vol == pytest.approx(vol, rel=1e-12)
    w = hand_position(sign, vol)  # 0.10 / (0.01 sqrt(252)) = 0.63
    assert 0.6 < abs(w) < 0.65
    for lb in res.lookbacks:
        assert lb.signal == sign
        assert lb.position == pytest.approx(w, rel=1e-12)
    assert res.leverage == pytest.approx(w)
    assert res.position == pytest.approx(w / CAP)
    assert res.notional_usd == pytest.approx(AUM * ALLOC * w)
    assert -1 <= res.position <= 1


def test_reversal_splits_short_and_long_lookbacks():
    # 300 sessions up 0.3 %/day then 40 down 0.5 %/day (each +/- 1 %):
    # 21d: -10.5 %, 63d: 23 x 0.3 - 40 x 0.5 = -13.1 %, 126d: 86 x 0.3 - 20 = +5.8 %, 252d: +43.6 % (+/- 1 %)
    px = series_from_returns(np.concatenate([alternating(300, 0.003), alternating(40, -0.005)]))
    res = cta_positioning(px)
    got = {lb.days: lb.signal for lb in res.lookbacks}
    assert got == {21: -1.0, 63: -1.0, 126: 1.0, 252: 1.0}
    lr = {lb.days: lb.lookback_return for lb in res.lookbacks}
    P = px.to_numpy()
    for L in LBS:
        assert lr[L] == pytest.approx(P[-1] / P[-1 - L] - 1)
    assert lr[63] == pytest.approx(math.expm1(-0.131), abs=0.011)
    vol = hand_vol(px)
    assert res.position == pytest.approx(0.0, abs=1e-12)  # two long, two short at the same vol
    assert res.lookbacks[0].position == pytest.approx(hand_position(-1, vol))


def test_leverage_cap_binds_in_calm_markets():
    px = series_from_returns(alternating(300, 0.001, amp=0.002))  # vol 3.2 % -> 0.10/0.032 = 3.2x > 1.5x
    res = cta_positioning(px)
    assert hand_vol(px) < TARGET / CAP
    assert all(lb.position == CAP for lb in res.lookbacks)
    assert res.position == 1.0
    assert res.notional_usd == pytest.approx(AUM * ALLOC * CAP)


def test_zscore_rule_matches_hand_computation():
    rng = np.random.default_rng(7)
    px = series_from_returns(0.0004 + 0.01 * rng.standard_normal(400))
    p = CtaParams(rule="zscore", z_cap=1.0)
    res = cta_positioning(px, params=p)
    logp = np.log(px.to_numpy())
    sd = np.std(np.diff(logp)[-63:], ddof=1)
    vol = sd * math.sqrt(252)
    for lb in res.lookbacks:
        z = (logp[-1] - logp[-1 - lb.days]) / (sd * math.sqrt(lb.days))
        assert lb.signal == pytest.approx(np.clip(z, -1, 1), rel=1e-10)
        assert lb.position == pytest.approx(np.clip(np.clip(z, -1, 1) * TARGET / vol, -CAP, CAP), rel=1e-10)
    assert any(abs(lb.signal) < 1 for lb in res.lookbacks)  # the cap is not hit everywhere: a real test


def test_ma_rule_signal():
    px = series_from_returns(np.concatenate([alternating(300, 0.002), alternating(15, -0.006)]))
    res = cta_positioning(px, params=CtaParams(rule="ma"))
    P = px.to_numpy()
    for lb in res.lookbacks:
        assert lb.signal == np.sign(P[-1] - P[-lb.days :].mean())
    assert {lb.days: lb.signal for lb in res.lookbacks}[21] == -1.0
    assert {lb.days: lb.signal for lb in res.lookbacks}[252] == 1.0


# --- trigger levels -----------------------------------------------------------------------------------------


def test_sign_trigger_is_the_close_rolling_into_the_comparison():
    px = series_from_returns(np.concatenate([alternating(300, 0.003), alternating(40, -0.005)]))
    res = cta_positioning(px)
    P = px.to_numpy()
    n = P.size
    for lb in res.lookbacks:
        L = lb.days
        # hand: at session t+k the signal compares with the close L sessions earlier, P[n-1+k-L]
        expected = [P[n - 1 + k - L] for k in range(1, 6)]
        assert [x[1] for x in lb.trigger_path] == pytest.approx(expected)
        assert lb.trigger_price == pytest.approx(P[n - L])
        assert lb.distance_pct == pytest.approx(100 * (P[n - L] / P[-1] - 1))
    above = [lb for lb in res.lookbacks if lb.trigger_price > P[-1]]
    below = [lb for lb in res.lookbacks if lb.trigger_price < P[-1]]
    assert res.nearest_trigger_above.trigger_price == min(lb.trigger_price for lb in above)
    assert res.nearest_trigger_below.trigger_price == max(lb.trigger_price for lb in below)


@pytest.mark.parametrize("rule", ["sign", "zscore", "ma"])
def test_trigger_flips_the_signal_next_session(rule):
    """Behaviour, not formula: a close just above the trigger is long, just below is short."""
    rng = np.random.default_rng(3)
    px = series_from_returns(0.0003 + 0.01 * rng.standard_normal(350))
    p = CtaParams(rule=rule)
    res = cta_positioning(px, params=p)
    nxt = px.index[-1] + pd.offsets.BDay(1)
    for lb in res.lookbacks:
        for bump, sign in ((1.0001, 1.0), (0.9999, -1.0)):
            ext = pd.concat([px, pd.Series([lb.trigger_price * bump], index=[nxt])])
            assert np.sign(trend_model(ext, p)[f"signal_{lb.days}"].iloc[-1]) == sign


def test_ma_trigger_path_hand_values():
    P = np.array([10.0, 11, 12, 13, 14, 15, 16])
    # L = 6: k=1 mean(12..16) = 14; k=2 mean(13..16) = 14.5; 15; 15.5; 16
    np.testing.assert_allclose(trigger_path(P, 6, "ma"), [14.0, 14.5, 15.0, 15.5, 16.0])
    # check k=1: the window at t+1 is 12..16 plus P*=14, mean (70 + 14) / 6 = 14 = P*
    assert (P[2:].sum() + 14.0) / 6 == 14.0
    # sign rule, L = 3: P[n-1+k-3] = P[4], P[5], P[6] = 14, 15, 16; later closes are not known yet
    np.testing.assert_array_equal(trigger_path(P, 3, "sign"), [14.0, 15.0, 16.0, np.nan, np.nan])


def test_sign_trigger_path_beyond_history_is_nan():
    P = np.arange(1.0, 8.0)  # 7 closes
    out = trigger_path(P, 3, "sign")
    # k=1: P[7-3] = 5, k=2: P[5] = 6, k=3: P[6] = 7 (today), k>3: the comparison close is not known yet
    np.testing.assert_array_equal(out[:3], [5.0, 6.0, 7.0])
    assert np.isnan(out[3:]).all()


# --- scenarios ------------------------------------------------------------------------------------------------


def test_scenarios_against_hand_computation():
    px = series_from_returns(np.concatenate([alternating(300, 0.003), alternating(40, -0.005)]))
    adv = 2e11
    res = cta_positioning(px, adv_usd=adv)
    P = px.to_numpy()
    n = P.size
    sd = np.std(np.diff(np.log(P))[-63:], ddof=1)
    vol = sd * math.sqrt(252)
    sleeve = AUM * ALLOC
    lev0 = np.mean([hand_position(np.sign(P[-1] - P[-1 - L]), vol) for L in LBS])
    assert {s.name for s in res.scenarios} == {"down_2vol", "down_1vol", "flat", "up_1vol", "up_2vol"}
    for s in res.scenarios:
        end = P[-1] * math.exp(s.move_vol * sd * math.sqrt(5))
        assert s.price == pytest.approx(end)
        # vol held at today's value; at t+5 each lookback compares end with P[n-1+5-L]
        lev5 = np.mean([hand_position(np.sign(end - P[n + 4 - L]), vol) for L in LBS])
        assert s.position == pytest.approx(lev5 / CAP)
        assert s.flow_usd == pytest.approx(sleeve * (lev5 - lev0))
        assert s.flow_share_of_adv == pytest.approx(s.flow_usd / adv)
    flows = {s.name: s.flow_usd for s in res.scenarios}
    assert flows["up_2vol"] >= flows["flat"] >= flows["down_2vol"]


# --- P&L ------------------------------------------------------------------------------------------------------


def test_pnl_by_year_hand_computation():
    # steady rise: after the warm-up every signal is +1 and the alternating vol is constant -> constant leverage
    px = series_from_returns(alternating(800, 0.0005), start="2015-01-01")
    hist = cta_history(px)
    years = pnl_by_year(hist)
    w = hand_position(1.0, hand_vol(px))
    y2017 = px.loc["2016-12-30":"2017-12-31"].to_numpy()
    r = y2017[1:] / y2017[:-1] - 1
    row = years.set_index("year").loc[2017]
    assert row["sessions"] == r.size
    assert row["cta_return"] == pytest.approx(np.prod(1 + w * r) - 1, rel=1e-9)
    assert row["price_return"] == pytest.approx(y2017[-1] / y2017[0] - 1, rel=1e-12)
    assert row["pnl_usd"] == pytest.approx((AUM * ALLOC * w * r).sum(), rel=1e-9)
    assert bool(row["made_money"])
    assert hist.index[0] == px.index[252]  # first full row: the 252-session lookback


# --- the alignment flag -----------------------------------------------------------------------------------------


def _with_flat_flow(res, flow):
    sc = tuple(
        dataclasses.replace(s, flow_usd=flow if s.name == "flat" else s.flow_usd) for s in res.scenarios
    )
    return dataclasses.replace(res, scenarios=sc)


@pytest.fixture(scope="module")
def cta_res():
    return cta_positioning(series_from_returns(alternating(400, 0.0005)))


def test_alignment_flag(cta_res):
    reb = rebalance_flow({"equity": 0.2, "bond": 0.0}, aum=1e12)  # hand: 1e12 (0.6 - 0.72/1.12) = -42.86bn
    eq = 1e12 * (0.6 - 0.72 / 1.12)
    f = cta_alignment_flag(reb, _with_flat_flow(cta_res, -5e9))
    assert f.evaluated and f.triggered
    assert f.strength == pytest.approx(5.0)  # min(42.86, 5) / 1bn
    assert f.evidence["rebalance_equity_trade_usd"] == pytest.approx(eq)
    assert f.evidence["cta_flow_usd"] == -5e9
    assert f.evidence["rebalance_direction"] == f.evidence["cta_direction"] == "sell equities"
    assert f.evidence["combined_flow_usd"] == pytest.approx(eq - 5e9)

    opposite = cta_alignment_flag(reb, _with_flat_flow(cta_res, 5e9))
    assert opposite.evaluated and not opposite.triggered and opposite.strength == 0.0
    small = cta_alignment_flag(reb, _with_flat_flow(cta_res, -0.5e9))
    assert not small.triggered and small.strength == pytest.approx(0.5)
    buy = cta_alignment_flag(
        rebalance_flow({"equity": -0.2, "bond": 0.0}, aum=1e12), _with_flat_flow(cta_res, 3e9)
    )
    assert buy.triggered and buy.evidence["cta_direction"] == "buy equities"


def test_alignment_flag_not_evaluated_and_is_a_flag(cta_res):
    from volsurf.signals.flags import Flag

    for reb, cta in ((None, cta_res), (rebalance_flow({"equity": 0.1, "bond": 0.0}), None)):
        f = cta_alignment_flag(reb, cta)
        assert not f.evaluated and not f.triggered and f.strength is None and "reason" in f.evidence
    f = cta_alignment_flag(rebalance_flow({"equity": 0.1, "bond": 0.0}), cta_res)
    assert isinstance(f, Flag)  # the same type as the quarter-end flags
    assert set(f.to_dict()) == {"name", "triggered", "strength", "evaluated", "description", "evidence"}
    with pytest.raises(ParameterError):
        cta_alignment_flag(rebalance_flow({"equity": 0.1, "bond": 0.0}), cta_res, scenario="crash")


def test_scenario_dataclass_roundtrip(cta_res):
    d = cta_res.to_dict()
    assert {"date", "price", "position", "notional_usd", "lookbacks", "scenarios", "realized_vol"} <= set(d)
    assert set(d["lookbacks"][0]) >= {"days", "signal", "position", "trigger_price", "distance_pct"}
    assert set(d["scenarios"][0]) >= {"name", "price", "position", "flow_usd"}
    assert isinstance(cta_res.scenarios[0], Scenario)


# --- inputs and errors -------------------------------------------------------------------------------------------


def test_parse_lookbacks_and_params():
    assert parse_lookbacks("252, 21,63,21") == (21, 63, 252)
    for bad in ("a,b", "1", ""):
        with pytest.raises(ParameterError):
            parse_lookbacks(bad)
    for kw in (
        {"rule": "momentum"},
        {"target_vol": 0},
        {"equity_allocation": 1.5},
        {"vol_window": 1},
        {"rule": "ma", "lookbacks": (5, 63)},
        {"aum": float("nan")},
    ):
        with pytest.raises(ParameterError):
            CtaParams(**kw)


def test_too_short_and_date_errors():
    px = series_from_returns(alternating(100, 0.001))
    with pytest.raises(DataError, match="too few"):
        cta_positioning(px)
    with pytest.raises(DataError):
        cta_history(px)
    long = series_from_returns(alternating(400, 0.001))
    with pytest.raises(ParameterError):
        cta_positioning(long, date="2000-01-01")
    with pytest.raises(ParameterError):
        cta_positioning(long, adv_usd=-1.0)
    # a date cuts the series: the last close on or before it
    res = cta_positioning(long, date=long.index[300] + pd.Timedelta(hours=1))
    assert res.date == long.index[300].date()


def test_load_prices_column(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("date,close,adj\n2024-01-02,10,9\n2024-01-03,11,10\n")
    assert load_prices(f).tolist() == [10.0, 11.0]
    assert load_prices(f, "ADJ").tolist() == [9.0, 10.0]
    with pytest.raises(FormatError):
        load_prices(f, "volume")
    g = tmp_path / "neg.csv"
    g.write_text("date,close\n2024-01-02,10\n2024-01-03,-1\n")
    with pytest.raises(DataError):
        load_prices(g, "close")


# --- the shared SPY history -------------------------------------------------------------------------------------


def _spy_rows() -> tuple[list[str], np.ndarray]:
    with open(SPY, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["date"] for r in rows], np.array([float(r["adjusted_close"]) for r in rows])


@pytest.mark.slow
def test_spy_history():
    require_shared()
    if not Path(SPY).exists():
        pytest.skip("shared SPY series not present")
    px = load_prices(SPY, "adjusted_close")
    dates, P = _spy_rows()
    assert px.to_numpy() == pytest.approx(P)
    last = cta_positioning(px)
    assert last.date.isoformat() == dates[-1] == "2024-04-15"
    for lb in last.lookbacks:
        assert lb.trigger_price == pytest.approx(P[len(P) - lb.days])
    # after the 2008 crash and in March 2020 the 12-month trend was down; 2024 was a rally
    end08 = cta_positioning(px, date="2008-12-31")
    assert {lb.days: lb.signal for lb in end08.lookbacks}[252] == -1.0
    assert end08.position < 0
    assert cta_positioning(px, date="2020-03-20").position < 0
    assert last.position > 0
    years = pnl_by_year(cta_history(px)).set_index("year")
    i0, i1 = dates.index("2007-12-31"), dates.index("2008-12-31")
    assert years.loc[2008, "price_return"] == pytest.approx(P[i1] / P[i0] - 1)
    assert years.loc[2008, "cta_return"] > 0 > years.loc[2008, "price_return"]
