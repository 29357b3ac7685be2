"""Quarter-end event study: does a daily series move differently into quarter-ends than into other month-ends?

For each daily series (an index level such as Cboe SKEW or VIX, a put/call ratio, a yield, SqueezeMetrics'
GEX...) the change over the ``N`` sessions up to each event day is compared between event sets:

- ``quarter_end``: the last NYSE session of March, June, September and December;
- ``other_month_end``: the last NYSE session of every other month (the comparison set);
- ``year_end``: the last session of December (a subset of the quarter-ends);
- ``quarterly_expiration``: the third Friday of March, June, September and December, or the session before
  it when the exchange is closed that Friday.

Sessions come from the XNYS calendar (:mod:`volsurf.market.calendar`, which starts in 1990; earlier values of
a series are left out). The N-session change is the one of :func:`volsurf.signals.calibration.session_changes`,
so the calibrated flags and this study measure the same move. See :func:`quarter_end_study` for the exact
statistics and ``docs/quarter_end.md`` for the results on the shared series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import DataError, ParameterError
from volsurf.signals.calibration import DEFAULT_LOOKBACK, session_values

__all__ = [
    "DEFAULT_HORIZON",
    "DEFAULT_LOOKBACK",
    "DEFAULT_RESAMPLES",
    "EVENT_SETS",
    "EventSet",
    "QuarterEndStudy",
    "SeriesInput",
    "benjamini_hochberg",
    "event_sessions",
    "quarter_end_studies",
    "quarter_end_study",
    "ratio_series",
]

#: Event sets, in report order.
EVENT_SETS = ("quarter_end", "other_month_end", "year_end", "quarterly_expiration")
#: Sessions after the event day drawn in the path.
DEFAULT_HORIZON = 10
#: Bootstrap resamples and permutations (the p-value's Monte Carlo standard error is 0.003 at p = 0.05).
DEFAULT_RESAMPLES = 5_000
#: Fewest events per compared set for a difference, interval and p-value.
MIN_EVENTS = 3

_QUARTER_MONTHS = (3, 6, 9, 12)
_TRANSFORMS = ("level", "log")


# ---------------------------------------------------------------------------------------------------------
# Event days
# ---------------------------------------------------------------------------------------------------------


def _calendar_span() -> tuple[np.datetime64, np.datetime64]:
    from volsurf.market.calendar import nyse

    s = nyse().sessions
    return np.datetime64(s[0].date(), "D"), np.datetime64(s[-1].date(), "D")


def event_sessions(kind: str, start: Any, end: Any) -> np.ndarray:
    """Event days of one set between ``start`` and ``end`` (inclusive), as a sorted ``datetime64[D]`` array.

    Parameters
    ----------
    kind : str
        One of :data:`EVENT_SETS`.
    start, end : date-like
        Clipped to the exchange calendar's range.
    """
    from volsurf.market.calendar import period_end_sessions, third_friday

    if kind not in EVENT_SETS:
        raise ParameterError(f"unknown event set {kind!r}", f"one of {', '.join(EVENT_SETS)}")
    lo, hi = _calendar_span()
    d0 = max(np.datetime64(pd.Timestamp(start).date(), "D"), lo)
    d1 = min(np.datetime64(pd.Timestamp(end).date(), "D"), hi)
    if d1 < d0:
        return np.array([], dtype="datetime64[D]")
    months = np.arange(d0.astype("datetime64[M]"), d1.astype("datetime64[M]") + 1)
    month_no = months.astype(np.int64) % 12 + 1
    if kind == "quarterly_expiration":
        qm = months[np.isin(month_no, _QUARTER_MONTHS)]
        ym = [(int(str(m)[:4]), int(str(m)[5:7])) for m in qm]
        days = np.array([third_friday(y, m, holiday_adjusted=True) for y, m in ym], dtype="datetime64[D]")
    else:
        if kind == "quarter_end":
            months = months[np.isin(month_no, _QUARTER_MONTHS)]
        elif kind == "other_month_end":
            months = months[~np.isin(month_no, _QUARTER_MONTHS)]
        else:  # year_end
            months = months[month_no == 12]
        firsts = np.maximum(months.astype("datetime64[D]"), lo)
        days = period_end_sessions(firsts, "month") if firsts.size else firsts
    days = np.asarray(days, dtype="datetime64[D]")
    return np.unique(days[(days >= d0) & (days <= d1)])


# ---------------------------------------------------------------------------------------------------------
# Resampling helpers (vectorized, seeded)
# ---------------------------------------------------------------------------------------------------------


def _bootstrap_weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``(n_boot, n)`` counts: how often each of ``n`` events is drawn in each resample (drawn with replacement)."""
    draws = rng.integers(0, n, size=(n_boot, n)) + (n * np.arange(n_boot))[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _weighted_means(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Means of ``values`` (events x columns, NaN = missing) under each row of ``weights``; NaN-aware."""
    mask = np.isfinite(values)
    if mask.all():
        return weights @ values / weights.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(mask, values, 0.0)) / (weights @ mask.astype(float))


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN p-values stay NaN and do not count in ``m``.

    Notes
    -----
    With the ``m`` finite p-values sorted, ``p_(1) <= ... <= p_(m)``: ``q_(i) = min_{k >= i} min(1, m p_(k) / k)``.
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


# ---------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSet:
    """One event set of one series.

    Attributes
    ----------
    name : str
        One of :data:`EVENT_SETS`.
    events : ndarray of datetime64[D]
        Event days kept (value present on the day and ``N`` sessions before it).
    deltas : ndarray
        ``value(T0) - value(T-N)`` per kept event.
    ci95 : (float, float)
        Bootstrap 95 % interval of the mean delta (percentile method).
    offsets : ndarray of int
        ``j = -N .. H`` (sessions relative to the event day).
    paths : ndarray
        ``(events, offsets)``: ``value(T+j) - value(T-N)``; NaN where the series has no value.
    path_mean, path_lo, path_hi : ndarray
        Mean over events at each offset and its bootstrap 95 % interval.
    """

    name: str
    events: np.ndarray
    deltas: np.ndarray
    ci95: tuple[float, float]
    offsets: np.ndarray
    paths: np.ndarray
    path_mean: np.ndarray
    path_lo: np.ndarray
    path_hi: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.deltas.size)

    @property
    def mean_change(self) -> float:
        return float(self.deltas.mean()) if self.deltas.size else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_change": self.mean_change,
            "n_events": self.n_events,
            "ci95": list(self.ci95),
            "first_event": str(self.events[0]) if self.events.size else None,
            "last_event": str(self.events[-1]) if self.events.size else None,
        }


@dataclass(frozen=True)
class QuarterEndStudy:
    """The quarter-end study of one series (see :func:`quarter_end_study` for the definitions)."""

    name: str
    column: str
    span: tuple[str, str]
    lookback: int
    horizon: int
    transform: str
    sets: dict[str, EventSet]
    difference: float
    difference_ci95: tuple[float, float]
    p_value: float
    n_bootstrap: int
    n_permutations: int
    seed: int
    q_value: float = math.nan
    notes: list[str] = field(default_factory=list)

    def path_records(self) -> list[dict[str, Any]]:
        """One row per (event set, offset): mean path and its interval, events counted at that offset."""
        rows = []
        for name, es in self.sets.items():
            counts = np.isfinite(es.paths).sum(axis=0) if es.paths.size else np.zeros(es.offsets.size, int)
            for k, j in enumerate(es.offsets):
                rows.append(
                    {
                        "series": self.name,
                        "event_set": name,
                        "offset": int(j),
                        "mean": float(es.path_mean[k]),
                        "ci_lo": float(es.path_lo[k]),
                        "ci_hi": float(es.path_hi[k]),
                        "n_events": int(counts[k]),
                    }
                )
        return rows

    def chart_data(self, sets: Sequence[str] = ("quarter_end", "other_month_end")) -> dict[str, Any]:
        """Keyword arguments of :func:`volsurf.plots.study_plots.plot_quarter_end_paths` for ``sets``."""
        first = self.sets[sets[0]]
        return {
            "offsets": first.offsets,
            "sets": {k: (self.sets[k].paths, self.sets[k].path_mean, self.sets[k].path_lo, self.sets[k].path_hi)
                     for k in sets},
            "series_name": self.name if self.transform == "level" else f"log {self.name}",
            "lookback": self.lookback,
        }

    def summary_record(self) -> dict[str, Any]:
        """One flat row for the table / CSV forms."""
        qe, om = self.sets["quarter_end"], self.sets["other_month_end"]
        ye, qx = self.sets["year_end"], self.sets["quarterly_expiration"]
        return {
            "series": self.name,
            "column": self.column,
            "first": self.span[0],
            "last": self.span[1],
            "n_qe": qe.n_events,
            "qe_mean": qe.mean_change,
            "n_other": om.n_events,
            "other_mean": om.mean_change,
            "difference": self.difference,
            "ci_lo": self.difference_ci95[0],
            "ci_hi": self.difference_ci95[1],
            "p_value": self.p_value,
            "q_value": self.q_value,
            "year_end_mean": ye.mean_change,
            "n_year_end": ye.n_events,
            "qexp_mean": qx.mean_change,
            "n_qexp": qx.n_events,
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "column": self.column,
            "span": list(self.span),
            "lookback": self.lookback,
            "horizon": self.horizon,
            "transform": self.transform,
        }
        for name in EVENT_SETS:
            out[name] = self.sets[name].to_dict()
        out.update(
            {
                "difference": self.difference,
                "difference_ci95": list(self.difference_ci95),
                "p_value": self.p_value,
                "q_value": self.q_value,
                "n_bootstrap": self.n_bootstrap,
                "n_permutations": self.n_permutations,
                "seed": self.seed,
                "notes": list(self.notes),
                "path": [{k: v for k, v in r.items() if k != "series"} for r in self.path_records()],
            }
        )
        return out


# ---------------------------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------------------------


def _percentile_ci(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2.5 and 97.5 percentiles down the rows of ``x`` (NaN entries ignored; NaN where a column has none)."""
    finite = np.isfinite(x)
    if finite.all():
        lo, hi = np.percentile(x, [2.5, 97.5], axis=0)
        return lo, hi
    lo = np.full(x.shape[1], np.nan)
    hi = np.full(x.shape[1], np.nan)
    for k in range(x.shape[1]):  # rare: only offsets where some resample has no event with a value
        col = x[finite[:, k], k]
        if col.size:
            lo[k], hi[k] = np.percentile(col, [2.5, 97.5])
    return lo, hi


def _event_set(
    name: str,
    days: np.ndarray,
    sessions: np.ndarray,
    values: np.ndarray,
    lookback: int,
    horizon: int,
    rng: np.random.Generator,
    n_boot: int,
) -> tuple[EventSet, np.ndarray]:
    """The event set's deltas, paths and bootstrap intervals, and the bootstrap means of its deltas."""
    offsets = np.arange(-lookback, horizon + 1)
    pos = np.searchsorted(sessions, days)
    idx = pos[:, None] + offsets[None, :]
    inside = (idx >= 0) & (idx < sessions.size)
    paths_raw = np.where(inside, values[np.clip(idx, 0, max(sessions.size - 1, 0))], np.nan)
    paths = paths_raw - paths_raw[:, :1]
    delta = paths[:, lookback]
    keep = np.isfinite(delta)
    paths, delta, days = paths[keep], delta[keep], days[keep]
    n = delta.size
    j_count = offsets.size
    if n == 0:
        nan_j = np.full(j_count, np.nan)
        es = EventSet(name, days, delta, (math.nan, math.nan), offsets, paths, nan_j, nan_j, nan_j)
        return es, np.full(n_boot, np.nan)
    w = _bootstrap_weights(rng, n, n_boot)
    boot = _weighted_means(w, np.column_stack([delta, paths]))
    lo, hi = _percentile_ci(boot)
    counts = np.isfinite(paths).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_path = np.where(np.isfinite(paths), paths, 0.0).sum(axis=0) / counts
    es = EventSet(
        name,
        days,
        delta,
        (float(lo[0]), float(hi[0])),
        offsets,
        paths,
        mean_path,
        np.asarray(lo[1:], dtype=float),
        np.asarray(hi[1:], dtype=float),
    )
    return es, boot[:, 0]


def quarter_end_study(
    series: pd.Series,
    *,
    name: str | None = None,
    column: str | None = None,
    lookback: int = DEFAULT_LOOKBACK,
    horizon: int = DEFAULT_HORIZON,
    transform: str = "level",
    n_bootstrap: int = DEFAULT_RESAMPLES,
    n_permutations: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> QuarterEndStudy:
    """Event study of one daily series around quarter-ends, other month-ends, year-ends and quarterly expiries.

    Parameters
    ----------
    series : Series
        Daily values on a DatetimeIndex (values on non-session days and before 1990 are left out).
    name, column : str, optional
        Labels for the output (default: the Series' name).
    lookback : int
        N: the change is measured from the N-th session before the event day (default 10).
    horizon : int
        Sessions after the event day in the path (default 10).
    transform : {"level", "log"}
        Study the value or its natural log (``log`` turns a price's change into a log return).
    n_bootstrap, n_permutations : int
        Resamples for the intervals and the permutation test.
    seed : int
        Seed of the ``numpy.random.Generator`` (each series starts from it, so a result does not depend on
        the other series in the run).

    Returns
    -------
    QuarterEndStudy
        ``q_value`` is NaN here; :func:`quarter_end_studies` fills it in across the series of a run.

    Notes
    -----
    Sessions ``s_0 < s_1 < ...`` are the XNYS sessions from the series' first to its last in-calendar date,
    ``x(s)`` the value on session ``s`` (missing when the series has none that day). For an event day
    ``T0 = s_i``:

    - headline change ``delta = x(s_i) - x(s_{i-N})``; an event with ``x`` missing at either end is dropped;
    - path ``p_j = x(s_{i+j}) - x(s_{i-N})`` for ``j = -N .. H`` (missing where ``x`` is; ``p_{-N} = 0``,
      ``p_0 = delta``);
    - per event set: ``mean_change`` = mean of the deltas, ``n_events`` = their number, ``ci95`` = 2.5 and
      97.5 percentiles of the mean over ``n_bootstrap`` resamples of the events with replacement; the path
      mean at each ``j`` averages the events with a value there and gets the same bootstrap interval;
    - ``difference = mean(delta | quarter_end) - mean(delta | other_month_end)``;
      ``difference_ci95``: 2.5 and 97.5 percentiles of ``mean*(quarter_end) - mean*(other_month_end)``
      over the ``n_bootstrap`` resamples (the two sets are resampled independently, the b-th resample of
      one paired with the b-th of the other); ``p_value``: two-sided permutation test of the difference,
      ``(1 + #{|d*| >= |d|}) / (1 + n_permutations)`` where ``d*`` is the difference after randomly
      relabelling the pooled quarter-end and other month-end deltas (each relabelling draws the quarter-end
      group as the events with the smallest of ``n`` iid uniform keys, a uniformly random subset).

    Draw order from ``numpy.random.default_rng(seed)``: the bootstrap resamples of the quarter-end, other
    month-end, year-end and quarterly-expiration events (each used for that set's intervals, the first two
    also for the difference), then the permutations.
    """
    n = int(lookback)
    h = int(horizon)
    if n < 1:
        raise ParameterError(f"lookback must be >= 1 session, got {lookback}")
    if h < 0:
        raise ParameterError(f"horizon must be >= 0 sessions, got {horizon}")
    if n_bootstrap < 100 or n_permutations < 100:
        raise ParameterError("use at least 100 bootstrap resamples and permutations")
    if transform not in _TRANSFORMS:
        raise ParameterError(f"transform {transform!r}", f"one of {', '.join(_TRANSFORMS)}")
    label = name or str(series.name or "series")
    notes: list[str] = []
    s = series.astype(float)
    if transform == "log":
        bad = int((s <= 0).sum())
        if bad:
            raise DataError(f"{label}: {bad} values <= 0, cannot take logs", "study the level instead")
        s = pd.Series(np.log(s.to_numpy()), index=s.index, name=s.name)
    v = session_values(s)
    if v.notna().sum() < 2 * n:
        raise DataError(
            f"{label}: {int(v.notna().sum())} values on NYSE sessions (1990 on), too few for a {n}-session change",
            "use a longer daily series",
        )
    first_in = s.dropna().index.min()
    if first_in < v.index[0]:
        notes.append(f"values before {v.index[0].date()} left out (the exchange calendar starts in 1990)")
    off = int((~s.dropna().index.isin(v.index)).sum()) - int((s.dropna().index < v.index[0]).sum())
    if off > 0:
        notes.append(f"{off} value{'s' if off > 1 else ''} dated on non-session days (NYSE closed) left out")
    sessions = v.index.to_numpy().astype("datetime64[D]")
    values = v.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    sets: dict[str, EventSet] = {}
    boot_means: dict[str, np.ndarray] = {}
    for kind in EVENT_SETS:  # one random stream: the draw order is fixed by EVENT_SETS
        days = event_sessions(kind, sessions[0], sessions[-1])
        sets[kind], boot_means[kind] = _event_set(kind, days, sessions, values, n, h, rng, n_bootstrap)
    qe, om = sets["quarter_end"].deltas, sets["other_month_end"].deltas
    difference = ci_lo = ci_hi = p = math.nan
    if qe.size >= MIN_EVENTS and om.size >= MIN_EVENTS:
        difference = float(qe.mean() - om.mean())
        # the two sets' resamples are independent draws: their paired differences resample the difference
        dstar = boot_means["quarter_end"] - boot_means["other_month_end"]
        ci_lo, ci_hi = (float(x) for x in np.percentile(dstar, [2.5, 97.5]))
        pooled = np.concatenate([qe, om])
        # a relabelling = a uniformly random quarter-end subset: the indices of the smallest iid uniform keys
        keys = rng.random((n_permutations, pooled.size))
        pick = np.argpartition(keys, qe.size - 1, axis=1)[:, : qe.size]
        s_q = pooled[pick].sum(axis=1)
        d_perm = s_q / qe.size - (pooled.sum() - s_q) / om.size
        tol = 1e-12 * max(1.0, float(np.abs(pooled).max()))
        p = float((1 + np.count_nonzero(np.abs(d_perm) >= abs(difference) - tol)) / (1 + n_permutations))
    else:
        notes.append(f"fewer than {MIN_EVENTS} events in a compared set: no difference, interval or p-value")
    return QuarterEndStudy(
        name=label,
        column=column or str(series.name or ""),
        span=(str(sessions[0]), str(sessions[-1])),
        lookback=n,
        horizon=h,
        transform=transform,
        sets=sets,
        difference=difference,
        difference_ci95=(ci_lo, ci_hi),
        p_value=p,
        n_bootstrap=int(n_bootstrap),
        n_permutations=int(n_permutations),
        seed=int(seed),
        notes=notes,
    )


@dataclass(frozen=True)
class SeriesInput:
    """A series to study with its labels: ``name`` (e.g. the file stem), ``column`` and the values."""

    name: str
    column: str
    values: pd.Series
    transform: str = "level"


def quarter_end_studies(
    inputs: Sequence[SeriesInput],
    *,
    lookback: int = DEFAULT_LOOKBACK,
    horizon: int = DEFAULT_HORIZON,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    n_permutations: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[QuarterEndStudy]:
    """:func:`quarter_end_study` for each input, with Benjamini-Hochberg q-values across the run.

    The q-values adjust the permutation p-values of every series in ``inputs`` (those with a p-value) by
    :func:`benjamini_hochberg`.
    """
    from dataclasses import replace

    if not inputs:
        raise ParameterError("no series to study")
    out = [
        quarter_end_study(
            x.values,
            name=x.name,
            column=x.column,
            lookback=lookback,
            horizon=horizon,
            transform=x.transform,
            n_bootstrap=n_bootstrap,
            n_permutations=n_permutations,
            seed=seed,
        )
        for x in inputs
    ]
    q = benjamini_hochberg([r.p_value for r in out])
    return [replace(r, q_value=float(qi)) for r, qi in zip(out, q, strict=True)]


def ratio_series(numerator: pd.Series, denominator: pd.Series, name: str | None = None) -> pd.Series:
    """``numerator / denominator`` on the dates both have (e.g. VIX9D / VIX3M, the short-end term structure).

    Raises
    ------
    DataError
        No common date, or a zero denominator.
    """
    a, b = numerator.dropna().align(denominator.dropna(), join="inner")
    if a.empty:
        raise DataError(
            f"{numerator.name} and {denominator.name} share no date", "give two daily series over the same years"
        )
    if (b == 0).any():
        raise DataError(f"{denominator.name} is 0 on {b.index[b == 0][0].date()}: the ratio is undefined")
    return (a / b).rename(name or f"{numerator.name}/{denominator.name}")
