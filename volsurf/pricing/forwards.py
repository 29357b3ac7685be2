"""Implied forwards and discount factors per expiry from put-call parity on the chain itself.

For European options ``C - P = D (F - K)``: across strikes, ``C - P`` is a straight line in ``K`` with slope
``-D`` and intercept ``D F``. volsurf fits that line robustly (Theil-Sen) on liquid call/put pairs near the
strike where ``|C - P|`` is smallest (as the Cboe VIX methodology anchors its forward there), so no dividend or
rate guess is needed.

The slope (the discount factor) is only identifiable when ``1 - D`` is large against quote noise, i.e. for
longer expiries with pairs over a wide strike range. Rules, per expiry:

1. ``parity_regression``: ``t >= 0.1`` years and at least 6 pairs spanning a strike range of at least 10% of
   spot, and the fitted ``D`` lies in ``[exp(-RATE_MAX t), exp(-RATE_MIN t)]`` (implied rate between
   ``RATE_MIN = -1%`` and ``RATE_MAX = 15%``): use the fitted ``F`` and ``D``.
2. ``parity_fixed_rate``: otherwise, with at least 1 pair: ``D = exp(-r t)`` with ``r`` the median rate of the
   expiries of rule 1 (or ``default_rate`` if none), and ``F`` the median of ``K + (C - P)/D`` over the pairs
   nearest the ``|C - P|`` minimum.
3. ``carry_fallback``: no usable pair: ``F = S exp((r - q) t)``, ``D = exp(-r t)`` with the given ``default_rate``
   and ``default_dividend_yield``.

Reported per expiry: forward, discount, implied rate ``r = -ln(D)/t`` and dividend yield
``q = r - ln(F/S*)/t`` (continuous, ACT/365) against the chain's implied spot ``S*`` (:func:`implied_spot`),
the method, and the parity residuals.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

DEFAULT_RATE = 0.04
RATE_MIN = -0.01  # plausible implied rates of a parity regression (rule 1); outside: rule 2
RATE_MAX = 0.15
"""Fallback continuously-compounded rate (decimal). Used only when the chain itself cannot give one; roughly
the US T-bill level of 2023-2026. Pass the rate explicitly for older snapshots (e.g. ~0.1-2% in 2022)."""
DEFAULT_DIVIDEND_YIELD = 0.013
"""Fallback dividend yield (decimal), about the S&P 500's; used only in the carry fallback."""

MIN_T_REGRESSION = 0.1
MIN_PAIRS_REGRESSION = 6
NEAR_PAIRS = 12


@dataclass(frozen=True)
class ForwardEstimate:
    """Forward and discount for one expiry (see module docstring for the method names)."""

    forward: float
    discount: float
    rate: float
    dividend_yield: float
    method: str
    n_pairs: int
    parity_residual_max: float  # max |(C - P) - D (F - K)| over the pairs used, premium points


def parity_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """Liquid call/put pairs at the same (expiry, root, strike): both sides with bid > 0, ask >= bid.

    Returns columns expiry, root, strike, c_mid, p_mid, spread (sum of both spreads).
    """
    ok = ((frame["bid"] > 0) & (frame["ask"] >= frame["bid"])).to_numpy()
    f = frame.loc[ok, ["expiry", "root", "strike", "type", "bid", "ask"]]
    bid, ask = f["bid"].to_numpy(), f["ask"].to_numpy()
    f = f.assign(mid=(bid + ask) / 2, spread=ask - bid)
    calls = f[f["type"].to_numpy() == "call"].drop(columns=["type", "bid", "ask"])
    puts = f[f["type"].to_numpy() == "put"].drop(columns=["type", "bid", "ask"])
    out = calls.merge(puts, on=["expiry", "root", "strike"], suffixes=("_c", "_p"))
    out = out.rename(columns={"mid_c": "c_mid", "mid_p": "p_mid"})
    out["spread"] = out["spread_c"].to_numpy() + out["spread_p"].to_numpy()
    return out[["expiry", "root", "strike", "c_mid", "p_mid", "spread"]]


