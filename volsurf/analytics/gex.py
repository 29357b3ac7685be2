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

The numeric core works on numpy arrays; :func:`gex_report` wires it to an enriched snapshot
(:func:`volsurf.pricing.enrich.enrich`).

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from volsurf.errors import DataError, ParameterError
from volsurf.pricing import black76 as pricing

PCT = 0.01  # a 1% move: GEX is quoted per 1% of spot
DAYS_PER_YEAR = 365.0
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


def gamma_exposure(gamma_spot, open_interest, spot, multiplier=100.0, sign=1.0) -> np.ndarray:
    """Dealer gamma exposure per contract line, USD per 1% move.

    ``sign * gamma_spot * open_interest * multiplier * spot^2 * 0.01`` with ``gamma_spot`` per 1 point of spot.
    """
    g = np.asarray(gamma_spot, dtype=float)
    s = np.asarray(spot, dtype=float)
    return np.asarray(sign, dtype=float) * g * np.asarray(open_interest, dtype=float) * multiplier * s * s * PCT


def delta_exposure(delta_spot, open_interest, spot, multiplier=100.0, sign=1.0) -> np.ndarray:
    """Dealer delta exposure, USD of underlying notional: ``sign * delta_spot * OI * multiplier * spot``."""
    return (
        np.asarray(sign, dtype=float)
        * np.asarray(delta_spot, dtype=float)
        * np.asarray(open_interest, dtype=float)
        * multiplier
        * np.asarray(spot, dtype=float)
    )


def vanna_exposure(vanna_spot, open_interest, spot, multiplier=100.0, sign=1.0) -> np.ndarray:
    """Dealer vanna exposure, USD of delta per +1 vol point: ``sign * vanna_spot * OI * mult * spot * 0.01``.

    ``vanna_spot`` is ``d(spot delta)/d(sigma)`` per 1.00 of decimal vol.
    """
    return delta_exposure(vanna_spot, open_interest, spot, multiplier, sign) * PCT


def charm_exposure(charm_spot, open_interest, spot, multiplier=100.0, sign=1.0) -> np.ndarray:
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


def spot_greeks(spot, forward, strike, t, sigma, is_call, discount=1.0) -> ContractGreeks:
    """Spot greeks with carry held fixed (``F = S c``, ``c = F/S``, ``dF/dS = c``).

    ``gamma`` per 1 point of spot, ``delta`` spot delta, ``vanna`` = d(spot delta)/d(sigma) per 1.00 of vol,
    ``charm`` = change of spot delta per year of passing time with spot, rate and carry held fixed (so the
    forward rolls down the carry curve: ``d(d1)/dtau = (r - q)/(sigma sqrt tau) - d2/(2 tau)``).
    Rows with a non-finite or non-positive ``sigma`` or ``t`` get 0 for every greek (excluded, and counted
    by :func:`gex_report`).
    """
    f = np.asarray(forward, dtype=float)
    s = np.asarray(spot, dtype=float)
    sig = np.asarray(sigma, dtype=float)
    tt = np.asarray(t, dtype=float)
    disc = np.asarray(discount, dtype=float)
    ok = np.isfinite(sig) & (sig > 0) & np.isfinite(tt) & (tt > 0) & np.isfinite(f) & (f > 0)
    # Put harmless values where invalid so no RuntimeWarning is raised; those rows are zeroed below.
    sig_s = np.where(ok, sig, 0.2)
    t_s = np.where(ok, tt, 1.0)
    f_s = np.where(ok, f, strike)
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
    def build(cls, spot: float, forward, strike, t, sigma, discount, weights) -> ProfileModel:
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

    def evaluate(self, spots, combo=None, chunk_elements: int = 2_000_000) -> np.ndarray:
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

    def value(self, spot: float, combo=None) -> float:
        """Exact GEX (USD per 1%) at one spot: the function the flip's root-finder works on."""
        res = self.evaluate(np.array([float(spot)]), combo)
        return float(res[0] if res.ndim == 1 else res[0, 0])


def gex_profile(spots, spot, forward, strike, t, sigma, discount, weights) -> np.ndarray:
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


