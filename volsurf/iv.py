"""Implied Black-76 volatility: vectorized, machine-precision inversion of :func:`volsurf.pricing.black76_price`.

The solver follows P. Jäckel, "Let's Be Rational" (Wilmott, 2015; reference code 2013-2014, notice below):

1. Normalize. With ``x = -|ln(F/K)|`` and ``beta`` = out-of-the-money (time) value / ``sqrt(F K)`` (undiscounted),
   every option becomes an out-of-the-money call on the normalized Black function
   ``b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2)`` with ``s = sigma sqrt(t)``. In-the-money quotes are
   converted by put-call parity (``c - p = D (F - K)``), so deep ITM options are solved from their time value.
2. Guess. Four branches split at ``s_c = sqrt(2|x|)`` (the inflexion point of ``b`` in ``s``) and its Newton
   neighbours ``s_l``/``s_h``; a shape-preserving rational cubic interpolates ``s(beta)`` (middle branches) or a
   transformed map of ``beta`` whose inverse is explicit (lowest branch: ``b -> 0``; highest: ``b -> e^{x/2}``).
3. Refine. Two third-order Householder steps on a well-conditioned objective: ``1/ln b(s) - 1/ln beta`` for the
   lowest branch (the price is exponentially small in ``1/s``), ``b(s) - beta`` near the money and
   ``ln((b_max - beta) / (b_max - b(s)))`` close to the upper bound. Every option takes the same fixed number of
   numpy steps (no Python loop over options).

``b`` is evaluated as ``exp(-(h^2+t^2)/2) [erfcx(-(h+t)/sqrt 2) - erfcx(-(h-t)/sqrt 2)] / 2`` (``h = x/s``,
``t = s/2``) wherever ``h + t <= 0.85`` (one exponential, no subtraction of tiny cumulative normals) and by the
plain formula above it. Jäckel's series expansions for ``h < -10`` and ``t < 0.21`` are not used: there the
relative error they remove maps to an absolute vol error of order ``eps / sqrt(t)`` (~1e-13 at ``t = 1e-5``
years), because the sensitivity ``d ln b / d ln s`` grows like ``h^2`` exactly where the cancellation does
(measured: max round-trip error 7e-13 over 2e6 random well-conditioned options, see tests/test_iv.py).
Options are processed in blocks of ``_BLOCK`` so that the temporaries stay in cache.

Status codes (``IV_STATUS_NAMES``): ``OK``; ``BELOW_INTRINSIC`` (price < discounted intrinsic);
``ABOVE_UPPER_BOUND`` (call >= D F, put >= D K); ``NO_PRICE`` (price NaN or <= 0, e.g. no bid);
``VEGA_TOO_SMALL`` (the time value is so small against the float precision of the price that the vol is not
identifiable: one unit of rounding in the price moves the vol by more than ``IDENTIFIABLE_REL_TOL`` relative);
``BAD_INPUT`` (``t <= 0``, ``F <= 0``, ``K <= 0``, ``D <= 0`` or any of them NaN/inf). The vol is NaN unless OK.
Precedence: ``BAD_INPUT`` > ``NO_PRICE`` > ``BELOW_INTRINSIC`` / ``ABOVE_UPPER_BOUND`` > ``VEGA_TOO_SMALL``.

Notice of the reference implementation this module is derived from::

    Copyright © 2013-2014 Peter Jäckel.

    Permission to use, copy, modify, and distribute this software is freely granted,
    provided that this notice is preserved.

    WARRANTY DISCLAIMER
    The Software is provided "as is" without warranty of any kind, either express or implied,
    including without limitation any implied warranties of condition, uninterrupted use,
    merchantability, fitness for a particular purpose, or non-infringement.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfcx, ndtr, ndtri

__all__ = [
    "ABOVE_UPPER_BOUND",
    "BAD_INPUT",
    "BELOW_INTRINSIC",
    "IDENTIFIABLE_REL_TOL",
    "IV_STATUS_CODES",
    "IV_STATUS_NAMES",
    "NO_PRICE",
    "OK",
    "VEGA_TOO_SMALL",
    "implied_volatility",
    "implied_volatility_with_status",
]

OK = 0
BELOW_INTRINSIC = 1
ABOVE_UPPER_BOUND = 2
NO_PRICE = 3
VEGA_TOO_SMALL = 4
BAD_INPUT = 5

#: Status code -> lowercase name (the strings the enrich layer and the CLI print).
IV_STATUS_NAMES: dict[int, str] = {
    OK: "ok",
    BELOW_INTRINSIC: "below_intrinsic",
    ABOVE_UPPER_BOUND: "above_upper_bound",
    NO_PRICE: "no_price",
    VEGA_TOO_SMALL: "vega_too_small",
    BAD_INPUT: "bad_input",
}
#: Lowercase name -> status code.
IV_STATUS_CODES: dict[str, int] = {name: code for code, name in IV_STATUS_NAMES.items()}

#: A vol is reported only if one unit of float rounding in the price (``eps * price``) moves it by at most this
#: fraction of itself; beyond that the time value is float noise (deep ITM, or a price pinned at its upper bound).
IDENTIFIABLE_REL_TOL = 1e-6

_EPS = np.finfo(float).eps
_DBL_MIN = np.finfo(float).tiny
_DBL_MAX = np.finfo(float).max
_SQRT_DBL_MAX = np.sqrt(_DBL_MAX)
_ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848359376887
_ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343818684758586311649
_TWO_PI = 6.283185307179586476925286766559005768394338798750
_SQRT_PI_OVER_TWO = 1.253314137315500251207882642405522626503493370305
_SQRT_THREE = 1.732050807568877293527446341505872366942805253810
_SQRT_ONE_OVER_THREE = 0.577350269189625764509148780501957455647601751270
_TWO_PI_OVER_SQRT_TWENTY_SEVEN = 1.209199576156145233729385505094770488189377498728
_PI_OVER_SIX = 0.523598775598298873077107230546583814032861566563
# Rational cubic control parameter limits (Delbourgo-Gregory shape preservation, as in the reference code).
_R_MIN = -(1.0 - np.sqrt(_EPS))
_R_MAX = 2.0 / (_EPS * _EPS)
_N_ITERATIONS = 2


# ---------------------------------------------------------------------------------------------------------------
# Normalized Black function (x <= 0: out-of-the-money call)


def _black_and_vega(x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalized OTM call ``b(x, s)`` and its derivative ``db/ds`` for ``x <= 0``, ``s > 0`` (1-D arrays)."""
    h = x / s
    t = 0.5 * s
    e = h * h
    e += t * t
    e *= -0.5
    np.exp(e, out=e)
    hpt = h + t
    hmt = np.subtract(h, t, out=h)
    # One exponential times a difference of two rational functions: no products of tiny N() values.
    b = erfcx(-_ONE_OVER_SQRT_TWO * hpt)
    b -= erfcx(-_ONE_OVER_SQRT_TWO * hmt)
    b *= e
    b *= 0.5
    # Above ~85% of b_max (h + t > 0.85) the first term dominates and the plain formula is more accurate
    # (and erfcx of a large negative argument would overflow); few options live there, so patch them.
    j = np.flatnonzero(hpt > 0.85)
    if j.size:
        half_x = 0.5 * x[j]
        b[j] = ndtr(hpt[j]) * np.exp(half_x) - ndtr(hmt[j]) * np.exp(-half_x)
    e *= _ONE_OVER_SQRT_TWO_PI
    return np.maximum(b, 0.0, out=b), e


