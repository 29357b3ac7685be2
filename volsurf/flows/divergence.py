"""Broad-index vs tech-index divergence (SPX/SPY/ES against NDX/QQQ) and its quarter-end flag (issue 19, item 5).

Statistic
---------
On the sessions both series have (inner join of the dates), with ``W`` = ``window`` sessions (default 20):

* rolling returns ``R_b(t) = B_t / B_{t-W} - 1`` (broad) and ``R_n(t) = N_t / N_{t-W} - 1`` (narrow);
* **spread** ``D(t) = R_b(t) - R_n(t)`` (decimal; positive = the broad index did better);
* **z-score against the trailing year** ``z(t) = (D(t) - mean) / std`` over the ``baseline`` (default 252)
  previous spreads ``D(t-baseline) .. D(t-1)`` (the current value excluded, sample std ``ddof=1``; NaN until a
  full year of spreads exists);
* **extreme** when ``|z| >= z_threshold`` (default 2);
* **flag** when extreme *and* the date is inside the quarter-end window of :mod:`volsurf.market.calendar`
  (the last ``WINDOW_DAYS`` = 5 sessions of the calendar quarter: ``trading_days_to_period_end < 5``).

Consecutive spreads share ``W - 1`` daily returns, so extreme days cluster: frequencies are reported both per
day and per quarter-end window (does the window hold at least one extreme day?).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import DataError, ParameterError

__all__ = [
    "DEFAULT_BASELINE",
    "DEFAULT_WINDOW",
    "DEFAULT_Z_THRESHOLD",
    "DivergenceResult",
    "divergence_frequency",
    "index_divergence",
]

#: Sessions in the rolling return (about one month).
DEFAULT_WINDOW = 20

#: Sessions of trailing spreads in the z-score baseline (one year).
DEFAULT_BASELINE = 252

#: |z| at or above this is extreme.
DEFAULT_Z_THRESHOLD = 2.0


@dataclass(frozen=True)
class DivergenceResult:
    """Daily divergence table and its settings.

    ``frame`` columns: ``date``, ``broad``, ``narrow``, ``broad_return``, ``narrow_return``, ``spread``,
    ``z``, ``trading_days_to_quarter_end``, ``in_quarter_end_window``, ``quarter_end`` (the quarter's last
    session), ``extreme``, ``flag``.
    """

    frame: pd.DataFrame
    window: int
    baseline: int
    z_threshold: float
    window_days: int

    @property
    def scored(self) -> pd.DataFrame:
        """Rows with a z-score."""
        return self.frame[self.frame["z"].notna()]

    @property
    def last(self) -> dict[str, Any]:
        """The last scored row as a plain dict (dates ISO)."""
        s = self.scored
        if s.empty:
            return {}
        row = s.iloc[-1].to_dict()
        return {str(k): (v.date().isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()}

    def flag_days(self) -> pd.DataFrame:
        """The flagged rows (extreme inside the quarter-end window)."""
        return self.frame[self.frame["flag"]]


def index_divergence(
    broad: pd.Series,
    narrow: pd.Series,
    window: int = DEFAULT_WINDOW,
    baseline: int = DEFAULT_BASELINE,
    z_threshold: float = DEFAULT_Z_THRESHOLD,
) -> DivergenceResult:
    """Rolling return spread of a broad index against a narrower one, its z-score and the quarter-end flag.

    Parameters
    ----------
    broad, narrow : pd.Series
        Daily closes on DatetimeIndexes (e.g. SPY and NDX); only common dates are used.
    window : int
        Sessions in each rolling return.
    baseline : int
        Trailing spreads in the z-score's mean and standard deviation.
    z_threshold : float
        ``|z|`` at or above this is extreme.

    Returns
    -------
    DivergenceResult

    Notes
    -----
    ``D(t) = B_t/B_{t-W} - N_t/N_{t-W}``; ``z(t) = (D(t) - mean(D[t-baseline:t])) / std(D[t-baseline:t])``;
    flag = ``|z| >= z_threshold`` and ``trading_days_to_period_end(t, 'quarter') < WINDOW_DAYS``.
    """
    from volsurf.market.calendar import WINDOW_DAYS, period_end_sessions, trading_days_to_period_end

    if int(window) < 1:
        raise ParameterError(f"window must be >= 1 session, got {window}")
    if int(baseline) < 20:
        raise ParameterError(f"baseline must be >= 20 sessions, got {baseline}", "default 252 (one year)")
    if not (math.isfinite(z_threshold) and z_threshold > 0):
        raise ParameterError(f"z threshold must be > 0, got {z_threshold}")
    both = pd.concat(
        {"broad": broad.astype(float), "narrow": narrow.astype(float)}, axis=1, join="inner"
    ).dropna()
    need = window + baseline + 1
    if len(both) < need:
        raise DataError(
            f"the two series share {len(both)} dates; the z-score needs at least {need}",
            "use longer, overlapping histories (or a shorter --window/--baseline)",
        )
    rb = both["broad"] / both["broad"].shift(window) - 1.0
    rn = both["narrow"] / both["narrow"].shift(window) - 1.0
    spread = rb - rn
    prev = spread.shift(1).rolling(baseline, min_periods=baseline)
    std = prev.std(ddof=1)
    z = (spread - prev.mean()) / std.where(std > 0)
    days = both.index.to_numpy().astype("datetime64[D]")
    td_q = trading_days_to_period_end(days, "quarter")
    q_end = pd.DatetimeIndex(period_end_sessions(days, "quarter"))
    in_win = td_q < WINDOW_DAYS
    extreme = (z.abs() >= z_threshold).to_numpy() & z.notna().to_numpy()
    frame = pd.DataFrame(
        {
            "date": both.index,
            "broad": both["broad"].to_numpy(),
            "narrow": both["narrow"].to_numpy(),
            "broad_return": rb.to_numpy(),
            "narrow_return": rn.to_numpy(),
            "spread": spread.to_numpy(),
            "z": z.to_numpy(),
            "trading_days_to_quarter_end": td_q,
            "in_quarter_end_window": in_win,
            "quarter_end": q_end,
            "extreme": extreme,
            "flag": extreme & in_win,
        }
    ).reset_index(drop=True)
    return DivergenceResult(frame, int(window), int(baseline), float(z_threshold), int(WINDOW_DAYS))


def divergence_frequency(result: DivergenceResult) -> dict[str, Any]:
    """How often the spread is extreme inside vs outside the quarter-end window.

    Returns
    -------
    dict
        ``days_in_window``, ``extreme_in_window`` (= flag days), ``rate_in_window``; the same ``*_outside``;
        ``rate_ratio`` (inside / outside); ``fisher_p_greater`` (one-sided Fisher exact test that the inside
        rate is higher; days are not independent, so read it as descriptive); ``windows`` (quarter-end windows
        with a z-score on every day), ``windows_with_flag`` and their share; ``extreme_episodes`` (runs of
        consecutive extreme days) and how many of them touch a quarter-end window.
    """
    from scipy.stats import fisher_exact

    s = result.scored
    inside = s["in_quarter_end_window"].to_numpy()
    ext = s["extreme"].to_numpy()
    n_in, n_out = int(inside.sum()), int((~inside).sum())
    e_in, e_out = int((ext & inside).sum()), int((ext & ~inside).sum())
    rate_in = e_in / n_in if n_in else math.nan
    rate_out = e_out / n_out if n_out else math.nan
    p = math.nan
    if n_in and n_out:
        p = float(fisher_exact([[e_in, n_in - e_in], [e_out, n_out - e_out]], alternative="greater")[1])
    win = s[inside].groupby("quarter_end").agg(days=("flag", "size"), flagged=("flag", "any"))
    full = win[win["days"] >= result.window_days]
    # episodes: runs of consecutive extreme scored days
    starts = ext & ~np.concatenate([[False], ext[:-1]])
    run_id = np.cumsum(starts)
    episodes = pd.DataFrame({"run": run_id[ext], "inside": inside[ext]}).groupby("run")["inside"].any()
    return {
        "first_scored": s["date"].iloc[0].date().isoformat() if len(s) else None,
        "last_scored": s["date"].iloc[-1].date().isoformat() if len(s) else None,
        "z_threshold": result.z_threshold,
        "window": result.window,
        "baseline": result.baseline,
        "days_in_window": n_in,
        "extreme_in_window": e_in,
        "rate_in_window": rate_in,
        "days_outside": n_out,
        "extreme_outside": e_out,
        "rate_outside": rate_out,
        "rate_ratio": rate_in / rate_out if rate_out else math.nan,
        "fisher_p_greater": p,
        "windows": len(full),
        "windows_with_flag": int(full["flagged"].sum()),
        "share_windows_with_flag": float(full["flagged"].mean()) if len(full) else math.nan,
        "extreme_episodes": len(episodes),
        "episodes_touching_window": int(episodes.sum()),
    }
