"""The market layer's convex QP per expiry: assembly in CSC form, the Clarabel solve, the lazy quote rounds, the
calendar floors/caps and the projection that makes the constraints exact.

Notes
-----
Variables: the B-spline coefficients ``a`` of the normalised call ``c(k)`` (divided by the ATM standard deviation
``s``) and one L1 slack per quote. Objective: ``sum_q w_q ((c(k_q) - mid_q) / hs_q)^2 + lambda s^3 a' R a +
sum_q rho_q slack_q`` (``hs``: half-spread, ``R``: roughness of the slope coefficients). Constraints ``A x <= b``:
each quote inside ``[lo - hs slack, hi + hs slack]``; the knot-only rows of :class:`BasisBlocks` (convexity,
slopes in ``[-1, 0]``, price bounds, chord); ``a >= floor`` (calendar, previous expiry) on a mask; ``a <= cap``
(backward calendar pass).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from volsurf.surface.basis import FOUR, BasisBlocks, basis4, basis_blocks
from volsurf.surface.model import INSIDE_TOL, PreparedExpiry, bs_call_norm
from volsurf.surface.svi import svi_total_variance

# QP weights. The band penalty dwarfs the tracking term (<= 1 per quote inside the band), so quotes leave
# their band only when no-arbitrage forces it.
BAND_PENALTY = 1000.0
UPPER_ONLY_PENALTY = 100.0
PSEUDO_WEIGHT = 0.05
PSEUDO_PENALTY = 1.0
PSEUDO_VOL_BAND = 0.02
HS_FLOOR = 1e-6  # normalised price: floor of a band's half-width (QP conditioning)
FLOOR_MARGIN = 0.5  # ATM standard deviations: the previous slice's quoted range counts this much wider
SOLVED_STATUSES = frozenset({"Solved", "AlmostSolved"})


@dataclass(frozen=True)
class QuoteBlock:
    """The rows of one slice's QP that do not change between rounds.

    Attributes
    ----------
    liquid : numpy.ndarray
        Quote has a bid (else only its upper bound counts).
    lo, hi : numpy.ndarray
        Normalised band of each quote.
    v, f : numpy.ndarray
        Basis values ``(m, 4)`` and first basis index ``(m,)`` at each quote.
    p_lo, p_hi, p_v, p_f : numpy.ndarray
        The same for the raw-SVI pseudo-quotes beyond the quotes.
    range : tuple of float
        ``k`` range of the liquid quotes.
    """

    liquid: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    v: np.ndarray
    f: np.ndarray
    p_lo: np.ndarray
    p_hi: np.ndarray
    p_v: np.ndarray
    p_f: np.ndarray
    range: tuple[float, float]


@dataclass
class SliceContext:
    """What every QP of one slice shares: the knot-only blocks, the price scale, the quote rows, the active set.

    Attributes
    ----------
    bas : BasisBlocks
        Knot-only QP blocks.
    s_atm : float
        ATM standard deviation (price scale of the QP).
    quotes : QuoteBlock
        Quote and pseudo-quote rows.
    active : numpy.ndarray
        Quotes in the QP (grown lazily by the rounds).
    use : numpy.ndarray
        Which of the prepared quotes enter the QP (inside the liquid range).
    roughness : float
        Roughness weight.
    rounds : int
        Maximum lazy-constraint rounds.
    """

    bas: BasisBlocks
    s_atm: float
    quotes: QuoteBlock
    active: np.ndarray
    use: np.ndarray
    roughness: float
    rounds: int
    rows: QPRows | None = None


@dataclass(frozen=True)
class QPRows:
    """Every per-row quantity of one slice's QPs (all quotes, then the pseudo-quotes), computed once per slice:
    a QP takes the rows of its active quotes (elementwise, so the values are those of a per-QP computation).

    Attributes
    ----------
    n_q : int
        Number of quote rows (the pseudo-quotes follow).
    tail : numpy.ndarray
        Row indices of the pseudo-quotes.
    cols, v : numpy.ndarray
        Coefficient index and basis value of each row's four basis functions, ``(M, 4)``.
    g_idx, g_val : numpy.ndarray
        Flat ``(n, n)`` index and value of each row's 16 objective (Gram) terms, ``(M, 16)``.
    q_val : numpy.ndarray
        Each row's four linear-objective terms, ``(M, 4)``.
    penalty, hs_neg, b_hi, b_lo : numpy.ndarray
        Slack penalty, ``-hs / s`` (slack coefficient), right-hand sides of the upper and lower band rows.
    p_idx, p_rough : numpy.ndarray
        Flat index of the objective's band pattern and its roughness part.
    c_vals, c_b : numpy.ndarray
        Values and right-hand side of the constant rows of :class:`BasisBlocks` at this slice's scale.
    span : numpy.ndarray
        ``(t_{j+3} - t_j) / 3`` of the slope coefficients (for :func:`project`).
    atm : int
        Coefficient nearest the money (for :func:`project`).
    """

    n_q: int
    tail: np.ndarray
    cols: np.ndarray
    v: np.ndarray
    g_idx: np.ndarray
    g_val: np.ndarray
    q_val: np.ndarray
    penalty: np.ndarray
    hs_neg: np.ndarray
    b_hi: np.ndarray
    b_lo: np.ndarray
    p_idx: np.ndarray
    p_rough: np.ndarray
    c_vals: np.ndarray
    c_b: np.ndarray
    span: np.ndarray
    atm: int


def qp_rows(bas: BasisBlocks, knots: np.ndarray, s_atm: float, quotes: QuoteBlock, roughness: float) -> QPRows:
    """The :class:`QPRows` of one slice (the arithmetic of :func:`fit_slice_qp`, on every row at once)."""
    n = bas.n
    n_q, n_p = quotes.lo.size, quotes.p_lo.size
    all_lo = np.concatenate([quotes.lo, quotes.p_lo])
    all_hi = np.concatenate([quotes.hi, quotes.p_hi])
    v = np.concatenate([quotes.v, quotes.p_v])
    f = np.concatenate([quotes.f, quotes.p_f])
    mid = 0.5 * (all_lo + all_hi)
    # floor the half-width (about a 0.01-point tick on a 7500 index): keeps the QP well conditioned
    hs = np.maximum(0.5 * (all_hi - all_lo), HS_FLOOR)
    weight = np.concatenate([np.where(quotes.liquid, 1.0, 0.0), np.full(n_p, PSEUDO_WEIGHT)])
    penalty = np.concatenate([np.where(quotes.liquid, BAND_PENALTY, UPPER_ONLY_PENALTY), np.full(n_p, PSEUDO_PENALTY)])
    # Prices are divided by s (ATM standard deviation) so that time values and spreads are O(1) at every
    # maturity; variables: [a (n coefficients), slack (m)].
    s = s_atm
    cols = f[:, None] + FOUR  # (M, 4) coefficient index of each basis value
    wq = weight / (hs / s) ** 2
    m_all = mid.size
    j = np.arange(1, n)
    return QPRows(
        n_q=n_q,
        tail=np.arange(n_q, n_q + n_p),
        cols=cols,
        v=v,
        g_idx=(cols[:, :, None] * n + cols[:, None, :]).reshape(m_all, 16),
        g_val=(wq[:, None, None] * v[:, :, None] * v[:, None, :]).reshape(m_all, 16),
        q_val=v * (wq * mid / s)[:, None],
        penalty=penalty,
        hs_neg=-hs / s,
        b_hi=(mid + hs) / s,
        b_lo=-(mid - hs) / s,
        p_idx=bas.p_rows.astype(np.intp) * n + bas.p_cols,
        p_rough=((2.0 * roughness * s**3) * bas.rough)[bas.p_rows, bas.p_cols],
        c_vals=bas.c_fix + s * bas.c_s,
        c_b=bas.c_b0 + bas.c_b1 / s,
        span=(knots[j + 3] - knots[j]) / 3.0,
        atm=int(np.argmin(np.abs(knots[2 : n + 2] - 1.0))),
    )


def _csc_arrays(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> sp.csc_matrix:
    """A CSC matrix from its sorted, duplicate-free arrays (what Clarabel reads)."""
    return sp.csc_matrix((data, indices, indptr), shape=shape)


@dataclass(frozen=True)
class QPResult:
    """One Clarabel solve: projected coefficients, the solver's status and iterations."""

    coef: np.ndarray
    status: str
    iterations: int
    quoted_range: tuple[float, float]