# ---------------------------------------------------------------------------------------------------------------
# Shape-preserving rational cubic interpolation (Delbourgo & Gregory 1985), vectorized


def _rational_cubic(x, x_l, x_r, y_l, y_r, d_l, d_r, r):
    h = x_r - x_l
    t = (x - x_l) / h
    omt = 1.0 - t
    t2 = t * t
    omt2 = omt * omt
    cubic = (
        y_r * t2 * t + (r * y_r - h * d_r) * t2 * omt + (r * y_l + h * d_l) * t * omt2 + y_l * omt2 * omt
    ) / (1.0 + (r - 3.0) * t * omt)
    out = np.where(r >= _R_MAX, y_r * t + y_l * omt, cubic)
    return np.where(np.abs(h) > 0, out, 0.5 * (y_l + y_r))


def _minimum_control(d_l, d_r, slope, prefer_shape: bool):
    monotonic = (d_l * slope >= 0) & (d_r * slope >= 0)
    convex = (d_l <= slope) & (slope <= d_r)
    concave = (d_l >= slope) & (slope >= d_r)
    s_zero = np.abs(slope) < _DBL_MIN
    r1 = np.where(monotonic & ~s_zero, (d_r + d_l) / slope, -_DBL_MAX)
    if prefer_shape:
        r1 = np.where(monotonic & s_zero, _R_MAX, r1)
    d_r_m_d_l = d_r - d_l
    d_r_m_s = d_r - slope
    s_m_d_l = slope - d_l
    curved = convex | concave
    degenerate = (np.abs(s_m_d_l) < _DBL_MIN) | (np.abs(d_r_m_s) < _DBL_MIN)
    r2 = np.where(
        curved & ~degenerate, np.maximum(np.abs(d_r_m_d_l / d_r_m_s), np.abs(d_r_m_d_l / s_m_d_l)), -_DBL_MAX
    )
    if prefer_shape:
        r2 = np.where((curved & degenerate) | (~curved & monotonic), _R_MAX, r2)
    r = np.maximum(_R_MIN, np.maximum(r1, r2))
    return np.where(monotonic | curved, r, _R_MIN)


