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
from scipy.special import ndtr

from volsurf.errors import ParameterError
from volsurf.surface.model import ARB_TOL, SEVEN_DAYS, SliceFit, bs_call_norm, dense_arbitrage, iv_norm
from volsurf.surface.svi import ESSVIFit
from volsurf.surface.wings import SliceCurves, build_curves

T_MATCH = 1e-12  # years: a query time this close to a slice's time is that slice
CACHE_POINTS = 1600  # size of the per-slice IV cache grid over the domain
CURV_TOL = 1e-6  # normalised price per unit k^2: concavity that triggers the butterfly fix between slices
BRIDGE_MARGIN = 4  # at most this many intervals are added on each side of a stretch bridged by the fix
MAX_STEP = 0.005  # log-moneyness: widest step of the cache grid
WING_MARGIN = 0.25  # log-moneyness beyond the strike domain covered by the default audit/grid range
FIX_STEP = 0.004  # log-moneyness step of the butterfly-check grid beyond the cache grid

WFunction = Callable[[np.ndarray], np.ndarray]


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
    x_range: tuple[float, float] | None = None
    fix_grid: np.ndarray | None = None
    fix_k: np.ndarray | None = None
    fix_w: dict[int, np.ndarray] = field(default_factory=dict)
    query_k: np.ndarray | None = None
    query_w: dict[int, np.ndarray] = field(default_factory=dict)
    curves: SliceCurves | None = None
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
        (about ``CACHE_POINTS`` points over the domain; the knots are graded, dense at the money), with no step
        wider than ``MAX_STEP``."""
        g = self._cache.grid
        if g is None:
            brk = np.log(np.unique(self.slices[0].knots))
            m = max(4, int(np.ceil(CACHE_POINTS / (brk.size - 1))))
            frac = np.arange(m) / m
            g = np.concatenate([(brk[:-1, None] + np.diff(brk)[:, None] * frac[None, :]).ravel(), brk[-1:]])
            # no step wider than MAX_STEP (the graded knots are wide in the far wings): the market region's Hermite
            # interpolant of w is accurate to O(h^4) there too
            fine = np.arange(g[0], g[-1], MAX_STEP)
            g = np.unique(np.concatenate([g, fine[np.abs(fine[:, None] - g[None, :]).min(axis=1) > 0.25 * MAX_STEP]]))
            self._cache.grid = g
        return g

    @property
    def x_range(self) -> tuple[float, float]:
        """Reference log-moneyness range: the strike domain and every quoted strike (zero bids included) of every
        expiry, widened by ``WING_MARGIN`` on both sides (the default audit and grid-export range; the
        continuation is defined beyond it too)."""
        r = self._cache.x_range
        if r is None:
            lo = min(float(np.log(self.k_domain[0])), *(float(np.log(s.k.min())) for s in self.slices if s.k.size))
            hi = max(float(np.log(self.k_domain[1])), *(float(np.log(s.k.max())) for s in self.slices if s.k.size))
            r = (lo - WING_MARGIN, hi + WING_MARGIN)
            self._cache.x_range = r
        return r

    def _fix_grid(self) -> np.ndarray:
        """Grid of the butterfly check between slices: the cache grid plus ``FIX_STEP`` steps out to
        :attr:`x_range`."""
        g = self._cache.fix_grid
        if g is None:
            c = self._grid()
            lo, hi = self.x_range
            g = np.unique(np.concatenate([np.arange(lo, c[0], FIX_STEP), c, np.arange(hi, c[-1], -FIX_STEP)]))
            self._cache.fix_grid = g
        return g

    def curves(self) -> SliceCurves:
        """The per-slice curves of the query API (market region, continuation, calendar order), built once."""
        cv = self._cache.curves
        if cv is None:
            lo, hi = self.x_range
            check = np.union1d(self._fix_grid(), np.arange(lo, hi, 0.5 * FIX_STEP))
            cv = build_curves(self.slices, self.essvi_fit, self._grid(), check)
            self._cache.curves = cv
        return cv

    def _slice_w(self, i: int, k: np.ndarray) -> np.ndarray:
        """Total variance of slice ``i`` at ``k`` (:class:`~volsurf.surface.wings.SliceCurves`); memoised per slice
        on the butterfly-check grid (every time between two expiries checks the same grid)."""
        cache = self._cache
        # the surface's own arrays (never handed out): the butterfly-check grid, and the strike grid of an
        # ongoing iv_and_call_grid call
        memo = cache.fix_w if k is cache.fix_k else (cache.query_w if k is cache.query_k else None)
        if memo is not None and i in memo:
            return memo[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(k)
        w = self.curves().w(i, x)
        if memo is not None:
            memo[i] = w
        return w

    def _bracket(self, t: float) -> tuple[float, WFunction, WFunction]:
        """The two curves around ``t`` (not a slice time, ``0 < t <= 2 t_last``) as functions ``k -> w`` and the
        weight ``lam`` of ``w_t = w_a + lam (w_b - w_a)``."""
        ts, sl = self.t, self.slices
        if t < ts[0]:
            return t / ts[0], lambda k: np.zeros(k.shape), lambda k: self._slice_w(0, k)
        if t > ts[-1]:
            n, tn, far = len(sl) - 1, ts[-1], self._far()

            def w_far(k: np.ndarray) -> np.ndarray:
                return np.maximum(self._slice_w(n, k), self._essvi_w(k, far))

            return (t - tn) / (far - tn), lambda k: self._slice_w(n, k), w_far
        i = int(np.searchsorted(ts, t, side="right")) - 1
        return (t - ts[i]) / (ts[i + 1] - ts[i]), lambda k: self._slice_w(i, k), lambda k: self._slice_w(i + 1, k)

    def _interp_w(self, k: np.ndarray, t: float) -> np.ndarray:
        """Linear interpolation of total variance at fixed ``k`` (``t`` not a slice time, ``t <= 2 t_last``)."""
        lam, fa, fb = self._bracket(t)
        wa, wb = fa(k), fb(k)
        # max(., 0): calendar order holds by construction; the guard only absorbs rounding
        return wa + lam * np.maximum(wb - wa, 0.0)

    def _between(self, k: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """``(w, c)`` at ``k`` for a time ``t`` that is not a slice time (rule in the module docstring).

        ``w`` is NaN on a stretch bridged by the butterfly fix (the price is then the convex envelope's)."""
        if t > self._far():
            w_f, c_f = self._between(k, self._far())
            w_e = self._essvi_w(k, t)
            return np.where(np.isfinite(w_f), np.maximum(w_f, w_e), np.nan), np.maximum(c_f, bs_call_norm(k, w_e))
        w = self._interp_w(k, t)
        c = bs_call_norm(k, w)
        fix = self._butterfly_fix(t)
        if fix is not None:  # rare: bridge the non-convex stretches of the interpolated curve
            g = fix.k
            j = np.clip(np.searchsorted(g, k, side="right") - 1, 0, g.size - 2)
            on = fix.bridged[j] & (k >= g[0]) & (k <= g[-1])
            if np.any(on):
                c[on] = np.interp(k[on], g, fix.c_hull)
                # a chord next to a bridged stretch may rise above the later curve by rounding-sized amounts where
                # the two curves coincide (both dominated by one earlier expiry): calendar order caps it
                _, _, fb = self._bracket(t)
                c[on] = np.minimum(c[on], bs_call_norm(k[on], fb(k[on])))
                w = np.where(on, np.nan, w)
        return w, c

    def _butterfly_fix(self, t: float) -> ButterflyFix | None:
        """Butterfly check of the interpolated curve at ``t`` on the fix grid (memoised per ``t``).

        Linear interpolation of total variance between two butterfly-free slices is butterfly-free in practice
        but not in theory. Where the grid prices are not convex (beyond ``ARB_TOL``), the curve is replaced by
        its lower convex envelope over the offending stretch (``None`` when nothing needs fixing). The envelope is
        a monotone operator that stays above every convex minorant, so calendar order with the neighbouring curves
        is kept."""
        memo = self._cache.bfly
        if t in memo:
            return memo[t]
        if len(memo) > 512:
            memo.clear()
        if self._cache.fix_k is None:
            self._cache.fix_k = np.exp(self._fix_grid())
        k = self._cache.fix_k
        c = bs_call_norm(k, self._interp_w(k, t))
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
            c_hull = np.interp(k, k[hull], c[hull])
            for _ in range(BRIDGE_MARGIN):
                if not self._widen_bridges(k, c_hull, bridged, t):
                    break
            out = ButterflyFix(k, c_hull, bridged)
        memo[t] = out
        return out

    def _widen_bridges(self, k: np.ndarray, c_hull: np.ndarray, bridged: np.ndarray, t: float) -> bool:
        """Bridge one more interval where the smooth curve meets a chord with a concave kink (in place).

        At a junction node the smooth curve's one-sided derivative (a difference over ``1e-7 k``) must not exceed
        the chord's slope on the right of a left junction, nor fall below it on the left of a right junction;
        where it does, the smooth interval next to the junction is bridged too. Returns whether any was."""
        left = np.flatnonzero(bridged[1:] & ~bridged[:-1]) + 1  # smooth on [j-1, j], chord on [j, j+1]
        right = np.flatnonzero(bridged[:-1] & ~bridged[1:]) + 1  # chord on [j-1, j], smooth on [j, j+1]
        if left.size + right.size == 0:
            return False
        eps = 1e-7 * k
        kl, kr = k[left], k[right]
        c_near = bs_call_norm(np.concatenate([kl - eps[left], kr + eps[right]]),
                              self._interp_w(np.concatenate([kl - eps[left], kr + eps[right]]), t))
        d_left = (c_hull[left] - c_near[: left.size]) / eps[left]
        chord_right = (c_hull[left + 1] - c_hull[left]) / (k[left + 1] - kl)
        d_right = (c_near[left.size :] - c_hull[right]) / eps[right]
        chord_left = (c_hull[right] - c_hull[right - 1]) / (kr - k[right - 1])
        bad_l = left[d_left > chord_right + 1e-9]
        bad_r = right[d_right < chord_left - 1e-9]
        bridged[bad_l - 1] = True
        bridged[bad_r] = True
        return bool(bad_l.size + bad_r.size)

    def call_normalised(self, k: ArrayLike, t: float) -> np.ndarray:
        """Normalised call ``C / (D F)`` at ``k = K / F(t)`` (``Black(k, w)`` of the query's total variance)."""
        k = np.atleast_1d(np.asarray(k, dtype=float))
        t = float(t)
        if t <= 0:
            return np.maximum(1.0 - k, 0.0)
        i = self._slice_index(t)
        if i is not None:
            return bs_call_norm(k, self._slice_w(i, k))
        return self._between(k, t)[1]

    def call_price(self, strike: ArrayLike, t: float) -> np.ndarray:
        """Undiscounted-then-discounted call price ``D F c(K/F)`` (premium points)."""
        f, d = self.forward(t), self.discount(t)
        return d * f * self.call_normalised(np.asarray(strike, dtype=float) / f, t)

    # ---- vols
    def iv_k(self, k: ArrayLike, t: float) -> np.ndarray:
        """Implied vol (decimal) at ``k = K / F(t)``.

        Answered from the slice curves (see :mod:`volsurf.surface.wings`); an implied-vol solve only on the rare
        stretches bridged by the butterfly fix between slices."""
        k = np.atleast_1d(np.asarray(k, dtype=float))
        i = self._slice_index(float(t)) if float(t) > 0 else None
        if i is not None:  # a listed expiry: no call price needed
            return np.sqrt(np.maximum(self._slice_w(i, k), 0.0) / float(t))
        return self.iv_and_call_k(k, t)[0]

    def iv_and_call_k(self, k: ArrayLike, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Implied vol (decimal) and normalised call ``C / (D F)`` at ``k = K / F(t)`` in one pass (the values of
        :meth:`iv_k` and :meth:`call_normalised`)."""
        k = np.atleast_1d(np.asarray(k, dtype=float))
        t = float(t)
        if t <= 0:
            raise ParameterError(f"t must be positive, got {t}", hint="pass time to expiry in years")
        i = self._slice_index(t)
        if i is not None:
            w_i = self._slice_w(i, k)
            return np.sqrt(np.maximum(w_i, 0.0) / t), bs_call_norm(k, w_i)
        w, c = self._between(k, t)
        v = np.sqrt(np.maximum(w, 0.0) / t)
        solve = ~np.isfinite(w) & (c > np.maximum(1.0 - k, 0.0))
        if np.any(solve):  # bridged by the butterfly fix
            v[solve] = iv_norm(c[solve], k[solve], t)
        # where the envelope's time value is below float precision the curve's own vol stands (the envelope and
        # the curve agree to rounding there)
        lost = ~np.isfinite(v)
        if np.any(lost):
            w_own = self._interp_w(k[lost], min(t, self._far()))
            if t > self._far():
                w_own = np.maximum(w_own, self._essvi_w(k[lost], t))
            v[lost] = np.sqrt(np.maximum(w_own, 0.0) / t)
        return v, c

    def iv_and_call_grid(self, k: ArrayLike, times: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`iv_and_call_k` at every time of ``times`` on one strike grid ``k = K / F(t)``: arrays of shape
        ``(len(times), len(k))``, the same values as one call per time (each expiry's curve is evaluated on the
        grid once, not once per time that uses it)."""
        kk = np.array(np.atleast_1d(np.asarray(k, dtype=float)), dtype=float)  # our own copy
        ts = np.atleast_1d(np.asarray(times, dtype=float))
        iv = np.empty((ts.size, kk.size))
        call = np.empty((ts.size, kk.size))
        self._cache.query_k, self._cache.query_w = kk, {}
        try:
            for r, t in enumerate(ts):  # a loop over times; each is one vectorized query
                iv[r], call[r] = self.iv_and_call_k(kk, float(t))
        finally:
            self._cache.query_k, self._cache.query_w = None, {}
        return iv, call

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