def _pairs_by_key(frame: pd.DataFrame) -> dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`parity_pairs` split per (expiry, root): ``{(expiry, root): (strike, c_mid, p_mid, spread)}``.

    Same pairs in the same order as ``parity_pairs(frame).sort_values(["expiry", "root"], kind="stable")``,
    matched with integer keys and ``searchsorted`` (a pandas merge and groupby cost more than all the fits).
    Frames with missing keys or two puts at one (expiry, root, strike) take the pandas path.
    """
    bid, ask, calls, puts = _usable_calls_puts(frame)
    expiry = frame["expiry"]
    strike = frame["strike"].to_numpy(dtype=float)
    exp_codes, _ = pd.factorize(expiry, sort=True)
    root_codes, roots = pd.factorize(frame["root"], sort=True)
    strike_codes, strikes = pd.factorize(strike)
    used = np.concatenate((calls, puts))
    if not used.size:
        return {}
    if (exp_codes[used] < 0).any() or (root_codes[used] < 0).any() or (strike_codes[used] < 0).any():
        return _pairs_by_key_pandas(frame)
    group = exp_codes.astype(np.int64) * len(roots) + root_codes
    split = _split_pairs(bid, ask, strike, calls, puts, group, strike_codes, len(strikes))
    if split is None:
        return _pairs_by_key_pandas(frame)  # duplicate puts: a merge pairs every combination
    starts, ends, first_rows, k, c_mid, p_mid, spread = split
    exp_first = expiry.iloc[first_rows].tolist()
    root_first = frame["root"].iloc[first_rows].tolist()
    return {
        (e, r): (k[a:b], c_mid[a:b], p_mid[a:b], spread[a:b])
        for e, r, a, b in zip(exp_first, root_first, starts.tolist(), ends.tolist(), strict=True)
    }


def _usable_calls_puts(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """bid, ask and the rows of liquid calls and puts (bid > 0, ask >= bid)."""
    bid, ask = frame["bid"].to_numpy(dtype=float), frame["ask"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        ok = (bid > 0) & (ask >= bid)
    kind = frame["type"]
    calls = np.flatnonzero(ok & (kind == "call").to_numpy(dtype=bool))
    puts = np.flatnonzero(ok & (kind == "put").to_numpy(dtype=bool))
    return bid, ask, calls, puts


def _split_pairs(
    bid: np.ndarray, ask: np.ndarray, strike: np.ndarray, calls: np.ndarray, puts: np.ndarray, group: np.ndarray,
    strike_codes: np.ndarray, n_strikes: int,
) -> tuple[np.ndarray, ...] | None:
    """Call/put pairs matched on (group, strike code), stably sorted by group: segment starts and ends, the first
    call row of each segment, strike, c_mid, p_mid, spread; None with two puts at one (group, strike)."""
    combo = group * n_strikes + strike_codes
    put_combo = combo[puts]
    order = np.argsort(put_combo, kind="stable")
    sorted_puts = put_combo[order]
    if sorted_puts.size > 1 and (np.diff(sorted_puts) == 0).any():
        return None
    call_combo = combo[calls]
    pos = np.searchsorted(sorted_puts, call_combo)
    hit = pos < sorted_puts.size
    hit[hit] = sorted_puts[pos[hit]] == call_combo[hit]
    c_rows = calls[hit]
    p_rows = puts[order[pos[hit]]]
    # calls in frame order (the merge keeps the left order), then a stable sort by (expiry, root)
    by_group = np.argsort(group[c_rows], kind="stable")
    c_rows, p_rows = c_rows[by_group], p_rows[by_group]
    c_mid, p_mid = (bid[c_rows] + ask[c_rows]) / 2, (bid[p_rows] + ask[p_rows]) / 2
    spread = (ask[c_rows] - bid[c_rows]) + (ask[p_rows] - bid[p_rows])
    k = strike[c_rows]
    g = group[c_rows]
    if not g.size:  # no strike has both a call and a put quote
        none = np.zeros(0, dtype=np.int64)
        return none, none, none, k, c_mid, p_mid, spread
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], g.size]
    return starts, ends, c_rows[starts], k, c_mid, p_mid, spread


def _pairs_by_group(
    frame: pd.DataFrame, gid: np.ndarray, n_groups: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None] | None:
    """:func:`_pairs_by_key` indexed by a group id per row (every row has one; ids in (expiry, root) order):
    one entry per group, None where a group has no pair; None overall for the pandas path."""
    bid, ask, calls, puts = _usable_calls_puts(frame)
    strike = frame["strike"].to_numpy(dtype=float)
    strike_codes, strikes = pd.factorize(strike)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None] = [None] * n_groups
    used = np.concatenate((calls, puts))
    if not used.size:
        return out
    if (strike_codes[used] < 0).any():
        return None
    group = gid.astype(np.int64)
    split = _split_pairs(bid, ask, strike, calls, puts, group, strike_codes, len(strikes))
    if split is None:
        return None
    starts, ends, first_rows, k, c_mid, p_mid, spread = split
    for gg, a, b in zip(group[first_rows].tolist(), starts.tolist(), ends.tolist(), strict=True):
        out[gg] = (k[a:b], c_mid[a:b], p_mid[a:b], spread[a:b])
    return out


def _pairs_by_key_pandas(frame: pd.DataFrame) -> dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    pairs = parity_pairs(frame).sort_values(["expiry", "root"], kind="stable")
    out: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for key, g in pairs.groupby(["expiry", "root"], sort=False):
        out[tuple(key)] = (g["strike"].to_numpy(), g["c_mid"].to_numpy(), g["p_mid"].to_numpy(),
                           g["spread"].to_numpy())
    return out


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Theil-Sen line: the median of pairwise slopes, and the median intercept ``median(y - slope x)``.

    Robust to a minority of bad quotes (breakdown point ~29%); O(n^2) in the number of pairs (n < ~200 here).
    """
    # Cached for the usual sizes only: the cache of a 20x-enlarged chain (thousands of pairs per expiry) held
    # 0.8 GB of index arrays after the run.
    i, j = _pair_indices(x.size) if x.size <= _PAIR_CACHE_MAX_N else np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    slope = float(_median((y[j] - y[i])[keep] / dx[keep]))
    return slope, float(_median(y - slope * x))


