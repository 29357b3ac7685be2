"""Independent arbitrage audit of a fitted surface, through its public query API only, and the grid export.

The audit samples :meth:`Surface.iv_and_call_grid` (the values of :meth:`Surface.iv_k` and
:meth:`Surface.call_normalised` at every time) on a dense (log-moneyness, time) grid
(:func:`surface_grid`) and counts, from the sampled values alone:

- **butterfly**: a call price above the chord of its two neighbours in strike (``c`` not convex in ``k``);
- **monotonicity**: a call price rising with strike, or falling faster than the strike (slope below ``-1``);
- **bounds**: ``c < max(1 - k, 0)`` or ``c > 1``;
- **calendar**: at fixed ``k = K / F(t)``, a call price (or total variance) lower at the later time;
- **IV jumps**: neighbouring grid points whose implied vols differ by more than ``jump_limit`` (2 vol points) and
  still do when the interval is resampled ``REFINE`` times finer through the API (a steep but continuous smile --
  a few hours to expiry -- changes by more than 2 vol points per 0.002 of log-moneyness; a jump does not shrink);
- **Lee**: a total-variance slope ``|dw/dx|`` above 2 between neighbouring points.

Each count comes with the worst violation's size and location. The QP solver's status per expiry is listed,
and the continuation's distance to its target wing (raw SVI or eSSVI) per expiry.

Notes
-----
With ``k_j = e^{x_j}``, ``lam = (k_{j+1} - k_j) / (k_{j+1} - k_{j-1})``, the butterfly excess at ``j`` is
``c_j - (lam c_{j-1} + (1 - lam) c_{j+1})``; a violation is an excess above ``tol`` (normalised price, default
``1e-9``: the same tolerance as the fit's diagnostics; prices are ``O(1)`` and rounding is ``~1e-16``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from volsurf.errors import ParameterError
from volsurf.surface.qp import SOLVED_STATUSES
from volsurf.surface.query import Surface

DEFAULT_K_STEP = 0.002
JUMP_LIMIT = 0.02  # decimal vol: 2 vol points
AUDIT_TOL = 1e-9  # normalised price
APPROACH_LENGTHS = 5.0
REFINE = 16  # sub-steps of a neighbour interval whose IV change exceeds the jump limit  # continuation error is measured this many approach lengths beyond the seam


@dataclass(frozen=True)
class SurfaceGrid:
    """The surface sampled on a (time, log-moneyness) grid.

    Attributes
    ----------
    t : numpy.ndarray
        Times (years), increasing, shape ``(T,)``.
    expiry : tuple of str
        Listed expiry label per time, ``""`` for an interpolated time.
    x : numpy.ndarray
        Log-moneyness ``ln(K / F(t))``, shape ``(X,)``.
    forward : numpy.ndarray
        Forward per time, shape ``(T,)``.
    call : numpy.ndarray
        Normalised call price ``C / (D F)``, shape ``(T, X)``.
    iv : numpy.ndarray
        Implied vol (decimal), shape ``(T, X)``.
    """

    t: np.ndarray
    expiry: tuple[str, ...]
    x: np.ndarray
    forward: np.ndarray
    call: np.ndarray
    iv: np.ndarray

    @property
    def total_variance(self) -> np.ndarray:
        """``iv^2 t``, shape ``(T, X)``."""
        return self.iv * self.iv * self.t[:, None]

    def to_frame(self) -> Any:
        """One row per grid point: ``t``, ``expiry``, ``k`` (``ln K/F``), ``strike``, ``forward``, ``iv``,
        ``total_variance``, ``call_normalised``."""
        import pandas as pd

        n_t, n_x = self.iv.shape
        return pd.DataFrame({
            "t": np.repeat(self.t, n_x),
            "expiry": np.repeat(np.array(self.expiry, dtype=object), n_x),
            "k": np.tile(self.x, n_t),
            "strike": (self.forward[:, None] * np.exp(self.x)[None, :]).ravel(),
            "forward": np.repeat(self.forward, n_x),
            "iv": self.iv.ravel(),
            "total_variance": self.total_variance.ravel(),
            "call_normalised": self.call.ravel(),
        })

    def write_csv(self, path: str) -> int:
        """Write :meth:`to_frame` as CSV (floats in their shortest round-trip form; pyarrow's writer); returns the
        number of rows."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        frame = self.to_frame()
        pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), path,
                        pacsv.WriteOptions(quoting_style="none"))
        return len(frame)