def _control_from_ratio(numerator, denominator):
    r = np.where(
        np.abs(denominator) < _DBL_MIN, np.where(numerator > 0, _R_MAX, _R_MIN), numerator / denominator
    )
    return np.where(np.abs(numerator) < _DBL_MIN, 0.0, r)


def _convex_control_right(x_l, x_r, y_l, y_r, d_l, d_r, second_r, prefer_shape: bool):
    """Control parameter matching the second derivative at the right end, floored for shape preservation."""
    h = x_r - x_l
    slope = (y_r - y_l) / h
    r = _control_from_ratio(0.5 * h * second_r + (d_r - d_l), d_r - slope)
    return np.maximum(r, _minimum_control(d_l, d_r, slope, prefer_shape))


def _convex_control_left(x_l, x_r, y_l, y_r, d_l, d_r, second_l, prefer_shape: bool):
    """Control parameter matching the second derivative at the left end, floored for shape preservation."""
    h = x_r - x_l
    slope = (y_r - y_l) / h
    r = _control_from_ratio(0.5 * h * second_l + (d_r - d_l), slope - d_l)
    return np.maximum(r, _minimum_control(d_l, d_r, slope, prefer_shape))


def _lowest_branch_interpolation(beta, b_l, f_l, fp_l, fpp_l):
    """Rational cubic through (0, 0) with slope 1 and (b_l, f_l) with slope fp_l, matching fpp_l at b_l.

    The general functions above specialized to the lowest branch (x_l = y_l = 0, d_l = 1, shape preservation
    preferred): this branch holds most far out-of-the-money options, so its guess is worth a lean form.
    """
    slope = f_l / b_l
    fp_m1 = fp_l - 1.0
    r_fit = _control_from_ratio(0.5 * b_l * fpp_l + fp_m1, fp_l - slope)
    # Shape-preserving minimum: f is increasing (d_l = 1 > 0 and fp_l > 0), so the monotonicity bound applies;
    # the convexity/concavity bound applies when the secant slope lies between the end slopes.
    r_monotone = (fp_l + 1.0) / slope
    curved = ((1.0 <= slope) & (slope <= fp_l)) | ((1.0 >= slope) & (slope >= fp_l))
    r_curve = np.maximum(np.abs(fp_m1 / (fp_l - slope)), np.abs(fp_m1 / (slope - 1.0)))
    degenerate = (np.abs(slope - 1.0) < _DBL_MIN) | (np.abs(fp_l - slope) < _DBL_MIN)
    r = np.maximum(np.maximum(r_fit, r_monotone), np.where(curved & ~degenerate, r_curve, _R_MAX))
    t = beta / b_l
    omt = 1.0 - t
    cubic = (f_l * t * t * t + (r * f_l - b_l * fp_l) * t * t * omt + b_l * t * omt * omt) / (
        1.0 + (r - 3.0) * t * omt
    )
    f = np.where(r >= _R_MAX, f_l * t, cubic)
    # Round-off for extreme |x|: fall back to the quadratic with f(0) = 0, f'(0) = 1 and f(b_l).
    return np.where(f > 0, f, (f_l * t + b_l * omt) * t)


