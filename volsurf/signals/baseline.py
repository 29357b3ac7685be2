"""Trailing baselines of a metric series: z-score and percentile of every value against the values before it.

No pandas here: ``volsurf track --store`` computes its series from the store's Arrow columns with these
functions, and the command starts faster without the pandas import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from volsurf.errors import ParameterError

#: Floor of a baseline's standard deviation (decimal vol or share: 0.25 vol point / 0.25 percentage point), so
#: that a flat history does not turn a tiny move into a huge z-score.
BASELINE_FLOOR = 0.0025

#: Metrics given a trailing-baseline z-score and percentile in the ``track`` series.
BASELINE_METRICS: tuple[str, ...] = (
    "rr25_30d",
    "put_skew_90_100_30d",
    "atm_iv_30d",
    "otm_put_oi_share",
    "otm_put_volume_share",
)


def rolling_baseline(
    values: Sequence[float] | np.ndarray, window: int = 20, min_history: int = 5, min_std: float = 0.0
) -> dict[str, np.ndarray]:
    """Trailing baseline of every element of a series (vectorized over the series).

    Returns a dict of arrays ``n``, ``mean``, ``std``, ``z``, ``percentile`` (same length as ``values``).
    """
    if window < 1 or min_history < 2 or min_history > window:
        raise ParameterError(
            f"need window >= min_history >= 2, got window={window}, min_history={min_history}",
            hint="e.g. window=20, min_history=5",
        )
    x = np.asarray(values, dtype=float)
    n = x.size
    padded = np.concatenate([np.full(window, np.nan), x])
    # Row i holds x[i-window .. i-1]: the values before x[i].
    win = np.lib.stride_tricks.sliding_window_view(padded[:-1], window) if n else np.zeros((0, window))
    ok = np.isfinite(win)
    cnt = ok.sum(axis=1)
    w0 = np.where(ok, win, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = w0.sum(axis=1) / cnt
        dev = np.where(ok, win - mean[:, None], 0.0)
        std = np.sqrt((dev**2).sum(axis=1) / (cnt - 1))
        enough = (cnt >= min_history) & np.isfinite(x)
        z = np.where(enough, (x - mean) / np.maximum(std, min_std), np.nan)
        below = (ok & (win < x[:, None])).sum(axis=1) + 0.5 * (ok & (win == x[:, None])).sum(axis=1)
        pct = np.where(enough, below / cnt, np.nan)
    mean = np.where(cnt > 0, mean, np.nan)
    std = np.where(cnt > 1, std, np.nan)
    return {"n": cnt, "mean": mean, "std": std, "z": z, "percentile": pct}


def baseline_columns(series: Mapping[str, np.ndarray], window: int, min_history: int) -> dict[str, np.ndarray]:
    """The ``<m>_z`` and ``<m>_pct`` columns of the ``track`` series for the :data:`BASELINE_METRICS` in
    ``series`` (arrays ordered by trade date), in column order, with the :data:`BASELINE_FLOOR`."""
    out: dict[str, np.ndarray] = {}
    for m in BASELINE_METRICS:
        if m not in series:
            continue
        b = rolling_baseline(np.asarray(series[m], dtype=float), window, min_history, BASELINE_FLOOR)
        out[f"{m}_z"] = b["z"]
        out[f"{m}_pct"] = b["percentile"]
    return out


__all__ = ["BASELINE_FLOOR", "BASELINE_METRICS", "baseline_columns", "rolling_baseline"]