@dataclass(frozen=True)
class SliceSolution:
    """The market layer of one slice after its lazy-constraint rounds.

    Attributes
    ----------
    coef : numpy.ndarray
        B-spline coefficients of ``c(k)`` (projected: the arbitrage constraints hold exactly).
    status : str
        Clarabel's status of the last QP (``Solved``, ``AlmostSolved``, ...; anything else means the coefficients
        are only the projection of an unconverged iterate).
    iterations : int
        Interior-point iterations of the last QP.
    quoted_range : tuple of float
        ``k`` range of the liquid quotes.
    slack : numpy.ndarray
        Distance of each QP quote outside its band, in half-spreads.
    use : numpy.ndarray
        Prepared quotes that entered the QP.
    n_active : int
        Quotes in the final QP.
    rounds : int
        Rounds run.
    s_atm : float
        ATM standard deviation.
    ctx : SliceContext
        Context (for the backward calendar refit).
    """

    coef: np.ndarray
    status: str
    iterations: int
    quoted_range: tuple[float, float]
    slack: np.ndarray
    use: np.ndarray
    n_active: int
    rounds: int
    s_atm: float
    ctx: SliceContext

    @property
    def solved(self) -> bool:
        """Whether Clarabel reports a (possibly reduced-accuracy) optimum."""
        return self.status in SOLVED_STATUSES