def grid_times(surface: Surface, times: str = "dense", between: int = 1) -> tuple[np.ndarray, tuple[str, ...]]:
    """Times of the grid: the listed expiries (``listed``) and, for ``dense``, ``between`` equally spaced times in
    each gap between consecutive expiries, one halfway to the first expiry and one at 1.5 times the last."""
    ts = surface.t
    labels = [s.label.split(" ")[0] for s in surface.slices]
    if times == "listed":
        return ts.copy(), tuple(labels)
    if times != "dense":
        raise ParameterError(f"unknown times {times!r}", hint="use listed or dense")
    frac = np.arange(1, between + 1) / (between + 1)
    inner = (ts[:-1, None] + np.diff(ts)[:, None] * frac[None, :]).ravel()
    extra = np.array([0.5 * ts[0], 1.5 * ts[-1]])
    all_t = np.concatenate([ts, inner, extra])
    lab = np.array(labels + [""] * (inner.size + 2), dtype=object)
    o = np.argsort(all_t, kind="stable")
    return all_t[o], tuple(lab[o])


def surface_grid(surface: Surface, k_range: tuple[float, float] | None = None, k_step: float = DEFAULT_K_STEP,
                 times: str = "dense") -> SurfaceGrid:
    """Sample the surface's public query API on a (time, log-moneyness) grid.

    Parameters
    ----------
    surface : Surface
        A fitted surface.
    k_range : tuple of float, optional
        Log-moneyness range ``(lo, hi)``; default :attr:`Surface.x_range` (every quoted strike of every expiry,
        the strike domain and ``0.25`` of continuation beyond it on both sides).
    k_step : float
        Log-moneyness step (default 0.002).
    times : {"dense", "listed"}
        Listed expiries only, or with interpolated times between them (:func:`grid_times`).
    """
    lo, hi = surface.x_range if k_range is None else (float(k_range[0]), float(k_range[1]))
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ParameterError(f"bad k range {lo},{hi}", hint="give LO,HI with LO < HI (log-moneyness)")
    if not (np.isfinite(k_step) and k_step > 0) or (hi - lo) / k_step > 1e6:
        raise ParameterError(f"bad k step {k_step}", hint="a positive log-moneyness step, e.g. 0.002")
    n = int(np.floor((hi - lo) / k_step + 1e-9)) + 1
    x = lo + k_step * np.arange(n)
    k = np.exp(x)
    t, labels = grid_times(surface, times)
    iv, call = surface.iv_and_call_grid(k, t)
    fwd = np.array([surface.forward(float(tr)) for tr in t])
    return SurfaceGrid(t=t, expiry=labels, x=x, forward=fwd, call=call, iv=iv)


@dataclass(frozen=True)
class ViolationCount:
    """Count of one kind of violation, its worst size and where (time in years, log-moneyness)."""

    count: int
    worst: float
    t: float | None
    k: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return {"count": self.count, "worst": self.worst, "t": self.t, "k": self.k}


def _count(excess: np.ndarray, t: np.ndarray, x: np.ndarray, tol: float) -> ViolationCount:
    """Violations where ``excess > tol`` (``excess`` on a (time, point) grid with coordinates ``t``, ``x``)."""
    e = np.where(np.isfinite(excess), excess, -np.inf)
    bad = e > tol
    if e.size == 0 or not np.any(np.isfinite(e)):
        return ViolationCount(0, 0.0, None, None)
    r, c = np.unravel_index(int(np.argmax(e)), e.shape)
    worst = float(e[r, c])
    return ViolationCount(int(np.count_nonzero(bad)), max(worst, 0.0), float(t[r]), float(x[c]))


@dataclass(frozen=True)
class ContinuationCheck:
    """Continuation of one listed expiry against its target wing.

    Attributes
    ----------
    label, target : str
        Expiry label; target wings left/right: ``svi`` (the slice's raw SVI) or ``essvi`` (its eSSVI slice, where
        the raw SVI is flagged or cannot be joined without arbitrage).
    seams : tuple of float
        Log-moneyness of the two seams (ends of the market region).
    worst_error_vol_pts : float
        Largest ``|iv - iv_target|`` (vol points) on the grid beyond ``APPROACH_LENGTHS`` approach lengths.
    seam_gap_vol_pts : float
        Largest ``|iv - iv_target|`` at the seams (the gap the continuation closes).
    raised_by_calendar : bool
        The worst error is where an earlier expiry's curve dominates (calendar order lifts this one).
    wing_checks_ok : bool
        Both continuations passed Durrleman's condition, positivity and Lee's bound on their check grids.
    """

    label: str
    target: str
    seams: tuple[float, float]
    worst_error_vol_pts: float
    seam_gap_vol_pts: float
    raised_by_calendar: bool
    wing_checks_ok: bool


