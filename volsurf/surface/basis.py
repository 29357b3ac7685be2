"""Cubic B-spline machinery of the market layer: the shared knot vector, the basis and its evaluation, the slope
matrix and the knot-only blocks of the QP (built once per knot vector).

Notes
-----
A cubic B-spline ``c(k) = sum_j a_j N_j(k)`` on a clamped knot vector ``t_0 = ... = t_3 < ... < t_{n} = ... =
t_{n+3}`` has derivative ``c'(k) = sum_j d_j M_j(k)`` with quadratic B-splines ``M_j`` and slope coefficients
``d_j = 3 (a_j - a_{j-1}) / (t_{j+3} - t_j)``. Because the ``M_j`` are non-negative and sum to one, ``c'`` is a
convex combination of the ``d_j`` and ``c''`` a non-negative combination of their differences: constraints on
the coefficients are sufficient for the whole curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FOUR = np.arange(4)


def common_knots(k_dom: tuple[float, float], s_min: float) -> np.ndarray:
    """Clamped cubic knot vector (in ``k``) shared by all expiries.

    Breakpoints are spaced ``0.3 s_min`` apart at the money (``s_min``: the smallest ATM standard deviation
    of the chain) and 10% wider at each step outwards in log-moneyness, out to the domain ends.

    Parameters
    ----------
    k_dom : tuple of float
        Strike domain ``(k_lo, k_hi)`` in ``k = K / F``.
    s_min : float
        Smallest ATM standard deviation ``sigma sqrt(t)`` of the chain.

    Returns
    -------
    numpy.ndarray
        Knot vector with the end knots repeated four times.
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