def floor_mask(knots: np.ndarray, prev_range: tuple[float, float], cur_range: tuple[float, float]) -> np.ndarray:
    """Coefficients that keep the previous slice's floor ``a_j >= a_prev_j`` when the full floor fails.

    All of them, except where this slice has quotes and the previous one has none: there the previous slice's
    curve is its own extrapolation (SVI pseudo-quotes), and this slice's data must not be pushed out of its band
    by it. Support of coefficient ``j``: ``[knots[j], knots[j + 4]]``; "has quotes" means the support meets the
    liquid quoted range (the previous slice's widened by ``FLOOR_MARGIN`` ATM standard deviations)."""
    n = knots.size - 4
    lo, hi = knots[:n], knots[4 : n + 4]
    p_lo, p_hi = prev_range
    meets_prev = (hi >= p_lo) & (lo <= p_hi)
    meets_cur = (hi >= cur_range[0]) & (lo <= cur_range[1])
    return meets_prev | ~meets_cur


def _quote_block(p: PreparedExpiry, knots: np.ndarray, bas: BasisBlocks) -> tuple[QuoteBlock, np.ndarray]:
    """Quote rows inside the liquid range and raw-SVI pseudo-quotes (every third breakpoint beyond the quotes)."""
    return quote_blocks([p], knots, bas)[0]