def by_strike(strike, is_call, gex) -> pd.DataFrame:
    """Call, put and net GEX (USD per 1%) summed per strike (all roots and expiries together), ascending."""
    call = np.asarray(is_call, dtype=bool)
    g = np.nan_to_num(np.asarray(gex, dtype=float))
    strikes, inv = np.unique(np.asarray(strike, dtype=float), return_inverse=True)
    call_gex = np.bincount(inv, weights=np.where(call, g, 0.0), minlength=strikes.size)
    put_gex = np.bincount(inv, weights=np.where(call, 0.0, g), minlength=strikes.size)
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


def find_walls(table: pd.DataFrame) -> Walls:
    """Walls from a :func:`by_strike` table."""

    def pick(col: str) -> tuple[float | None, float | None]:
        vals = table[col].to_numpy(dtype=float)
        if vals.size == 0 or not np.any(vals != 0):
            return None, None
        j = int(np.argmax(np.abs(vals)))
        return float(table["strike"].iloc[j]), float(vals[j])

    (cw, cg), (pw, pg), (aw, ag) = pick("call_gex"), pick("put_gex"), pick("net_gex")
    return Walls(cw, pw, aw, cg, pg, ag)


def expiry_buckets(expiry_dates, trade_date: dt.date) -> np.ndarray:
    """Bucket name (:data:`BUCKETS`) for each expiry date (``YYYY-MM-DD`` strings or dates).

    Precedence: 0dte > this_week > quarterly > monthly > longer. Quarter-ends and monthly dates come from the
    NYSE calendar (last session of Mar/Jun/Sep/Dec; third Friday or the session before a holiday Friday).
    """
    dates = pd.to_datetime(pd.Series(np.asarray(expiry_dates)).astype(str))
    uniq = pd.unique(dates)
    trade = pd.Timestamp(trade_date)
    friday = trade + pd.Timedelta(days=(4 - trade.weekday()) % 7)
    from volsurf.market.calendar import last_trading_day_of_quarter, monthly_expiry

    labels: dict[pd.Timestamp, str] = {}
    # Loop over distinct expiry dates (a few dozen), not over options.
    for d in uniq:
        d = pd.Timestamp(d)
        if d == trade:
            lab = "0dte"
        elif trade < d <= friday:
            lab = "this_week"
        elif d.month % 3 == 0 and d.date() == last_trading_day_of_quarter(d.date()):
            lab = "quarterly"
        elif d.date() == monthly_expiry(d.year, d.month):
            lab = "monthly"
        else:
            lab = "longer"
        labels[d] = lab
    return dates.map(labels).to_numpy(dtype=object)


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


def floor_time(t, floor: float = ONE_BUSINESS_DAY) -> np.ndarray:
    """``max(t, floor)``: the one-business-day 0DTE floor of popular GEX scripts (a robustness variant only)."""
    return np.maximum(np.asarray(t, dtype=float), floor)


# --------------------------------------------------------------------------------------------------------
# Report on an enriched snapshot
# --------------------------------------------------------------------------------------------------------

VolFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def surface_vol(surface: Any) -> VolFunction:
    """Vectorized sticky-strike vol from a fitted surface with a scalar-time ``iv(strike, t)`` query
    (:class:`volsurf.surface.fit.Surface`): one query per distinct time, not per option.

    Options with ``t <= 0`` (or a query the surface refuses) get NaN and are left out of the profile.
    """
    from volsurf.errors import VolsurfError

    def vol(strike, t) -> np.ndarray:
        k = np.asarray(strike, dtype=float)
        tt = np.asarray(t, dtype=float)
        out = np.full(k.shape, np.nan)
        ok = np.isfinite(tt) & (tt > 0) & np.isfinite(k) & (k > 0)
        uniq, inv = np.unique(tt[ok], return_inverse=True)
        idx = np.flatnonzero(ok)
        for j, tj in enumerate(uniq):  # a loop over expiries (tens), not options
            rows = idx[inv == j]
            try:
                out[rows] = np.asarray(surface.iv(k[rows], float(tj)), dtype=float)
            except VolsurfError:
                continue
        return out

    return vol


