"""Implied forwards and discount factors: exact on synthetic chains, sane on real SPX files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REAL, load_cached
from hypothesis import given, settings
from hypothesis import strategies as st

from volsurf.market.timing import year_fraction
from volsurf.pricing.black76 import black76_price
from volsurf.pricing.forwards import estimate_forward, implied_forwards, parity_pairs


@settings(max_examples=50, deadline=None)
@given(
    fwd=st.floats(50, 8000),
    rate=st.floats(-0.005, 0.12),
    t=st.floats(0.12, 3.0),
    vol=st.floats(0.08, 0.6),
)
def test_regression_recovers_forward_and_discount(fwd: float, rate: float, t: float, vol: float):
    disc = np.exp(-rate * t)
    strikes = fwd * np.linspace(0.8, 1.2, 41)
    c = black76_price(fwd, strikes, t, vol, True, disc)
    p = black76_price(fwd, strikes, t, vol, False, disc)
    est = estimate_forward(strikes, c, p, t, spot=fwd * 0.99, spreads=np.full(strikes.size, 0.01 * fwd))
    assert est.method == "parity_regression"
    assert est.forward == pytest.approx(fwd, rel=1e-8)
    assert est.discount == pytest.approx(disc, rel=1e-8)
    assert est.rate == pytest.approx(rate, abs=1e-7)


def test_short_expiry_uses_rate_hint_and_recovers_forward():
    fwd, t, rate = 4500.0, 3 / 365, 0.05
    disc = np.exp(-rate * t)
    strikes = np.arange(4400.0, 4601.0, 5.0)
    c = black76_price(fwd, strikes, t, 0.15, True, disc)
    p = black76_price(fwd, strikes, t, 0.15, False, disc)
    est = estimate_forward(strikes, c, p, t, spot=4490.0, rate_hint=rate)
    assert est.method == "parity_fixed_rate"
    assert est.forward == pytest.approx(fwd, rel=1e-10)
    assert est.discount == pytest.approx(disc, rel=1e-12)


def test_no_pairs_falls_back_to_carry():
    est = estimate_forward(np.array([]), np.array([]), np.array([]), 0.5, spot=100.0,
                           default_rate=0.04, default_dividend_yield=0.01)
    assert est.method == "carry_fallback"
    assert est.forward == pytest.approx(100 * np.exp(0.03 * 0.5))
    assert est.dividend_yield == pytest.approx(0.01)


SPX_FILES = [
    "cboe_carlosjimenezdiaz_GEX_Python/2023-09-14/spx_quotedata.csv",
    "cboe_carlosjimenezdiaz_GEX_Python/2023-09-04/spx_quotedata.csv",
    "cboe_GallegoToscano_svi-volatility-surface/spx_quotedata_20260803.csv",
    "cboe_nickkxsper_index-gamma/2022-02-19/spx_quotedata.csv",
    "cboe_Luca-Castelli_Index-Gamma/spx_quotedata.csv",
]


def _forwards(rel: str):
    snap = load_cached(str(REAL / rel))
    f = snap.frame.assign(t=year_fraction(snap.meta.valuation_time, snap.frame["expiry"]))
    tb = f.groupby(["expiry", "root"])["t"].first()
    return snap, f, implied_forwards(f, tb, snap.meta.spot)


@pytest.mark.parametrize("rel", SPX_FILES)
def test_real_spx_forwards_near_spot_with_carry(rel: str):
    if not REAL.exists():
        pytest.skip("no ../shared")
    from volsurf.pricing.forwards import implied_spot

    snap, _, fw = _forwards(rel)
    # The file's 'Last' can be stale (pre-market download): the parity-implied spot stays within 0.6% of it.
    spot = implied_spot(fw, snap.meta.spot)
    assert spot == pytest.approx(snap.meta.spot, rel=0.006)
    reg = fw[fw["method"] == "parity_regression"]
    assert len(reg) >= 5, "most SPX expiries beyond ~5 weeks should identify their discount factor"
    # S&P 500 facts: dividend yield roughly 1.2-2% over 2022-2026; rates between 0% and 6%.
    long = reg[(reg["t"] > 0.25) & (reg["t"] < 1.5)]
    assert long["dividend_yield"].between(0.005, 0.025).all(), long[["t", "dividend_yield"]]
    assert reg["rate"].between(-0.005, 0.07).all()
    # The forward sits within a few points of spot carried at the implied rate and the dividend yield.
    q = float(long["dividend_yield"].median())
    short = fw[fw["t"] < 0.1]
    carried = spot * np.exp((short["rate"] - q) * short["t"])
    assert (np.abs(short["forward"] - carried) < 0.0015 * spot).all(), (short["forward"] - carried).abs().max()


@pytest.mark.parametrize("rel", SPX_FILES[:3])
def test_real_parity_residuals_within_spread(rel: str):
    if not REAL.exists():
        pytest.skip("no ../shared")
    _, f, fw = _forwards(rel)
    pairs = parity_pairs(f).merge(fw[["expiry", "root", "forward", "discount", "t"]], on=["expiry", "root"])
    near = pairs[(np.abs(pairs["strike"] / pairs["forward"] - 1) < 0.03) & (pairs["t"] > 7 / 365)]
    resid = (near["c_mid"] - near["p_mid"]) - near["discount"] * (near["forward"] - near["strike"])
    inside = np.abs(resid) <= near["spread"] / 2 + 0.05
    print(f"{rel}: {inside.mean():.1%} of {len(near)} near-the-money pairs satisfy parity within half the spread")
    assert inside.mean() > 0.9


def test_pairs_need_both_sides():
    f = pd.DataFrame({
        "expiry": [1, 1, 1], "root": ["X"] * 3, "strike": [100.0, 100.0, 105.0], "type": ["call", "put", "call"],
        "bid": [5.0, 4.0, 2.0], "ask": [5.2, 4.2, 2.2],
    })
    p = parity_pairs(f)
    assert len(p) == 1 and p["c_mid"].iloc[0] == pytest.approx(5.1) and p["spread"].iloc[0] == pytest.approx(0.4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60))
def test_fast_median_equals_numpy(values):
    from volsurf.pricing.forwards import _median

    a = np.asarray(values)
    assert _median(a) == np.median(a)


@pytest.mark.parametrize(("rate", "accepted"), [(-0.03, False), (-0.005, True), (0.14, True), (0.17, False)])
def test_plausible_rate_bounds_are_the_documented_ones(rate: float, accepted: bool):
    # The module docstring promises a parity regression only for implied rates inside [RATE_MIN, RATE_MAX];
    # -3% lay inside the old docstring's "-5% .. 15%" but the code rejected it (it used -1%).
    from volsurf.pricing import forwards

    assert "``RATE_MIN = -1%`` and ``RATE_MAX = 15%``" in (forwards.__doc__ or "")
    assert (forwards.RATE_MIN, forwards.RATE_MAX) == (-0.01, 0.15)
    fwd, t = 4500.0, 1.0
    disc = np.exp(-rate * t)
    strikes = fwd * np.linspace(0.8, 1.2, 41)
    c = black76_price(fwd, strikes, t, 0.2, True, disc)
    p = black76_price(fwd, strikes, t, 0.2, False, disc)
    est = estimate_forward(strikes, c, p, t, spot=fwd, rate_hint=0.04, spreads=np.full(strikes.size, 0.01 * fwd))
    assert (est.method == "parity_regression") == accepted


def test_chain_without_any_call_put_pair_gets_no_pairs():
    """A chain where no strike has both a call and a put quote (e.g. a 4-contract excerpt): no pairs, no error."""
    import pandas as pd

    from volsurf.pricing.forwards import _pairs_by_key

    frame = pd.DataFrame({
        "expiry": pd.to_datetime(["2026-08-21 16:00", "2026-08-21 16:00"]).tz_localize("America/New_York"),
        "root": ["AAPL", "AAPL"], "strike": [200.0, 210.0], "type": ["call", "put"],
        "bid": [5.0, 4.0], "ask": [5.2, 4.2],
    })
    assert _pairs_by_key(frame) == {}
