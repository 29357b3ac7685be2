"""Dealer gamma exposure charts (drawing only: callers pass the numbers).

Each function takes ``ax=None`` (a new figure is made without pyplot, so it is safe with the Agg backend, in
scripts and tests), draws, labels the axes with units, titles the chart with the trade date, and returns the
Axes. Dollar inputs are USD per 1% move; the charts show them in $bn per 1% move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

BN = 1e9


def _axes(ax: Any, size: tuple[float, float] = (10.0, 5.5)) -> Any:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size).add_subplot()


def _title(kind: str, underlying: str, trade_date: str, assumption: str) -> str:
    head = f"{underlying} {kind}".strip()
    tail = f"{trade_date}" + (f"  ({assumption})" if assumption else "")
    return f"{head}, {tail}".strip(", ")


def _mark(ax: Any, x: float | None, label: str, color: str, ls: str) -> None:
    if x is not None and np.isfinite(x):
        ax.axvline(x, color=color, lw=1.2, ls=ls, label=f"{label} {x:,.1f}")


def plot_gex_by_strike(
    strike: ArrayLike,
    call_gex: ArrayLike,
    put_gex: ArrayLike,
    net_gex: ArrayLike,
    *,
    spot: float,
    flip: float | None = None,
    strike_range: tuple[float, float] | None = None,
    trade_date: str = "",
    underlying: str = "",
    assumption: str = "",
    max_bars: int = 120,
    ax: Any = None,
) -> Any:
    """Call, put and net GEX per strike as bars ($bn per 1% move), spot and gamma flip marked.

    Parameters
    ----------
    strike, call_gex, put_gex, net_gex : array-like
        Per-strike GEX in USD per 1% move (e.g. ``GexReport.by_strike`` columns).
    strike_range : (lo, hi), optional
        Strikes shown (default: spot +/- 15%); strikes outside are left out of the chart only.
    max_bars : int
        With more distinct strikes than this in range, GEX is summed into ``max_bars`` equal strike bins.
    """
    ax = _axes(ax)
    k = np.asarray(strike, dtype=float)
    lo, hi = strike_range if strike_range is not None else (0.85 * spot, 1.15 * spot)
    sel = (k >= lo) & (k <= hi)
    k = k[sel]
    series: list[np.ndarray] = [np.asarray(v, dtype=float)[sel] / BN for v in (call_gex, put_gex, net_gex)]
    uniq = np.unique(k)
    spacing = float(np.min(np.diff(uniq))) if uniq.size > 1 else max(1.0, 0.01 * spot)
    binned = ""
    if uniq.size > max_bars:
        # Thousands of bars are unreadable and slow to draw: sum GEX into equal strike bins.
        # A round bin width (1, 2, 2.5 or 5 x 10^n points) at or above the range / max_bars, aligned to it.
        raw = (hi - lo) / max_bars
        mag = 10.0 ** np.floor(np.log10(raw))
        spacing = float(mag * next(m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw - 1e-12))
        start = np.floor(lo / spacing) * spacing
        n_bins = int(np.ceil((hi - start) / spacing))
        idx = np.clip(((k - start) // spacing).astype(int), 0, n_bins - 1)
        k = start + (np.arange(n_bins) + 0.5) * spacing
        series = [np.bincount(idx, weights=v, minlength=n_bins) for v in series]
        binned = f" (summed in {spacing:,g}-point strike bins)"
    width = spacing / 3.0
    colors = ("tab:green", "tab:red", "tab:blue")
    labels = ("call GEX", "put GEX", "net GEX")
    for j, (vals, c, lab) in enumerate(zip(series, colors, labels, strict=True)):
        ax.bar(k + (j - 1) * width, vals, width=width, color=c, label=lab, alpha=0.85, linewidth=0)
    ax.axhline(0.0, color="0.3", lw=0.8)
    _mark(ax, spot, "spot", "black", "-")
    _mark(ax, flip, "gamma flip", "tab:purple", "--")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("strike (index points)" + binned)
    ax.set_ylabel("dealer gamma exposure ($bn per 1% move)")
    ax.set_title(_title("gamma exposure by strike", underlying, trade_date, assumption))
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return ax


def plot_gex_profile(
    spots: ArrayLike,
    net_gex: ArrayLike,
    *,
    spot: float,
    flip: float | None = None,
    by_bucket: Mapping[str, Any] | None = None,
    later: tuple[str, Any] | None = None,
    trade_date: str = "",
    underlying: str = "",
    assumption: str = "",
    ax: Any = None,
) -> Any:
    """Net GEX ($bn per 1% move) against hypothetical spot, zero line, spot and gamma flip marked.

    Parameters
    ----------
    spots, net_gex : array-like
        The profile grid (index points) and net GEX there (USD per 1% move).
    by_bucket : mapping bucket -> array, optional
        Net GEX per expiry bucket on the same grid (thin lines).
    later : (label, array), optional
        The profile at a later valuation time (e.g. end of day), dashed.
    """
    ax = _axes(ax)
    s = np.asarray(spots, dtype=float)
    ax.plot(s, np.asarray(net_gex, dtype=float) / BN, color="tab:blue", lw=2.0, label="net GEX")
    for name, vals in (by_bucket or {}).items():
        ax.plot(s, np.asarray(vals, dtype=float) / BN, lw=0.9, alpha=0.8, label=f"{name}")
    if later is not None:
        ax.plot(s, np.asarray(later[1], dtype=float) / BN, color="tab:blue", lw=1.4, ls="--", label=later[0])
    ax.axhline(0.0, color="0.3", lw=0.8)
    _mark(ax, spot, "spot", "black", "-")
    _mark(ax, flip, "gamma flip", "tab:purple", "--")
    ax.set_xlim(float(s.min()), float(s.max()))
    ax.set_xlabel("hypothetical spot (index points)")
    ax.set_ylabel("net dealer gamma exposure ($bn per 1% move)")
    ax.set_title(_title("net GEX profile", underlying, trade_date, assumption))
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return ax


def plot_gex_by_bucket(
    by_bucket: Any,
    *,
    trade_date: str = "",
    underlying: str = "",
    assumption: str = "",
    ax: Any = None,
) -> Any:
    """Call, put and net GEX per expiry bucket (0DTE, this week, monthly, quarterly, longer) as grouped bars.

    Parameters
    ----------
    by_bucket : DataFrame
        ``GexReport.by_bucket``: columns ``bucket``, ``call_gex``, ``put_gex``, ``net_gex`` (USD per 1% move).
    """
    ax = _axes(ax, (8.0, 4.5))
    names = [str(b) for b in by_bucket["bucket"]]
    x = np.arange(len(names), dtype=float)
    width = 0.27
    for j, (col, c, lab) in enumerate(
        zip(("call_gex", "put_gex", "net_gex"), ("tab:green", "tab:red", "tab:blue"), ("call GEX", "put GEX", "net GEX"),
            strict=True)
    ):
        ax.bar(x + (j - 1) * width, np.asarray(by_bucket[col], dtype=float) / BN, width=width, color=c, label=lab)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xticks(x, names)
    ax.set_xlabel("expiry bucket")
    ax.set_ylabel("dealer gamma exposure ($bn per 1% move)")
    ax.set_title(_title("gamma exposure by expiry", underlying, trade_date, assumption))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return ax