def basis4(knots: np.ndarray, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """The four non-zero cubic B-splines at ``x`` (clipped to the knot range).

    Returns
    -------
    vals : numpy.ndarray
        Basis values, shape ``(N, 4)``.
    first : numpy.ndarray
        Index of the first of the four basis functions, shape ``(N,)``.

    Notes
    -----
    Cox-de Boor recursion (Piegl-Tiller A2.2), vectorized over the points: one pass replaces a sparse design
    matrix (whose construction costs far more than the arithmetic).
    """
    n = knots.size - 4
    xc = np.clip(np.asarray(x, dtype=float).ravel(), knots[0], knots[-1])
    i = np.clip(np.searchsorted(knots, xc, side="right") - 1, 3, n - 1)
    vals = np.zeros((xc.size, 4))
    vals[:, 0] = 1.0
    zero = np.zeros(0)
    left = [zero] + [xc - knots[i + 1 - j] for j in (1, 2, 3)]
    right = [zero] + [knots[i + j] - xc for j in (1, 2, 3)]
    for j in (1, 2, 3):
        saved = np.zeros(xc.size)
        for r in range(j):
            # denominators span the non-empty interval [knots[i], knots[i + 1]]: never zero
            temp = vals[:, r] / (right[r + 1] + left[j - r])
            vals[:, r] = saved + right[r + 1] * temp
            saved = left[j - r] * temp
        vals[:, j] = saved
    return vals, i - 3


def bspline_eval(knots: np.ndarray, coef: np.ndarray, x: np.ndarray | float) -> np.ndarray:
    """Value of the cubic B-spline at ``x`` (clipped to the knot range; NaN stays NaN)."""
    x = np.asarray(x, dtype=float)
    vals, first = basis4(knots, x)
    out = np.einsum("ij,ij->i", vals, np.asarray(coef, dtype=float)[first[:, None] + FOUR])
    return out.reshape(x.shape)


def quad_basis3(knots: np.ndarray, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """The three non-zero quadratic B-splines of the derivative space at ``x`` (clipped to the knot range):
    values ``(N, 3)`` and the index of the first one (an index into the slope coefficients of
    :func:`slope_matrix`). Cox-de Boor on the knot vector without its two end knots."""
    k2 = knots[1:-1]
    n = k2.size - 3
    xc = np.clip(np.asarray(x, dtype=float).ravel(), k2[0], k2[-1])
    i = np.clip(np.searchsorted(k2, xc, side="right") - 1, 2, n - 1)
    vals = np.zeros((xc.size, 3))
    vals[:, 0] = 1.0
    zero = np.zeros(0)
    left = [zero] + [xc - k2[i + 1 - j] for j in (1, 2)]
    right = [zero] + [k2[i + j] - xc for j in (1, 2)]
    for j in (1, 2):
        saved = np.zeros(xc.size)
        for r in range(j):
            temp = vals[:, r] / (right[r + 1] + left[j - r])
            vals[:, r] = saved + right[r + 1] * temp
            saved = left[j - r] * temp
        vals[:, j] = saved
    return vals, i - 2


def bspline_slope(knots: np.ndarray, coef: np.ndarray, x: np.ndarray | float) -> np.ndarray:
    """First derivative ``c'(x)`` of the cubic B-spline(s) (clipped to the knot range).

    ``coef`` of shape ``(n,)`` or ``(S, n)`` (several curves on the same knots); the result has shape ``x.shape``
    or ``(S,) + x.shape``.

    Notes
    -----
    ``c' = sum_j d_j M_j`` with the quadratic B-splines ``M_j`` (:func:`quad_basis3`) and the slope coefficients
    ``d = D a`` of :func:`slope_matrix`; evaluated exactly, not by finite differences.
    """
    x = np.asarray(x, dtype=float)
    coef = np.asarray(coef, dtype=float)
    d = coef @ slope_matrix(knots).T
    vals, first = quad_basis3(knots, x)
    idx = first[:, None] + np.arange(3)
    if d.ndim == 1:
        return np.einsum("ij,ij->i", vals, d[idx]).reshape(x.shape)
    return np.einsum("ij,sij->si", vals, d[:, idx]).reshape((d.shape[0], *x.shape))


def slope_matrix(knots: np.ndarray) -> np.ndarray:
    """Rows giving the B-spline coefficients of ``c'`` (quadratic): ``3 (a_j - a_{j-1}) / (t_{j+3} - t_j)``."""
    n = knots.size - 4
    j = np.arange(1, n)
    w = 3.0 / (knots[j + 3] - knots[j])
    out = np.zeros((n - 1, n))
    out[j - 1, j - 1] = -w
    out[j - 1, j] = w
    return out


@dataclass(frozen=True)
class BasisBlocks:
    """Everything of the QP that depends only on the (shared) knot vector.

    Attributes
    ----------
    n : int
        Number of B-spline coefficients.
    rough : numpy.ndarray
        Dense (banded) roughness matrix on the coefficients.
    p_rows, p_cols, p_indptr : numpy.ndarray
        CSC pattern of the upper band (width 3) of the coefficient block of the objective.
    c_rows, c_cols, c_fix, c_s : numpy.ndarray
        The constant constraint rows (convexity, slope bounds, price bounds, chord) as entries with values
        ``c_fix + s c_s`` (``s``: the slice's price scale).
    c_b0, c_b1 : numpy.ndarray
        Right-hand side ``c_b0 + c_b1 / s`` of those rows.
    n_c : int
        Number of constant rows.
    brk : numpy.ndarray
        Distinct breakpoints.
    """

    n: int
    rough: np.ndarray
    p_rows: np.ndarray
    p_cols: np.ndarray
    p_indptr: np.ndarray
    c_rows: np.ndarray
    c_cols: np.ndarray
    c_fix: np.ndarray
    c_s: np.ndarray
    c_b0: np.ndarray
    c_b1: np.ndarray
    n_c: int
    brk: np.ndarray


def basis_blocks(knots: np.ndarray) -> BasisBlocks:
    """The knot-only blocks of the QP (:class:`BasisBlocks`), memoised for the last knot vector (one surface at
    a time)."""
    return _basis_blocks(np.ascontiguousarray(knots, dtype=float).tobytes())


@lru_cache(maxsize=1)
def _basis_blocks(key: bytes) -> BasisBlocks:
    knots = np.frombuffer(key, dtype=float)
    n = knots.size - 4
    d1 = slope_matrix(knots)
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
    return BasisBlocks(
        n=n,
        rough=rough,
        p_rows=p_rows.astype(np.int32),
        p_cols=p_cols,
        p_indptr=p_indptr.astype(np.int32),
        c_rows=c_rows,
        c_cols=c_cols,
        c_fix=fix[c_rows, c_cols],
        c_s=with_s[c_rows, c_cols],
        c_b0=b0,
        c_b1=b1,
        n_c=n_c,
        brk=np.unique(knots),
    )
