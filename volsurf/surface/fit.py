"""Arbitrage-free implied-volatility surface: a market-consistent layer, a parametric layer and a query API.

Normalisation
-------------
Per expiry (time ``t`` in years, forward ``F``, discount ``D``) quotes are moved to normalised call prices
``c = C / (D F)`` at ``k = K / F``; out-of-the-money puts by parity ``C = P + D (F - K)``, i.e.
``c = P / (D F) + 1 - k``. Static no-arbitrage is then: ``c`` decreasing and convex in ``k`` with slopes in
``[-1, 0]``, ``max(1 - k, 0) <= c <= 1`` (butterfly), and ``c(k)`` non-decreasing in ``t`` at fixed ``k``
(calendar, for proportional carry).

Market-consistent layer (the one volsurf uses downstream)
--------------------------------------------------------
Per expiry, a cubic B-spline ``c(k)`` on one clamped knot vector shared by all expiries (breakpoints
``0.3 s_min`` apart at the money, 10% wider per step outwards in log-moneyness, over a domain ``[k_lo, k_hi]``
covering every quote), solved as a convex QP with Clarabel, expiries from the shortest to the longest:

- hard constraints on the coefficients, sufficient for the whole curve: the slope coefficients are
  non-decreasing (convex), the first ``>= -1`` and the last ``<= 0``; ``c(k_lo) >= 1 - k_lo``,
  ``c(k_lo) <= 1``, ``c(k_hi) >= 0``; the chord to ``(0, 1)`` lies below the left tangent (a convex extension
  to ``k = 0`` exists); and ``a >= a_prev`` coefficientwise against the previous expiry, which gives
  ``c >= c_prev`` because B-splines are non-negative (no calendar arbitrage). When that floor pushes liquid
  quotes out of their band, it falls back to the expiry before (where only this expiry has quotes, or
  everywhere); a backward pass then caps the earlier expiries (``a_i <= a_{i+1}``), so every pair is
  calendar-free at the end;
- soft constraints: each quote's bid/ask band with an L1 slack penalised heavily (the fit stays inside the band
  wherever the quotes and the constraints allow it; slack > 0 marks a quote inconsistent with no-arbitrage);
  zero-bid quotes give only an upper bound; beyond the quotes, raw-SVI prices with a +-2 vol point band act as
  weak pseudo-quotes, so the spline *is* the arbitrage-free blend of market and parametric layers at the seam;
- objective: squared distance to mids in half-spread units + a roughness penalty on the differences of the
  slope coefficients, scaled by ``s^3`` (``s`` the ATM standard deviation ``sigma sqrt(t)``) so that it is
  scale-free across maturities.

See ``docs/surface.md`` for the full rules and measured figures.

Performance: everything of the QP that depends only on the shared knot vector (convexity and slope rows,
price bounds, chord, roughness, the sparsity pattern of the objective) is built once per fit; each QP is
assembled directly in CSC form from per-quote basis values (a vectorized Cox-de Boor pass), so Clarabel's
solves dominate. The parametric layer (raw SVI in chunks, eSSVI, its diagnostics) runs in one worker thread
while the QPs run (Clarabel releases the GIL); results do not depend on that overlap
(``benchmarks/bench_surface.py`` prints the per-stage times).

Parametric layer (:mod:`volsurf.surface.svi`)
-------------------------------------
Raw SVI per expiry (spread-weighted quasi-explicit fit, Durrleman- and Lee-checked, flags) and an eSSVI surface
free of calendar arbitrage. Raw SVI supplies the beyond-the-quotes pseudo-quotes; eSSVI answers queries outside
the domain ``[k_lo, k_hi]`` and, with the market layer, beyond the last expiry.

Interpolation in time (query API)
---------------------------------
Linear in total implied variance at fixed ``k = K / F(t)``: ``w_t = w_a + lam max(w_b - w_a, 0)``,
``lam = (t - t_a) / (t_b - t_a)``, ``c_t = Black(k, w_t)``. A smile that does not depend on maturity is reproduced
exactly. Calendar: ``c_a <= c_b`` gives ``w_a <= w_b``, so ``w_t`` is non-decreasing in ``t``. Butterfly: checked
on the cache grid per query time; the rare concave stretches are bridged by the lower convex envelope (which
keeps the calendar order). Before the first expiry ``w_a = 0`` at ``t = 0``; after the last one
``w_b = max(w_last, w_eSSVI(T_far))`` at ``T_far = 2 t_last``, and beyond ``T_far`` ``max(c_far, c_eSSVI(t))``.
The forward and the discount factor are interpolated log-linearly in ``t`` (flat carry and rate between expiries).

Query cache: per slice, lazily, the market-layer IV on a grid of about 1,600 points in ``ln k`` (one solve),
answered by a cubic spline; exact solves only next to the edge of the identifiable region. Queries between
expiries reuse the two slices' caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr

from volsurf.errors import DataError, ParameterError
from volsurf.surface.svi import (
    ESSVIFit,
    SVIFit,
    SVIParams,
    calibrate_essvi,
    calibrate_svi_many,
    essvi_total_variance,
)

SEVEN_DAYS = 7.0 / 365.0

# QP weights. The band penalty dwarfs the tracking term (<= 1 per quote inside the band), so quotes leave
# their band only when no-arbitrage forces it.
_BAND_PENALTY = 1000.0
_UPPER_ONLY_PENALTY = 100.0
_PSEUDO_WEIGHT = 0.05
_PSEUDO_PENALTY = 1.0
_PSEUDO_VOL_BAND = 0.02
_HS_FLOOR = 1e-6  # normalised price: floor of a band's half-width (QP conditioning)
_INSIDE_TOL = 1e-3  # share of the half-spread tolerated as "inside" (solver precision)
_ARB_TOL = 1e-9  # normalised price; tolerance of the dense-grid arbitrage diagnostics
_T_MATCH = 1e-12  # years: a query time this close to a slice's time is that slice
_CACHE_POINTS = 1600  # size of the per-slice IV cache grid over the domain
_CURV_TOL = 1e-6  # normalised price per unit k^2: concavity that triggers the butterfly fix between slices
_FLOOR_MARGIN = 0.5  # ATM standard deviations: the previous slice's quoted range counts this much wider
_TV_MIN = 1e-12  # normalised time value below which a cached vol is not used by the interpolation in time


@dataclass(frozen=True)
class ExpiryQuotes:
    """Quotes of one expiry.

    Attributes
    ----------
    t : float
        Time to expiry, years.
    forward : float
        Forward price (index points / dollars).
    discount : float
        Discount factor to expiry.
    strike, is_call, bid, ask : arrays
        One entry per contract; premiums in points. ``bid <= 0`` or NaN means no bid.
    label : str
        Expiry label for reports (e.g. ``2026-09-18 SPX``).
    """

    t: float
    forward: float
    discount: float
    strike: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    label: str = ""


@dataclass(frozen=True)
class LayerDiagnostics:
    """Fit quality of one layer on one expiry (liquid quotes: OTM, bid > 0).

    Attributes
    ----------
    rmse_vol_pts : float
        RMS of fitted IV minus mid IV, in vol points (1 = 0.01 decimal vol).
    inside_share : float
        Share of liquid quotes whose fitted price (equivalently IV) lies inside the bid/ask band.
    n_liquid : int
        Number of liquid quotes.
    butterfly_violations : int
        Points of a dense strike grid where the fitted call price is not convex/monotone/in bounds.
    calendar_violations : int
        Points of the dense grid where this slice's normalised call price is below the previous slice's.
    """

    rmse_vol_pts: float
    inside_share: float
    n_liquid: int
    butterfly_violations: int
    calendar_violations: int


@dataclass(frozen=True)
class SliceFit:
    """Everything about one fitted expiry (what a chart needs).

    Per-quote arrays (all OTM quotes with an ask, sorted by strike): ``strike``, ``k`` (= K/F), ``is_call``,
    ``bid``, ``ask`` (premiums), ``liquid`` (bid > 0), ``iv_bid``, ``iv_mid``, ``iv_ask`` (market, decimal),
    ``iv_mc``, ``iv_svi``, ``iv_essvi`` (fitted), ``inside_mc``, ``inside_svi``, ``arb_inconsistent`` (the
    market layer had to leave the band: the quote conflicts with no-arbitrage given its neighbours).
    Spline: ``knots`` (clamped cubic knot vector in k, shared by all slices), ``coef`` (B-spline coefficients of
    c); ``quoted_range`` (k range of the liquid quotes). ``mc``, ``svi``, ``essvi``: :class:`LayerDiagnostics`. ``svi_fit``: :class:`SVIFit`.
    ``raw_butterfly_violations``: triples/pairs of quotes whose bid/ask bands alone violate convexity,
    monotonicity or bounds. ``raw_calendar_violations``: quotes whose ask is below the previous expiry's bid
    (interpolated at the same k).
    """

    label: str
    t: float
    forward: float
    discount: float
    strike: np.ndarray
    k: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    liquid: np.ndarray
    iv_bid: np.ndarray
    iv_mid: np.ndarray
    iv_ask: np.ndarray
    iv_mc: np.ndarray
    iv_svi: np.ndarray
    iv_essvi: np.ndarray
    inside_mc: np.ndarray
    inside_svi: np.ndarray
    arb_inconsistent: np.ndarray
    knots: np.ndarray
    coef: np.ndarray
    quoted_range: tuple[float, float]
    svi_fit: SVIFit
    mc: LayerDiagnostics
    svi: LayerDiagnostics
    essvi: LayerDiagnostics
    raw_butterfly_violations: int
    raw_calendar_violations: int
    atm_total_variance: float

    def call_normalised(self, k) -> np.ndarray:
        """Market-layer ``c(k) = C / (D F)`` at ``k = K / F`` (inside the knot range; clipped outside)."""
        return _bspline_eval(self.knots, self.coef, np.asarray(k, dtype=float))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (parameters and diagnostics, no per-quote arrays)."""
        return {
            "label": self.label,
            "t": self.t,
            "forward": self.forward,
            "discount": self.discount,
            "quoted_k_range": list(self.quoted_range),
            "atm_iv": float(np.sqrt(self.atm_total_variance / self.t)),
            "svi": {**self.svi_fit.params.as_dict(), "g_min": self.svi_fit.g_min, "flags": list(self.svi_fit.flags)},
            "mc": self.mc.__dict__,
            "svi_diag": self.svi.__dict__,
            "essvi_diag": self.essvi.__dict__,
            "raw_butterfly_violations": self.raw_butterfly_violations,
            "raw_calendar_violations": self.raw_calendar_violations,
            "arb_inconsistent_quotes": int(np.count_nonzero(self.arb_inconsistent)),
        }


