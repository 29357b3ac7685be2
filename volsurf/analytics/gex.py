"""Dealer gamma exposure (GEX): per-contract exposure, profile over hypothetical spots, gamma flip, walls.

Units
-----
- **GEX** (gamma exposure): dollars of dealer delta change per 1% move of the underlying,
  ``gamma_spot * open_interest * multiplier * spot^2 * 0.01``, signed by the dealer position (+ = dealers
  long gamma: their hedging buys dips and sells rallies). ``gamma_spot`` is per 1 point of spot and is
  always recomputed from volsurf's own IVs (the vendor's rounded gamma column is used only for comparison).
- **DEX** (delta exposure): dealer delta in dollars of underlying notional, ``delta_spot * OI * mult * spot``.
- **Vanna exposure**: change of the dealer's dollar delta per +1 vol point (0.01 of decimal vol).
- **Charm exposure**: change of the dealer's dollar delta per calendar day of passing time (forward fixed).

Dealer positioning is an explicit assumption (:data:`ASSUMPTIONS`); every result says which one was used.

The numeric core works on numpy arrays; :func:`volsurf.analytics.gex_report.gex_report` wires it to an enriched
snapshot (:func:`volsurf.pricing.enrich.enrich`).

Profile model
-------------
At a hypothetical spot ``S'`` the forward is ``F' = F S'/S`` (carry held fixed) and the vol is sticky-strike:
``sigma = vol(K, t)`` does not move with spot, so it is evaluated once per option. With ``v = sigma sqrt(t)``,
``x = ln(S'/S)`` and ``d1' = ln(F/K)/v + v/2 + x/v``, the exposure of one contract is

    GEX_i(S') = 0.01 S' * w_i * D_i F_i / (S v_i) * n(d1')

(``w_i`` = sign x OI x multiplier), so the whole profile is one ``exp`` per (spot, option) pair followed by a
matrix-vector product -- evaluated in chunks to bound memory.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from volsurf.errors import ParameterError
from volsurf.pricing import black76 as pricing
from volsurf.units import DAYS_PER_YEAR

PCT = 0.01  # a 1% move: GEX is quoted per 1% of spot
ONE_BUSINESS_DAY = 1.0 / 252.0  # the popular 0DTE floor of public GEX scripts (years)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Expiry buckets, in the precedence order used to assign them (a date that is both gets the first).
BUCKETS: tuple[str, ...] = ("0dte", "this_week", "quarterly", "monthly", "longer")
BUCKET_DESCRIPTIONS: dict[str, str] = {
    "0dte": "expires on the trade date",
    "this_week": "expires after the trade date, by the Friday of the trade week",
    "quarterly": "the last NYSE session of March, June, September or December (after this week)",
    "monthly": "the standard monthly: third Friday (the session before it when that Friday is a holiday)",
    "longer": "every other expiry (non-standard weeklies after this week, LEAPS that are not monthly...)",
}

UNITS: dict[str, str] = {
    "gex": "USD per 1% move of the underlying (dealer delta change), + = dealers long gamma",
    "dex": "USD of underlying notional (dealer delta x spot)",
    "vanna_exposure": "USD of dealer delta per +1 vol point (0.01 decimal vol)",
    "charm_exposure": "USD of dealer delta per calendar day of passing time (forward held fixed)",
    "strike": "index points / dollars",
    "spot": "index points / dollars",
}


# --------------------------------------------------------------------------------------------------------
# Dealer positioning
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DealerAssumption:
    """Sign of the dealer position per contract of open interest (+1 long, -1 short) for calls and puts."""

    name: str
    call_sign: float
    put_sign: float
    description: str

    def signs(self, is_call: np.ndarray) -> np.ndarray:
        """Dealer sign per contract (+1.0 / -1.0) for a boolean ``is_call`` array."""
        return np.where(np.asarray(is_call, dtype=bool), self.call_sign, self.put_sign)


ASSUMPTIONS: dict[str, DealerAssumption] = {
    a.name: a
    for a in (
        DealerAssumption(
            "dealer_long_calls_short_puts",
            1.0,
            -1.0,
            "Common public convention (SqueezeMetrics/SpotGamma style): customers overwrite calls (dealers long "
            "calls) and buy puts for protection (dealers short puts).",
        ),
        DealerAssumption(
            "dealer_short_calls_long_puts",
            -1.0,
            1.0,
            "Opposite of the common convention: customers buy calls (speculation, upside chase) and sell puts "
            "(put-writing / yield strategies).",
        ),
        DealerAssumption(
            "dealer_short_all",
            -1.0,
            -1.0,
            "Customers net long options (retail-heavy, hedging demand): dealers short both calls and puts.",
        ),
        DealerAssumption(
            "dealer_long_all",
            1.0,
            1.0,
            "Customers net short options (overwriting and put-writing funds, volatility selling): dealers long "
            "both calls and puts.",
        ),
    )
}
DEFAULT_ASSUMPTION = "dealer_long_calls_short_puts"


def get_assumption(name: str | DealerAssumption) -> DealerAssumption:
    """The :class:`DealerAssumption` called ``name`` (ParameterError listing the choices otherwise)."""
    if isinstance(name, DealerAssumption):
        return name
    try:
        return ASSUMPTIONS[name]
    except KeyError:
        raise ParameterError(
            f"unknown dealer assumption {name!r}", hint=f"choose one of {', '.join(ASSUMPTIONS)}"
        ) from None


# --------------------------------------------------------------------------------------------------------
# Per-contract exposures
# --------------------------------------------------------------------------------------------------------


def gamma_exposure(gamma_spot: ArrayLike, open_interest: ArrayLike, spot: float, multiplier: ArrayLike = 100.0,
                   sign: ArrayLike = 1.0) -> np.ndarray:
    """Dealer gamma exposure per contract line, USD per 1% move.

    ``sign * gamma_spot * open_interest * multiplier * spot^2 * 0.01`` with ``gamma_spot`` per 1 point of spot.
    """
    g = np.asarray(gamma_spot, dtype=float)
    s = np.asarray(spot, dtype=float)
    return np.asarray(sign, dtype=float) * g * np.asarray(open_interest, dtype=float) * multiplier * s * s * PCT


def delta_exposure(delta_spot: ArrayLike, open_interest: ArrayLike, spot: float, multiplier: ArrayLike = 100.0,
                   sign: ArrayLike = 1.0) -> np.ndarray:
    """Dealer delta exposure, USD of underlying notional: ``sign * delta_spot * OI * multiplier * spot``."""
    return (
        np.asarray(sign, dtype=float)
        * np.asarray(delta_spot, dtype=float)
        * np.asarray(open_interest, dtype=float)
        * multiplier
        * np.asarray(spot, dtype=float)
    )


def vanna_exposure(vanna_spot: ArrayLike, open_interest: ArrayLike, spot: float, multiplier: ArrayLike = 100.0,
                   sign: ArrayLike = 1.0) -> np.ndarray:
    """Dealer vanna exposure, USD of delta per +1 vol point: ``sign * vanna_spot * OI * mult * spot * 0.01``.

    ``vanna_spot`` is ``d(spot delta)/d(sigma)`` per 1.00 of decimal vol.
    """
    return delta_exposure(vanna_spot, open_interest, spot, multiplier, sign) * PCT


def charm_exposure(charm_spot: ArrayLike, open_interest: ArrayLike, spot: float, multiplier: ArrayLike = 100.0,
                   sign: ArrayLike = 1.0) -> np.ndarray:
    """Dealer charm exposure, USD of delta per calendar day: ``sign * charm_spot * OI * mult * spot / 365``.

    ``charm_spot`` is the change of spot delta per year of passing time.
    """
    return delta_exposure(charm_spot, open_interest, spot, multiplier, sign) / DAYS_PER_YEAR


@dataclass(frozen=True)
class ContractGreeks:
    """Spot greeks per contract (per 1 point of spot / per 1.00 vol / per year), from Black-76 on the forward."""

    gamma: np.ndarray
    delta: np.ndarray
    vanna: np.ndarray
    charm: np.ndarray


def spot_greeks(spot: float, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike,
                is_call: ArrayLike, discount: ArrayLike = 1.0) -> ContractGreeks:
    """Spot greeks with carry held fixed (``F = S c``, ``c = F/S``, ``dF/dS = c``).

    ``gamma`` per 1 point of spot, ``delta`` spot delta, ``vanna`` = d(spot delta)/d(sigma) per 1.00 of vol,
    ``charm`` = change of spot delta per year of passing time with spot, rate and carry held fixed (so the
    forward rolls down the carry curve: ``d(d1)/dtau = (r - q)/(sigma sqrt tau) - d2/(2 tau)``).
    Rows with a non-finite or non-positive ``sigma`` or ``t`` get 0 for every greek (excluded, and counted
    by :func:`gex_report`).
    """
    ok, s, f_s, t_s, sig_s, disc = _safe_inputs(spot, forward, strike, t, sigma, discount)
    carry = f_s / s
    call = np.asarray(is_call, dtype=bool)
    g = pricing.spot_gamma(s, f_s, strike, t_s, sig_s, disc)
    d = pricing.delta(f_s, strike, t_s, sig_s, call, disc) * carry
    va = pricing.vanna(f_s, strike, t_s, sig_s, disc) * carry
    d1, d2 = pricing.d1_d2(f_s, strike, t_s, sig_s)
    vol_sqrt_t = sig_s * np.sqrt(t_s)
    r_minus_q = np.log(carry) / t_s
    q = -np.log(disc) / t_s - r_minus_q
    n_d1 = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    d_d1_dtau = r_minus_q / vol_sqrt_t - d2 / (2.0 * t_s)
    ch = q * d - disc * carry * n_d1 * d_d1_dtau
    return ContractGreeks(*(np.where(ok, x, 0.0) for x in (g, d, va, ch)))


def _safe_inputs(spot: float, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike,
                 discount: ArrayLike) -> tuple[np.ndarray, ...]:
    """``ok`` (usable sigma, t and forward) and the inputs with harmless values where not ok (so no
    RuntimeWarning is raised; those rows are zeroed by the callers)."""
    f = np.asarray(forward, dtype=float)
    s = np.asarray(spot, dtype=float)
    sig = np.asarray(sigma, dtype=float)
    tt = np.asarray(t, dtype=float)
    disc = np.asarray(discount, dtype=float)
    ok = np.isfinite(sig) & (sig > 0) & np.isfinite(tt) & (tt > 0) & np.isfinite(f) & (f > 0)
    return ok, s, np.where(ok, f, strike), np.where(ok, tt, 1.0), np.where(ok, sig, 0.2), disc


def spot_gamma(spot: float, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike,
               discount: ArrayLike = 1.0) -> np.ndarray:
    """``spot_greeks(...).gamma`` alone (per 1 point of spot; 0 where sigma, t or the forward is unusable)."""
    ok, s, f_s, t_s, sig_s, disc = _safe_inputs(spot, forward, strike, t, sigma, discount)
    return np.where(ok, pricing.spot_gamma(s, f_s, strike, t_s, sig_s, disc), 0.0)


# --------------------------------------------------------------------------------------------------------
# Profile over hypothetical spots
# --------------------------------------------------------------------------------------------------------


def spot_grid(spot: float, width: float = 0.15, n_points: int = 401) -> np.ndarray:
    """Evenly spaced hypothetical spots ``spot * (1 - width) .. spot * (1 + width)`` (``n_points`` >= 2)."""
    if not (0.0 < width < 1.0):
        raise ParameterError(f"profile width {width} is outside (0, 1)", hint="use e.g. 0.15 for +/-15%")
    if n_points < 2:
        raise ParameterError(f"profile needs at least 2 points, got {n_points}", hint="use e.g. 401")
    return np.linspace(spot * (1.0 - width), spot * (1.0 + width), int(n_points))


# |d1| beyond this makes n(d1) < 1e-300: such (spot, option) pairs are skipped (exactly nothing is lost) and
# exp() never produces the denormals that slow it down tenfold.
_D1_CUTOFF = 37.0


@dataclass(frozen=True)
class ProfileModel:
    """Per-option constants of the GEX profile (see the module docstring); build with :meth:`build`.

    ``a = ln(F/K)/v + v/2``, ``b = 1/v`` and the weights ``W = weights * D F / (S v) / sqrt(2 pi)`` for the
    options with a usable vol and time and a non-zero weight; ``index`` maps them back to the input rows.
    """

    spot: float
    a: np.ndarray
    b: np.ndarray
    w: np.ndarray
    index: np.ndarray
    squeeze: bool

    @classmethod
    def build(cls, spot: float, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike,
              discount: ArrayLike, weights: ArrayLike) -> ProfileModel:
        """Precompute the profile constants.

        ``weights`` (``sign * OI * multiplier``) has shape ``(n,)`` or ``(n, k)`` for k weightings evaluated in
        the same pass (e.g. calls and puts, or one column per expiry bucket). Options with unusable vol/time
        or zero weight contribute nothing and are dropped here.
        """
        f, k, tt, sig, disc = np.broadcast_arrays(
            *(np.asarray(x, dtype=float) for x in (forward, strike, t, sigma, discount))
        )
        wts = np.asarray(weights, dtype=float)
        squeeze = wts.ndim == 1
        wts = wts.reshape(f.size, -1)
        # NaN open interest means "no position", not "unknown profile".
        wts = np.where(np.isfinite(wts), wts, 0.0)
        ok = (
            np.isfinite(sig) & (sig > 0) & np.isfinite(tt) & (tt > 0)
            & np.isfinite(f) & (f > 0) & np.isfinite(k) & (k > 0) & np.isfinite(disc)
            & np.any(wts != 0, axis=1)
        )
        idx = np.flatnonzero(ok)
        v = sig[idx] * np.sqrt(tt[idx])
        a = np.log(f[idx] / k[idx]) / v + 0.5 * v
        c = disc[idx] * f[idx] / (spot * v) * _INV_SQRT_2PI
        return cls(spot=float(spot), a=a, b=1.0 / v, w=wts[idx] * c[:, None], index=idx, squeeze=squeeze)

    def evaluate(self, spots: ArrayLike, combo: ArrayLike | None = None, chunk_elements: int = 2_000_000) -> np.ndarray:
        """GEX (USD per 1%) at each spot in ``spots``.

        Returns ``(m, k)`` for k weight columns, ``(m,)`` when the weights were 1-D or when ``combo`` (a length-k
        vector) combines the columns linearly, e.g. ``(+1, -1)`` on (call, put) columns for an assumption.
        Work is chunked over spots so that at most ``chunk_elements`` (spot, option) values are held at a time
        (16 MB at the default), and options whose ``|d1|`` exceeds 37 over a chunk's spot range are skipped.
        """
        spots = np.atleast_1d(np.asarray(spots, dtype=float))
        w = self.w if combo is None else self.w @ np.asarray(combo, dtype=float).reshape(-1, 1)
        out = np.zeros((spots.size, w.shape[1]))
        n = self.a.size
        if n > 0 and spots.size > 0:
            x = np.log(spots / self.spot)
            rows = max(1, chunk_elements // n)
            for start in range(0, spots.size, rows):
                xs = x[start : start + rows]
                # d1 is increasing in x (b > 0): an option matters in this chunk when [d_lo, d_hi] meets the cutoff.
                active = (self.a + self.b * xs.min() < _D1_CUTOFF) & (self.a + self.b * xs.max() > -_D1_CUTOFF)
                if not np.any(active):
                    continue
                buf = np.multiply.outer(xs, self.b[active])  # (m, n_active): x / v
                buf += self.a[active]  # d1 at the shifted spot
                np.square(buf, out=buf)
                buf *= -0.5
                np.maximum(buf, -700.0, out=buf)  # keep exp() out of the slow denormal range
                np.exp(buf, out=buf)
                # A 1-row BLAS gemm pays a large threading overhead; einsum is much faster for the root-finder.
                out[start : start + rows] = np.einsum("ij,jk->ik", buf, w[active]) if len(xs) == 1 else buf @ w[active]
        out *= (PCT * spots)[:, None]
        return out[:, 0] if (self.squeeze or combo is not None) else out

    def combined(self, combo: ArrayLike) -> ProfileModel:
        """The model of one weight column: the columns combined linearly by ``combo`` (as ``evaluate(..., combo)``
        does on every call; for a root-finder that evaluates one combination many times)."""
        w = self.w @ np.asarray(combo, dtype=float).reshape(-1, 1)
        return replace(self, w=w, squeeze=True)

    def value(self, spot: float, combo: ArrayLike | None = None) -> float:
        """Exact GEX (USD per 1%) at one spot: the function the flip's root-finder works on."""
        res = self.evaluate(np.array([float(spot)]), combo)
        return float(res[0] if res.ndim == 1 else res[0, 0])