def quote_blocks(preps: list[PreparedExpiry], knots: np.ndarray,
                 bas: BasisBlocks) -> list[tuple[QuoteBlock, np.ndarray]]:
    """:func:`_quote_block` of several slices at once: the pseudo-quote prices and the basis values of every
    slice in one vectorized pass (elementwise, so each slice's rows are those of its own call)."""
    brk = bas.brk
    ranges, uses, kqs, kps = [], [], [], []
    for p in preps:
        kl = p.k[p.liquid]
        lo_q, hi_q = float(kl.min()), float(kl.max())
        use = (p.k >= lo_q) & (p.k <= hi_q)  # liquid quotes and zero-bid upper bounds inside the liquid range
        ranges.append((lo_q, hi_q))
        uses.append(use)
        kqs.append(p.k[use])
        kps.append(brk[((brk < lo_q) | (brk > hi_q))][::3])
    n_p = np.array([kp.size for kp in kps])
    prm = np.array([[p.svi_fit.params.a, p.svi_fit.params.b, p.svi_fit.params.rho, p.svi_fit.params.m,
                     p.svi_fit.params.sigma, p.q.t] for p in preps], dtype=float)
    a, b, rho, m, sigma, t = np.repeat(prm, n_p, axis=0).T
    kp_all = np.concatenate(kps)
    w_s = np.maximum(svi_total_variance(np.log(kp_all), a, b, rho, m, sigma), 1e-10)  # each point's own slice
    iv_s = np.sqrt(w_s / t)
    p_lo_all, p_hi_all = bs_call_norm(kp_all, np.stack([np.maximum(iv_s - PSEUDO_VOL_BAND, 0.5 * iv_s),
                                                        iv_s + PSEUDO_VOL_BAND]) ** 2 * t)
    p_hi_all = np.maximum(p_hi_all, p_lo_all)
    parts = [x for kq, kp in zip(kqs, kps, strict=True) for x in (kq, kp)]
    v_all, f_all = basis4(knots, np.concatenate(parts))
    out = []
    pos = pp = 0
    for p, use, kq, kp, rng in zip(preps, uses, kqs, kps, ranges, strict=True):
        nq, npp = kq.size, kp.size
        liquid = p.liquid[use]
        lo = np.where(liquid, p.lo[use], np.maximum(1.0 - kq, 0.0))
        block = QuoteBlock(liquid=liquid, lo=lo, hi=p.hi[use], v=v_all[pos : pos + nq], f=f_all[pos : pos + nq],
                           p_lo=p_lo_all[pp : pp + npp], p_hi=p_hi_all[pp : pp + npp],
                           p_v=v_all[pos + nq : pos + nq + npp], p_f=f_all[pos + nq : pos + nq + npp], range=rng)
        out.append((block, use))
        pos += nq + npp
        pp += npp
    return out


def fit_slice(p: PreparedExpiry, knots: np.ndarray, prev: SliceSolution | None, prev2: SliceSolution | None = None,
              *, roughness: float, max_quotes: int, rounds: int = 3,
              block: tuple[QuoteBlock, np.ndarray] | None = None) -> SliceSolution:
    """Market-layer QP of one slice on the common B-spline basis, with lazily added quote constraints.

    Notes
    -----
    Arbitrage-freeness is imposed on the coefficients, which is sufficient for the whole curve: the slope
    coefficients lie in ``[-1, 0]`` and are non-decreasing (``c'`` is a convex combination of them, ``c''`` a
    non-negative combination of their differences), and, against the previous expiry on the same basis,
    ``a_j >= a_prev_j`` implies ``c >= c_prev`` everywhere (B-splines are non-negative). If that floor pushes
    liquid quotes out of their band, it falls back to ``prev2`` where only this slice has quotes
    (:func:`floor_mask`), or everywhere; :func:`calendar_backward` then makes the previous slice yield.
    Only a thinned set of quotes enters the first QP; quotes that end up outside their band are added and the QP
    is solved again. ``block``: this slice's :func:`quote_blocks` entry, when already computed.
    """
    s_atm = float(np.sqrt(max(p.atm_w, 1e-8)))
    bas = basis_blocks(knots)
    quotes, use = _quote_block(p, knots, bas) if block is None else block
    liquid = quotes.liquid
    lo_q, hi_q = quotes.range
    m = quotes.lo.size
    active = np.zeros(m, dtype=bool)
    active[np.unique(np.round(np.linspace(0, m - 1, min(max_quotes, m))).astype(int))] = True
    floor = mask = None
    if prev is not None:
        floor = prev.coef
        mask = np.ones(floor.size, dtype=bool)
    ctx = SliceContext(bas=bas, s_atm=s_atm, quotes=quotes, active=active, use=use, roughness=roughness,
                       rounds=rounds, rows=qp_rows(bas, knots, s_atm, quotes, roughness))
    fit = solve_slice(knots, ctx, floor, mask, None)
    n_out = int(np.count_nonzero(liquid & (fit.slack > INSIDE_TOL))) if floor is not None else 0
    if n_out and prev is not None:
        # The floor pushes liquid quotes out of their band. Where the previous slice has no quotes its curve is
        # only its own extrapolation: there the floor falls back to the slice before it (``prev2``). If quotes
        # still leave their band and fit better with ``prev2`` alone as the floor, the previous slice is skipped
        # entirely. Either way the previous slice then yields: the backward pass refits it between ``prev2``
        # and this slice, which is feasible because this slice stays above ``prev2``.
        widen = np.exp(FLOOR_MARGIN * prev.s_atm)
        p_lo_k, p_hi_k = prev.quoted_range
        keep = floor_mask(knots, (p_lo_k / widen, p_hi_k * widen), (lo_q, hi_q))
        base = None if prev2 is None else prev2.coef
        options: list[tuple[np.ndarray, np.ndarray | None]] = [
            (keep, prev.coef if base is None else np.where(keep, prev.coef, base))]
        options.append((np.zeros_like(keep), base))
        for m_opt, fl in options:
            if m_opt.all():
                continue
            fl_mask = None if fl is None else (m_opt if base is None else np.ones_like(m_opt))
            alt = solve_slice(knots, replace(ctx, active=ctx.active.copy()), fl, fl_mask, None)
            n_alt = int(np.count_nonzero(liquid & (alt.slack > INSIDE_TOL)))
            if n_alt < n_out:
                fit, n_out = alt, n_alt
            if not n_out:
                break
    return fit