_PAIR_CACHE_MAX_N = 256  # cached index pairs: at most ~45 MB whatever the chains


@lru_cache(maxsize=512)
def _pair_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    i.flags.writeable = False
    j.flags.writeable = False
    return i, j


def _median(a: np.ndarray) -> float:
    """``np.median`` of a 1-d float array, bit for bit, without its generic-path overhead (called ~200 times
    per chain). Empty or NaN-holding input goes to ``np.median`` itself."""
    n = a.size
    if n == 0 or np.isnan(a).any():
        return np.median(a)
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(a, (lo, hi))
    # np.median averages the two middle values as their sum / 2 (a mean of one value is the value)
    return (part[lo] + part[hi]) / 2 if lo != hi else part[lo]


def _near_pairs(strikes: np.ndarray, diff: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` pairs closest in strike to the pair with the smallest |C - P|."""
    k_star = strikes[np.argmin(np.abs(diff))]
    order = np.argsort(np.abs(strikes - k_star), kind="stable")
    return order[:n]


def estimate_forward(
    strikes: np.ndarray,
    c_mid: np.ndarray,
    p_mid: np.ndarray,
    t: float,
    spot: float,
    *,
    rate_hint: float | None = None,
    default_rate: float = DEFAULT_RATE,
    default_dividend_yield: float = DEFAULT_DIVIDEND_YIELD,
    spreads: np.ndarray | None = None,
) -> ForwardEstimate:
    """Forward and discount factor for one expiry from call/put mid prices at common strikes.

    Parameters
    ----------
    strikes, c_mid, p_mid : ndarray
        Strikes and mid prices of liquid pairs (premium points).
    t : float
        Time to expiry, years.
    spot : float
        Underlying price (only for the implied dividend yield and the fallback).
    rate_hint : float, optional
        Rate used when the slope cannot be identified (rule 2); ``default_rate`` if None.
    spreads : ndarray, optional
        Sum of the call and put bid-ask spreads per pair: the regression is accepted only if its median
        absolute residual is within the median spread.
    """
    strikes = np.asarray(strikes, dtype=float)
    diff = np.asarray(c_mid, dtype=float) - np.asarray(p_mid, dtype=float)
    t = max(float(t), 1e-8)
    est = _regression_estimate(strikes, diff, t, spot, spreads)
    if est is not None:
        return est
    return _fixed_rate_estimate(strikes, diff, t, spot, rate_hint, default_rate, default_dividend_yield)


def _pack(strikes: np.ndarray, diff: np.ndarray, t: float, spot: float, fwd: float, disc: float, method: str,
          idx: np.ndarray) -> ForwardEstimate:
    r = -np.log(disc) / t
    q = r - np.log(fwd / spot) / t
    resid = np.abs(diff[idx] - disc * (fwd - strikes[idx])) if idx.size else np.array([np.nan])
    worst = float(resid.max()) if idx.size else float("nan")
    return ForwardEstimate(float(fwd), float(disc), float(r), float(q), method, int(idx.size), worst)


def _regression_estimate(strikes: np.ndarray, diff: np.ndarray, t: float, spot: float,
                         spreads: np.ndarray | None) -> ForwardEstimate | None:
    """Rule 1 of :func:`estimate_forward` (``t`` already floored), or None when it does not apply: it does not
    depend on the rate hint, so the fixed-rate rule runs only where it is needed."""
    if strikes.size >= MIN_PAIRS_REGRESSION and t >= MIN_T_REGRESSION:
        # Regress on a wider set near the money: the slope needs a strike range.
        idx = _near_pairs(strikes, diff, max(NEAR_PAIRS, strikes.size // 3))
        if np.ptp(strikes[idx]) >= 0.10 * spot:
            slope, intercept = theil_sen(strikes[idx], diff[idx])
            disc = -slope
            resid = np.abs(diff[idx] - (intercept + slope * strikes[idx]))
            tolerance = _median(spreads[idx]) if spreads is not None else np.inf
            # Reject slopes that imply an implausible rate, or a line the quotes do not support (American
            # early-exercise premia, stale wings): then the rate comes from elsewhere (rule 2).
            if np.exp(-RATE_MAX * t) <= disc <= np.exp(-RATE_MIN * t) and _median(resid) <= tolerance:
                fwd = intercept / disc
                return _pack(strikes, diff, t, spot, fwd, disc, "parity_regression", idx)
    return None


def _fixed_rate_estimate(strikes: np.ndarray, diff: np.ndarray, t: float, spot: float, rate_hint: float | None,
                         default_rate: float, default_dividend_yield: float) -> ForwardEstimate:
    """Rules 2 and 3 of :func:`estimate_forward` (``t`` already floored)."""
    r_fix = default_rate if rate_hint is None or not np.isfinite(rate_hint) else float(rate_hint)
    if strikes.size == 0:
        fwd = spot * np.exp((r_fix - default_dividend_yield) * t)
        return _pack(strikes, diff, t, spot, fwd, np.exp(-r_fix * t), "carry_fallback", np.array([], dtype=int))
    disc = np.exp(-r_fix * t)
    idx = _near_pairs(strikes, diff, min(5, strikes.size))
    fwd = float(_median(strikes[idx] + diff[idx] / disc))
    return _pack(strikes, diff, t, spot, fwd, disc, "parity_fixed_rate", idx)


def implied_forwards(
    frame: pd.DataFrame,
    t_by_expiry: pd.Series,
    spot: float,
    *,
    default_rate: float = DEFAULT_RATE,
    default_dividend_yield: float = DEFAULT_DIVIDEND_YIELD,
) -> pd.DataFrame:
    """Per-expiry forwards for a normalized snapshot frame.

    Parameters
    ----------
    frame : DataFrame
        Normalized snapshot rows (schema in :mod:`volsurf.market.snapshot`).
    t_by_expiry : Series
        Years to expiry indexed by (expiry, root).
    spot : float
        Underlying price.

    Returns
    -------
    DataFrame
        One row per (expiry, root): expiry, root, t, forward, discount, rate, dividend_yield, method, n_pairs,
        parity_residual_max.
    """
    split = _pairs_by_key(frame)
    keys = list(t_by_expiry.index)
    t_values = dict(zip(keys, t_by_expiry.to_numpy(dtype=float), strict=True))
    if not keys:
        out = pd.DataFrame([])
        s_star = implied_spot(out, spot)  # raises KeyError, as before
        out["dividend_yield"] = out["rate"] - np.log(out["forward"] / s_star) / out["t"]
        return out
    t_list = [t_values[key] for key in keys]
    return _forwards_table(keys, t_list, [split.get(key) for key in keys], spot, default_rate,
                           default_dividend_yield)[0]


def _forwards_table(
    keys: list[tuple],
    t_list: list[float],
    pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None],
    spot: float,
    default_rate: float,
    default_dividend_yield: float,
) -> tuple[pd.DataFrame, float]:
    """:func:`implied_forwards` from the keys (non-empty), their times and their pairs (None: no pair), and the
    implied spot of the table."""
    empty = np.zeros(0)
    prepared = []
    for (k, c, p, sp), t in zip((x if x is not None else (empty, empty, empty, empty) for x in pairs), t_list,
                                strict=True):
        strikes = np.asarray(k, dtype=float)
        prepared.append((strikes, np.asarray(c, dtype=float) - np.asarray(p, dtype=float), max(float(t), 1e-8), sp))
    # rule 1 does not depend on the rate hint: the fixed-rate rules run once, with the final hint
    first = [_regression_estimate(k, d, tt, spot, sp) for k, d, tt, sp in prepared]
    reg_rates = [(t, e.rate) for t, e in zip(t_list, first, strict=True) if e is not None]
    ests: list[ForwardEstimate] = []
    for est, t, (k, d, tt, _) in zip(first, t_list, prepared, strict=True):
        if est is None:
            # Rate for this expiry from the chain's own term structure: the nearest regression expiry's rate.
            nearest = min(reg_rates, key=lambda tr: abs(tr[0] - t))[1] if reg_rates else None
            est = _fixed_rate_estimate(k, d, tt, spot, nearest, default_rate, default_dividend_yield)
        ests.append(est)
    # column-wise construction: the same frame as DataFrame(rows), without per-record dict handling
    t_arr = np.array(t_list, dtype=float)
    forward = np.array([e.forward for e in ests], dtype=float)
    rate = np.array([e.rate for e in ests], dtype=float)
    method = [e.method for e in ests]
    s_star = _implied_spot_arrays(np.array([m != "carry_fallback" for m in method], dtype=bool), t_arr, forward,
                                  rate, spot)
    # Dividend yield against the chain's own spot: a stale 'Last' (pre-market download, closing print before
    # the options' 16:15 close) would otherwise leak into q as a huge short-dated yield.
    out = pd.DataFrame({
        "expiry": [key[0] for key in keys],
        "root": [key[1] for key in keys],
        "t": t_arr,
        "forward": forward,
        "discount": np.array([e.discount for e in ests], dtype=float),
        "rate": rate,
        "dividend_yield": rate - np.log(forward / s_star) / t_arr,
        "method": method,
        "n_pairs": np.array([e.n_pairs for e in ests], dtype=np.int64),
        "parity_residual_max": np.array([e.parity_residual_max for e in ests], dtype=float),
    })
    return out, s_star


def implied_spot(forwards: pd.DataFrame, spot: float) -> float:
    """The spot implied by the chain: the shortest parity-based forward carried back at its own rate.

    Over a few days the carry is tiny, so this is the level the options were priced against; it differs from
    the file's 'Last' when that print is stale. Falls back to ``spot`` when no expiry has parity pairs.
    """
    usable = (forwards["method"] != "carry_fallback").to_numpy(dtype=bool)
    return _implied_spot_arrays(usable, forwards["t"].to_numpy(dtype=float),
                                forwards["forward"].to_numpy(dtype=float), forwards["rate"].to_numpy(dtype=float),
                                spot)


def _implied_spot_arrays(usable_mask: np.ndarray, t: np.ndarray, forward: np.ndarray, rate: np.ndarray,
                         spot: float) -> float:
    usable = np.flatnonzero(usable_mask)
    if usable.size == 0:
        return float(spot)
    # The row sort_values("t").iloc[0] picks (quicksort over the non-NaN times, NaN last), without a frame sort.
    tu = t[usable]
    nan = np.isnan(tu)
    order = np.concatenate((usable[~nan][np.argsort(tu[~nan], kind="quicksort")], usable[nan]))
    i = order[0]
    fwd, r = forward[i], rate[i]
    return float(fwd * np.exp(-r * t[i]))
