"""Implied volatility (volsurf.pricing.iv): round trips over the whole domain, vollib agreement, status codes, shapes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr, ndtri
from vollib.black.implied_volatility import implied_volatility as vl_implied_volatility

from volsurf.pricing import iv as ivm
from volsurf.pricing.black76 import black76_price
from volsurf.pricing.iv import IV_STATUS_NAMES, implied_volatility, implied_volatility_with_status

EPS = np.finfo(float).eps
# Vol error that one unit of float rounding in the price may cause, below which we demand the full 1e-10.
WELL_CONDITIONED = 1e-12


def _price_and_condition(forward, strike, t, sigma, is_call, discount):
    """Black-76 price (the code's own pricer) and the vol error its float rounding alone can cause.

    The pricer evaluates ``D (F N(d1) - K N(d2))``: its rounding error is ~eps times the *terms*, each carrying the
    relative error ~eps d^2/2 of exp(-d^2/2) inside N(); divided by vega that is the vol a perfect solver can
    recover. Independent of the solver under test.
    """
    f, k, t, s, c, d = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (forward, strike, t, sigma, is_call, discount))
    )
    c = c.astype(bool)
    price = black76_price(f, k, t, s, c, d)
    sqrt_t = np.sqrt(t)
    d1 = (np.log(f / k) + 0.5 * s * s * t) / (s * sqrt_t)
    d2 = d1 - s * sqrt_t
    sign = np.where(c, 1.0, -1.0)
    terms = d * (f * ndtr(sign * d1) + k * ndtr(sign * d2))
    with np.errstate(divide="ignore", over="ignore"):
        vega = d * f * np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) * sqrt_t
        cond = EPS * terms * (1.0 + 0.5 * np.maximum(d1 * d1, d2 * d2)) / vega
    return price, np.where(np.isfinite(cond), cond, np.inf)


def _check_round_trip(forward, strike, t, sigma, is_call, discount):
    """The property: full accuracy where the price carries the vol, else a bounded error or vega_too_small."""
    price, cond = _price_and_condition(forward, strike, t, sigma, is_call, discount)
    vol, status = implied_volatility_with_status(price, forward, strike, t, is_call, discount)
    f, k, c, d, s = np.broadcast_arrays(forward, strike, is_call, discount, sigma)
    intrinsic = d * np.maximum(np.where(c, f - k, k - f), 0.0)
    upper = d * np.where(c, f, k)
    # Prices the pricer itself rounded onto or past a bound: the status must say so.
    np.testing.assert_array_equal(status[price <= 0], ivm.NO_PRICE)
    np.testing.assert_array_equal(status[(price > 0) & (price >= upper)], ivm.ABOVE_UPPER_BOUND)
    inside = (price > 0) & (price < upper) & (price >= intrinsic * (1 + 4 * EPS))
    err = np.abs(vol - s)
    good = inside & (cond <= WELL_CONDITIONED)
    assert np.all(status[good] == ivm.OK), np.flatnonzero(good & (status != ivm.OK))[:5]
    assert np.all(err[good] < 1e-10), (np.max(err[good]), s[good][np.argmax(err[good])])
    rest = inside & ~good
    assert np.all(np.isin(status[rest], [ivm.OK, ivm.VEGA_TOO_SMALL]))
    solved = rest & (status == ivm.OK)
    assert np.all(err[solved] <= 8 * cond[solved] + 1e-10), np.max(err[solved] / cond[solved])
    # NaN exactly where not OK.
    np.testing.assert_array_equal(np.isnan(vol), status != ivm.OK)
    return status, good


@settings(max_examples=300, deadline=None)
@given(
    log_sigma=st.floats(math.log(0.01), math.log(5.0)),
    log_t=st.floats(math.log(1e-5), math.log(10.0)),
    z=st.floats(-12.0, 12.0),
    is_call=st.booleans(),
    forward=st.floats(0.5, 2e4),
    rate=st.floats(-0.01, 0.15),
)
def test_round_trip_property(log_sigma, log_t, z, is_call, forward, rate):
    # z = ln(K/F) / (sigma sqrt t): strikes from 12 standard deviations in the money to 12 out of it.
    sigma, t = math.exp(log_sigma), math.exp(log_t)
    strike = forward * math.exp(z * sigma * math.sqrt(t))
    _check_round_trip(forward, strike, t, sigma, is_call, math.exp(-rate * t))


def test_round_trip_dense_grid():
    # Every combination of vol (1%..500%), expiry (5 minutes..10 years) and moneyness, calls and puts.
    sig = np.geomspace(0.01, 5.0, 25)[:, None, None, None]
    t = np.geomspace(1e-5, 10.0, 25)[None, :, None, None]
    z = np.linspace(-10.0, 10.0, 81)[None, None, :, None]
    call = np.array([True, False])[None, None, None, :]
    strike = 100.0 * np.exp(z * sig * np.sqrt(t))
    status, good = _check_round_trip(100.0, strike, t, sig, call, np.exp(-0.05 * t))
    # Well-conditioned: most of the domain (deep ITM time values drown in the intrinsic value); OTM nearly all.
    assert good.mean() > 0.55
    otm = np.broadcast_to(np.where(call, z >= 0, z <= 0), status.shape)
    assert np.mean(status[otm] == ivm.OK) > 0.97


@pytest.mark.parametrize("z", [-30.0, -20.0, 20.0, 30.0])
def test_far_wings_solve_from_tiny_prices(z):
    # 20-30 standard deviations out of the money: prices of ~1e-90..1e-196 of the forward still carry the vol.
    sigma = np.array([0.05, 0.3, 2.0])
    t = np.array([1e-4, 0.5, 3.0])
    strike = 100.0 * np.exp(z * sigma * np.sqrt(t))
    call = z > 0
    price, _ = _price_and_condition(100.0, strike, t, sigma, call, 1.0)
    assert np.all(price > 0) and np.all(price < 1e-50)
    vol = implied_volatility(price, 100.0, strike, t, call)
    np.testing.assert_allclose(vol, sigma, rtol=1e-11)


@pytest.mark.parametrize("sigma", [0.01, 0.15, 0.8, 3.0])
@pytest.mark.parametrize("t", [1e-5, 0.02, 1.0, 10.0])
def test_at_the_money_matches_closed_form_inverse(sigma, t):
    # At F == K: c = D F (2 N(sigma sqrt(t) / 2) - 1), inverted by hand with the normal quantile.
    forward, d = 2500.0, 0.97
    price = d * forward * (2.0 * ndtr(0.5 * sigma * math.sqrt(t)) - 1.0)
    by_hand = 2.0 * ndtri(0.5 * (price / (d * forward) + 1.0)) / math.sqrt(t)
    # Close to the upper bound (sigma sqrt(t) ~ 10) both inverses only see the price to its float rounding.
    _, cond = _price_and_condition(forward, forward, t, sigma, True, d)
    tol = 1e-12 + 4 * float(cond)
    assert float(implied_volatility(price, forward, forward, t, True, d)) == pytest.approx(by_hand, abs=tol)
    assert float(implied_volatility(price, forward, forward, t, False, d)) == pytest.approx(by_hand, abs=tol)


def test_agrees_with_vollib():
    # A few hundred options across the domain; vollib (Jäckel's LetsBeRational) called one by one.
    rng = np.random.default_rng(20240915)
    n = 300
    sigma = np.exp(rng.uniform(math.log(0.01), math.log(5.0), n))
    t = np.exp(rng.uniform(math.log(1e-5), math.log(10.0), n))
    z = rng.uniform(-8.0, 8.0, n)
    forward = np.exp(rng.uniform(0.0, math.log(5000.0), n))
    strike = forward * np.exp(z * sigma * np.sqrt(t))
    call = rng.random(n) < 0.5
    rate = rng.uniform(0.0, 0.08, n)
    price, cond = _price_and_condition(forward, strike, t, sigma, call, np.exp(-rate * t))
    ours, status = implied_volatility_with_status(price, forward, strike, t, call, np.exp(-rate * t))
    compared = 0
    for i in range(n):
        try:
            ref = vl_implied_volatility(
                price[i], forward[i], strike[i], rate[i], t[i], "c" if call[i] else "p"
            )
        except Exception:  # vollib raises for prices it considers out of bounds
            continue
        if not np.isfinite(ref) or status[i] != ivm.OK:
            continue
        # vollib solves the same rounded price, so the two agree to within what the price determines.
        assert abs(ours[i] - ref) < 1e-8 + 8 * cond[i], (i, ours[i], ref)
        if cond[i] < WELL_CONDITIONED:
            assert abs(ours[i] - ref) < 1e-10
            compared += 1
    assert compared > 150


@pytest.mark.parametrize(
    ("price", "forward", "strike", "t", "is_call", "discount", "expected"),
    [
        (5.0, 100.0, 100.0, 0.5, True, 1.0, "ok"),
        (9.0, 100.0, 90.0, 0.5, True, 1.0, "below_intrinsic"),
        (9.5, 100.0, 110.0, 0.5, False, 0.99, "below_intrinsic"),  # 9.5 < 0.99 * 10 = 9.9
        (100.0, 100.0, 90.0, 0.5, True, 1.0, "above_upper_bound"),
        (99.5, 100.0, 90.0, 0.5, True, 0.99, "above_upper_bound"),  # >= D F = 99
        (90.0, 100.0, 90.0, 0.5, False, 1.0, "above_upper_bound"),
        (math.inf, 100.0, 90.0, 0.5, False, 1.0, "above_upper_bound"),
        (0.0, 100.0, 100.0, 0.5, True, 1.0, "no_price"),
        (-0.05, 100.0, 100.0, 0.5, True, 1.0, "no_price"),
        (math.nan, 100.0, 100.0, 0.5, True, 1.0, "no_price"),
        (-math.inf, 100.0, 100.0, 0.5, True, 1.0, "no_price"),
        (50.0, 100.0, 50.0, 0.1, True, 1.0, "vega_too_small"),  # exactly intrinsic: no time value at all
        # Time value = float noise of the price:
        (50.0 + 1e-13, 100.0, 50.0, 0.1, True, 1.0, "vega_too_small"),
        (100.0 - 1e-13, 100.0, 100.0, 10.0, True, 1.0, "vega_too_small"),  # pinned at the upper bound
        (1e-320, 100.0, 120.0, 0.5, True, 1.0, "vega_too_small"),  # subnormal
        (5.0, 100.0, 100.0, 0.0, True, 1.0, "bad_input"),
        (5.0, 100.0, 100.0, -0.5, True, 1.0, "bad_input"),
        (5.0, 0.0, 100.0, 0.5, True, 1.0, "bad_input"),
        (5.0, 100.0, -100.0, 0.5, True, 1.0, "bad_input"),
        (5.0, math.nan, 100.0, 0.5, True, 1.0, "bad_input"),
        (5.0, 100.0, 100.0, math.inf, True, 1.0, "bad_input"),
        (5.0, 100.0, 100.0, 0.5, True, 0.0, "bad_input"),
        (math.nan, 100.0, 100.0, math.nan, True, 1.0, "bad_input"),  # bad inputs win over a missing price
    ],
)
def test_status_codes(price, forward, strike, t, is_call, discount, expected):
    vol, status = implied_volatility_with_status(price, forward, strike, t, is_call, discount)
    assert IV_STATUS_NAMES[int(status)] == expected
    assert np.isnan(vol) == (expected != "ok")


def test_status_names_are_a_complete_mapping():
    codes = [
        ivm.OK,
        ivm.BELOW_INTRINSIC,
        ivm.ABOVE_UPPER_BOUND,
        ivm.NO_PRICE,
        ivm.VEGA_TOO_SMALL,
        ivm.BAD_INPUT,
        ivm.NOT_CONVERGED,
    ]
    assert len(set(codes)) == 7 == len(IV_STATUS_NAMES)
    assert [IV_STATUS_NAMES[c] for c in codes] == [
        "ok",
        "below_intrinsic",
        "above_upper_bound",
        "no_price",
        "vega_too_small",
        "bad_input",
        "not_converged",
    ]
    assert all(ivm.IV_STATUS_CODES[name] == code for code, name in IV_STATUS_NAMES.items())


def test_scalar_and_broadcast_inputs():
    vol = implied_volatility(5.0, 100.0, 100.0, 0.5, True)
    assert isinstance(vol, np.ndarray) and vol.shape == () and vol.dtype == np.float64
    # Expiries down a column, strikes along a row, call/put flag per strike; lists are accepted.
    t = np.array([[0.1], [0.5], [1.0]])
    strikes = [90.0, 100.0, 110.0]
    call = [False, True, True]
    sigma = 0.25
    price = black76_price(100.0, np.array(strikes), t, sigma, np.array(call), 0.98)
    vol, status = implied_volatility_with_status(price, 100.0, strikes, t, call, 0.98)
    assert vol.shape == status.shape == (3, 3)
    assert status.dtype == np.int8
    np.testing.assert_allclose(vol, sigma, atol=1e-12)
    # Empty input gives empty output.
    assert implied_volatility(np.array([]), 100.0, 100.0, 0.5, True).shape == (0,)


def test_call_and_put_of_the_same_strike_give_the_same_vol():
    strikes = np.linspace(60.0, 160.0, 41)
    call = black76_price(100.0, strikes, 0.75, 0.4, True, 0.96)
    put = call - 0.96 * (100.0 - strikes)  # parity
    np.testing.assert_allclose(
        implied_volatility(call, 100.0, strikes, 0.75, True, 0.96),
        implied_volatility(put, 100.0, strikes, 0.75, False, 0.96),
        atol=1e-12,
    )


def test_mixed_block_larger_than_one_chunk():
    # More options than one internal block, with bad rows sprinkled in: statuses stay aligned with rows.
    n = 3 * ivm._BLOCK + 17
    rng = np.random.default_rng(7)
    sigma = rng.uniform(0.1, 1.0, n)
    strike = 100.0 * np.exp(rng.uniform(-0.3, 0.3, n))
    call = strike > 100.0
    price = black76_price(100.0, strike, 0.5, sigma, call)
    price[::97] = np.nan
    vol, status = implied_volatility_with_status(price, 100.0, strike, 0.5, call)
    assert np.all(status[::97] == ivm.NO_PRICE)
    mask = np.ones(n, bool)
    mask[::97] = False
    assert np.all(status[mask] == ivm.OK)
    np.testing.assert_allclose(vol[mask], sigma[mask], atol=1e-12)


def test_no_warnings_and_no_global_state_on_extreme_inputs():
    before = np.geterr()
    prices = np.array([np.nan, np.inf, -np.inf, 0.0, 1e-320, 1e-300, 1e300, 5.0, 5.0, 5.0, 99.999999999])
    strikes = np.array([100.0, 100.0, 100.0, 100.0, 1e-300, 1e300, 100.0, 0.0, 1e308, 1e-308, 1e-6])
    t = np.array([0.5, 0.5, 0.5, 0.0, 0.5, 0.5, 1e-300, 1e300, 0.5, 0.5, 1e-12])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            vol, status = implied_volatility_with_status(prices, 100.0, strikes, t, True)
    assert np.geterr() == before
    assert vol.shape == status.shape == (11,)
    assert set(np.unique(status)) <= set(IV_STATUS_NAMES)


def test_outside_the_tested_domain_a_vol_is_ok_only_at_full_accuracy():
    # Reference prices from Jaeckel's own LetsBeRational implementation (py_lets_be_rational), not volsurf's pricer:
    # vols of 3..8 (500%+) and expiries of 2..10 years, where two Householder steps do not always converge.
    # Before the final residual check these came back "ok" with relative errors up to 1e-1.
    from py_lets_be_rational import black as lbr_black

    rng = np.random.default_rng(3)
    n = 800
    sig = rng.uniform(3.0, 8.0, n)
    t = rng.uniform(2.0, 10.0, n)
    strike = 100.0 * np.exp(rng.normal(0.0, 0.7, n) * sig * np.sqrt(t))
    call = strike >= 100.0
    price = np.array([lbr_black(100.0, k, s, tt, 1.0 if c else -1.0)
                      for k, s, tt, c in zip(strike, sig, t, call, strict=True)])
    vol, status = implied_volatility_with_status(price, 100.0, strike, t, call, 1.0)
    outside = (sig > 5.0 * (1 + 1e-6)) | (t > 10.0)
    ok = status == ivm.OK
    assert np.any(status == ivm.NOT_CONVERGED)
    np.testing.assert_array_equal(np.isnan(vol), ~ok)
    rel = np.abs(vol - sig) / sig
    assert np.all(rel[ok & outside] < 1e-8), np.max(rel[ok & outside])