# ---------------------------------------------------------------------------------------------------------------
# Transformation maps for the outer branches


def _lower_map(x, s):
    """``f(b)`` linearizing the lowest branch, and ``df/db``, ``d2f/db2``, evaluated at ``s``."""
    ax = np.abs(x)
    z = _SQRT_ONE_OVER_THREE * ax / s
    y = z * z
    s2 = s * s
    # Written with the Mills ratio N(-z)/n(z) (a scaled erfc) so that nothing is 0/0 once n(z) underflows.
    mills = _SQRT_PI_OVER_TWO * erfcx(_ONE_OVER_SQRT_TWO * z)
    exp_half_y = np.exp(0.5 * y)  # one exponential serves exp(-y/2) and exp(3y/2)
    big_phi = mills * _ONE_OVER_SQRT_TWO_PI / exp_half_y  # N(-z)
    exp_s2 = np.exp(0.125 * s2)
    fpp = (
        _PI_OVER_SIX
        * _ONE_OVER_SQRT_TWO_PI
        * y
        / (s2 * s)
        * mills
        * (8.0 * _SQRT_THREE * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * mills)
        * (exp_half_y * exp_half_y * exp_half_y)
        * (exp_s2 * exp_s2)
    )
    fp = y * mills * mills * exp_s2  # = 2 pi y N(-z)^2 exp(y + s^2/8)
    f = _TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax * (big_phi * big_phi * big_phi)
    return f, fp, fpp


def _inverse_lower_map(x, f):
    ax = np.abs(x)
    # Cube root via log/exp: faster than cbrt, and this only feeds the initial guess.
    cube_root = np.exp(np.log(f / (_TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax)) * (1.0 / 3.0))
    return np.abs(x / (_SQRT_THREE * ndtri(cube_root)))


def _upper_map(x, s):
    """``f(b)`` linearizing the highest branch, and ``df/db``, ``d2f/db2``, evaluated at ``s``."""
    f = ndtr(-0.5 * s)
    w = (x / s) ** 2
    fp = -0.5 * np.exp(0.5 * w)
    fpp = _SQRT_PI_OVER_TWO * np.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


# ---------------------------------------------------------------------------------------------------------------
# Normalized solver


