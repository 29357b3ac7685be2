"""30-day model-free variance index with the Cboe VIX methodology.

The index is the square root of the 30-day variance swap rate implied by out-of-the-money option quotes,
in volatility points (17.3 = 17.3% annualized). The steps follow the Cboe VIX methodology exactly (see
``docs/variance_index.md``):

1. Per term: mid quotes; the forward ``F = K + e^{RT} (C - P)`` at the strike with the smallest
   ``|C - P|``; ``K0`` = first strike at or below ``F``; out-of-the-money puts below ``K0`` and calls above
   it, walking away from ``K0`` and skipping zero bids, stopping at two consecutive zero bids; ``K0`` once at
   the average of the put and call mids; ``dK`` from the surviving neighbours;
   ``sigma^2 = (2/T) sum dK/K^2 e^{RT} Q(K) - (1/T) (F/K0 - 1)^2`` (:func:`term_variance`).
2. Two terms bracketing 30 days are interpolated in minutes (``N30 = 43,200``, ``N365 = 525,600``) and
   annualized (:func:`constant_maturity_index`).
3. From a normalized chain (:mod:`volsurf.market.snapshot`): the near and next terms are Friday SPX expiries
   (standard AM third-Friday SPX or PM weekly SPXW) with more than 23 and less than 37 days to settlement,
   the last one at or before 30 days and the first one after it (:func:`variance_index_from_chain`).

Units: ``t`` in years (minutes / 525,600), rates continuously compounded decimals, prices in index points,
``sigma2`` in annualized decimal variance, the index in volatility points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from volsurf._typing import ArrayLike, BoolArray, FloatArray
from volsurf.errors import DataError, ParameterError
from volsurf.units import MINUTES_PER_DAY, NY

N30 = 30 * MINUTES_PER_DAY  # 43,200 minutes
N365 = 365 * MINUTES_PER_DAY  # 525,600 minutes
MIN_DAYS = 23  # eligible terms have strictly more than 23 days to settlement ...
MAX_DAYS = 37  # ... and strictly less than 37 days

#: Default ``rate`` of :func:`variance_index_from_chain`: each term's rate is read from that term's own quotes
#: by put-call parity (``C - P = D (F - K)``, so the slope of ``C - P`` against ``K`` is ``-D``). The VIX uses
#: Treasury CMT yields spline-interpolated to each expiry; volsurf cannot download them, and no single constant
#: fits the data volsurf sees (1-month bills were ~0.05% in Feb 2022 and ~5.5% in Sep 2023). The SPX box rate
#: sits within a few tenths of a percent of the bill rate, and the index moves only ~0.01 points per 1% of rate.
DEFAULT_RATE: Literal["parity"] = "parity"
#: Constant used when parity cannot be estimated (too few two-sided strikes): a mid-2020s 1-month T-bill level.
FALLBACK_RATE = 0.04

RateSpec = float | Callable[[float], float] | Literal["parity"]


# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TermVariance:
    """One term's model-free variance and its pieces (Cboe VIX methodology, step 2).

    Attributes
    ----------
    t, rate : float
        Time to settlement (years) and continuously compounded rate (decimal) used.
    forward_strike : float
        Strike with the smallest ``|C - P|`` of mid quotes.
    forward : float
        ``F = K + e^{RT} (C - P)`` at ``forward_strike`` (index points).
    k0 : float
        First listed strike at or below ``F``.
    q_k0 : float
        ``Q(K0)``: average of the put and call mids at ``K0``.
    strikes, q, dk : ndarray
        The strip, ascending: strikes, ``Q(K)`` (put mid below ``K0``, ``q_k0`` at ``K0``, call mid above) and
        ``dK`` (half the gap between surviving neighbours; the gap to the single neighbour at the ends).
    contributions : ndarray
        ``dK / K^2 * e^{RT} * Q(K)`` per strip strike.
    strip_sum : float
        Sum of ``contributions``.
    scaled_sum : float
        ``(2/T) * strip_sum``.
    taylor : float
        ``(1/T) (F/K0 - 1)^2``.
    sigma2 : float
        ``scaled_sum - taylor``: annualized variance (decimal).
    """

    t: float
    rate: float
    forward_strike: float
    forward: float
    k0: float
    q_k0: float
    strikes: FloatArray
    q: FloatArray
    dk: FloatArray
    contributions: FloatArray
    strip_sum: float
    scaled_sum: float
    taylor: float
    sigma2: float

    @property
    def strip_low(self) -> float:
        """Lowest strike in the strip (the last put kept)."""
        return float(self.strikes[0])

    @property
    def strip_high(self) -> float:
        """Highest strike in the strip (the last call kept)."""
        return float(self.strikes[-1])

    @property
    def strip_count(self) -> int:
        """Number of strikes in the strip (``K0`` counted once)."""
        return int(self.strikes.size)

    @property
    def put_count(self) -> int:
        """Puts in the strip strictly below ``K0``."""
        return int(np.count_nonzero(self.strikes < self.k0))

    @property
    def call_count(self) -> int:
        """Calls in the strip strictly above ``K0``."""
        return int(np.count_nonzero(self.strikes > self.k0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-strike arrays)."""
        return {
            "t": self.t,
            "rate": self.rate,
            "forward_strike": self.forward_strike,
            "forward": self.forward,
            "k0": self.k0,
            "q_k0": self.q_k0,
            "strip_low": self.strip_low,
            "strip_high": self.strip_high,
            "strip_count": self.strip_count,
            "strip_sum": self.strip_sum,
            "scaled_sum": self.scaled_sum,
            "taylor": self.taylor,
            "sigma2": self.sigma2,
        }