# ------------------------------------------------------------------------------------------- splines


def _common_knots(k_dom: tuple[float, float], s_min: float) -> np.ndarray:
    """Clamped cubic knot vector (in ``k``) shared by all expiries.

    Breakpoints are spaced ``0.3 s_min`` apart at the money (``s_min``: the smallest ATM standard deviation
    of the chain) and 10% wider at each step outwards in log-moneyness, out to the domain ends.
    """
    x_lo, x_hi = np.log(k_dom[0]), np.log(k_dom[1])
    step = max(0.3 * s_min, 2e-4)
    n_max = 400
    offs = step * (1.1 ** np.arange(n_max) - 1.0) / 0.1
    right = offs[offs < x_hi][1:]
    left = -offs[offs < -x_lo][1:]
    x = np.concatenate([[x_lo], left[::-1], [0.0], right, [x_hi]])
    b = np.exp(np.unique(x))
    return np.concatenate([[b[0]] * 3, b, [b[-1]] * 3])


def _basis4(knots: np.ndarray, x) -> tuple[np.ndarray, np.ndarray]:
    """The four non-zero cubic B-splines at ``x`` (clipped to the knot range): values ``(N, 4)`` and the index
    of the first one ``(N,)``. Cox-de Boor recursion (Piegl-Tiller A2.2), vectorized over the points: one
    pass replaces a sparse design matrix (whose construction costs far more than the arithmetic)."""
    n = knots.size - 4
    xc = np.clip(np.asarray(x, dtype=float).ravel(), knots[0], knots[-1])
    i = np.clip(np.searchsorted(knots, xc, side="right") - 1, 3, n - 1)
    vals = np.zeros((xc.size, 4))
    vals[:, 0] = 1.0
    left = [None] + [xc - knots[i + 1 - j] for j in (1, 2, 3)]
    right = [None] + [knots[i + j] - xc for j in (1, 2, 3)]
    for j in (1, 2, 3):
        saved = np.zeros(xc.size)
        for r in range(j):
            # denominators span the non-empty interval [knots[i], knots[i + 1]]: never zero
            temp = vals[:, r] / (right[r + 1] + left[j - r])
            vals[:, r] = saved + right[r + 1] * temp
            saved = left[j - r] * temp
        vals[:, j] = saved
    return vals, i - 3


_FOUR = np.arange(4)


def _bspline_eval(knots: np.ndarray, coef: np.ndarray, x) -> np.ndarray:
    """Value of the cubic B-spline at ``x`` (clipped to the knot range; NaN stays NaN)."""
    x = np.asarray(x, dtype=float)
    vals, first = _basis4(knots, x)
    out = np.einsum("ij,ij->i", vals, np.asarray(coef, dtype=float)[first[:, None] + _FOUR])
    return out.reshape(x.shape)


def _slope_matrix(knots: np.ndarray) -> np.ndarray:
    """Rows giving the B-spline coefficients of ``c'`` (quadratic): ``3 (a_j - a_{j-1}) / (t_{j+3} - t_j)``."""
    n = knots.size - 4
    j = np.arange(1, n)
    w = 3.0 / (knots[j + 3] - knots[j])
    out = np.zeros((n - 1, n))
    out[j - 1, j - 1] = -w
    out[j - 1, j] = w
    return out


# ------------------------------------------------------------------------------------------- helpers