def solve_slice(knots: np.ndarray, ctx: SliceContext, floor: np.ndarray | None, mask: np.ndarray | None,
                cap: np.ndarray | None) -> SliceSolution:
    """The lazy-constraint rounds of one slice's QP (floor ``a >= floor`` on ``mask``, cap ``a <= cap``)."""
    quotes, active = ctx.quotes, ctx.active
    vq, fq, lo, hi = quotes.v, quotes.f, quotes.lo, quotes.hi
    hs = np.maximum(0.5 * (hi - lo), HS_FLOOR)
    res: QPResult | None = None
    viol = np.zeros(lo.size)
    n_round = 0
    for n_round in range(1, ctx.rounds + 1):  # noqa: B007 - reported below
        res = fit_slice_qp(ctx.bas, knots, ctx.s_atm, floor, mask, cap, quotes, active, roughness=ctx.roughness,
                           rows=ctx.rows)
        c = np.einsum("ij,ij->i", vq, res.coef[fq[:, None] + FOUR])
        viol = np.maximum(np.maximum(lo - c, c - hi), 0.0) / hs
        new = (viol > INSIDE_TOL) & ~active
        if not np.any(new):
            break
        active |= new
    if res is None:
        raise ValueError("rounds must be at least 1")
    return SliceSolution(coef=res.coef, status=res.status, iterations=res.iterations, quoted_range=res.quoted_range,
                         slack=viol, use=ctx.use, n_active=int(np.count_nonzero(active)), rounds=n_round,
                         s_atm=ctx.s_atm, ctx=ctx)


def calendar_backward(knots: np.ndarray, fits: list[SliceSolution]) -> int:
    """Restore ``a_i <= a_{i+1}`` where the forward pass let slice ``i + 1`` fall below slice ``i``.

    From the second-longest slice down: a slice whose coefficients exceed the next (final) slice's anywhere is
    refitted between the cap ``a <= a_next`` and the floor ``a >= a_prev`` (where ``a_prev <= a_next``, which the
    forward pass guarantees), so the earlier slice's curve yields to the later slice's quotes. The cap is exact
    after the projection, and the floor keeps the slice before in order, so one refit per offending slice
    suffices. Returns the number of refits."""
    n_refit = 0
    for i in range(len(fits) - 2, -1, -1):
        cap = fits[i + 1].coef
        if not np.any(fits[i].coef > cap):
            continue
        floor = mask = None
        if i > 0:
            floor = fits[i - 1].coef
            mask = floor <= cap
        fits[i] = solve_slice(knots, fits[i].ctx, floor, mask, cap)
        n_refit += 1
    return n_refit


