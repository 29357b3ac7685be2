"""Parametric smile layer: raw SVI per expiry and an eSSVI surface across expiries.

Conventions
-----------
- ``k = ln(K / F)``: log-moneyness against the expiry's forward.
- ``w(k) = sigma_BS(k)^2 t``: total implied variance (decimal vol squared times years).
- Raw SVI (Gatheral 2004): ``w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))``.
- eSSVI (Hendriks-Martini 2019, Corbetta et al. 2019), with ``psi = theta * phi``:
  ``w(k) = theta/2 (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2))``.

Calibration
-----------
Raw SVI uses the quasi-explicit reduction (Zeliade 2009): for fixed ``(m, sigma)``, ``w`` is linear in
``(a, u, v)`` with ``u = b sigma (1 + rho)`` and ``v = b sigma (1 - rho)``; Lee's moment bound
``b (1 + |rho|) <= 2`` becomes the box ``0 <= u, v <= 2 sigma``, so the inner problem is a 3-variable
box-constrained weighted least squares, solved exactly by enumerating the 27 active sets in closed form
(vectorized over many ``(m, sigma)`` candidates at once; the weighted sums over the quotes are batched matrix
products). The outer ``(m, sigma)`` search is a coarse grid followed by zoomed grids around the five best
candidates (the "several starts"). Candidates that violate Durrleman's condition ``g(k) >= 0`` (or give
``w <= 0``) on a check grid are penalised, so the chosen fit is free of butterfly arbitrage whenever any
candidate is; otherwise the fit is flagged. The penalty ranks every violating candidate below every clean one,
so ``g`` is checked lazily, best candidates by error first (same choice as checking all of them).

eSSVI is calibrated sequentially from the shortest expiry: ``theta_i`` is the ATM total variance of the
slice (forced non-decreasing), ``(rho_i, psi_i)`` are chosen on a grid subject to the butterfly conditions
``psi (1 + |rho|) <= 4`` and ``psi^2 (1 + |rho|) <= 4 theta`` and to no calendar arbitrage against the
previous slice (``psi_i >= psi_{i-1}``, ``|rho_i psi_i - rho_{i-1} psi_{i-1}| <= psi_i - psi_{i-1}``
and ``w_i(k) >= w_{i-1}(k)`` on a dense check grid).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from volsurf.errors import DataError, ParameterError

# Degeneracy thresholds for the flags of a raw-SVI fit.
SIGMA_MIN = 1e-4  # sigma below this (or below SIGMA_REL x the checked k range): a corner at m (density spike)
SIGMA_REL = 2.5e-3
RHO_MAX = 0.995  # |rho| above this: one wing is flat, the other at full slope
LEE_SLOPE = 2.0  # Lee (2004): wing slopes of w in k cannot exceed 2
_WING_CAPS = (LEE_SLOPE, 0.03)  # wing-slope caps of the second search for degenerate fits
_REFIT_TOLERANCE = 1.1  # a non-degenerate refit may be this much worse (weighted RMSE) and still replace
_CHUNK = 1 << 16  # points x candidates per slice-chunk of the inner fit (three scratch arrays of this many)
_BOX_CHUNK = 2048  # box problems whose 27 active-set candidates are enumerated at once



@dataclass(frozen=True)
class SVIParams:
    """Raw SVI parameters of one slice (``w`` in decimal variance times years, ``k = ln(K/F)``)."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def total_variance(self, k: np.ndarray | float) -> np.ndarray:
        """``w(k)``: total implied variance at log-moneyness ``k``."""
        return svi_total_variance(k, self.a, self.b, self.rho, self.m, self.sigma)

    def as_dict(self) -> dict[str, float]:
        """Parameters as a plain dict."""
        return {"a": self.a, "b": self.b, "rho": self.rho, "m": self.m, "sigma": self.sigma}


@dataclass(frozen=True)
class SVIFit:
    """Result of a raw-SVI calibration.

    Attributes
    ----------
    params : SVIParams
        Fitted parameters.
    rmse_w : float
        Weighted RMS error in total variance (weights normalised to sum 1).
    g_min : float
        Minimum of Durrleman's ``g(k)`` on the check grid (``>= 0``: no butterfly arbitrage).
    flags : tuple of str
        Degeneracy / arbitrage flags: ``sigma_small``, ``rho_extreme``, ``lee_bound`` (a wing at Lee's
        slope 2), ``durrleman`` (``g < 0`` somewhere on the check grid), ``negative_variance``.
    """

    params: SVIParams
    rmse_w: float
    g_min: float
    flags: tuple[str, ...] = ()


def svi_total_variance(k: np.ndarray | float, a: np.ndarray | float, b: np.ndarray | float, rho: np.ndarray | float, m: np.ndarray | float, sigma: np.ndarray | float) -> np.ndarray:
    """Raw SVI total variance ``a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))`` (broadcasts)."""
    x = np.asarray(k, dtype=float) - m
    return a + b * (rho * x + np.sqrt(x * x + sigma * sigma))


