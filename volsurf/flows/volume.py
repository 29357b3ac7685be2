"""Month-end / quarter-end volume spikes in a daily volume series.

Statistic (see docs/rebalance.md): a day's volume divided by the median volume of the ``window`` sessions
before it (default 20, about one trading month; the day itself is excluded so a spike does not raise its
own baseline). A day is a spike when that ratio is at least ``threshold`` (default 1.5, i.e. 50 % above a
normal day). A robust z-score of log volume (median / MAD over the same trailing window) is reported too.

Clustering: the flag rate among the last ``last_n`` trading days of each month (and quarter, and year) is
compared with the rate on all other days: rate ratio and a one-sided Fisher exact test. Period ends come from
the XNYS exchange calendar (:mod:`volsurf.market.calendar`), not from the series' own dates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from volsurf.errors import DataError, ParameterError
from volsurf.io.series import read_dated_series

#: Trailing sessions in the baseline: about one trading month, long enough for a stable median, short enough
#: to follow the slow drift of market volume (S&P 500 share volume roughly tripled from 1999 to 2008).
DEFAULT_WINDOW = 20
#: Volume at least 1.5x the trailing median. On the S&P 500 1999-2018 series 1.8 % of days pass it (see
#: docs/rebalance.md): log(1.5) = 0.41 is about 2.9 robust standard deviations (1.4826 x MAD = 0.14) of the
#: daily log volume ratio, so a flag is rare under normal conditions, yet frequent enough (about 90 days in
#: twenty years) for a period-end excess to be measurable.
DEFAULT_THRESHOLD = 1.5
#: Month-end rebalancing is usually concentrated in the final two or three sessions.
DEFAULT_LAST_N = 3

_MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this = its standard deviation


def load_volume_series(path: str | Path) -> pd.Series:
    """Daily volume from a CSV (column ``Volume`` or the only numeric column)."""
    return read_dated_series(path, ("Volume", "volume", "vol"), what="volume")


# ---------------------------------------------------------------------------------------------------------
# Spike detection
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeSpikes:
    """Per-day volume statistics.

    ``frame`` columns: ``date``, ``volume``, ``baseline`` (trailing median), ``ratio`` (volume / baseline),
    ``robust_z`` (log volume vs trailing median, in robust standard deviations), ``spike`` (bool),
    ``month_end_rank`` / ``quarter_end_rank`` / ``year_end_rank`` (sessions to the period's last session,
    0 on it) and ``quarterly_expiry`` (bool: the holiday-adjusted third Friday of Mar/Jun/Sep/Dec).
    """

    frame: pd.DataFrame
    window: int
    threshold: float

    @property
    def n_scored(self) -> int:
        """Days with a baseline (the first ``window`` days have none)."""
        return int(self.frame["ratio"].notna().sum())

    @property
    def n_spikes(self) -> int:
        return int(self.frame["spike"].sum())


def _trailing_stats(logv: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD of the ``window`` values *before* each position (NaN where not enough history)."""
    n = logv.size
    med = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    if n > window:
        win = np.lib.stride_tricks.sliding_window_view(logv[:-1], window)  # rows end at t-1 for t=window..n-1
        m = np.median(win, axis=1)
        med[window:] = m
        mad[window:] = np.median(np.abs(win - m[:, None]), axis=1)
    return med, mad


def detect_volume_spikes(
    volume: pd.Series, window: int = DEFAULT_WINDOW, threshold: float = DEFAULT_THRESHOLD
) -> VolumeSpikes:
    """Flag sessions whose volume is far above the median of the ``window`` sessions before them.

    Parameters
    ----------
    volume : Series
        Daily volume (shares or dollars) on a DatetimeIndex of sessions.
    window : int
        Trailing sessions in the baseline (the day itself excluded).
    threshold : float
        Spike when ``volume / baseline >= threshold``.
    """
    from volsurf.market.calendar import _to_days, trading_days_to_period_end

    if window < 3:
        raise ParameterError(f"window must be >= 3 sessions, got {window}")
    if not threshold > 1.0:
        raise ParameterError(f"threshold must be > 1 (a multiple of the baseline), got {threshold}")
    v = volume.sort_index().astype(float)
    if v.size <= window:
        raise DataError(f"{v.size} days of volume, need more than the {window}-day baseline window")
    vol = v.to_numpy()
    if (vol <= 0).any() or not np.isfinite(vol).all():
        raise DataError(
            f"{int(((vol <= 0) | ~np.isfinite(vol)).sum())} days with zero, negative or missing volume",
            "drop them from the file (they are usually holidays or data gaps)",
        )
    logv = np.log(vol)
    med, mad = _trailing_stats(logv, window)
    baseline = np.exp(med)
    ratio = vol / baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        # A flat window (MAD 0) gives an infinite z; the ratio flag does not depend on it.
        z = (logv - med) / (_MAD_TO_SIGMA * mad)
    days = _to_days(v.index)
    third_fridays = _quarterly_expiries(days)
    frame = pd.DataFrame(
        {
            "date": [d.date() for d in v.index],
            "volume": vol,
            "baseline": baseline,
            "ratio": ratio,
            "robust_z": z,
            "spike": np.nan_to_num(ratio, nan=0.0) >= threshold,
            "month_end_rank": trading_days_to_period_end(days, "month"),
            "quarter_end_rank": trading_days_to_period_end(days, "quarter"),
            "year_end_rank": trading_days_to_period_end(days, "year"),
            "quarterly_expiry": np.isin(days, third_fridays),
        }
    )
    return VolumeSpikes(frame=frame, window=window, threshold=threshold)


