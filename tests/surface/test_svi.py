"""Tests for volsurf.surface.svi: raw SVI calibration, Durrleman's g, Lee bound, degeneracy flags, eSSVI."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from volsurf.errors import DataError, ParameterError
from volsurf.surface.svi import (
    SVIParams,
    calibrate_essvi,
    calibrate_svi,
    calibrate_svi_many,
    durrleman_g,
    essvi_total_variance,
    svi_derivatives,
    svi_g,
    svi_total_variance,
)


def _bs_call_k(k, w):
    """Normalised Black call at log-moneyness k with total variance w (independent reference)."""
    s = np.sqrt(w)
    d1 = -k / s + s / 2
    return ndtr(d1) - np.exp(k) * ndtr(d1 - s)


def _density_fd(k, w_fn, h=1e-3):
    """Risk-neutral density in strike (F = 1) by central second differences of call prices."""
    kk = np.exp(k)
    c = [_bs_call_k(np.log(kk + d), w_fn(np.log(kk + d))) for d in (-h, 0.0, h)]
    return (c[0] - 2 * c[1] + c[2]) / h**2


# Gatheral-Jacquier (2014) example of a raw SVI slice with butterfly arbitrage (their eq. 5.1 parameters).
GJ_ARB = SVIParams(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
CLEAN = SVIParams(a=0.01, b=0.1, rho=-0.6, m=0.02, sigma=0.08)


def test_svi_formula_hand_value():
    # k = m: w = a + b sigma
    assert svi_total_variance(0.02, 0.01, 0.1, -0.6, 0.02, 0.08) == pytest.approx(0.01 + 0.1 * 0.08)
    # far wings: slopes b(1 + rho) and -b(1 - rho)
    _, w1_hi, _ = svi_derivatives(50.0, *CLEAN.as_dict().values())
    _, w1_lo, _ = svi_derivatives(-50.0, *CLEAN.as_dict().values())
    assert w1_hi == pytest.approx(0.1 * 0.4, rel=1e-5)
    assert w1_lo == pytest.approx(-0.1 * 1.6, rel=1e-5)


@pytest.mark.parametrize("params", [CLEAN, GJ_ARB], ids=["clean", "gatheral_jacquier_arb"])
def test_durrleman_sign_matches_finite_difference_density(params):
    k = np.linspace(-1.0, 1.0, 81)
    g = svi_g(k, params)
    dens = _density_fd(k, params.total_variance)
    # finite-difference noise: ~1e-16 / h^2 = 1e-10; the GJ example's negative density is ~ -1e-5 .. -6e-5, so a
    # threshold of 1e-8 keeps every point where g < 0 by more than ~1e-4
    strong = np.abs(dens) > 1e-8
    assert np.all(np.sign(g[strong]) == np.sign(dens[strong]))
    clearly_negative = g < -1e-3
    assert np.all(strong[clearly_negative])


def test_gatheral_jacquier_example_has_negative_density_where_g_is_negative():
    k = np.linspace(-1.5, 1.5, 301)
    g = svi_g(k, GJ_ARB)
    assert np.min(g) < 0  # the example's point (Gatheral-Jacquier 2014): g < 0 on a stretch of the right wing
    negative = g < -1e-3
    assert np.count_nonzero(negative) > 30
    dens = _density_fd(k[negative], GJ_ARB.total_variance)  # independent: differences of Black prices
    assert np.all(dens < -1e-7)
    assert np.min(svi_g(k, CLEAN)) > 0


def test_durrleman_negative_variance_is_minus_inf():
    assert durrleman_g(np.array([0.0]), np.array([-0.1]), np.array([0.0]), np.array([0.0]))[0] == -np.inf


@pytest.mark.parametrize(
    "params",
    [CLEAN, SVIParams(0.002, 0.05, -0.9, 0.05, 0.02), SVIParams(0.04, 0.2, -0.3, -0.05, 0.3)],
    ids=["equity", "steep_short", "long"],
)
def test_calibrate_recovers_exact_svi(params):
    k = np.linspace(-0.4, 0.2, 60)
    fit = calibrate_svi(k, params.total_variance(k))
    w_fit = fit.params.total_variance(k)
    assert np.max(np.abs(w_fit - params.total_variance(k))) < 2e-5
    assert fit.flags == ()


def test_calibrate_many_equals_single():
    k = np.linspace(-0.3, 0.2, 40)
    ws = [CLEAN.total_variance(k), SVIParams(0.04, 0.2, -0.3, -0.05, 0.3).total_variance(k)]
    many = calibrate_svi_many([k, k], ws)
    for w, f in zip(ws, many, strict=True):
        assert f.params == calibrate_svi(k, w).params


def test_calibrate_recovers_ssvi_slice_with_noise():
    theta, rho, phi = 0.02, -0.7, 3.0
    k = np.linspace(-0.35, 0.15, 80)
    w = essvi_total_variance(k, theta, rho, theta * phi)
    rng = np.random.default_rng(3)
    noisy = w * (1 + 0.002 * rng.uniform(-1, 1, k.size))
    fit = calibrate_svi(k, noisy)
    iv_err = np.sqrt(fit.params.total_variance(k)) - np.sqrt(w)  # t = 1
    assert np.max(np.abs(iv_err)) < 1e-3


def test_lee_bound_never_exceeded_and_flagged():
    # a smile steeper than Lee's bound: w = 3 |k| + 0.01
    k = np.linspace(-0.5, 0.5, 41)
    fit = calibrate_svi(k, 3.0 * np.abs(k) + 0.01)
    p = fit.params
    assert p.b * (1 + abs(p.rho)) <= 2.0 + 1e-9
    assert "lee_bound" in fit.flags


def test_degenerate_corner_flags_sigma_small():
    # a V-shaped smile with a sharp corner: SVI needs sigma -> 0
    k = np.linspace(-0.2, 0.2, 41)
    fit = calibrate_svi(k, 0.02 + 0.1 * np.abs(k))
    assert "sigma_small" in fit.flags


def test_one_sided_smile_flags_rho_extreme():
    k = np.linspace(-0.3, 0.3, 41)
    w = 0.02 + 0.1 * np.maximum(-k, 0.0)  # flat call wing, linear put wing
    fit = calibrate_svi(k, w)
    assert "rho_extreme" in fit.flags


def test_calibrated_fit_is_butterfly_free_when_possible():
    # noisy data around an arbitrage-free slice: the chosen fit must have g >= 0 on its check grid
    k = np.linspace(-0.5, 0.3, 50)
    rng = np.random.default_rng(0)
    w = CLEAN.total_variance(k) * (1 + 0.01 * rng.standard_normal(k.size))
    fit = calibrate_svi(k, w)
    assert fit.g_min >= 0
    assert "durrleman" not in fit.flags


def test_too_few_points_raise():
    with pytest.raises(DataError):
        calibrate_svi([0.0, 0.1], [0.01, 0.02])


@settings(max_examples=30, deadline=None)
@given(
    a=st.floats(0.0, 0.05),
    b=st.floats(0.01, 0.5),
    rho=st.floats(-0.95, 0.95),
    m=st.floats(-0.2, 0.2),
    sigma=st.floats(0.01, 0.5),
)
def test_svi_non_negative_when_minimum_is(a, b, rho, m, sigma):
    k = np.linspace(-2, 2, 201)
    w = svi_total_variance(k, a, b, rho, m, sigma)
    w_min = a + b * sigma * np.sqrt(1 - rho * rho)
    assert np.min(w) >= w_min - 1e-12


# ------------------------------------------------------------------------------------------- eSSVI


def _ssvi_chain(thetas, rho, eta, gamma, k):
    """Power-law SSVI (Gatheral-Jacquier): phi = eta / theta^gamma; arbitrage-free for eta (1+|rho|) <= 2."""
    return [essvi_total_variance(k, th, rho, th * eta / th**gamma) for th in thetas]


def test_essvi_atm_and_wings():
    # at k = 0, w = theta; far wings slope psi (1 +- rho) / 2
    assert essvi_total_variance(0.0, 0.04, -0.5, 0.3) == pytest.approx(0.04)
    big = 1e4
    slope = (essvi_total_variance(big, 0.04, -0.5, 0.3) - essvi_total_variance(big - 1, 0.04, -0.5, 0.3))
    assert slope == pytest.approx(0.3 * 0.5 / 2, rel=1e-6)


def test_essvi_recovers_ssvi_surface():
    t = np.array([0.05, 0.1, 0.25, 0.5, 1.0])
    thetas = 0.04 * t
    k = np.linspace(-0.4, 0.2, 50)
    ws = _ssvi_chain(thetas, -0.7, 0.8, 0.4, k)
    fit = calibrate_essvi(t, [k] * 5, ws)
    for i, ti in enumerate(t):
        iv_err = np.sqrt(fit.total_variance(k, ti) / ti) - np.sqrt(ws[i] / ti)
        assert np.max(np.abs(iv_err)) < 1e-3, i
    assert all(f == () for f in fit.flags)


def test_essvi_fit_is_calendar_and_butterfly_free():
    t = np.array([0.02, 0.1, 0.3, 1.0])
    k = np.linspace(-0.5, 0.3, 40)
    rng = np.random.default_rng(1)
    ws = [w * (1 + 0.03 * rng.standard_normal(k.size)) for w in _ssvi_chain(0.03 * t, -0.6, 1.0, 0.3, k)]
    fit = calibrate_essvi(t, [k] * 4, ws)
    grid = np.linspace(-2, 2, 401)
    ts = np.linspace(0.005, 1.5, 60)
    w_grid = np.array([fit.total_variance(grid, x) for x in ts])
    assert np.all(np.diff(w_grid, axis=0) >= -1e-12)  # calendar, including interpolated/extrapolated times
    for i in range(t.size):
        th, r, p = fit.theta[i], fit.rho[i], fit.psi[i]
        assert p * (1 + abs(r)) <= 4 + 1e-9 and p * p * (1 + abs(r)) <= 4 * th + 1e-9


def test_essvi_rejects_unsorted_times():
    k = np.linspace(-0.1, 0.1, 5)
    with pytest.raises(ParameterError):
        calibrate_essvi([0.5, 0.1], [k, k], [k * 0 + 0.01, k * 0 + 0.02])