def svi_derivatives(k: np.ndarray | float, a: np.ndarray | float, b: np.ndarray | float, rho: np.ndarray | float, m: np.ndarray | float, sigma: np.ndarray | float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w, dw/dk, d2w/dk2)`` of raw SVI (broadcasts)."""
    x = np.asarray(k, dtype=float) - m
    r = np.sqrt(x * x + sigma * sigma)
    w = a + b * (rho * x + r)
    w1 = b * (rho + x / r)
    w2 = b * sigma * sigma / (r * r * r)
    return w, w1, w2


def durrleman_g(k: np.ndarray | float, w: np.ndarray | float, w1: np.ndarray | float, w2: np.ndarray | float) -> np.ndarray:
    """Durrleman's function ``g(k)``; the density is ``g(k) n(d2) / sqrt(w)``, so ``g >= 0`` means no butterfly.

    ``g = (1 - k w'/(2w))^2 - w'^2/4 (1/w + 1/4) + w''/2``. Returns ``-inf`` where ``w <= 0``.
    """
    k = np.asarray(k, dtype=float)
    w = np.asarray(w, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1.0 - k * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
    return np.where(w > 0, g, -np.inf)


def svi_g(k: np.ndarray | float, params: SVIParams) -> np.ndarray:
    """Durrleman's ``g(k)`` of a raw SVI slice."""
    p = params
    w, w1, w2 = svi_derivatives(k, p.a, p.b, p.rho, p.m, p.sigma)
    return durrleman_g(k, w, w1, w2)


# A batch of symmetric 3x3 matrices as their six distinct entries ``(n00, n01, n02, n11, n12, n22)`` and a batch
# of 3-vectors as its three components, each (..., J): kept apart so every operation runs on contiguous arrays.
_Sym3 = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_Vec3 = tuple[np.ndarray, np.ndarray, np.ndarray]


def _solve3(n: _Sym3, r: _Vec3) -> _Vec3:
    """Batched symmetric 3x3 solve by the adjugate (much faster than ``np.linalg.solve`` on tiny systems)."""
    a, b, c, e, f, i = n
    d, g, h = b, c, f
    c00, c01, c02 = e * i - f * h, f * g - d * i, d * h - e * g
    det = a * c00 + b * c01 + c * c02
    det = np.where(np.abs(det) > 1e-300, det, 1e-300)
    x, y, z = r
    r0 = c00 * x + (c * h - b * i) * y + (b * f - c * e) * z
    r1 = c01 * x + (a * i - c * g) * y + (c * d - a * f) * z
    r2 = c02 * x + (b * g - a * h) * y + (a * e - b * d) * z
    r0 /= det
    r1 /= det
    r2 /= det
    return r0, r1, r2


def _safe(den: np.ndarray) -> np.ndarray:
    return np.where(np.abs(den) > 1e-300, den, 1e-300)


def _box_candidates(n: _Sym3, r: _Vec3, lo: _Vec3, hi: _Vec3, x: _Vec3) -> tuple[np.ndarray, np.ndarray]:
    """The 27 active-set candidates of the box problem: the unconstrained minimiser ``x`` first, then the
    minimisers of ``x'Nx - 2 r'x`` on the 26 faces of the box (each fixed component at a bound, the free ones
    solving their reduced normal equations in closed form), free components clipped to the box.

    Returns ``(xs, ok)``, shapes (3, 27, J) (component first) and (27, J): ``ok`` when every free component was
    inside the box up to a relative ``1e-9`` of its width (fixed components always are).
    """
    n00, n01, n02, n11, n12, n22 = n
    nm = ((n00, n01, n02), (n01, n11, n12), (n02, n12, n22))
    bnd = [np.stack([lo[c], hi[c]]) for c in range(3)]  # (2, J): the bounds of each component
    span = [np.maximum(hi[c] - lo[c], 1e-300) for c in range(3)]
    lo_t = [lo[c] - 1e-9 * span[c] for c in range(3)]
    hi_t = [hi[c] + 1e-9 * span[c] for c in range(3)]
    xs = np.empty((3, 27, lo[0].size))
    ok = np.ones((27, lo[0].size), dtype=bool)

    def free(rows: slice, c: int, v: np.ndarray) -> None:
        ok[rows] &= (v >= lo_t[c]) & (v <= hi_t[c])
        np.clip(v, lo[c], hi[c], out=xs[c, rows])

    for c in range(3):
        free(slice(0, 1), c, x[c][None])
    for row, sides in enumerate(itertools.product((0, 1), repeat=3), start=1):  # vertices: nothing free
        for c in range(3):
            xs[c, row] = bnd[c][sides[c]]
    row = 9
    for i, j, k in ((0, 1, 2), (1, 0, 2), (2, 0, 1)):
        nii = _safe(nm[i][i])
        # edges: x_i free, (x_j, x_k) at the bounds (sj, sk) in product order
        xi = ((r[i] - nm[i][j] * bnd[j])[:, None] - (nm[i][k] * bnd[k])[None, :]) / nii
        xs[j, row : row + 4] = np.repeat(bnd[j], 2, axis=0)
        xs[k, row : row + 4] = np.tile(bnd[k], (2, 1))
        free(slice(row, row + 4), i, xi.reshape(4, -1))
        row += 4
        njj, nkk, njk = nm[j][j], nm[k][k], nm[j][k]
        det = _safe(njj * nkk - njk * njk)
        # faces: x_i at a bound, (x_j, x_k) free
        bj, bk = r[j] - nm[j][i] * bnd[i], r[k] - nm[k][i] * bnd[i]
        xs[i, row : row + 2] = bnd[i]
        free(slice(row, row + 2), j, (nkk * bj - njk * bk) / det)
        free(slice(row, row + 2), k, (njj * bk - njk * bj) / det)
        row += 2
    return xs, ok


def _sum_of_products(out: np.ndarray, tmp: np.ndarray,
                     *terms: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> None:
    """``out = sum of c * x * y`` over ``terms`` (``y`` None: ``c * x``), left to right, in place (``tmp``: scratch of
    ``out``'s shape); the order of operations is fixed, so results do not depend on the caller."""
    for i, (c, x, y) in enumerate(terms):
        dst = out if i == 0 else tmp
        np.multiply(c, x, out=dst)
        if y is not None:
            dst *= y
        if i:
            out += tmp


def _quad_value(n: _Sym3, r: _Vec3, x0: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """``x'Nx - 2 r'x`` for symmetric 3x3 ``N`` and points ``x = (x0, x1, x2)``, each (..., J)."""
    n00, n01, n02, n11, n12, n22 = n
    shape = np.broadcast_shapes(x0.shape, x1.shape, x2.shape, n00.shape)
    t, s, u = np.empty(shape), np.empty(shape), np.empty(shape)
    # n00 x0 x0 + n11 x1 x1 + n22 x2 x2 + 2 (n01 x0 x1 + n02 x0 x2 + n12 x1 x2), in this order of operations
    _sum_of_products(t, u, (n00, x0, x0), (n11, x1, x1), (n22, x2, x2))
    _sum_of_products(s, u, (n01, x0, x1), (n02, x0, x2), (n12, x1, x2))
    s *= 2.0
    t += s
    # - 2 (r0 x0 + r1 x1 + r2 x2)
    _sum_of_products(s, u, (r[0], x0, None), (r[1], x1, None), (r[2], x2, None))
    s *= 2.0
    t -= s
    return t


def _box_lsq(n: _Sym3, r: _Vec3, lo: _Vec3, hi: _Vec3) -> tuple[_Vec3, np.ndarray]:
    """Exact minimiser of ``x'Nx - 2 r'x`` over the box ``lo <= x <= hi``, batched over J.

    Candidates whose unconstrained minimiser is inside the box are done; for the others all 27 active sets
    are enumerated at once (fixed components at a bound, free ones solving the reduced normal equations);
    the best feasible candidate is the optimum (convex problem). Returns ``(x, value)``, shapes 3 x (J,), (J,).
    """
    x = _solve3(n, r)
    inside = (x[0] >= lo[0]) & (x[0] <= hi[0]) & (x[1] >= lo[1]) & (x[1] <= hi[1]) & (x[2] >= lo[2]) & (x[2] <= hi[2])
    outside = np.flatnonzero(~inside)
    for c0 in range(0, outside.size, _BOX_CHUNK):  # a chunk at a time: the (27, chunk) arrays stay in cache
        out = outside[c0 : c0 + _BOX_CHUNK]
        n_o = (n[0][out], n[1][out], n[2][out], n[3][out], n[4][out], n[5][out])
        r_o = (r[0][out], r[1][out], r[2][out])
        xs, ok = _box_candidates(n_o, r_o, (lo[0][out], lo[1][out], lo[2][out]),
                                 (hi[0][out], hi[1][out], hi[2][out]), (x[0][out], x[1][out], x[2][out]))
        val = _quad_value(n_o, r_o, xs[0], xs[1], xs[2])
        val[~ok] = np.inf
        best = np.argmin(val, axis=0)
        col = np.arange(out.size)
        for c in range(3):
            x[c][out] = xs[c, best, col]
    return x, _quad_value(n, r, *x)


def _inner(data: dict, m: np.ndarray, sig: np.ndarray) -> tuple[np.ndarray, ...]:
    """Best ``(a, b, rho)`` for each candidate ``(m, sigma)`` (shape (S, C): C candidates for each of S slices).

    Returns ``(a, b, rho, sse)``, each (S, C). Padding points carry zero weight. The weighted sums over the
    points are batched matrix products against the per-slice weight columns.
    """
    shape = n_s, n_c = sig.shape
    kk, wt, bw = data["k"], data["wt"], data["bw"]  # bw: columns (wt, wt w), (S, n, 2)
    n_pt = kk.shape[1]
    # (S, C, 2): (sum wt p, sum wt p w), (sum wt q, sum wt q w); (S, C, 1): sum wt p^2, sum wt q^2
    p_s, q_s = np.empty((n_s, n_c, 2)), np.empty((n_s, n_c, 2))
    pp_s, qq_s = np.empty((n_s, n_c, 1)), np.empty((n_s, n_c, 1))
    # a few slices at a time, in a scratch buffer kept across calls: the (S, C, n) arrays stay in cache
    per = max(1, _CHUNK // (n_c * n_pt))
    size = min(per, n_s) * n_c * n_pt
    if data.get("work") is None or data["work"].size < 3 * size:
        data["work"] = np.empty(3 * size)
    work = data["work"]
    for s0 in range(0, n_s, per):
        e0 = min(n_s, s0 + per)
        dims = (e0 - s0, n_c, n_pt)
        size = dims[0] * n_c * n_pt
        y, z, p = (work[i * size : (i + 1) * size].reshape(dims) for i in range(3))
        np.subtract(kk[s0:e0, None, :], m[s0:e0, :, None], out=y)
        y /= sig[s0:e0, :, None]
        np.multiply(y, y, out=z)
        z += 1.0
        np.sqrt(z, out=z)
        np.add(z, y, out=p)  # basis of (u, v): p = (z + y) / 2, q = (z - y) / 2; the basis of a is 1
        p *= 0.5
        q = np.subtract(z, y, out=y)
        q *= 0.5
        np.matmul(p, bw[s0:e0], out=p_s[s0:e0])
        np.matmul(q, bw[s0:e0], out=q_s[s0:e0])
        p *= p
        q *= q
        np.matmul(p, wt[s0:e0, :, None], out=pp_s[s0:e0])
        np.matmul(q, wt[s0:e0, :, None], out=qq_s[s0:e0])
    spp, sqq = pp_s.reshape(-1), qq_s.reshape(-1)
    s1 = np.repeat(data["s1"], shape[1])
    sp, sq = p_s[..., 0].reshape(-1), q_s[..., 0].reshape(-1)
    spq = 0.25 * s1  # p q = 1/4 identically
    ridge = s1 + spp
    ridge += sqq
    ridge *= 1e-14
    n = (s1 + ridge, sp, sq, spp + ridge, spq, sqq + ridge)
    rhs = (np.repeat(data["w0"], shape[1]), p_s[..., 1].reshape(-1), q_s[..., 1].reshape(-1))
    sg = sig.reshape(-1)
    w_max = np.repeat(data["w_max"], shape[1])
    zero = np.zeros_like(sg)
    caps = data["caps"]  # wing slope caps
    lo = (-w_max, zero, zero)
    hi = (w_max, np.repeat(caps[:, 0], shape[1]) * sg, np.repeat(caps[:, 1], shape[1]) * sg)
    (a, u, v), val = _box_lsq(n, rhs, lo, hi)
    val += np.repeat(data["wsq"], shape[1])
    np.maximum(val, 0.0, out=val)
    uv = u + v
    b = uv / (2.0 * sg)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(uv > 0, (u - v) / uv, 0.0)
    return a.reshape(shape), b.reshape(shape), rho.reshape(shape), val.reshape(shape)


def _g_min(data: dict, sid: np.ndarray, a: np.ndarray, b: np.ndarray, rho: np.ndarray, m: np.ndarray,
           sig: np.ndarray) -> np.ndarray:
    """Minimum of Durrleman's ``g`` over each candidate's check grid (flat candidates of slices ``sid``).

    Same operations as :func:`svi_derivatives` and :func:`durrleman_g`, with fewer temporaries."""
    kc = data["k_check"][sid]
    a, b, rho, m, sig = a[:, None], b[:, None], rho[:, None], m[:, None], sig[:, None]
    x = kc - m
    r = x * x
    r += sig * sig
    np.sqrt(r, out=r)
    w = rho * x  # w = a + b (rho x + r)
    w += r
    w *= b
    w += a
    w1 = np.divide(x, r, out=x)  # w1 = b (rho + x / r)
    w1 += rho
    w1 *= b
    w2 = r * r  # w2 = b sigma^2 / r^3
    w2 *= r
    np.divide(b * sig * sig, w2, out=w2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # g = (1 - k w1 / (2 w))^2 - 1/4 w1^2 (1 / w + 1/4) + w2 / 2
        g = kc * w1
        g /= 2.0 * w
        np.subtract(1.0, g, out=g)
        g *= g
        t = 0.25 * w1
        t *= w1
        h = np.divide(1.0, w)
        h += 0.25
        t *= h
        g -= t
        w2 *= 0.5
        g += w2
    g[~(w > 0)] = -np.inf
    return np.min(g, axis=1)


def _penalised(data: dict, m: np.ndarray, sig: np.ndarray, group: int, keep: int) -> tuple[np.ndarray, ...]:
    """Inner fit plus a butterfly penalty for candidates ``(S, C)`` split into groups of ``group`` consecutive
    candidates; returns ``(a, b, rho, score, g_min, top)``, the first five (S, C) and ``top`` (S, C // group,
    keep): the indices (into C) of the ``keep`` best candidates of each group, best first.

    A candidate violating Durrleman's condition scores ``sse + (1 + |g_min|) (1 + sum wt w^2)``, above any
    clean candidate (whose ``sse <= sum wt w^2``, the error of ``w = 0``). So the best ones of a group are
    its best clean ones by ``sse`` whenever it has ``keep`` of them, and ``g`` (the costly part) is only
    evaluated for the ``2 keep`` best by ``sse`` first, for the rest of a group only when needed (in ``sse`` order,
    in growing batches, as far as a candidate could still rank). Candidates never evaluated (which cannot rank
    first) get ``score = inf`` and ``g_min = nan``.
    """
    a, b, rho, sse = _inner(data, m, sig)
    n_s, n_c = sse.shape
    n_g = n_s * (n_c // group)
    a_f, b_f, r_f, m_f, s_f, sse_f = (x.reshape(-1) for x in (a, b, rho, m, sig, sse))
    score = np.full(sse_f.size, np.inf)
    g_min = np.full(sse_f.size, np.nan)

    def evaluate(idx: np.ndarray) -> None:
        sid = idx // n_c
        g = _g_min(data, sid, a_f[idx], b_f[idx], r_f[idx], m_f[idx], s_f[idx])
        g_min[idx] = g
        bad = np.where(np.isfinite(g), np.maximum(-g, 0.0), 1e6)
        # second pass only (rho_max < 1): a flat wing (|rho| at 1) ranks like a butterfly violation
        bad = bad + np.maximum(np.abs(r_f[idx]) - data["rho_max"][sid], 0.0)
        score[idx] = sse_f[idx] + (bad > 0) * (1.0 + bad) * (1.0 + data["wsq"][sid])

    order = np.arange(n_g)[:, None] * group + np.argsort(sse.reshape(n_g, group), axis=1, kind="stable")
    n_first = min(group, 2 * keep)
    evaluate(order[:, :n_first].ravel())
    clean = g_min[order[:, :n_first]] >= 0  # nan (not evaluated / non-finite g) compares False
    short = np.flatnonzero(np.count_nonzero(clean, axis=1) < keep)
    # The rest of a short group is evaluated in growing batches, in sse order, until its keep-th best score so
    # far is below the sse of the next candidate: the rest then scores above it (a score is at least the sse),
    # so the top and the minimum are those of evaluating the whole group.
    n_done = n_first
    while short.size and n_done < group:
        n_next = min(group, 2 * n_done)
        if group - n_next <= n_done:
            n_next = group
        evaluate(order[short, n_done:n_next].ravel())
        n_done = n_next
        if n_done == group:
            break
        kth = np.sort(score[order[short, :n_done]], axis=1)[:, keep - 1]
        # nan sse (sorted last) must be evaluated: a nan score would be the minimum
        settled = (sse_f[order[short, n_done]] > kth) & ~np.isnan(sse_f[order[short, -1]])
        short = short[~settled]
    top = np.argsort(score.reshape(n_g, group), axis=1, kind="stable")[:, :keep]
    top = top.reshape(n_s, n_c // group, keep) + (np.arange(n_c // group) * group)[None, :, None]
    shape = sse.shape
    return a, b, rho, score.reshape(shape), g_min.reshape(shape), top


def calibrate_svi(k: np.ndarray, w: np.ndarray, weights: np.ndarray | None = None, *, n_starts: int = 5,
                  n_zoom: int = 8) -> SVIFit:
    """Fit raw SVI to total variances ``w`` at log-moneyness ``k``.

    Parameters
    ----------
    k : array
        Log-moneyness ``ln(K/F)`` of the quotes.
    w : array
        Market total variance ``iv^2 t`` (decimal^2 * years).
    weights : array, optional
        Non-negative weights of the squared errors in ``w`` (e.g. ``1 / spread_w^2``); normalised internally.
        Default equal.
    n_starts : int
        Number of best coarse-grid candidates refined by zooming (several starts).
    n_zoom : int
        Zoom rounds per start (the grid step halves every round).

    Returns
    -------
    SVIFit

    Raises
    ------
    DataError
        Fewer than 5 usable points.
    """
    return calibrate_svi_many([k], [w], None if weights is None else [weights], n_starts=n_starts, n_zoom=n_zoom)[0]


def calibrate_svi_many(
    ks: Sequence, ws: Sequence, weights: Sequence | None = None, *, n_starts: int = 5, n_zoom: int = 8
) -> list[SVIFit]:
    """:func:`calibrate_svi` for many slices at once (one vectorized search over all of them; same results).

    Degenerate fits (``rho_extreme`` or ``lee_bound``: a wing flat or at Lee's slope, typically because every
    candidate with a proper shape breaks Durrleman's condition far beyond the quotes) are searched again with
    the wing slopes capped (``b (1 +- rho) <= cap`` for caps in ``_WING_CAPS``, both wings) and ``|rho| <= RHO_MAX``;
    the best such fit replaces the first one when it carries no flag at all (no butterfly arbitrage either), and its
    weighted error is at most ``_REFIT_TOLERANCE`` times the first one's.
    """
    data_k, data_w, data_wt = [], [], []
    for i in range(len(ks)):
        k = np.asarray(ks[i], dtype=float)
        w = np.asarray(ws[i], dtype=float)
        wt = np.ones_like(k) if weights is None else np.asarray(weights[i], dtype=float)
        ok = np.isfinite(k) & np.isfinite(w) & np.isfinite(wt) & (wt > 0) & (w > 0)
        if np.count_nonzero(ok) < 5:
            raise DataError(
                f"raw SVI needs at least 5 usable quotes, got {int(np.count_nonzero(ok))}",
                hint="use an expiry with more quoted strikes",
            )
        data_k.append(k[ok])
        data_w.append(w[ok])
        data_wt.append(wt[ok] / np.sum(wt[ok]))
    n_s = len(data_k)
    fits = _calibrate_batch(data_k, data_w, data_wt, np.full((n_s, 2), LEE_SLOPE), np.full(n_s, np.inf),
                            n_starts, n_zoom)
    bad = [i for i, f in enumerate(fits) if "rho_extreme" in f.flags or "lee_bound" in f.flags]
    if bad:
        caps = [(cu, cv) for cu in _WING_CAPS for cv in _WING_CAPS]
        src_i = [i for i in bad for _ in caps]
        refits = _calibrate_batch([data_k[i] for i in src_i], [data_w[i] for i in src_i],
                                  [data_wt[i] for i in src_i], np.array(caps * len(bad), dtype=float),
                                  np.full(len(src_i), RHO_MAX), n_starts, n_zoom)
        degenerate = {"rho_extreme", "lee_bound", "durrleman", "negative_variance", "sigma_small"}
        for j, i in enumerate(bad):
            cands = [f for f in refits[j * len(caps) : (j + 1) * len(caps)] if not degenerate & set(f.flags)]
            if cands:
                best = min(cands, key=lambda f: f.rmse_w)
                if best.rmse_w <= _REFIT_TOLERANCE * fits[i].rmse_w:
                    fits[i] = best
    return fits


def _calibrate_batch(data_k: list, data_w: list, data_wt: list, caps: np.ndarray, rho_max: np.ndarray,
                     n_starts: int, n_zoom: int) -> list[SVIFit]:
    """The vectorized grid + zoom search over slices of clean data (weights summing to 1); ``caps`` (S, 2):
    caps of the right and left wing slopes ``b (1 + rho)``, ``b (1 - rho)``; ``rho_max`` (S,): ``|rho|`` above it
    is penalised like a butterfly violation."""
    spans, kls, khs = [], [], []
    for k in data_k:
        kls.append(float(k.min()))
        khs.append(float(k.max()))
        spans.append(max(khs[-1] - kls[-1], 1e-3))
    n_s = len(data_k)
    n_pt = max(x.size for x in data_k)
    kk, ww, wtt = np.zeros((n_s, n_pt)), np.zeros((n_s, n_pt)), np.zeros((n_s, n_pt))
    for i in range(n_s):  # pad with zero-weight points
        kk[i, : data_k[i].size], ww[i, : data_w[i].size], wtt[i, : data_wt[i].size] = data_k[i], data_w[i], data_wt[i]
    span, k_lo = np.array(spans), np.array(kls)
    # Check grid for Durrleman: the quoted range plus half its width on each side.
    k_check = (k_lo - 0.5 * span)[:, None] + (2.0 * span)[:, None] * np.linspace(0.0, 1.0, 41)[None, :]
    data = {
        "k": kk,
        "wt": wtt,
        "bw": np.stack([wtt, wtt * ww], axis=2),
        "s1": np.sum(wtt, axis=1),
        "w0": np.sum(wtt * ww, axis=1),
        "wsq": np.sum(wtt * ww * ww, axis=1),
        "w_max": ww.max(axis=1),
        "k_check": k_check,
        "caps": np.asarray(caps, dtype=float),
        "rho_max": np.asarray(rho_max, dtype=float),
    }

    n_m, n_l = 13, 11
    um = np.linspace(-0.3, 1.3, n_m)
    ul = np.linspace(0.0, 1.0, n_l)
    m_c = ((k_lo[:, None] + span[:, None] * um[None, :])[:, :, None] * np.ones(n_l)).reshape(n_s, -1)
    l_lo, l_hi = np.log(span / 300.0), np.log(2.0 * span)
    ls_c = ((l_lo[:, None] + (l_hi - l_lo)[:, None] * ul[None, :])[:, None, :] * np.ones((1, n_m, 1))).reshape(n_s, -1)
    n_c = n_m * n_l
    n_st = min(n_starts, n_c)
    a, b, rho, score, g_min, top = _penalised(data, m_c, np.exp(ls_c), n_c, n_st)
    all_m, all_ls = [m_c], [ls_c]
    all_a, all_b, all_r, all_s, all_g = [a], [b], [rho], [score], [g_min]
    order = top[:, 0, :]
    starts_m = np.take_along_axis(m_c, order, axis=1)  # (n_s, n_st)
    starts_ls = np.take_along_axis(ls_c, order, axis=1)
    dm = span * (um[1] - um[0])
    dls = (l_hi - l_lo) * (ul[1] - ul[0])
    offs = np.array([-1.0, 0.0, 1.0])
    om, ol = (g.ravel() for g in np.meshgrid(offs, offs, indexing="ij"))
    for _ in range(n_zoom):
        cm = starts_m[:, :, None] + dm[:, None, None] * om[None, None, :]
        cl = starts_ls[:, :, None] + dls[:, None, None] * ol[None, None, :]
        a_z, b_z, r_z, s_z, g_z, top = _penalised(data, cm.reshape(n_s, -1), np.exp(cl.reshape(n_s, -1)), om.size, 1)
        best = top[:, :, 0] - (np.arange(n_st) * om.size)[None, :]
        starts_m = np.take_along_axis(cm, best[:, :, None], axis=2)[:, :, 0]
        starts_ls = np.take_along_axis(cl, best[:, :, None], axis=2)[:, :, 0]
        dm, dls = dm / 2.0, dls / 2.0
        all_m.append(cm.reshape(n_s, -1))
        all_ls.append(cl.reshape(n_s, -1))
        all_a.append(a_z)
        all_b.append(b_z)
        all_r.append(r_z)
        all_s.append(s_z)
        all_g.append(g_z)
    m_all, ls_all = np.concatenate(all_m, axis=1), np.concatenate(all_ls, axis=1)
    a_all, b_all, r_all = (np.concatenate(x, axis=1) for x in (all_a, all_b, all_r))
    s_all, g_all = np.concatenate(all_s, axis=1), np.concatenate(all_g, axis=1)
    pick = np.argmin(s_all, axis=1)
    fits = []
    for i in range(n_s):
        j = pick[i]
        params = SVIParams(float(a_all[i, j]), float(b_all[i, j]), float(r_all[i, j]), float(m_all[i, j]),
                           float(np.exp(ls_all[i, j])))
        resid = params.total_variance(data_k[i]) - data_w[i]
        rmse = float(np.sqrt(np.sum(data_wt[i] * resid * resid)))
        fits.append(SVIFit(params, rmse, float(g_all[i, j]), svi_flags(params, k_check[i])))
    return fits


def svi_flags(params: SVIParams, k_check: np.ndarray) -> tuple[str, ...]:
    """Degeneracy and arbitrage flags of a raw-SVI slice on the grid ``k_check``."""
    p = params
    flags = []
    k_check = np.asarray(k_check, dtype=float)
    if p.sigma < max(SIGMA_MIN, SIGMA_REL * float(np.ptp(k_check))):
        flags.append("sigma_small")
    if abs(p.rho) > RHO_MAX:
        flags.append("rho_extreme")
    if p.b * (1.0 + abs(p.rho)) > LEE_SLOPE * (1.0 - 1e-6):
        flags.append("lee_bound")
    w = p.total_variance(k_check)
    if np.any(w <= 0):
        flags.append("negative_variance")
    g = svi_g(k_check, p)
    if np.any(g < -1e-9):
        flags.append("durrleman")
    return tuple(flags)


# --------------------------------------------------------------------------------------------- eSSVI


def essvi_total_variance(k: np.ndarray | float, theta: np.ndarray | float, rho: np.ndarray | float, psi: np.ndarray | float) -> np.ndarray:
    """eSSVI total variance ``1/2 (theta + rho psi k + sqrt((psi k + theta rho)^2 + theta^2 (1 - rho^2)))``.

    Written with ``psi = theta phi`` so it stays finite as ``theta -> 0``; broadcasts.
    """
    k = np.asarray(k, dtype=float)
    return 0.5 * (theta + rho * psi * k + np.sqrt((psi * k + theta * rho) ** 2 + theta * theta * (1.0 - rho * rho)))


@dataclass(frozen=True)
class ESSVIFit:
    """eSSVI surface: per-slice ``theta`` (ATM total variance), ``rho``, ``psi`` at times ``t`` (years).

    Interpolation in ``t`` (rule): ``theta`` linear in ``t`` between slices, ``psi`` and ``rho psi`` linear
    in ``theta`` (Corbetta et al. 2019: keeps the calendar and butterfly conditions); before the first slice
    ``theta`` goes linearly to 0 with ``rho`` and ``phi = psi / theta`` fixed; after the last slice ``theta``
    grows at the last slice's forward variance rate with ``rho`` and ``psi`` fixed. ``flags`` lists per-slice
    problems (``calendar``, ``butterfly``).
    """

    t: np.ndarray
    theta: np.ndarray
    rho: np.ndarray
    psi: np.ndarray
    rmse_w: np.ndarray
    flags: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    def params_at(self, t: float) -> tuple[float, float, float]:
        """``(theta, rho, psi)`` at time ``t`` (years) by the interpolation rule."""
        ts, th, ps, rp = self.t, self.theta, self.psi, self.rho * self.psi
        if t <= ts[0]:
            lam = max(t, 0.0) / ts[0]
            return float(th[0] * lam), float(self.rho[0]), float(ps[0] * lam)
        if t >= ts[-1]:
            rate = th[-1] / ts[-1] if len(ts) == 1 else max((th[-1] - th[-2]) / (ts[-1] - ts[-2]), 0.0)
            if rate <= 0:
                rate = th[-1] / ts[-1]
            return float(th[-1] + rate * (t - ts[-1])), float(self.rho[-1]), float(ps[-1])
        i = int(np.searchsorted(ts, t)) - 1
        lam_t = (t - ts[i]) / (ts[i + 1] - ts[i])
        theta = th[i] + lam_t * (th[i + 1] - th[i])
        lam = 0.0 if th[i + 1] <= th[i] else (theta - th[i]) / (th[i + 1] - th[i])
        psi = ps[i] + lam * (ps[i + 1] - ps[i])
        rp_t = rp[i] + lam * (rp[i + 1] - rp[i])
        return float(theta), float(rp_t / psi) if psi > 0 else 0.0, float(psi)

    def total_variance(self, k: np.ndarray | float, t: float) -> np.ndarray:
        """eSSVI ``w(k, t)`` (decimal^2 * years)."""
        theta, rho, psi = self.params_at(t)
        return essvi_total_variance(k, theta, rho, psi)


_GRIDS: dict[tuple[str, int, int], tuple[np.ndarray, ...]] = {}


def _grid(kind: str, n_rho: int, n_psi: int) -> tuple[np.ndarray, ...]:
    """Fixed parts of the eSSVI candidate grids (computed once): for ``"coarse"``, the ``rho`` nodes and the
    squared unit ``psi`` nodes; for ``"zoom"``, the ``rho`` offsets and the ``psi`` factors."""
    key = (kind, n_rho, n_psi)
    if key not in _GRIDS:
        if kind == "coarse":
            _GRIDS[key] = (np.linspace(-0.995, 0.995, n_rho), np.linspace(0.0, 1.0, n_psi) ** 2)
        else:
            _GRIDS[key] = (np.linspace(-0.05, 0.05, n_rho), np.exp(np.linspace(-0.1, 0.1, n_psi)))
    return _GRIDS[key]


def _grid_select(theta: float, psi_prev: float, rp_prev: float, rho: np.ndarray, psi: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The ``(rho, psi)`` pairs of the grid ``rho x psi`` (``rho`` major) that satisfy the butterfly conditions
    and the calendar conditions against the previous slice."""
    r, one_r = rho[:, None], 1 + np.abs(rho)[:, None]
    ok = (psi * one_r <= 4.0) & (psi * psi * one_r <= 4.0 * theta)
    ok &= np.abs(r * psi - rp_prev) <= psi - psi_prev + 1e-12
    i, j = np.nonzero(ok)
    return rho[i], psi[j]


def _essvi_candidates(theta: float, psi_prev: float, rp_prev: float, n_rho: int, n_psi: int, psi_hi: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    rho, u2 = _grid("coarse", n_rho, n_psi)
    lo = max(psi_prev, 1e-6)
    return _grid_select(theta, psi_prev, rp_prev, rho, lo + (psi_hi - lo) * u2)


def _essvi_zoom(theta: float, psi_prev: float, rp_prev: float, r0: float, p0: float, n_grid: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Zoomed candidates around ``(r0, p0)`` that keep the conditions, then ``(r0, p0)`` itself."""
    d_rho, f_psi = _grid("zoom", n_grid, n_grid)
    rr, pp = _grid_select(theta, psi_prev, rp_prev, np.minimum(np.maximum(r0 + d_rho, -0.999), 0.999),
                          np.maximum(p0 * f_psi, psi_prev))
    return np.append(rr, r0), np.append(pp, p0)


def _essvi_grid(k: np.ndarray, theta: float, rho: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """``essvi_total_variance(k[None, :], theta, rho[:, None], psi[:, None])``, shape (C, n): the same
    operations with fewer temporaries."""
    r, p = rho[:, None], psi[:, None]
    out = np.multiply(r * p, k)
    out += theta
    d = np.multiply(p, k)
    d += theta * r
    d *= d
    d += theta * theta * (1.0 - r * r)
    np.sqrt(d, out=d)
    out += d
    out *= 0.5
    return out


def calibrate_essvi(
    t: Sequence[float] | np.ndarray,
    ks: Sequence[np.ndarray],
    ws: Sequence[np.ndarray],
    weights: Sequence[np.ndarray] | None = None,
    theta: Sequence[float] | np.ndarray | None = None,
) -> ESSVIFit:
    """Sequential eSSVI calibration (shortest expiry first), free of calendar and butterfly arbitrage.

    Parameters
    ----------
    t : sequence of float
        Times to expiry (years), strictly increasing.
    ks, ws : sequences of arrays
        Per slice: log-moneyness and market total variance of the quotes.
    weights : sequence of arrays, optional
        Per-slice weights of squared total-variance errors.
    theta : sequence of float, optional
        ATM total variance per slice (e.g. from the raw-SVI fits); default: linear interpolation of ``w`` at
        ``k = 0``. Forced non-decreasing.

    Returns
    -------
    ESSVIFit
    """
    t_arr = np.asarray(t, dtype=float)
    if t_arr.size == 0:
        raise DataError("eSSVI needs at least one slice", hint="fit a chain with quoted expiries")
    if np.any(np.diff(t_arr) <= 0) or t_arr[0] <= 0:
        raise ParameterError("eSSVI slice times must be positive and strictly increasing", hint="sort expiries")
    n = t_arr.size
    th = np.empty(n)
    for i in range(n):
        if theta is not None:
            th[i] = float(theta[i])
        else:
            o = np.argsort(ks[i])
            th[i] = float(np.interp(0.0, ks[i][o], ws[i][o]))
    th = np.maximum.accumulate(np.maximum(th, 1e-8))
    rho_out, psi_out, rmse = np.zeros(n), np.zeros(n), np.zeros(n)
    flags: list[tuple[str, ...]] = []
    psi_prev, rp_prev = 0.0, 0.0
    prev: tuple[float, float, float] | None = None  # (theta, rho, psi) of the previous slice
    for i in range(n):
        k = np.asarray(ks[i], dtype=float)
        w = np.asarray(ws[i], dtype=float)
        wt = np.ones_like(k) if weights is None else np.asarray(weights[i], dtype=float)
        wt = wt / np.sum(wt)
        span = max(float(np.max(np.abs(k))), 4.0 * np.sqrt(th[i]))
        k_check = np.linspace(-3.0 * span, 3.0 * span, 61)
        w_prev = None if prev is None else essvi_total_variance(k_check, *prev)  # previous slice on k_check
        psi_hi = min(4.0, 2.0 * np.sqrt(th[i]))
        psi_hi = max(psi_hi, psi_prev * 1.5 + 1e-6)
        f: list[str] = []
        best: tuple[float, float] = (0.0, 0.0)  # set by the first (non-zoom) pass
        for n_grid, zoom in ((41, False), (21, True)):
            if not zoom:
                rr, pp = _essvi_candidates(th[i], psi_prev, rp_prev, n_grid, n_grid, psi_hi)
            else:  # zoom around the current best
                rr, pp = _essvi_zoom(th[i], psi_prev, rp_prev, best[0], best[1], n_grid)
            if rr.size == 0:
                rr, pp = np.array([rho_out[i - 1] if i else 0.0]), np.array([psi_prev])
            sq = _essvi_grid(k, th[i], rr, pp)
            sq -= w
            sq *= sq
            sq *= wt
            sse = np.sum(sq, axis=1)
            if w_prev is None:
                j = int(np.argmin(sse))
            else:
                j = _first_calendar_free(sse, rr, pp, th[i], w_prev, k_check)
            best = (float(rr[j]), float(pp[j]))
        rho_out[i], psi_out[i] = best
        model = essvi_total_variance(k, th[i], rho_out[i], psi_out[i])
        rmse[i] = float(np.sqrt(np.sum(wt * (model - w) ** 2)))
        if w_prev is not None and np.any(
            essvi_total_variance(k_check, th[i], rho_out[i], psi_out[i]) < w_prev - 1e-12
        ):
            f.append("calendar")
        th_i, r_i, p_i = th[i], rho_out[i], psi_out[i]
        if p_i * (1 + abs(r_i)) > 4.0 + 1e-9 or p_i * p_i * (1 + abs(r_i)) > 4.0 * th_i + 1e-9:
            f.append("butterfly")
        flags.append(tuple(f))
        psi_prev, rp_prev = psi_out[i], rho_out[i] * psi_out[i]
        prev = (th_i, r_i, p_i)
    return ESSVIFit(t_arr, th, rho_out, psi_out, rmse, tuple(flags))


def _first_calendar_free(sse: np.ndarray, rho: np.ndarray, psi: np.ndarray, theta: float, w_prev: np.ndarray,
                         k_check: np.ndarray, batch: int = 16) -> int:
    """Index of the best candidate by ``sse + (1 + viol) 1e6 [viol > 1e-12]`` (``viol``: largest shortfall of
    ``w`` below the previous slice on ``k_check``).

    The penalty dwarfs any squared error of total variances, so the best candidate is the first calendar-free
    one in ``sse`` order when there is one: the check grid is evaluated for a few candidates at a time in
    that order, and for all of them only when the first batch has none (then the penalised minimum).
    """
    order = np.argsort(sse, kind="stable")
    head = order[:batch]
    short = np.subtract(w_prev, _essvi_grid(k_check, theta, rho[head], psi[head]))
    viol = np.maximum(np.max(short, axis=1), 0.0)
    ok = np.flatnonzero(viol <= 1e-12)
    if ok.size:
        return int(head[ok[0]])
    short = np.subtract(w_prev, _essvi_grid(k_check, theta, rho, psi))
    viol = np.maximum(np.max(short, axis=1), 0.0)
    return int(np.argmin(sse + (viol > 1e-12) * (1.0 + viol) * 1e6))
