"""Trend-follower (CTA) and index-divergence charts (drawing only: callers pass the numbers).

Each function takes ``ax=None`` (a new figure is made without pyplot), draws, labels the axes with units,
titles the chart with the date, and returns the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def _axes(ax: Any, size: tuple[float, float] = (8.0, 5.0)) -> Any:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size).add_subplot()


def plot_cta_scenarios(
    names: Sequence[str],
    flows_usd: npt.ArrayLike,
    positions: npt.ArrayLike | None = None,
    *,
    date: str = "",
    underlying: str = "",
    ax: Any = None,
) -> Any:
    """CTA flow over the next 5 sessions under each price scenario, bars in $bn (negative = selling).

    ``positions`` (aggregate, [-1, 1]) are written above/below the bars when given.
    """
    ax = _axes(ax)
    x = np.arange(len(names))
    bn = np.asarray(flows_usd, dtype=float) / 1e9
    colors = ["tab:red" if v < 0 else "tab:green" for v in bn]
    bars = ax.bar(x, bn, color=colors, alpha=0.8)
    if positions is not None:
        for bar, pos in zip(bars, np.asarray(positions, dtype=float), strict=True):
            h = bar.get_height()
            ax.annotate(
                f"pos {pos:+.2f}",
                (bar.get_x() + bar.get_width() / 2, h),
                ha="center",
                va="bottom" if h >= 0 else "top",
                fontsize=8,
            )
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_xticks(x, list(names))
    ax.set_xlabel("5-session price scenario (realized-vol moves)")
    ax.set_ylabel("trend-follower flow ($bn, + = buy)")
    ax.set_title(f"{underlying} CTA scenario flows, {date}".strip())
    ax.grid(alpha=0.3, axis="y")
    return ax


def plot_cta_triggers(
    dates: Sequence[Any],
    prices: npt.ArrayLike,
    triggers: Mapping[str, tuple[Sequence[Any], npt.ArrayLike]],
    *,
    date: str = "",
    underlying: str = "",
    ax: Any = None,
) -> Any:
    """Recent closes and each lookback's trigger-level path over the next sessions.

    ``triggers`` maps a label (e.g. ``"63d"``) to ``(dates, levels)``: the flip level for each coming session.
    """
    ax = _axes(ax)
    ax.plot(list(dates), np.asarray(prices, dtype=float), color="black", lw=1.4, label="close")
    for label, (d, lv) in triggers.items():
        ax.plot(
            list(d), np.asarray(lv, dtype=float), marker="o", ms=3, lw=1.2, ls="--", label=f"trigger {label}"
        )
    ax.set_xlabel("date")
    ax.set_ylabel("price (index points / $)")
    ax.set_title(f"{underlying} trend-follower trigger levels, {date}".strip())
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30)
    return ax


def plot_cta_position_history(
    dates: Sequence[Any],
    positions: npt.ArrayLike,
    *,
    underlying: str = "",
    ax: Any = None,
) -> Any:
    """Aggregate trend-follower position ([-1, 1]) over time."""
    ax = _axes(ax, (10.0, 4.0))
    pos = np.asarray(positions, dtype=float)
    ax.plot(list(dates), pos, color="tab:blue", lw=1.0)
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("date")
    ax.set_ylabel("aggregate position (-1 max short .. +1 max long)")
    first = str(dates[0])[:10] if len(dates) else ""
    last = str(dates[-1])[:10] if len(dates) else ""
    ax.set_title(f"{underlying} modelled trend-follower position, {first} to {last}".strip())
    ax.grid(alpha=0.3)
    return ax


def plot_divergence(
    dates: Sequence[Any],
    spread: npt.ArrayLike,
    quarter_ends: Sequence[Any],
    *,
    flagged: npt.ArrayLike | None = None,
    window: int = 20,
    broad: str = "broad",
    narrow: str = "narrow",
    ax: Any = None,
) -> Any:
    """Rolling return spread (broad minus narrow, percent) with quarter-ends as vertical lines.

    ``flagged`` marks the days of the divergence flag (extreme z inside the quarter-end window).
    """
    ax = _axes(ax, (10.0, 4.5))
    d = list(dates)
    sp = 100.0 * np.asarray(spread, dtype=float)
    ax.plot(d, sp, color="tab:blue", lw=0.9, label=f"{window}-session return spread")
    for i, q in enumerate(quarter_ends):
        ax.axvline(q, color="0.7", lw=0.5, ls=":", label="quarter-end" if i == 0 else None)
    if flagged is not None:
        f = np.asarray(flagged, dtype=bool)
        if f.any():
            ax.scatter(
                [x for x, k in zip(d, f, strict=True) if k],
                sp[f],
                color="tab:red",
                s=12,
                zorder=3,
                label="flag (extreme z in quarter-end window)",
            )
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_xlabel("date")
    ax.set_ylabel("broad minus narrow return (%)")
    first = str(d[0])[:10] if d else ""
    last = str(d[-1])[:10] if d else ""
    ax.set_title(f"{broad} vs {narrow} {window}-session return spread, {first} to {last}")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return ax
