"""Tests for volsurf.analytics.gex: exposures against hand computations, sign conventions, profile, flip, walls, buckets."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vollib.black_scholes_merton.greeks.analytical import delta as bsm_delta
from vollib.black_scholes_merton.greeks.analytical import gamma as bsm_gamma

from volsurf.analytics import gex
from volsurf.analytics import gex_report as gexr
from volsurf.errors import DataError, ParameterError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REAL = SHARED / "real_chains"


def _npdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _hand_bs_gamma(s: float, k: float, t: float, r: float, q: float, sigma: float) -> float:
    """Black-Scholes-Merton spot gamma, written out by hand: e^{-qt} n(d1) / (S sigma sqrt t)."""
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / (sigma * math.sqrt(t))
    return math.exp(-q * t) * _npdf(d1) / (s * sigma * math.sqrt(t))


# A few contracts: (S, K, t, r, q, sigma, is_call, OI)
CONTRACTS = [
    (4500.0, 4500.0, 30 / 365, 0.05, 0.015, 0.15, True, 12_000.0),
    (4500.0, 4300.0, 30 / 365, 0.05, 0.015, 0.21, False, 25_000.0),
    (4500.0, 4700.0, 90 / 365, 0.05, 0.015, 0.12, True, 8_000.0),
    (450.0, 440.0, 2 / 365, 0.05, 0.0, 0.18, False, 40_000.0),
    (4500.0, 4510.0, 30 / 525_600, 0.05, 0.0, 0.10, True, 3_000.0),  # 30 minutes before settlement
]


def _arrays(contracts):
    s, k, t, r, q, sig, call, oi = (np.array(x) for x in zip(*contracts, strict=True))
    fwd = s * np.exp((r - q) * t)
    disc = np.exp(-r * t)
    return s, k, t, r, q, sig, call.astype(bool), oi, fwd, disc


def test_gex_matches_hand_computation_per_contract():
    s, k, t, _r, _q, sig, call, oi, fwd, disc = _arrays(CONTRACTS)
    greeks = gex.spot_greeks(s, fwd, k, t, sig, call, disc)
    exposure = gex.gamma_exposure(greeks.gamma, oi, s, 100.0, 1.0)
    for i, (si, ki, ti, ri, qi, sgi, _c, oii) in enumerate(CONTRACTS):
        g = _hand_bs_gamma(si, ki, ti, ri, qi, sgi)
        assert greeks.gamma[i] == pytest.approx(g, rel=1e-9)
        assert greeks.gamma[i] == pytest.approx(bsm_gamma("c", si, ki, ti, ri, sgi, qi), rel=1e-9)
        # Dollars per 1% move: gamma * OI * 100 * S^2 * 0.01
        assert exposure[i] == pytest.approx(g * oii * 100.0 * si * si * 0.01, rel=1e-9)


def test_gex_hand_number_atm_call():
    # S = K = 100, t = 30/365, sigma = 20%, r = q = 0: d1 = sigma sqrt(t) / 2.
    t = 30 / 365
    d1 = 0.2 * math.sqrt(t) / 2
    g = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi) / (100 * 0.2 * math.sqrt(t))
    assert g == pytest.approx(0.06954, abs=1e-5)  # published-style ATM gamma value
    greeks = gex.spot_greeks(100.0, 100.0, 100.0, t, 0.2, True, 1.0)
    # 1,000 contracts x 100 x 100^2 x 1% = g * 1e7 dollars per 1% move.
    assert gex.gamma_exposure(greeks.gamma, 1000.0, 100.0, 100.0)[()] == pytest.approx(g * 1e7, rel=1e-10)


def test_delta_and_exposure_units_against_vollib():
    s, k, t, _r, _q, sig, call, _oi, fwd, disc = _arrays(CONTRACTS)
    greeks = gex.spot_greeks(s, fwd, k, t, sig, call, disc)
    for i, (si, ki, ti, ri, qi, sgi, ci, oii) in enumerate(CONTRACTS):
        d = bsm_delta("c" if ci else "p", si, ki, ti, ri, sgi, qi)
        assert greeks.delta[i] == pytest.approx(d, rel=1e-9, abs=1e-12)
        assert gex.delta_exposure(greeks.delta[i], oii, si, 100.0, -1.0) == pytest.approx(-d * oii * 100 * si)


def test_vanna_and_charm_against_finite_differences():
    # Independent check: bump vol / time in the hand-written BSM delta.
    def bs_delta(s, k, t, r, q, sigma, call):
        d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / (sigma * math.sqrt(t))
        nd = 0.5 * (1 + math.erf(d1 / math.sqrt(2)))
        return math.exp(-q * t) * (nd if call else nd - 1)

    s, k, t, _r, _q, sig, call, _oi, fwd, disc = _arrays(CONTRACTS[:4])
    greeks = gex.spot_greeks(s, fwd, k, t, sig, call, disc)
    for i, (si, ki, ti, ri, qi, sgi, ci, _oi) in enumerate(CONTRACTS[:4]):
        h = 1e-5
        vanna_fd = (bs_delta(si, ki, ti, ri, qi, sgi + h, ci) - bs_delta(si, ki, ti, ri, qi, sgi - h, ci)) / (2 * h)
        assert greeks.vanna[i] == pytest.approx(vanna_fd, rel=1e-5, abs=1e-9)
        # Charm: spot, rate and dividend yield fixed, time to expiry shortened.
        ht = 1e-6
        charm_fd = -(bs_delta(si, ki, ti + ht, ri, qi, sgi, ci) - bs_delta(si, ki, ti - ht, ri, qi, sgi, ci)) / (2 * ht)
        assert greeks.charm[i] == pytest.approx(charm_fd, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize(
    ("name", "call_sign", "put_sign"),
    [
        ("dealer_long_calls_short_puts", 1, -1),
        ("dealer_short_calls_long_puts", -1, 1),
        ("dealer_short_all", -1, -1),
        ("dealer_long_all", 1, 1),
    ],
)
def test_sign_conventions(name, call_sign, put_sign):
    a = gex.get_assumption(name)
    signs = a.signs(np.array([True, False]))
    assert signs.tolist() == [call_sign, put_sign]
    g = gex.spot_greeks(100.0, 100.0, np.array([100.0, 100.0]), 0.1, 0.2, np.array([True, False])).gamma
    x = gex.gamma_exposure(g, 10.0, 100.0, 100.0, signs)
    assert np.sign(x).tolist() == [call_sign, put_sign]
    assert a.description


def test_unknown_assumption_raises():
    with pytest.raises(ParameterError, match="dealer_long_calls_short_puts"):
        gex.get_assumption("dealers_are_flat")


def test_invalid_rows_contribute_zero_without_warnings():
    g = gex.spot_greeks(
        100.0, np.array([100.0, np.nan, 100.0, 100.0]), 100.0, np.array([0.1, 0.1, 0.0, 0.1]),
        np.array([0.2, 0.2, 0.2, np.nan]), True,
    )
    assert g.gamma[0] > 0
    assert g.gamma[1:].tolist() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------------------------------------- profile


def _chain(rng, n=300, spot=4500.0):
    k = spot * np.exp(rng.normal(0, 0.08, n))
    t = rng.uniform(1 / 365, 0.5, n)
    sig = rng.uniform(0.1, 0.4, n)
    fwd = spot * np.exp(0.03 * t)
    disc = np.exp(-0.05 * t)
    call = k >= spot
    oi = rng.integers(0, 20_000, n).astype(float)
    return k, t, sig, fwd, disc, call, oi


def test_profile_matches_direct_gamma_at_each_spot():
    rng = np.random.default_rng(1)
    spot = 4500.0
    k, t, sig, fwd, disc, call, oi = _chain(rng)
    w = gex.get_assumption("dealer_long_calls_short_puts").signs(call) * oi * 100.0
    grid = np.array([3900.0, 4400.0, 4500.0, 4620.0, 5100.0])
    prof = gex.gex_profile(grid, spot, fwd, k, t, sig, disc, w)
    for j, s2 in enumerate(grid):
        # Independent: BSM gamma at S' with the same carry (F' = F S'/S) and the same (sticky-strike) vol.
        r = -np.log(disc) / t
        q = r - np.log(fwd / spot) / t
        direct = sum(
            w[i] * _hand_bs_gamma(s2, k[i], t[i], r[i], q[i], sig[i]) * s2 * s2 * 0.01 for i in range(len(k))
        )
        assert prof[j] == pytest.approx(direct, rel=1e-9)


def test_profile_chunking_and_multi_column():
    rng = np.random.default_rng(2)
    k, t, sig, fwd, disc, call, oi = _chain(rng, n=500)
    grid = gex.spot_grid(4500.0, 0.15, 201)
    w = np.column_stack([oi, -oi * call])
    model = gex.ProfileModel.build(4500.0, fwd, k, t, sig, disc, w)
    full = model.evaluate(grid)
    small = model.evaluate(grid, chunk_elements=777)
    np.testing.assert_allclose(full, small, rtol=1e-12)
    single = gex.ProfileModel.build(4500.0, fwd, k, t, sig, disc, oi)
    np.testing.assert_allclose(full[:, 0], single.evaluate(grid), rtol=1e-12)
    np.testing.assert_allclose(model.evaluate(grid, combo=[2.0, 1.0]), 2 * full[:, 0] + full[:, 1], rtol=1e-12)
    assert model.value(4600.0, [1.0, 0.0]) == pytest.approx(single.value(4600.0), rel=1e-12)
    assert full.shape == (201, 2)


def test_profile_far_strikes_are_exactly_negligible():
    # A 1-day option 30% out of the money has |d1| in the hundreds: skipped, and no warning or NaN.
    model = gex.ProfileModel.build(100.0, 100.0, np.array([70.0, 100.0]), 1 / 365, 0.15, 1.0, np.array([1e6, 1.0]))
    alone = gex.ProfileModel.build(100.0, 100.0, np.array([100.0]), 1 / 365, 0.15, 1.0, np.array([1.0]))
    grid = gex.spot_grid(100.0, 0.1, 41)
    np.testing.assert_allclose(model.evaluate(grid), alone.evaluate(grid), rtol=1e-14, atol=0)


def test_spot_grid_defaults_and_validation():
    g = gex.spot_grid(100.0)
    assert g.size >= 200
    assert g[0] == pytest.approx(85.0) and g[-1] == pytest.approx(115.0)
    with pytest.raises(ParameterError):
        gex.spot_grid(100.0, 1.5)
    with pytest.raises(ParameterError):
        gex.spot_grid(100.0, 0.1, 1)


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(0.1, 10.0),
    oi_scale=st.floats(0.5, 5.0),
    seed=st.integers(0, 1000),
)
def test_profile_properties(scale, oi_scale, seed):
    """Linear in OI, odd in the dealer sign, and homogeneous of degree 1 in price level."""
    rng = np.random.default_rng(seed)
    k, t, sig, fwd, disc, call, oi = _chain(rng, n=40, spot=100.0)
    grid = gex.spot_grid(100.0, 0.15, 21)
    w = np.where(call, 1.0, -1.0) * oi
    base = gex.gex_profile(grid, 100.0, fwd, k, t, sig, disc, w)
    np.testing.assert_allclose(gex.gex_profile(grid, 100.0, fwd, k, t, sig, disc, w * oi_scale), base * oi_scale,
                               rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(gex.gex_profile(grid, 100.0, fwd, k, t, sig, disc, -w), -base, rtol=1e-12)
    scaled = gex.gex_profile(grid * scale, 100.0 * scale, fwd * scale, k * scale, t, sig, disc, w)
    np.testing.assert_allclose(scaled, base * scale, rtol=1e-9, atol=1e-6)


# ---------------------------------------------------------------------------------------------- flip


def _two_option_case(k_put=90.0, k_call=110.0, sigma=0.25, t=0.25):
    """Dealers long a call at k_call and short a put at k_put (same OI, carry 1): gamma flip in closed form.

    Equal gammas need n(d1(K1)) = n(d1(K2)), i.e. d1(K1) = -d1(K2): F* = sqrt(K1 K2) exp(-sigma^2 t / 2).
    """
    k = np.array([k_put, k_call])
    call = np.array([False, True])
    w = gex.get_assumption("dealer_long_calls_short_puts").signs(call) * 1000.0 * 100.0
    expected = math.sqrt(k_put * k_call) * math.exp(-sigma * sigma * t / 2)
    return k, call, w, sigma, t, expected


@pytest.mark.parametrize(("k_put", "k_call", "sigma", "t"), [(90, 110, 0.25, 0.25), (95, 100, 0.15, 0.05),
                                                               (80, 120, 0.4, 1.0)])
def test_flip_closed_form_and_bracketing(k_put, k_call, sigma, t):
    k, _call, w, sig, tt, expected = _two_option_case(k_put, k_call, sigma, t)
    spot = 100.0
    model = gex.ProfileModel.build(spot, spot, k, tt, sig, 1.0, w)
    grid = gex.spot_grid(spot, 0.15, 201)
    values = model.evaluate(grid)
    res = gex.find_gamma_flip(model.value, grid, values, spot)
    assert res.flip == pytest.approx(expected, rel=1e-7)
    assert res.reason is None
    # Bracketing: the profile has opposite signs on the two sides of the flip.
    eps = 1e-3 * spot
    assert model.value(res.flip - eps) * model.value(res.flip + eps) < 0
    assert model.value(res.flip - eps) < 0 < model.value(res.flip + eps)
    # The root is exact on the profile function, not an interpolation between grid points.
    gross = gex.ProfileModel.build(spot, spot, k, tt, sig, 1.0, np.abs(w)).value(res.flip)
    assert abs(model.value(res.flip)) < 1e-9 * gross


def test_flip_closest_of_several_crossings():
    # Short puts at 80 and 120, long call at 100 => profile - + - : two crossings; pick the one nearest spot.
    k = np.array([80.0, 100.0, 120.0])
    w = np.array([-1.0, 1.0, -1.0]) * 1e5
    model = gex.ProfileModel.build(104.0, 104.0, k, 0.1, 0.2, 1.0, w)
    grid = gex.spot_grid(104.0, 0.3, 301)
    values = model.evaluate(grid)
    res = gex.find_gamma_flip(model.value, grid, values, 104.0)
    assert len(res.crossings) == 2
    lo, hi = res.crossings
    assert lo < 100.0 < hi
    assert res.flip == min(res.crossings, key=lambda r: abs(r - 104.0))
    for c in res.crossings:
        assert model.value(c * 0.999) * model.value(c * 1.001) < 0


@pytest.mark.parametrize(("signs", "word"), [((1.0, 1.0), "positive"), ((-1.0, -1.0), "negative")])
def test_no_crossing_gives_none_with_reason(signs, word):
    k = np.array([95.0, 105.0])
    w = np.array(signs) * 1e5
    model = gex.ProfileModel.build(100.0, 100.0, k, 0.1, 0.2, 1.0, w)
    grid = gex.spot_grid(100.0)
    res = gex.find_gamma_flip(model.value, grid, model.evaluate(grid), 100.0)
    assert res.flip is None
    assert res.crossings == ()
    assert word in res.reason


def test_no_open_interest_reason():
    grid = gex.spot_grid(100.0)
    res = gex.find_gamma_flip(lambda s: 0.0, grid, np.zeros_like(grid), 100.0)
    assert res.flip is None and "zero" in res.reason


# ---------------------------------------------------------------------------------------------- walls, buckets


def test_by_strike_and_walls():
    strike = np.array([4400.0, 4400.0, 4500.0, 4500.0, 4600.0, 4600.0])
    call = np.array([True, False, True, False, True, False])
    g = np.array([1.0, -3.0, 5.0, -1.0, 2.0, -0.5]) * 1e8
    table = gex.by_strike(strike, call, g)
    assert table["strike"].tolist() == [4400.0, 4500.0, 4600.0]
    assert table["net_gex"].tolist() == pytest.approx([-2e8, 4e8, 1.5e8])
    w = gex.find_walls(table)
    assert (w.call_wall, w.put_wall, w.largest_abs_gex_strike) == (4500.0, 4400.0, 4500.0)
    assert gex.find_walls(gex.by_strike(strike, call, np.zeros(6))).call_wall is None


def test_walls_from_arrays_equal_the_table_walls_and_signs_scale_exactly():
    rng = np.random.default_rng(5)
    strike = rng.choice(np.arange(4000.0, 5000.0, 25.0), 400)
    call = rng.random(400) < 0.5
    unsigned = rng.gamma(2.0, 1e7, 400)
    index = np.unique(strike, return_inverse=True)
    strikes, call_u, put_u = gex.strike_totals(strike, call, unsigned, index)
    for a in gex.ASSUMPTIONS.values():
        signed = unsigned * a.signs(call)
        from_table = gex.find_walls(gex.by_strike(strike, call, signed))
        assert gex.strike_walls(strike, call, signed) == from_table
        # +-1 signs scale the per-strike sums exactly, so the walls of the unsigned sums are the same walls
        assert gex.walls_from_totals(strikes, a.call_sign * call_u, a.put_sign * put_u) == from_table


def test_combined_model_and_gamma_alone_match_the_general_forms():
    rng = np.random.default_rng(6)
    k, t, sig, fwd, disc, call, oi = _chain(rng, n=400)
    sig[::37] = np.nan  # unusable rows give 0 in both
    cp = np.column_stack([np.where(call, oi, 0.0), np.where(call, 0.0, oi)])
    model = gex.ProfileModel.build(4500.0, fwd, k, t, sig, disc, cp)
    combo = np.array([1.0, -1.0])
    one = model.combined(combo)
    for s2 in (4300.0, 4500.0, 4711.5):
        assert one.value(s2) == model.value(s2, combo)  # the same arithmetic, not only close
    np.testing.assert_array_equal(gex.spot_gamma(4500.0, fwd, k, t, sig, disc),
                                  gex.spot_greeks(4500.0, fwd, k, t, sig, call, disc).gamma)


@pytest.mark.parametrize(
    ("trade", "expiry", "bucket"),
    [
        ("2023-09-14", "2023-09-14", "0dte"),
        ("2023-09-14", "2023-09-15", "this_week"),  # also the September monthly: nearer bucket wins
        ("2023-09-14", "2023-09-29", "quarterly"),
        ("2023-09-14", "2023-10-20", "monthly"),
        ("2023-09-14", "2023-09-22", "longer"),
        ("2023-09-14", "2023-12-29", "quarterly"),
        ("2022-03-23", "2022-04-14", "monthly"),  # Good Friday 2022-04-15: monthly on the Thursday
        ("2022-03-23", "2022-04-15", "longer"),
        ("2024-03-20", "2024-03-28", "quarterly"),  # Good Friday 2024-03-29: quarter ends on the 28th
        ("2026-07-31", "2026-08-03", "longer"),
        ("2025-08-29", "2025-09-30", "quarterly"),
        ("2023-09-16", "2023-09-22", "this_week"),  # Saturday trade date -> week ends the next Friday
    ],
)
def test_expiry_buckets(trade, expiry, bucket):
    out = gex.expiry_buckets([expiry], dt.date.fromisoformat(trade))
    assert out.tolist() == [bucket]


def test_parse_expiry_selection():
    assert gex.parse_expiry_selection("all") == gex.BUCKETS
    assert gex.parse_expiry_selection("monthly,0dte") == ("0dte", "monthly")
    with pytest.raises(ParameterError):
        gex.parse_expiry_selection("weekly")


def test_floor_time():
    assert gex.floor_time(np.array([1e-5, 0.5])).tolist() == [1 / 252, 0.5]


# ---------------------------------------------------------------------------------------------- report


def _synthetic_enriched(spot=4500.0, trade=dt.date(2023, 9, 14), minutes_to_close=30.0):
    """A small enriched-like snapshot built by hand (no dependency on volsurf.pricing.enrich)."""
    rows = []
    vt = pd.Timestamp("2023-09-14 16:00", tz="America/New_York") - pd.Timedelta(minutes=minutes_to_close)
    for exp, t in (("2023-09-14", minutes_to_close / 525_600), ("2023-09-15", (minutes_to_close + 1440) / 525_600),
                   ("2023-10-20", 36 / 365), ("2023-12-29", 106 / 365)):
        for kk in np.arange(4200.0, 4801.0, 50.0):
            for typ in ("call", "put"):
                sig = 0.14 + 0.4 * (kk / spot - 1) ** 2 + (0.03 if typ == "put" else 0.0) * 0
                rows.append({
                    "strike": kk, "type": typ, "expiry_date": exp, "t": t, "forward": spot * math.exp(0.035 * t),
                    "discount": math.exp(-0.05 * t), "iv_mid": sig, "iv_bid": sig - 0.01, "iv_ask": sig + 0.01,
                    "open_interest": 1000.0 + (3000.0 if (typ == "put" and kk < spot) else 0.0)
                    + (2000.0 if (typ == "call" and kk > spot) else 0.0),
                    "vendor_gamma": np.nan,
                })
    frame = pd.DataFrame(rows)
    meta = SimpleNamespace(spot=spot, trade_date=trade, valuation_time=vt, underlying="SPX")
    return SimpleNamespace(frame=frame, meta=meta)


def test_report_on_synthetic_snapshot():
    enr = _synthetic_enriched()
    rep = gexr.gex_report(enr, n_points=201, later_time="eod")
    d = rep.to_dict()
    for key in ("spot", "net_gex", "gamma_flip", "call_wall", "put_wall", "assumption", "by_strike", "profile"):
        assert key in d
    assert d["assumption"] == "dealer_long_calls_short_puts"
    assert set(d["by_strike"][0]) == {"strike", "call_gex", "put_gex", "net_gex"}
    assert len(d["profile"]) == 201
    # Totals are sums of the per-strike table and of the bucket table.
    assert sum(r["net_gex"] for r in d["by_strike"]) == pytest.approx(d["net_gex"], rel=1e-9)
    assert sum(r["net_gex"] for r in d["by_bucket"]) == pytest.approx(d["net_gex"], rel=1e-9)
    # The profile at the grid's centre is the net GEX at spot (two code paths: pricing.spot_gamma vs profile).
    centre = d["profile"][100]
    assert centre["spot"] == pytest.approx(4500.0)
    assert centre["net_gex"] == pytest.approx(d["net_gex"], rel=1e-9)
    # Bucket profiles add up to the total profile.
    total = np.sum([np.array([p["net_gex"] for p in v]) for v in d["profile_by_bucket"].values()], axis=0)
    np.testing.assert_allclose(total, [p["net_gex"] for p in d["profile"]], rtol=1e-9)
    # The flip brackets a sign change of the profile.
    if d["gamma_flip"] is not None:
        assert d["gamma_flip_range"][0] <= d["gamma_flip"] <= d["gamma_flip_range"][1]
    # 0DTE expiry 30 minutes away: timing variants are part of the robustness set.
    assert {s["timing"] for s in d["robustness"]} == {"exact", "one_business_day_floor"}
    assert len(d["robustness"]) == 4 * 3 * 2
    assert isinstance(d["regime_robust"], bool)
    # End of day: the 0DTE contracts are gone from the later profile.
    assert d["profile_later"]["valuation_time"].startswith("2023-09-14T16:00")
    # ... not only the timestamp: the later profile is the hand-built one of the other expiries alone, 30 minutes
    # (the time to the 16:00 close) shorter, without the 0DTE rows; with them it would differ.
    f = enr.frame
    later_t = f["t"].to_numpy() - 30.0 / 525_600.0
    keep = later_t > 0
    assert (~keep).sum() == (f["expiry_date"] == "2023-09-14").sum() > 0
    weights = np.where(f["type"] == "call", 1.0, -1.0) * f["open_interest"].to_numpy() * 100.0
    disc2 = f["discount"].to_numpy() ** (np.clip(later_t, 0, None) / f["t"].to_numpy())
    grid = np.array([p["spot"] for p in d["profile"]])
    hand = gex.gex_profile(grid, 4500.0, f["forward"].to_numpy()[keep], f["strike"].to_numpy()[keep], later_t[keep],
                           f["iv_mid"].to_numpy()[keep], disc2[keep], weights[keep])
    np.testing.assert_allclose([p["net_gex"] for p in d["profile_later"]["profile"]], hand, rtol=1e-9, atol=1e-6)


def test_report_expiry_selection_and_opposite_assumption():
    enr = _synthetic_enriched()
    base = gexr.gex_report(enr, n_points=101, robustness=False)
    opp = gexr.gex_report(enr, n_points=101, robustness=False, assumption="dealer_short_calls_long_puts")
    assert opp.net_gex == pytest.approx(-base.net_gex)
    assert opp.flip.flip == pytest.approx(base.flip.flip) if base.flip.flip else opp.flip.flip is None
    zero = gexr.gex_report(enr, n_points=101, robustness=False, expiries="0dte")
    monthly = gexr.gex_report(enr, n_points=101, robustness=False, expiries="monthly,quarterly")
    assert zero.expiries == ("0dte",)
    assert zero.net_gex + monthly.net_gex + gexr.gex_report(
        enr, n_points=101, robustness=False, expiries="this_week").net_gex == pytest.approx(base.net_gex)
    with pytest.raises(DataError):
        gexr.gex_report(enr, expiries="longer", robustness=False)


def test_report_sticky_strike_callable_equals_flat_when_it_returns_mid():
    enr = _synthetic_enriched()
    f = enr.frame
    lookup = dict(zip(zip(f["strike"], f["t"], strict=True), f["iv_mid"], strict=True))

    def vol(strike, t):
        return np.array([lookup[(k, tt)] for k, tt in zip(strike, t, strict=True)])

    a = gexr.gex_report(enr, n_points=101, robustness=False)
    b = gexr.gex_report(enr, n_points=101, robustness=False, vol=vol)
    assert b.net_gex == pytest.approx(a.net_gex, rel=1e-12)
    np.testing.assert_allclose(b.profile_net, a.profile_net, rtol=1e-12)
    assert b.vol_model != a.vol_model


# ---------------------------------------------------------------------------------------------- real files, CLI

SPX_0914 = REAL / "cboe_carlosjimenezdiaz_GEX_Python" / "2023-09-14" / "spx_quotedata.csv"
SPY_SMALL = REAL / "cboe_ralph-e-boy_gamma-chart" / "2025-05-06_1809_truncated" / "quotedata.csv"


def load_snapshot_frame(path):
    """The loaded rows (parsing only) of a chain file."""
    from volsurf.io import load

    return load(str(path)).frame


def _enriched(path):
    from volsurf.io import load
    from volsurf.pricing.enrich import enrich

    return enrich(load(str(path)))


@pytest.mark.slow
@pytest.mark.skipif(not SPX_0914.exists(), reason="shared real chains not present")
def test_real_spx_2023_09_14_against_vendor_column():
    rep = gexr.gex_report(_enriched(SPX_0914), later_time="eod")
    v = rep.vendor
    # Published reference (SOURCES.md, pitfall 5): Gamma x OI x 100 x S^2 x 1% with the file's gamma ~ 23.3 bn.
    assert v["net_gex_vendor"] / 1e9 == pytest.approx(23.3, abs=0.1)
    # Calls ~195 bn and puts ~175 bn nearly cancel; our recomputed gamma keeps both legs and the sign.
    assert rep.totals["call_gex"] / 1e9 == pytest.approx(195, rel=0.05)
    assert rep.totals["put_gex"] / 1e9 == pytest.approx(-175, rel=0.05)
    assert 0 < rep.net_gex < v["net_gex_vendor"]
    assert abs(v["relative_difference"]) < 0.3
    # Flip near spot, bracketed by a sign change of the exact profile function.
    flip = rep.flip.flip
    assert flip is not None and abs(flip / rep.spot - 1) < 0.02
    lo, hi = rep.gamma_flip_range
    assert lo <= flip <= hi
    assert rep.regime_robust is True
    # Walls from an independent computation on the file's own columns (vendor Gamma x Open Interest per strike,
    # a pandas group-by, no volsurf greeks): the strikes of the largest call and put gamma.
    raw = load_snapshot_frame(SPX_0914)
    gam = raw["vendor_gamma"] * raw["open_interest"]
    is_call = raw["type"] == "call"
    assert rep.walls.call_wall == gam[is_call].groupby(raw["strike"][is_call]).sum().idxmax()
    assert rep.walls.put_wall == gam[~is_call].groupby(raw["strike"][~is_call]).sum().idxmax()
    d = rep.to_dict()
    assert len(d["profile"]) >= 400
    i = int(np.searchsorted(rep.profile_spots, flip))
    assert rep.profile_net[i - 1] < 0 < rep.profile_net[i]


@pytest.mark.skipif(not SPY_SMALL.exists(), reason="shared real chains not present")
def test_cli_json_csv_table_and_plots(tmp_path, capsys):
    import json

    from volsurf.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["gex", str(SPY_SMALL), "--format", "json", "--points", "201", "--plot", str(tmp_path)])
    assert exc.value.code == 0
    out = capsys.readouterr()
    d = json.loads(out.out)
    for key in ("spot", "net_gex", "gamma_flip", "call_wall", "put_wall", "assumption", "by_strike", "profile"):
        assert key in d
    assert d["assumption"] == "dealer_long_calls_short_puts"
    assert set(d["by_strike"][0]) == {"strike", "call_gex", "put_gex", "net_gex"}
    assert set(d["profile"][0]) == {"spot", "net_gex"} and len(d["profile"]) == 201
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["SPY_2025-05-06_gex_by_strike.png", "SPY_2025-05-06_gex_profile.png"]

    with pytest.raises(SystemExit) as exc:
        main(["gex", str(SPY_SMALL), "--format", "csv", "--no-robustness", "--expiries", "this_week,monthly"])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "strike,call_gex,put_gex,net_gex"

    with pytest.raises(SystemExit) as exc:
        main(["gex", str(SPY_SMALL), "--no-robustness", "--assumption", "dealer_short_all"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "dealer_short_all" in text and "net_gex_bn" in text

    with pytest.raises(SystemExit) as exc:
        main(["gex", str(SPY_SMALL), "--expiries", "weekly"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("Error: unknown expiry bucket")


def test_no_open_interest_reports_net_gex_unavailable_not_zero():
    # OptionsDX files carry no open interest: every exposure would be 0.0, and "0.0 => negative gamma,
    # regime_robust: true" is a made-up regime. The report says why there is no number instead.
    enr = _synthetic_enriched()
    enr.frame["open_interest"] = np.nan
    rep = gexr.gex_report(enr, n_points=51)
    d = rep.to_dict()
    assert math.isnan(rep.net_gex)
    assert "no open interest" in d["net_gex_unavailable_reason"]
    assert d["regime_robust"] is None and d["gamma_flip"] is None and d["call_wall"] is None
    assert d["coverage"]["contracts_missing_oi"] == len(enr.frame)
    enr.frame["open_interest"] = 0.0
    assert "no contract has a positive open interest" in gexr.gex_report(enr, n_points=51).unavailable_reason


def test_stale_spot_uses_the_parity_implied_spot_everywhere():
    # The file's Last 1% off the level the options were priced against (the forwards carry the true spot 4500).
    enr = _synthetic_enriched(spot=4545.0)
    enr.implied_spot = 4500.0
    rep = gexr.gex_report(enr, n_points=101, robustness=False)
    d = rep.to_dict()
    assert d["spot"] == 4500.0 and d["file_spot"] == 4545.0 and d["spot_source"].startswith("implied")
    # grid centred on the implied spot, exposures at it: the same as a file whose Last is the implied spot
    fresh = SimpleNamespace(frame=enr.frame, meta=SimpleNamespace(**{**vars(enr.meta), "spot": 4500.0}))
    ref = gexr.gex_report(fresh, n_points=101, robustness=False)
    assert rep.profile_spots[50] == pytest.approx(4500.0)
    assert rep.net_gex == pytest.approx(ref.net_gex, rel=1e-12)
    np.testing.assert_allclose(rep.profile_net, ref.profile_net, rtol=1e-12)
    # a Last within the tolerance is kept
    enr2 = _synthetic_enriched(spot=4501.0)
    enr2.implied_spot = 4500.0
    assert gexr.gex_report(enr2, n_points=11, robustness=False).spot_source == "file"


@pytest.mark.parametrize("bad", [0.0, -4500.0, math.nan, math.inf])
def test_non_positive_or_non_finite_spot_is_a_one_line_input_error(bad):
    enr = _synthetic_enriched()
    enr.meta.spot = bad
    with pytest.raises(DataError) as e:
        gexr.gex_report(enr, n_points=11, robustness=False)
    assert "\n" not in str(e.value)


def test_vanna_and_charm_against_closed_forms():
    # Textbook Black-Scholes-Merton closed forms (e.g. Haug, The Complete Guide to Option Pricing Formulas, 2nd ed.,
    # sec. 2.2): vanna = -e^{-qt} n(d1) d2 / sigma; charm (minus d delta / dt, per year)
    # = +-q e^{-qt} N(+-d1) - e^{-qt} n(d1) (2 (r - q) t - d2 sigma sqrt t) / (2 t sigma sqrt t).
    s, k, t, _r, _q, sig, call, _oi, fwd, disc = _arrays(CONTRACTS)
    greeks = gex.spot_greeks(s, fwd, k, t, sig, call, disc)
    for i, (si, ki, ti, ri, qi, sgi, ci, _oi_i) in enumerate(CONTRACTS):
        st_ = sgi * math.sqrt(ti)
        d1 = (math.log(si / ki) + (ri - qi + 0.5 * sgi * sgi) * ti) / st_
        d2 = d1 - st_
        eq = math.exp(-qi * ti)
        vanna = -eq * _npdf(d1) * d2 / sgi
        ncdf = 0.5 * (1 + math.erf((d1 if ci else -d1) / math.sqrt(2)))
        charm = (1 if ci else -1) * qi * eq * ncdf - eq * _npdf(d1) * (2 * (ri - qi) * ti - d2 * st_) / (2 * ti * st_)
        assert greeks.vanna[i] == pytest.approx(vanna, rel=1e-9, abs=1e-12)
        assert greeks.charm[i] == pytest.approx(charm, rel=1e-9, abs=1e-12)
