"""Skew charts (drawing only: callers pass the numbers).

Each function takes ``ax=None`` (a new figure is made without pyplot, so it is safe in scripts and tests),
draws, labels the axes with units, titles the chart with the trade date, and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _axes(ax: Any, size: tuple[float, float] = (8.0, 5.0)) -> Any:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size).add_subplot()


def plot_smiles(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    points: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    trade_date: str = "",
    underlying: str = "",
    ax: Any = None,
) -> Any:
    """Implied-vol smiles against log-moneyness.

    Parameters
    ----------
    curves : mapping label -> (k, iv)
        Smile lines: ``k = ln(K/F)`` and decimal vol (plotted in vol points).
    points : mapping label -> (k, iv), optional
        Market quotes (OTM mid IVs) drawn as dots in the colour of the curve with the same label.
    """
    ax = _axes(ax)
    for label, (k, iv) in curves.items():
        (line,) = ax.plot(np.asarray(k), 100 * np.asarray(iv), label=label, lw=1.6)
        if points and label in points:
            pk, piv = points[label]
            ax.scatter(np.asarray(pk), 100 * np.asarray(piv), s=8, color=line.get_color(), alpha=0.5)
    ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("log-moneyness ln(K/F)")
    ax.set_ylabel("implied volatility (vol points, %)")
    ax.set_title(f"{underlying} implied-vol smiles, {trade_date}".strip())
    if curves:
        ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return ax


def plot_skew_term(
    days: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    trade_date: str = "",
    underlying: str = "",
    logx: bool = True,
    ax: Any = None,
) -> Any:
    """Skew figures against maturity (days), in vol points.

    ``series`` maps a label (e.g. ``"25d risk reversal"``) to decimal-vol values aligned with ``days``;
    ``logx`` puts maturity on a log scale (the short end is where skew changes fastest).
    """
    ax = _axes(ax)
    d = np.asarray(days, dtype=float)
    if logx and d.size and np.nanmin(d) > 0:
        ax.set_xscale("log")
    for label, v in series.items():
        ax.plot(d, 100 * np.asarray(v, dtype=float), marker="o", ms=3, label=label)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("maturity (calendar days)")
    ax.set_ylabel("vol points (%)")
    ax.set_title(f"{underlying} skew by maturity, {trade_date}".strip())
    if series:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_metric_over_time(
    dates: Sequence[Any],
    values: Sequence[float],
    *,
    label: str,
    unit: str,
    scale: float = 1.0,
    quarter_ends: Sequence[Any] = (),
    title: str = "",
    ax: Any = None,
) -> Any:
    """One tracked metric against trade date, with quarter-ends as vertical lines.

    ``values`` are multiplied by ``scale`` (100 turns decimal vol into vol points or shares into percent).
    """
    import pandas as pd

    ax = _axes(ax, (9.0, 3.0))
    x = pd.to_datetime(pd.Series(list(dates)))
    y = np.asarray(values, dtype=float) * scale
    ax.plot(x, y, marker="o", ms=3, lw=1.2, label=label)
    for i, q in enumerate(quarter_ends):
        ax.axvline(pd.Timestamp(q), color="tab:red", lw=0.9, ls="--", label="quarter-end" if i == 0 else None)
    ax.set_xlabel("trade date")
    ax.set_ylabel(f"{label} ({unit})")
    first = x.min().date().isoformat() if len(x) else ""
    last = x.max().date().isoformat() if len(x) else ""
    ax.set_title(title or f"{label}, {first} to {last}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    for t in ax.get_xticklabels():
        t.set_rotation(30)
        t.set_ha("right")
    return ax
