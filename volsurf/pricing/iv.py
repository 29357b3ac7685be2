"""Implied Black-76 volatility: vectorized, machine-precision inversion of :func:`volsurf.pricing.black76.black76_price`.

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
Options are processed in blocks of ``_BLOCK`` so that the temporaries stay in cache. Speed (target: 1e6 options
in < 0.5 s on one core, ``benchmarks/bench_iv.py``) comes from few passes per block: in-place arithmetic, sparse
index patches instead of ``np.where``/boolean masks for rare cases, and ordering. scipy's ``erfcx`` (about 8 calls
per option, half the run time) costs ~25 ns for randomly ordered arguments but ~10 ns when neighbouring arguments
fall on the same polynomial piece, so each block is solved in order of ``x`` (the guess stage depends on ``x``
alone) and the lowest branch is re-sorted by its guess before the Householder steps; both orders come from plain
float sorts of keys that carry the index in their low bits. The inverse normal in the lowest-branch guess uses
Acklam's approximation (relative error < 1.2e-9), which the Householder steps polish.

Status codes (``IV_STATUS_NAMES``): ``OK``; ``BELOW_INTRINSIC`` (price < discounted intrinsic);
``ABOVE_UPPER_BOUND`` (call >= D F, put >= D K); ``NO_PRICE`` (price NaN or <= 0, e.g. no bid);
``VEGA_TOO_SMALL`` (the time value is so small against the float precision of the price that the vol is not
identifiable: one unit of rounding in the price moves the vol by more than ``IDENTIFIABLE_REL_TOL`` relative);
``BAD_INPUT`` (``t <= 0``, ``F <= 0``, ``K <= 0``, ``D <= 0`` or any of them NaN/inf); ``NOT_CONVERGED`` (the
final residual check: the Newton correction ``|b(s) - beta| / b'(s)`` left after the two Householder steps exceeds
``CONVERGENCE_REL_TOL`` times ``s``, which happens only outside the tested domain, e.g. ``sigma > 5`` or
``t > 10`` years). The vol is NaN unless OK.
Precedence: ``BAD_INPUT`` > ``NO_PRICE`` > ``BELOW_INTRINSIC`` / ``ABOVE_UPPER_BOUND`` > ``VEGA_TOO_SMALL`` >
``NOT_CONVERGED``.

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
from numpy.typing import ArrayLike
from scipy.special import erfcx, ndtr, ndtri

__all__ = [
    "ABOVE_UPPER_BOUND",
    "BAD_INPUT",
    "BELOW_INTRINSIC",
    "IDENTIFIABLE_REL_TOL",
    "IV_STATUS_CODES",
    "IV_STATUS_NAMES",
    "NOT_CONVERGED",
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
NOT_CONVERGED = 6

#: Status code -> lowercase name (the strings the enrich layer and the CLI print).
IV_STATUS_NAMES: dict[int, str] = {
    OK: "ok",
    BELOW_INTRINSIC: "below_intrinsic",
    ABOVE_UPPER_BOUND: "above_upper_bound",
    NO_PRICE: "no_price",
    VEGA_TOO_SMALL: "vega_too_small",
    BAD_INPUT: "bad_input",
    NOT_CONVERGED: "not_converged",
}
#: Lowercase name -> status code.
IV_STATUS_CODES: dict[str, int] = {name: code for code, name in IV_STATUS_NAMES.items()}

#: A vol is reported only if one unit of float rounding in the price (``eps * price``) moves it by at most this
#: fraction of itself; beyond that the time value is float noise (deep ITM, or a price pinned at its upper bound).
IDENTIFIABLE_REL_TOL = 1e-6

#: Stated accuracy of the solver: after the two Householder steps the Newton correction left in ``s = sigma
#: sqrt(t)`` (``|b(s) - beta| / b'(s)``, from the complements near the upper bound) must be at most this fraction
#: of ``s`` (inside the tested domain plus the part that is 16 ulps of the price: rounding, not convergence);
#: otherwise ``NOT_CONVERGED``.
CONVERGENCE_REL_TOL = 1e-10
#: The tested domain (round trips in tests/pricing/test_iv.py): inside it a residual within the price's rounding
#: passes; outside it only a residual below ``CONVERGENCE_REL_TOL`` does.
TESTED_SIGMA = 5.0
TESTED_T = 10.0

_F = np.ndarray | float  # array arguments of the interpolation helpers (scalars broadcast)
_EPS = np.finfo(float).eps
_DBL_MIN = np.finfo(float).tiny
_DBL_MAX = np.finfo(float).max
_SQRT_DBL_MAX = np.sqrt(_DBL_MAX)
_ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848359376887
_SQRT_TWO = 1.414213562373095048801688724209698078569671875377
_ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343818684758586311649
_SQRT_TWO_PI = 2.506628274631000502415765284811045253006986740610
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
    # Work with the erfcx arguments directly: a_pm = -(h -+ t)/sqrt 2 (h = x/s, t = s/2), so that
    # exp(-(h^2 + t^2)/2) = exp(-(hp^2 + tp^2)) with hp = -h/sqrt 2, tp = t/sqrt 2 (fewer passes over the block).
    hp = np.divide(x, s)
    hp *= -_ONE_OVER_SQRT_TWO
    tp = np.multiply(s, 0.5 * _ONE_OVER_SQRT_TWO)
    e = np.multiply(hp, hp)
    a = np.multiply(tp, tp)
    e += a
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.subtract(hp, tp, out=a)  # -(h + t)/sqrt 2
    np.add(hp, tp, out=hp)  # -(h - t)/sqrt 2
    # One exponential times a difference of two rational functions: no products of tiny N() values.
    b = erfcx(a)
    b -= erfcx(hp, out=tp)
    b *= e
    b *= 0.5
    # Above ~85% of b_max (h + t > 0.85) the first term dominates and the plain formula is more accurate
    # (and erfcx of a large negative argument would overflow); few options live there, so patch them.
    j = np.flatnonzero(a < -0.85 * _ONE_OVER_SQRT_TWO)
    if j.size:
        half_x = 0.5 * x[j]
        b[j] = ndtr(-_SQRT_TWO * a[j]) * np.exp(half_x) - ndtr(-_SQRT_TWO * hp[j]) * np.exp(-half_x)
    e *= _ONE_OVER_SQRT_TWO_PI
    return np.maximum(b, 0.0, out=b), e


# ---------------------------------------------------------------------------------------------------------------
# Shape-preserving rational cubic interpolation (Delbourgo & Gregory 1985), vectorized


def _rational_cubic(x: _F, x_l: _F, x_r: _F, y_l: _F, y_r: _F,
                    d_l: _F, d_r: _F, r: _F) -> np.ndarray:
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


def _minimum_control(d_l: _F, d_r: _F, slope: _F, prefer_shape: bool) -> np.ndarray:
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


def _control_from_ratio(numerator: _F, denominator: _F) -> np.ndarray:
    r = np.where(
        np.abs(denominator) < _DBL_MIN, np.where(numerator > 0, _R_MAX, _R_MIN), numerator / denominator
    )
    return np.where(np.abs(numerator) < _DBL_MIN, 0.0, r)


def _convex_control_right(x_l: _F, x_r: _F, y_l: _F, y_r: _F, d_l: _F, d_r: _F, second_r: _F,
                          prefer_shape: bool) -> np.ndarray:
    """Control parameter matching the second derivative at the right end, floored for shape preservation."""
    h = x_r - x_l
    slope = (y_r - y_l) / h
    r = _control_from_ratio(0.5 * h * second_r + (d_r - d_l), d_r - slope)
    return np.maximum(r, _minimum_control(d_l, d_r, slope, prefer_shape))


def _convex_control_left(x_l: _F, x_r: _F, y_l: _F, y_r: _F, d_l: _F, d_r: _F, second_l: _F,
                         prefer_shape: bool) -> np.ndarray:
    """Control parameter matching the second derivative at the left end, floored for shape preservation."""
    h = x_r - x_l
    slope = (y_r - y_l) / h
    r = _control_from_ratio(0.5 * h * second_l + (d_r - d_l), slope - d_l)
    return np.maximum(r, _minimum_control(d_l, d_r, slope, prefer_shape))


def _patch(a: np.ndarray, mask: np.ndarray, value: float | np.ndarray) -> None:
    """``a[mask] = value`` (scalar or same-shape array) for a sparse mask: flatnonzero + fancy indexing is several
    times cheaper than a boolean-mask assignment or ``np.where`` over the whole block."""
    j = np.flatnonzero(mask)
    if j.size:
        a[j] = value[j] if isinstance(value, np.ndarray) and value.ndim else value


# Acklam's rational approximations of the inverse normal CDF (relative error < 1.2e-9): plenty for an initial
# guess that two fourth-order Householder steps then polish (scipy's ndtri costs ~45 ns per argument here).
_ACKLAM_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_ACKLAM_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_ACKLAM_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_ACKLAM_LN_P_LOW = float(np.log(0.02425))


def _horner(z: np.ndarray, coefficients: tuple[float, ...] | list[float] | np.ndarray) -> np.ndarray:
    """Polynomial with the given coefficients (highest degree first) at ``z``."""
    out = np.multiply(z, coefficients[0])
    for c in coefficients[1:-1]:
        out += c
        out *= z
    out += coefficients[-1]
    return out


def _ndtri_from_log(ln_u: np.ndarray) -> np.ndarray:
    """Approximate ``ndtri(u)`` for ``u = exp(ln_u)`` (overwrites ``ln_u``); exact scipy ndtri above ``u = 1/2``.

    The lower tail works from ``ln u`` directly (no exp/log round trip), the central region from ``u``.
    """
    central = np.flatnonzero(ln_u >= _ACKLAM_LN_P_LOW)
    u_c = np.exp(ln_u[central])
    # Tail: q = sqrt(-2 ln u), ndtri = C(q) / D(q).
    q = np.multiply(ln_u, -2.0, out=ln_u)
    np.sqrt(q, out=q)
    num = _horner(q, _ACKLAM_C)
    den = _horner(q, (*_ACKLAM_D, 1.0))
    num /= den
    if central.size:
        z = u_c - 0.5
        r = z * z
        x_c = _horner(r, _ACKLAM_A)
        x_c *= z
        x_c /= _horner(r, (*_ACKLAM_B, 1.0))
        above = u_c > 0.5
        if above.any():
            x_c[above] = ndtri(u_c[above])
        num[central] = x_c
    return num


def _lowest_branch_guess(x: np.ndarray, beta: np.ndarray, b_l: np.ndarray, s_l: np.ndarray, v_l: np.ndarray) -> np.ndarray:
    """Initial guess for the lowest branch ``0 < beta < b_l = b(x, s_l)``.

    Interpolates the transformed map ``f(b)`` (which linearizes ``b -> 0``) by a rational cubic through (0, 0)
    with slope 1 and ``(b_l, f(b_l))`` with slope ``f'(b_l)``, matching ``f''(b_l)`` (Delbourgo-Gregory, shape
    preservation preferred), then inverts ``f`` explicitly. The general interpolation helpers below are
    specialized and fused here: this branch holds most far out-of-the-money options.
    """
    ax = -x
    s = s_l
    # --- f(b_l), f'(b_l), f''(b_l) from the lower map at s_l; z = |x| / (sqrt 3 s), y = z^2.
    z = np.divide(ax, s)
    z *= _SQRT_ONE_OVER_THREE
    y = np.multiply(z, z)
    z *= _ONE_OVER_SQRT_TWO
    # Written with the Mills ratio N(-z)/n(z) (a scaled erfc) so that nothing is 0/0 once n(z) underflows.
    mills = erfcx(z, out=z)
    mills *= _SQRT_PI_OVER_TWO
    exp_half_y = np.multiply(y, 0.5)
    np.exp(exp_half_y, out=exp_half_y)  # one exponential serves exp(-y/2) and exp(3y/2)
    s2 = np.multiply(s, s)
    # exp(s^2/8) without another exponential: the vega at s_l is n(0) exp(-3y/2 - s^2/8). Where that underflows
    # (or exp(3y/2) overflows) take the exponential.
    exp_s2 = np.multiply(exp_half_y, exp_half_y)
    exp_s2 *= exp_half_y
    exp_s2 *= v_l
    exp_s2 *= _SQRT_TWO_PI
    np.divide(1.0, exp_s2, out=exp_s2)
    j = np.flatnonzero(~(v_l > 1e-290) | ~(exp_s2 < np.inf))
    if j.size:
        exp_s2[j] = np.exp(0.125 * s2[j])
    f_l = np.divide(mills, exp_half_y)  # N(-z) sqrt(2 pi)
    tmp = np.multiply(f_l, f_l)
    f_l *= tmp
    f_l *= ax
    f_l *= _TWO_PI_OVER_SQRT_TWENTY_SEVEN * _ONE_OVER_SQRT_TWO_PI**3  # = c |x| N(-z)^3
    fp_l = np.multiply(mills, mills)
    fp_l *= y
    fp_l *= exp_s2  # = 2 pi y N(-z)^2 exp(y + s^2/8)
    # f'' = pi/6 n(0) y / s^3 mills (8 sqrt3 s |x| + (3 s^2 (s^2 - 8) - 8 x^2) mills) exp(3y/2) exp(s^2/4)
    fpp_l = np.subtract(s2, 8.0)
    fpp_l *= s2
    fpp_l *= 3.0
    np.multiply(x, x, out=tmp)
    tmp *= 8.0
    fpp_l -= tmp
    fpp_l *= mills
    np.multiply(s, ax, out=tmp)
    tmp *= 8.0 * _SQRT_THREE
    fpp_l += tmp
    fpp_l *= mills
    fpp_l *= y
    np.multiply(s2, s, out=tmp)
    fpp_l /= tmp
    np.multiply(exp_half_y, exp_half_y, out=tmp)
    tmp *= exp_half_y
    fpp_l *= tmp
    exp_s2 *= exp_s2
    fpp_l *= exp_s2
    fpp_l *= _PI_OVER_SIX * _ONE_OVER_SQRT_TWO_PI
    del mills, exp_half_y, exp_s2, s2, y

    # --- control parameter r: fit of f''(b_l), floored by the shape-preserving minimum.
    slope = np.divide(f_l, b_l)
    fp_m1 = np.subtract(fp_l, 1.0)
    den = np.subtract(fp_l, slope)
    num = np.multiply(b_l, 0.5)
    num *= fpp_l
    num += fp_m1
    r = np.divide(num, den)
    abs_den = np.abs(den)
    j = np.flatnonzero(abs_den < _DBL_MIN)
    if j.size:
        r[j] = np.where(num[j] > 0, _R_MAX, _R_MIN)
    _patch(r, np.abs(num) < _DBL_MIN, 0.0)
    # f is increasing (f'(0) = 1 > 0 and fp_l > 0), so the monotonicity bound applies ...
    np.add(fp_l, 1.0, out=tmp)
    tmp /= slope
    np.maximum(r, tmp, out=r)
    # ... and the convexity/concavity bound when the secant slope lies between the end slopes.
    sm1 = np.subtract(slope, 1.0)
    curved = ((slope >= 1.0) & (slope <= fp_l)) | ((slope <= 1.0) & (slope >= fp_l))
    not_usable = ~curved | (np.abs(sm1) < _DBL_MIN) | (abs_den < _DBL_MIN)
    r_curve = np.divide(fp_m1, den, out=den)
    np.abs(r_curve, out=r_curve)
    np.divide(fp_m1, sm1, out=sm1)
    np.abs(sm1, out=sm1)
    np.maximum(r_curve, sm1, out=r_curve)
    _patch(r_curve, not_usable, _R_MAX)
    np.maximum(r, r_curve, out=r)
    del slope, fp_m1, num, abs_den, sm1, r_curve, fpp_l

    # --- rational cubic at t = beta / b_l:
    # f = t (f_l t^2 + (r f_l - b_l fp_l) t (1-t) + b_l (1-t)^2) / (1 + (r - 3) t (1-t)).
    t = np.divide(beta, b_l)
    omt = np.subtract(1.0, t)
    t_omt = np.multiply(t, omt)
    f = np.multiply(f_l, t)
    f *= t
    np.multiply(r, f_l, out=tmp)
    fp_l *= b_l
    tmp -= fp_l
    tmp *= t_omt
    f += tmp
    np.multiply(b_l, omt, out=tmp)
    tmp *= omt
    f += tmp
    f *= t
    np.subtract(r, 3.0, out=tmp)
    tmp *= t_omt
    tmp += 1.0
    f /= tmp
    _patch(f, r >= _R_MAX, f_l * t)
    # Round-off for extreme |x|: fall back to the quadratic with f(0) = 0, f'(0) = 1 and f(b_l).
    bad = ~(f > 0)
    if bad.any():
        j = np.flatnonzero(bad)
        f[j] = (f_l[j] * t[j] + b_l[j] * omt[j]) * t[j]

    # --- invert the map: f = c |x| N(-|x| / (sqrt 3 s))^3.
    f /= ax
    f *= 1.0 / _TWO_PI_OVER_SQRT_TWENTY_SEVEN
    np.log(f, out=f)
    f *= 1.0 / 3.0  # ln of the cube root u, which is N(-|x| / (sqrt 3 s))
    f = _ndtri_from_log(f)
    f *= _SQRT_THREE
    np.divide(x, f, out=f)
    return np.abs(f, out=f)


# ---------------------------------------------------------------------------------------------------------------
# Transformation maps for the outer branches


def _upper_map(x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``f(b)`` linearizing the highest branch, and ``df/db``, ``d2f/db2``, evaluated at ``s``."""
    f = ndtr(-0.5 * s)
    w = (x / s) ** 2
    fp = -0.5 * np.exp(0.5 * w)
    fpp = _SQRT_PI_OVER_TWO * np.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