@dataclass(frozen=True)
class Scenario:
    """One robustness scenario: net GEX at spot (USD per 1%) and flip under an assumption/vol/timing choice."""

    assumption: str
    vol: str
    timing: str
    net_gex: float
    gamma_flip: float | None
    crossings: tuple[float, ...] = ()
    walls: Walls | None = None


@dataclass(frozen=True)
class GexReport:
    """Everything ``volsurf gex`` prints; :meth:`to_dict` is the JSON form (dollars per 1% move)."""

    underlying: str
    trade_date: dt.date
    valuation_time: pd.Timestamp
    spot: float
    assumption: DealerAssumption
    vol_model: str
    expiries: tuple[str, ...]
    totals: dict[str, float]
    vendor: dict[str, Any]
    by_strike: pd.DataFrame
    by_bucket: pd.DataFrame
    walls: Walls
    walls_by_bucket: dict[str, Walls]
    profile_spots: np.ndarray
    profile_net: np.ndarray
    profile_by_bucket: dict[str, np.ndarray]
    flip: FlipResult
    scenarios: tuple[Scenario, ...]
    gamma_flip_range: tuple[float, float] | None
    regime_robust: bool | None
    coverage: dict[str, float]
    profile_time: pd.Timestamp | None = None
    profile_later: np.ndarray | None = None
    flip_later: FlipResult | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def net_gex(self) -> float:
        """Net GEX at spot, USD per 1% move."""
        return self.totals["net_gex"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None by :func:`volsurf.cli.output.to_jsonable`)."""
        w = self.walls
        out: dict[str, Any] = {
            "underlying": self.underlying,
            "trade_date": self.trade_date.isoformat(),
            "valuation_time": self.valuation_time.isoformat(),
            "spot": self.spot,
            "assumption": self.assumption.name,
            "assumption_description": self.assumption.description,
            "vol_model": self.vol_model,
            "expiries": list(self.expiries),
            "units": UNITS,
            **self.totals,
            "gamma_flip": self.flip.flip,
            "gamma_flip_reason": self.flip.reason,
            "gamma_flip_crossings": list(self.flip.crossings),
            "gamma_flip_range": list(self.gamma_flip_range) if self.gamma_flip_range else None,
            "regime_robust": self.regime_robust,
            "call_wall": w.call_wall,
            "put_wall": w.put_wall,
            "largest_abs_gex_strike": w.largest_abs_gex_strike,
            "walls": _walls_dict(w),
            "walls_by_bucket": {k: _walls_dict(v) for k, v in self.walls_by_bucket.items()},
            "vendor_gamma_comparison": self.vendor,
            "coverage": self.coverage,
            "by_bucket": self.by_bucket.to_dict(orient="records"),
            "by_strike": self.by_strike.to_dict(orient="records"),
            "profile": [{"spot": s, "net_gex": g} for s, g in zip(self.profile_spots, self.profile_net, strict=True)],
            "profile_by_bucket": {
                b: [{"spot": s, "net_gex": g} for s, g in zip(self.profile_spots, v, strict=True)]
                for b, v in self.profile_by_bucket.items()
            },
            "robustness": [
                {
                    "assumption": s.assumption,
                    "vol": s.vol,
                    "timing": s.timing,
                    "net_gex": s.net_gex,
                    "gamma_flip": s.gamma_flip,
                    "crossings": list(s.crossings),
                    **(_walls_dict(s.walls) if s.walls is not None else {}),
                }
                for s in self.scenarios
            ],
            "by_assumption": [
                {
                    "assumption": s.assumption,
                    "description": ASSUMPTIONS[s.assumption].description,
                    "net_gex": s.net_gex,
                    "gamma_flip": s.gamma_flip,
                    **(_walls_dict(s.walls) if s.walls is not None else {}),
                }
                for s in self.scenarios
                if s.vol == "mid" and s.timing == "exact"
            ],
            "notes": list(self.notes),
        }
        if self.profile_later is not None and self.profile_time is not None and self.flip_later is not None:
            out["profile_later"] = {
                "valuation_time": self.profile_time.isoformat(),
                "gamma_flip": self.flip_later.flip,
                "gamma_flip_reason": self.flip_later.reason,
                "profile": [
                    {"spot": s, "net_gex": g} for s, g in zip(self.profile_spots, self.profile_later, strict=True)
                ],
            }
        return out


def _walls_dict(w: Walls) -> dict[str, float | None]:
    return {
        "call_wall": w.call_wall,
        "call_wall_gex": w.call_wall_gex,
        "put_wall": w.put_wall,
        "put_wall_gex": w.put_wall_gex,
        "largest_abs_gex_strike": w.largest_abs_gex_strike,
        "largest_abs_gex": w.largest_abs_gex,
    }


def _column(frame: pd.DataFrame, name: str, default: float = np.nan) -> np.ndarray:
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
    return np.full(len(frame), default)


def fill_from_pair(frame: pd.DataFrame, iv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing IVs with the IV of the other type at the same (root, expiry, strike).

    Put-call parity gives a call and a put on the same strike the same Black vol, so the liquid (usually OTM)
    side stands in for an ITM quote that has no bid or trades below intrinsic. Returns the filled IVs and the
    source per row: ``own``, ``pair`` or ``none``.
    """
    iv = np.asarray(iv, dtype=float)
    ok = np.isfinite(iv) & (iv > 0)
    keys = [c for c in ("root", "expiry_date", "strike") if c in frame.columns]
    source = np.where(ok, "own", "none").astype(object)
    if ok.all() or "type" not in frame.columns or not keys:
        return iv, source
    key_df = frame[keys].reset_index(drop=True)
    is_call = (frame["type"].astype(str).str.lower() == "call").to_numpy()
    own = key_df.assign(_call=is_call, _iv=np.where(ok, iv, np.nan))
    # The pair of a row is the row with the same keys and the other type.
    other = own.assign(_call=~own["_call"]).drop(columns="_iv")
    pair_iv = other.merge(own.drop_duplicates([*keys, "_call"]), on=[*keys, "_call"], how="left")["_iv"].to_numpy()
    use = ~ok & np.isfinite(pair_iv)
    source[use] = "pair"
    return np.where(use, pair_iv, iv), source