def _quarterly_expiries(days: np.ndarray) -> np.ndarray:
    """Holiday-adjusted third Fridays of Mar/Jun/Sep/Dec spanning ``days`` (the "quad witching" sessions)."""
    from volsurf.market.calendar import third_friday

    if days.size == 0:
        return days
    y0, y1 = pd.Timestamp(days.min()).year, pd.Timestamp(days.max()).year
    out = [third_friday(y, m, holiday_adjusted=True) for y in range(y0, y1 + 1) for m in (3, 6, 9, 12)]
    return np.array(out, dtype="datetime64[D]")


# ---------------------------------------------------------------------------------------------------------
# Clustering at period ends
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRow:
    """Flag rate inside a set of days vs all other scored days.

    ``rate_ratio`` = rate_in / rate_out; ``p_value`` is the one-sided Fisher exact test that the in-window
    rate is higher; ``median_ratio_*`` are the median volume/baseline ratios in and out of the window and
    ``mw_p_value`` the one-sided Mann-Whitney test that in-window ratios are larger (uses every day, not only
    the rare flags, so it sees a broad, moderate lift that the flag count misses).
    """

    window: str
    n_in: int
    spikes_in: int
    rate_in: float
    n_out: int
    spikes_out: int
    rate_out: float
    rate_ratio: float
    p_value: float
    median_ratio_in: float
    median_ratio_out: float
    mw_p_value: float

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _compare(name: str, inside: np.ndarray, spike: np.ndarray, ratio: np.ndarray) -> ClusterRow:
    from scipy.stats import fisher_exact, mannwhitneyu

    outside = ~inside
    a, n_in = int(spike[inside].sum()), int(inside.sum())
    c, n_out = int(spike[outside].sum()), int(outside.sum())
    rate_in = a / n_in if n_in else math.nan
    rate_out = c / n_out if n_out else math.nan
    if n_in and n_out:
        p = float(fisher_exact([[a, n_in - a], [c, n_out - c]], alternative="greater").pvalue)
    else:
        p = math.nan
    rr = rate_in / rate_out if rate_out and rate_out > 0 else math.nan
    if n_in and n_out:
        mw = float(mannwhitneyu(ratio[inside], ratio[outside], alternative="greater").pvalue)
    else:
        mw = math.nan
    return ClusterRow(
        window=name,
        n_in=n_in,
        spikes_in=a,
        rate_in=rate_in,
        n_out=n_out,
        spikes_out=c,
        rate_out=rate_out,
        rate_ratio=rr,
        p_value=p,
        median_ratio_in=float(np.median(ratio[inside])) if n_in else math.nan,
        median_ratio_out=float(np.median(ratio[outside])) if n_out else math.nan,
        mw_p_value=mw,
    )


def spike_clustering(spikes: VolumeSpikes, last_n: int = DEFAULT_LAST_N) -> list[ClusterRow]:
    """Do spikes cluster in the last ``last_n`` sessions of months, quarters and years?

    Rows: month-end, quarter-end, year-end windows vs all other days; month-end and quarter-end again with
    quarterly-expiry ("quad witching") sessions removed from both sides, since index expiries and index
    rebalances on those Fridays are the best-known volume spikes and are not period-end flows; and the
    quarterly-expiry sessions themselves as a positive control. Only days with a baseline are counted.
    """
    if last_n < 1:
        raise ParameterError(f"last_n must be >= 1, got {last_n}")
    f = spikes.frame[spikes.frame["ratio"].notna()]
    spike = f["spike"].to_numpy()
    ratio = f["ratio"].to_numpy()
    m_in = f["month_end_rank"].to_numpy() < last_n
    q_in = f["quarter_end_rank"].to_numpy() < last_n
    y_in = f["year_end_rank"].to_numpy() < last_n
    qx = f["quarterly_expiry"].to_numpy()
    keep = ~qx
    return [
        _compare(f"last {last_n} of month", m_in, spike, ratio),
        _compare(f"last {last_n} of quarter", q_in, spike, ratio),
        _compare(f"last {last_n} of year", y_in, spike, ratio),
        _compare(f"last {last_n} of month, ex quad witching", m_in[keep], spike[keep], ratio[keep]),
        _compare(f"last {last_n} of quarter, ex quad witching", q_in[keep], spike[keep], ratio[keep]),
        _compare("quad witching (control)", qx, spike, ratio),
    ]
