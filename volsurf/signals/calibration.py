"""Flag thresholds calibrated from history: percentiles of the N-session change of a metric.

The quarter-end flags ask whether a metric (25d risk reversal, 90/100 put skew, OTM put share, a put/call
ratio...) moved "a lot". With no history "a lot" is a documented constant (``FlagThresholds``); with a history
it is a percentile of the same N-session change over that history, and today's change is placed in that
distribution. The N-session change is defined once here and shared with the quarter-end event study
(:mod:`volsurf.history.study`), so the flag and the evidence measure the same thing.

N-session change
----------------
For a dated series ``x`` and a session ``T`` (an XNYS session from :mod:`volsurf.market.calendar`),
``change(T) = x(T) - x(T-N)`` where ``T-N`` is the N-th NYSE session before ``T``; it is missing when ``x`` has
no value on ``T`` or on ``T-N`` (a gap in the history is never bridged). For an undated sequence the change
is taken N positions apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import ParameterError

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_PERCENTILE",
    "MIN_HISTORY",
    "Calibration",
    "calibrate_records",
    "calibrated_threshold",
    "session_changes",
    "session_values",
]

#: Sessions between the two ends of a change (two trading weeks: the run-up to a quarter-end).
DEFAULT_LOOKBACK = 10
#: A change beyond the 90th percentile of past changes is "a lot": one session in ten passes it.
DEFAULT_PERCENTILE = 90.0
#: Finite history values needed before a calibrated threshold replaces the default (about three months of
#: daily snapshots; with N = 10 that leaves 50 past changes, so the 90th percentile rests on 5 values above it).
MIN_HISTORY = 60


def _check_lookback(lookback: int) -> int:
    if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < 1:
        raise ParameterError(f"lookback must be a whole number of sessions >= 1, got {lookback!r}")
    return int(lookback)


@lru_cache(maxsize=1)
def _session_index() -> pd.DatetimeIndex:
    """All XNYS sessions (tz-naive midnight timestamps)."""
    from volsurf.market.calendar import nyse

    sessions = pd.DatetimeIndex(nyse().sessions)
    return sessions.tz_localize(None) if sessions.tz is not None else sessions


def session_values(series: pd.Series) -> pd.Series:
    """``series`` placed on the XNYS sessions of its span (NaN where it has no value).

    Values dated on a non-session day are left out; so are dates outside the exchange calendar (which starts
    in 1990). The result's index is the sessions from the first to the last in-calendar date of the series.
    """
    s = series.dropna()
    if not isinstance(s.index, pd.DatetimeIndex):
        raise ParameterError("a dated series needs a DatetimeIndex")
    idx = s.index.tz_localize(None) if s.index.tz is not None else s.index
    s = pd.Series(s.to_numpy(dtype=float), index=idx.normalize())
    sessions = _session_index()
    s = s[(s.index >= sessions[0]) & (s.index <= sessions[-1])]
    if s.empty:
        return pd.Series([], index=pd.DatetimeIndex([]), dtype=float)
    span = sessions[(sessions >= s.index[0]) & (sessions <= s.index[-1])]
    return s[~s.index.duplicated(keep="last")].reindex(span)


def session_changes(series: pd.Series, lookback: int = DEFAULT_LOOKBACK) -> pd.Series:
    """``x(T) - x(T-N)`` for every XNYS session ``T`` in the series' span (``T-N``: N sessions earlier).

    Parameters
    ----------
    series : Series
        Values on a DatetimeIndex (any days; non-session days are ignored).
    lookback : int
        N, in sessions.

    Returns
    -------
    Series
        On the sessions of the span; NaN where either end has no value (and for the first N sessions).
    """
    n = _check_lookback(lookback)
    v = session_values(series)
    return v - v.shift(n)


@dataclass(frozen=True)
class Calibration:
    """A threshold for ``direction x change`` and where today's change sits.

    Attributes
    ----------
    threshold : float
        The flag triggers when ``direction * change >= threshold``. The calibrated percentile when
        ``calibrated``, else ``default`` (NaN when no default was given).
    calibrated : bool
        True when the threshold comes from the history.
    percentile : float
        The percentile (0-100) of past signed changes used as the threshold.
    change_today : float or None
        Today's raw change ``x(T) - x(T-N)`` (None when unknown).
    percentile_of_today : float or None
        Share of past signed changes below today's, ties counting half, in percent (0-100).
    n_observations : int
        Past changes in the distribution (today's excluded).
    lookback : int
        N, in sessions (or positions for an undated history).
    direction : int
        +1 when a rise is the flagged move (put skew, put share), -1 when a fall is (25d risk reversal).
    default : float or None
        The documented constant used without a history.
    reason : str or None
        Why the default is used, or why today's percentile is missing.
    history_start, history_end : str or None
        First and last dates (ISO) of the past changes, for a dated history.
    """

    threshold: float
    calibrated: bool
    percentile: float
    change_today: float | None
    percentile_of_today: float | None
    n_observations: int
    lookback: int
    direction: int
    default: float | None
    reason: str | None = None
    history_start: str | None = None
    history_end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def evidence(self) -> dict[str, Any]:
        """Flat entries for a flag's evidence: source and value of the threshold, today's percentile."""
        out: dict[str, Any] = {
            "threshold_source": "history" if self.calibrated else "default",
            "threshold_change": self.direction * self.threshold if math.isfinite(self.threshold) else None,
            "threshold_percentile": self.percentile if self.calibrated else None,
            "change_sessions": self.lookback,
            "change_today": self.change_today,
            "percentile_of_today": self.percentile_of_today,
            "n_observations": self.n_observations,
        }
        if self.history_start is not None:
            out["history"] = f"{self.history_start} .. {self.history_end}"
        if self.reason:
            out["threshold_note"] = self.reason
        return out


def _changes(history: pd.Series | Sequence[float] | np.ndarray, n: int) -> tuple[pd.Series, int]:
    """N-session (dated) or N-position (undated) changes, and the number of finite history values."""
    if isinstance(history, pd.Series) and isinstance(history.index, pd.DatetimeIndex):
        values = history.sort_index(kind="stable")
        return session_changes(values, n), int(np.isfinite(values.to_numpy(dtype=float)).sum())
    x = pd.Series(np.asarray(history, dtype=float).ravel())
    return x - x.shift(n), int(np.isfinite(x.to_numpy()).sum())


def calibrated_threshold(
    history: pd.Series | Sequence[float] | np.ndarray,
    lookback: int = DEFAULT_LOOKBACK,
    percentile: float = DEFAULT_PERCENTILE,
    *,
    direction: int = 1,
    today_change: float | None = None,
    default: float | None = None,
    min_history: int = MIN_HISTORY,
    floor: float | None = None,
) -> Calibration:
    """Threshold = the ``percentile`` of past signed N-session changes; today's change placed among them.

    Parameters
    ----------
    history : Series or array-like
        The metric's history. A Series on a DatetimeIndex is placed on NYSE sessions and changes are taken N
        sessions apart (gaps are not bridged); an array or a Series on another index is taken as consecutive
        observations (N positions apart). When ``today_change`` is None the last value is today's: its change
        is today's change and is left out of the distribution.
    lookback : int
        N (default 10).
    percentile : float
        In (0, 100) (default 90).
    direction : {+1, -1}
        Sign that makes the flagged move positive (-1 for the risk reversal, whose fall steepens the skew).
    today_change : float, optional
        Today's raw change, when today's value is not the last one of ``history``; every change in
        ``history`` is then a past observation.
    default : float, optional
        Threshold (positive, in signed units) to fall back on.
    min_history : int
        Finite history values needed to calibrate (default :data:`MIN_HISTORY` = 60).
    floor : float, optional
        Lower bound of a calibrated threshold (e.g. the quote noise of the metric).

    Returns
    -------
    Calibration

    Notes
    -----
    With ``d_i = direction * (x(T_i) - x(T_i - N))`` the past changes (finite only, ``n`` of them) and ``d``
    today's:

    - ``threshold = max(Q_p(d_1..d_n), floor)`` where ``Q_p`` is ``numpy.percentile`` with its default
      ("linear") interpolation;
    - ``percentile_of_today = 100 * (#{d_i < d} + 0.5 * #{d_i = d}) / n``.

    The default is used (``calibrated=False``, with the reason) when the history has fewer than
    ``min_history`` finite values, when no past change is finite, or when the calibrated threshold is not
    positive (a metric that only ever moved the other way). Today's percentile is still reported whenever
    past changes exist.
    """
    n = _check_lookback(lookback)
    if direction not in (1, -1):
        raise ParameterError(f"direction must be +1 or -1, got {direction!r}")
    p = float(percentile)
    if not 0.0 < p < 100.0:
        raise ParameterError(f"percentile must be in (0, 100), got {percentile!r}")
    if min_history < n + 2:
        raise ParameterError(f"min_history ({min_history}) must exceed the lookback ({n}) by at least 2")
    changes, n_values = _changes(history, n)
    today = None if today_change is None else float(today_change)
    if today is not None and not math.isfinite(today):
        today = None
        reason_unknown = True
    else:
        reason_unknown = False
    past = changes
    if today is None and not reason_unknown and len(changes):
        last = float(changes.iloc[-1])
        today = last if math.isfinite(last) else None
        past = changes.iloc[:-1]
    past = past[np.isfinite(past.to_numpy(dtype=float))]
    d = direction * past.to_numpy(dtype=float)
    start = end = None
    if isinstance(past.index, pd.DatetimeIndex) and len(past):
        start, end = past.index[0].date().isoformat(), past.index[-1].date().isoformat()
    pct_today = None
    reason = None
    if today is not None and math.isfinite(today) and d.size:
        s = direction * today
        pct_today = float(100.0 * ((d < s).sum() + 0.5 * (d == s).sum()) / d.size)
    elif today is None or not math.isfinite(today):
        reason = f"today's {n}-session change is unknown (no value {n} sessions ago)"
    fallback = math.nan if default is None else float(default)

    def _default(why: str) -> Calibration:
        note = why if reason is None else f"{why}; {reason}"
        if default is None:
            note += "; no default threshold given"
        else:
            note += f"; documented default {fallback:g} used"
        return Calibration(fallback, False, p, today, pct_today, int(d.size), n, direction, default, note, start, end)

    if n_values < min_history:
        return _default(f"history of {n_values} values, fewer than the {min_history} needed to calibrate")
    if d.size == 0:
        return _default(f"no past {n}-session change in the history (gaps everywhere)")
    q = float(np.percentile(d, p))
    threshold = q if floor is None else max(q, float(floor))
    if not threshold > 0:
        return _default(f"the calibrated threshold {q:g} is not positive (the metric rarely moves that way)")
    return Calibration(threshold, True, p, today, pct_today, int(d.size), n, direction, default, reason, start, end)


def calibrate_records(
    records: Iterable[Mapping[str, Any]],
    metrics: Mapping[str, tuple[int, float | None]],
    lookback: int = DEFAULT_LOOKBACK,
    percentile: float = DEFAULT_PERCENTILE,
    *,
    date_key: str = "trade_date",
    min_history: int = MIN_HISTORY,
    floors: Mapping[str, float] | None = None,
) -> dict[str, Calibration]:
    """:func:`calibrated_threshold` for several metrics of dated records (e.g. a store's ``metrics`` rows).

    Parameters
    ----------
    records : iterable of mappings
        One per snapshot, each with ``date_key`` (a date or ISO string) and the metric values; the record
        with the latest date is today's.
    metrics : mapping metric -> (direction, default)
        E.g. ``{"rr25_30d": (-1, 0.01), "otm_put_oi_share": (1, 0.01)}``.
    floors : mapping metric -> float, optional
        Lower bounds of the calibrated thresholds.

    Returns
    -------
    dict metric -> Calibration
    """
    rows = list(records)
    if not rows:
        dates = pd.DatetimeIndex([])
    else:
        try:
            dates = pd.DatetimeIndex(pd.to_datetime([str(r.get(date_key)) for r in rows]))
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"records need a {date_key!r} date on each row", str(exc)) from exc
    out: dict[str, Calibration] = {}
    for metric, (direction, default) in metrics.items():
        vals = []
        for r in rows:
            v = r.get(metric)
            try:
                vals.append(float(v) if v is not None else math.nan)
            except (TypeError, ValueError):
                vals.append(math.nan)
        s = pd.Series(vals, index=dates, dtype=float).sort_index(kind="stable")  # same-day rows keep their order
        s = s[~s.index.duplicated(keep="last")]
        if len(s) and not math.isfinite(s.iloc[-1]):
            # today's value missing: calibrate on the past, today's change unknown
            today = math.nan
        else:
            today = None
        out[metric] = calibrated_threshold(
            s,
            lookback,
            percentile,
            direction=direction,
            today_change=today,
            default=default,
            min_history=min_history,
            floor=(floors or {}).get(metric),
        )
    return out
