"""30-day SKEW-method index (Cboe SKEW methodology) from an option chain.

The Cboe SKEW index is ``100 - 10 S`` with ``S`` the risk-neutral skewness of the 30-day log return, computed
from the same out-of-the-money strip as the VIX. volsurf computes it from any chain (SPX, SPY, NDX, intraday),
next to the variance index (:mod:`volsurf.analytics.variance_index`), whose strip it reuses unchanged: forward,
``K0``, the two-zero-bid cut-off, ``dK`` and ``Q(K)`` come from :func:`~volsurf.analytics.variance_index.term_variance`.
See ``docs/skew_index.md`` for the formulas, conventions and the comparison with Cboe's published closes.

Per term (:func:`term_skew`), with ``x_i = ln(K_i/F)``, ``x0 = ln(K0/F)``, ``D = e^{RT}``:

* ``P1 = D * sum(-dK/K^2 Q) + e1``,                       ``e1 = x0 + F/K0 - 1``
* ``P2 = D * sum(2/K^2 (1 - x) dK Q) + e2``,               ``e2 = x0^2 + 2 x0 (F/K0 - 1)``
* ``P3 = D * sum(3/K^2 (2x - x^2) dK Q) + e3``,            ``e3 = x0^3 + 3 x0^2 (F/K0 - 1)``
* ``S = (P3 - 3 P1 P2 + 2 P1^3) / (P2 - P1^2)^{3/2}``

Two terms are combined in minutes, ``S30 = w S1 + (1 - w) S2`` with ``w = (N2 - N30)/(N2 - N1)`` (the VIX
weights), and ``SKEW = 100 - 10 S30`` (:func:`constant_maturity_skew`).

Units: ``t`` in years, rates continuously compounded decimals, prices in index points, ``P1..P3`` are raw
(non-annualized) moments of ``ln(S_T/F)``; the skewness is dimensionless; the index is in SKEW points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from volsurf._typing import ArrayLike, FloatArray
from volsurf.analytics.variance_index import (
    DEFAULT_RATE,
    MINUTES_PER_DAY,
    RateSpec,
    TermChoice,
    TermVariance,
    VarianceIndexResult,
    _eligible_expiries,
    _one_per_date,
    chain_term,
    minutes_to_settlement,
    strip_widths,
    term_entry,
    variance_index_from_chain,
)
from volsurf.errors import DataError, ParameterError
from volsurf.units import MINUTES_PER_YEAR

#: How many of a strip's farthest puts the headline sensitivity removes (per term).
WING_DROP = 3
#: Drops reported in ``sensitivity_profile``.
SENSITIVITY_DROPS = (1, 2, 3, 5, 10)
#: Legacy (pre-2014 VIX) roll rule used by ``terms="monthly"``: the near term needs more than 7 days.
MONTHLY_MIN_DAYS = 7
#: ``terms="monthly"`` needs consecutive contract months: the near term within this many days ...
MONTHLY_MAX_NEAR_DAYS = 45
#: ... and the next term less than this many days after it (a 5-week cycle is 35 days, 36 across Good Friday).
MONTHLY_MAX_GAP_DAYS = 37
#: Thin put wing: fewer strip puts than this ...
MIN_WING_PUTS = 10
#: ... or a strip that ends less than this many term standard deviations (``sqrt(sigma^2 T)``) below ``F``.
MIN_WING_SD = 5.0
#: ``|sensitivity|`` (SKEW points) above which the result carries a warning.
SENSITIVITY_WARN = 5.0

TermSelection = Literal["vix", "monthly"]
Epsilon2 = Literal["derived", "whitepaper"]


# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WingDiagnostics:
    """How much the far put wing of one term's strip can be trusted.

    Attributes
    ----------
    put_count : int
        Strip puts strictly below ``K0``.
    depth_sd : float
        ``ln(F / K_low) / sqrt(sigma^2 T)``: how many term standard deviations (VIX-method variance of the same
        strip) the lowest strip put lies below the forward.
    tail_share : float
        Share of the ``P3`` strip sum contributed by the ``WING_DROP`` farthest puts.
    non_monotone : int
        Adjacent strip puts whose lower strike's mid exceeds the higher strike's ask: a put price must fall
        with the strike, so such a pair cannot both be live quotes (one is stale); tick-level noise inside the
        spread does not count.
    bids_beyond_cut : int
        Listed puts below the strip's last put that still have a positive bid: the two-zero-bid rule cut them
        (as it does on Cboe's board; informative, not a flag by itself).
    thin, stale : bool
        ``put_count < MIN_WING_PUTS`` or ``depth_sd < MIN_WING_SD``; ``non_monotone > 0``.
    """

    put_count: int
    depth_sd: float
    tail_share: float
    non_monotone: int
    bids_beyond_cut: int
    thin: bool
    stale: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class TermSkew:
    """One term's risk-neutral log-return moments (Cboe SKEW methodology) and skewness.

    Attributes
    ----------
    term : TermVariance
        The VIX-method strip the moments are computed from (forward, ``K0``, strikes, ``Q(K)``, ``dK``).
    p1, p2, p3 : float
        ``E[ln(S_T/F)^k]``, k = 1, 2, 3, including the ``K0`` corrections (raw, not annualized).
    eps1, eps2, eps3 : float
        The ``K0`` corrections ``e1, e2, e3`` alone.
    variance : float
        ``P2 - P1^2``: the variance of the log return over the term (not annualized).
    skewness : float
        ``(P3 - 3 P1 P2 + 2 P1^3) / (P2 - P1^2)^{3/2}``.
    wing : WingDiagnostics
        Put-wing depth and staleness checks.
    """

    term: TermVariance
    p1: float
    p2: float
    p3: float
    eps1: float
    eps2: float
    eps3: float
    variance: float
    skewness: float
    wing: WingDiagnostics

    @property
    def skew_index(self) -> float:
        """``100 - 10 S`` of this term alone (SKEW points)."""
        return 100.0 - 10.0 * self.skewness

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-strike arrays)."""
        tv = self.term
        return {
            "t": tv.t,
            "rate": tv.rate,
            "forward": tv.forward,
            "k0": tv.k0,
            "strip_low": tv.strip_low,
            "strip_high": tv.strip_high,
            "strip_count": tv.strip_count,
            "put_count": tv.put_count,
            "call_count": tv.call_count,
            "p1": self.p1,
            "p2": self.p2,
            "p3": self.p3,
            "eps1": self.eps1,
            "eps2": self.eps2,
            "eps3": self.eps3,
            "variance": self.variance,
            "skewness": self.skewness,
            "term_skew_index": self.skew_index,
            "variance_index_term": 100.0 * math.sqrt(tv.sigma2) if tv.sigma2 > 0 else None,
            "wing": self.wing.to_dict(),
        }


@dataclass(frozen=True, eq=False)
class SkewIndexResult:
    """The 30-day SKEW-method index and its pieces, or the reason it is unavailable.

    Attributes
    ----------
    available : bool
        False when no term pair is available (``index`` NaN, see ``reason``).
    index : float
        ``100 - 10 * skewness_30d`` (SKEW points; Cboe's SKEW ranges ~100-170).
    skewness_30d : float
        ``w S1 + (1 - w) S2``.
    reason : str
        Why the index is unavailable ("" when available).
    terms : str
        Term selection: ``"vix"`` (the variance index's pair, bracketing 30 days) or ``"monthly"`` (standard
        monthly expiries with the legacy roll, as Cboe's published SKEW; may extrapolate).
    near, next : TermSkew or None
    near_minutes, next_minutes : float
    weight_near, weight_next : float
        ``w = (N2 - N30)/(N2 - N1)`` and ``1 - w`` (``w > 1`` when extrapolated).
    extrapolated : bool
        True when 30 days lies outside ``[N1, N2]`` (only with ``terms="monthly"``).
    near_choice, next_choice : TermChoice or None
    valuation_time : pandas.Timestamp or None
    variance_index : float
        The VIX-method index of the same two terms (volatility points; NaN when extrapolated terms would make it
        an extrapolation too).
    wing_drop : int
        Farthest puts removed per term for ``sensitivity``.
    sensitivity : float
        ``SKEW(strips without their wing_drop farthest puts) - SKEW`` (SKEW points; usually negative: the far
        puts carry the negative third moment).
    sensitivity_profile : dict
        The same for each drop in :data:`SENSITIVITY_DROPS`.
    warnings : tuple of str
        Thin or stale put wings, named by term.
    candidates : tuple
        ``(root, expiry_date, minutes)`` of the eligible expiries considered (``"monthly"``: those within
        ``MONTHLY_MAX_NEAR_DAYS + MONTHLY_MAX_GAP_DAYS`` days).
    """

    available: bool
    index: float
    skewness_30d: float
    reason: str = ""
    terms: str = "vix"
    near: TermSkew | None = None
    next: TermSkew | None = None
    near_minutes: float = math.nan
    next_minutes: float = math.nan
    weight_near: float = math.nan
    weight_next: float = math.nan
    extrapolated: bool = False
    near_choice: TermChoice | None = None
    next_choice: TermChoice | None = None
    valuation_time: pd.Timestamp | None = None
    variance_index: float = math.nan
    wing_drop: int = WING_DROP
    sensitivity: float = math.nan
    sensitivity_profile: dict[int, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    candidates: tuple[tuple[Any, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``skew_index`` object of ``volsurf skew --format json``)."""
        ok = self.available

        def num(v: float) -> float | None:
            return v if ok and math.isfinite(v) else None

        out: dict[str, Any] = {
            "available": ok,
            "index": num(self.index),
            "skewness_30d": num(self.skewness_30d),
            "reason": self.reason,
            "terms": self.terms,
            "extrapolated": self.extrapolated,
            "variance_index": num(self.variance_index),
            "wing_drop": self.wing_drop,
            "sensitivity": num(self.sensitivity),
            "sensitivity_profile": {str(k): num(v) for k, v in self.sensitivity_profile.items()},
            "warnings": list(self.warnings),
            "valuation_time": None if self.valuation_time is None else self.valuation_time.isoformat(),
            "candidates": [list(c) for c in self.candidates],
        }
        out["near"] = term_entry(self.near, self.near_choice, self.near_minutes, self.weight_near)
        out["next"] = term_entry(self.next, self.next_choice, self.next_minutes, self.weight_next)
        return out


def _unavailable(reason: str, **kwargs: Any) -> SkewIndexResult:
    return SkewIndexResult(available=False, index=math.nan, skewness_30d=math.nan, reason=reason, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# Numeric core
# ---------------------------------------------------------------------------------------------------------


def k0_corrections(forward: float, k0: float, epsilon2: Epsilon2 = "derived") -> tuple[float, float, float]:
    """The ``K0`` corrections ``(e1, e2, e3)`` of the first three log-return moments.

    Notes
    -----
    With ``x0 = ln(K0/F)`` and ``f_k(S) = ln(S/F)^k``, the strip is split at ``K0`` (puts below, calls above),
    so the exact spanning identity ``E f(S_T) = f(K0) + f'(K0)(F - K0) + e^{RT} int f''(K) Q(K) dK`` leaves
    ``e_k = f_k(K0) + f_k'(K0)(F - K0)``:

    * ``e1 = x0 + F/K0 - 1 = -(1 + ln(F/K0) - F/K0)``
    * ``e2 = x0^2 + 2 x0 (F/K0 - 1)``
    * ``e3 = x0^3 + 3 x0^2 (F/K0 - 1) = 3 x0^2 (x0/3 - 1 + F/K0)``

    ``e1`` and ``e3`` are the Cboe SKEW white paper's. Its ``e2`` reads ``(1/2) x0^2 + 2 x0 (F/K0 - 1)``
    (``epsilon2="whitepaper"``); the spanning identity gives coefficient 1. The two differ by ``x0^2 / 2``
    (``< 1e-6`` for SPX, where ``|F - K0|`` is below one 5-point strike step: under 0.01 SKEW points).
    """
    if not (forward > 0 and k0 > 0):
        raise ParameterError(f"forward and K0 must be positive, got F={forward!r}, K0={k0!r}")
    if epsilon2 not in ("derived", "whitepaper"):
        raise ParameterError(f"unknown epsilon2 {epsilon2!r}", hint="'derived' or 'whitepaper'")
    x0 = math.log(k0 / forward)
    g = forward / k0 - 1.0
    e1 = x0 + g
    e2 = (0.5 if epsilon2 == "whitepaper" else 1.0) * x0 * x0 + 2.0 * x0 * g
    e3 = x0**3 + 3.0 * x0 * x0 * g
    return e1, e2, e3


def strip_moments(
    strikes: ArrayLike,
    q: ArrayLike,
    dk: ArrayLike,
    forward: float,
    k0: float,
    t: float,
    rate: float,
    epsilon2: Epsilon2 = "derived",
) -> tuple[float, float, float, float, float, float]:
    """``(P1, P2, P3, e1, e2, e3)`` of one strip (Cboe SKEW methodology).

    Parameters
    ----------
    strikes, q, dk : array_like
        Strip strikes (index points), ``Q(K)`` (put mid below ``K0``, average at ``K0``, call mid above) and
        ``dK`` (see :func:`~volsurf.analytics.variance_index.strip_widths`).
    forward, k0 : float
        Forward ``F`` and ``K0`` (index points).
    t, rate : float
        Years to settlement and continuously compounded rate (decimal).
    epsilon2 : {"derived", "whitepaper"}
        Coefficient of ``x0^2`` in ``e2`` (see :func:`k0_corrections`).

    Notes
    -----
    With ``x = ln(K/F)``, ``D = e^{RT}``:
    ``P1 = -D sum dK Q / K^2 + e1``, ``P2 = D sum 2 (1 - x) dK Q / K^2 + e2``,
    ``P3 = D sum 3 (2x - x^2) dK Q / K^2 + e3``. ``2(1 - x)/K^2`` and ``3(2x - x^2)/K^2`` are the second
    derivatives of ``ln(K/F)^2`` and ``ln(K/F)^3`` (static replication of a smooth payoff by OTM options).
    """
    k = np.asarray(strikes, dtype=float)
    qq = np.asarray(q, dtype=float)
    w = np.asarray(dk, dtype=float)
    if not (k.shape == qq.shape == w.shape):
        raise ParameterError("strikes, q and dk must have the same length", hint="one entry per strip strike")
    if k.size and not np.all(k > 0):
        raise ParameterError("strip strikes must be positive")
    e1, e2, e3 = k0_corrections(forward, k0, epsilon2)
    growth = math.exp(rate * t)
    x = np.log(k / forward)
    base = growth * w * qq / (k * k)
    p1 = float(-np.sum(base)) + e1
    p2 = float(np.sum(2.0 * (1.0 - x) * base)) + e2
    p3 = float(np.sum(3.0 * (2.0 * x - x * x) * base)) + e3
    return p1, p2, p3, e1, e2, e3


def skewness_from_moments(p1: float, p2: float, p3: float) -> tuple[float, float]:
    """``(variance, skewness)`` from raw moments: ``P2 - P1^2`` and ``(P3 - 3 P1 P2 + 2 P1^3)/(P2 - P1^2)^1.5``.

    Raises
    ------
    DataError
        The variance is not positive (inconsistent quotes or a one-strike strip).
    """
    var = p2 - p1 * p1
    if not (var > 0 and math.isfinite(var)):
        raise DataError(
            f"strip gives a non-positive log-return variance ({var:.3g})",
            hint="the strip needs out-of-the-money quotes on both sides of K0",
        )
    return var, (p3 - 3.0 * p1 * p2 + 2.0 * p1**3) / var**1.5


def _drop_far_puts(term: TermVariance, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The strip without its ``n`` lowest puts (``K0`` and calls always kept), ``dK`` recomputed."""
    m = min(int(n), term.put_count)
    k = term.strikes[m:]
    return k, term.q[m:], strip_widths(k)


def _wing(term: TermVariance, board_puts: tuple[FloatArray, FloatArray, FloatArray] | None) -> WingDiagnostics:
    puts = term.strikes < term.k0
    n_put = int(np.count_nonzero(puts))
    sd = math.sqrt(term.sigma2 * term.t) if term.sigma2 > 0 else math.nan
    depth = math.log(term.forward / term.strip_low) / sd if n_put and sd > 0 else 0.0
    x = np.log(term.strikes / term.forward)
    c3 = 3.0 * (2.0 * x - x * x) * term.dk * term.q / term.strikes**2
    tot = float(np.sum(c3[puts]))
    tail = float(np.sum(c3[: min(WING_DROP, n_put)])) / tot if tot != 0 else math.nan
    non_mono = 0
    beyond = 0
    if board_puts is not None and n_put:
        k_all, pb, pa = board_puts
        kp = term.strikes[puts]
        pos = np.clip(np.searchsorted(k_all, kp), 0, max(k_all.size - 1, 0))
        found = k_all.size > 0 and bool(np.all(k_all[pos] == kp))
        if found and n_put > 1:
            # lower strike's mid (term.q) above the next higher strip put's ask
            non_mono = int(np.count_nonzero(term.q[puts][:-1] > pa[pos][1:]))
        with np.errstate(invalid="ignore"):
            beyond = int(np.count_nonzero((k_all < term.strip_low) & (pb > 0)))
    thin = n_put < MIN_WING_PUTS or depth < MIN_WING_SD
    return WingDiagnostics(
        put_count=n_put,
        depth_sd=float(depth),
        tail_share=tail,
        non_monotone=non_mono,
        bids_beyond_cut=beyond,
        thin=bool(thin),
        stale=non_mono > 0,
    )


def term_skewness(
    term: TermVariance,
    *,
    epsilon2: Epsilon2 = "derived",
    board_puts: tuple[FloatArray, FloatArray, FloatArray] | None = None,
) -> TermSkew:
    """SKEW-method moments and skewness of one VIX-method strip.

    Parameters
    ----------
    term : TermVariance
        From :func:`~volsurf.analytics.variance_index.term_variance`.
    epsilon2 : {"derived", "whitepaper"}
        See :func:`k0_corrections`.
    board_puts : (strikes, put_bid, put_ask) or None
        The term's full put board (strikes ascending), for ``non_monotone`` and ``bids_beyond_cut`` (0 without).

    Returns
    -------
    TermSkew
    """
    p1, p2, p3, e1, e2, e3 = strip_moments(
        term.strikes, term.q, term.dk, term.forward, term.k0, term.t, term.rate, epsilon2
    )
    var, s = skewness_from_moments(p1, p2, p3)
    return TermSkew(
        term=term,
        p1=p1,
        p2=p2,
        p3=p3,
        eps1=e1,
        eps2=e2,
        eps3=e3,
        variance=var,
        skewness=float(s),
        wing=_wing(term, board_puts),
    )


def term_skew(
    strikes: ArrayLike,
    call_bid: ArrayLike,
    call_ask: ArrayLike,
    put_bid: ArrayLike,
    put_ask: ArrayLike,
    t: float,
    rate: float,
    *,
    epsilon2: Epsilon2 = "derived",
) -> TermSkew:
    """One term's SKEW-method skewness from its board (same arguments as ``term_variance``).

    The strip is :func:`~volsurf.analytics.variance_index.term_variance`'s (forward, ``K0``, zero-bid walk,
    ``dK``); see :func:`strip_moments` for the moments.
    """
    from volsurf.analytics.variance_index import term_variance

    tv = term_variance(strikes, call_bid, call_ask, put_bid, put_ask, t, rate)
    k = np.asarray(strikes, dtype=float).ravel()
    order = np.argsort(k, kind="stable")
    board = (k[order], np.asarray(put_bid, dtype=float).ravel()[order], np.asarray(put_ask, dtype=float).ravel()[order])
    return term_skewness(tv, epsilon2=epsilon2, board_puts=board)


def _dropped_skewness(ts: TermSkew, n: int, epsilon2: Epsilon2) -> float:
    tv = ts.term
    k, q, dk = _drop_far_puts(tv, n)
    p1, p2, p3, *_ = strip_moments(k, q, dk, tv.forward, tv.k0, tv.t, tv.rate, epsilon2)
    try:
        return float(skewness_from_moments(p1, p2, p3)[1])
    except DataError:
        return math.nan


def constant_maturity_skew(
    near: TermSkew,
    next_: TermSkew,
    near_minutes: float,
    next_minutes: float,
    target_days: float = 30,
    *,
    extrapolate: bool = False,
    wing_drop: int = WING_DROP,
    epsilon2: Epsilon2 = "derived",
) -> SkewIndexResult:
    """Combine two terms' skewness to ``target_days`` and return ``SKEW = 100 - 10 S``.

    Parameters
    ----------
    near, next_ : TermSkew
        From :func:`term_skewness` / :func:`term_skew`.
    near_minutes, next_minutes : float
        Minutes to settlement (``N1 < N2``).
    target_days : float
        Constant maturity (30).
    extrapolate : bool
        Allow ``N30`` outside ``[N1, N2]`` (Cboe's published SKEW does, with its monthly terms).
    wing_drop : int
        Far puts removed per term for ``sensitivity``.
    epsilon2 : {"derived", "whitepaper"}
        For the sensitivity recomputation (must match the terms').

    Notes
    -----
    ``S30 = w S1 + (1 - w) S2``, ``w = (N2 - N30)/(N2 - N1)``, ``N30 = 43,200`` minutes: the VIX method's
    minute weights applied to the skewness itself, as the Cboe SKEW white paper does (it interpolates ``S``,
    not a total third moment). ``sensitivity = SKEW' - SKEW`` where ``SKEW'`` recomputes both terms without
    their ``wing_drop`` lowest-strike puts (the new last put's ``dK`` is its gap to the neighbour).

    Raises
    ------
    ParameterError
        ``N1 >= N2``, or ``N30`` outside ``[N1, N2]`` without ``extrapolate``.
    """
    n1, n2 = float(near_minutes), float(next_minutes)
    nt = float(target_days) * MINUTES_PER_DAY
    if not n1 < n2:
        raise ParameterError(
            f"near-term minutes {n1:g} must be less than next-term minutes {n2:g}", hint="swap the terms"
        )
    inside = n1 <= nt <= n2
    if not inside and not extrapolate:
        raise ParameterError(
            f"target {nt:g} minutes lies outside the terms [{n1:g}, {n2:g}]; the index does not extrapolate",
            hint="choose terms that bracket the target maturity",
        )
    w1 = (n2 - nt) / (n2 - n1)
    w2 = 1.0 - w1
    s30 = w1 * near.skewness + w2 * next_.skewness
    index = 100.0 - 10.0 * s30
    profile: dict[int, float] = {}
    for n in sorted({*SENSITIVITY_DROPS, int(wing_drop)}):
        sd = w1 * _dropped_skewness(near, n, epsilon2) + w2 * _dropped_skewness(next_, n, epsilon2)
        profile[n] = (100.0 - 10.0 * sd) - index
    variance_index = math.nan
    if inside:
        var = (near.term.t * near.term.sigma2 * w1 + next_.term.t * next_.term.sigma2 * w2) * MINUTES_PER_YEAR / nt
        variance_index = 100.0 * math.sqrt(var) if var > 0 else math.nan
    return SkewIndexResult(
        available=True,
        index=float(index),
        skewness_30d=float(s30),
        near=near,
        next=next_,
        near_minutes=n1,
        next_minutes=n2,
        weight_near=w1,
        weight_next=w2,
        extrapolated=not inside,
        variance_index=variance_index,
        wing_drop=int(wing_drop),
        sensitivity=profile[int(wing_drop)],
        sensitivity_profile={n: profile[n] for n in SENSITIVITY_DROPS},
    )


# ---------------------------------------------------------------------------------------------------------
# From a normalized chain
# ---------------------------------------------------------------------------------------------------------


def _board_puts(frame: pd.DataFrame, choice: TermChoice) -> tuple[FloatArray, FloatArray, FloatArray]:
    sel = (
        (frame["root"] == choice.root) & (frame["expiry"] == choice.expiry) & (frame["type"] == "put")
    ).to_numpy(dtype=bool)
    k = frame["strike"].to_numpy(dtype=float)[sel]
    order = np.argsort(k, kind="stable")
    return (
        k[order],
        frame["bid"].to_numpy(dtype=float)[sel][order],
        frame["ask"].to_numpy(dtype=float)[sel][order],
    )


def _monthly_terms(frame: pd.DataFrame, val: pd.Timestamp, roots: Sequence[str]) -> pd.DataFrame:
    """Standard monthly (third-Friday) expiries, one per date (AM standard first), ascending in minutes."""
    exp = _eligible_expiries(frame, roots)
    if exp.empty:
        return exp
    effective = pd.DatetimeIndex(pd.to_datetime(exp["expiry_date"])) + pd.to_timedelta(
        exp["window_shift"].to_numpy(), unit="D"
    )
    third = (effective.day >= 15) & (effective.day <= 21)
    exp = _one_per_date(exp.loc[np.asarray(third)])
    exp = exp.assign(minutes=minutes_to_settlement(val, exp["expiry"]))
    return exp.sort_values("minutes", kind="stable").reset_index(drop=True)


def skew_index_from_chain(
    frame: pd.DataFrame,
    valuation_time: pd.Timestamp,
    rate: RateSpec = DEFAULT_RATE,
    *,
    roots: Sequence[str] = ("SPX", "SPXW"),
    target_days: float = 30,
    terms: TermSelection = "vix",
    wing_drop: int = WING_DROP,
    epsilon2: Epsilon2 = "derived",
    variance: VarianceIndexResult | None = None,
) -> SkewIndexResult:
    """The 30-day SKEW-method index of a normalized chain.

    Parameters
    ----------
    frame : pandas.DataFrame
        Normalized snapshot frame (:mod:`volsurf.market.snapshot` schema).
    valuation_time : pandas.Timestamp
        Timezone-aware valuation instant.
    rate : float, callable or ``"parity"``
        As in :func:`~volsurf.analytics.variance_index.variance_index_from_chain`.
    roots : sequence of str
        Option roots to consider.
    target_days : float
        Constant maturity (30).
    terms : {"vix", "monthly"}
        ``"vix"`` (default): the variance index's two terms (Friday expiries with 23-37 days, bracketing 30
        days; unavailable with a reason otherwise, never extrapolated). ``"monthly"``: the standard
        third-Friday expiries with the legacy roll (near = the first with more than
        :data:`MONTHLY_MIN_DAYS` days, next = the following one, which must be consecutive contract months:
        near within :data:`MONTHLY_MAX_NEAR_DAYS` days, next less than :data:`MONTHLY_MAX_GAP_DAYS` days
        later), extrapolated when both lie beyond 30 days; this is the selection that reproduces Cboe's
        published SKEW closes (``docs/skew_index.md``).
    wing_drop : int
        Far puts removed per term for the headline ``sensitivity``.
    epsilon2 : {"derived", "whitepaper"}
        See :func:`k0_corrections`.
    variance : VarianceIndexResult, optional
        ``variance_index_from_chain(frame, valuation_time, rate, roots=roots, target_days=target_days)`` when the
        caller already has it (``terms="vix"`` uses its two terms); computed here otherwise.

    Returns
    -------
    SkewIndexResult
    """
    if terms not in ("vix", "monthly"):
        raise ParameterError(f"unknown term selection {terms!r}", hint="'vix' or 'monthly'")
    if not (isinstance(wing_drop, int | np.integer) and wing_drop >= 1):
        raise ParameterError(f"wing_drop must be a positive integer, got {wing_drop!r}")
    val = pd.Timestamp(valuation_time)
    if val.tzinfo is None:
        raise ParameterError("valuation_time must be timezone-aware", hint="use Snapshot.meta.valuation_time")
    pairs: list[tuple[TermVariance, TermChoice]]
    if terms == "vix":
        vr = variance if variance is not None else variance_index_from_chain(frame, val, rate, roots=roots,
                                                                             target_days=target_days)
        if not vr.available:
            return _unavailable(vr.reason, terms=terms, valuation_time=val, candidates=vr.candidates)
        # an available result always carries both terms and their choices
        assert vr.near is not None and vr.near_choice is not None
        assert vr.next is not None and vr.next_choice is not None
        pairs = [(vr.near, vr.near_choice), (vr.next, vr.next_choice)]
        candidates = vr.candidates
    else:
        missing = {"root", "expiry", "expiry_date", "settlement", "strike", "type", "bid", "ask"} - set(frame.columns)
        if missing:
            raise ParameterError(f"frame lacks columns {sorted(missing)}", hint="pass a normalized Snapshot.frame")
        monthly = _monthly_terms(frame, val, roots)
        if not monthly.empty:
            monthly = monthly[monthly["minutes"] > MONTHLY_MIN_DAYS * MINUTES_PER_DAY]
        horizon = (MONTHLY_MAX_NEAR_DAYS + MONTHLY_MAX_GAP_DAYS) * MINUTES_PER_DAY
        candidates = tuple(
            (r.root, r.expiry_date, int(cast(int, r.minutes)))
            for r in monthly.itertuples(index=False)
            if cast(int, r.minutes) < horizon
        )
        if len(monthly) < 2:
            return _unavailable(
                f"fewer than two standard monthly expiries of roots {'/'.join(roots)} with more than "
                f"{MONTHLY_MIN_DAYS} days ({len(monthly)} found)",
                terms=terms,
                valuation_time=val,
                candidates=candidates,
            )
        n1, n2 = (int(m) for m in monthly["minutes"].iloc[:2])
        if n1 > MONTHLY_MAX_NEAR_DAYS * MINUTES_PER_DAY or n2 - n1 >= MONTHLY_MAX_GAP_DAYS * MINUTES_PER_DAY:
            return _unavailable(
                f"the first two standard monthly expiries ({n1 / MINUTES_PER_DAY:.2f} and {n2 / MINUTES_PER_DAY:.2f} "
                f"days) are not consecutive contract months near 30 days (near at most {MONTHLY_MAX_NEAR_DAYS} days, "
                f"gap under {MONTHLY_MAX_GAP_DAYS} days); the chain lacks the months in between",
                terms=terms,
                valuation_time=val,
                candidates=candidates,
            )
        pairs = []
        for _, row in monthly.iloc[:2].iterrows():
            try:
                pairs.append(chain_term(frame, row, rate))
            except DataError as err:
                return _unavailable(
                    f"{row['root']} {row['expiry_date']}: {err.message}",
                    terms=terms,
                    valuation_time=val,
                    candidates=candidates,
                )
    skews: list[TermSkew] = []
    for tv, choice in pairs:
        try:
            skews.append(term_skewness(tv, epsilon2=epsilon2, board_puts=_board_puts(frame, choice)))
        except DataError as err:
            return _unavailable(
                f"{choice.root} {choice.expiry_date}: {err.message}",
                terms=terms,
                valuation_time=val,
                candidates=candidates,
            )
    (_, c1), (_, c2) = pairs
    res = constant_maturity_skew(
        skews[0],
        skews[1],
        c1.minutes,
        c2.minutes,
        target_days,
        extrapolate=terms == "monthly",
        wing_drop=wing_drop,
        epsilon2=epsilon2,
    )
    warnings = []
    for label, ts, ch in (("near", skews[0], c1), ("next", skews[1], c2)):
        w = ts.wing
        name = f"{label} term {ch.root} {ch.expiry_date}"
        if w.thin:
            warnings.append(
                f"{name}: thin put wing ({w.put_count} puts, lowest {ts.term.strip_low:g} is {w.depth_sd:.1f} sd "
                f"below F; needs {MIN_WING_PUTS} puts and {MIN_WING_SD:g} sd)"
            )
        if w.stale:
            warnings.append(
                f"{name}: stale put wing: {w.non_monotone} strip put(s) priced above the next higher strike's ask"
            )
    if abs(res.sensitivity) > SENSITIVITY_WARN:
        warnings.append(
            f"sensitive to the far put wing: dropping each term's {wing_drop} farthest puts moves the index by "
            f"{res.sensitivity:+.2f} points"
        )
    return SkewIndexResult(
        available=True,
        index=res.index,
        skewness_30d=res.skewness_30d,
        terms=terms,
        near=res.near,
        next=res.next,
        near_minutes=res.near_minutes,
        next_minutes=res.next_minutes,
        weight_near=res.weight_near,
        weight_next=res.weight_next,
        extrapolated=res.extrapolated,
        near_choice=c1,
        next_choice=c2,
        valuation_time=val,
        variance_index=res.variance_index,
        wing_drop=res.wing_drop,
        sensitivity=res.sensitivity,
        sensitivity_profile=res.sensitivity_profile,
        warnings=tuple(warnings),
        candidates=candidates,
    )
