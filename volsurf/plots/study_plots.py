"""Event-study charts (drawing only: callers pass the numbers computed in :mod:`volsurf.history.study`).

Each function takes ``ax=None`` / ``axes=None`` (a new figure is made without pyplot, so it is safe in scripts
and tests), draws, labels the axes with units and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Colour of the per-event lines (light grey) and of the mean lines per event set.
EVENT_LINE_COLOR = "0.82"
SET_COLORS = {"quarter_end": "C3", "other_month_end": "C0", "year_end": "C1", "quarterly_expiration": "C2"}


def _axes(ax: Any, size: tuple[float, float] = (6.0, 4.5)) -> Any:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size).add_subplot()


def _robust_limits(blocks: Sequence[np.ndarray], clip: float) -> tuple[float, float] | None:
    """Y-limits holding the central ``clip`` share of every value in ``blocks`` (and all of the last ones)."""
    vals = np.concatenate([np.asarray(b, dtype=float).ravel() for b in blocks]) if blocks else np.array([])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return None
    lo, hi = np.quantile(vals, [(1 - clip) / 2, (1 + clip) / 2])
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.05 * (hi - lo)
    return float(lo - pad), float(hi + pad)


def plot_event_path(
    offsets: Sequence[int] | np.ndarray,
    paths: np.ndarray,
    mean: Sequence[float] | np.ndarray,
    lo: Sequence[float] | np.ndarray,
    hi: Sequence[float] | np.ndarray,
    *,
    label: str = "events",
    lookback: int | None = None,
    unit: str = "",
    color: str = "C0",
    ax: Any = None,
) -> Any:
    """Per-event change paths (light grey), their mean and its 95 % interval around an event day.

    Parameters
    ----------
    offsets : array of int
        Sessions relative to the event day (0 = the event day).
    paths : ndarray
        ``(events, offsets)``: change since the first offset (NaN where missing).
    mean, lo, hi : array
        Mean path and its interval, aligned with ``offsets``.
    label : str
        Event set, shown in the title with the number of events.
    lookback : int, optional
        N, for the y-axis label ("change since T-N").
    unit : str
        Unit of the values (e.g. "index points"), appended to the y label.
    """
    ax = _axes(ax)
    x = np.asarray(offsets, dtype=float)
    p = np.asarray(paths, dtype=float).reshape(-1, x.size)
    if p.size:
        from matplotlib.collections import LineCollection

        segs = [np.column_stack([x, row]) for row in p]
        ax.add_collection(LineCollection(segs, colors=EVENT_LINE_COLOR, linewidths=0.5, zorder=1,
                                         label="single events"))
    ax.fill_between(x, np.asarray(lo, float), np.asarray(hi, float), color=color, alpha=0.25, lw=0, zorder=2,
                    label="95% interval of the mean")
    ax.plot(x, np.asarray(mean, float), color=color, lw=2.0, zorder=3, label=f"mean ({p.shape[0]} events)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xlabel("sessions from the event day (0 = event day)")
    since = f"T-{lookback}" if lookback else "the first session"
    ax.set_ylabel(f"change since {since}" + (f" ({unit})" if unit else ""))
    ax.set_title(f"{label} (n={p.shape[0]})")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return ax


def plot_quarter_end_paths(
    offsets: Sequence[int] | np.ndarray,
    sets: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    *,
    series_name: str = "",
    lookback: int | None = None,
    unit: str = "",
    clip: float = 0.96,
    axes: Sequence[Any] | None = None,
) -> list[Any]:
    """Side-by-side event paths: one panel per event set (e.g. quarter-ends and other month-ends), shared y.

    Parameters
    ----------
    offsets : array of int
        Sessions relative to the event day.
    sets : mapping event set -> (paths, mean, lo, hi)
        In panel order; names of :data:`volsurf.history.study.EVENT_SETS` get their usual colour and label.
    series_name : str
        Shown in the figure title.
    clip : float
        Share of the per-event values kept inside the y-limits (a handful of crisis paths would otherwise
        flatten the means); the mean bands always fit.
    axes : sequence of Axes, optional
        One per set; a new figure otherwise.

    Returns
    -------
    list of Axes
    """
    names = list(sets)
    if axes is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.2 * max(len(names), 1), 4.4))
        axes = list(fig.subplots(1, max(len(names), 1), sharey=True, squeeze=False)[0])
    axes = list(axes)
    labels = {
        "quarter_end": "quarter-ends",
        "other_month_end": "other month-ends",
        "year_end": "year-ends",
        "quarterly_expiration": "quarterly expirations",
    }
    for i, (name, ax) in enumerate(zip(names, axes, strict=False)):
        paths, mean, lo, hi = sets[name]
        plot_event_path(
            offsets,
            paths,
            mean,
            lo,
            hi,
            label=labels.get(name, name),
            lookback=lookback,
            unit=unit,
            color=SET_COLORS.get(name, f"C{i}"),
            ax=ax,
        )
    lims = _robust_limits([np.asarray(sets[n][0]) for n in names], clip)
    bands = [np.asarray(sets[n][k], float) for n in names for k in (2, 3)]
    band_vals = np.concatenate([b[np.isfinite(b)] for b in bands]) if bands else np.array([])
    if lims is not None:
        lo_, hi_ = lims
        if band_vals.size:
            lo_, hi_ = min(lo_, float(band_vals.min())), max(hi_, float(band_vals.max()))
        for ax in axes:
            ax.set_ylim(lo_, hi_)
    if axes and series_name:
        axes[0].get_figure().suptitle(
            f"{series_name}: change since T-{lookback} around the event day" if lookback else series_name
        )
    return axes
