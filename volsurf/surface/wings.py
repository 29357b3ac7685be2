"""Slice curves of the query API: the market layer where it is quoted, a continuation beyond, calendar order.

Per listed expiry ``i`` the query API answers total implied variance ``w_i(x)`` at log-moneyness ``x = ln(K/F)``:

- **market region** ``[x_a, x_b]`` (cache-grid nodes inside the liquid quoted range where the market layer's
  price carries an identifiable vol): a cubic Hermite interpolant of the market layer's exact ``w`` and
  ``dw/dx`` at the cache-grid nodes;
- **continuation** beyond it (beyond the last quote and beyond the strike domain alike):
  ``w(x) = w_T(x) + (d0 + d1 u + d2 u^2) exp(-u / L)``, ``u`` the distance outward from the seam, ``w_T`` the target wing
  (the slice's raw SVI, or its eSSVI slice when the raw SVI fit is flagged for butterfly arbitrage or negative
  variance), ``d0``, ``d1``, ``d2`` chosen so that ``w``, ``dw/dx`` and ``d2w/dx2`` are continuous at the seam;
- **calendar order**: ``W_i(x) = max_{j <= i} w_j(x)``.

Notes
-----
Continuity: ``w`` is C2 at each seam, so the Black price ``c(k) = Black(k, w)`` is C2 there (neither price nor IV
jumps) and Durrleman's ``g`` is continuous across it. Convexity: the density is ``g(x) n(d2) / sqrt(w)`` with Durrleman's
``g = (1 - x w'/(2w))^2 - w'^2/4 (1/w + 1/4) + w''/2``; the approach length ``L`` is the shortest of
``L_0 2^{8 j / 11}``, ``j = 0..11`` (up to ``256 L_0``) (``L_0 = max(s_atm / 2, 0.01)``, ``s_atm`` the ATM standard deviation) for which
``g >= 0``, ``w > 0`` and ``|w'| <= 2`` (Lee's moment bound) hold on a dense check grid of the continuation (out
to ``U_MAX = 8`` in log-moneyness beyond the seam, i.e. strikes below ``e^-8`` or above ``e^8`` times the forward)
(where a C2 join cannot turn towards the target without ``g < 0`` -- the market layer's density vanishes at the
seam, or its curvature there would make a bump -- ``d2`` is lowered or raised and the join is C1: ``w''`` jumps,
``g`` stays non-negative on both sides)
; when none qualifies the largest ``min g`` wins and
the side is flagged and continued in price space instead (:class:`PowerTail`). Calendar: ``c`` is increasing in ``w``, so
``c_i = max_{j <= i} c_j`` is convex, decreasing and in bounds whenever every ``c_j`` is, and non-decreasing in
``i`` by construction. Only the slices that exceed ``w_i`` somewhere on the check grid enter the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from volsurf.surface.basis import basis4, bspline_slope
from volsurf.surface.model import SliceFit, iv_norm
from volsurf.surface.svi import ESSVIFit, durrleman_g, svi_derivatives, svi_total_variance

TV_MIN = 1e-10  # normalised time value below which the market layer's vol is not trusted
L_FACTORS = np.geomspace(1.0, 256.0, 12)
L_FLOOR = 0.01  # log-moneyness: shortest approach length
# candidate quadratic coefficients (scale of the C2 value, extra curvature), in order of preference: the C2 join,
# then C1 joins with less curvature (a bump-free approach; ``w''`` jumps down where the seam's ``g`` allows it) or
# more (``w''`` jumps up: only adds density)
CURVATURE = np.array([[1.0, 0.0], [0.5, 0.0], [0.25, 0.0], [0.0, 0.0], [-0.5, 0.0], [1.0, 0.5], [1.0, 2.0], [1.0, 8.0]])
CANDIDATE_BATCH = 16  # candidates checked together (a shorter length is preferred, so most slices stop early)
U_MAX = 8.0  # log-moneyness: extent of the continuation check grid beyond the seam
U_CHECK = np.concatenate([[0.0], np.geomspace(1e-5, 0.05, 60), np.linspace(0.05, U_MAX, 320)[1:]])
COARSE_STEP = 4  # screening pass of the continuation checks: every 4th check point (and the last)
COARSE_CHECK = np.unique(np.r_[np.arange(0, U_CHECK.size, COARSE_STEP), U_CHECK.size - 1])
SEAM_SHIFTS = (2, 4, 8, 16, 32, 64)  # cache-grid nodes: inward moves of a seam whose continuation fails
ATM_NODES = 3  # cache-grid nodes each side of the money always solved (seams of a degenerate region lie within 2)
BAD_TARGET_FLAGS = frozenset({"durrleman", "negative_variance"})
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class WingSide:
    """One side (left or right) of every slice's continuation (arrays over slices).

    Attributes
    ----------
    seam : numpy.ndarray
        Log-moneyness of the seam (end of the market region).
    target : numpy.ndarray
        Raw-SVI parameters ``(a, b, rho, m, sigma)`` of the target wing, shape ``(n_slices, 5)``.
    target_name : tuple of str
        ``svi`` (the slice's raw SVI) or ``essvi`` (its eSSVI slice) per slice.
    d0, d1, d2, length : numpy.ndarray
        Correction ``(d0 + d1 u + d2 u^2) exp(-u / length)`` added to the target wing.
    g_min : numpy.ndarray
        Minimum of Durrleman's ``g`` on the check grid of the chosen continuation.
    ok : numpy.ndarray
        The chosen continuation passed every check (``g >= 0``, ``w > 0``, ``|w'| <= 2``).
    direction : float
        ``-1`` for the left side, ``+1`` for the right side.
    """

    seam: np.ndarray
    target: np.ndarray
    target_name: tuple[str, ...]
    d0: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    length: np.ndarray
    g_min: np.ndarray
    ok: np.ndarray
    direction: float


@dataclass(frozen=True)
class PowerTail:
    """Fallback continuation of one side in price space, for the slices where no smooth wing passes its checks.

    Left: put ``p(k) = p_a (k / k_a)^beta`` (``beta = k_a p'(k_a) / p(k_a) >= 1``); right: call
    ``c(k) = c_b (k / k_b)^-beta`` (``beta = -k_b c'(k_b) / c(k_b) > 0``). Both are C1 at the seam, convex and
    monotone (a power-law tail of the density), hence free of butterfly arbitrage and inside Lee's bounds; the
    total variance is implied from the price.

    Attributes
    ----------
    use : numpy.ndarray
        The slice's side uses the power tail.
    price : numpy.ndarray
        OTM price at the seam (put on the left, call on the right), normalised.
    beta : numpy.ndarray
        Exponent.
    """

    use: np.ndarray
    price: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True)
class SliceCurves:
    """Total variance of every listed slice at any log-moneyness (see the module docstring).

    Attributes
    ----------
    t : numpy.ndarray
        Slice times (years).
    grid : numpy.ndarray
        Cache grid in ``x = ln k`` (nodes of the market-region interpolant).
    w_node, dw_node : numpy.ndarray
        Market layer's exact ``w`` and ``dw/dx`` at the grid nodes, shape ``(n_slices, n_grid)`` (NaN where not
        identifiable).
    left, right : WingSide
        The two continuations.
    dominators : tuple of numpy.ndarray
        Per slice, the earlier slices that exceed it somewhere (they enter the calendar maximum).
    left_tail, right_tail : PowerTail or None
        Price-space fallback of the sides whose smooth continuation failed its checks.
    """

    t: np.ndarray
    grid: np.ndarray
    w_node: np.ndarray
    dw_node: np.ndarray
    left: WingSide
    right: WingSide
    dominators: tuple[np.ndarray, ...]
    left_tail: PowerTail | None = None
    right_tail: PowerTail | None = None

    # ---- raw curves (before the calendar maximum)
    def _hermite(self, rows: np.ndarray, at: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Cubic Hermite interpolant of the node data of slice ``rows[i]`` at ``x[at[i]]`` (pairs; the basis of
        each point is computed once)."""
        g = self.grid
        j = np.clip(np.searchsorted(g, x, side="right") - 1, 0, g.size - 2)
        h = g[j + 1] - g[j]
        s = np.clip((x - g[j]) / h, 0.0, 1.0)
        s2, s3 = s * s, s * s * s
        h00, h10, h01, h11 = 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, -2 * s3 + 3 * s2, s3 - s2
        h10, h11 = h10 * h, h11 * h
        ja = j[at]
        w0, w1 = self.w_node[rows, ja], self.w_node[rows, ja + 1]
        d0, d1 = self.dw_node[rows, ja], self.dw_node[rows, ja + 1]
        return h00[at] * w0 + h10[at] * d0 + h01[at] * w1 + h11[at] * d1

    def raw(self, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Total variance of slices ``rows`` before the calendar maximum, shape ``(rows, N)``.

        Each (slice, point) is in exactly one region: left of the left seam, right of the right seam, or between
        them; each is evaluated only with its own region's formula (elementwise, on the selected pairs)."""
        rows = np.atleast_1d(np.asarray(rows, dtype=int))
        x = np.asarray(x, dtype=float)
        lo, hi = self.left.seam[rows][:, None], self.right.seam[rows][:, None]
        xx = x[None, :]
        w = np.zeros((rows.size, x.size))
        for side, u, tail in ((self.left, lo - xx, self.left_tail), (self.right, xx - hi, self.right_tail)):
            ri, ci = np.nonzero(u > 0)
            if ri.size:
                rr, uu = rows[ri], u[ri, ci]
                with np.errstate(over="ignore", invalid="ignore"):
                    corr = (side.d0[rr] + (side.d1[rr] + side.d2[rr] * uu) * uu) * np.exp(
                        -np.minimum(uu, 1e300) / side.length[rr])
                target = svi_total_variance(x[ci], *(side.target[rr, c] for c in range(5)))
                w[ri, ci] = target + np.where(np.isfinite(corr), corr, 0.0)
            if tail is not None and np.any(tail.use[rows]):
                sel = np.flatnonzero(tail.use[rows])
                w[sel] = np.where(u[sel] > 0, _power_w(tail, side, rows[sel], x, w[sel]), w[sel])
        ri, ci = np.nonzero((xx >= lo) & (xx <= hi))
        if ri.size:
            w[ri, ci] = self._hermite(rows[ri], ci, x)
        return w

    def w(self, i: int, x: np.ndarray) -> np.ndarray:
        """Total variance of slice ``i`` at ``x`` (calendar maximum over the slices that dominate it)."""
        rows = np.append(self.dominators[i], i)
        vals = self.raw(rows, np.asarray(x, dtype=float).ravel())
        return vals.max(axis=0).reshape(np.shape(x))


def _power_w(tail: PowerTail, side: WingSide, rows: np.ndarray, x: np.ndarray, w_else: np.ndarray) -> np.ndarray:
    """Total variance implied by a power tail (``w_else`` where the price is below the IV solver's reach)."""
    from volsurf.pricing.iv import implied_volatility

    k = np.exp(x)[None, :]
    ratio = k / np.exp(side.seam[rows])[:, None]
    beta, p0 = tail.beta[rows][:, None], tail.price[rows][:, None]
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        price = p0 * ratio ** (beta if side.direction < 0 else -beta)
        kk = np.broadcast_to(k, price.shape)
        iv = implied_volatility(price, np.ones_like(price), kk, np.ones_like(price),
                                np.full(price.shape, side.direction > 0), 1.0)
    return np.where(np.isfinite(iv), iv * iv, w_else)


def _power_tail(slices: tuple[SliceFit, ...], side: WingSide) -> PowerTail:
    """Power-law fallback parameters at the seams of the sides that failed their checks."""
    knots = slices[0].knots
    coefs = np.stack([s.coef for s in slices])
    k = np.exp(side.seam)
    r = np.arange(len(slices))
    c = np.einsum("ij,ij->i", *_basis_rows(knots, coefs, k))
    dc = bspline_slope(knots, coefs, k)[r, r]
    if side.direction < 0:
        price = c - (1.0 - k)
        beta = k * (dc + 1.0) / np.maximum(price, 1e-300)
        beta = np.maximum(beta, 1.0)
    else:
        price = c
        beta = np.maximum(-k * dc / np.maximum(price, 1e-300), 1e-6)
    use = ~side.ok & (price > 0)
    return PowerTail(use=use, price=price, beta=beta)


def _basis_rows(knots: np.ndarray, coefs: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Basis values at ``k[i]`` and the matching coefficients of slice ``i`` (for a per-slice evaluation)."""
    vals, first = basis4(knots, k)
    idx = first[:, None] + np.arange(4)
    return vals, coefs[np.arange(k.size)[:, None], idx]


def _norm_pdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _node_data(slices: tuple[SliceFit, ...], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact market-layer ``w``, ``dw/dx`` and a trust mask at the grid nodes, all slices at once.

    Notes
    -----
    ``c(k) = Black(k, w(k))`` gives ``c' = -N(d2) + n(d1) / (2 sqrt(w)) dw/dk`` (with ``dBlack/dk = -N(d2)`` and
    ``dBlack/dw = n(d1) / (2 sqrt(w))``), so ``dw/dx = k dw/dk = 2 k sqrt(w) (c' + N(d2)) / n(d1)``.
    """
    knots = slices[0].knots
    k = np.exp(grid)
    vals, first = basis4(knots, k)
    coefs = np.stack([s.coef for s in slices])
    c = np.einsum("ij,sij->si", vals, coefs[:, first[:, None] + np.arange(4)])
    dc = bspline_slope(knots, coefs, k)
    t = np.array([s.t for s in slices])[:, None]
    kk = np.broadcast_to(k, c.shape)
    # Only nodes that a seam or the market region can use are solved (the costly part): the liquid quoted range
    # and one node beyond it (the Hermite interpolant at a seam node reads its right neighbour), and a few nodes
    # around the money (where a degenerate region's seams sit); the rest stay NaN (untrusted).
    lo_q = np.log(np.array([s.quoted_range[0] for s in slices]))[:, None]
    hi_q = np.log(np.array([s.quoted_range[1] for s in slices]))[:, None]
    atm = int(np.argmin(np.abs(grid)))
    near_atm = np.abs(np.arange(grid.size) - atm) <= ATM_NODES
    in_range = (grid[None, :] >= lo_q) & (grid[None, :] <= hi_q)
    need = in_range | near_atm[None, :]
    need[:, 1:] |= in_range[:, :-1]
    need[:, :-1] |= in_range[:, 1:]
    iv1 = np.full(c.shape, np.nan)
    iv1[need] = iv_norm(c[need], kk[need], 1.0)  # t = 1: w = iv_1^2
    iv = iv1 / np.sqrt(t)
    w = iv * iv * t
    sw = np.sqrt(w)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d1 = -grid[None, :] / sw + 0.5 * sw
        dw = 2.0 * kk * sw * (dc + ndtr(d1 - sw)) / _norm_pdf(d1)
    ok = np.isfinite(w) & np.isfinite(dw) & (w > 0) & (c - np.maximum(1.0 - kk, 0.0) >= TV_MIN)
    return w, dw, ok


def _second_derivative(slices: tuple[SliceFit, ...], x: np.ndarray, w: np.ndarray, dw: np.ndarray) -> np.ndarray:
    """Exact ``d2w/dx2`` of the market layer of each slice at its own point ``x[i]`` (``w``, ``dw``: ``w`` and
    ``dw/dx`` there).

    Notes
    -----
    From ``c(k) = B(k, w(k))``: ``c'' = B_kk + 2 B_kw w_k + B_ww w_k^2 + B_w w_kk`` with ``B_w = n(d1) / (2 sqrt(w))``,
    ``B_kk = n(d2) / (k sqrt(w))``, ``B_kw = -n(d2) (ln k / (2 w^1.5) - 1 / (4 sqrt(w)))``,
    ``B_ww = B_w (-d1 (ln k / (2 w^1.5) + 1 / (4 sqrt(w))) - 1 / (2 w))``; then ``w_xx = k w_k + k^2 w_kk``.
    ``c''`` is the central difference of the exact ``c'`` (the cubic B-spline is C2).
    """
    knots = slices[0].knots
    coefs = np.stack([sl.coef for sl in slices])
    k = np.exp(x)
    h = 1e-6 * k
    r = np.arange(len(slices))
    c2 = (bspline_slope(knots, coefs, k + h)[r, r] - bspline_slope(knots, coefs, k - h)[r, r]) / (2.0 * h)
    sw = np.sqrt(w)
    d1 = -x / sw + 0.5 * sw
    d2 = d1 - sw
    b_w = _norm_pdf(d1) / (2.0 * sw)
    b_kk = _norm_pdf(d2) / (k * sw)
    b_kw = -_norm_pdf(d2) * (x / (2.0 * w * sw) - 0.25 / sw)
    b_ww = b_w * (-d1 * (x / (2.0 * w * sw) + 0.25 / sw) - 0.5 / w)
    w_k = dw / k
    w_kk = (c2 - b_kk - 2.0 * b_kw * w_k - b_ww * w_k * w_k) / b_w
    return k * w_k + k * k * w_kk


def _regions(slices: tuple[SliceFit, ...], grid: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seams ``(x_a, x_b)`` per slice: the run of trusted nodes around the money inside the liquid quoted range."""
    n = len(slices)
    lo_q = np.log(np.array([s.quoted_range[0] for s in slices]))[:, None]
    hi_q = np.log(np.array([s.quoted_range[1] for s in slices]))[:, None]
    inside = ok & (grid[None, :] >= lo_q) & (grid[None, :] <= hi_q)
    atm = int(np.argmin(np.abs(grid)))
    idx = np.arange(grid.size)[None, :]
    # last untrusted node at or left of the money, first one right of it
    bad_left = np.where(~inside & (idx <= atm), idx, -1).max(axis=1)
    bad_right = np.where(~inside & (idx > atm), idx, grid.size).min(axis=1)
    a = np.minimum(bad_left + 1, atm)
    b = np.maximum(bad_right - 1, atm)
    degenerate = (b - a < 3) | ~inside[np.arange(n), np.clip(a, 0, grid.size - 1)]
    a = np.where(degenerate, atm, a)
    b = np.where(degenerate, np.minimum(atm + 1, grid.size - 1), b)
    return a, b


def _targets(slices: tuple[SliceFit, ...], essvi: ESSVIFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate target wings per slice as raw-SVI parameters: the slice's raw SVI, its eSSVI slice, and whether
    the raw SVI is usable (not flagged for butterfly arbitrage or negative variance).

    Notes
    -----
    eSSVI ``w = theta/2 (1 + rho phi x + sqrt((phi x + rho)^2 + 1 - rho^2))`` with ``phi = psi / theta`` is raw SVI
    with ``a = theta (1 - rho^2) / 2``, ``b = psi / 2``, ``rho``, ``m = -rho / phi``, ``sigma = sqrt(1 - rho^2) / phi``.
    """
    svi = np.zeros((len(slices), 5))
    ess = np.zeros((len(slices), 5))
    usable = np.zeros(len(slices), dtype=bool)
    for i, s in enumerate(slices):  # a loop over expiries (tens)
        p = s.svi_fit.params
        svi[i] = (p.a, p.b, p.rho, p.m, p.sigma)
        usable[i] = BAD_TARGET_FLAGS.isdisjoint(s.svi_fit.flags)
        theta, rho, psi = essvi.params_at(s.t)
        phi = psi / max(theta, 1e-300)
        if phi <= 0:
            ess[i] = (theta, 0.0, 0.0, 0.0, 1.0)
        else:
            ess[i] = (0.5 * theta * (1 - rho * rho), 0.5 * psi, rho, -rho / phi,
                      np.sqrt(max(1 - rho * rho, 1e-12)) / phi)
    return svi, ess, usable


def _choose_side(x0: np.ndarray, w0: np.ndarray, dw0: np.ndarray, ddw0: np.ndarray, target: np.ndarray,
                 s_atm: np.ndarray, direction: float, name: str, exact_gmin: bool = True) -> WingSide:
    """Shortest qualifying approach length per slice for one side (vectorized over slices and candidates).

    Notes
    -----
    With ``P(u) = d0 + d1 u + d2 u^2`` and ``s`` the outward direction, ``dw/dx = w_T' + s (P' - P/L) e^{-u/L}``
    and ``d2w/dx2 = w_T'' + (P'' - 2 P'/L + P/L^2) e^{-u/L}``; matching ``w``, ``w'`` and ``w''`` of the market
    layer at ``u = 0`` gives ``d0 = w_m - w_T``, ``d1 = s (w_m' - w_T') + d0 / L`` and
    ``d2 = (w_m'' - w_T'' + 2 d1 / L - d0 / L^2) / 2``, so Durrleman's ``g`` is continuous across the seam.
    """
    wt0, wt1, wt2 = svi_derivatives(x0, target[:, 0], target[:, 1], target[:, 2], target[:, 3], target[:, 4])
    d0 = w0 - wt0
    # candidates (approach length x extra curvature), in order of preference: shortest length, then C2 first
    lengths = np.repeat(np.maximum(0.5 * s_atm, L_FLOOR)[:, None] * L_FACTORS[None, :], CURVATURE.shape[0], axis=1)
    scale, extra = (np.tile(CURVATURE[:, j], L_FACTORS.size)[None, :] for j in (0, 1))
    d1 = direction * (dw0 - wt1)[:, None] + d0[:, None] / lengths
    d2 = 0.5 * ((ddw0 - wt2)[:, None] + 2.0 * d1 / lengths - d0[:, None] / (lengths * lengths))
    d2 = scale * d2 + extra * (np.abs(d0)[:, None] / (lengths * lengths) + np.abs(d1) / lengths)
    # one check grid of distances per slice, shared by the candidates: the target's derivatives once per slice
    u1 = U_CHECK[None, :]  # (1, p)
    x = x0[:, None] + direction * u1
    wt, wt_1, wt_2 = svi_derivatives(x, *(target[:, c][:, None] for c in range(5)))  # (n, p)
    target_ok = (np.min(durrleman_g(x, wt, wt_1, wt_2), axis=1) >= 0) & np.all(wt > 0, axis=1) \
        & np.all(np.abs(wt_1) <= 2.0 + 1e-9, axis=1)
    n_c = lengths.shape[1]
    g_min = np.full((x0.size, n_c), -np.inf)
    good = np.zeros((x0.size, n_c), dtype=bool)
    todo = np.flatnonzero(target_ok)
    sub = COARSE_CHECK

    exact = np.zeros((x0.size, n_c), dtype=bool)  # g_min from the full check (else the screen's upper bound)

    def full(rows: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The full check of candidate ``cand[i]`` of slice ``rows[i]``."""
        gm, ok = _candidate_checks(x[rows], wt[rows], wt_1[rows], wt_2[rows], d0[rows], d1[rows, cand][:, None],
                                   d2[rows, cand][:, None], lengths[rows, cand][:, None], direction, U_CHECK)
        exact[rows, cand] = True
        return gm[:, 0], ok[:, 0]

    for c0 in range(0, n_c, CANDIDATE_BATCH):  # candidates in order of preference; stop once every slice has one
        if todo.size == 0:
            break
        cs = slice(c0, c0 + CANDIDATE_BATCH)
        # Screen on every COARSE_STEP-th check point: a candidate failing there fails the full check (same values
        # at those points), and its screened g_min bounds the full one from above. Survivors are checked in full.
        gm, ok = _candidate_checks(x[todo][:, sub], wt[todo][:, sub], wt_1[todo][:, sub], wt_2[todo][:, sub],
                                   d0[todo], d1[todo, cs], d2[todo, cs], lengths[todo, cs], direction, U_CHECK[sub])
        pr, pc = np.nonzero(ok)
        if pr.size:
            gm[pr, pc], ok[pr, pc] = full(todo[pr], np.arange(n_c)[cs][pc])
        g_min[todo, cs], good[todo, cs] = gm, ok
        todo = todo[~ok.any(axis=1)]
    # A slice without a passing candidate takes the one with the largest g_min (the first of equals). Branch and
    # bound: check in full the candidate with the largest bound until no bound reaches the best full g_min.
    redo = np.flatnonzero(target_ok & ~good.any(axis=1)) if exact_gmin else np.zeros(0, dtype=int)
    while redo.size:
        bound = np.where(exact[redo], -np.inf, g_min[redo])
        best_full = np.max(np.where(exact[redo], g_min[redo], -np.inf), axis=1)
        pick = np.argmax(bound, axis=1)
        go = (bound[np.arange(redo.size), pick] >= best_full) & ~exact[redo, pick]
        redo, pick = redo[go], pick[go]
        if redo.size:
            g_min[redo, pick] = full(redo, pick)[0]
    if exact_gmin:
        g_min = np.where(exact | ~target_ok[:, None], g_min, -np.inf)  # bounds never win: keep only full values
    first_good = np.argmax(good, axis=1)
    best = np.where(good.any(axis=1), first_good, np.argmax(g_min, axis=1))
    r = np.arange(x0.size)
    return WingSide(seam=x0, target=target, target_name=(name,) * x0.size, d0=d0, d1=d1[r, best], d2=d2[r, best],
                    length=lengths[r, best], g_min=g_min[r, best], ok=good[r, best], direction=direction)


def _candidate_checks(x: np.ndarray, wt: np.ndarray, wt_1: np.ndarray, wt_2: np.ndarray, d0: np.ndarray,
                      d1: np.ndarray, d2: np.ndarray, lengths: np.ndarray, direction: float,
                      u_check: np.ndarray = U_CHECK) -> tuple[np.ndarray, np.ndarray]:
    """``min g`` and pass/fail (``g >= 0``, ``w > 0``, ``|w'| <= 2``) of candidate continuations on the check grid
    ``u_check`` (distances from the seam; ``x``, ``wt``... at those distances), slices x candidates."""
    u = u_check[None, None, :]
    ln = lengths[:, :, None]
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(-u / ln)  # (n, c, p)
    dd0, dd1, dd2 = d0[:, None, None], d1[:, :, None], d2[:, :, None]
    poly = dd0 + (dd1 + dd2 * u) * u
    poly1 = dd1 + 2.0 * dd2 * u
    w = wt[:, None, :] + poly * e
    w1 = wt_1[:, None, :] + direction * (poly1 - poly / ln) * e
    w2 = wt_2[:, None, :] + (2.0 * dd2 - 2.0 * poly1 / ln + poly / (ln * ln)) * e
    g = durrleman_g(x[:, None, :], w, w1, w2)
    g_min = np.min(np.where(np.isfinite(g), g, -np.inf), axis=2)
    ok = (g_min >= 0) & np.all(w > 0, axis=2) & np.all(np.abs(w1) <= 2.0 + 1e-9, axis=2)
    return g_min, ok


def _select(use_first: np.ndarray, first: WingSide, second: WingSide) -> WingSide:
    """Per slice: ``first`` where ``use_first``, else ``second``."""

    def sel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(use_first.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

    names = tuple(f if u else s for f, s, u in zip(first.target_name, second.target_name, use_first, strict=True))
    return WingSide(seam=sel(first.seam, second.seam), target=sel(first.target, second.target), target_name=names,
                    d0=sel(first.d0, second.d0), d1=sel(first.d1, second.d1), d2=sel(first.d2, second.d2),
                    length=sel(first.length, second.length), g_min=sel(first.g_min, second.g_min),
                    ok=sel(first.ok, second.ok), direction=first.direction)


def _scatter(full: WingSide, rows: np.ndarray, part: WingSide) -> WingSide:
    """``full`` with the slices ``rows`` replaced by ``part`` (a side computed for those slices only)."""

    def put(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[rows] = b
        return out

    names = list(full.target_name)
    for j, r in enumerate(rows):
        names[r] = part.target_name[j]
    return WingSide(seam=put(full.seam, part.seam), target=put(full.target, part.target), target_name=tuple(names),
                    d0=put(full.d0, part.d0), d1=put(full.d1, part.d1), d2=put(full.d2, part.d2),
                    length=put(full.length, part.length), g_min=put(full.g_min, part.g_min),
                    ok=put(full.ok, part.ok), direction=full.direction)


def _take(side: WingSide, mask: np.ndarray) -> WingSide:
    """The slices of ``side`` selected by ``mask``."""
    return WingSide(seam=side.seam[mask], target=side.target[mask],
                    target_name=tuple(n for n, m in zip(side.target_name, mask, strict=True) if m),
                    d0=side.d0[mask], d1=side.d1[mask], d2=side.d2[mask], length=side.length[mask],
                    g_min=side.g_min[mask], ok=side.ok[mask], direction=side.direction)


def _side(slices: tuple[SliceFit, ...], grid: np.ndarray, w: np.ndarray, dw: np.ndarray, node: np.ndarray,
          direction: float, svi: np.ndarray, ess: np.ndarray, usable: np.ndarray, s_atm: np.ndarray,
          exact_gmin: bool = True) -> WingSide:
    """One side's continuation of ``slices`` at their seam nodes ``node``: raw SVI where usable and it passes,
    else eSSVI (computed only for the slices that need it). ``exact_gmin=False``: a slice without a passing
    candidate gets an arbitrary failing one (for callers that keep only the passing ones)."""
    r = np.arange(len(slices))
    x0, w0, dw0 = grid[node], w[r, node], dw[r, node]
    ddw0 = _second_derivative(slices, x0, w0, dw0)
    first = _choose_side(x0, w0, dw0, ddw0, svi, s_atm, direction, "svi", exact_gmin)
    need = np.flatnonzero(~(usable & first.ok))
    if need.size == 0:
        return first
    second = _choose_side(x0[need], w0[need], dw0[need], ddw0[need], ess[need], s_atm[need], direction, "essvi",
                          exact_gmin)
    return _scatter(first, need, second)


def build_curves(slices: tuple[SliceFit, ...], essvi: ESSVIFit, grid: np.ndarray,
                 check: np.ndarray) -> SliceCurves:
    """Build the :class:`SliceCurves` of a fitted surface on the cache ``grid``; ``check`` is the log-moneyness
    grid on which the calendar dominators are found.

    Notes
    -----
    Where no continuation passes its checks at the outermost trusted node (typically the market layer's density
    vanishes over the last stretch of the quoted range, beyond the last informative quote), the seam moves inward
    by ``SEAM_SHIFTS`` cache-grid nodes until one does (never past the money).
    """
    w, dw, ok = _node_data(slices, grid)
    a, b = _regions(slices, grid, ok)
    r = np.arange(len(slices))
    svi, ess, usable = _targets(slices, essvi)
    s_atm = np.sqrt(np.maximum(np.array([s.atm_total_variance for s in slices]), 1e-8))
    atm = int(np.argmin(np.abs(grid)))
    sides = []
    for start, direction in ((a, -1.0), (b, 1.0)):
        side = _side(slices, grid, w, dw, start, direction, svi, ess, usable, s_atm)
        for shift in SEAM_SHIFTS:
            bad = np.flatnonzero(~side.ok)
            if bad.size == 0:
                break
            node = start[bad] - int(direction) * shift
            node = np.minimum(node, atm - 2) if direction < 0 else np.maximum(node, atm + 2)
            moved = _side(tuple(slices[j] for j in bad), grid, w[bad], dw[bad], node, direction, svi[bad], ess[bad],
                          usable[bad], s_atm[bad], exact_gmin=False)  # only the passing ones are kept
            fixed = moved.ok
            if np.any(fixed):
                side = _scatter(side, bad[fixed], _take(moved, fixed))
        sides.append(side)
    left, right = sides
    t = np.array([s.t for s in slices])
    tails = (_power_tail(slices, left), _power_tail(slices, right))
    curves = SliceCurves(t=t, grid=grid, w_node=w, dw_node=dw, left=left, right=right,
                         dominators=tuple(np.zeros(0, dtype=int) for _ in slices), left_tail=tails[0],
                         right_tail=tails[1])
    raw = curves.raw(r, check)
    # calendar maximum: slice i takes the maximum over the earlier slices that exceed it anywhere on the check grid
    dom = []
    for i in r:  # a loop over expiries (tens)
        dom.append(np.flatnonzero(np.any(raw[:i] > raw[i][None, :], axis=1)))
    return SliceCurves(t=t, grid=grid, w_node=w, dw_node=dw, left=left, right=right, dominators=tuple(dom),
                       left_tail=tails[0], right_tail=tails[1])
