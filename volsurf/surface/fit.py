"""Arbitrage-free implied-volatility surface: preparation of the quotes, the fit of both layers and their
diagnostics.

Modules: :mod:`volsurf.surface.basis` (B-splines), :mod:`volsurf.surface.qp` (the market layer's QP),
:mod:`volsurf.surface.query` (the :class:`Surface` query API), :mod:`volsurf.surface.audit` (an independent
arbitrage audit of the query API).

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

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from volsurf.errors import DataError
from volsurf.surface.basis import FOUR, basis4, basis_blocks, common_knots
from volsurf.surface.model import (
    ARB_TOL,
    INSIDE_TOL,
    SEVEN_DAYS,
    ExpiryQuotes,
    LayerDiagnostics,
    PreparedExpiry,
    SliceFit,
    bs_call_norm,
    iv_quotes,
)
from volsurf.surface.qp import (
    QuoteBlock,
    SliceSolution,
    calendar_backward,
    fit_slice,
    quote_blocks,
    warn_unsolved,
)
from volsurf.surface.query import Surface
from volsurf.surface.svi import (
    ESSVIFit,
    SVIParams,
    calibrate_essvi,
    calibrate_svi_many,
    essvi_total_variance,
    svi_total_variance,
)


@dataclass(frozen=True)
class ParametricDiag:
    """Parametric-layer results of one slice: raw-SVI and eSSVI IVs at the quotes, their diagnostics, the
    SVI inside-band flags and the quote-level (raw) arbitrage counts."""

    iv_svi: np.ndarray
    iv_essvi: np.ndarray
    svi: LayerDiagnostics
    essvi: LayerDiagnostics
    inside_svi: np.ndarray
    raw_butterfly: int
    raw_calendar: int


@dataclass(frozen=True)
class MarketDiag:
    """Market-layer results of one slice: IVs at the quotes, diagnostics, quotes the fit had to leave
    (``arb_bad``), inside-band flags and the ATM total variance of the fitted curve."""

    iv_mc: np.ndarray
    diag: LayerDiagnostics
    arb_bad: np.ndarray
    inside_mc: np.ndarray
    atm_w: float


# ------------------------------------------------------------------------------------------- prepare


def _prepare(q: ExpiryQuotes, min_quotes: int) -> PreparedExpiry | str:
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
    return PreparedExpiry(q, strike, k, is_call, bid, ask, liquid, lo, hi, nan, nan.copy(), nan.copy(), float("nan"))


def _fill_ivs(preps: list[PreparedExpiry], min_quotes: int) -> list[tuple[PreparedExpiry, str | None]]:
    """Bid / mid / ask IVs of every quote of every expiry in three vectorized calls; ATM total variance."""
    sizes = [p.k.size for p in preps]
    strike, is_call, bid, ask = (np.concatenate([getattr(p, name) for p in preps])
                                 for name in ("strike", "is_call", "bid", "ask"))
    fwd = np.concatenate([np.full(p.k.size, p.q.forward) for p in preps])
    tt = np.concatenate([np.full(p.k.size, p.q.t) for p in preps])
    disc = np.concatenate([np.full(p.k.size, p.q.discount) for p in preps])
    liquid = bid > 0
    mid = np.where(liquid, 0.5 * (bid + ask), np.nan)
    ivs = [iv_quotes(x, fwd, strike, tt, is_call, disc) for x in (bid, mid, ask)]
    out: list[tuple[PreparedExpiry, str | None]] = []
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


def _svi_inputs(p: PreparedExpiry, max_points: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _layer_diag(p: PreparedExpiry, c_fit: np.ndarray, iv_fit: np.ndarray, bfly: int, cal: int) -> LayerDiagnostics:
    liq = p.liquid
    hs = 0.5 * (p.hi - p.lo)
    tol = INSIDE_TOL * hs + 1e-12
    inside = (c_fit >= p.lo - tol) & (c_fit <= p.hi + tol)
    err = (iv_fit - p.iv_mid)[liq]
    err = err[np.isfinite(err)]
    rmse = float(np.sqrt(np.mean(err * err)) * 100.0) if err.size else float("nan")
    n = int(np.count_nonzero(liq))
    return LayerDiagnostics(rmse, float(np.mean(inside[liq])) if n else float("nan"), n, bfly, cal)


def _raw_butterfly(p: PreparedExpiry) -> int:
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


@dataclass(frozen=True)
class _Stacked:
    """The quotes of every slice concatenated (slice ``i`` is ``[start[i], start[i + 1])``), for elementwise
    diagnostics in one pass."""

    start: np.ndarray
    k: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    liquid: np.ndarray
    iv_mid: np.ndarray
    t: np.ndarray
    hs: np.ndarray

    @staticmethod
    def of(preps: list[PreparedExpiry]) -> _Stacked:
        sizes = np.array([p.k.size for p in preps])
        start = np.concatenate([[0], np.cumsum(sizes)])
        lo = np.concatenate([p.lo for p in preps])
        hi = np.concatenate([p.hi for p in preps])
        return _Stacked(start, np.concatenate([p.k for p in preps]), lo, hi,
                        np.concatenate([p.liquid for p in preps]), np.concatenate([p.iv_mid for p in preps]),
                        np.repeat(np.array([p.q.t for p in preps]), sizes), 0.5 * (hi - lo))

    def split(self, x: np.ndarray) -> list[np.ndarray]:
        """Per-slice parts of a stacked array."""
        s = self.start
        return [x[s[i] : s[i + 1]] for i in range(s.size - 1)]

    def layer_diags(self, c_fit: np.ndarray, iv_fit: np.ndarray, bfly: np.ndarray,
                    cal: np.ndarray) -> list[LayerDiagnostics]:
        """:func:`_layer_diag` of every slice (RMSE means per slice, as there)."""
        liq = self.liquid
        tol = INSIDE_TOL * self.hs + 1e-12
        inside = (c_fit >= self.lo - tol) & (c_fit <= self.hi + tol)
        err = iv_fit - self.iv_mid
        keep = liq & np.isfinite(err)
        err = err[keep]
        sq = err * err
        e_start = np.concatenate([[0], np.cumsum(np.add.reduceat(keep, self.start[:-1], dtype=np.intp))])
        n_liq = np.add.reduceat(liq, self.start[:-1], dtype=np.intp)
        n_in = np.add.reduceat(inside & liq, self.start[:-1], dtype=np.intp)
        out = []
        for i in range(n_liq.size):
            a, b = e_start[i], e_start[i + 1]
            rmse = float(np.sqrt(np.mean(sq[a:b])) * 100.0) if b > a else float("nan")
            n = int(n_liq[i])
            out.append(LayerDiagnostics(rmse, float(n_in[i]) / n if n else float("nan"), n, int(bfly[i]),
                                        int(cal[i])))
        return out

    def raw_butterfly(self) -> np.ndarray:
        """:func:`_raw_butterfly` of every slice."""
        liq = self.liquid
        seg = np.repeat(np.arange(self.start.size - 1), np.diff(self.start))[liq]
        k, lo, hi = self.k[liq], self.lo[liq], self.hi[liq]
        ns = self.start.size - 1
        same2 = seg[1:] == seg[:-1]
        same3 = same2[1:] & same2[:-1]
        dk = np.diff(k)
        bad2 = (((lo[1:] > hi[:-1]) & (dk > 0)).astype(np.intp) + (hi[1:] - lo[:-1] < -dk)) * same2
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = (k[2:] - k[1:-1]) / np.maximum(k[2:] - k[:-2], 1e-300)
            conv = (lo[1:-1] > lam * hi[:-2] + (1.0 - lam) * hi[2:]) & same3
        bounds = (hi < np.maximum(1.0 - k, 0.0)) | (lo > 1.0)
        total = (np.bincount(seg[1:], bad2, minlength=ns) + np.bincount(seg[2:], conv, minlength=ns)
                 + np.bincount(seg, bounds, minlength=ns))
        n = np.bincount(seg, minlength=ns)
        return np.where(n < 3, 0, np.rint(total)).astype(int)


def _dense_arbitrage_rows(c: np.ndarray, k: np.ndarray, tol: float) -> np.ndarray:
    """:func:`dense_arbitrage` of every row of ``c`` (curves on one grid ``k``)."""
    dk = np.diff(k)
    slope = np.diff(c, axis=1) / dk
    bad = np.count_nonzero(np.diff(slope, axis=1) < -tol / np.minimum(dk[1:], dk[:-1]), axis=1)
    bad += np.count_nonzero(slope > tol / dk, axis=1) + np.count_nonzero(slope < -1.0 - tol / dk, axis=1)
    bad += np.count_nonzero(c < np.maximum(1.0 - k, 0.0) - tol, axis=1) + np.count_nonzero(c > 1.0 + tol, axis=1)
    return bad


def _calendar_rows(c: np.ndarray) -> np.ndarray:
    """Dense-grid calendar violations of every row against the row before (0 for the first)."""
    out = np.zeros(c.shape[0], dtype=int)
    out[1:] = np.count_nonzero(c[1:] < c[:-1] - ARB_TOL, axis=1)
    return out


_PARALLEL = True  # fit the parametric layer in a worker thread, overlapping the market-layer QPs
_PIPELINE_SVI = True  # raw SVI in chunks, so that the QPs start before every SVI fit is done


class _InlineExecutor:
    """Stand-in for a thread pool that runs each job at submission (``_PARALLEL = False``)."""

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
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


def _fit_svi_chunk(preps: list[PreparedExpiry]) -> float:
    """Raw SVI of some slices (stored in ``p.svi``); returns the time taken (s)."""

    t0 = time.perf_counter()
    inputs = [_svi_inputs(p) for p in preps]
    fits = calibrate_svi_many([x[0] for x in inputs], [x[1] for x in inputs], [x[2] for x in inputs])
    for p, f in zip(preps, fits, strict=True):
        p.svi = f
    return time.perf_counter() - t0


def _parametric_layer(preps: list[PreparedExpiry],
                      k_dense: np.ndarray) -> tuple[ESSVIFit, list[ParametricDiag], float, float]:
    """eSSVI (after every raw-SVI fit) and the diagnostics of both parametric layers, which do not involve
    the market layer: ``(essvi, per-slice dicts, eSSVI time, diagnostics time)``."""

    t0 = time.perf_counter()
    ts = np.array([p.q.t for p in preps])
    # total variance must not fall with t at the money
    theta = np.array([max(p.svi_fit.params.total_variance(0.0), 1e-8) for p in preps])
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

    st = _Stacked.of(preps)
    x_dense = np.log(k_dense)
    sizes = np.diff(st.start)
    svi = np.array([[p.svi_fit.params.a, p.svi_fit.params.b, p.svi_fit.params.rho, p.svi_fit.params.m,
                     p.svi_fit.params.sigma] for p in preps], dtype=float)
    ess = np.array([essvi.params_at(p.q.t) for p in preps], dtype=float)
    # every slice at its quotes (one elementwise pass; parameters repeated per quote) ...
    x = np.log(st.k)
    sa, sb, srho, sm, ssig = np.repeat(svi, sizes, axis=0).T
    w_svi = svi_total_variance(x, sa, sb, srho, sm, ssig)
    c_svi = bs_call_norm(st.k, w_svi)
    iv_svi = np.sqrt(np.maximum(w_svi, 0.0) / st.t)
    eth, erho, epsi = np.repeat(ess, sizes, axis=0).T
    w_e = essvi_total_variance(x, eth, erho, epsi)
    c_e = bs_call_norm(st.k, w_e)
    iv_e = np.sqrt(w_e / st.t)
    # ... and on the dense grid (one row per slice)
    da, db, drho, dm, dsig = (col[:, None] for col in svi.T)
    c_svi_dense = bs_call_norm(k_dense, svi_total_variance(x_dense, da, db, drho, dm, dsig))
    dth, drh, dps = (col[:, None] for col in ess.T)
    c_e_dense = bs_call_norm(k_dense, essvi_total_variance(x_dense, dth, drh, dps))
    diag_svi = st.layer_diags(c_svi, iv_svi, _dense_arbitrage_rows(c_svi_dense, k_dense, ARB_TOL),
                              _calendar_rows(c_svi_dense))
    diag_e = st.layer_diags(c_e, iv_e, _dense_arbitrage_rows(c_e_dense, k_dense, ARB_TOL), _calendar_rows(c_e_dense))
    inside_svi = (c_svi >= st.lo - INSIDE_TOL * st.hs) & (c_svi <= st.hi + INSIDE_TOL * st.hs)
    raw_bfly = st.raw_butterfly()
    out = []
    prev_p = None
    for i, (p, ivs, ive, ins) in enumerate(zip(preps, st.split(iv_svi), st.split(iv_e), st.split(inside_svi),
                                               strict=True)):
        raw_cal = 0
        if prev_p is not None:
            liq_prev = prev_p.liquid
            kp, bp = prev_p.k[liq_prev], prev_p.lo[liq_prev]
            inside_prev = p.liquid & (p.k >= kp.min()) & (p.k <= kp.max())
            raw_cal = int(np.count_nonzero(p.hi[inside_prev] < np.interp(p.k[inside_prev], kp, bp) - 1e-12))
        out.append(ParametricDiag(
            iv_svi=ivs,
            iv_essvi=ive,
            svi=diag_svi[i],
            essvi=diag_e[i],
            inside_svi=ins,
            raw_butterfly=int(raw_bfly[i]),
            raw_calendar=raw_cal,
        ))
        prev_p = p
    return essvi, out, t1 - t0, time.perf_counter() - t1


def _market_diagnostics(preps: list[PreparedExpiry], fits: list[SliceSolution], knots: np.ndarray,
                        k_dense: np.ndarray) -> list[MarketDiag]:
    """Market-layer prices, IVs and diagnostics per slice (IVs of every quote and ATM point in one call)."""
    from volsurf.pricing.iv import implied_volatility

    sizes = np.array([p.k.size + 1 for p in preps])
    kk = np.concatenate([np.append(p.k, 1.0) for p in preps])
    coefs = np.stack([fit.coef for fit in fits])
    # every slice at its quotes and the money (bspline_eval, elementwise per point) in one basis evaluation
    vals_q, first_q = basis4(knots, kk)
    cc = np.einsum("ij,ij->i", vals_q, coefs[np.repeat(np.arange(len(preps)), sizes)[:, None], first_q[:, None] + FOUR])
    tt = np.repeat(np.array([p.q.t for p in preps]), sizes)
    iv_cc = implied_volatility(cc, np.ones_like(cc), kk, tt, np.ones(cc.size, dtype=bool), 1.0)
    # every slice on the dense grid at once: one basis evaluation, one gather
    vals, first = basis4(knots, k_dense)
    c_dense_all = np.einsum("ij,sij->si", vals, coefs[:, first[:, None] + FOUR])
    ends = np.cumsum(sizes)
    quote = np.ones(cc.size, dtype=bool)
    quote[ends - 1] = False
    st = _Stacked.of(preps)
    c_mc_all, iv_mc_all = cc[quote], iv_cc[quote]
    slack = np.zeros(st.k.size)
    slack[np.concatenate([np.flatnonzero(fit.use) + st.start[i] for i, fit in enumerate(fits)])] = np.concatenate(
        [fit.slack for fit in fits])
    diags = st.layer_diags(c_mc_all, iv_mc_all, _dense_arbitrage_rows(c_dense_all, k_dense, ARB_TOL),
                           _calendar_rows(c_dense_all))
    arb_bad = st.liquid & (slack > 1e-3)
    inside_mc = ((c_mc_all >= st.lo - INSIDE_TOL * st.hs - 1e-12) & (c_mc_all <= st.hi + INSIDE_TOL * st.hs + 1e-12))
    out = []
    for i, (p, iv_mc, bad, ins) in enumerate(zip(preps, st.split(iv_mc_all), st.split(arb_bad), st.split(inside_mc),
                                                 strict=True)):
        atm_iv = iv_cc[ends[i] - 1]
        out.append(MarketDiag(
            iv_mc=iv_mc,
            diag=diags[i],
            arb_bad=bad,
            inside_mc=ins,
            atm_w=float(atm_iv**2 * p.q.t) if np.isfinite(atm_iv) else p.atm_w,
        ))
    return out


def fit_surface(
    expiries: Sequence[ExpiryQuotes],
    *,
    min_quotes: int = 5,
    max_quotes: int = 100,
    roughness: float = 1e-3,
    dense_points: int = 400,
    overlap: bool | None = None,
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
    overlap : bool, optional
        Fit the parametric layer in a second thread while the market-layer QPs run (default: the module
        setting, on). About 10% less wall time on an idle machine but about 20% more CPU time (the two threads
        contend for the GIL): pass False where every core is already busy, as in the ingest workers.

    Raises
    ------
    DataError
        No expiry has enough quotes.
    """

    timings = {"prepare": 0.0, "svi": 0.0, "essvi": 0.0, "mc": 0.0, "diagnostics": 0.0}
    t0 = time.perf_counter()
    preps: list[PreparedExpiry] = []
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
    uniq: list[PreparedExpiry] = []
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
    knots = common_knots(k_dom, s_min)
    k_dense = np.geomspace(k_dom[0], k_dom[1], dense_points)

    # The market layer (sequential QPs; Clarabel releases the GIL while it solves) runs in this thread while
    # one worker fits the parametric layer: raw SVI in chunks of growing size (the QP of a slice needs only
    # that slice's SVI fit, so the QPs start after the first small chunk), then eSSVI and the parametric
    # diagnostics. Results do not depend on the overlap; the stage timings overlap and do not add up.
    threaded = _PARALLEL if overlap is None else overlap
    bounds = _svi_chunks(len(preps)) if threaded and _PIPELINE_SVI else [(0, len(preps))]
    chunk_of = np.concatenate([np.full(b - a, i) for i, (a, b) in enumerate(bounds)])
    with (ThreadPoolExecutor(max_workers=1) if threaded else _InlineExecutor()) as pool:
        svi_jobs = [pool.submit(_fit_svi_chunk, preps[a:b]) for a, b in bounds]
        param_job = pool.submit(_parametric_layer, preps, k_dense)
        t3 = time.perf_counter()
        fits: list[SliceSolution] = []
        prev = None
        bas = basis_blocks(knots)
        blocks: list[tuple[QuoteBlock, np.ndarray]] = []
        for i, p in enumerate(preps):
            if i == len(blocks):  # the quote rows of the whole SVI chunk in one pass
                svi_jobs[chunk_of[i]].result()
                a, b = bounds[chunk_of[i]]
                blocks += quote_blocks(preps[a:b], knots, bas)
            fit = fit_slice(p, knots, prev, fits[-2] if len(fits) > 1 else None, roughness=roughness,
                             max_quotes=max_quotes, block=blocks[i])
            fits.append(fit)
            prev = fit
        calendar_backward(knots, fits)
        warn_unsolved([p.q.label for p in preps], [f.status for f in fits])
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
                iv_mc=dm.iv_mc,
                iv_svi=dp.iv_svi,
                iv_essvi=dp.iv_essvi,
                inside_mc=dm.inside_mc,
                inside_svi=dp.inside_svi,
                arb_inconsistent=dm.arb_bad,
                knots=knots,
                coef=fit.coef,
                quoted_range=fit.quoted_range,
                svi_fit=p.svi_fit,
                mc=dm.diag,
                svi=dp.svi,
                essvi=dp.essvi,
                raw_butterfly_violations=dp.raw_butterfly,
                raw_calendar_violations=dp.raw_calendar,
                atm_total_variance=dm.atm_w,
                solver_status=fit.status,
            )
        )
    timings["total"] = time.perf_counter() - t0
    return Surface(
        slices=tuple(slices),
        essvi_fit=essvi,
        k_domain=k_dom,
        skipped=tuple(skipped),
        timings=timings,
        solver_status=tuple(f.status for f in fits),
    )