def _householder(newton, halley, hh3):
    return newton * (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


def _normalised_implied_vol(
    beta: np.ndarray, x: np.ndarray, b_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``b(x, s) = beta`` for ``s = sigma sqrt(t)``; 1-D arrays, ``x <= 0``, ``0 < beta < b_max = e^{x/2}``.

    Returns ``s`` and ``db/ds`` (normalized vega) near the solution, for the identifiability check.
    """
    ax = -x
    s_c = np.sqrt(2.0 * ax)
    # At s_c, h + t = 0 and b(x, s_c) has this closed form; the vega there is e^{x/2}/sqrt(2 pi).
    b_c = 0.5 * b_max * (1.0 - erfcx(np.sqrt(ax)))
    v_c = _ONE_OVER_SQRT_TWO_PI * b_max
    low = beta < b_c
    s_l = s_c - b_c / v_c
    s_h = np.where(v_c > _DBL_MIN, s_c + (b_max - b_c) / v_c, s_c)
    s_lh = np.where(low, s_l, s_h)
    b_lh, v_lh = _black_and_vega(x, s_lh)

    # Sort the options by branch once, so that each branch (and each objective below) is a contiguous slice.
    branch = np.where(low, np.where(beta < b_lh, 0, 1), np.where(beta <= b_lh, 2, 3)).astype(np.int8)
    counts = np.bincount(branch, minlength=4)
    order = np.argsort(branch, kind="stable")
    x, beta, b_max, b_c, v_c, s_c = (a[order] for a in (x, beta, b_max, b_c, v_c, s_c))
    b_lh, v_lh, s_lh = b_lh[order], v_lh[order], s_lh[order]
    e1, e2, e3 = (int(c) for c in np.cumsum(counts)[:3])
    lo, ml, mh, hi = slice(0, e1), slice(e1, e2), slice(e2, e3), slice(e3, None)

    s = np.empty_like(beta)
    s_left = np.zeros_like(beta)
    s_right = np.full_like(beta, np.inf)

    if counts[0]:
        # Lowest branch: interpolate the transformed map f(b) on [0, b_l], f(0) = 0, f'(0) = 1, then invert it.
        xi, bi, b_l, sl = x[lo], beta[lo], b_lh[lo], s_lh[lo]
        f_l, fp_l, fpp_l = _lower_map(xi, sl)
        f = _lowest_branch_interpolation(bi, b_l, f_l, fp_l, fpp_l)
        s[lo] = _inverse_lower_map(xi, f)
        s_right[lo] = sl

    if counts[1]:
        b_l, bc, sl, sc = b_lh[ml], b_c[ml], s_lh[ml], s_c[ml]
        d_l, d_r = 1.0 / v_lh[ml], 1.0 / v_c[ml]
        r_lm = _convex_control_right(b_l, bc, sl, sc, d_l, d_r, 0.0, False)
        s[ml] = _rational_cubic(beta[ml], b_l, bc, sl, sc, d_l, d_r, r_lm)
        s_left[ml] = sl
        s_right[ml] = sc

    if counts[2]:
        bc, b_h, sc, sh = b_c[mh], b_lh[mh], s_c[mh], s_lh[mh]
        d_l, d_r = 1.0 / v_c[mh], 1.0 / v_lh[mh]
        r_hm = _convex_control_left(bc, b_h, sc, sh, d_l, d_r, 0.0, False)
        s[mh] = _rational_cubic(beta[mh], bc, b_h, sc, sh, d_l, d_r, r_hm)
        s_left[mh] = sc
        s_right[mh] = sh

    n_upper = 0
    if counts[3]:
        # Highest branch: interpolate f(b) = N(-s/2) on [b_h, b_max], f(b_max) = 0, f'(b_max) = -1/2.
        xi, bi, b_h, sh, bm = x[hi], beta[hi], b_lh[hi], s_lh[hi], b_max[hi]
        f_h, fp_h, fpp_h = _upper_map(xi, sh)
        r_hh = _convex_control_left(b_h, bm, f_h, 0.0, fp_h, -0.5, fpp_h, True)
        f = _rational_cubic(bi, b_h, bm, f_h, 0.0, fp_h, -0.5, r_hh)
        f = np.where(np.abs(fpp_h) < _SQRT_DBL_MAX, f, -1.0)
        # Fall back to the quadratic with f(b_h), f(b_max) = 0 and f'(b_max) = -1/2.
        span = bm - b_h
        tt = (bi - b_h) / span
        f = np.where(f > 0, f, (f_h * (1.0 - tt) + 0.5 * span * tt) * (1.0 - tt))
        s_hi = -2.0 * ndtri(f)
        # Above b_max/2 iterate on ln(b_max - b) (as in the reference code); move those options to the end.
        upper = bi > 0.5 * bm
        sub = np.argsort(upper, kind="stable")
        n_upper = int(upper.sum())
        idx = e3 + sub
        order[e3:] = order[idx]
        x[e3:], beta[e3:], b_max[e3:] = x[idx], beta[idx], b_max[idx]
        s[e3:] = s_hi[sub]
        s_left[e3:] = sh[sub]
        v_lh[e3:] = v_lh[idx]
    up = slice(beta.size - n_upper, None)

    # Keep the guess inside its bracket (it can only leave it through round-off for extreme inputs).
    mid = np.where(np.isfinite(s_right), 0.5 * (s_left + s_right), 2.0 * s_left)
    outside = ~((s >= s_left) & (s <= s_right) & (s > 0))
    if outside.any():
        s[outside] = mid[outside]
    ln_beta = np.log(beta[lo])
    b_max_minus_beta = b_max[up] - beta[up]
    vega = v_lh
    for _ in range(_N_ITERATIONS):
        b, vega = _black_and_vega(x, s)
        h_over_s = x / (s * s)
        b_halley = x * h_over_s / s - 0.25 * s  # b''/b' (second over first derivative in s)
        b_hh3 = b_halley * b_halley - 3.0 * h_over_s * h_over_s - 0.25  # third over first derivative
        newton = (beta - b) / vega
        halley = b_halley  # overwritten below on the slices with another objective (read them first)
        hh3 = b_hh3
        if counts[0]:
            # g(s) = 1/ln b(s) - 1/ln beta: almost linear in s where b is exponentially small.
            bi = b[lo]
            ln_b = np.log(bi)
            bpob = vega[lo] / bi
            bh = b_halley[lo].copy()
            inv_ln_b = 1.0 / ln_b
            c2 = 1.0 + 2.0 * inv_ln_b
            newton[lo] = (ln_beta - ln_b) * ln_b / ln_beta / bpob
            halley[lo] = bh - bpob * c2
            hh3[lo] += 2.0 * bpob * bpob * (1.0 + 3.0 * inv_ln_b * (1.0 + inv_ln_b)) - 3.0 * bh * bpob * c2
        if n_upper:
            # g(s) = ln((b_max - beta) / (b_max - b(s))): linear in the exponentially small distance to b_max.
            bmm = b_max[up] - b[up]
            gp = vega[up] / bmm
            bh = b_halley[up].copy()
            newton[up] = -np.log(b_max_minus_beta / bmm) / gp
            halley[up] = bh + gp
            hh3[up] += gp * (2.0 * gp + 3.0 * bh)
        ds = np.maximum(-0.5 * s, _householder(newton, halley, hh3))
        s += ds
        # Underflow (b or vega == 0) gives a non-finite step: restart from the middle of the initial bracket.
        stuck = ~(s < np.inf)
        if stuck.any():
            s[stuck] = mid[stuck]
    out_s = np.empty_like(s)
    out_s[order] = s
    out_v = np.empty_like(s)
    out_v[order] = vega
    return out_s, out_v


# ---------------------------------------------------------------------------------------------------------------
# Public API


_BLOCK = 1 << 15  # options per block: keeps the ~100 temporaries of a block in cache


def _status_and_vol_block(p_in, f, k, t, call, d) -> tuple[np.ndarray, np.ndarray]:
    """Status codes and vols for one block of 1-D inputs (see :func:`implied_volatility_with_status`)."""
    # Comparisons with NaN are False, so "0 < a < inf" also rejects NaN.
    good = (f > 0) & (f < np.inf) & (k > 0) & (k < np.inf) & (t > 0) & (t < np.inf) & (d > 0) & (d < np.inf)
    p = p_in / d  # undiscounted premium
    fmk = f - k
    intrinsic = np.maximum(np.where(call, fmk, -fmk), 0.0)
    # Bounds on the quoted (discounted) price: D * intrinsic <= price < D * (F for a call, K for a put); +inf is above.
    status = np.where(p_in >= d * np.where(call, f, k), ABOVE_UPPER_BOUND, OK).astype(np.int8)
    status[p_in < d * intrinsic] = BELOW_INTRINSIC
    status[~(p > 0)] = NO_PRICE  # NaN, zero or negative: e.g. no bid
    status[~good] = BAD_INPUT
    # Time value = price of the OTM counterpart by parity, normalized by sqrt(F K); x = -|ln(F/K)|.
    sqrt_fk = np.sqrt(f) * np.sqrt(k)
    beta = (p - intrinsic) / sqrt_fk
    x = -np.abs(np.log(f / k))
    b_max = np.exp(0.5 * x)
    # Zero or subnormal time value: nothing left to invert. Rounding can also push beta to b_max.
    status[(status == OK) & ((beta < _DBL_MIN) | (beta >= b_max))] = VEGA_TOO_SMALL
    solve = status == OK
    if solve.all():
        jdx = slice(None)
    else:
        jdx = np.flatnonzero(solve)
        beta, x, b_max, p, sqrt_fk, t = beta[jdx], x[jdx], b_max[jdx], p[jdx], sqrt_fk[jdx], t[jdx]
    s, vega = _normalised_implied_vol(beta, x, b_max)
    sigma = s / np.sqrt(t)
    # One ulp of the price moves s by eps * p / (sqrt(FK) b'(s)); that must be small against s.
    rel_uncertainty = _EPS * p / (sqrt_fk * vega * s)
    lost = ~(rel_uncertainty <= IDENTIFIABLE_REL_TOL) | ~(sigma > 0) | ~(sigma < np.inf)
    sigma[lost] = np.nan
    iv = np.full(status.shape, np.nan)
    iv[jdx] = sigma
    status[jdx] = np.where(lost, VEGA_TOO_SMALL, OK)
    return iv, status


def implied_volatility_with_status(
    price, forward, strike, t, is_call, discount=1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Black-76 implied volatility and a status code per option.

    Parameters
    ----------
    price : array_like
        Discounted option premium (same units as ``forward``).
    forward, strike : array_like
        Forward of the expiry and strike (index points / dollars), > 0.
    t : array_like
        Time to expiry in years (> 0).
    is_call : array_like of bool
        True for calls, False for puts.
    discount : array_like, default 1.0
        Discount factor to payment, ``exp(-r t)`` (> 0).

    Returns
    -------
    iv : ndarray of float
        Decimal volatility (0.20 = 20%), NaN wherever the status is not ``OK``. Shape: inputs broadcast together.
    status : ndarray of int8
        Codes ``OK``, ``BELOW_INTRINSIC``, ``ABOVE_UPPER_BOUND``, ``NO_PRICE``, ``VEGA_TOO_SMALL``, ``BAD_INPUT``;
        names in :data:`IV_STATUS_NAMES`. Never raises for bad prices.
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (price, forward, strike, t, discount)),
        np.asarray(is_call, dtype=bool),
    )
    shape = arrays[0].shape
    flat = [a.ravel() for a in arrays]
    n = flat[0].size
    iv = np.empty(n)
    status = np.empty(n, dtype=np.int8)
    # inf/nan/underflow are expected inside (extreme inputs, bracket fallbacks) and are all handled explicitly.
    with np.errstate(all="ignore"):
        for start in range(0, n, _BLOCK):
            blk = slice(start, start + _BLOCK)
            p, f, k, tt, d, call = (a[blk] for a in flat)
            iv[blk], status[blk] = _status_and_vol_block(p, f, k, tt, call, d)
    return iv.reshape(shape), status.reshape(shape)


def implied_volatility(price, forward, strike, t, is_call, discount=1.0) -> np.ndarray:
    """Black-76 implied volatility (decimal), NaN where the price cannot be inverted.

    Same arguments as :func:`implied_volatility_with_status`; use that function to learn why a value is NaN.
    """
    return implied_volatility_with_status(price, forward, strike, t, is_call, discount)[0]
