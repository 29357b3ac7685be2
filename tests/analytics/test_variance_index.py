"""Tests for volsurf.analytics.variance_index (30-day model-free variance index, Cboe VIX methodology).

References are independent of the code under test:
- the Cboe worked examples (2009 white paper, 2022 methodology) in ../shared/golden/vix_whitepaper, with the
  published F, K0, Q(K0), strip extents, strip sums, sigma^2 and VIX;
- Black-76 prices of a flat smile, for which the fair variance is exactly s^2 and the discretization bias of
  the VIX sum has a closed form (Euler-Maclaurin, derived in docs/variance_index.md);
- a plain loop re-implementation of the README's zero-bid rules (hypothesis boards);
- the published VIX open/high/low/close of the days of the shared real SPX chains.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_cached
from hypothesis import given, settings
from hypothesis import strategies as st

from volsurf.analytics.variance_index import (
    constant_maturity_index,
    minutes_to_settlement,
    parity_rate,
    term_variance,
    variance_index_from_chain,
)
from volsurf.errors import DataError, ParameterError
from volsurf.market.timing import settlement_times
from volsurf.pricing.black76 import black76_price

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
# The Cboe VIX white paper's two worked examples (published boards and results), copied from
# ../shared/golden/vix_whitepaper so that the method is checked in a clone on its own.
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "vix_whitepaper"
NY = "America/New_York"

needs_golden = pytest.mark.skipif(not GOLDEN.is_dir(), reason="../shared/golden/vix_whitepaper not present")


# ---------------------------------------------------------------------------------------------------------
# Golden cases
# ---------------------------------------------------------------------------------------------------------


def _golden_2009():
    opts = pd.read_csv(GOLDEN / "case_2009" / "options.csv")
    exp = json.loads((GOLDEN / "case_2009" / "expected.json").read_text())
    rates = pd.read_csv(GOLDEN / "case_2009" / "yields.csv")
    boards = {}
    for name, days, t, n in (
        ("near", 9, exp["T1"], exp["N_T1_minutes"]),
        ("next", 37, exp["T2"], exp["N_T2_minutes"]),
    ):
        b = opts[opts["Days"] == days]
        rate = float(rates.loc[rates["Days"] == days, "Rate"].iloc[0]) / 100.0
        # 2009 convention (README): the published sigma^2 use the printed 7-dp T
        boards[name] = (b["Strike"], b["Call Bid"], b["Call Ask"], b["Put Bid"], b["Put Ask"], t, rate, n)
    return boards, exp


def _golden_2022():
    opts = pd.read_csv(GOLDEN / "case_2022" / "options.csv")
    terms = pd.read_csv(GOLDEN / "case_2022" / "terms.csv")
    exp = json.loads((GOLDEN / "case_2022" / "expected.json").read_text())
    boards = {}
    for row in terms.itertuples(index=False):
        b = opts[opts["term"] == row.term]
        # 2022 convention (README): unrounded T = minutes / 525,600
        t = row.minutes_to_expiration / 525_600
        boards[row.term] = (
            b["strike"],
            b["call_bid"],
            b["call_ask"],
            b["put_bid"],
            b["put_ask"],
            t,
            row.R,
            row.minutes_to_expiration,
        )
    return boards, exp


# Per case: tolerances = half a unit in the last published digit (README "How a test should use this").
CASES = {
    "2009": dict(
        load=_golden_2009,
        sigma2_tol=5e-8,
        forward_tol=5e-7,
        # README: strip extents and counts, and the independent reference's strip sums (10 dp)
        strip={"near": (400.0, 1220.0, 136, 0.0058287847), "next": (200.0, 1160.0, 110, 0.0185927442)},
        strip_sum_tol=5e-11,
    ),
    "2022": dict(
        load=_golden_2022,
        sigma2_tol=5e-10,
        forward_tol=5e-6,
        strip={"near": (1370.0, 2125.0, 146, 0.0006320516), "next": (1275.0, 2200.0, 122, 0.0008314016)},
        strip_sum_tol=5e-11,
    ),
}


def _term(boards, name):
    k, cb, ca, pb, pa, t, r, _ = boards[name]
    return term_variance(k, cb, ca, pb, pa, t, r)


@needs_golden
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("term", ["near", "next"])
def test_golden_term(case, term):
    spec = CASES[case]
    boards, exp = spec["load"]()
    i = "1" if term == "near" else "2"
    tv = _term(boards, term)
    low, high, count, strip_sum = spec["strip"][term]
    msg = (
        f"{case} {term}: F={tv.forward:.7f} K0={tv.k0} strip {tv.strip_low}-{tv.strip_high} ({tv.strip_count}) "
        f"sum={tv.strip_sum:.10f} sigma2={tv.sigma2:.10f}"
    )
    print(msg)
    assert tv.forward == pytest.approx(exp[f"F{i}"], abs=spec["forward_tol"]), msg
    assert tv.k0 == exp[f"K0_{i}"], msg
    assert (tv.strip_low, tv.strip_high, tv.strip_count) == (low, high, count), msg
    assert tv.strip_sum == pytest.approx(strip_sum, abs=spec["strip_sum_tol"]), msg
    assert tv.sigma2 == pytest.approx(exp[f"sigma2_{i}"], abs=spec["sigma2_tol"]), msg
    # dK sums telescope: interior halves plus the full end gaps
    assert tv.dk.sum() == pytest.approx(
        tv.strip_high - tv.strip_low + 0.5 * (tv.dk[0] + tv.dk[-1]), rel=1e-12
    )


@needs_golden
def test_golden_2022_published_pieces():
    boards, exp = _golden_2022()
    near, nxt = _term(boards, "near"), _term(boards, "next")
    for tv, i in ((near, "1"), (nxt, "2")):
        assert tv.q_k0 == pytest.approx(exp[f"Q_K0_{i}"], abs=5e-4)
        assert tv.scaled_sum == pytest.approx(exp[f"scaled_sum_{i}"], abs=5e-7)  # printed to 6 dp
        assert tv.taylor == pytest.approx(exp[f"taylor_{i}"], abs=5e-9)  # printed to 8 dp
        assert (tv.strip_low, tv.strip_high) == tuple(exp[f"strip_ends_{i}"])
        assert tv.strip_count == exp[f"strip_count_{i}"]
    # README: dK from surviving neighbours around the lone zero bids
    dk = {("near", k): d for k, d in zip(near.strikes, near.dk, strict=True)}
    dk.update({("next", k): d for k, d in zip(nxt.strikes, nxt.dk, strict=True)})
    expected_dk = {
        ("near", 1400.0): 7.5,
        ("near", 1410.0): 10.0,
        ("near", 1420.0): 7.5,
        ("near", 2100.0): 15.0,
        ("next", 1275.0): 50.0,
        ("next", 1325.0): 37.5,
    }
    assert {key: dk[key] for key in expected_dk} == expected_dk
    # excluded despite non-zero bids (beyond the two-zero-bid stop) and skipped lone zero bids
    assert not np.isin([1350.0, 1355.0, 1405.0, 1415.0, 2120.0, 2225.0], near.strikes).any()
    assert 1300.0 not in nxt.strikes
    res = constant_maturity_index(near, nxt, boards["near"][7], boards["next"][7])
    assert math.sqrt(res.variance_30d) == pytest.approx(exp["vix_sqrt_term"], abs=5e-9)
    assert res.index == pytest.approx(exp["vix"], abs=5e-3)


@needs_golden
def test_golden_2009_walk_details_and_vix():
    boards, exp = _golden_2009()
    near, nxt = _term(boards, "near"), _term(boards, "next")
    assert 1250.0 not in near.strikes  # bid 0.05 but beyond the 1225/1230 stop
    assert 425.0 not in nxt.strikes and 400.0 in nxt.strikes  # lone zero bid skipped, walk continues
    assert not np.isin([1175.0, 1200.0, 1240.0, 1275.0, 1300.0], nxt.strikes).any()
    res = constant_maturity_index(near, nxt, exp["N_T1_minutes"], exp["N_T2_minutes"])
    print(f"2009 VIX {res.index:.6f} (published 61.22)")
    assert res.index == pytest.approx(exp["vix"], abs=5e-3)
    assert res.weight_near + res.weight_next == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------
# Term selection from a normalized chain (the 2022 board laid out as a chain with distractors)
# ---------------------------------------------------------------------------------------------------------


def _chain_rows(strikes, cb, ca, pb, pa, root, expiry_date, settlement) -> pd.DataFrame:
    k = np.asarray(strikes, dtype=float)
    n = k.size
    expiry = settlement_times([expiry_date] * n, [settlement] * n)
    calls = pd.DataFrame(
        {"strike": k, "type": "call", "bid": np.asarray(cb, float), "ask": np.asarray(ca, float)}
    )
    puts = pd.DataFrame(
        {"strike": k, "type": "put", "bid": np.asarray(pb, float), "ask": np.asarray(pa, float)}
    )
    out = pd.concat([calls, puts], ignore_index=True)
    out["root"] = root
    out["expiry"] = expiry.append(expiry)
    out["expiry_date"] = expiry_date
    out["settlement"] = settlement
    return out


def _frame_2022(with_distractors: bool = True) -> pd.DataFrame:
    boards, _ = _golden_2022()
    near, nxt = boards["near"][:5], boards["next"][:5]
    parts = [
        _chain_rows(*near, "SPX", "2022-10-21", "AM"),
        _chain_rows(*nxt, "SPXW", "2022-10-28", "PM"),
    ]
    if with_distractors:
        parts += [
            _chain_rows(*nxt, "SPXW", "2022-10-21", "PM"),  # same date as the standard: the AM SPX wins
            _chain_rows(*near, "SPXW", "2022-10-26", "PM"),  # Wednesday inside the window: not a Friday
            _chain_rows(*near, "SPXW", "2022-10-14", "PM"),  # Friday at 17 days: outside the window
            _chain_rows(*near, "SPXW", "2022-11-04", "PM"),  # Friday at 38 days: outside the window
            _chain_rows(*near, "SPX", "2022-10-28", "AM"),  # AM root on a non-third Friday: not a standard
        ]
    return pd.concat(parts, ignore_index=True)


@needs_golden
def test_chain_selection_reproduces_published_2022_vix():
    boards, exp = _golden_2022()
    val = pd.Timestamp("2022-09-27 10:45:15", tz=NY)
    t1, t2 = boards["near"][5], boards["next"][5]

    def rate(t: float) -> float:  # the methodology's per-term CMT rates, keyed by T
        return exp["R1"] if abs(t - t1) < abs(t - t2) else exp["R2"]

    res = variance_index_from_chain(_frame_2022(), val, rate)
    print(f"2022 chain VIX {res.index:.6f} (published 13.93); candidates {res.candidates}")
    assert res.available, res.reason
    assert (res.near_choice.root, res.near_choice.expiry_date) == ("SPX", "2022-10-21")
    assert (res.next_choice.root, res.next_choice.expiry_date) == ("SPXW", "2022-10-28")
    assert (res.near_minutes, res.next_minutes) == (exp["N_T1_minutes"], exp["N_T2_minutes"])
    assert res.near.sigma2 == pytest.approx(exp["sigma2_1"], abs=5e-10)
    assert res.next.sigma2 == pytest.approx(exp["sigma2_2"], abs=5e-10)
    assert res.index == pytest.approx(exp["vix"], abs=5e-3)
    assert res.near_choice.rate_source == "callable"
    # a constant rate and the parity default move the index only in the 3rd decimal here (R ~ 0.03%)
    for r in (0.0, "parity"):
        assert variance_index_from_chain(_frame_2022(), val, r).index == pytest.approx(exp["vix"], abs=0.02)


@needs_golden
def test_chain_without_bracketing_terms_is_unavailable():
    # 2022-10-01: 10-21 AM is 19.6 days out (below the window), 10-28 PM 27.7 days: nothing after 30 days
    res = variance_index_from_chain(_frame_2022(False), pd.Timestamp("2022-10-01 12:00", tz=NY), 0.03)
    assert not res.available and math.isnan(res.index)
    assert "after 30 days" in res.reason and "not extrapolated" in res.reason
    assert res.to_dict()["index"] is None


@needs_golden
def test_chain_term_without_two_sided_quotes_is_unavailable():
    frame = _frame_2022(False)
    frame.loc[frame["expiry_date"] == "2022-10-28", "bid"] = 0.0
    res = variance_index_from_chain(frame, pd.Timestamp("2022-09-27 10:45:15", tz=NY), 0.0)
    assert not res.available
    assert res.reason.startswith("SPXW 2022-10-28") and "forward" in res.reason


def test_minutes_follow_the_wall_clock_and_drop_seconds():
    # 2022 example: 794 minutes to midnight (seconds dropped) + 570 (09:30) + 1440 per day between
    val = pd.Timestamp("2022-09-27 10:45:15", tz=NY)
    exp = settlement_times(["2022-10-21", "2022-10-28"], ["AM", "PM"])
    assert minutes_to_settlement(val, exp).tolist() == [794 + 570 + 23 * 1440, 794 + 960 + 30 * 1440]
    # across the November DST change the count stays on the wall clock: 2 days * 1440 + 6 h
    val = pd.Timestamp("2022-11-05 10:00", tz=NY)
    assert minutes_to_settlement(val, settlement_times(["2022-11-07"], ["PM"])).tolist() == [2 * 1440 + 360]
    with pytest.raises(ParameterError):
        minutes_to_settlement(pd.Timestamp("2022-11-05 10:00"), exp)


def _flat_board(forward, t, sigma, rate, h, width=10.0):
    lo = math.floor(forward * math.exp(-width * sigma * math.sqrt(t)) / h) * h
    k = np.arange(max(lo, h), forward * math.exp(width * sigma * math.sqrt(t)) + h, h)
    d = math.exp(-rate * t)
    c = black76_price(forward, k, t, sigma, True, d)
    p = black76_price(forward, k, t, sigma, False, d)
    return k, c, p


def test_holiday_thursday_counts_as_its_friday():
    # Wed 2022-03-23 10:11: Good Friday 2022-04-15 moved that week's expiry to Thu 04-14 (22.24 days). Measured to
    # its nominal Friday it is in the 23-37 day window, so it pairs with Fri 04-22 (30.24 d) and no extrapolation
    # is needed. A regular Thursday (04-21) is never eligible.
    val = pd.Timestamp("2022-03-23 10:11", tz=NY)
    parts = []
    for date, sigma in (("2022-04-14", 0.20), ("2022-04-21", 0.60), ("2022-04-22", 0.20)):
        t = minutes_to_settlement(val, settlement_times([date], ["PM"]))[0] / 525_600
        k, c, p = _flat_board(4500.0, t, sigma, 0.0, 5.0)
        parts.append(_chain_rows(k, c, c, p, p, "SPXW", date, "PM"))
    res = variance_index_from_chain(pd.concat(parts, ignore_index=True), val, 0.0)
    assert res.available, res.reason
    assert (res.near_choice.expiry_date, res.next_choice.expiry_date) == ("2022-04-14", "2022-04-22")
    assert res.near_minutes < 23 * 1440 < 30 * 1440 < res.next_minutes
    assert res.index == pytest.approx(20.0, abs=0.01)


# ---------------------------------------------------------------------------------------------------------
# Synthetic: flat Black-76 smile
# ---------------------------------------------------------------------------------------------------------


def _predicted_bias(h, t, forward, k0):
    """sigma^2_VIX - s^2 for a flat smile on a uniform grid of step h (derivation in docs/variance_index.md).

    The strip sum is the trapezoid rule on put/K^2 below K0 and call/K^2 above; Euler-Maclaurin leaves
    h^2/12 * d/dK[(P - C)/K^2] at K0 = D h^2 (1 + 2x) / (12 K0^2), x = F/K0 - 1. The Taylor term (1/T) x^2
    replaces the exact (2/T)(x - ln(1 + x)), leaving -2 x^3 / (3T).
    """
    x = forward / k0 - 1.0
    return h * h * (1.0 + 2.0 * x) / (6.0 * t * k0 * k0) - 2.0 * x**3 / (3.0 * t)


@pytest.mark.parametrize(
    ("sigma", "days", "h", "forward", "rate"),
    [
        (0.20, 30, 0.5, 100.3, 0.05),
        (0.20, 30, 2.0, 100.0, 0.0),
        (0.50, 9, 0.25, 100.1, 0.03),
        (0.80, 30, 1.0, 100.7, 0.02),
        (0.10, 60, 0.5, 100.49, 0.0),
        (0.15, 37, 5.0, 4503.7, 0.05),  # SPX-like: 5-point strikes
    ],
)
def test_flat_smile_recovers_sigma_squared(sigma, days, h, forward, rate):
    t = days / 365
    k, c, p = _flat_board(forward, t, sigma, rate, h)
    tv = term_variance(k, c, c, p, p, t, rate)
    bias = _predicted_bias(h, t, forward, tv.k0)
    err = tv.sigma2 - sigma**2
    print(f"flat s={sigma} T={days}d h={h}: sigma2-s2={err:.3e} predicted {bias:.3e}")
    assert tv.forward == pytest.approx(forward, rel=1e-12)
    # the bias formula holds to 2% of itself; the absolute discretization error is O(h^2 / (T K0^2))
    assert abs(err - bias) <= 0.02 * abs(bias) + 1e-12
    assert abs(err) <= 1.1 * h * h / (6 * t * tv.k0**2) + 1e-12


@settings(max_examples=40, deadline=None)
@given(
    sigma=st.floats(0.08, 0.8),
    days=st.integers(7, 60),
    h=st.sampled_from([0.25, 0.5, 1.0, 2.5]),
    offset=st.floats(0.0, 0.999),
    rate=st.floats(-0.01, 0.08),
)
def test_flat_smile_property(sigma, days, h, offset, rate):
    t = days / 365
    forward = 100.0 + offset * h
    k, c, p = _flat_board(forward, t, sigma, rate, h)
    tv = term_variance(k, c, c, p, p, t, rate)
    bias = _predicted_bias(h, t, forward, tv.k0)
    assert abs(tv.sigma2 - sigma**2 - bias) <= 0.03 * abs(bias) + 1e-10


# ---------------------------------------------------------------------------------------------------------
# Zero-bid walk against a plain loop re-statement of the rules
# ---------------------------------------------------------------------------------------------------------


def _reference(k, cb, ca, pb, pa, t, r):
    cm, pm = (cb + ca) / 2, (pb + pa) / 2
    best, i_f = math.inf, None
    for i in range(len(k)):
        if min(cb[i], ca[i], pb[i], pa[i]) > 0 and abs(cm[i] - pm[i]) < best:
            best, i_f = abs(cm[i] - pm[i]), i
    f = k[i_f] + math.exp(r * t) * (cm[i_f] - pm[i_f])
    if f < k[0]:
        return f, None, [], math.nan
    i0 = max(i for i in range(len(k)) if k[i] <= f)
    strip = {k[i0]: (pm[i0] + cm[i0]) / 2}
    for step, bid, ask, mid in ((-1, pb, pa, pm), (1, cb, ca, cm)):
        i, prev_zero = i0 + step, False
        while 0 <= i < len(k):
            zero = not bid[i] > 0
            if zero and prev_zero:
                break
            prev_zero = zero
            if not zero and ask[i] > 0:
                strip[k[i]] = mid[i]
            i += step
    ks = sorted(strip)
    total = 0.0
    for j, kk in enumerate(ks):
        if len(ks) == 1:
            dk = 0.0
        elif j == 0:
            dk = ks[1] - ks[0]
        elif j == len(ks) - 1:
            dk = ks[-1] - ks[-2]
        else:
            dk = (ks[j + 1] - ks[j - 1]) / 2
        total += dk / kk**2 * math.exp(r * t) * strip[kk]
    return f, k[i0], ks, 2 / t * total - (f / k[i0] - 1) ** 2 / t


quote = st.sampled_from([0.0, 0.0, 0.05, 0.4, 1.0, 3.0])
spread = st.sampled_from([0.0, 0.05, 0.3])


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_walk_matches_loop_reference(data):
    n = data.draw(st.integers(3, 30))
    k = 1000.0 + 5.0 * np.arange(n)
    cb, pb = (np.array(data.draw(st.lists(quote, min_size=n, max_size=n))) for _ in range(2))
    ca, pa = (b + np.array(data.draw(st.lists(spread, min_size=n, max_size=n))) for b in (cb, pb))
    # guarantee one two-sided strike so a forward exists
    j = data.draw(st.integers(0, n - 1))
    cb[j], ca[j], pb[j], pa[j] = 1.0, 1.2, 1.1, 1.3
    t, r = 0.08, 0.03
    f, k0, ks, s2 = _reference(k, cb, ca, pb, pa, t, r)
    if k0 is None:  # forward below the lowest strike: no K0
        with pytest.raises(DataError):
            term_variance(k, cb, ca, pb, pa, t, r)
        return
    tv = term_variance(k, cb, ca, pb, pa, t, r)
    assert tv.forward == pytest.approx(f, rel=1e-13)
    assert tv.k0 == k0
    assert tv.strikes.tolist() == ks
    assert tv.sigma2 == pytest.approx(s2, rel=1e-10, abs=1e-14)


def test_zero_ask_series_are_excluded_without_stopping_the_walk():
    k = np.array([90.0, 95.0, 100.0, 105.0, 110.0])
    cb = np.array([10.0, 6.0, 2.0, 0.5, 0.2])
    ca = np.array([10.5, 6.5, 2.2, 0.0, 0.3])  # 105 call: bid but zero ask -> excluded, walk continues
    pb = np.array([0.1, 0.6, 2.0, 5.0, 10.0])
    pa = np.array([0.2, 0.7, 2.2, 5.5, 10.5])
    tv = term_variance(k, cb, ca, pb, pa, 0.1, 0.0)
    assert tv.k0 == 100.0
    assert tv.strikes.tolist() == [90.0, 95.0, 100.0, 110.0]
    assert tv.dk.tolist() == [5.0, 5.0, 7.5, 10.0]


def test_input_errors():
    k = np.array([95.0, 100.0, 105.0])
    q = np.array([1.0, 1.0, 1.0])
    with pytest.raises(ParameterError):
        term_variance(k, q, q, q, q, 0.0, 0.0)
    with pytest.raises(ParameterError):
        term_variance(np.array([100.0, 100.0, 105.0]), q, q, q, q, 0.1, 0.0)
    with pytest.raises(DataError):
        term_variance(k, np.zeros(3), q, q, q, 0.1, 0.0)
    tv = term_variance(k, q, q * 1.1, q, q * 1.1, 0.1, 0.0)
    with pytest.raises(ParameterError, match="extrapolate"):
        constant_maturity_index(tv, tv, 44_000, 50_000)
    with pytest.raises(ParameterError):
        constant_maturity_index(tv, tv, 40_000, 40_000)


def test_parity_rate_recovers_the_discount_slope():
    t, r, f = 30 / 365, 0.045, 4500.0
    k = np.arange(4000.0, 5000.0, 5.0)
    c = black76_price(f, k, t, 0.18, True, math.exp(-r * t))
    p = black76_price(f, k, t, 0.18, False, math.exp(-r * t))
    half = 0.05 + 0.002 * np.abs(k - f)  # wider away from the money, as on real boards
    assert parity_rate(k, c - half, c + half, p - half, p + half, t) == pytest.approx(r, abs=1e-9)
    assert math.isnan(parity_rate(k[:3], c[:3], c[:3] + 1, p[:3], p[:3] + 1, t))


# ---------------------------------------------------------------------------------------------------------
# Real SPX chains vs the published VIX of the same day
# ---------------------------------------------------------------------------------------------------------

VIX_TABLE = SHARED / "real_series" / "vix_for_shared_chains.csv"
REAL_ROWS = pd.read_csv(VIX_TABLE).to_dict("records") if VIX_TABLE.is_file() else []


@pytest.fixture(scope="module")
def real_results():
    out = {}
    for row in REAL_ROWS:
        snap = load_cached(str(SHARED / row["chain_file"]))  # volsurf.io.load, cached per session
        res = variance_index_from_chain(snap.frame, snap.meta.valuation_time)
        out[row["chain_file"]] = (snap, res)
    lines = []
    for row in REAL_ROWS:
        snap, res = out[row["chain_file"]]
        fig = f"{res.index:6.2f}" if res.available else "   n/a"
        terms = (
            f"near {res.near_choice.root} {res.near_choice.expiry_date} {res.near_minutes / 1440:.2f}d "
            f"r={res.near.rate:.4f}; next {res.next_choice.root} {res.next_choice.expiry_date} "
            f"{res.next_minutes / 1440:.2f}d r={res.next.rate:.4f}"
            if res.available
            else res.reason
        )
        lines.append(
            f"{row['vix_date']} val {snap.meta.valuation_time:%Y-%m-%d %H:%M} index {fig} | VIX close "
            f"{row['vix_close']:.2f} range [{row['vix_low']:.2f}, {row['vix_high']:.2f}] | {terms}"
        )
    table = "\n".join(lines)
    print("\n" + table)
    return out, table


@pytest.mark.slow  # loads seven ~1.5 MB Cboe files once (a few seconds in total)
@pytest.mark.skipif(not REAL_ROWS, reason="../shared/real_series/vix_for_shared_chains.csv not present")
@pytest.mark.parametrize("row", REAL_ROWS, ids=[r["vix_date"] for r in REAL_ROWS])
def test_real_chain_matches_published_vix(row, real_results):
    results, table = real_results
    snap, res = results[row["chain_file"]]
    last_expiry_days = (snap.frame["expiry"].max() - snap.meta.valuation_time).total_seconds() / 86_400
    if last_expiry_days < 30:
        # the chain ends before 30 days (romankop file: expiries only to 2023-12-29, 21 days)
        assert not res.available, table
        assert "not extrapolated" in res.reason and "21.00 d" in res.reason, table
        return
    assert res.available, f"{res.reason}\n{table}"
    if "intraday" in row["note"]:
        assert row["vix_low"] <= res.index <= row["vix_high"], table
    else:
        assert abs(res.index - row["vix_close"]) <= 0.5, table