def end_of_day(valuation_time: pd.Timestamp) -> pd.Timestamp:
    """The next session close at or after ``valuation_time`` strictly later than it (early closes respected).

    During a session: that session's close. After the close, on weekends or holidays: the next session's close.
    """
    from volsurf.market.calendar import nyse

    cal = nyse()
    ts = pd.Timestamp(valuation_time)
    ts = ts.tz_localize("America/New_York") if ts.tzinfo is None else ts
    session = cal.date_to_session(ts.tz_convert("America/New_York").tz_localize(None).normalize(), direction="next")
    close = cal.session_close(session)
    if close <= ts:
        close = cal.session_close(cal.next_session(session))
    return close.tz_convert("America/New_York")


def gex_report(
    enriched: Any,
    *,
    assumption: str | DealerAssumption = DEFAULT_ASSUMPTION,
    expiries: str | Sequence[str] | None = "all",
    vol: VolFunction | None = None,
    width: float = 0.15,
    n_points: int = 401,
    multiplier: float = 100.0,
    later_time: pd.Timestamp | str | None = None,
    robustness: bool = True,
    bucket_profiles: bool = True,
) -> GexReport:
    """Dealer gamma exposure report for an enriched snapshot (:func:`volsurf.pricing.enrich.enrich`).

    Parameters
    ----------
    enriched : EnrichedSnapshot
        ``frame`` with strike, type, expiry_date, open_interest, t (years), forward, discount, iv_bid/mid/ask
        (decimal), vendor_gamma; ``meta`` with spot, trade_date, valuation_time, underlying.
    assumption : str
        Dealer positioning, a key of :data:`ASSUMPTIONS`.
    expiries : str
        ``all`` or a comma list of :data:`BUCKETS`; applies to every figure, the profile and the walls.
    vol : callable, optional
        Sticky-strike vol ``vol(strike, t) -> decimal vol`` (e.g. a fitted ``Surface.iv``). Default: each
        option keeps its own mid IV (flat per option); options without a mid IV are then left out.
    width, n_points : float, int
        Profile grid: ``spot * (1 +/- width)`` with ``n_points`` points.
    multiplier : float
        Contract multiplier when the frame has no ``multiplier`` column (100 for SPX/SPY/NDX/XSP).
    later_time : Timestamp or ``"eod"``, optional
        Also compute the profile at this later valuation time (``"eod"``: the next session close).
    robustness : bool
        Recompute net GEX and the flip under every assumption x {mid, bid, ask} IV (x 0DTE timing when some
        expiry is under one business day away).
    """
    ass = get_assumption(assumption)
    selected = parse_expiry_selection(expiries)
    frame = enriched.frame
    meta = enriched.meta
    spot = float(meta.spot)
    if not (math.isfinite(spot) and spot > 0):
        raise DataError(f"spot {spot} is not a positive number", hint="check the file's header line")
    trade_date = meta.trade_date
    valuation_time = pd.Timestamp(meta.valuation_time)

    buckets_all = expiry_buckets(frame["expiry_date"], trade_date)
    in_sel = np.isin(buckets_all, np.array(selected, dtype=object))
    f = frame.loc[in_sel]
    buckets = buckets_all[in_sel]
    if len(f) == 0:
        raise DataError(
            f"no contracts in the selected expiries ({', '.join(selected)})",
            hint="use --expiries all or another bucket",
        )

    strike = _column(f, "strike")
    is_call = (f["type"].astype(str).str.lower() == "call").to_numpy()
    oi = np.nan_to_num(_column(f, "open_interest"), nan=0.0)
    oi = np.where(oi > 0, oi, 0.0)
    mult = _column(f, "multiplier", multiplier)
    mult = np.where(np.isfinite(mult) & (mult > 0), mult, multiplier)
    t = _column(f, "t")
    fwd = _column(f, "forward")
    disc = np.nan_to_num(_column(f, "discount", 1.0), nan=1.0)
    iv_own = _column(f, "iv_mid")
    iv_mid, iv_source = fill_from_pair(f, iv_own)
    sigma = np.asarray(vol(strike, t), dtype=float) if vol is not None else iv_mid
    sign = ass.signs(is_call)

    greeks = spot_greeks(spot, fwd, strike, t, sigma, is_call, disc)
    usable = np.isfinite(sigma) & (sigma > 0) & np.isfinite(t) & (t > 0) & np.isfinite(fwd)
    gex = gamma_exposure(greeks.gamma, oi, spot, mult, sign)
    dex = delta_exposure(greeks.delta, oi, spot, mult, sign)
    vanna_x = vanna_exposure(greeks.vanna, oi, spot, mult, sign)
    charm_x = charm_exposure(greeks.charm, oi, spot, mult, sign)

    totals = {
        "net_gex": float(gex.sum()),
        "call_gex": float(gex[is_call].sum()),
        "put_gex": float(gex[~is_call].sum()),
        "gross_gex": float(np.abs(gex).sum()),
        "dex": float(dex.sum()),
        "vanna_exposure": float(vanna_x.sum()),
        "charm_exposure": float(charm_x.sum()),
    }
    oi_total = float(oi.sum())
    oi_missing = float(oi[(oi > 0) & ~usable].sum())
    coverage = {
        "contracts": len(f),
        "contracts_with_oi": int(np.count_nonzero(oi > 0)),
        "open_interest": oi_total,
        "open_interest_without_iv": oi_missing,
        "open_interest_without_iv_fraction": oi_missing / oi_total if oi_total > 0 else 0.0,
        "open_interest_iv_from_pair": float(oi[iv_source == "pair"].sum()) if vol is None else 0.0,
    }

    # Vendor comparison: same formula with the file's (rounded) gamma column.
    vg = _column(f, "vendor_gamma")
    has_vg = np.isfinite(vg)
    vendor_gex = gamma_exposure(np.where(has_vg, vg, 0.0), oi, spot, mult, sign)
    vnet = float(vendor_gex.sum())
    rounded_zero = has_vg & (vg == 0) & (greeks.gamma > 0) & (oi > 0)
    vendor = {
        "available": bool(np.any(has_vg & (oi > 0))),
        "net_gex_vendor": vnet if np.any(has_vg) else None,
        "call_gex_vendor": float(vendor_gex[is_call].sum()) if np.any(has_vg) else None,
        "put_gex_vendor": float(vendor_gex[~is_call].sum()) if np.any(has_vg) else None,
        "difference": totals["net_gex"] - vnet if np.any(has_vg) else None,
        "relative_difference": (totals["net_gex"] - vnet) / abs(vnet) if np.any(has_vg) and vnet != 0 else None,
        "rows_vendor_gamma_zero_with_oi": int(np.count_nonzero(rounded_zero)),
        "gex_of_those_rows": float(gex[rounded_zero].sum()),
    }

    table = by_strike(strike, is_call, gex)
    walls = find_walls(table)
    walls_by_bucket = {b: find_walls(by_strike(strike[buckets == b], is_call[buckets == b], gex[buckets == b]))
                       for b in selected if np.any(buckets == b)}
    bucket_rows = []
    for b in selected:
        m = buckets == b
        bucket_rows.append({
            "bucket": b,
            "expiries": int(pd.unique(f["expiry_date"].to_numpy()[m]).size),
            "contracts": int(np.count_nonzero(m)),
            "open_interest": float(oi[m].sum()),
            "call_gex": float(gex[m & is_call].sum()),
            "put_gex": float(gex[m & ~is_call].sum()),
            "net_gex": float(gex[m].sum()),
            "dex": float(dex[m].sum()),
        })
    by_bucket = pd.DataFrame(bucket_rows)

    # Profile: one pass for the chosen assumption, split by bucket in the same pass (columns of W).
    grid = spot_grid(spot, width, n_points)
    weights = sign * oi * mult
    present = [b for b in selected if np.any(buckets == b)] if bucket_profiles else []
    # One column per bucket: the net profile is their sum, so the split costs nothing extra.
    cols = np.column_stack([np.where(buckets == b, weights, 0.0) for b in present]) if present else weights
    model = ProfileModel.build(spot, fwd, strike, t, sigma, disc, cols)
    prof = model.evaluate(grid)
    if present:
        profile_by_bucket = {b: prof[:, j] for j, b in enumerate(present)}
        profile_net = prof.sum(axis=1)
        ones = np.ones(len(present))
    else:
        profile_by_bucket, profile_net, ones = {}, prof, None
    flip = find_gamma_flip(lambda s: model.value(s, ones), grid, profile_net, spot)

    notes: list[str] = []
    if vol is None:
        notes.append(
            "vol sticky-strike, flat per option: each option keeps its mid IV at every spot; an option without a "
            "mid IV (no bid, quote below intrinsic) takes the mid IV of the other type at the same root, expiry "
            "and strike (equal by put-call parity)"
        )
    if oi_missing > 0:
        notes.append(
            f"{coverage['open_interest_without_iv_fraction']:.1%} of open interest has no usable IV and is left out"
        )

    # Later valuation time (e.g. end of day): same grid, t shortened, expired options dropped.
    profile_time = profile_later = flip_later = None
    if later_time is not None:
        profile_time = end_of_day(valuation_time) if str(later_time) == "eod" else pd.Timestamp(later_time)
        dt_years = (profile_time - valuation_time).total_seconds() / 60.0 / 525_600.0
        if dt_years < 0:
            raise ParameterError("later valuation time is before the snapshot's valuation time")
        t2 = t - dt_years
        with np.errstate(divide="ignore", invalid="ignore"):
            # Rate held fixed: D(t') = D(t)^(t'/t).
            disc2 = np.where(t2 > 0, disc ** (np.clip(t2, 0, None) / np.where(t > 0, t, 1.0)), 1.0)
        sigma2 = np.asarray(vol(strike, np.clip(t2, 1e-12, None)), dtype=float) if vol is not None else sigma
        model2 = ProfileModel.build(spot, fwd, strike, np.where(t2 > 0, t2, np.nan), sigma2, disc2, weights)
        profile_later = model2.evaluate(grid)
        flip_later = find_gamma_flip(model2.value, grid, profile_later, spot)

    scenarios: list[Scenario] = []
    flip_range = None
    regime = None
    if robustness:
        # A coarser grid is enough here: it only brackets the crossings, which brentq then refines exactly.
        rgrid = spot_grid(spot, width, min(int(n_points), 101))
        scenarios = _robustness(spot, rgrid, fwd, strike, t, disc, oi * mult, is_call, f, sigma, vol)
        # Range and regime over the data/model variants (bid/mid/ask IV, 0DTE timing) of the chosen assumption:
        # across assumptions the question is degenerate (an assumption and its opposite negate every figure, and
        # dealer_short_all / dealer_long_all fix the sign), so those are reported per assumption instead.
        mine = [s for s in scenarios if s.assumption == ass.name]
        flips = [s.gamma_flip for s in mine if s.gamma_flip is not None]
        flip_range = (min(flips), max(flips)) if flips else None
        regime = len({float(np.sign(s.net_gex)) for s in mine}) == 1

    return GexReport(
        underlying=str(meta.underlying),
        trade_date=trade_date,
        valuation_time=valuation_time,
        spot=spot,
        assumption=ass,
        vol_model="sticky-strike surface" if vol is not None else "sticky-strike flat per-option mid IV",
        expiries=selected,
        totals=totals,
        vendor=vendor,
        by_strike=table,
        by_bucket=by_bucket,
        walls=walls,
        walls_by_bucket=walls_by_bucket,
        profile_spots=grid,
        profile_net=profile_net,
        profile_by_bucket=profile_by_bucket,
        flip=flip,
        scenarios=tuple(scenarios),
        gamma_flip_range=flip_range,
        regime_robust=regime,
        coverage=coverage,
        profile_time=profile_time,
        profile_later=profile_later,
        flip_later=flip_later,
        notes=tuple(notes),
    )