_SETTINGS: list[Any] = []


def clarabel_settings() -> Any:
    """Clarabel's default settings (full accuracy: the fit must stay inside bands of a few 1e-6), quiet; built
    once (the object is only read by the solver)."""
    if not _SETTINGS:
        import clarabel

        settings = clarabel.DefaultSettings()
        settings.verbose = False
        _SETTINGS.append(settings)
    return _SETTINGS[0]


def fit_slice_qp(bas: BasisBlocks, knots: np.ndarray, s_atm: float, floor: np.ndarray | None,
                 mask: np.ndarray | None, cap: np.ndarray | None, quotes: QuoteBlock, active: np.ndarray, *,
                 roughness: float, rows: QPRows | None = None) -> QPResult:
    """One QP of the market layer: the active quotes plus the pseudo-quotes (see :func:`fit_slice`).

    Assembled directly in CSC form from the per-row terms of :func:`qp_rows` (``rows``: computed once per slice;
    built here when not given): a QP only selects its rows.
    """
    import clarabel

    n = bas.n
    r = qp_rows(bas, knots, s_atm, quotes, roughness) if rows is None else rows
    sel = np.concatenate([np.flatnonzero(active), r.tail])
    m = sel.size
    s = s_atm
    cols = r.cols[sel]  # (m, 4) coefficient index of each basis value
    v = r.v[sel]
    gram = np.bincount(r.g_idx[sel].ravel(), r.g_val[sel].ravel(), minlength=n * n)
    p_indptr = np.concatenate([bas.p_indptr, np.full(m, bas.p_indptr[-1], dtype=np.int32)])
    pmat = _csc_arrays(2.0 * gram[r.p_idx] + r.p_rough, bas.p_rows, p_indptr, (n + m, n + m))
    qvec = np.concatenate([-2.0 * np.bincount(cols.ravel(), r.q_val[sel].ravel(), minlength=n), r.penalty[sel]])

    # Inequalities A x <= b. Rows: c <= hi + hs slack (m), c >= lo - hs slack (m), slack >= 0 (m), the
    # constant rows of the knot vector, then the calendar rows a >= a_prev (same basis). In CSC order: the
    # coefficient columns (their entries sorted by row: the blocks are in row order), then the slack columns
    # (rows i, m + i, 2 m + i each).
    ar = np.arange(m)
    r4 = np.repeat(ar, 4)
    n_rows = 3 * m + bas.n_c
    c_flat = cols.ravel()
    a_rows = [r4, m + r4, 3 * m + bas.c_rows]
    a_cols = [c_flat, c_flat, bas.c_cols]
    a_vals = [v.ravel(), -v.ravel(), r.c_vals]
    b_parts = [r.b_hi[sel], r.b_lo[sel], np.zeros(m), r.c_b]
    if floor is not None and mask is not None:
        an = np.flatnonzero(mask)
        a_rows.append(n_rows + np.arange(an.size))
        a_cols.append(an)
        a_vals.append(-np.ones(an.size))
        b_parts.append(-floor[an] / s)
        n_rows += an.size
    if cap is not None:
        an = np.arange(n)
        a_rows.append(n_rows + an)
        a_cols.append(an)
        a_vals.append(np.ones(n))
        b_parts.append(cap / s)
        n_rows += n
    coef_cols = np.concatenate(a_cols)
    o = np.argsort(coef_cols.astype(np.int16), kind="stable")  # stable: rows stay increasing within a column
    hs_neg = r.hs_neg[sel]
    slack_rows = np.stack([ar, m + ar, 2 * m + ar], axis=1).ravel()
    slack_vals = np.stack([hs_neg, hs_neg, np.full(m, -1.0)], axis=1).ravel()
    indptr = np.empty(n + m + 1, dtype=np.int32)
    indptr[0] = 0
    np.cumsum(np.bincount(coef_cols, minlength=n), out=indptr[1 : n + 1])
    indptr[n + 1 :] = indptr[n] + 3 * np.arange(1, m + 1)
    a_mat = _csc_arrays(np.concatenate([np.concatenate(a_vals)[o], slack_vals]),
                 np.concatenate([np.concatenate(a_rows)[o], slack_rows]).astype(np.int32), indptr, (n_rows, n + m))
    b_vec = np.concatenate(b_parts)
    solver = clarabel.DefaultSolver(pmat, qvec, a_mat, b_vec, [clarabel.NonnegativeConeT(n_rows)],
                                    clarabel_settings())
    sol = solver.solve()
    a = np.asarray(sol.x)[:n] * s
    status = str(sol.status)
    if not np.all(np.isfinite(a)):
        # a failed solve with a non-finite iterate: nothing to project; fall back to the floor (or cap) so the
        # constraints still hold, and report the status
        a = np.array(floor if floor is not None else (cap if cap is not None else np.zeros(n)), dtype=float)
    a = project(knots, a, floor, mask, cap, pre=(r.span, r.atm))
    return QPResult(coef=a, status=status, iterations=int(sol.iterations), quoted_range=quotes.range)


