"""Query API of a fitted surface: prices, implied vols and total variance at any strike and time.

Notes
-----
Interpolation in time is linear in total implied variance at fixed ``k = K / F(t)``:
``w_t = w_a + lam max(w_b - w_a, 0)``, ``lam = (t - t_a) / (t_b - t_a)``, ``c_t = Black(k, w_t)``. A smile that
does not depend on maturity is reproduced exactly. Calendar: ``c_a <= c_b`` gives ``w_a <= w_b``, so ``w_t`` is
non-decreasing in ``t``. Butterfly: checked on the cache grid per query time; the rare concave stretches are
bridged by the lower convex envelope (which keeps the calendar order). Before the first expiry ``w_a = 0`` at
``t = 0``; after the last one ``w_b = max(w_last, w_eSSVI(T_far))`` at ``T_far = 2 t_last``, and beyond ``T_far``
``max(c_far, c_eSSVI(t))``. The forward and the discount factor are interpolated log-linearly in ``t`` (flat carry
and rate between expiries).

Query cache: per slice, lazily, the market-layer IV on a grid of about 1,600 points in ``ln k`` (one solve),
answered by a cubic spline; exact solves only next to the edge of the identifiable region. Queries between
expiries reuse the two slices' caches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.interpolate import CubicSpline
from scipy.special import ndtr

from volsurf.errors import ParameterError
from volsurf.surface.model import ARB_TOL, SEVEN_DAYS, SliceFit, bs_call_norm, dense_arbitrage, iv_norm
from volsurf.surface.svi import ESSVIFit

T_MATCH = 1e-12  # years: a query time this close to a slice's time is that slice
CACHE_POINTS = 1600  # size of the per-slice IV cache grid over the domain
CURV_TOL = 1e-6  # normalised price per unit k^2: concavity that triggers the butterfly fix between slices
TV_MIN = 1e-12  # normalised time value below which a cached vol is not used by the interpolation in time

WFunction = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class SliceCache:
    """One slice on the shared cache grid.

    Attributes
    ----------
    fin : numpy.ndarray
        The grid IV is finite.
    spline : CubicSpline or None
        Cubic spline of the IVs through the identifiable nodes.
    ok : numpy.ndarray
        Identifiable nodes (finite IV and time value at least ``TV_MIN``).
    w_fill : numpy.ndarray
        Total variance on the grid for the interpolation in time (linear beyond the identifiable region).
    ends, w_ends, slopes : numpy.ndarray
        ``ln k`` ends of the identifiable region, the total variance there and the outward slopes ``dw/dx``.
    """

    fin: np.ndarray
    spline: CubicSpline | None
    ok: np.ndarray
    w_fill: np.ndarray
    ends: np.ndarray
    w_ends: np.ndarray
    slopes: np.ndarray


@dataclass(frozen=True)
class ButterflyFix:
    """Lower convex envelope of an interpolated curve on the cache grid: grid ``k``, envelope prices, and which
    grid intervals it bridges."""

    k: np.ndarray
    c_hull: np.ndarray
    bridged: np.ndarray


@dataclass
class QueryCache:
    """Lazily built, deterministic query caches of a :class:`Surface` (grid, per-slice caches, per-time fixes)."""

    grid: np.ndarray | None = None
    slices: dict[int, SliceCache] = field(default_factory=dict)
    bfly: dict[float, ButterflyFix | None] = field(default_factory=dict)


def lower_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
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



def _spline(sc: SliceCache) -> CubicSpline:
    """The slice cache's spline (only asked for where identifiable nodes exist)."""
    if sc.spline is None:
        raise RuntimeError("no identifiable vol on this slice")
    return sc.spline


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
    # Lazily built query caches (per-slice IV grids, per-time butterfly checks): not compared, not in the repr;
    # the surface stays frozen, only these derived, deterministic values are memoised.
    _cache: QueryCache = field(default_factory=QueryCache, init=False, repr=False, compare=False)

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


    # ---- prices
    def _far(self) -> float:
        return 2.0 * self.slices[-1].t

    def _essvi_w(self, k: np.ndarray, t: float) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self.essvi_fit.total_variance(np.log(k), t)

    def _essvi_call(self, k: np.ndarray, t: float) -> np.ndarray:
        return bs_call_norm(k, self._essvi_w(k, t))

    def _slice_index(self, t: float) -> int | None:
        """Index of the slice at time ``t`` (within 1e-12 years), else None."""
        ts = self.t
        i = int(np.argmin(np.abs(ts - t)))
        return i if abs(ts[i] - t) <= T_MATCH else None

    def _grid(self) -> np.ndarray:
        """Shared cache grid in ``x = ln k``: every knot interval of the market layer cut into equal parts
        (about ``CACHE_POINTS`` points over the domain). The knots are graded (dense at the money), so is the grid."""
        g = self._cache.grid
        if g is None:
            brk = np.log(np.unique(self.slices[0].knots))
            m = max(4, int(np.ceil(CACHE_POINTS / (brk.size - 1))))
            frac = np.arange(m) / m
            g = np.concatenate([(brk[:-1, None] + np.diff(brk)[:, None] * frac[None, :]).ravel(), brk[-1:]])
            self._cache.grid = g
        return g

    def _slice_cache(self, i: int) -> SliceCache:
        """Slice ``i`` on the cache grid (one exact IV solve): IVs, a cubic spline through their finite part, and
        the total variance used by the time interpolation (``w_fill``: exact where the time value is at least
        ``TV_MIN``, linear in ``ln k`` beyond the ends of that region and across gaps)."""
        hit = self._cache.slices.get(i)
        if hit is None:
            sl = self.slices[i]
            x = self._grid()
            k = np.exp(x)
            c = sl.call_normalised(k)
            iv = iv_norm(c, k, sl.t)
            fin = np.isfinite(iv)
            # time values below TV_MIN carry a vol only to a few digits: the spline (and the interpolation in t)
            # uses the nodes above it; beyond them the total variance is extended linearly in ln k with the
            # edge slope (outward-rising, at most Lee's 2), so w stays C1 and the interpolated prices convex
            ok = fin & (c - np.maximum(1.0 - k, 0.0) >= TV_MIN)
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
            hit = SliceCache(fin=fin, spline=spline, ok=ok, w_fill=w_fill, ends=ends, w_ends=w_ends, slopes=slopes)
            self._cache.slices[i] = hit
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
        fin, ok = sc.fin, sc.ok
        x, j, inside = self._locate(k)
        use = inside & ok[j] & ok[j + 1]
        exact = ~use & ~(inside & ~fin[j] & ~fin[j + 1])
        out = np.full(k.shape, np.nan)
        if np.any(use):
            out[use] = _spline(sc)(x[use])
        if np.any(exact):
            sl = self.slices[i]
            out[exact] = iv_norm(sl.call_normalised(k[exact]), k[exact], sl.t)
        return out

    def _slice_w(self, i: int, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Total variance of slice ``i`` for the interpolation in time, and whether it is identifiable there.

        The cubic spline of the IVs inside the identifiable region, ``w_fill`` linearly elsewhere (continuous)."""
        sc = self._slice_cache(i)
        ok = sc.ok
        x, j, inside = self._locate(k)
        use = inside & ok[j] & ok[j + 1]
        t = self.slices[i].t
        w = np.interp(x, self._grid(), sc.w_fill)
        (x0, x1), (w0, w1), (s0, s1) = sc.ends, sc.w_ends, sc.slopes
        w = np.where(x < x0, w0 + s0 * (x - x0), np.where(x > x1, w1 + s1 * (x - x1), w))
        if np.any(use):
            w[use] = _spline(sc)(x[use]) ** 2 * t
        return w, use

    def _bracket(self, t: float) -> tuple[float, WFunction, WFunction]:
        """The two curves around ``t`` (not a slice time, ``0 < t <= 2 t_last``) as functions ``k -> (w, ok)``
        (total variance and whether it is identifiable) and the weight ``lam`` of ``w_t = w_a + lam (w_b - w_a)``."""
        ts, sl = self.t, self.slices
        if t < ts[0]:
            return t / ts[0], lambda k: (np.zeros(k.shape), np.ones(k.shape, dtype=bool)), lambda k: self._slice_w(0, k)
        if t > ts[-1]:
            n, tn, far = len(sl) - 1, ts[-1], self._far()

            def w_far(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
            return np.where(np.isfinite(w_f), np.maximum(w_f, w_e), np.nan), np.maximum(c_f, bs_call_norm(k, w_e))
        w, ok = self._interp_w(k, t)
        c = bs_call_norm(k, w)
        w = np.where(ok, w, np.nan)
        fix = self._butterfly_fix(t)
        if fix is not None:  # rare: bridge the non-convex stretches of the interpolated curve
            kg, c_hull, bridged = fix.k, fix.c_hull, fix.bridged
            _, j, inside = self._locate(k)
            on = bridged[j] & inside
            if np.any(on):
                c[on] = np.interp(k[on], kg, c_hull)
                w[on] = np.nan
        return w, c

    def _butterfly_fix(self, t: float) -> ButterflyFix | None:
        """Butterfly check of the interpolated curve at ``t`` on the cache grid (memoised per ``t``).

        Linear interpolation of total variance between two butterfly-free slices is butterfly-free in practice
        but not in theory. Where the grid prices are not convex (beyond ``ARB_TOL``), the curve is replaced by
        its lower convex envelope over the offending stretch (``None`` when nothing needs fixing, else
        ``(grid k, envelope prices, bridged-interval mask)``). The envelope is a monotone operator that stays
        above every convex minorant, so calendar order with the neighbouring curves is kept."""
        memo = self._cache.bfly
        if t in memo:
            return memo[t]
        if len(memo) > 512:
            memo.clear()
        k = np.exp(self._grid())
        c = bs_call_norm(k, self._interp_w(k, t)[0])
        out = None
        slope = np.diff(c) / np.diff(k)
        # second divided differences: stricter than the diagnostics' tolerance on any coarser grid, far above
        # the rounding noise of prices near 1 (~1e-16 / dk^2)
        curv = 2.0 * np.diff(slope) / (k[2:] - k[:-2])
        if np.any(curv < -CURV_TOL) or dense_arbitrage(c, k, ARB_TOL):
            hull = lower_hull(k, c)
            # intervals between consecutive hull vertices that are grid neighbours keep the smooth curve
            bridged = np.ones(k.size - 1, dtype=bool)
            bridged[hull[:-1][np.diff(hull) == 1]] = False
            out = ButterflyFix(k, np.interp(k, k[hull], c[hull]), bridged)
        memo[t] = out
        return out

    def call_normalised(self, k: ArrayLike, t: float) -> np.ndarray:
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

    def call_price(self, strike: ArrayLike, t: float) -> np.ndarray:
        """Undiscounted-then-discounted call price ``D F c(K/F)`` (premium points)."""
        f, d = self.forward(t), self.discount(t)
        return d * f * self.call_normalised(np.asarray(strike, dtype=float) / f, t)

    # ---- vols
    def iv_k(self, k: ArrayLike, t: float) -> np.ndarray:
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
                    v[solve] = iv_norm(c[solve], ki[solve], t)
                iv[inside] = v
        bad = ~np.isfinite(iv)
        if np.any(bad):
            with np.errstate(divide="ignore", invalid="ignore"):
                iv[bad] = np.sqrt(self._essvi_w(k[bad], t) / t)
        return iv

    def iv(self, strike: ArrayLike, t: float) -> np.ndarray:
        """Implied vol (decimal) at ``strike`` (points) and time ``t`` (years)."""
        return self.iv_k(np.asarray(strike, dtype=float) / self.forward(t), t)

    def total_variance(self, strike: ArrayLike | None = None, t: float = 0.0, *, k: ArrayLike | None = None
                       ) -> np.ndarray:
        """Total implied variance ``iv^2 t`` at ``strike`` (or at ``k = K/F`` when ``k`` is given)."""
        if (strike is None) == (k is None):
            raise ParameterError("give exactly one of strike or k", hint="total_variance(strike, t) or (k=..., t=...)")
        kk = np.asarray(k, dtype=float) if k is not None else np.asarray(strike, dtype=float) / self.forward(t)
        return self.iv_k(kk, t) ** 2 * float(t)

    def iv_at_delta(self, delta: ArrayLike, t: float, is_call: bool = True) -> tuple[np.ndarray, np.ndarray]:
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
