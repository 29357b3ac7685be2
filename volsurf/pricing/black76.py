"""Vectorized Black-76 prices and greeks on forwards.

All functions take numpy arrays or scalars (broadcast together) and return float arrays.

Conventions
-----------
- ``forward``: forward price of the underlying for the option's expiry (index points / dollars).
- ``strike``: strike, same units.
- ``t``: time to expiry in years (ACT/365 on minutes, see :mod:`volsurf.market.timing`).
- ``sigma``: Black volatility, decimal (0.20 = 20%).
- ``is_call``: boolean array; True for calls, False for puts.
- ``discount``: discount factor to the option's payment date, ``exp(-r t)``.

Greeks are sensitivities to the **forward** unless the name says ``spot``; with ``forward = spot * carry``
(``carry = F / S``), spot sensitivities follow by the chain rule (:func:`spot_gamma`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from volsurf._typing import ArrayLike

_SQRT_2PI = np.sqrt(2.0 * np.pi)


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


def d1_d2(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Black-76 ``d1`` and ``d2`` (dimensionless).

    ``d1 = (ln(F/K) + sigma^2 t / 2) / (sigma sqrt(t))``, ``d2 = d1 - sigma sqrt(t)``.
    """
    f, k, t, s = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (forward, strike, t, sigma)))
    sqrt_t = np.sqrt(t)
    vol_sqrt_t = s * sqrt_t
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.log(f / k) / vol_sqrt_t + 0.5 * vol_sqrt_t
    return d1, d1 - vol_sqrt_t


def black76_price(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, is_call: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Black-76 option price (premium points).

    ``call = D (F N(d1) - K N(d2))``, ``put = D (K N(-d2) - F N(-d1))``.
    At ``t == 0`` or ``sigma == 0`` the price is the discounted intrinsic value.
    """
    f = np.asarray(forward, dtype=float)
    k = np.asarray(strike, dtype=float)
    d1, d2 = d1_d2(f, k, t, sigma)
    # is_call may carry its own dimensions (e.g. a call/put axis): broadcast everything to the joint shape.
    d1, d2, call = np.broadcast_arrays(d1, d2, np.asarray(is_call, dtype=bool))
    sign = np.where(call, 1.0, -1.0)
    price = sign * (f * ndtr(sign * d1) - k * ndtr(sign * d2))
    # sigma*sqrt(t) == 0: d1 is +/-inf or nan (at the money); use intrinsic value there.
    degenerate = ~np.isfinite(d1)
    if np.any(degenerate):
        intrinsic = np.maximum(sign * (f - k), 0.0)
        price = np.where(degenerate, np.broadcast_to(intrinsic, price.shape), price)
    return np.asarray(discount, dtype=float) * price


def delta(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, is_call: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Forward delta ``dV/dF`` = ``D N(d1)`` (call) or ``-D N(-d1)`` (put); per 1 point of forward."""
    d1, _ = d1_d2(forward, strike, t, sigma)
    call = np.asarray(is_call, dtype=bool)
    return np.asarray(discount, dtype=float) * np.where(call, ndtr(d1), -ndtr(-d1))


def forward_delta_undiscounted(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, is_call: ArrayLike) -> np.ndarray:
    """Undiscounted forward delta ``N(d1)`` / ``-N(-d1)``: the FX/equity-skew quoting convention (25-delta)."""
    return delta(forward, strike, t, sigma, is_call, 1.0)


def gamma(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Forward gamma ``d2V/dF2`` = ``D n(d1) / (F sigma sqrt(t))``; per 1 point of forward, same for calls/puts."""
    f = np.asarray(forward, dtype=float)
    d1, _ = d1_d2(f, strike, t, sigma)
    vol_sqrt_t = np.asarray(sigma, dtype=float) * np.sqrt(np.asarray(t, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.asarray(discount, dtype=float) * _pdf(d1) / (f * vol_sqrt_t)
    return np.where(np.isfinite(g), g, 0.0)


def spot_gamma(spot: ArrayLike, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Gamma to the spot ``d2V/dS2`` (per 1 point of spot), with ``F = S * (F/S)`` and carry held fixed.

    Equals ``gamma * (F/S)^2``, which for ``F = S e^{(r-q)t}``, ``D = e^{-rt}`` is the Black-Scholes gamma
    ``e^{-qt} n(d1) / (S sigma sqrt(t))``.
    """
    s = np.asarray(spot, dtype=float)
    f = np.asarray(forward, dtype=float)
    return gamma(f, strike, t, sigma, discount) * (f / s) ** 2


def vega(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Vega ``dV/dsigma`` = ``D F n(d1) sqrt(t)``: premium points per 1.00 (100 vol points) of volatility."""
    f = np.asarray(forward, dtype=float)
    d1, _ = d1_d2(f, strike, t, sigma)
    v = np.asarray(discount, dtype=float) * f * _pdf(d1) * np.sqrt(np.asarray(t, dtype=float))
    return np.where(np.isfinite(v), v, 0.0)


def theta(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, is_call: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Theta ``-dV/dt`` with forward fixed and ``D = exp(-r t)``: premium points per year (divide by 365 per day).

    ``theta = -D F n(d1) sigma / (2 sqrt(t)) + r V`` with ``r = -ln(D)/t``.
    """
    f = np.asarray(forward, dtype=float)
    t_arr = np.asarray(t, dtype=float)
    disc = np.asarray(discount, dtype=float)
    d1, _ = d1_d2(f, strike, t_arr, sigma)
    price = black76_price(f, strike, t_arr, sigma, is_call, disc)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(t_arr > 0, -np.log(disc) / t_arr, 0.0)
        th = -disc * f * _pdf(d1) * np.asarray(sigma, dtype=float) / (2.0 * np.sqrt(t_arr)) + r * price
    return np.where(np.isfinite(th), th, 0.0)


def vanna(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Vanna ``d2V/dF dsigma`` = ``-D n(d1) d2 / sigma``: change in forward delta per 1.00 of vol."""
    d1, d2 = d1_d2(forward, strike, t, sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = -np.asarray(discount, dtype=float) * _pdf(d1) * d2 / np.asarray(sigma, dtype=float)
    return np.where(np.isfinite(v), v, 0.0)


def charm(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, is_call: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Charm ``-d(delta)/dt`` with forward and rate fixed: change in forward delta per year of passing time.

    With ``d(d1)/dt = -d2 / (2 t)``: ``charm = D n(d1) d2 / (2 t) + r * delta`` (calls and puts share the
    first term; ``r = -ln(D)/t``).
    """
    t_arr = np.asarray(t, dtype=float)
    disc = np.asarray(discount, dtype=float)
    d1, d2 = d1_d2(forward, strike, t_arr, sigma)
    dlt = delta(forward, strike, t_arr, sigma, is_call, disc)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(t_arr > 0, -np.log(disc) / t_arr, 0.0)
        c = disc * _pdf(d1) * d2 / (2.0 * t_arr) + r * dlt
    return np.where(np.isfinite(c), c, 0.0)


def vomma(forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, discount: ArrayLike = 1.0) -> np.ndarray:
    """Vomma (volga) ``d2V/dsigma2`` = ``vega d1 d2 / sigma``: premium points per 1.00 of vol, squared."""
    d1, d2 = d1_d2(forward, strike, t, sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = vega(forward, strike, t, sigma, discount) * d1 * d2 / np.asarray(sigma, dtype=float)
    return np.where(np.isfinite(v), v, 0.0)