@dataclass(frozen=True)
class AuditReport:
    """Result of :func:`audit_surface` (see the module docstring); :meth:`to_dict` is the JSON form."""

    n_times: int
    n_points: int
    k_range: tuple[float, float]
    k_step: float
    butterfly: ViolationCount
    monotonicity: ViolationCount
    bounds: ViolationCount
    calendar: ViolationCount
    calendar_w: ViolationCount
    iv_jump: ViolationCount
    lee: ViolationCount
    max_iv_jump_vol_pts: float
    non_finite: int
    solver_status: tuple[tuple[str, str], ...]
    continuation: tuple[ContinuationCheck, ...]
    tol: float = AUDIT_TOL
    jump_limit: float = JUMP_LIMIT
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def arbitrage_free(self) -> bool:
        """No butterfly, monotonicity, bounds or calendar violation and no non-finite value."""
        return not (self.butterfly.count or self.monotonicity.count or self.bounds.count or self.calendar.count
                    or self.calendar_w.count or self.non_finite)

    @property
    def solver_failures(self) -> tuple[str, ...]:
        """Expiries whose final QP did not report an optimum."""
        return tuple(f"{lab}: {st}" for lab, st in self.solver_status if st not in SOLVED_STATUSES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "n_times": self.n_times,
            "n_points": self.n_points,
            "k_range": list(self.k_range),
            "k_step": self.k_step,
            "tol": self.tol,
            "arbitrage_free": self.arbitrage_free,
            "butterfly": self.butterfly.to_dict(),
            "monotonicity": self.monotonicity.to_dict(),
            "bounds": self.bounds.to_dict(),
            "calendar": self.calendar.to_dict(),
            "calendar_total_variance": self.calendar_w.to_dict(),
            "iv_jumps_over_limit": {**self.iv_jump.to_dict(), "limit_vol_pts": 100.0 * self.jump_limit},
            "max_iv_jump_vol_pts": self.max_iv_jump_vol_pts,
            "lee_slope_over_2": self.lee.to_dict(),
            "non_finite": self.non_finite,
            "solver_status": [{"expiry": lab, "status": st} for lab, st in self.solver_status],
            "solver_failures": list(self.solver_failures),
            "continuation": [c.__dict__ for c in self.continuation],
            "notes": list(self.notes),
        }


def _continuation(surface: Surface, grid: SurfaceGrid) -> tuple[ContinuationCheck, ...]:
    """Per listed expiry: the continuation's IV against its target wing, from the grid's sampled IVs."""
    from volsurf.surface.svi import svi_total_variance

    cv = surface.curves()
    out = []
    row_of = {lab: r for r, lab in enumerate(grid.expiry) if lab}
    x = grid.x
    for i, sl in enumerate(surface.slices):  # a loop over expiries (tens)
        r = row_of.get(sl.label.split(" ")[0])
        if r is None or abs(grid.t[r] - sl.t) > 1e-12:
            continue
        worst, gap, raised, names = 0.0, 0.0, False, []
        for side in (cv.left, cv.right):
            u = side.direction * (x - side.seam[i])
            iv_t = np.sqrt(np.maximum(svi_total_variance(x, *side.target[i]), 0.0) / sl.t)
            err = np.abs(grid.iv[r] - iv_t) * 100.0
            far = u >= APPROACH_LENGTHS * side.length[i]
            if np.any(far) and float(np.max(err[far])) > worst:
                worst = float(np.max(err[far]))
                j = np.flatnonzero(far)[int(np.argmax(err[far]))]
                raised = bool(cv.w(i, x[j : j + 1])[0] > cv.raw(np.array([i]), x[j : j + 1])[0, 0] + 1e-15)
            w_seam = float(svi_total_variance(side.seam[i], *side.target[i]))
            iv_seam = float(np.sqrt(cv.w(i, np.array([side.seam[i]]))[0] / sl.t))
            gap = max(gap, abs(iv_seam - np.sqrt(max(w_seam, 0.0) / sl.t)) * 100.0)
            names.append(side.target_name[i])
        out.append(ContinuationCheck(sl.label, "/".join(names), (float(cv.left.seam[i]), float(cv.right.seam[i])),
                                     worst, gap, raised, bool(cv.left.ok[i] and cv.right.ok[i])))
    return tuple(out)