def _bs_call_norm(k, w) -> np.ndarray:
    """Normalised Black call ``c(k, w)`` for ``k = K/F`` and total variance ``w``."""
    k = np.asarray(k, dtype=float)
    s = np.sqrt(np.maximum(np.asarray(w, dtype=float), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = -np.log(k) / s + 0.5 * s
    out = ndtr(d1) - k * ndtr(d1 - s)
    return np.where(s > 0, out, np.maximum(1.0 - k, 0.0))


def _iv_norm(c, k, t) -> np.ndarray:
    """Implied vol of normalised call prices (NaN where not identifiable)."""
    from volsurf.pricing.iv import implied_volatility

    c = np.asarray(c, dtype=float)
    k = np.broadcast_to(np.asarray(k, dtype=float), c.shape)
    return implied_volatility(c, np.ones_like(c), k, np.full(c.shape, float(t)), np.ones(c.shape, dtype=bool), 1.0)


def _iv_quotes(price, forward, strike, t, is_call, discount) -> np.ndarray:
    from volsurf.pricing.iv import implied_volatility

    with np.errstate(invalid="ignore"):
        p = np.where(np.asarray(price) > 0, price, np.nan)
    return implied_volatility(p, forward, strike, t, is_call, discount)


def _lower_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the vertices of the lower convex hull of points with strictly increasing ``x``
    (Andrew's monotone chain; a loop over a grid, only run on the rare curves that need the butterfly fix)."""
    hull: list[int] = []
    for i in range(x.size):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b when it lies on or above the chord from a to i
            if (y[b] - y[a]) * (x[i] - x[a]) >= (y[i] - y[a]) * (x[b] - x[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return np.array(hull)


def _dense_arbitrage(c: np.ndarray, k: np.ndarray, tol: float) -> int:
    """Count butterfly / monotonicity / bound violations of normalised calls ``c`` on an increasing grid ``k``."""
    dk = np.diff(k)
    slope = np.diff(c) / dk
    bad = int(np.count_nonzero(np.diff(slope) < -tol / np.minimum(dk[1:], dk[:-1])))
    bad += int(np.count_nonzero(slope > tol / dk) + np.count_nonzero(slope < -1.0 - tol / dk))
    bad += int(np.count_nonzero(c < np.maximum(1.0 - k, 0.0) - tol) + np.count_nonzero(c > 1.0 + tol))
    return bad


# ------------------------------------------------------------------------------------------- prepare


@dataclass
class _Prep:
    q: ExpiryQuotes
    strike: np.ndarray
    k: np.ndarray
    is_call: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    liquid: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    iv_bid: np.ndarray
    iv_mid: np.ndarray
    iv_ask: np.ndarray
    atm_w: float
    svi: SVIFit | None = None
    extra: dict = field(default_factory=dict)


def _prepare(q: ExpiryQuotes, min_quotes: int) -> _Prep | str:
    """OTM quotes of one expiry as normalised call-equivalent bands (IVs are filled in later, in one batch)."""
    if not (q.t > 0 and q.forward > 0 and 0 < q.discount <= 1.5):
        return "bad t/forward/discount"
    strike = np.asarray(q.strike, dtype=float)
    is_call = np.asarray(q.is_call, dtype=bool)
    bid = np.nan_to_num(np.asarray(q.bid, dtype=float), nan=0.0)
    ask = np.asarray(q.ask, dtype=float)
    with np.errstate(invalid="ignore"):
        otm = np.where(is_call, strike >= q.forward, strike < q.forward)
        ok = otm & np.isfinite(ask) & (ask > 0) & (bid <= ask) & np.isfinite(strike) & (strike > 0)
    o = np.argsort(strike[ok], kind="stable")
    strike, is_call, bid, ask = strike[ok][o], is_call[ok][o], bid[ok][o], ask[ok][o]
    liquid = bid > 0
    if np.count_nonzero(liquid) < min_quotes:
        return f"only {int(np.count_nonzero(liquid))} liquid OTM quotes (< {min_quotes})"
    k = strike / q.forward
    scale = q.discount * q.forward
    parity = np.where(is_call, 0.0, 1.0 - k)
    lo, hi = bid / scale + parity, ask / scale + parity
    nan = np.full(k.size, np.nan)
    return _Prep(q, strike, k, is_call, bid, ask, liquid, lo, hi, nan, nan.copy(), nan.copy(), float("nan"))


def _fill_ivs(preps: list[_Prep], min_quotes: int) -> list[tuple[_Prep, str | None]]:
    """Bid / mid / ask IVs of every quote of every expiry in three vectorized calls; ATM total variance."""
    sizes = [p.k.size for p in preps]
    cat = {
        name: np.concatenate([getattr(p, name) for p in preps]) for name in ("strike", "is_call", "bid", "ask")
    }
    fwd = np.concatenate([np.full(p.k.size, p.q.forward) for p in preps])
    tt = np.concatenate([np.full(p.k.size, p.q.t) for p in preps])
    disc = np.concatenate([np.full(p.k.size, p.q.discount) for p in preps])
    liquid = cat["bid"] > 0
    mid = np.where(liquid, 0.5 * (cat["bid"] + cat["ask"]), np.nan)
    ivs = [_iv_quotes(x, fwd, cat["strike"], tt, cat["is_call"], disc) for x in (cat["bid"], mid, cat["ask"])]
    out = []
    for p, part_b, part_m, part_a in zip(preps, *(np.split(v, np.cumsum(sizes)[:-1]) for v in ivs), strict=True):
        p.iv_bid, p.iv_mid, p.iv_ask = part_b, part_m, part_a
        good = p.liquid & np.isfinite(p.iv_mid)
        if np.count_nonzero(good) < min_quotes:
            out.append((p, f"only {int(np.count_nonzero(good))} quotes with a mid IV (< {min_quotes})"))
            continue
        x = np.log(p.k[good])
        o2 = np.argsort(np.abs(x))[:2]
        o2 = o2[np.argsort(x[o2])]
        atm_iv = float(np.interp(0.0, x[o2], p.iv_mid[good][o2]))
        p.atm_w = atm_iv * atm_iv * p.q.t
        out.append((p, None))
    return out


def _svi_inputs(p: _Prep, max_points: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-moneyness, total variance and spread weights (``1 / spread_w^2``) of the liquid quotes for SVI."""
    good = p.liquid & np.isfinite(p.iv_mid)
    idx = np.flatnonzero(good)
    if idx.size > max_points:  # evenly thinned (keeps both wings): the fit cost is linear in the points
        good = np.zeros_like(good)
        good[idx[np.unique(np.round(np.linspace(0, idx.size - 1, max_points)).astype(int))]] = True
    t = p.q.t
    w = p.iv_mid[good] ** 2 * t
    # spread in total variance; missing bid/ask IV -> use 2 x mid distance, floor at 0.1 vol point
    sp_iv = np.where(np.isfinite(p.iv_ask[good]) & np.isfinite(p.iv_bid[good]), p.iv_ask[good] - p.iv_bid[good], 0.02)
    sp_iv = np.maximum(sp_iv, 1e-3)
    sp_w = 2.0 * p.iv_mid[good] * t * sp_iv
    return np.log(p.k[good]), w, 1.0 / sp_w


# ------------------------------------------------------------------------------------------- QP


_BASIS_CACHE: dict[bytes, dict] = {}


def _basis_cache(knots: np.ndarray) -> dict:
    """Everything of the QP that depends only on the (shared) knot vector, built once per fit.

    ``rough``: dense roughness matrix (banded); ``p_rows`` / ``p_cols`` / ``p_indptr``: CSC pattern of the
    upper band (width 3) of the coefficient block of the objective; ``c_rows`` / ``c_cols`` / ``c_fix`` /
    ``c_s``: the constant constraint rows (convexity, slope bounds, price bounds, chord) with values
    ``c_fix + s c_s``; their right-hand side is ``c_b0 + c_b1 / s`` (``s``: the slice's price scale).
    """
    key = knots.tobytes()
    hit = _BASIS_CACHE.get(key)
    if hit is not None:
        return hit
    n = knots.size - 4
    d1 = _slope_matrix(knots)
    d2 = d1[1:] - d1[:-1]
    gap = 0.5 * (knots[4 : n + 2] - knots[2:n])  # spacing of consecutive slope coefficients
    rough = d2.T @ (d2 / np.maximum(gap, 1e-12)[:, None])
    # upper band of a cubic B-spline Gram matrix: |i - j| <= 3 (the roughness matrix has band 2)
    p_cols = np.concatenate([np.full(min(j, 3) + 1, j) for j in range(n)])
    p_rows = np.concatenate([np.arange(max(0, j - 3), j + 1) for j in range(n)])
    p_indptr = np.concatenate([[0], np.cumsum(np.bincount(p_cols, minlength=n))])
    # constant rows, dense (they touch few columns); A x <= b
    k0 = knots[0]
    first = d1[0][: np.flatnonzero(d1[0])[-1] + 1]
    n_c = d2.shape[0] + 6
    fix, with_s = np.zeros((n_c, n)), np.zeros((n_c, n))
    b0, b1 = np.zeros(n_c), np.zeros(n_c)
    r = d2.shape[0]
    fix[:r] = -d2  # slopes non-decreasing (convex)
    fix[r] = -d1[0]  # first slope >= -1 ...
    b1[r] = 1.0
    fix[r + 1] = d1[-1]  # ... and last slope <= 0 bound all of them
    fix[r + 2, 0], b1[r + 2] = -1.0, -(1.0 - k0)  # c(k0) >= 1 - k0
    fix[r + 3, 0], b1[r + 3] = 1.0, 1.0  # c(k0) <= 1
    fix[r + 4, n - 1] = -1.0  # c(k_end) >= 0
    # chord from (0, 1) below the left tangent: a convex extension to k = 0 exists
    with_s[r + 5, 0] = 1.0
    with_s[r + 5, : first.size] -= k0 * first
    b0[r + 5] = 1.0
    c_rows, c_cols = np.nonzero((fix != 0) | (with_s != 0))
    out = {
        "n": n,
        "rough": rough,
        "p_rows": p_rows.astype(np.int32),
        "p_cols": p_cols,
        "p_indptr": p_indptr.astype(np.int32),
        "c_rows": c_rows,
        "c_cols": c_cols,
        "c_fix": fix[c_rows, c_cols],
        "c_s": with_s[c_rows, c_cols],
        "c_b0": b0,
        "c_b1": b1,
        "n_c": n_c,
        "brk": np.unique(knots),
    }
    _BASIS_CACHE.clear()  # one surface at a time
    _BASIS_CACHE[key] = out
    return out


def _csc(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sp.csc_matrix:
    """CSC matrix from unique (row, col) entries: one sort instead of scipy's COO checks and conversions."""
    o = np.argsort(cols * shape[0] + rows, kind="stable")
    indptr = np.zeros(shape[1] + 1, dtype=np.int32)
    np.cumsum(np.bincount(cols, minlength=shape[1]), out=indptr[1:])
    return sp.csc_matrix((vals[o], rows[o].astype(np.int32), indptr), shape=shape)


def _floor_mask(knots: np.ndarray, prev_range: tuple[float, float], cur_range: tuple[float, float]) -> np.ndarray:
    """Coefficients that keep the previous slice's floor ``a_j >= a_prev_j`` when the full floor fails.

    All of them, except where this slice has quotes and the previous one has none: there the previous slice's
    curve is its own extrapolation (SVI pseudo-quotes), and this slice's data must not be pushed out of its band
    by it. Support of coefficient ``j``: ``[knots[j], knots[j + 4]]``; "has quotes" means the support meets the
    liquid quoted range (the previous slice's widened by ``_FLOOR_MARGIN`` ATM standard deviations)."""
    n = knots.size - 4
    lo, hi = knots[:n], knots[4 : n + 4]
    p_lo, p_hi = prev_range
    meets_prev = (hi >= p_lo) & (lo <= p_hi)
    meets_cur = (hi >= cur_range[0]) & (lo <= cur_range[1])
    return meets_prev | ~meets_cur


def _fit_slice(p: _Prep, knots: np.ndarray, prev: dict | None, prev2: dict | None = None, *, roughness: float,
               max_quotes: int, rounds: int = 3) -> dict:
    """Market-layer QP of one slice on the common B-spline basis, with lazily added quote constraints.

    Arbitrage-freeness is imposed on the coefficients, which is sufficient for the whole curve: the slope
    coefficients lie in ``[-1, 0]`` and are non-decreasing (``c'`` is a convex combination of them, ``c''`` a
    non-negative combination of their differences), and, against the previous expiry on the same basis,
    ``a_j >= a_prev_j`` implies ``c >= c_prev`` everywhere (B-splines are non-negative). If that floor pushes
    liquid quotes out of their band, it falls back to ``prev2`` where only this slice has quotes
    (:func:`_floor_mask`), or everywhere; :func:`_calendar_backward` then makes the previous slice yield.
    Only a thinned set of quotes enters the first QP; quotes that
    end up outside their band are added and the QP is solved again.
    """
    s_atm = float(np.sqrt(max(p.atm_w, 1e-8)))
    lo_q, hi_q = float(p.k[p.liquid].min()), float(p.k[p.liquid].max())
    use = (p.k >= lo_q) & (p.k <= hi_q)  # liquid quotes and zero-bid upper bounds inside the liquid range
    kq = p.k[use]
    liquid = p.liquid[use]
    lo = np.where(liquid, p.lo[use], np.maximum(1.0 - kq, 0.0))
    hi = p.hi[use]
    # everything that does not change between rounds: basis at the quotes, pseudo-quotes from raw SVI
    # beyond the quotes (at every third breakpoint) and their basis
    bas = _basis_cache(knots)
    brk = bas["brk"]
    kp = brk[((brk < lo_q) | (brk > hi_q))][::3]
    t = p.q.t
    w_s = np.maximum(p.svi.params.total_variance(np.log(kp)), 1e-10)
    iv_s = np.sqrt(w_s / t)
    p_lo, p_hi = _bs_call_norm(kp, np.stack([np.maximum(iv_s - _PSEUDO_VOL_BAND, 0.5 * iv_s),
                                             iv_s + _PSEUDO_VOL_BAND]) ** 2 * t)
    p_hi = np.maximum(p_hi, p_lo)
    v_all, f_all = _basis4(knots, np.concatenate([kq, kp]))
    vq, fq, vp, fp = v_all[: kq.size], f_all[: kq.size], v_all[kq.size :], f_all[kq.size :]
    quotes = {"liquid": liquid, "lo": lo, "hi": hi, "v": vq, "f": fq,
              "p_lo": p_lo, "p_hi": p_hi, "p_v": vp, "p_f": fp, "range": (lo_q, hi_q)}
    active = np.zeros(kq.size, dtype=bool)
    active[np.unique(np.round(np.linspace(0, kq.size - 1, min(max_quotes, kq.size))).astype(int))] = True
    floor = mask = None
    if prev is not None:
        floor = prev["coef"]
        mask = np.ones(floor.size, dtype=bool)
    ctx = {"bas": bas, "s_atm": s_atm, "quotes": quotes, "active": active, "use": use,
           "roughness": roughness, "rounds": rounds}
    fit = _solve_slice(knots, ctx, floor, mask, None)
    n_out = int(np.count_nonzero(liquid & (fit["slack"] > _INSIDE_TOL))) if floor is not None else 0
    if n_out:
        # The floor pushes liquid quotes out of their band. Where the previous slice has no quotes its curve is
        # only its own extrapolation: there the floor falls back to the slice before it (``prev2``). If quotes
        # still leave their band and fit better with ``prev2`` alone as the floor, the previous slice is skipped
        # entirely. Either way the previous slice then yields: the backward pass refits it between ``prev2``
        # and this slice, which is feasible because this slice stays above ``prev2``.
        widen = np.exp(_FLOOR_MARGIN * prev["s_atm"])
        p_lo_k, p_hi_k = prev["quoted_range"]
        keep = _floor_mask(knots, (p_lo_k / widen, p_hi_k * widen), (lo_q, hi_q))
        base = None if prev2 is None else prev2["coef"]
        options = [(keep, floor if base is None else np.where(keep, floor, base))]
        options.append((np.zeros_like(keep), base))
        for m, fl in options:
            if m.all():
                continue
            fl_mask = None if fl is None else (m if base is None else np.ones_like(m))
            alt = _solve_slice(knots, {**ctx, "active": ctx["active"].copy()}, fl, fl_mask, None)
            n_alt = int(np.count_nonzero(liquid & (alt["slack"] > _INSIDE_TOL)))
            if n_alt < n_out:
                fit, n_out = alt, n_alt
            if not n_out:
                break
    return fit


def _solve_slice(knots: np.ndarray, ctx: dict, floor: np.ndarray | None, mask: np.ndarray | None,
                 cap: np.ndarray | None) -> dict:
    """The lazy-constraint rounds of one slice's QP (floor ``a >= floor`` on ``mask``, cap ``a <= cap``)."""
    quotes, active = ctx["quotes"], ctx["active"]
    vq, fq, lo, hi = quotes["v"], quotes["f"], quotes["lo"], quotes["hi"]
    hs = np.maximum(0.5 * (hi - lo), _HS_FLOOR)
    fit: dict = {}
    viol = np.zeros(lo.size)
    n_round = 0
    for n_round in range(1, ctx["rounds"] + 1):  # noqa: B007 - reported below
        fit = _fit_slice_qp(ctx["bas"], knots, ctx["s_atm"], floor, mask, cap, quotes, active,
                            roughness=ctx["roughness"])
        c = np.einsum("ij,ij->i", vq, fit["coef"][fq[:, None] + _FOUR])
        viol = np.maximum(np.maximum(lo - c, c - hi), 0.0) / hs
        new = (viol > _INSIDE_TOL) & ~active
        if not np.any(new):
            break
        active |= new
    fit["slack"] = viol
    fit["use"] = ctx["use"]
    fit["n_active"] = int(np.count_nonzero(active))
    fit["rounds"] = n_round
    fit["s_atm"] = ctx["s_atm"]
    fit["ctx"] = ctx
    return fit


def _calendar_backward(knots: np.ndarray, fits: list[dict]) -> int:
    """Restore ``a_i <= a_{i+1}`` where the forward pass let slice ``i + 1`` fall below slice ``i``.

    From the second-longest slice down: a slice whose coefficients exceed the next (final) slice's anywhere is
    refitted between the cap ``a <= a_next`` and the floor ``a >= a_prev`` (where ``a_prev <= a_next``, which the
    forward pass guarantees), so the earlier slice's curve yields to the later slice's quotes. The cap is exact
    after the projection, and the floor keeps the slice before in order, so one refit per offending slice
    suffices. Returns the number of refits."""
    n_refit = 0
    for i in range(len(fits) - 2, -1, -1):
        cap = fits[i + 1]["coef"]
        if not np.any(fits[i]["coef"] > cap):
            continue
        floor = mask = None
        if i > 0:
            floor = fits[i - 1]["coef"]
            mask = floor <= cap
        fits[i] = _solve_slice(knots, fits[i]["ctx"], floor, mask, cap)
        n_refit += 1
    return n_refit


_SETTINGS: list = []


def _clarabel_settings():
    """Clarabel's default settings (full accuracy: the fit must stay inside bands of a few 1e-6), quiet; built
    once (the object is only read by the solver)."""
    if not _SETTINGS:
        import clarabel

        settings = clarabel.DefaultSettings()
        settings.verbose = False
        _SETTINGS.append(settings)
    return _SETTINGS[0]


def _fit_slice_qp(bas: dict, knots, s_atm, floor, mask, cap, quotes: dict, active, *, roughness: float) -> dict:
    """One QP of the market layer: the active quotes plus the pseudo-quotes (see :func:`_fit_slice`).

    Assembled directly in CSC form from the cached knot-only blocks and the per-quote basis values.
    """
    import clarabel

    n = bas["n"]
    liquid = quotes["liquid"][active]
    all_lo = np.concatenate([quotes["lo"][active], quotes["p_lo"]])
    all_hi = np.concatenate([quotes["hi"][active], quotes["p_hi"]])
    v = np.concatenate([quotes["v"][active], quotes["p_v"]])
    f = np.concatenate([quotes["f"][active], quotes["p_f"]])
    n_p = quotes["p_lo"].size
    mid = 0.5 * (all_lo + all_hi)
    # floor the half-width (about a 0.01-point tick on a 7500 index): keeps the QP well conditioned
    hs = np.maximum(0.5 * (all_hi - all_lo), _HS_FLOOR)
    m = mid.size
    weight = np.concatenate([np.where(liquid, 1.0, 0.0), np.full(n_p, _PSEUDO_WEIGHT)])
    penalty = np.concatenate([np.where(liquid, _BAND_PENALTY, _UPPER_ONLY_PENALTY), np.full(n_p, _PSEUDO_PENALTY)])

    # Prices are divided by s (ATM standard deviation) so that time values and spreads are O(1) at every
    # maturity; variables: [a (n coefficients), slack (m)].
    s = s_atm
    cols = f[:, None] + _FOUR  # (m, 4) coefficient index of each basis value
    wq = weight / (hs / s) ** 2
    gram = np.bincount((cols[:, :, None] * n + cols[:, None, :]).ravel(),
                       (wq[:, None, None] * v[:, :, None] * v[:, None, :]).ravel(), minlength=n * n)
    p_a = 2.0 * gram.reshape(n, n) + (2.0 * roughness * s**3) * bas["rough"]
    p_indptr = np.concatenate([bas["p_indptr"], np.full(m, bas["p_indptr"][-1], dtype=np.int32)])
    pmat = sp.csc_matrix((p_a[bas["p_rows"], bas["p_cols"]], bas["p_rows"], p_indptr), shape=(n + m, n + m))
    qvec = np.concatenate([-2.0 * np.bincount(cols.ravel(), (v * (wq * mid / s)[:, None]).ravel(), minlength=n),
                           penalty])

    # Inequalities A x <= b. Rows: c <= hi + hs slack (m), c >= lo - hs slack (m), slack >= 0 (m), the
    # constant rows of the knot vector, then the calendar rows a >= a_prev (same basis).
    ar = np.arange(m)
    r4 = np.repeat(ar, 4)
    n_c = bas["n_c"]
    rows = [r4, ar, m + r4, m + ar, 2 * m + ar, 3 * m + bas["c_rows"]]
    colz = [cols.ravel(), n + ar, cols.ravel(), n + ar, n + ar, bas["c_cols"]]
    vals = [v.ravel(), -hs / s, -v.ravel(), -hs / s, -np.ones(m), bas["c_fix"] + s * bas["c_s"]]
    b_parts = [(mid + hs) / s, -(mid - hs) / s, np.zeros(m), bas["c_b0"] + bas["c_b1"] / s]
    n_rows = 3 * m + n_c
    if floor is not None:
        an = np.flatnonzero(mask)
        rows.append(n_rows + np.arange(an.size))
        colz.append(an)
        vals.append(-np.ones(an.size))
        b_parts.append(-floor[an] / s)
        n_rows += an.size
    if cap is not None:
        an = np.arange(n)
        rows.append(n_rows + an)
        colz.append(an)
        vals.append(np.ones(n))
        b_parts.append(cap / s)
        n_rows += n
    a_mat = _csc(np.concatenate(rows), np.concatenate(colz), np.concatenate(vals), (n_rows, n + m))
    b_vec = np.concatenate(b_parts)
    solver = clarabel.DefaultSolver(pmat, qvec, a_mat, b_vec, [clarabel.NonnegativeConeT(n_rows)],
                                    _clarabel_settings())
    sol = solver.solve()
    a = np.asarray(sol.x)[:n] * s
    a = _project(knots, a, floor, mask, cap)
    return {"coef": a, "status": str(sol.status), "iterations": int(sol.iterations), "quoted_range": quotes["range"]}


def _project(knots: np.ndarray, coef: np.ndarray, floor: np.ndarray | None, mask: np.ndarray | None,
             cap: np.ndarray | None = None) -> np.ndarray:
    """Remove the solver's last-digit constraint residuals so the coefficients satisfy the arbitrage
    conditions exactly: slope coefficients made non-decreasing and clipped to ``[-1, 0]``, coefficients
    re-integrated from the ATM coefficient, lifted to at least ``floor`` on ``mask`` and finally capped at
    ``cap`` coefficientwise. The cap keeps the price bounds and slope bounds exactly (both vectors satisfy them);
    convexity only up to the residual."""
    n = coef.size
    j = np.arange(1, n)
    span = (knots[j + 3] - knots[j]) / 3.0
    slopes = np.diff(coef) / span
    slopes = np.clip(np.maximum.accumulate(slopes), -1.0, 0.0)
    a = int(np.argmin(np.abs(knots[2 : n + 2] - 1.0)))  # coefficient nearest the money (Greville abscissa)
    out = np.concatenate([[0.0], np.cumsum(slopes * span)])
    out = out - out[a] + coef[a]
    # Lifting by a constant keeps slopes and convexity; only residual-sized lifts happen here. With slopes in
    # [-1, 0], c >= 1 - k and c >= 0 hold everywhere once they hold at the two ends.
    lift = max(0.0, (1.0 - knots[0]) - out[0], -out[-1])
    if floor is not None and np.any(mask):
        lift = max(lift, float(np.max((floor - out)[mask])))
    out = out + lift
    return out if cap is None else np.minimum(out, cap)


# ------------------------------------------------------------------------------------------- surface


@dataclass(frozen=True)
class Surface:
    """A fitted surface: slices (market layer + raw SVI), eSSVI, skipped expiries and the query API.

    ``k_domain`` is the strike range (``k = K/F``) where the market layer is defined for every slice.
    """

    slices: tuple[SliceFit, ...]
    essvi_fit: ESSVIFit
    k_domain: tuple[float, float]
    skipped: tuple[tuple[str, float, str], ...]
    timings: dict[str, float]
    solver_status: tuple[str, ...]

    # ---- term structure of forward / discount
    @property
    def t(self) -> np.ndarray:
        """Slice times (years)."""
        return np.array([s.t for s in self.slices])

    def _loglin(self, values: np.ndarray, t: float, through_zero: float | None) -> float:
        ts = self.t
        lv = np.log(values)
        if through_zero is not None:
            ts = np.concatenate([[0.0], ts])
            lv = np.concatenate([[np.log(through_zero)], lv])
        if t <= ts[0]:
            if ts.size == 1:
                return float(values[0])
            rate = (lv[1] - lv[0]) / (ts[1] - ts[0])
            return float(np.exp(lv[0] + rate * (t - ts[0])))
        if t >= ts[-1]:
            if ts.size == 1:
                return float(np.exp(lv[-1]))
            rate = (lv[-1] - lv[-2]) / (ts[-1] - ts[-2])
            return float(np.exp(lv[-1] + rate * (t - ts[-1])))
        return float(np.exp(np.interp(t, ts, lv)))

    def forward(self, t: float) -> float:
        """Forward for time ``t`` (log-linear in ``t`` between expiries, flat carry beyond)."""
        return self._loglin(np.array([s.forward for s in self.slices]), float(t), None)

    def discount(self, t: float) -> float:
        """Discount factor for time ``t`` (``ln D`` linear in ``t`` through ``D(0) = 1``)."""
        return self._loglin(np.array([s.discount for s in self.slices]), float(t), 1.0)

    def __post_init__(self) -> None:
        # Lazily built query caches (per-slice IV grids, per-time butterfly checks). Not a dataclass field: the
        # surface stays frozen and comparable; only these derived, deterministic values are memoised.
        object.__setattr__(self, "_cache", {})

    # ---- prices
    def _far(self) -> float:
        return 2.0 * self.slices[-1].t

    def _essvi_w(self, k: np.ndarray, t: float) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self.essvi_fit.total_variance(np.log(k), t)

    def _essvi_call(self, k: np.ndarray, t: float) -> np.ndarray:
        return _bs_call_norm(k, self._essvi_w(k, t))

    def _slice_index(self, t: float) -> int | None:
        """Index of the slice at time ``t`` (within 1e-12 years), else None."""
        ts = self.t
        i = int(np.argmin(np.abs(ts - t)))
        return i if abs(ts[i] - t) <= _T_MATCH else None

    def _grid(self) -> np.ndarray:
        """Shared cache grid in ``x = ln k``: every knot interval of the market layer cut into equal parts
        (about ``_CACHE_POINTS`` points over the domain). The knots are graded (dense at the money), so is the grid."""
        g = self._cache.get("grid")
        if g is None:
            brk = np.log(np.unique(self.slices[0].knots))
            m = max(4, int(np.ceil(_CACHE_POINTS / (brk.size - 1))))
            frac = np.arange(m) / m
            g = np.concatenate([(brk[:-1, None] + np.diff(brk)[:, None] * frac[None, :]).ravel(), brk[-1:]])
            self._cache["grid"] = g
        return g

    def _slice_cache(self, i: int) -> dict:
        """Slice ``i`` on the cache grid (one exact IV solve): IVs, a cubic spline through their finite part, and
        the total variance used by the time interpolation (``w_fill``: exact where the time value is at least
        ``_TV_MIN``, linear in ``ln k`` beyond the ends of that region and across gaps)."""
        from scipy.interpolate import CubicSpline

        key = ("slice", i)
        hit = self._cache.get(key)
        if hit is None:
            sl = self.slices[i]
            x = self._grid()
            k = np.exp(x)
            c = sl.call_normalised(k)
            iv = _iv_norm(c, k, sl.t)
            fin = np.isfinite(iv)
            # time values below _TV_MIN carry a vol only to a few digits: the spline (and the interpolation in t)
            # uses the nodes above it; beyond them the total variance is extended linearly in ln k with the
            # edge slope (outward-rising, at most Lee's 2), so w stays C1 and the interpolated prices convex
            ok = fin & (c - np.maximum(1.0 - k, 0.0) >= _TV_MIN)
            if np.count_nonzero(ok) < 4:
                ok[:] = False
            spline = CubicSpline(x[ok], iv[ok]) if np.any(ok) else None
            w = iv * iv * sl.t
            if spline is not None:
                xo = x[ok]
                w_fill = np.interp(x, xo, w[ok])  # linear across interior gaps (rare)
                ends = np.array([xo[0], xo[-1]])
                w_ends = w[ok][[0, -1]]
                dw = 2.0 * sl.t * spline(ends) * spline(ends, 1)
                slopes = np.array([np.clip(dw[0], -2.0, 0.0), np.clip(dw[1], 0.0, 2.0)])
                w_fill = np.where(x < ends[0], w_ends[0] + slopes[0] * (x - ends[0]), w_fill)
                w_fill = np.where(x > ends[1], w_ends[1] + slopes[1] * (x - ends[1]), w_fill)
            else:  # no identifiable vol anywhere (degenerate): the slice's ATM total variance, flat
                ends, w_ends, slopes = np.zeros(2), np.full(2, sl.atm_total_variance), np.zeros(2)
                w_fill = np.full(x.size, sl.atm_total_variance)
            hit = {"fin": fin, "spline": spline, "ok": ok, "w_fill": w_fill, "ends": ends, "w_ends": w_ends,
                   "slopes": slopes}
            self._cache[key] = hit
        return hit

    def _locate(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, j, inside)``: ``x = ln k``, the cache-grid interval of each point and whether it is on the grid."""
        g = self._grid()
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(k)
        j = np.clip(np.searchsorted(g, x, side="right") - 1, 0, g.size - 2)
        return x, j, (x >= g[0]) & (x <= g[-1])

    def _slice_iv(self, i: int, k: np.ndarray) -> np.ndarray:
        """Market-layer IV of slice ``i`` at ``k`` (NaN where the price carries no identifiable vol).

        From the slice's cache where both grid neighbours have a finite IV (cubic spline); NaN where neither has
        (the time value is below float precision there); an exact solve elsewhere (outside the grid, or next to
        the edge of the identifiable region)."""
        sc = self._slice_cache(i)
        fin, ok = sc["fin"], sc["ok"]
        x, j, inside = self._locate(k)
        use = inside & ok[j] & ok[j + 1]
        exact = ~use & ~(inside & ~fin[j] & ~fin[j + 1])
        out = np.full(k.shape, np.nan)
        if np.any(use):
            out[use] = sc["spline"](x[use])
        if np.any(exact):
            sl = self.slices[i]
            out[exact] = _iv_norm(sl.call_normalised(k[exact]), k[exact], sl.t)
        return out

    def _slice_w(self, i: int, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Total variance of slice ``i`` for the interpolation in time, and whether it is identifiable there.

        The cubic spline of the IVs inside the identifiable region, ``w_fill`` linearly elsewhere (continuous)."""
        sc = self._slice_cache(i)
        ok = sc["ok"]
        x, j, inside = self._locate(k)
        use = inside & ok[j] & ok[j + 1]
        t = self.slices[i].t
        w = np.interp(x, self._grid(), sc["w_fill"])
        (x0, x1), (w0, w1), (s0, s1) = sc["ends"], sc["w_ends"], sc["slopes"]
        w = np.where(x < x0, w0 + s0 * (x - x0), np.where(x > x1, w1 + s1 * (x - x1), w))
        if np.any(use):
            w[use] = sc["spline"](x[use]) ** 2 * t
        return w, use

    def _bracket(self, t: float):
        """The two curves around ``t`` (not a slice time, ``0 < t <= 2 t_last``) as functions ``k -> (w, ok)``
        (total variance and whether it is identifiable) and the weight ``lam`` of ``w_t = w_a + lam (w_b - w_a)``."""
        ts, sl = self.t, self.slices
        if t < ts[0]:
            return t / ts[0], lambda k: (np.zeros(k.shape), np.ones(k.shape, dtype=bool)), lambda k: self._slice_w(0, k)
        if t > ts[-1]:
            n, tn, far = len(sl) - 1, ts[-1], self._far()

            def w_far(k):
                w, ok = self._slice_w(n, k)
                return np.maximum(w, self._essvi_w(k, far)), ok

            return (t - tn) / (far - tn), lambda k: self._slice_w(n, k), w_far
        i = int(np.searchsorted(ts, t, side="right")) - 1
        return (t - ts[i]) / (ts[i + 1] - ts[i]), lambda k: self._slice_w(i, k), lambda k: self._slice_w(i + 1, k)

    def _interp_w(self, k: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Linear interpolation of total variance at fixed ``k`` (``t`` not a slice time, ``t <= 2 t_last``):
        ``(w, ok)``, ``ok`` where at least one bracketing curve has an identifiable vol."""
        lam, fa, fb = self._bracket(t)
        (wa, oka), (wb, okb) = fa(k), fb(k)
        # max(., 0): cached values of slices that coincide (calendar bound active) must not cross by noise
        return wa + lam * np.maximum(wb - wa, 0.0), oka | okb

    def _between(self, k: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Market-layer ``(w, c)`` at ``k`` for a time ``t`` that is not a slice time (rule in the module docstring).

        ``w`` is NaN where the curve carries no identifiable vol (or on a stretch bridged by the butterfly fix)."""
        if t > self._far():
            w_f, c_f = self._between(k, self._far())
            w_e = self._essvi_w(k, t)
            return np.where(np.isfinite(w_f), np.maximum(w_f, w_e), np.nan), np.maximum(c_f, _bs_call_norm(k, w_e))
        w, ok = self._interp_w(k, t)
        c = _bs_call_norm(k, w)
        w = np.where(ok, w, np.nan)
        fix = self._butterfly_fix(t)
        if fix is not None:  # rare: bridge the non-convex stretches of the interpolated curve
            kg, c_hull, bridged = fix
            _, j, inside = self._locate(k)
            on = bridged[j] & inside
            if np.any(on):
                c[on] = np.interp(k[on], kg, c_hull)
                w[on] = np.nan
        return w, c

    def _butterfly_fix(self, t: float):
        """Butterfly check of the interpolated curve at ``t`` on the cache grid (memoised per ``t``).

        Linear interpolation of total variance between two butterfly-free slices is butterfly-free in practice
        but not in theory. Where the grid prices are not convex (beyond ``_ARB_TOL``), the curve is replaced by
        its lower convex envelope over the offending stretch (``None`` when nothing needs fixing, else
        ``(grid k, envelope prices, bridged-interval mask)``). The envelope is a monotone operator that stays
        above every convex minorant, so calendar order with the neighbouring curves is kept."""
        memo = self._cache.setdefault("bfly", {})
        if t in memo:
            return memo[t]
        if len(memo) > 512:
            memo.clear()
        k = np.exp(self._grid())
        c = _bs_call_norm(k, self._interp_w(k, t)[0])
        out = None
        slope = np.diff(c) / np.diff(k)
        # second divided differences: stricter than the diagnostics' tolerance on any coarser grid, far above
        # the rounding noise of prices near 1 (~1e-16 / dk^2)
        curv = 2.0 * np.diff(slope) / (k[2:] - k[:-2])
        if np.any(curv < -_CURV_TOL) or _dense_arbitrage(c, k, _ARB_TOL):
            hull = _lower_hull(k, c)
            # intervals between consecutive hull vertices that are grid neighbours keep the smooth curve
            bridged = np.ones(k.size - 1, dtype=bool)
            bridged[hull[:-1][np.diff(hull) == 1]] = False
            out = (k, np.interp(k, k[hull], c[hull]), bridged)
        memo[t] = out
        return out

    def call_normalised(self, k, t: float) -> np.ndarray:
        """Normalised call ``C / (D F)`` at ``k = K / F(t)``: market layer inside ``k_domain``, eSSVI outside."""
        k = np.atleast_1d(np.asarray(k, dtype=float))
        t = float(t)
        inside = (k >= self.k_domain[0]) & (k <= self.k_domain[1])
        out = np.empty_like(k)
        if np.any(inside):
            if t <= 0:
                out[inside] = np.maximum(1.0 - k[inside], 0.0)
            else:
                i = self._slice_index(t)
                if i is not None:
                    out[inside] = self.slices[i].call_normalised(k[inside])
                else:
                    out[inside] = self._between(k[inside], t)[1]
        if np.any(~inside):
            out[~inside] = self._essvi_call(k[~inside], t)
        return out

    def call_price(self, strike, t: float) -> np.ndarray:
        """Undiscounted-then-discounted call price ``D F c(K/F)`` (premium points)."""
        f, d = self.forward(t), self.discount(t)
        return d * f * self.call_normalised(np.asarray(strike, dtype=float) / f, t)

    # ---- vols
    def iv_k(self, k, t: float) -> np.ndarray:
        """Implied vol (decimal) at ``k = K / F(t)``; parametric (eSSVI) where the price carries no vol.

        Answered from per-slice caches (see the module docstring); no implied-vol solve per call except next to
        the edge of a slice's identifiable region or where the rare butterfly fix applies."""
        k = np.atleast_1d(np.asarray(k, dtype=float))
        t = float(t)
        if t <= 0:
            raise ParameterError(f"t must be positive, got {t}", hint="pass time to expiry in years")
        inside = (k >= self.k_domain[0]) & (k <= self.k_domain[1])
        iv = np.full(k.shape, np.nan)
        if np.any(inside):
            ki = k[inside]
            i = self._slice_index(t)
            if i is not None:
                iv[inside] = self._slice_iv(i, ki)
            else:
                w, c = self._between(ki, t)
                v = np.sqrt(np.maximum(w, 0.0) / t)
                solve = ~np.isfinite(w) & (c > np.maximum(1.0 - ki, 0.0))
                if np.any(solve):  # bridged by the butterfly fix, or beyond 2 t_last next to the edge
                    v[solve] = _iv_norm(c[solve], ki[solve], t)
                iv[inside] = v
        bad = ~np.isfinite(iv)
        if np.any(bad):
            with np.errstate(divide="ignore", invalid="ignore"):
                iv[bad] = np.sqrt(self._essvi_w(k[bad], t) / t)
        return iv

    def iv(self, strike, t: float) -> np.ndarray:
        """Implied vol (decimal) at ``strike`` (points) and time ``t`` (years)."""
        return self.iv_k(np.asarray(strike, dtype=float) / self.forward(t), t)

    def total_variance(self, strike=None, t: float = 0.0, *, k=None) -> np.ndarray:
        """Total implied variance ``iv^2 t`` at ``strike`` (or at ``k = K/F`` when ``k`` is given)."""
        if (strike is None) == (k is None):
            raise ParameterError("give exactly one of strike or k", hint="total_variance(strike, t) or (k=..., t=...)")
        kk = np.asarray(k, dtype=float) if k is not None else np.asarray(strike, dtype=float) / self.forward(t)
        return self.iv_k(kk, t) ** 2 * float(t)

    def iv_at_delta(self, delta, t: float, is_call: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Implied vol and strike at an undiscounted forward delta (call ``N(d1)``, put ``N(d1) - 1``).

        Returns ``(iv, strike)``. Solved on a grid of standardised moneyness then refined (secant).
        """
        d = np.atleast_1d(np.asarray(delta, dtype=float))
        target = d if is_call else d + 1.0
        if np.any((target <= 0) | (target >= 1)):
            raise ParameterError("delta out of range", hint="calls: 0 < delta < 1, puts: -1 < delta < 0")
        t = float(t)
        f = self.forward(t)
        s0 = float(np.sqrt(max(self.total_variance(k=np.array([1.0]), t=t)[0], 1e-10)))
        x = np.linspace(-12.0, 8.0, 401) * s0
        iv = self.iv_k(np.exp(x), t)
        st = iv * np.sqrt(t)
        nd1 = ndtr(-x / st + 0.5 * st)  # decreasing in x for arbitrage-free smiles
        ok = np.isfinite(nd1)
        xs, ns = x[ok][::-1], nd1[ok][::-1]
        x0 = np.interp(target, ns, xs)
        for _ in range(3):  # secant refine on the exact smile
            h = 1e-4 * s0
            v0, v1 = self.iv_k(np.exp(x0), t), self.iv_k(np.exp(x0 + h), t)
            g0 = ndtr(-x0 / (v0 * np.sqrt(t)) + 0.5 * v0 * np.sqrt(t)) - target
            g1 = ndtr(-(x0 + h) / (v1 * np.sqrt(t)) + 0.5 * v1 * np.sqrt(t)) - target
            slope = (g1 - g0) / h
            x0 = np.where(np.abs(slope) > 1e-12, x0 - g0 / np.where(slope == 0, 1.0, slope), x0)
        return self.iv_k(np.exp(x0), t), f * np.exp(x0)

    # ---- reports
    def summary(self, min_t: float = SEVEN_DAYS) -> dict[str, Any]:
        """Medians over slices with ``t >= min_t`` of RMSE (vol pts) and inside-band share, per layer."""
        sel = [s for s in self.slices if s.t >= min_t]

        def med(layer: str, attr: str) -> float:
            vals = [getattr(getattr(s, layer), attr) for s in sel]
            vals = [v for v in vals if np.isfinite(v)]
            return float(np.median(vals)) if vals else float("nan")

        return {
            "n_slices": len(self.slices),
            "n_slices_min_t": len(sel),
            "skipped": [list(x) for x in self.skipped],
            **{
                f"{layer}_{attr}": med(layer, attr)
                for layer in ("mc", "svi", "essvi")
                for attr in ("rmse_vol_pts", "inside_share")
            },
            "mc_butterfly_violations": int(sum(s.mc.butterfly_violations for s in self.slices)),
            "mc_calendar_violations": int(sum(s.mc.calendar_violations for s in self.slices)),
            "raw_butterfly_violations": int(sum(s.raw_butterfly_violations for s in self.slices)),
            "raw_calendar_violations": int(sum(s.raw_calendar_violations for s in self.slices)),
            "timings": dict(self.timings),
        }


def _layer_diag(p: _Prep, c_fit: np.ndarray, iv_fit: np.ndarray, bfly: int, cal: int) -> LayerDiagnostics:
    liq = p.liquid
    hs = 0.5 * (p.hi - p.lo)
    tol = _INSIDE_TOL * hs + 1e-12
    inside = (c_fit >= p.lo - tol) & (c_fit <= p.hi + tol)
    err = (iv_fit - p.iv_mid)[liq]
    err = err[np.isfinite(err)]
    rmse = float(np.sqrt(np.mean(err * err)) * 100.0) if err.size else float("nan")
    n = int(np.count_nonzero(liq))
    return LayerDiagnostics(rmse, float(np.mean(inside[liq])) if n else float("nan"), n, bfly, cal)


def _raw_butterfly(p: _Prep) -> int:
    """Quote-level arbitrage: pairs/triples of liquid quotes whose bands alone violate no-arbitrage."""
    liq = p.liquid
    k, lo, hi = p.k[liq], p.lo[liq], p.hi[liq]
    if k.size < 3:
        return 0
    dk = np.diff(k)
    mono = np.count_nonzero((lo[1:] > hi[:-1]) & (dk > 0))  # call price rising with strike
    steep = np.count_nonzero(hi[1:] - lo[:-1] < -dk)  # slope below -1
    lam = (k[2:] - k[1:-1]) / np.maximum(k[2:] - k[:-2], 1e-300)
    conv = np.count_nonzero(lo[1:-1] > lam * hi[:-2] + (1.0 - lam) * hi[2:])
    bounds = np.count_nonzero((hi < np.maximum(1.0 - k, 0.0)) | (lo > 1.0))
    return int(mono + steep + conv + bounds)


_PARALLEL = True  # fit the parametric layer in a worker thread, overlapping the market-layer QPs
_PIPELINE_SVI = True  # raw SVI in chunks, so that the QPs start before every SVI fit is done


class _InlineExecutor:
    """Stand-in for a thread pool that runs each job at submission (``_PARALLEL = False``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, fn, *args):
        from concurrent.futures import Future

        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # re-raised by result(), as from a thread pool
            fut.set_exception(e)
        return fut


def _svi_chunks(n: int, first: int = 3) -> list[tuple[int, int]]:
    """Slice ranges ``[a, b)`` of growing size (3, 6, 12, ..., the rest) for the pipelined raw-SVI fits."""
    out, a, size = [], 0, first
    while a < n:
        b = n if n - a < 2 * size else a + size
        out.append((a, b))
        a, size = b, 2 * size
    return out


def _fit_svi_chunk(preps: list[_Prep]) -> float:
    """Raw SVI of some slices (stored in ``p.svi``); returns the time taken (s)."""
    import time

    t0 = time.perf_counter()
    inputs = [_svi_inputs(p) for p in preps]
    fits = calibrate_svi_many([x[0] for x in inputs], [x[1] for x in inputs], [x[2] for x in inputs])
    for p, f in zip(preps, fits, strict=True):
        p.svi = f
    return time.perf_counter() - t0


def _parametric_layer(preps: list[_Prep], k_dense: np.ndarray) -> tuple[ESSVIFit, list[dict], float, float]:
    """eSSVI (after every raw-SVI fit) and the diagnostics of both parametric layers, which do not involve
    the market layer: ``(essvi, per-slice dicts, eSSVI time, diagnostics time)``."""
    import time

    t0 = time.perf_counter()
    ts = np.array([p.q.t for p in preps])
    # total variance must not fall with t at the money
    theta = np.array([max(p.svi.params.total_variance(0.0), 1e-8) for p in preps])
    ks, ws, wts = [], [], []
    for p in preps:
        good = p.liquid & np.isfinite(p.iv_mid)
        idx = np.flatnonzero(good)
        if idx.size > 60:  # evenly thinned, as for raw SVI
            good = np.zeros_like(good)
            good[idx[np.unique(np.round(np.linspace(0, idx.size - 1, 60)).astype(int))]] = True
        ks.append(np.log(p.k[good]))
        ws.append(p.iv_mid[good] ** 2 * p.q.t)
        sp_iv = np.where(
            np.isfinite(p.iv_ask[good]) & np.isfinite(p.iv_bid[good]), p.iv_ask[good] - p.iv_bid[good], 0.02
        )
        wts.append(1.0 / (2.0 * p.iv_mid[good] * p.q.t * np.maximum(sp_iv, 1e-3)) ** 2)
    essvi = calibrate_essvi(ts, ks, ws, wts, theta)
    t1 = time.perf_counter()

    out = []
    x_dense = np.log(k_dense)
    prev_p = None
    for p in preps:
        t = p.q.t
        x = np.log(p.k)
        w_svi = p.svi.params.total_variance(x)
        c_svi = _bs_call_norm(p.k, w_svi)
        iv_svi = np.sqrt(np.maximum(w_svi, 0.0) / t)
        w_e = essvi_total_variance(x, *essvi.params_at(t))
        c_e = _bs_call_norm(p.k, w_e)
        iv_e = np.sqrt(w_e / t)
        c_svi_dense = _bs_call_norm(k_dense, p.svi.params.total_variance(x_dense))
        bfly_svi = _dense_arbitrage(c_svi_dense, k_dense, _ARB_TOL)
        hs = 0.5 * (p.hi - p.lo)
        raw_cal = 0
        if prev_p is not None:
            liq_prev = prev_p.liquid
            kp, bp = prev_p.k[liq_prev], prev_p.lo[liq_prev]
            inside_prev = p.liquid & (p.k >= kp.min()) & (p.k <= kp.max())
            raw_cal = int(np.count_nonzero(p.hi[inside_prev] < np.interp(p.k[inside_prev], kp, bp) - 1e-12))
        out.append({
            "iv_svi": iv_svi,
            "iv_essvi": iv_e,
            "svi": _layer_diag(p, c_svi, iv_svi, bfly_svi, 0),
            "essvi": _layer_diag(p, c_e, iv_e, 0, 0),
            "inside_svi": (c_svi >= p.lo - _INSIDE_TOL * hs) & (c_svi <= p.hi + _INSIDE_TOL * hs),
            "raw_butterfly": _raw_butterfly(p),
            "raw_calendar": raw_cal,
        })
        prev_p = p
    return essvi, out, t1 - t0, time.perf_counter() - t1


def _market_diagnostics(preps: list[_Prep], fits: list[dict], knots: np.ndarray, k_dense: np.ndarray) -> list[dict]:
    """Market-layer prices, IVs and diagnostics per slice (IVs of every quote and ATM point in one call)."""
    from volsurf.pricing.iv import implied_volatility

    c_all = [_bspline_eval(knots, fit["coef"], np.append(p.k, 1.0)) for p, fit in zip(preps, fits, strict=True)]
    cc = np.concatenate(c_all)
    kk = np.concatenate([np.append(p.k, 1.0) for p in preps])
    tt = np.concatenate([np.full(p.k.size + 1, p.q.t) for p in preps])
    iv_all = np.split(implied_volatility(cc, np.ones_like(cc), kk, tt, np.ones(cc.size, dtype=bool), 1.0),
                      np.cumsum([p.k.size + 1 for p in preps])[:-1])
    # every slice on the dense grid at once: one basis evaluation, one gather
    vals, first = _basis4(knots, k_dense)
    coefs = np.stack([fit["coef"] for fit in fits])
    c_dense_all = np.einsum("ij,sij->si", vals, coefs[:, first[:, None] + _FOUR])
    out = []
    prev_c = None
    for p, fit, c_ext, iv_ext, c_dense in zip(preps, fits, c_all, iv_all, c_dense_all, strict=True):
        c_mc, iv_mc = c_ext[:-1], iv_ext[:-1]
        bfly = _dense_arbitrage(c_dense, k_dense, _ARB_TOL)
        cal = 0 if prev_c is None else int(np.count_nonzero(c_dense < prev_c - _ARB_TOL))
        hs = 0.5 * (p.hi - p.lo)
        slack = np.zeros(p.k.size)
        slack[fit["use"]] = fit["slack"]
        atm_iv = iv_ext[-1]
        out.append({
            "iv_mc": iv_mc,
            "diag": _layer_diag(p, c_mc, iv_mc, bfly, cal),
            "arb_bad": p.liquid & (slack > 1e-3),
            "inside_mc": (c_mc >= p.lo - _INSIDE_TOL * hs - 1e-12) & (c_mc <= p.hi + _INSIDE_TOL * hs + 1e-12),
            "atm_w": float(atm_iv**2 * p.q.t) if np.isfinite(atm_iv) else p.atm_w,
        })
        prev_c = c_dense
    return out


def fit_surface(
    expiries: Sequence[ExpiryQuotes],
    *,
    min_quotes: int = 5,
    max_quotes: int = 100,
    roughness: float = 1e-3,
    dense_points: int = 400,
) -> Surface:
    """Fit both layers to a chain and return the :class:`Surface` (query API + diagnostics).

    Parameters
    ----------
    expiries : sequence of ExpiryQuotes
        One entry per expiry (any order; sorted by ``t``).
    min_quotes : int
        Expiries with fewer liquid OTM quotes (bid > 0) are skipped and listed in ``Surface.skipped``.
    max_quotes : int
        Quotes per expiry in the first QP (evenly thinned); quotes left outside their band are added lazily.
    roughness : float
        Weight of the scale-free roughness penalty of the market layer.
    dense_points : int
        Size of the dense strike grid used for the arbitrage diagnostics.

    Raises
    ------
    DataError
        No expiry has enough quotes.
    """
    import time

    timings = {"prepare": 0.0, "svi": 0.0, "essvi": 0.0, "mc": 0.0, "diagnostics": 0.0}
    t0 = time.perf_counter()
    preps: list[_Prep] = []
    skipped: list[tuple[str, float, str]] = []
    for q in sorted(expiries, key=lambda e: e.t):
        r = _prepare(q, min_quotes)
        if isinstance(r, str):
            skipped.append((q.label, float(q.t), r))
        else:
            preps.append(r)
    if not preps:
        raise DataError("no expiry has enough liquid quotes to fit a surface", hint="check bids/asks and forwards")
    # strictly increasing times (AM/PM of one day are distinct; true duplicates are dropped)
    filled = _fill_ivs(preps, min_quotes) if preps else []
    preps = []
    for p, why in filled:
        if why is None:
            preps.append(p)
        else:
            skipped.append((p.q.label, float(p.q.t), why))
    if not preps:
        raise DataError("no expiry has enough quotes with a mid IV", hint="check bids/asks and forwards")
    uniq: list[_Prep] = []
    for p in preps:
        if uniq and p.q.t <= uniq[-1].q.t:
            skipped.append((p.q.label, float(p.q.t), "same time to expiry as another expiry"))
            continue
        uniq.append(p)
    preps = uniq
    inputs_ready = time.perf_counter()
    timings["prepare"] = inputs_ready - t0

    # common strike domain (k = K/F): the union of quoted ranges with a margin
    k_lo = min(float(p.k[p.liquid].min()) for p in preps)
    k_hi = max(float(p.k[p.liquid].max()) for p in preps)
    k_dom = (max(k_lo * 0.75, 1e-3), k_hi * 1.3)
    s_min = min(float(np.sqrt(p.atm_w)) for p in preps)
    knots = _common_knots(k_dom, s_min)
    k_dense = np.geomspace(k_dom[0], k_dom[1], dense_points)

    # The market layer (sequential QPs; Clarabel releases the GIL while it solves) runs in this thread while
    # one worker fits the parametric layer: raw SVI in chunks of growing size (the QP of a slice needs only
    # that slice's SVI fit, so the QPs start after the first small chunk), then eSSVI and the parametric
    # diagnostics. Results do not depend on the overlap; the stage timings overlap and do not add up.
    bounds = _svi_chunks(len(preps)) if _PARALLEL and _PIPELINE_SVI else [(0, len(preps))]
    chunk_of = np.concatenate([np.full(b - a, i) for i, (a, b) in enumerate(bounds)])
    with (ThreadPoolExecutor(max_workers=1) if _PARALLEL else _InlineExecutor()) as pool:
        svi_jobs = [pool.submit(_fit_svi_chunk, preps[a:b]) for a, b in bounds]
        param_job = pool.submit(_parametric_layer, preps, k_dense)
        t3 = time.perf_counter()
        fits = []
        prev = None
        for i, p in enumerate(preps):
            svi_jobs[chunk_of[i]].result()
            fit = _fit_slice(p, knots, prev, fits[-2] if len(fits) > 1 else None, roughness=roughness,
                             max_quotes=max_quotes)
            fits.append(fit)
            prev = fit
        _calendar_backward(knots, fits)
        t4 = time.perf_counter()
        timings["mc"] = t4 - t3
        mc_diag = _market_diagnostics(preps, fits, knots, k_dense)
        t5 = time.perf_counter()
        essvi, param_diag, t_essvi, t_param = param_job.result()
    timings["svi"] = float(sum(job.result() for job in svi_jobs))
    timings["essvi"] = t_essvi
    timings["diagnostics"] = (t5 - t4) + t_param

    slices = []
    for p, fit, dm, dp in zip(preps, fits, mc_diag, param_diag, strict=True):
        slices.append(
            SliceFit(
                label=p.q.label,
                t=p.q.t,
                forward=p.q.forward,
                discount=p.q.discount,
                strike=p.strike,
                k=p.k,
                is_call=p.is_call,
                bid=p.bid,
                ask=p.ask,
                liquid=p.liquid,
                iv_bid=p.iv_bid,
                iv_mid=p.iv_mid,
                iv_ask=p.iv_ask,
                iv_mc=dm["iv_mc"],
                iv_svi=dp["iv_svi"],
                iv_essvi=dp["iv_essvi"],
                inside_mc=dm["inside_mc"],
                inside_svi=dp["inside_svi"],
                arb_inconsistent=dm["arb_bad"],
                knots=knots,
                coef=fit["coef"],
                quoted_range=fit["quoted_range"],
                svi_fit=p.svi,
                mc=dm["diag"],
                svi=dp["svi"],
                essvi=dp["essvi"],
                raw_butterfly_violations=dp["raw_butterfly"],
                raw_calendar_violations=dp["raw_calendar"],
                atm_total_variance=dm["atm_w"],
            )
        )
    timings["total"] = time.perf_counter() - t0
    return Surface(
        slices=tuple(slices),
        essvi_fit=essvi,
        k_domain=k_dom,
        skipped=tuple(skipped),
        timings=timings,
        solver_status=tuple(f["status"] for f in fits),
    )


def expiry_quotes_from_enriched(enriched, *, min_t: float = 0.0) -> list[ExpiryQuotes]:
    """Per-expiry :class:`ExpiryQuotes` from a :func:`volsurf.pricing.enrich.enrich` result (one per expiry and root)."""
    f = enriched.frame
    f = f.loc[f["t"] > min_t]
    out = []
    for (_, root), g in f.groupby(["expiry", "root"], sort=True):
        out.append(
            ExpiryQuotes(
                t=float(g["t"].iloc[0]),
                forward=float(g["forward"].iloc[0]),
                discount=float(g["discount"].iloc[0]),
                strike=g["strike"].to_numpy(float),
                is_call=(g["type"] == "call").to_numpy(),
                bid=g["bid"].to_numpy(float),
                ask=g["ask"].to_numpy(float),
                label=f"{g['expiry_date'].iloc[0]} {root}",
            )
        )
    return out


__all__ = [
    "ExpiryQuotes",
    "LayerDiagnostics",
    "SVIParams",
    "SliceFit",
    "Surface",
    "expiry_quotes_from_enriched",
    "fit_surface",
]