@dataclass(frozen=True, eq=False)
class TermChoice:
    """Which listed expiry a term uses and how its rate was chosen."""

    root: str
    expiry: pd.Timestamp
    expiry_date: str
    settlement: str
    minutes: int
    rate_source: str


@dataclass(frozen=True, eq=False)
class VarianceIndexResult:
    """The 30-day index (VIX points) and its pieces, or the reason it is unavailable.

    Attributes
    ----------
    available : bool
        False when the chain lacks eligible terms on both sides of 30 days (``index`` is NaN, see ``reason``).
    index : float
        ``100 * sqrt(variance_30d)``, volatility points (e.g. 17.3).
    variance_30d : float
        Annualized 30-day variance (decimal), ``(w1 T1 s1^2 + w2 T2 s2^2) * N365 / N30``.
    reason : str
        Why the index is unavailable ("" when available).
    near, next : TermVariance or None
        The two terms.
    near_minutes, next_minutes : float
        Minutes to settlement (``N_T1``, ``N_T2``).
    weight_near, weight_next : float
        ``(N_T2 - N30) / (N_T2 - N_T1)`` and ``(N30 - N_T1) / (N_T2 - N_T1)``.
    near_choice, next_choice : TermChoice or None
        Expiry, root and rate source per term (only from :func:`variance_index_from_chain`).
    valuation_time : pandas.Timestamp or None
        Valuation instant (only from :func:`variance_index_from_chain`).
    candidates : tuple
        ``(root, expiry_date, minutes)`` of every eligible expiry in the 23-37 day window.
    """

    available: bool
    index: float
    variance_30d: float
    reason: str = ""
    near: TermVariance | None = None
    next: TermVariance | None = None
    near_minutes: float = math.nan
    next_minutes: float = math.nan
    weight_near: float = math.nan
    weight_next: float = math.nan
    near_choice: TermChoice | None = None
    next_choice: TermChoice | None = None
    valuation_time: pd.Timestamp | None = None
    candidates: tuple[tuple[Any, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        out: dict[str, Any] = {
            "available": self.available,
            "index": None if not self.available else self.index,
            "variance_30d": None if not self.available else self.variance_30d,
            "reason": self.reason,
            "valuation_time": None if self.valuation_time is None else self.valuation_time.isoformat(),
            "candidates": [list(c) for c in self.candidates],
        }
        out["near"] = term_entry(self.near, self.near_choice, self.near_minutes, self.weight_near)
        out["next"] = term_entry(self.next, self.next_choice, self.next_minutes, self.weight_next)
        return out


def term_entry(term: Any, choice: TermChoice | None, minutes: float, weight: float) -> dict[str, Any] | None:
    """One term of a 30-day index as JSON: the term's own figures, its minutes and weight, and the expiry
    it comes from (shared by the variance index and the SKEW index)."""
    if term is None:
        return None
    d: dict[str, Any] = term.to_dict()
    d.update({"minutes": minutes, "weight": weight})
    if choice is not None:
        d.update({"root": choice.root, "expiry": choice.expiry.isoformat(), "expiry_date": choice.expiry_date,
                  "settlement": choice.settlement, "rate_source": choice.rate_source})
    return d


def _unavailable(reason: str, **kwargs: Any) -> VarianceIndexResult:
    return VarianceIndexResult(
        available=False, index=math.nan, variance_30d=math.nan, reason=reason, **kwargs
    )


# ---------------------------------------------------------------------------------------------------------
# Numeric core
# ---------------------------------------------------------------------------------------------------------


def _walk_keep(bid: FloatArray, ask: FloatArray) -> BoolArray:
    """Which series survive the zero-bid walk; arrays are in walking order (nearest ``K0`` first).

    A zero (or missing) bid is skipped; the walk stops at the second of two consecutive zero bids and drops
    everything beyond, bids or not. Zero/missing-ask series are excluded but do not count toward the stop.
    """
    zero_bid = ~(bid > 0)  # NaN bid counts as zero (no buyer)
    pair = zero_bid[1:] & zero_bid[:-1]
    # stopped[j] is True from the second zero bid of the first consecutive pair onwards
    stopped = np.concatenate(([False], np.cumsum(pair) > 0))
    return ~zero_bid & (ask > 0) & ~stopped


def strip_widths(strikes: ArrayLike) -> FloatArray:
    """``dK`` of an ascending strip (index points): half the gap between neighbours; the gap to the single
    neighbour at each end; 0 for a lone strike (it carries no width)."""
    k = np.asarray(strikes, dtype=float)
    dk = np.zeros_like(k)
    if k.size > 1:
        dk[1:-1] = 0.5 * (k[2:] - k[:-2])
        dk[0] = k[1] - k[0]
        dk[-1] = k[-1] - k[-2]
    return dk


def term_variance(
    strikes: ArrayLike,
    call_bid: ArrayLike,
    call_ask: ArrayLike,
    put_bid: ArrayLike,
    put_ask: ArrayLike,
    t: float,
    rate: float,
) -> TermVariance:
    """Model-free variance of one term with the Cboe VIX rules.

    Parameters
    ----------
    strikes : array_like
        Listed strikes (index points), one per row; sorted here.
    call_bid, call_ask, put_bid, put_ask : array_like
        Quotes per strike (premium points). NaN in both bid and ask of a side means "not listed" for that
        side (left out of its walk); a NaN or zero bid with a listed ask is a zero bid.
    t : float
        Time to settlement in years (the methodology uses minutes / 525,600).
    rate : float
        Continuously compounded risk-free rate to the settlement (decimal).

    Returns
    -------
    TermVariance

    Raises
    ------
    ParameterError
        ``t <= 0``, mismatched shapes or duplicate strikes.
    DataError
        No strike has both a call and a put quote (no forward), or no strike at or below the forward.
    """
    if not (t > 0 and math.isfinite(t)):
        raise ParameterError(f"time to settlement must be positive, got t={t!r}", hint="pass t in years")
    if not math.isfinite(rate):
        raise ParameterError(f"rate must be finite, got {rate!r}", hint="pass a decimal rate such as 0.05")
    k = np.asarray(strikes, dtype=float).ravel()
    arrays = [np.asarray(a, dtype=float).ravel() for a in (call_bid, call_ask, put_bid, put_ask)]
    if any(a.shape != k.shape for a in arrays):
        raise ParameterError("strikes and quote arrays must have the same length", hint="one row per strike")
    order = np.argsort(k, kind="stable")
    k = k[order]
    cb, ca, pb, pa = (a[order] for a in arrays)
    if k.size and np.any(np.diff(k) == 0):
        raise ParameterError(
            "duplicate strikes in one term", hint="pivot calls and puts to one row per strike"
        )
    growth = math.exp(rate * t)

    with np.errstate(invalid="ignore"):
        call_mid = 0.5 * (cb + ca)
        put_mid = 0.5 * (pb + pa)
        # Forward: strikes where both sides have a real two-sided quote (a zero-bid mid is only half an ask).
        two_sided = (cb > 0) & (ca > 0) & (pb > 0) & (pa > 0)
    if not np.any(two_sided):
        raise DataError(
            "no strike has both a call and a put quote; cannot locate the forward",
            hint="the term needs two-sided quotes near the money",
        )
    diff = np.where(two_sided, np.abs(call_mid - put_mid), np.inf)
    i_fwd = int(np.argmin(diff))  # ties: the lowest strike (argmin returns the first)
    forward = float(k[i_fwd] + growth * (call_mid[i_fwd] - put_mid[i_fwd]))

    below = np.flatnonzero(k <= forward)
    if below.size == 0:
        raise DataError(f"no listed strike at or below the forward {forward:.4f}", hint="check the strikes")
    i0 = int(below[-1])
    k0 = float(k[i0])
    q_k0 = float(0.5 * (put_mid[i0] + call_mid[i0]))
    if not math.isfinite(q_k0):
        raise DataError(f"K0 = {k0:g} lacks a call or put quote", hint="the strike at the forward needs both")

    # Puts below K0, walking down; calls above K0, walking up. Unlisted sides drop out of the sequence.
    put_listed = np.isfinite(pb) | np.isfinite(pa)
    call_listed = np.isfinite(cb) | np.isfinite(ca)
    idx = np.arange(k.size)
    put_idx = idx[(idx < i0) & put_listed][::-1]
    call_idx = idx[(idx > i0) & call_listed]
    with np.errstate(invalid="ignore"):
        put_keep = put_idx[_walk_keep(pb[put_idx], pa[put_idx])]
        call_keep = call_idx[_walk_keep(cb[call_idx], ca[call_idx])]

    strip_idx = np.concatenate((put_keep[::-1], [i0], call_keep))
    strip_k = k[strip_idx]
    q = np.concatenate((put_mid[put_keep[::-1]], [q_k0], call_mid[call_keep]))

    dk = strip_widths(strip_k)
    contributions = dk / strip_k**2 * growth * q
    strip_sum = float(np.sum(contributions))
    scaled_sum = 2.0 / t * strip_sum
    taylor = (forward / k0 - 1.0) ** 2 / t
    return TermVariance(
        t=float(t),
        rate=float(rate),
        forward_strike=float(k[i_fwd]),
        forward=forward,
        k0=k0,
        q_k0=q_k0,
        strikes=strip_k,
        q=q,
        dk=dk,
        contributions=contributions,
        strip_sum=strip_sum,
        scaled_sum=scaled_sum,
        taylor=taylor,
        sigma2=scaled_sum - taylor,
    )


def constant_maturity_index(
    near: TermVariance,
    next_: TermVariance,
    near_minutes: float,
    next_minutes: float,
    target_days: float = 30,
) -> VarianceIndexResult:
    """Interpolate two terms to a constant maturity (minutes) and return the index in volatility points.

    ``index = 100 sqrt{[T1 s1^2 (N2 - Nt)/(N2 - N1) + T2 s2^2 (Nt - N1)/(N2 - N1)] * N365 / Nt}`` with
    ``Nt = target_days * 1440`` (``N30 = 43,200`` for the VIX) and ``N365 = 525,600``. ``T1``, ``T2`` are the
    terms' own ``t`` (so a caller can reproduce publications that print a rounded T).

    Parameters
    ----------
    near, next_ : TermVariance
        The terms from :func:`term_variance`.
    near_minutes, next_minutes : float
        Minutes to settlement of each term (``N_T1 < N_T2``).
    target_days : float
        Constant maturity in days (30 for the VIX).

    Raises
    ------
    ParameterError
        ``N_T1 >= N_T2`` or the target lies outside ``[N_T1, N_T2]`` (the index never extrapolates).
    """
    n1, n2 = float(near_minutes), float(next_minutes)
    nt = float(target_days) * MINUTES_PER_DAY
    if not n1 < n2:
        raise ParameterError(
            f"near-term minutes {n1:g} must be less than next-term minutes {n2:g}", hint="swap the terms"
        )
    if not n1 <= nt <= n2:
        raise ParameterError(
            f"target {nt:g} minutes lies outside the terms [{n1:g}, {n2:g}]; the index does not extrapolate",
            hint="choose terms that bracket the target maturity",
        )
    w1 = (n2 - nt) / (n2 - n1)
    w2 = (nt - n1) / (n2 - n1)
    variance = (near.t * near.sigma2 * w1 + next_.t * next_.sigma2 * w2) * N365 / nt
    if variance < 0:
        raise DataError(
            f"interpolated variance is negative ({variance:.3g})", hint="the option quotes are inconsistent"
        )
    return VarianceIndexResult(
        available=True,
        index=100.0 * math.sqrt(variance),
        variance_30d=variance,
        near=near,
        next=next_,
        near_minutes=n1,
        next_minutes=n2,
        weight_near=w1,
        weight_next=w2,
    )


def parity_rate(
    strikes: ArrayLike,
    call_bid: ArrayLike,
    call_ask: ArrayLike,
    put_bid: ArrayLike,
    put_ask: ArrayLike,
    t: float,
    band: float = 0.2,
) -> float:
    """Continuously compounded rate implied by put-call parity across the strikes of one term.

    ``C - P = D (F - K)`` is linear in ``K`` with slope ``-D``: a weighted least-squares line through the
    two-sided strikes within ``band`` (relative) of the strike where ``|C - P|`` is smallest, weighted by
    ``1 / (call spread + put spread)``, gives ``D`` and ``rate = -ln(D) / t``. Needs no spot and no dividend
    assumption. Precision is a few tenths of a percent on SPX 1-month terms (spreads limit it).

    Returns NaN when fewer than 5 strikes are usable or the slope is not a plausible discount factor.
    """
    k = np.asarray(strikes, dtype=float)
    cb, ca, pb, pa = (np.asarray(a, dtype=float) for a in (call_bid, call_ask, put_bid, put_ask))
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(k) & (cb > 0) & (ca > cb) & (pb > 0) & (pa > pb)
    if np.count_nonzero(ok) < 5 or not t > 0:
        return math.nan
    k, cb, ca, pb, pa = k[ok], cb[ok], ca[ok], pb[ok], pa[ok]
    diff = 0.5 * (cb + ca) - 0.5 * (pb + pa)
    k_atm = k[np.argmin(np.abs(diff))]
    near = np.abs(k / k_atm - 1.0) <= band
    if np.count_nonzero(near) < 5:
        return math.nan
    # polyfit weights multiply residuals, so 1/spread is inverse standard deviation of the mid difference
    slope = np.polyfit(k[near], diff[near], 1, w=1.0 / ((ca - cb) + (pa - pb))[near])[0]
    discount = -slope
    if not 0.5 < discount <= 1.5:
        return math.nan
    return float(-math.log(discount) / t)


# ---------------------------------------------------------------------------------------------------------
# Term selection from a normalized chain
# ---------------------------------------------------------------------------------------------------------


def minutes_to_settlement(
    valuation_time: pd.Timestamp, expiry: ArrayLike | pd.Series
) -> npt.NDArray[np.int64]:
    """Whole minutes from ``valuation_time`` to each settlement, Cboe style (seconds dropped).

    Counted on the New York wall clock (minutes to midnight + 1440 per day between + minutes to the settlement
    time on the settlement day), so a DST change inside the term does not add or remove an hour.
    """
    val = pd.Timestamp(valuation_time)
    if val.tzinfo is None:
        raise ParameterError(
            "valuation_time must be timezone-aware", hint="e.g. Timestamp(..., tz='America/New_York')"
        )
    val_local = val.tz_convert(NY).tz_localize(None)
    exp = pd.DatetimeIndex(pd.to_datetime(pd.Series(expiry)))
    exp_local = exp.tz_convert(NY).tz_localize(None) if exp.tz is not None else exp
    seconds = (exp_local - val_local).total_seconds().to_numpy()
    return np.floor(seconds / 60.0).astype(np.int64)


def _nyse_is_session(days: pd.DatetimeIndex) -> BoolArray:
    """True where NYSE holds a session (dates outside the calendar's range count as sessions)."""
    from volsurf.market.calendar import nyse

    cal = nyse()
    naive = pd.DatetimeIndex(days).normalize()
    inside = (naive >= cal.first_session) & (naive <= cal.last_session)
    return ~inside | naive.isin(cal.sessions)


def _eligible_expiries(frame: pd.DataFrame, roots: Sequence[str]) -> pd.DataFrame:
    """Distinct (root, expiry) of the given roots that the VIX may use.

    Friday expiries only (a Thursday counts when its Friday is an exchange holiday; ``window_shift`` = 1 day
    then); AM-settled expiries only on the standard third Friday. Several roots may share a date here (see
    :func:`_one_per_date`, applied after the 23-37 day window).
    """
    el = _Eligible(frame, roots)
    if el.exp.empty:
        return el.exp
    ok = el.ok
    exp = el.exp.loc[ok].assign(_am=el.am[ok], window_shift=el.shift)
    return exp.reset_index(drop=True)


_COLS = ("root", "expiry", "expiry_date", "settlement")
_IntArray = npt.NDArray[np.int64]


class _Eligible:
    """The work of :func:`_eligible_expiries` as arrays: ``exp`` (first row of each (root, expiry) of ``roots``,
    frame order), ``ok`` (eligible), ``am``, ``shift`` (window shift of the eligible ones), ``col(c)`` (a column
    of the eligible ones) and ``rows_of(i)`` (the frame rows of eligible expiry ``i``)."""

    def __init__(self, frame: pd.DataFrame, roots: Sequence[str]) -> None:
        # First row of each (root, expiry), in frame order (= drop_duplicates), found on integer codes: a chain
        # has tens of expiries over thousands of rows.
        idx = np.flatnonzero(frame["root"].isin(roots).to_numpy(dtype=bool))
        root_codes, _ = pd.factorize(frame["root"].iloc[idx], use_na_sentinel=False)
        exp_codes, exp_uniq = pd.factorize(frame["expiry"].iloc[idx], use_na_sentinel=False)
        pair = root_codes.astype(np.int64) * max(len(exp_uniq), 1) + exp_codes
        _, first = np.unique(pair, return_index=True)
        first = np.sort(first)
        self._idx, self._pair = idx, pair
        self.exp = frame.iloc[idx[first], [cast(int, frame.columns.get_loc(c)) for c in _COLS]]
        n = len(self.exp)
        if n == 0:
            return
        from volsurf.market.calendar import date_days

        days = date_days(self.exp["expiry_date"].to_numpy())
        weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        thursday = weekday == 3
        friday_after = days + np.timedelta64(1, "D")
        friday_closed = np.zeros(n, dtype=bool)
        if thursday.any():
            friday_closed[thursday] = ~_nyse_is_session(pd.DatetimeIndex(friday_after[thursday].astype("datetime64[us]")))
        effective = np.where(thursday & friday_closed, friday_after, days)
        day_of_month = (effective - effective.astype("datetime64[M]")).astype(np.int64) + 1
        is_friday = (weekday == 4) | (thursday & friday_closed)
        third_friday = (day_of_month >= 15) & (day_of_month <= 21)
        self.am = self.exp["settlement"].to_numpy() == "AM"
        self.ok = is_friday & (~self.am | third_friday)
        # a holiday-shifted Thursday keeps its Friday's place in the weekly cycle for the 23-37 day window test
        self.shift = (thursday & friday_closed)[self.ok].astype(np.int64)
        self._kept_pairs = pair[first][self.ok]

    def col(self, c: str) -> Any:
        return self.exp[c].to_numpy()[self.ok] if c != "_am" else self.am[self.ok]

    def rows_of(self, i: int) -> _IntArray:
        return self._idx[self._pair == self._kept_pairs[i]]


def _one_per_date(exp: pd.DataFrame) -> pd.DataFrame:
    """Keep one expiry per date: the AM standard over a PM weekly (the VIX's choice), then by root name."""
    exp = exp.sort_values(["expiry_date", "_am", "root"], ascending=[True, False, True])
    return exp.drop_duplicates("expiry_date").drop(columns="_am").reset_index(drop=True)


def _one_per_date_positions(
    pos: npt.NDArray[np.intp], root: npt.NDArray[Any], expiry_date: npt.NDArray[Any], settlement: npt.NDArray[Any],
    am: BoolArray, expiry: pd.Series,
) -> npt.NDArray[np.intp]:
    """:func:`_one_per_date` of the eligible expiries at positions ``pos``: the kept positions in its order."""
    if pos.size == 0:
        return pos
    dates, roots = expiry_date[pos], root[pos]
    if all(type(v) is str for v in dates.tolist()) and all(type(v) is str for v in roots.tolist()):
        # sort_values(["expiry_date", "_am", "root"], ascending=[True, False, True]) is a stable lexsort
        _, date_codes = np.unique(dates, return_inverse=True)
        _, root_codes = np.unique(roots, return_inverse=True)
        order = np.lexsort((root_codes.ravel(), ~am[pos], date_codes.ravel()))
        d = date_codes.ravel()[order]
        return pos[order][np.r_[True, d[1:] != d[:-1]]]
    table = pd.DataFrame({"root": roots, "expiry": expiry.iloc[pos].to_numpy(), "expiry_date": dates,
                          "settlement": settlement[pos], "_am": am[pos], "_pos": pos})
    return _one_per_date(table)["_pos"].to_numpy(dtype=np.intp)


def _pivot_term(frame: pd.DataFrame, root: str, expiry: pd.Timestamp) -> pd.DataFrame:
    """One row per strike (ascending, index ``strike``) with call_bid, call_ask, put_bid, put_ask; the first
    quote of a repeated (strike, type) wins."""
    board = _pivot_arrays(frame, root, expiry)
    if isinstance(board, pd.DataFrame):
        return board
    strikes, cb, ca, pb, pa = board
    return pd.DataFrame({"call_bid": cb, "call_ask": ca, "put_bid": pb, "put_ask": pa},
                        index=pd.Index(strikes, name="strike"))


_Board = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]


def _pivot_arrays(
    frame: pd.DataFrame, root: str, expiry: pd.Timestamp, rows: npt.NDArray[np.int64] | None = None
) -> _Board | pd.DataFrame:
    """:func:`_pivot_term` as arrays (strikes, call_bid, call_ask, put_bid, put_ask), or the pandas board where
    the numpy pivot does not apply. ``rows``: the frame rows of (root, expiry) if already known."""
    if rows is None:
        rows = np.flatnonzero(((frame["root"] == root) & (frame["expiry"] == expiry)).to_numpy(dtype=bool))
    sel = rows
    strike = frame["strike"].to_numpy(dtype=float)[sel]
    kind = frame["type"].iloc[sel]
    is_call, is_put = (kind == "call").to_numpy(dtype=bool), (kind == "put").to_numpy(dtype=bool)
    if np.isnan(strike).any() or not (is_call | is_put).all():
        return _pivot_term_pandas(frame, root, expiry)
    # numpy pivot (a pandas pivot costs ~10x more): scatter in reverse so the first quote of a key wins
    uk, inv = np.unique(strike, return_inverse=True)
    inv = inv.ravel()
    quotes = {q: frame[q].to_numpy(dtype=float)[sel] for q in ("bid", "ask")}
    out: dict[str, FloatArray] = {}
    for side, mask in (("call", is_call), ("put", is_put)):
        rev = np.flatnonzero(mask)[::-1]
        for q in ("bid", "ask"):
            col = np.full(uk.size, np.nan)
            col[inv[rev]] = quotes[q][rev]
            out[f"{side}_{q}"] = col
    return uk, out["call_bid"], out["call_ask"], out["put_bid"], out["put_ask"]


def _pivot_term_pandas(frame: pd.DataFrame, root: str, expiry: pd.Timestamp) -> pd.DataFrame:
    rows = frame.loc[(frame["root"] == root) & (frame["expiry"] == expiry), ["strike", "type", "bid", "ask"]]
    rows = rows.drop_duplicates(["strike", "type"])
    wide = rows.pivot(index="strike", columns="type", values=["bid", "ask"]).sort_index()
    out = pd.DataFrame(index=wide.index)
    for side in ("call", "put"):
        for q in ("bid", "ask"):
            out[f"{side}_{q}"] = wide[(q, side)] if (q, side) in wide.columns else np.nan
    return out


def _resolve_rate(rate: RateSpec, board: pd.DataFrame, t: float) -> tuple[float, str]:
    if isinstance(rate, str):
        if rate != "parity":
            raise ParameterError(f"unknown rate {rate!r}", hint="pass a float, a callable of t, or 'parity'")
        strikes = board.index.to_numpy(dtype=float)
        cb, ca, pb, pa = (
            board[c].to_numpy(dtype=float) for c in ("call_bid", "call_ask", "put_bid", "put_ask")
        )
        return _resolve_rate_arrays(rate, (strikes, cb, ca, pb, pa), t)
    return _resolve_rate_arrays(rate, None, t)


def _resolve_rate_arrays(rate: RateSpec, board: _Board | None, t: float) -> tuple[float, str]:
    if isinstance(rate, str):
        if rate != "parity":
            raise ParameterError(f"unknown rate {rate!r}", hint="pass a float, a callable of t, or 'parity'")
        assert board is not None
        r = parity_rate(*board, t)
        if math.isfinite(r):
            return r, "put-call parity"
        return FALLBACK_RATE, "fallback constant"
    if callable(rate):
        return float(rate(t)), "callable"
    return float(rate), "constant"


def chain_term(
    frame: pd.DataFrame, row: pd.Series, rate: RateSpec = DEFAULT_RATE
) -> tuple[TermVariance, TermChoice]:
    """One term of a normalized chain with the VIX strip rules: pivot, rate, :func:`term_variance`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Normalized snapshot frame.
    row : mapping
        The expiry: ``root``, ``expiry`` (settlement timestamp), ``expiry_date``, ``settlement`` and ``minutes``
        (whole minutes to settlement, :func:`minutes_to_settlement`).
    rate : float, callable or ``"parity"``
        As in :func:`variance_index_from_chain`.

    Raises
    ------
    DataError
        The board gives no forward or no ``K0`` (see :func:`term_variance`).
    """
    return _chain_term(frame, row, rate)


def _chain_term(
    frame: pd.DataFrame, row: Any, rate: RateSpec, rows: npt.NDArray[np.int64] | None = None
) -> tuple[TermVariance, TermChoice]:
    """:func:`chain_term`; ``rows``: the frame rows of the expiry if already known."""
    got = _pivot_arrays(frame, row["root"], row["expiry"], rows)
    board: _Board
    if isinstance(got, pd.DataFrame):
        board = (got.index.to_numpy(dtype=float), got["call_bid"].to_numpy(dtype=float),
                 got["call_ask"].to_numpy(dtype=float), got["put_bid"].to_numpy(dtype=float),
                 got["put_ask"].to_numpy(dtype=float))
    else:
        board = got
    t = float(row["minutes"]) / N365
    r, source = _resolve_rate_arrays(rate, board, t)
    strikes, cb, ca, pb, pa = board
    term = term_variance(strikes, cb, ca, pb, pa, t, r)
    choice = TermChoice(
        root=str(row["root"]),
        expiry=pd.Timestamp(row["expiry"]),
        expiry_date=str(row["expiry_date"]),
        settlement=str(row["settlement"]),
        minutes=int(row["minutes"]),
        rate_source=source,
    )
    return term, choice


def variance_index_from_chain(
    frame: pd.DataFrame,
    valuation_time: pd.Timestamp,
    rate: RateSpec = DEFAULT_RATE,
    *,
    roots: Sequence[str] = ("SPX", "SPXW"),
    target_days: float = 30,
) -> VarianceIndexResult:
    """The 30-day variance index of a normalized chain, with the VIX's term selection.

    Eligible terms: expiries of ``roots`` on a Friday (AM-settled standard third-Friday or PM weekly; a Thursday
    when its Friday is an exchange holiday) with more than 23 and less than 37 days (in minutes) to settlement.
    The near term is the last eligible expiry at or before ``target_days``, the next term the first after it.
    When an AM standard and a PM weekly share a date (both in the window), the AM standard is used. A Thursday
    expiry that replaces a holiday Friday (Good Friday) is tested against the window at its nominal Friday, so
    the weekly cycle keeps two terms that bracket 30 days; its ``T`` is still the real one.

    Parameters
    ----------
    frame : pandas.DataFrame
        Normalized snapshot frame (:mod:`volsurf.market.snapshot` schema).
    valuation_time : pandas.Timestamp
        Timezone-aware valuation instant (``Snapshot.meta.valuation_time``).
    rate : float, callable or ``"parity"``
        Continuously compounded rate (decimal): a constant for both terms, a function of ``t`` (years; e.g. a
        Treasury curve the caller interpolated), or ``"parity"`` (default, :data:`DEFAULT_RATE`) to read each
        term's rate from its own quotes (:func:`parity_rate`; :data:`FALLBACK_RATE` when that fails).
    roots : sequence of str
        Option roots to consider (standard and weekly).
    target_days : float
        Constant maturity (30 for the VIX).

    Returns
    -------
    VarianceIndexResult
        ``available=False`` with a ``reason`` when no eligible pair brackets the target (never extrapolated).
    """
    val = pd.Timestamp(valuation_time)
    if val.tzinfo is None:
        raise ParameterError("valuation_time must be timezone-aware", hint="use Snapshot.meta.valuation_time")
    missing = {"root", "expiry", "expiry_date", "settlement", "strike", "type", "bid", "ask"} - set(
        frame.columns
    )
    if missing:
        raise ParameterError(
            f"frame lacks columns {sorted(missing)}", hint="pass a normalized Snapshot.frame"
        )
    nt = float(target_days) * MINUTES_PER_DAY
    # The eligible expiries as arrays (the frames of _eligible_expiries and _one_per_date cost more than the
    # selection itself); positions below index the eligible expiries in _eligible_expiries order.
    el = _Eligible(frame, roots)
    if el.exp.empty or not el.ok.any():
        return _unavailable(f"no Friday expiries of roots {'/'.join(roots)} in the chain", valuation_time=val)
    exp_ser = el.exp["expiry"].iloc[np.flatnonzero(el.ok)]
    root, expiry_date, settlement, am = el.col("root"), el.col("expiry_date"), el.col("settlement"), el.col("_am")
    minutes = minutes_to_settlement(val, exp_ser)
    window_minutes = minutes + el.shift * MINUTES_PER_DAY
    in_window = (window_minutes > MIN_DAYS * MINUTES_PER_DAY) & (window_minutes < MAX_DAYS * MINUTES_PER_DAY)
    win = _one_per_date_positions(np.flatnonzero(in_window & (minutes > 0)), root, expiry_date, settlement, am,
                                  exp_ser)
    candidates = tuple((root[i], expiry_date[i], int(minutes[i])) for i in win.tolist())
    win = win[np.argsort(minutes[win], kind="stable")]
    near_idx = win[minutes[win] <= nt]
    next_idx = win[minutes[win] > nt]
    if near_idx.size == 0 or next_idx.size == 0:
        side = "at or before" if near_idx.size == 0 else "after"
        days = minutes / MINUTES_PER_DAY
        pos = np.flatnonzero(days > 0)
        pos = pos[np.argsort(np.abs(days[pos] - target_days), kind="stable")[:3]]
        listed = ", ".join(f"{root[i]} {expiry_date[i]} ({days[i]:.2f} d)" for i in pos.tolist())
        return _unavailable(
            f"no eligible Friday expiry {side} {target_days:g} days inside the {MIN_DAYS}-{MAX_DAYS} day window "
            f"(Friday expiries nearest {target_days:g} days: {listed or 'none'}); the index is not extrapolated",
            valuation_time=val,
            candidates=candidates,
        )
    terms: list[TermVariance] = []
    choices: list[TermChoice] = []
    for i in (int(near_idx[-1]), int(next_idx[0])):
        row = {"root": root[i], "expiry": exp_ser.iloc[i], "expiry_date": expiry_date[i],
               "settlement": settlement[i], "minutes": minutes[i]}
        rows = None if pd.isna(row["expiry"]) else el.rows_of(i)
        try:
            term, choice = _chain_term(frame, row, rate, rows)
        except DataError as err:
            return _unavailable(
                f"{row['root']} {row['expiry_date']}: {err.message}",
                valuation_time=val,
                candidates=candidates,
            )
        terms.append(term)
        choices.append(choice)
    result = constant_maturity_index(terms[0], terms[1], choices[0].minutes, choices[1].minutes, target_days)
    return VarianceIndexResult(
        available=True,
        index=result.index,
        variance_30d=result.variance_30d,
        near=result.near,
        next=result.next,
        near_minutes=result.near_minutes,
        next_minutes=result.next_minutes,
        weight_near=result.weight_near,
        weight_next=result.weight_next,
        near_choice=choices[0],
        next_choice=choices[1],
        valuation_time=val,
        candidates=candidates,
    )