def _robustness(spot, grid, fwd, strike, t, disc, size, is_call, f, sigma_mid, vol) -> list[Scenario]:
    """Net GEX, flip and walls per (assumption, vol, timing).

    One profile pass per (vol, timing) with call and put columns, combined linearly per assumption (the
    profile is linear in the dealer signs).
    """
    vols: dict[str, np.ndarray] = {"mid": sigma_mid}
    if vol is None:
        # Missing bid/ask IV (zero bid, unsolvable ask) falls back to mid so the scenario moves only what is known.
        for side in ("bid", "ask"):
            iv = _column(f, f"iv_{side}")
            vols[side] = np.where(np.isfinite(iv) & (iv > 0), iv, sigma_mid)
    else:
        # With a surface, bid/ask scenarios shift the surface vol by each option's own (bid or ask - mid) IV.
        iv_mid = _column(f, "iv_mid")
        for side in ("bid", "ask"):
            iv = _column(f, f"iv_{side}")
            shift = np.where(np.isfinite(iv) & np.isfinite(iv_mid), iv - iv_mid, 0.0)
            vols[side] = np.clip(sigma_mid + shift, 1e-4, None)
    timings: dict[str, np.ndarray] = {"exact": t}
    # The floor only matters when some position expires within one business day.
    if np.any((t > 0) & (t < ONE_BUSINESS_DAY) & (size > 0)):
        timings["one_business_day_floor"] = np.where(t > 0, floor_time(t), t)
    cp = np.column_stack([np.where(is_call, size, 0.0), np.where(is_call, 0.0, size)])
    out: list[Scenario] = []
    for vname, sig in vols.items():
        for tname, tt in timings.items():
            model = ProfileModel.build(spot, fwd, strike, tt, sig, disc, cp)
            prof = model.evaluate(grid)
            g_spot = spot_greeks(spot, fwd, strike, tt, sig, is_call, disc).gamma
            unsigned = gamma_exposure(g_spot, size, spot, 1.0, 1.0)
            for a in ASSUMPTIONS.values():
                combo = np.array([a.call_sign, a.put_sign])
                values = prof @ combo
                gex = unsigned * a.signs(is_call)
                fr = find_gamma_flip(lambda s, m=model, c=combo: m.value(s, c), grid, values, spot)
                out.append(
                    Scenario(a.name, vname, tname, float(gex.sum()), fr.flip, fr.crossings,
                             find_walls(by_strike(strike, is_call, gex)))
                )
    return out