# ---------------------------------------------------------------------------------------------------------------
# Normalized solver


def _normalised_implied_vol(
    beta: np.ndarray, x: np.ndarray, b_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``b(x, s) = beta`` for ``s = sigma sqrt(t)``; 1-D arrays, ``x <= 0``, ``0 < beta < b_max = e^{x/2}``.

    Returns ``s`` and ``db/ds`` (normalized vega) near the solution, for the identifiability check.
    """
    ax = -x
    s_c = np.sqrt(2.0 * ax)
    # At s_c, h + t = 0 and b(x, s_c) has this closed form; the vega there is e^{x/2}/sqrt(2 pi).
    b_c = erfcx(np.sqrt(ax))
    np.subtract(1.0, b_c, out=b_c)
    b_c *= b_max
    b_c *= 0.5
    v_c = _ONE_OVER_SQRT_TWO_PI * b_max
    low = beta < b_c
    s_lh = np.where(low, np.negative(b_c), b_max - b_c)
    s_lh /= v_c
    s_lh += s_c  # s_l = s_c - b_c / v_c below b_c, s_h = s_c + (b_max - b_c) / v_c above
    _patch(s_lh, ~(v_c > _DBL_MIN) & ~low, s_c)
    b_lh, v_lh = _black_and_vega(x, s_lh)

    # Sort the options by branch once, so that each branch (and each objective below) is a contiguous slice.
    # Most options sit in the lowest branch: split that off first, then partition the (few) others.
    lowest = beta < b_lh
    lowest &= low
    i0 = np.flatnonzero(lowest)
    rest = np.flatnonzero(~lowest)
    if rest.size:
        low_r, beta_r, b_lh_r = low[rest], beta[rest], b_lh[rest]
        at_or_below = beta_r <= b_lh_r
        i1 = rest[low_r]
        i2 = rest[~low_r & at_or_below]
        highest = ~low_r & ~at_or_below
        # Above b_max/2 iterate on ln(b_max - b) (as in the reference code); those go last.
        upper = beta_r > 0.5 * b_max[rest]
        i3 = rest[highest & ~upper]
        i4 = rest[highest & upper]
        order = np.concatenate((i0, i1, i2, i3, i4))
    else:
        i1 = i2 = i3 = i4 = rest
        order = i0
    n = beta.size
    e1 = i0.size
    e2 = e1 + i1.size
    e3 = e2 + i2.size
    e4 = n - i4.size
    lo, ml, mh, hi, up = slice(0, e1), slice(e1, e2), slice(e2, e3), slice(e3, None), slice(e4, None)
    x, beta, b_lh, s_lh = x[order], beta[order], b_lh[order], s_lh[order]
    vega = v_lh[order]

    s = np.empty_like(beta)
    s_left = np.zeros_like(beta)
    s_right = np.full_like(beta, np.inf)
    if e1:
        # Lowest branch: interpolate the transformed map f(b) on [0, b_l], f(0) = 0, f'(0) = 1, then invert it.
        s[lo] = _lowest_branch_guess(x[lo], beta[lo], b_lh[lo], s_lh[lo], vega[lo])
        s_right[lo] = s_lh[lo]
    if e1 < n:
        # The other branches need the central node (b_c, s_c) and the upper bound.
        o_r = order[e1:]
        b_c, v_c, s_c, b_max = b_c[o_r], v_c[o_r], s_c[o_r], b_max[o_r]
        r0 = e1  # offset of the gathered "rest" arrays
    if e2 > e1:
        part = slice(e1 - r0, e2 - r0)
        b_l, bc, sl, sc = b_lh[ml], b_c[part], s_lh[ml], s_c[part]
        d_l, d_r = 1.0 / vega[ml], 1.0 / v_c[part]
        r_lm = _convex_control_right(b_l, bc, sl, sc, d_l, d_r, 0.0, False)
        s[ml] = _rational_cubic(beta[ml], b_l, bc, sl, sc, d_l, d_r, r_lm)
        s_left[ml] = sl
        s_right[ml] = sc
    if e3 > e2:
        part = slice(e2 - r0, e3 - r0)
        bc, b_h, sc, sh = b_c[part], b_lh[mh], s_c[part], s_lh[mh]
        d_l, d_r = 1.0 / v_c[part], 1.0 / vega[mh]
        r_hm = _convex_control_left(bc, b_h, sc, sh, d_l, d_r, 0.0, False)
        s[mh] = _rational_cubic(beta[mh], bc, b_h, sc, sh, d_l, d_r, r_hm)
        s_left[mh] = sc
        s_right[mh] = sh
    if n > e3:
        # Highest branch: interpolate f(b) = N(-s/2) on [b_h, b_max], f(b_max) = 0, f'(b_max) = -1/2.
        bm = b_max[e3 - r0 :]
        xi, bi, b_h, sh = x[hi], beta[hi], b_lh[hi], s_lh[hi]
        f_h, fp_h, fpp_h = _upper_map(xi, sh)
        r_hh = _convex_control_left(b_h, bm, f_h, 0.0, fp_h, -0.5, fpp_h, True)
        f = _rational_cubic(bi, b_h, bm, f_h, 0.0, fp_h, -0.5, r_hh)
        f = np.where(np.abs(fpp_h) < _SQRT_DBL_MAX, f, -1.0)
        # Fall back to the quadratic with f(b_h), f(b_max) = 0 and f'(b_max) = -1/2.
        span = bm - b_h
        tt = (bi - b_h) / span
        f = np.where(f > 0, f, (f_h * (1.0 - tt) + 0.5 * span * tt) * (1.0 - tt))
        s[hi] = -2.0 * ndtri(f)
        s_left[hi] = sh
        b_max_minus_beta = b_max[e4 - r0 :] - beta[up]

    def mid(j: np.ndarray) -> np.ndarray:
        """Middle of the initial bracket (twice its left end if unbounded), at indices ``j``."""
        sl, sr = s_left[j], s_right[j]
        return np.where(sr < np.inf, 0.5 * (sl + sr), 2.0 * sl)

    # Keep the guess inside its bracket (it can only leave it through round-off for extreme inputs).
    outside = ~((s >= s_left) & (s <= s_right) & (s > 0))
    j = np.flatnonzero(outside)
    if j.size:
        s[j] = mid(j)
    del s_lh
    if e1 > 1:
        # Reorder the lowest branch by -(h + t) at its guess (sqrt 2 times the first erfcx argument; see the x-sort
        # in _status_and_vol_block): the Householder steps then call erfcx on neighbouring polynomial pieces.
        s_lo = s[lo]
        key = np.divide(x[lo], s_lo)
        key += 0.5 * s_lo
        np.negative(key, out=key)
        np.minimum(key, 60.0, out=key)
        key *= _SORT_SCALE
        np.floor(key, out=key)
        key *= _INDEX_SPAN
        key += _INDEX[:e1]
        key.sort()
        perm = key.astype(np.int64)
        perm &= _INDEX_SPAN - 1
        for a in (order, x, beta, s, s_right):
            a[lo] = a[lo][perm]
    ln_beta = np.log(beta[lo])
    newton = np.empty_like(s)
    halley = np.empty_like(s)
    hh3 = np.empty_like(s)
    for _ in range(_N_ITERATIONS):
        b, vega = _black_and_vega(x, s)
        # b''/b' = h^2/s - s/4 and b'''/b' = (b''/b')^2 - 3 (h/s)^2 - 1/4 (derivatives in s, h = x/s).
        h = np.divide(x, s)
        h_over_s = np.divide(h, s)
        np.multiply(h, h_over_s, out=halley)
        np.multiply(s, 0.25, out=h)
        halley -= h
        np.multiply(halley, halley, out=hh3)
        h_over_s *= h_over_s
        h_over_s *= 3.0
        hh3 -= h_over_s
        hh3 -= 0.25
        nr = newton[e1:]
        np.subtract(beta[e1:], b[e1:], out=nr)
        nr /= vega[e1:]
        if e1:
            # g(s) = 1/ln b(s) - 1/ln beta: almost linear in s where b is exponentially small.
            bi = b[lo]
            ln_b = np.log(bi)
            bpob = np.divide(vega[lo], bi)
            inv_ln_b = np.divide(1.0, ln_b)
            nl = newton[lo]
            np.subtract(ln_beta, ln_b, out=nl)
            nl *= ln_b
            nl /= ln_beta
            nl /= bpob
            bh = halley[lo]
            c2 = np.multiply(inv_ln_b, 2.0)
            c2 += 1.0
            bpob_c2 = np.multiply(bpob, c2)
            # hh3 += 2 bpob^2 (1 + 3 inv (1 + inv)) - 3 bh bpob c2  (uses the b-objective halley, read first)
            tmp = np.add(inv_ln_b, 1.0)
            tmp *= inv_ln_b
            tmp *= 3.0
            tmp += 1.0
            tmp *= bpob
            tmp *= bpob
            tmp *= 2.0
            hl = hh3[lo]
            hl += tmp
            np.multiply(bh, bpob_c2, out=tmp)
            tmp *= 3.0
            hl -= tmp
            bh -= bpob_c2
        if n > e4:
            # g(s) = ln((b_max - beta) / (b_max - b(s))): linear in the exponentially small distance to b_max.
            bmm = b_max[e4 - r0 :] - b[up]
            gp = vega[up] / bmm
            bh = halley[up].copy()
            newton[up] = -np.log(b_max_minus_beta / bmm) / gp
            halley[up] = bh + gp
            hh3[up] += gp * (2.0 * gp + 3.0 * bh)
        # Householder step newton (1 + halley newton / 2) / (1 + newton (halley + hh3 newton / 6)).
        hh3 *= newton
        hh3 *= 1.0 / 6.0
        hh3 += halley
        hh3 *= newton
        hh3 += 1.0
        halley *= newton
        halley *= 0.5
        halley += 1.0
        halley *= newton
        halley /= hh3
        np.multiply(s, -0.5, out=newton)
        np.maximum(halley, newton, out=halley)
        s += halley
        # Underflow (b or vega == 0) gives a non-finite step: restart from the middle of the initial bracket.
        stuck = ~(s < np.inf)
        if stuck.any():
            j = np.flatnonzero(stuck)
            s[j] = mid(j)
    out_s = np.empty_like(s)
    out_s[order] = s
    out_v = np.empty_like(s)
    out_v[order] = vega
    return out_s, out_v


# ---------------------------------------------------------------------------------------------------------------
# Public API


_BLOCK = 1 << 15  # options per block: keeps the temporaries of a block in cache
# Sort keys: floor(-x * _SORT_SCALE) * _INDEX_SPAN + index stay exact integers in float64 (-x < 1417 when solvable).
_INDEX_SPAN = 1 << 16
_SORT_SCALE = float(1 << 20)
_INDEX = np.arange(_INDEX_SPAN, dtype=float)
assert _BLOCK <= _INDEX_SPAN


def _status_and_vol_block(p_in: np.ndarray, f: np.ndarray, k: np.ndarray, t: np.ndarray, call: np.ndarray,
                          d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Status codes and vols for one block of 1-D inputs (see :func:`implied_volatility_with_status`)."""
    # Comparisons with NaN are False, so "0 < a < inf" also rejects NaN.
    bad = (f > 0) & (f < np.inf) & (k > 0) & (k < np.inf) & (t > 0) & (t < np.inf) & (d > 0) & (d < np.inf)
    np.logical_not(bad, out=bad)
    p = p_in / d  # undiscounted premium
    # Upper bound (F for a call, K for a put) and intrinsic value, selected by multiplication with 0/1: exact for
    # finite inputs and cheaper than np.where (non-finite inputs are BAD_INPUT anyway).
    c = call.astype(float)
    upper = f * c
    sign = np.subtract(1.0, c)
    upper += k * sign  # F for a call, K for a put
    np.subtract(c, sign, out=sign)  # +1 for a call, -1 for a put
    intrinsic = np.subtract(f, k)
    intrinsic *= sign
    np.maximum(intrinsic, 0.0, out=intrinsic)
    # Bounds on the quoted (discounted) price: D * intrinsic <= price < D * upper; +inf is above.
    upper *= d
    above = p_in >= upper
    below = p_in < d * intrinsic
    no_price = ~(p > 0)  # NaN, zero or negative: e.g. no bid
    # Time value = price of the OTM counterpart by parity, normalized by sqrt(F K); x = -|ln(F/K)|.
    sqrt_fk = np.sqrt(f) * np.sqrt(k)
    beta = (p - intrinsic) / sqrt_fk
    ratio = np.minimum(f, k)
    ratio /= np.maximum(f, k)
    x = np.log(ratio)
    b_max = np.sqrt(ratio, out=ratio)  # e^{x/2}
    # Zero or subnormal time value: nothing left to invert. Rounding can also push beta to b_max.
    no_time_value = (beta < _DBL_MIN) | (beta >= b_max)
    solve = ~(bad | no_price | below | above | no_time_value)
    status = np.zeros(p.shape, dtype=np.int8)
    if not solve.all():
        # Sparse scatters, lowest precedence first so that higher codes overwrite.
        for code, mask in (
            (VEGA_TOO_SMALL, no_time_value),
            (ABOVE_UPPER_BOUND, above),
            (BELOW_INTRINSIC, below),
            (NO_PRICE, no_price),
            (BAD_INPUT, bad),
        ):
            _patch(status, mask, code)
    # Solve in order of x: scipy's erfcx picks one of 100 polynomial pieces per argument, and that branch costs
    # ~25 ns per random argument but ~10 ns when neighbours fall in the same piece; most erfcx arguments below
    # depend on x alone. The permutation comes from a plain (SIMD) float sort of keys (x bucket, index).
    key = np.multiply(x, -_SORT_SCALE)
    np.floor(key, out=key)
    key *= _INDEX_SPAN
    key += _INDEX[: key.size]
    _patch(key, ~solve, np.inf)
    key.sort()
    jdx = key[: np.count_nonzero(solve)].astype(np.int64)
    jdx &= _INDEX_SPAN - 1
    # p / sqrt(FK) is all the identifiability check needs from p and sqrt_fk.
    p /= sqrt_fk
    beta, x, b_max, p, t = beta[jdx], x[jdx], b_max[jdx], p[jdx], t[jdx]
    s, vega = _normalised_implied_vol(beta, x, b_max)
    sigma = s / np.sqrt(t)
    # One ulp of the price moves s by eps * p / (sqrt(FK) b'(s)); that must be small against s.
    vega *= s
    np.divide(p, vega, out=vega)
    lost = ~(vega <= IDENTIFIABLE_REL_TOL / _EPS) | ~(sigma > 0) | ~(sigma < np.inf)
    # Final residual: the Newton correction still left after the fixed two steps (outside the solver's tested
    # domain, e.g. sigma > 5 or t > 10, two steps may not reach the stated accuracy).
    b_fin, vega_fin = _black_and_vega(x, s)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        step = np.abs(b_fin - beta) / vega_fin
        # the residual itself is known to a few ulps of the price: that part is rounding, not convergence
        noise = (16.0 * _EPS) * np.maximum(beta, b_fin) / vega_fin
        # near the upper bound b_max = e^{x/2} the same correction from the complements, which are accurate:
        # b_max - b(s) = e^{x/2} N(-(h + t)) + e^{-x/2} N(h - t) (h = x / s, t = s / 2)
        upper = np.flatnonzero(b_fin > 0.5 * b_max)
        if upper.size:
            xu, su = x[upper], s[upper]
            gap = np.exp(0.5 * xu) * ndtr(-(xu / su + 0.5 * su)) + np.exp(-0.5 * xu) * ndtr(xu / su - 0.5 * su)
            step[upper] = np.abs(np.log((b_max[upper] - beta[upper]) / gap)) * gap / vega_fin[upper]
            # b_max - beta carries the price's rounding: eps b_max absolute
            noise[upper] = (16.0 * _EPS) * b_max[upper] / (b_max[upper] - beta[upper]) * gap / vega_fin[upper]
    # outside the tested domain nothing is put down to rounding: the correction itself must be below tolerance
    noise[(sigma > TESTED_SIGMA * (1.0 + 1e-6)) | (t > TESTED_T * (1.0 + 1e-12))] = 0.0
    unconverged = ~lost & ~(step <= CONVERGENCE_REL_TOL * s + noise)
    j = np.flatnonzero(lost | unconverged)
    if j.size:
        sigma[j] = np.nan
    iv = np.full(status.shape, np.nan)
    iv[jdx] = sigma
    status[jdx[np.flatnonzero(lost)]] = VEGA_TOO_SMALL
    status[jdx[np.flatnonzero(unconverged)]] = NOT_CONVERGED
    return iv, status


def implied_volatility_with_status(
    price: ArrayLike, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, is_call: ArrayLike,
    discount: ArrayLike = 1.0,
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


def implied_volatility(price: ArrayLike, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, is_call: ArrayLike,
                       discount: ArrayLike = 1.0) -> np.ndarray:
    """Black-76 implied volatility (decimal), NaN where the price cannot be inverted.

    Same arguments as :func:`implied_volatility_with_status`; use that function to learn why a value is NaN.
    """
    return implied_volatility_with_status(price, forward, strike, t, is_call, discount)[0]