def _refine_jumps(surface: Surface | None, grid: SurfaceGrid, jump: np.ndarray, limit: float) -> np.ndarray:
    """IV change between neighbours, replaced where it exceeds ``limit`` by the largest change over ``REFINE``
    equal sub-steps of the interval (sampled through the public API)."""
    out = jump.copy()
    if surface is None:
        return out
    rows, cols = np.nonzero(jump > limit)
    frac = np.linspace(0.0, 1.0, REFINE + 1)
    for r in np.unique(rows):  # a loop over the (few) times with a candidate jump
        c = cols[rows == r]
        xs = (grid.x[c][:, None] + (grid.x[c + 1] - grid.x[c])[:, None] * frac[None, :]).ravel()
        iv = surface.iv_k(np.exp(xs), float(grid.t[r])).reshape(c.size, frac.size)
        out[r, c] = np.max(np.abs(np.diff(iv, axis=1)), axis=1)
    return out


@dataclass(frozen=True)
class GridCounts:
    """Violation counts of a sampled grid (:func:`audit_grid`)."""

    butterfly: ViolationCount
    monotonicity: ViolationCount
    bounds: ViolationCount
    calendar: ViolationCount
    calendar_w: ViolationCount
    iv_jump: ViolationCount
    lee: ViolationCount
    max_iv_jump_vol_pts: float
    non_finite: int


def audit_grid(grid: SurfaceGrid, tol: float = AUDIT_TOL, jump_limit: float = JUMP_LIMIT,
               surface: Surface | None = None) -> GridCounts:
    """The violation counts of a sampled grid (sampled values only; see the module docstring). With ``surface``,
    candidate IV jumps are resampled finer through its API."""
    t, x = grid.t, grid.x
    k = np.exp(x)
    c, iv = grid.call, grid.iv
    w = grid.total_variance
    dk = np.diff(k)
    lam = dk[1:] / (k[2:] - k[:-2])
    chord = lam * c[:, :-2] + (1.0 - lam) * c[:, 2:]
    butterfly = _count(c[:, 1:-1] - chord, t, x[1:-1], tol)
    dc = np.diff(c, axis=1)
    mono = np.maximum(dc, -dk[None, :] - dc)  # > 0: rising, or slope below -1
    monotonicity = _count(mono, t, x[:-1], tol)
    bounds = _count(np.maximum(np.maximum(1.0 - k, 0.0)[None, :] - c, c - 1.0), t, x, tol)
    calendar = _count(c[:-1] - c[1:], t[1:], x, tol)
    calendar_w = _count(w[:-1] - w[1:], t[1:], x, 1e-12)
    jump = np.abs(np.diff(iv, axis=1))
    iv_jump = _count(_refine_jumps(surface, grid, jump, jump_limit), t, x[:-1], jump_limit)
    lee = _count(np.abs(np.diff(w, axis=1)) / np.diff(x)[None, :] - 2.0, t, x[:-1], 1e-9)
    return GridCounts(
        butterfly=butterfly,
        monotonicity=monotonicity,
        bounds=bounds,
        calendar=calendar,
        calendar_w=calendar_w,
        iv_jump=iv_jump,
        lee=lee,
        max_iv_jump_vol_pts=float(np.nanmax(jump)) * 100.0 if jump.size else 0.0,
        non_finite=int(np.count_nonzero(~np.isfinite(c)) + np.count_nonzero(~np.isfinite(iv))),
    )


def audit_surface(surface: Surface, grid: SurfaceGrid | None = None, *, tol: float = AUDIT_TOL,
                  jump_limit: float = JUMP_LIMIT, warn_failures: bool = True) -> AuditReport:
    """Audit a fitted surface on ``grid`` (default :func:`surface_grid` with its defaults).

    A failed QP solve is reported in ``solver_status`` / ``solver_failures`` and, with ``warn_failures``, raised
    as a :class:`~volsurf.errors.FitWarning`.
    """
    from volsurf.surface.qp import warn_unsolved

    g = surface_grid(surface) if grid is None else grid
    counts = audit_grid(g, tol, jump_limit, surface)
    status = tuple((s.label, s.solver_status) for s in surface.slices)
    if warn_failures:
        warn_unsolved([s[0] for s in status], [s[1] for s in status])
    step = float(g.x[1] - g.x[0]) if g.x.size > 1 else 0.0
    return AuditReport(
        n_times=int(g.t.size),
        n_points=int(g.call.size),
        k_range=(float(g.x[0]), float(g.x[-1])),
        k_step=step,
        butterfly=counts.butterfly,
        monotonicity=counts.monotonicity,
        bounds=counts.bounds,
        calendar=counts.calendar,
        calendar_w=counts.calendar_w,
        iv_jump=counts.iv_jump,
        lee=counts.lee,
        max_iv_jump_vol_pts=counts.max_iv_jump_vol_pts,
        non_finite=counts.non_finite,
        solver_status=status,
        continuation=_continuation(surface, g),
        tol=tol,
        jump_limit=jump_limit,
    )