def project(knots: np.ndarray, coef: np.ndarray, floor: np.ndarray | None, mask: np.ndarray | None,
            cap: np.ndarray | None = None, pre: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """Remove the solver's last-digit constraint residuals so the coefficients satisfy the arbitrage
    conditions exactly.

    Notes
    -----
    Slope coefficients made non-decreasing and clipped to ``[-1, 0]``, coefficients re-integrated from the ATM
    coefficient, lifted to at least ``floor`` on ``mask`` and finally capped at ``cap`` coefficientwise. The cap
    keeps the price bounds and slope bounds exactly (both vectors satisfy them); convexity only up to the
    residual. ``pre``: ``(span, a)`` of :class:`QPRows` (knot-only, computed here when not given).
    """
    n = coef.size
    if pre is None:
        j = np.arange(1, n)
        span = (knots[j + 3] - knots[j]) / 3.0
        a = int(np.argmin(np.abs(knots[2 : n + 2] - 1.0)))  # coefficient nearest the money (Greville abscissa)
    else:
        span, a = pre
    slopes = np.diff(coef) / span
    slopes = np.clip(np.maximum.accumulate(slopes), -1.0, 0.0)
    out = np.concatenate([[0.0], np.cumsum(slopes * span)])
    out = out - out[a] + coef[a]
    # Lifting by a constant keeps slopes and convexity; only residual-sized lifts happen here. With slopes in
    # [-1, 0], c >= 1 - k and c >= 0 hold everywhere once they hold at the two ends.
    lift = max(0.0, (1.0 - knots[0]) - out[0], -out[-1])
    if floor is not None and mask is not None and np.any(mask):
        lift = max(lift, float(np.max((floor - out)[mask])))
    out = out + lift
    return out if cap is None else np.minimum(out, cap)


def warn_unsolved(labels: list[str], statuses: list[str], sink: list[str] | None = None) -> None:
    """Warn (:class:`~volsurf.errors.FitWarning`) about the expiries whose final QP did not report an optimum."""
    from volsurf.errors import FitWarning, warn

    bad = [f"{lab}: {st}" for lab, st in zip(labels, statuses, strict=True) if st not in SOLVED_STATUSES]
    if bad:
        warn(sink, FitWarning, "surface QP not solved for " + "; ".join(bad)
             + " (market layer is the projection of the last iterate: arbitrage-free, not a fit)", stacklevel=3)