def gex_profile(spots: ArrayLike, spot: float, forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike,
                discount: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """Net GEX (USD per 1%) at each hypothetical spot; vol sticky-strike (``sigma`` per option, fixed).

    ``weights`` = dealer sign x open interest x multiplier per option.
    """
    return ProfileModel.build(spot, forward, strike, t, sigma, discount, weights).evaluate(spots)


# --------------------------------------------------------------------------------------------------------
# Gamma flip
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlipResult:
    """Zero crossings of a GEX profile.

    Attributes
    ----------
    flip : float or None
        Crossing closest to the current spot (index points / dollars); None when there is none in range.
    crossings : tuple of float
        Every crossing found on the grid, refined by Brent's method, ascending.
    reason : str or None
        Why ``flip`` is None (sign of the profile over the whole range).
    """

    flip: float | None
    crossings: tuple[float, ...] = ()
    reason: str | None = None


def find_gamma_flip(
    profile_fn: Callable[[float], float], grid: np.ndarray, values: np.ndarray, spot: float, xtol: float = 1e-10
) -> FlipResult:
    """Zero crossings of ``profile_fn`` located from its ``values`` on ``grid``, refined with ``brentq``.

    Every grid interval whose end values have strictly opposite signs is a bracket; an exact zero on a grid
    point counts when its neighbours differ in sign. The flip is the crossing closest to ``spot``.
    """
    grid = np.asarray(grid, dtype=float)
    values = np.asarray(values, dtype=float)
    sgn = np.sign(values)
    roots: list[float] = []
    for j in np.flatnonzero(sgn[:-1] * sgn[1:] < 0):
        lo, hi = float(grid[j]), float(grid[j + 1])
        roots.append(float(brentq(profile_fn, lo, hi, xtol=xtol * max(1.0, abs(spot)), rtol=1e-12)))
    for j in np.flatnonzero(sgn == 0):
        left = sgn[j - 1] if j > 0 else 0.0
        right = sgn[j + 1] if j + 1 < sgn.size else 0.0
        if left * right < 0:
            roots.append(float(grid[j]))
    roots.sort()
    if roots:
        flip = min(roots, key=lambda r: abs(r - spot))
        return FlipResult(flip=flip, crossings=tuple(roots))
    lo, hi = float(grid[0]), float(grid[-1])
    if np.all(sgn >= 0) and np.any(sgn > 0):
        reason = f"net GEX stays positive over {lo:,.2f}..{hi:,.2f}: no crossing in range"
    elif np.all(sgn <= 0) and np.any(sgn < 0):
        reason = f"net GEX stays negative over {lo:,.2f}..{hi:,.2f}: no crossing in range"
    else:
        reason = f"net GEX is zero over {lo:,.2f}..{hi:,.2f} (no open interest with usable IV)"
    return FlipResult(flip=None, crossings=(), reason=reason)


# --------------------------------------------------------------------------------------------------------
# Aggregation: by strike, walls, expiry buckets
# --------------------------------------------------------------------------------------------------------


def strike_totals(strike: ArrayLike, is_call: ArrayLike, gex: ArrayLike,
                  index: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct strikes (ascending) and the call and put GEX (USD per 1%) summed per strike, all roots and
    expiries together; ``index``: ``np.unique(strike, return_inverse=True)`` when already at hand."""
    call = np.asarray(is_call, dtype=bool)
    g = np.nan_to_num(np.asarray(gex, dtype=float))
    strikes, inv = index if index is not None else np.unique(np.asarray(strike, dtype=float), return_inverse=True)
    call_gex = np.bincount(inv, weights=np.where(call, g, 0.0), minlength=strikes.size)
    put_gex = np.bincount(inv, weights=np.where(call, 0.0, g), minlength=strikes.size)
    return strikes, call_gex, put_gex


def by_strike(strike: ArrayLike, is_call: ArrayLike, gex: ArrayLike) -> pd.DataFrame:
    """Call, put and net GEX (USD per 1%) summed per strike (all roots and expiries together), ascending."""
    strikes, call_gex, put_gex = strike_totals(strike, is_call, gex)
    return pd.DataFrame({"strike": strikes, "call_gex": call_gex, "put_gex": put_gex, "net_gex": call_gex + put_gex})


@dataclass(frozen=True)
class Walls:
    """Strikes where gamma concentrates (index points / dollars; None when there is no exposure).

    The call (put) wall is the strike with the largest absolute call (put) GEX, which under the common
    convention is the largest call GEX (most negative put GEX) and does not depend on the dealer sign.
    """

    call_wall: float | None
    put_wall: float | None
    largest_abs_gex_strike: float | None
    call_wall_gex: float | None = None
    put_wall_gex: float | None = None
    largest_abs_gex: float | None = None


def walls_from_totals(strikes: np.ndarray, call_gex: np.ndarray, put_gex: np.ndarray) -> Walls:
    """Walls from per-strike call and put GEX (:func:`strike_totals`); the net is their sum."""

    def pick(vals: np.ndarray) -> tuple[float | None, float | None]:
        if vals.size == 0 or not np.any(vals != 0):
            return None, None
        j = int(np.argmax(np.abs(vals)))
        return float(strikes[j]), float(vals[j])

    (cw, cg), (pw, pg), (aw, ag) = pick(call_gex), pick(put_gex), pick(call_gex + put_gex)
    return Walls(cw, pw, aw, cg, pg, ag)


def find_walls(table: pd.DataFrame) -> Walls:
    """Walls from a :func:`by_strike` table."""
    return walls_from_totals(*(table[c].to_numpy(dtype=float) for c in ("strike", "call_gex", "put_gex")))


def strike_walls(strike: ArrayLike, is_call: ArrayLike, gex: ArrayLike) -> Walls:
    """Walls of per-contract GEX (``find_walls(by_strike(...))`` without the table)."""
    return walls_from_totals(*strike_totals(strike, is_call, gex))


def expiry_buckets(expiry_dates: Any, trade_date: dt.date) -> np.ndarray:
    """Bucket name (:data:`BUCKETS`) for each expiry date (``YYYY-MM-DD`` strings or dates).

    Precedence: 0dte > this_week > quarterly > monthly > longer. Quarter-ends and monthly dates come from the
    NYSE calendar (last session of Mar/Jun/Sep/Dec; third Friday or the session before a holiday Friday).
    """
    from volsurf.market.calendar import monthly_expiry, period_end_sessions

    codes, uniq = pd.factorize(expiry_dates if isinstance(expiry_dates, pd.Series) else np.asarray(expiry_dates))
    days = pd.to_datetime(pd.Index([str(u) for u in uniq])).to_numpy().astype("datetime64[D]")
    trade = np.datetime64(trade_date, "D")
    friday = trade + (4 - pd.Timestamp(trade_date).weekday()) % 7
    months = days.astype("datetime64[M]").astype(np.int64)  # months since 1970-01 (a quarter start)
    quarterly = (months % 3 == 2) & (days == period_end_sessions(days, "quarter"))
    # a few dozen distinct expiry months: the monthly date of each, from the calendar
    monthly_of = {m: np.datetime64(monthly_expiry(1970 + int(m) // 12, int(m) % 12 + 1), "D") for m in set(months)}
    monthly = days == np.array([monthly_of[m] for m in months], dtype="datetime64[D]")
    labels = np.select([days == trade, (days > trade) & (days <= friday), quarterly, monthly],
                       ["0dte", "this_week", "quarterly", "monthly"], "longer").astype(object)
    return labels[codes]


def parse_expiry_selection(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"all"`` or a comma-separated list of bucket names -> tuple of bucket names."""
    if text is None:
        return BUCKETS
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not items or "all" in items:
        return BUCKETS
    bad = [s for s in items if s not in BUCKETS]
    if bad:
        raise ParameterError(
            f"unknown expiry bucket(s) {', '.join(bad)}", hint=f"use all or a comma list of {', '.join(BUCKETS)}"
        )
    return tuple(b for b in BUCKETS if b in items)


def floor_time(t: ArrayLike, floor: float = ONE_BUSINESS_DAY) -> np.ndarray:
    """``max(t, floor)``: the one-business-day 0DTE floor of popular GEX scripts (a robustness variant only)."""
    return np.maximum(np.asarray(t, dtype=float), floor)
