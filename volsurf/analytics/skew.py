"""Skew metrics of an implied-volatility smile, per expiry and at constant maturities.

Conventions (see ``docs/skew.md``)
----------------------------------
- Log-moneyness ``k = ln(K / F)`` against the **forward** of the expiry; "ATM" is the forward (``k = 0``).
- Delta is the **undiscounted forward delta** of Black-76: call ``N(d1)``, put ``N(d1) - 1``, with
  ``d1 = -k / (sigma(k) sqrt(t)) + sigma(k) sqrt(t) / 2``, sigma read from the smile at the same strike
  (the "smile delta"). Not premium-adjusted: equity index options are paid in the quote currency, so the
  premium adjustment of FX does not apply. A "25-delta put" has forward delta -0.25.
- All skew figures are in decimal vol (``0.05`` = 5 vol points):

  ===================  ==========================================================================
  ``atm_iv``           ``iv(k = 0)``
  ``rr25``             ``iv(25d call) - iv(25d put)`` (negative for equity-index skew)
  ``bf25``             ``(iv(25d call) + iv(25d put)) / 2 - atm_iv``
  ``put_skew_10d``     ``iv(10d put) - atm_iv``
  ``put_skew_90_100``  ``iv(K = 0.9 F) - iv(K = F)``
  ``call_skew_110_100`` ``iv(K = 1.1 F) - iv(K = F)``
  ``skew_90_110``      ``iv(K = 0.9 F) - iv(K = 1.1 F)``
  ``slope``            ``d iv / d k`` at ``k = 0`` (central difference, decimal vol per unit of k)
  ``curvature``        ``d2 iv / d k2`` at ``k = 0``
  ===================  ==========================================================================

- Constant maturities: linear interpolation in total variance ``w = iv^2 t`` at fixed ``k`` between the
  two expiries that bracket the target; the forward is interpolated log-linearly (constant carry between
  expiries). No extrapolation: a target before the first or after the last expiry is unavailable with a
  reason.

The core works on any object following :class:`SmileSurface` (``iv(strike, t)`` and ``forward(t)``);
:class:`NodeSmileSurface` is a simple one built from per-expiry quotes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from volsurf._typing import ArrayLike
from volsurf.errors import DataError, ParameterError
from volsurf.units import DAYS_PER_YEAR

CONSTANT_MATURITY_DAYS: tuple[int, ...] = (7, 30, 60, 90)

# Finite-difference step for slope/curvature: a quarter of the ATM standard deviation in k, so the
# stencil spans comparable probability mass at every maturity (0DTE smiles are a few tenths of a
# percent wide, 2y smiles tens of percent); clipped to keep the step meaningful on node data.
_FD_FRACTION = 0.25
_FD_MIN = 1e-4
_FD_MAX = 0.05

# Delta search grid in units of the ATM standard deviation s = atm_iv sqrt(t): wide on the put side
# because skewed smiles push the low-delta put far out.
_GRID_LO, _GRID_HI, _GRID_N = -14.0, 8.0, 441


@runtime_checkable
class SmileSurface(Protocol):
    """What the skew core needs from a surface.

    ``iv(strike, t)`` : implied vol (decimal) at ``strike`` (array, index points) for time ``t`` (years).
    ``forward(t)`` : forward price for time ``t``.
    """

    def iv(self, strike: Any, t: float) -> np.ndarray: ...

    def forward(self, t: float) -> float: ...


@dataclass(frozen=True)
class Smile:
    """One maturity slice: ``iv_k(k)`` gives decimal vol at log-moneyness ``k = ln(K/F)``.

    Attributes
    ----------
    t : float
        Time to expiry, years.
    forward : float
        Forward price for ``t``.
    iv_k : callable
        Vectorized ``k -> iv``.
    """

    t: float
    forward: float
    iv_k: Callable[[np.ndarray], np.ndarray]


def smile_at(surface: SmileSurface, t: float) -> Smile:
    """The slice of ``surface`` at ``t`` (the surface's own smile, no interpolation of ours)."""
    f = float(surface.forward(t))

    def iv_k(k: np.ndarray) -> np.ndarray:
        return np.asarray(surface.iv(f * np.exp(np.asarray(k, dtype=float)), t), dtype=float)

    return Smile(t=float(t), forward=f, iv_k=iv_k)


def interpolated_smile(surface: SmileSurface, t1: float, t2: float, tau: float) -> Smile:
    """Smile at ``tau`` in ``[t1, t2]`` by linear interpolation in total variance at fixed ``k``.

    ``w(k, tau) = (1 - a) w(k, t1) + a w(k, t2)`` with ``a = (tau - t1) / (t2 - t1)``; the forward is
    log-linear in ``t`` (constant carry between the two expiries).
    """
    if not (t1 <= tau <= t2) or t1 <= 0:
        raise ParameterError(f"cannot interpolate at t={tau} between {t1} and {t2}", hint="need 0 < t1 <= tau <= t2")
    f1, f2 = float(surface.forward(t1)), float(surface.forward(t2))
    a = 0.0 if t2 == t1 else (tau - t1) / (t2 - t1)
    f = math.exp((1 - a) * math.log(f1) + a * math.log(f2))

    def iv_k(k: np.ndarray) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        w1 = np.asarray(surface.iv(f1 * np.exp(k), t1), dtype=float) ** 2 * t1
        w2 = np.asarray(surface.iv(f2 * np.exp(k), t2), dtype=float) ** 2 * t2
        w = (1 - a) * w1 + a * w2
        with np.errstate(invalid="ignore"):
            return np.sqrt(w / tau)

    return Smile(t=float(tau), forward=f, iv_k=iv_k)


def _d1(k: np.ndarray, sigma: np.ndarray, t: float) -> np.ndarray:
    sd = sigma * math.sqrt(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -k / sd + 0.5 * sd


def strikes_for_deltas(smile: Smile, deltas: Sequence[float] | np.ndarray, atm_iv: float | None = None) -> np.ndarray:
    """Log-moneyness ``k`` at which the smile's forward delta equals each target.

    Parameters
    ----------
    smile : Smile
        The slice to search.
    deltas : array
        Signed undiscounted forward deltas: ``0 < d < 1`` for calls, ``-1 < d < 0`` for puts (-0.25 is the
        25-delta put).
    atm_iv : float, optional
        ``iv(k=0)`` if already known (sets the search scale).

    Returns
    -------
    ndarray
        ``k`` per target; NaN where the smile's delta never reaches the target (e.g. NaN vols).

    Notes
    -----
    Solves ``d1(k) = Phi^-1(c)`` with ``c = d`` (call) or ``1 + d`` (put). The smile is sampled once on a grid
    of ``k`` to bracket each root, then refined by vectorized Illinois (regula falsi) steps. Under no
    butterfly arbitrage ``d1`` decreases in ``k`` (Fukasawa 2012), so the bracket is unique.
    """
    d = np.atleast_1d(np.asarray(deltas, dtype=float))
    if np.any((d <= -1) | (d >= 1) | (d == 0)):
        raise ParameterError("deltas must lie in (-1, 0) for puts or (0, 1) for calls", hint="e.g. 0.25 or -0.25")
    from scipy.special import ndtri  # scipy is imported where it is used: readers of stored metrics skip it

    target = ndtri(np.where(d > 0, d, 1.0 + d))
    t = smile.t
    if atm_iv is None:
        atm_iv = float(smile.iv_k(np.zeros(1))[0])
    if not (np.isfinite(atm_iv) and atm_iv > 0 and t > 0):
        return np.full(d.shape, np.nan)
    s = max(atm_iv * math.sqrt(t), 1e-4)
    grid = np.linspace(_GRID_LO * s, _GRID_HI * s, _GRID_N)
    g = _d1(grid, smile.iv_k(grid), t)[None, :] - target[:, None]  # (n_targets, n_grid), decreasing in k
    # First sign change + -> - along the grid (NaN vols, e.g. beyond quoted strikes, never bracket a root).
    with np.errstate(invalid="ignore"):
        chg = (g[:, :-1] > 0) & (g[:, 1:] <= 0)
    found = chg.any(axis=1)
    idx = np.argmax(chg, axis=1) + 1
    prev = idx - 1
    a = grid[prev].copy()
    b = grid[idx].copy()
    ga = g[np.arange(d.size), prev].copy()
    gb = g[np.arange(d.size), idx].copy()
    a, b, ga, gb = (np.where(found, x, np.nan) for x in (a, b, ga, gb))
    side = np.zeros(d.shape)  # Illinois bookkeeping: which end was kept last time
    for _ in range(60):
        with np.errstate(invalid="ignore", divide="ignore"):
            c = b - gb * (b - a) / (gb - ga)
        c = np.where(np.isfinite(c), c, 0.5 * (a + b))
        gc = _d1(c, smile.iv_k(c), t) - target
        left = gc > 0  # root lies in [c, b]
        # Illinois: halve the function value of the end kept twice in a row, keeping superlinear convergence.
        ga_new = np.where(left, gc, np.where(side == -1, 0.5 * ga, ga))
        gb_new = np.where(left, np.where(side == 1, 0.5 * gb, gb), gc)
        a = np.where(left, c, a)
        b = np.where(left, b, c)
        ga, gb = ga_new, gb_new
        side = np.where(left, 1, -1)
        if np.all(~found | (np.abs(b - a) < 1e-12) | (np.abs(gc) < 1e-12)):
            break
    # The last iterate converges superlinearly; the bracket [a, b] always contains it.
    return np.where(found, c, np.nan)


@dataclass(frozen=True)
class SmileMetrics:
    """Skew figures of one smile (decimal vol; NaN where not computable, ``reason`` says why).

    Attributes
    ----------
    t : float
        Years to expiry. ``days`` is ``t * 365``.
    forward : float
        Forward price.
    atm_iv, iv_25c, iv_25p, iv_10p : float
        Vols at the forward and at the 25-delta call / put and 10-delta put (forward delta).
    k_25c, k_25p, k_10p : float
        Log-moneyness of those delta strikes.
    rr25, bf25, put_skew_10d, put_skew_90_100, call_skew_110_100, skew_90_110 : float
        See the module docstring.
    slope, curvature : float
        ``d iv/dk`` and ``d2 iv/dk2`` at ``k = 0``.
    """

    t: float
    days: float
    forward: float
    atm_iv: float
    iv_25c: float
    iv_25p: float
    iv_10p: float
    k_25c: float
    k_25p: float
    k_10p: float
    rr25: float
    bf25: float
    put_skew_10d: float
    put_skew_90_100: float
    call_skew_110_100: float
    skew_90_110: float
    slope: float
    curvature: float
    reason: str | None = None

    @property
    def available(self) -> bool:
        """True when the ATM vol could be read (the other figures may still be NaN)."""
        return bool(np.isfinite(self.atm_iv))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (NaN kept; :func:`volsurf.cli.output.to_jsonable` turns it into null)."""
        out = asdict(self)
        out["available"] = self.available
        return out


METRIC_FIELDS: tuple[str, ...] = (
    "atm_iv",
    "rr25",
    "bf25",
    "put_skew_10d",
    "put_skew_90_100",
    "call_skew_110_100",
    "skew_90_110",
    "slope",
    "curvature",
)


def unavailable_metrics(t: float, reason: str, forward: float = math.nan) -> SmileMetrics:
    """A :class:`SmileMetrics` of NaNs carrying ``reason``."""
    nan = math.nan
    return SmileMetrics(t, t * DAYS_PER_YEAR, forward, *([nan] * 15), reason=reason)  # type: ignore[misc, arg-type]


def smile_metrics(smile: Smile) -> SmileMetrics:
    """All skew figures of one smile (see the module docstring for definitions)."""
    t = smile.t
    if not (t > 0 and np.isfinite(smile.forward) and smile.forward > 0):
        return unavailable_metrics(t, "non-positive time or forward", smile.forward)
    atm = float(smile.iv_k(np.zeros(1))[0])
    if not (np.isfinite(atm) and atm > 0):
        return unavailable_metrics(t, "no ATM vol on the smile", smile.forward)
    k_d = strikes_for_deltas(smile, [0.25, -0.25, -0.10], atm_iv=atm)
    s = atm * math.sqrt(t)
    h = min(max(_FD_FRACTION * s, _FD_MIN), _FD_MAX)
    fixed_k = np.array([-h, h, math.log(0.9), math.log(1.1)])
    pts = np.concatenate([k_d, fixed_k])
    vals = np.full(pts.shape, np.nan)
    ok = np.isfinite(pts)
    vals[ok] = smile.iv_k(pts[ok])
    iv25c, iv25p, iv10p, iv_m, iv_p, iv90, iv110 = (float(v) for v in vals)
    k_list = [float(x) for x in k_d]
    reasons = []
    if not all(math.isfinite(x) for x in k_list):
        reasons.append("a delta strike lies outside the smile's range")
    if not (math.isfinite(iv90) and math.isfinite(iv110)):
        reasons.append("the 90% or 110% strike lies outside the smile's range")
    if not (math.isfinite(iv_m) and math.isfinite(iv_p)):
        reasons.append("the slope stencil leaves the smile's range")
    reason = "; ".join(reasons) or None
    return SmileMetrics(
        t=t,
        days=t * DAYS_PER_YEAR,
        forward=smile.forward,
        atm_iv=atm,
        iv_25c=iv25c,
        iv_25p=iv25p,
        iv_10p=iv10p,
        k_25c=k_list[0],
        k_25p=k_list[1],
        k_10p=k_list[2],
        rr25=iv25c - iv25p,
        bf25=0.5 * (iv25c + iv25p) - atm,
        put_skew_10d=iv10p - atm,
        put_skew_90_100=iv90 - atm,
        call_skew_110_100=iv110 - atm,
        skew_90_110=iv90 - iv110,
        slope=(iv_p - iv_m) / (2 * h),
        curvature=(iv_p - 2 * atm + iv_m) / (h * h),
        reason=reason,
    )


def expiry_metrics(surface: SmileSurface, expiry_times: Sequence[float] | np.ndarray) -> list[SmileMetrics]:
    """:func:`smile_metrics` on the surface's own slice at each expiry time (years)."""
    return [smile_metrics(smile_at(surface, float(t))) for t in np.asarray(expiry_times, dtype=float)]


def constant_maturity_smile(
    surface: SmileSurface, expiry_times: Sequence[float] | np.ndarray, days: float
) -> Smile | str:
    """The smile at ``days / 365`` years, interpolated between the bracketing expiries; a string (the reason)
    when the target lies before the first or after the last expiry (no extrapolation)."""
    times = np.unique(np.asarray(expiry_times, dtype=float))
    times = times[np.isfinite(times) & (times > 0)]
    tau = float(days) / DAYS_PER_YEAR
    if times.size == 0:
        return "no expiries on the surface"
    if tau > times[-1] + 1e-12:
        return f"beyond the last expiry ({times[-1] * DAYS_PER_YEAR:.1f} days); no extrapolation"
    if tau < times[0] - 1e-12:
        return f"before the first expiry ({times[0] * DAYS_PER_YEAR:.1f} days); no extrapolation"
    j = int(np.searchsorted(times, tau, side="left"))
    if j < times.size and abs(times[j] - tau) <= 1e-12:
        smile = smile_at(surface, float(times[j]))
        return Smile(t=tau, forward=smile.forward, iv_k=smile.iv_k)
    return interpolated_smile(surface, float(times[j - 1]), float(times[j]), tau)


def constant_maturity_metrics(
    surface: SmileSurface,
    expiry_times: Sequence[float] | np.ndarray,
    days: Sequence[float] = CONSTANT_MATURITY_DAYS,
) -> list[SmileMetrics]:
    """Skew figures at constant maturities (calendar days, ``t = days / 365``).

    Interpolates linearly in total variance at fixed ``k`` between the bracketing expiries of
    ``expiry_times`` (:func:`constant_maturity_smile`); a target outside ``[first, last]`` expiry is returned
    unavailable with a reason.
    """
    out = []
    for d in days:
        smile = constant_maturity_smile(surface, expiry_times, d)
        if isinstance(smile, str):
            out.append(unavailable_metrics(float(d) / DAYS_PER_YEAR, smile))
        else:
            out.append(smile_metrics(smile))
    return out


class NodeSmileSurface:
    """A plain surface from per-expiry (k, iv) nodes: monotone cubic (PCHIP) in ``k``.

    Beyond an expiry's quoted range the vol is NaN (``extrapolate="none"``, the default: a skew figure that
    needs a strike outside the quotes is reported unavailable rather than guessed) or the edge vol
    (``extrapolate="flat"``).

    Between expiries, :meth:`iv` interpolates linearly in total variance at fixed ``k`` (forward log-linear),
    the same rule as :func:`constant_maturity_metrics`. This is a fallback for when no fitted surface is at
    hand; it is not arbitrage-free.

    Parameters
    ----------
    t : array (n,)
        Expiry times, years (distinct).
    forward : array (n,)
        Forward per expiry.
    k_nodes, iv_nodes : sequence of n arrays
        Log-moneyness and decimal vol of each expiry's quotes (at least 2 finite nodes each).
    extrapolate : str
        ``none`` or ``flat``.
    """

    def __init__(self, t: ArrayLike, forward: ArrayLike, k_nodes: Sequence[ArrayLike], iv_nodes: Sequence[ArrayLike],
                 extrapolate: str = "none") -> None:
        if extrapolate not in ("none", "flat"):
            raise ParameterError(f"unknown extrapolation {extrapolate!r}", hint="none or flat")
        self.extrapolate = extrapolate
        t = np.asarray(t, dtype=float)
        fwd = np.asarray(forward, dtype=float)
        if t.size == 0 or len(k_nodes) != t.size or len(iv_nodes) != t.size:
            raise DataError("need one (k, iv) node set per expiry time", hint="check the inputs' lengths")
        order = np.argsort(t)
        self.t = t[order]
        self.forwards = fwd[order]
        if np.any(np.diff(self.t) <= 0):
            raise DataError("expiry times must be distinct", hint="merge duplicate expiries first")
        self._nodes = [(np.asarray(k_nodes[i], dtype=float), np.asarray(iv_nodes[i], dtype=float)) for i in order]
        # Interpolators are built on first use: tracking needs only the expiries bracketing a few maturities.
        self._cache: dict[int, tuple[Callable[[np.ndarray], np.ndarray], tuple[float, float]]] = {}

    def _slice(self, i: int) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[float, float]]:
        hit = self._cache.get(i)
        if hit is None:
            k, v = self._nodes[i]
            m = np.isfinite(k) & np.isfinite(v) & (v > 0)
            k, v = k[m], v[m]
            ks, inv = np.unique(k, return_inverse=True)
            # Average duplicate strikes (e.g. two roots on one date) before interpolating.
            vs = np.bincount(inv, weights=v) / np.bincount(inv) if ks.size else ks
            if ks.size < 2:
                raise DataError(f"expiry t={self.t[i]:.4f} has fewer than 2 usable quotes", hint="drop it first")
            hit = (self._make(ks, vs, self.extrapolate == "flat"), (float(ks[0]), float(ks[-1])))
            self._cache[i] = hit
        return hit

    def k_range(self, i: int) -> tuple[float, float]:
        """Log-moneyness range of expiry ``i``'s quotes."""
        return self._slice(i)[1]

    @staticmethod
    def _make(ks: np.ndarray, vs: np.ndarray, flat: bool) -> Callable[[np.ndarray], np.ndarray]:
        from scipy.interpolate import PchipInterpolator

        p = PchipInterpolator(ks, vs, extrapolate=False)

        def f(k: np.ndarray) -> np.ndarray:
            kk = np.asarray(k, dtype=float)
            # PCHIP with extrapolate=False already gives NaN outside [ks[0], ks[-1]].
            return p(np.clip(kk, ks[0], ks[-1])) if flat else p(kk)

        return f

    @property
    def expiry_times(self) -> np.ndarray:
        """Expiry times, years, ascending."""
        return self.t

    def forward(self, t: float) -> float:
        """Forward at ``t``: node value, log-linear between nodes, flat outside."""
        return float(np.exp(np.interp(t, self.t, np.log(self.forwards))))

    def _slice_iv(self, i: int, strike: np.ndarray) -> np.ndarray:
        return self._slice(i)[0](np.log(strike / self.forwards[i]))

    def iv(self, strike: ArrayLike, t: float) -> np.ndarray:
        """Decimal vol at ``strike`` for time ``t`` (exact slice at an expiry, total-variance interpolation
        between expiries, the nearest slice's vol at fixed ``k`` outside; NaN beyond the quoted strikes unless
        ``extrapolate="flat"``)."""
        strike = np.asarray(strike, dtype=float)
        j = int(np.searchsorted(self.t, t))
        if j < self.t.size and abs(self.t[j] - t) < 1e-12:
            return self._slice_iv(j, strike)
        if j == 0 or j == self.t.size:
            i = 0 if j == 0 else self.t.size - 1
            k = np.log(strike / self.forward(t))
            return self._slice(i)[0](k)
        t1, t2 = self.t[j - 1], self.t[j]
        k = np.log(strike / self.forward(t))
        a = (t - t1) / (t2 - t1)
        w = (1 - a) * self._slice(j - 1)[0](k) ** 2 * t1 + a * self._slice(j)[0](k) ** 2 * t2
        with np.errstate(invalid="ignore"):
            return np.sqrt(w / t)
