"""Black-76 prices and greeks (volsurf.pricing.black76) against vollib, finite differences and closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vollib.black import black as vl_black
from vollib.black.greeks import analytical as vl_greeks
from vollib.black_scholes_merton.greeks import analytical as vl_bsm_greeks

from volsurf.pricing import black76 as pricing

# A grid over forwards, strikes (deep ITM to deep OTM), expiries (a day to 5 years), rates and vols.
_GRID = list(
    itertools.product(
        [50.0, 4500.0],  # forward
        [0.7, 0.95, 1.0, 1.1, 1.4],  # strike / forward
        [1.0 / 365.0, 0.25, 2.0, 5.0],  # t, years
        [0.0, 0.05],  # continuously compounded rate
        [0.08, 0.3, 1.2],  # sigma
        [True, False],  # is_call
    )
)


@pytest.fixture(scope="module")
def grid():
    f, kf, t, r, s, c = (np.array(col) for col in zip(*_GRID, strict=True))
    return {"F": f, "K": f * kf, "t": t, "r": r, "sigma": s, "call": c, "D": np.exp(-r * t)}


def _vollib(fn, g) -> np.ndarray:
    """Call a scalar vollib function ``fn(flag, F, K, t, r, sigma)`` on every grid point."""
    return np.array(
        [
            fn("c" if c else "p", f, k, t, r, s)
            for f, k, t, r, s, c in zip(g["F"], g["K"], g["t"], g["r"], g["sigma"], g["call"], strict=True)
        ]
    )


def test_price_matches_vollib(grid):
    ours = pricing.black76_price(grid["F"], grid["K"], grid["t"], grid["sigma"], grid["call"], grid["D"])
    ref = _vollib(vl_black, grid)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-11 * grid["F"].max())


def test_delta_matches_vollib(grid):
    ours = pricing.delta(grid["F"], grid["K"], grid["t"], grid["sigma"], grid["call"], grid["D"])
    np.testing.assert_allclose(ours, _vollib(vl_greeks.delta, grid), rtol=1e-10, atol=1e-14)


def test_undiscounted_delta_is_n_d1(grid):
    ours = pricing.forward_delta_undiscounted(grid["F"], grid["K"], grid["t"], grid["sigma"], grid["call"])
    np.testing.assert_allclose(ours, _vollib(vl_greeks.delta, grid) / grid["D"], rtol=1e-10, atol=1e-14)


def test_gamma_matches_vollib(grid):
    ours = pricing.gamma(grid["F"], grid["K"], grid["t"], grid["sigma"], grid["D"])
    np.testing.assert_allclose(ours, _vollib(vl_greeks.gamma, grid), rtol=1e-10, atol=1e-16)


def test_vega_matches_vollib_per_unit_vol(grid):
    # vollib's vega is per 1 vol point (0.01); ours is per 1.00 of vol.
    ours = pricing.vega(grid["F"], grid["K"], grid["t"], grid["sigma"], grid["D"])
    np.testing.assert_allclose(ours, 100.0 * _vollib(vl_greeks.vega, grid), rtol=1e-10, atol=1e-12)


def test_theta_matches_vollib_per_year(grid):
    # vollib's theta is per calendar day (/365); ours is per year.
    ours = pricing.theta(grid["F"], grid["K"], grid["t"], grid["sigma"], grid["call"], grid["D"])
    np.testing.assert_allclose(ours, 365.0 * _vollib(vl_greeks.theta, grid), rtol=1e-9, atol=1e-9)


# --- second-order greeks against central finite differences of the first-order functions ----------------------


def _assert_close_to_fd(ours, fd, rtol):
    # Relative agreement, with an absolute floor for values that are float noise next to the grid's largest.
    np.testing.assert_allclose(ours, fd, rtol=rtol, atol=1e-6 * np.max(np.abs(fd)))


def test_vanna_is_d_delta_d_sigma_and_d_vega_d_forward(grid):
    f, k, t, s, c, d = grid["F"], grid["K"], grid["t"], grid["sigma"], grid["call"], grid["D"]
    vanna = pricing.vanna(f, k, t, s, d)
    hs = 1e-5 * s
    fd_sigma = (pricing.delta(f, k, t, s + hs, c, d) - pricing.delta(f, k, t, s - hs, c, d)) / (2 * hs)
    hf = 1e-5 * f
    fd_fwd = (pricing.vega(f + hf, k, t, s, d) - pricing.vega(f - hf, k, t, s, d)) / (2 * hf)
    _assert_close_to_fd(vanna, fd_sigma, rtol=1e-6)
    _assert_close_to_fd(vanna, fd_fwd, rtol=1e-6)


def test_charm_is_minus_d_delta_dt_at_fixed_rate(grid):
    f, k, t, s, c, r = grid["F"], grid["K"], grid["t"], grid["sigma"], grid["call"], grid["r"]
    charm = pricing.charm(f, k, t, s, c, np.exp(-r * t))
    h = 1e-5 * t
    up = pricing.delta(f, k, t + h, s, c, np.exp(-r * (t + h)))
    dn = pricing.delta(f, k, t - h, s, c, np.exp(-r * (t - h)))
    fd = -(up - dn) / (2 * h)
    _assert_close_to_fd(charm, fd, rtol=1e-5)


def test_vomma_is_d_vega_d_sigma(grid):
    f, k, t, s, d = grid["F"], grid["K"], grid["t"], grid["sigma"], grid["D"]
    hs = 1e-5 * s
    fd = (pricing.vega(f, k, t, s + hs, d) - pricing.vega(f, k, t, s - hs, d)) / (2 * hs)
    _assert_close_to_fd(pricing.vomma(f, k, t, s, d), fd, rtol=1e-6)


def test_gamma_is_d_delta_d_forward_and_theta_is_minus_dv_dt(grid):
    f, k, t, s, c, r = grid["F"], grid["K"], grid["t"], grid["sigma"], grid["call"], grid["r"]
    d = np.exp(-r * t)
    hf = 1e-5 * f
    fd_gamma = (pricing.delta(f + hf, k, t, s, c, d) - pricing.delta(f - hf, k, t, s, c, d)) / (2 * hf)
    _assert_close_to_fd(pricing.gamma(f, k, t, s, d), fd_gamma, rtol=1e-6)
    h = 1e-5 * t
    up = pricing.black76_price(f, k, t + h, s, c, np.exp(-r * (t + h)))
    dn = pricing.black76_price(f, k, t - h, s, c, np.exp(-r * (t - h)))
    _assert_close_to_fd(pricing.theta(f, k, t, s, c, d), -(up - dn) / (2 * h), rtol=1e-5)


# --- closed-form identities ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    forward=st.floats(1.0, 1e4),
    log_moneyness=st.floats(-3.0, 3.0),
    t=st.floats(1e-4, 10.0),
    sigma=st.floats(0.01, 3.0),
    rate=st.floats(-0.01, 0.1),
)
def test_put_call_parity(forward, log_moneyness, t, sigma, rate):
    strike = forward * math.exp(log_moneyness)
    d = math.exp(-rate * t)
    call = pricing.black76_price(forward, strike, t, sigma, True, d)
    put = pricing.black76_price(forward, strike, t, sigma, False, d)
    assert call - put == pytest.approx(d * (forward - strike), abs=4e-15 * max(forward, strike) * 4)
    # Greeks: call and put deltas differ by D; gamma and vega are shared by construction of the signature.
    dc = pricing.delta(forward, strike, t, sigma, True, d)
    dp = pricing.delta(forward, strike, t, sigma, False, d)
    assert dc - dp == pytest.approx(d, abs=1e-15)


@pytest.mark.parametrize(
    ("spot", "strike", "t", "r", "q", "sigma"),
    [
        (100.0, 100.0, 0.5, 0.05, 0.02, 0.2),
        (4500.0, 4000.0, 0.1, 0.03, 0.015, 0.35),
        (30.0, 45.0, 2.0, 0.0, 0.04, 0.6),
        (1.0, 0.5, 1.0 / 365.0, 0.05, 0.0, 1.5),
    ],
)
def test_spot_gamma_is_black_scholes_gamma(spot, strike, t, r, q, sigma):
    forward = spot * math.exp((r - q) * t)
    d = math.exp(-r * t)
    ours = float(pricing.spot_gamma(spot, forward, strike, t, sigma, d))
    d1 = (math.log(spot / strike) + (r - q + 0.5 * sigma**2) * t) / (sigma * math.sqrt(t))
    by_hand = (
        math.exp(-q * t) * math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) / (spot * sigma * math.sqrt(t))
    )
    assert ours == pytest.approx(by_hand, rel=1e-12)
    assert ours == pytest.approx(vl_bsm_greeks.gamma("c", spot, strike, t, r, sigma, q), rel=1e-10)


def test_zero_vol_or_time_gives_discounted_intrinsic():
    f = np.array([100.0, 100.0, 100.0, 100.0])
    k = np.array([90.0, 110.0, 90.0, 110.0])
    call = np.array([True, True, False, False])
    expected = 0.9 * np.array([10.0, 0.0, 0.0, 10.0])
    np.testing.assert_allclose(pricing.black76_price(f, k, 0.5, 0.0, call, 0.9), expected)
    np.testing.assert_allclose(pricing.black76_price(f, k, 0.0, 0.2, call, 0.9), expected)


def test_broadcasting_and_published_value():
    # vollib's documented example: F = K = 100, t = 0.5, r = 2%, sigma = 20% -> call 5.5811067246.
    price = pricing.black76_price(
        100.0, np.array([[100.0], [90.0]]), 0.5, 0.2, np.array([True, False]), math.exp(-0.01)
    )
    assert price.shape == (2, 2)
    assert price[0, 0] == pytest.approx(5.5811067246, abs=1e-9)