def expiry_quotes_from_enriched(enriched: Any, *, min_t: float = 0.0) -> list[ExpiryQuotes]:
    """Per-expiry :class:`ExpiryQuotes` from a :func:`volsurf.pricing.enrich.enrich` result (one per expiry and root,
    sorted by expiry then root; rows keep their order within a group)."""
    import pandas as pd

    f = enriched.frame
    f = f.loc[f["t"] > min_t]
    if f.empty:
        return []
    exp_code, _ = pd.factorize(f["expiry"], sort=True)
    root_code, roots = pd.factorize(f["root"], sort=True)
    order = np.lexsort((root_code, exp_code))  # stable: original order within a group
    group = (exp_code * len(roots) + root_code)[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    head = f.iloc[order[starts]]
    t, fwd, disc = (head[c].to_numpy(float) for c in ("t", "forward", "discount"))
    labels = (head["expiry_date"].astype(str) + " " + head["root"].astype(str)).tolist()
    strike, bid, ask = (f[c].to_numpy(float)[order] for c in ("strike", "bid", "ask"))
    is_call = (f["type"] == "call").to_numpy(bool, na_value=False)[order]
    out = []
    for j, (a, b) in enumerate(zip(starts, [*starts[1:], order.size], strict=True)):  # a loop over expiries
        out.append(ExpiryQuotes(t=float(t[j]), forward=float(fwd[j]), discount=float(disc[j]), strike=strike[a:b],
                                is_call=is_call[a:b], bid=bid[a:b], ask=ask[a:b], label=labels[j]))
    return out


__all__ = [
    "SEVEN_DAYS",
    "ExpiryQuotes",
    "LayerDiagnostics",
    "SVIParams",
    "SliceFit",
    "Surface",
    "expiry_quotes_from_enriched",
    "fit_surface",
]
