"""Surface charts (drawing only: callers pass a fitted :class:`~volsurf.surface.fit.Surface` or one of its slices).

Each function takes ``ax=None`` (or ``fig=None`` for the multi-panel grid); without one a new figure is made
without pyplot, so it is safe in scripts, tests and servers. Charts are titled
``"<underlying> <what> -- <trade date>"``, axes carry units, vols are drawn in vol points (%).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Representative maturities (calendar days) for the smile grid and the per-expiry smile files.
GRID_TARGET_DAYS = (1.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0, 730.0, 1095.0, 1825.0)

_C_MARKET = "0.25"
_C_MC = "tab:blue"
_C_SVI = "tab:orange"
_C_ESSVI = "tab:green"
_C_BAD = "tab:red"


def _axes(ax: Any, size: tuple[float, float] = (8.0, 5.0)) -> Any:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size).add_subplot()


_DAY_TICKS = (1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365, 545, 730, 1095, 1460, 1825, 2555, 3650)


def _day_ticks(axis: Any, lo: float, hi: float) -> None:
    """Readable calendar-day ticks (7, 30, 90, 365...) on a log-scaled axis spanning ``[lo, hi]`` days."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, StrMethodFormatter

    ticks = [d for d in _DAY_TICKS if lo * 0.95 <= d <= hi * 1.05]
    if len(ticks) > 12:
        ticks = ticks[:: int(np.ceil(len(ticks) / 12))]
    if len(ticks) >= 2:
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())


def _title(underlying: str, what: str, trade_date: Any) -> str:
    head = f"{underlying} {what}".strip()
    return f"{head} -- {trade_date}" if trade_date not in (None, "") else head


def _days(t: float) -> str:
    d = 365.0 * t
    return f"{d:.0f}d" if d >= 1.5 else f"{d:.2g}d"


def select_slices(surface: Any, targets: Sequence[float] = GRID_TARGET_DAYS, max_panels: int = 12,
                  min_panels: int = 6) -> list[int]:
    """Indices of a representative subset of ``surface.slices``.

    The slice nearest (in log days) to each target maturity, then -- when that gives fewer than
    ``min_panels`` -- the slices farthest (in log days) from those already chosen; at most ``max_panels``,
    evenly thinned, sorted by maturity.
    """
    n = len(surface.slices)
    if n == 0:
        return []
    ld = np.log(np.maximum(np.array([s.t for s in surface.slices]) * 365.0, 1e-3))
    chosen = sorted({int(np.argmin(np.abs(ld - np.log(d)))) for d in targets})
    while len(chosen) < min(min_panels, n):
        gap = np.min(np.abs(ld[:, None] - ld[chosen][None, :]), axis=1)
        gap[chosen] = -1.0
        chosen = sorted({*chosen, int(np.argmax(gap))})
    if len(chosen) > max_panels:
        keep = np.unique(np.round(np.linspace(0, len(chosen) - 1, max_panels)).astype(int))
        chosen = [chosen[i] for i in keep]
    return chosen


def _smile_grid(sl: Any, surface: Any, n: int = 301, extend: float = 0.15) -> np.ndarray:
    """Dense ``k = K/F`` grid over the quoted range plus ``extend`` of its log-width on each side."""
    lo, hi = np.log(sl.quoted_range[0]), np.log(sl.quoted_range[1])
    pad = extend * max(hi - lo, 1e-3)
    x_lo, x_hi = lo - pad, hi + pad
    if surface is not None:
        # stay inside the market layer's domain: beyond it the query API answers with eSSVI
        x_lo = max(x_lo, float(np.log(surface.k_domain[0])))
        x_hi = min(x_hi, float(np.log(surface.k_domain[1])))
    return np.exp(np.linspace(x_lo, x_hi, n))


def _mc_smile(sl: Any, surface: Any, k: np.ndarray) -> np.ndarray:
    """Market-layer vols on ``k``: from the query API when a surface is given, else from the slice's spline."""
    if surface is not None:
        return np.asarray(surface.iv_k(k, sl.t), dtype=float)
    from volsurf.pricing.iv import implied_volatility

    c = sl.call_normalised(k)
    return implied_volatility(c, np.ones_like(k), k, np.full(k.size, sl.t), np.ones(k.size, dtype=bool), 1.0)


def plot_smile(
    slice_fit: Any,
    ax: Any = None,
    *,
    surface: Any = None,
    underlying: str = "",
    trade_date: Any = "",
    x: str = "logmoneyness",
    show_essvi: bool = False,
    legend: bool = True,
    compact: bool = False,
) -> Any:
    """One expiry's smile: market bid/ask IVs as error bars, mid IVs, the arbitrage-free curve and raw SVI.

    Parameters
    ----------
    slice_fit : SliceFit
        One element of ``Surface.slices``.
    surface : Surface, optional
        The fitted surface; the market-consistent curve then comes from its query API (``iv_k``), which is
        what downstream users get. Without it, the slice's own spline is inverted.
    x : {"logmoneyness", "strike"}
        Abscissa: ``ln(K/F)`` or strike (points); the forward is marked either way.
    show_essvi : bool
        Also draw the eSSVI slice (dashed).
    compact : bool
        Short title (expiry and days only), for grids.

    Notes
    -----
    Series drawn, in order: market bid/ask bars with mid markers (liquid OTM quotes, one errorbar container),
    the market-consistent curve, the SVI curve, optionally eSSVI; zero-bid quotes as ask-only markers and
    quotes the arbitrage-free fit had to leave (``arb_inconsistent``) as red crosses, when there are any.
    """
    if x not in ("logmoneyness", "strike"):
        raise ValueError(f"x must be 'logmoneyness' or 'strike', got {x!r}")
    ax = _axes(ax)
    sl = slice_fit
    f = float(sl.forward)

    def xs(k: np.ndarray) -> np.ndarray:
        return np.log(k) if x == "logmoneyness" else f * k

    liq = np.asarray(sl.liquid, dtype=bool) & np.isfinite(sl.iv_mid)
    mid = 100.0 * sl.iv_mid[liq]
    # a bid with no IV (at or below intrinsic value) gives no lower bound: its bar runs down to 0 vol
    lo_err = np.where(np.isfinite(sl.iv_bid[liq]), mid - 100.0 * sl.iv_bid[liq], mid)
    hi_err = np.where(np.isfinite(sl.iv_ask[liq]), 100.0 * sl.iv_ask[liq] - mid, 0.0)
    ax.errorbar(xs(sl.k[liq]), mid, yerr=np.vstack([np.maximum(lo_err, 0.0), np.maximum(hi_err, 0.0)]),
                fmt="o", ms=2.5, color=_C_MARKET, ecolor="0.55", elinewidth=0.9, capsize=1.5,
                label="market bid/ask IV (mid dot)", zorder=2)

    k = _smile_grid(sl, surface)
    iv_mc = _mc_smile(sl, surface, k)
    ax.plot(xs(k), 100.0 * iv_mc, color=_C_MC, lw=1.7, label="arbitrage-free fit (market layer)", zorder=3)
    with np.errstate(invalid="ignore"):
        w_svi = sl.svi_fit.params.total_variance(np.log(k))
        iv_svi = np.where(w_svi > 0, np.sqrt(np.maximum(w_svi, 0.0) / sl.t), np.nan)
    flags = f" [{', '.join(sl.svi_fit.flags)}]" if sl.svi_fit.flags else ""
    ax.plot(xs(k), 100.0 * iv_svi, color=_C_SVI, lw=1.2, ls="--", label=f"raw SVI{flags}", zorder=3)
    if show_essvi and surface is not None:
        from volsurf.surface.svi import essvi_total_variance

        w_e = essvi_total_variance(np.log(k), *surface.essvi_fit.params_at(sl.t))
        ax.plot(xs(k), 100.0 * np.sqrt(np.maximum(w_e, 0.0) / sl.t), color=_C_ESSVI, lw=1.0, ls=":",
                label="eSSVI", zorder=3)

    ask_only = ~np.asarray(sl.liquid, dtype=bool) & np.isfinite(sl.iv_ask)
    ask_only &= (sl.k >= k[0]) & (sl.k <= k[-1])
    if np.any(ask_only):
        ax.scatter(xs(sl.k[ask_only]), 100.0 * sl.iv_ask[ask_only], marker="v", s=10, color="0.6",
                   label="zero bid (ask IV)", zorder=2)
    bad = np.asarray(sl.arb_inconsistent, dtype=bool) & np.isfinite(sl.iv_mid)
    if np.any(bad):
        ax.scatter(xs(sl.k[bad]), 100.0 * sl.iv_mid[bad], marker="x", s=28, color=_C_BAD,
                   label="quote outside the fit (no-arbitrage)", zorder=4)

    ax.axvline(xs(np.array([1.0]))[0], color="0.5", lw=0.8, ls=":",
               label="forward (K = F)" if compact else f"forward {f:,.2f}")
    # y range from the market mids and the fitted curve: far-wing asks (and a degenerate SVI) must not
    # flatten the smile
    vals = np.concatenate([mid, 100.0 * iv_mc])
    vals = vals[np.isfinite(vals)]
    if vals.size:
        y_lo, y_hi = float(vals.min()), float(vals.max())
        pad = 0.08 * max(y_hi - y_lo, 1.0)
        ax.set_ylim(max(y_lo - pad, 0.0), y_hi + pad)
    ax.set_xlabel("log-moneyness ln(K/F)" if x == "logmoneyness" else "strike (points)")
    ax.set_ylabel("implied vol (%)")
    what = f"{sl.label} ({_days(sl.t)})" if compact else f"implied-vol smile {sl.label} ({_days(sl.t)}, F={f:,.2f})"
    ax.set_title(what if compact else _title(underlying, what, trade_date), fontsize=9 if compact else None)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7 if compact else 8, loc="upper center")
    return ax


def plot_smiles_grid(
    surface: Any,
    fig: Any = None,
    max_panels: int = 12,
    *,
    underlying: str = "",
    trade_date: Any = "",
    indices: Sequence[int] | None = None,
    x: str = "logmoneyness",
) -> Any:
    """A grid of smiles (one panel per expiry) for a representative subset of expiries.

    ``indices`` picks the slices explicitly; by default :func:`select_slices` (about 1d, 7d, 14d, 30d, 60d,
    90d, 180d, 1y, 2y, 3y, 5y, whichever exist). Only the first panel has a legend. Returns the Figure.
    """
    idx = list(indices) if indices is not None else select_slices(surface, max_panels=max_panels)
    idx = idx[:max_panels]
    n = max(len(idx), 1)
    ncols = 1 if n == 1 else 2 if n <= 4 else 3 if n <= 9 else 4
    nrows = int(np.ceil(n / ncols))
    if fig is None:
        from matplotlib.figure import Figure

        # Fixed margins instead of a layout engine: constrained/tight layout measures every tick label of
        # every panel in an extra draw pass, which doubles the rendering time of a many-panel grid.
        fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows + 0.6), layout="none")  # type: ignore[arg-type]
        top = 1.0 - 0.75 / (3.3 * nrows + 0.6)
        fig.subplots_adjust(left=0.6 / (4.2 * ncols), right=0.985, bottom=0.5 / (3.3 * nrows + 0.6), top=top,
                            hspace=0.42, wspace=0.22)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for j, i in enumerate(idx):
        plot_smile(surface.slices[i], axes[j], surface=surface, x=x, legend=(j == 0), compact=True)
        if j % ncols:
            axes[j].set_ylabel("")
    for ax in axes[len(idx):]:
        ax.set_visible(False)
    fig.suptitle(_title(underlying, "implied-vol smiles by expiry (bars: bid/ask; blue: arbitrage-free fit; "
                        "orange: raw SVI)", trade_date), fontsize=11)
    return fig


def heatmap_grid(surface: Any, n_t: int = 60, n_k: int = 121, k_range: tuple[float, float] | None = None,
                 mask_unquoted: bool = True, z_range: tuple[float, float] = (-4.0, 3.0),
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(days, x, iv)`` for the heatmap: maturities (log-spaced between the first and last expiry), log-moneyness
    ``x = ln(K/F(t))`` and decimal vols ``iv[i_t, i_x]`` from the query API.

    With ``mask_unquoted`` cells outside the typically quoted range are NaN: at time ``t`` that is
    ``[z_lo s(t), z_hi s(t)]`` with ``s(t)`` the ATM standard deviation ``sqrt(w_atm(t))`` and ``z_lo``,
    ``z_hi`` the medians over expiries of the quoted range's ends in units of ``s``, kept within ``z_range``
    (default -4 to +3 ATM standard deviations, roughly the 1-delta put to the 1-delta call: the far wings
    would take the whole colour scale; the smile charts show them). Per-expiry quoted ranges alternate
    between wide (monthly) and narrow (weekly) strike lists and would stripe the chart.
    """
    ts = np.array([s.t for s in surface.slices])
    s_atm = np.sqrt(np.maximum(np.array([s.atm_total_variance for s in surface.slices]), 1e-12))
    q_lo = np.log(np.array([s.quoted_range[0] for s in surface.slices]))
    q_hi = np.log(np.array([s.quoted_range[1] for s in surface.slices]))
    t_grid = np.geomspace(ts[0], ts[-1], n_t) if ts[-1] > ts[0] else ts[:1]
    s_grid = np.sqrt(np.interp(t_grid, ts, s_atm**2))  # total variance is linear-ish in t
    z_lo = max(float(np.median(q_lo / s_atm)), z_range[0])
    z_hi = min(float(np.median(q_hi / s_atm)), z_range[1])
    lo_t = np.maximum(z_lo * s_grid, q_lo.min())
    hi_t = np.minimum(z_hi * s_grid, q_hi.max())
    if k_range is None:
        lo_all, hi_all = (lo_t.min(), hi_t.max()) if mask_unquoted else np.log(surface.k_domain)
        k_range = (max(float(lo_all), float(np.log(surface.k_domain[0]))),
                   min(float(hi_all), float(np.log(surface.k_domain[1]))))
    x = np.linspace(k_range[0], k_range[1], n_k)
    iv = np.vstack([surface.iv_k(np.exp(x), float(t)) for t in t_grid])
    if mask_unquoted:
        iv = np.where((x[None, :] >= lo_t[:, None]) & (x[None, :] <= hi_t[:, None]), iv, np.nan)
    return 365.0 * t_grid, x, iv


def plot_iv_heatmap(
    surface: Any,
    ax: Any = None,
    *,
    underlying: str = "",
    trade_date: Any = "",
    n_t: int = 60,
    n_k: int = 121,
    k_range: tuple[float, float] | None = None,
    mask_unquoted: bool = True,
    z_range: tuple[float, float] = (-4.0, 3.0),
) -> Any:
    """Heatmap of implied vol over log-moneyness and maturity (days, log scale), from the query API.

    Cells outside the typically quoted range, at most ``z_range`` ATM standard deviations, are blank (see
    :func:`heatmap_grid`).

    The colour scale runs over the 1st-99th percentile (far wings would wash it out); a colorbar labelled
    ``implied vol (%)`` is added; white dots mark the expiries. Returns the Axes.
    """
    ax = _axes(ax, (8.5, 5.5))
    days, x, iv = heatmap_grid(surface, n_t=n_t, n_k=n_k, k_range=k_range, mask_unquoted=mask_unquoted,
                               z_range=z_range)
    z = 100.0 * iv
    fin = z[np.isfinite(z)]
    vmin, vmax = (np.percentile(fin, [1.0, 99.0]) if fin.size else (0.0, 1.0))
    mesh = ax.pcolormesh(x, days, np.ma.masked_invalid(z), shading="nearest", cmap="viridis", vmin=vmin,
                         vmax=vmax)
    mesh.set_rasterized(True)  # an image inside SVG/PDF output, not thousands of cell paths
    below, above = (bool(fin.min() < vmin), bool(fin.max() > vmax)) if fin.size else (False, False)
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get((below, above), "neither")
    cb = ax.get_figure().colorbar(mesh, ax=ax, extend=extend)
    cb.set_label("implied vol (%)")
    if days.size > 1:
        ax.set_yscale("log")
        _day_ticks(ax.yaxis, float(days[0]), float(days[-1]))
    ts = np.array([s.t for s in surface.slices]) * 365.0
    ax.plot(np.zeros_like(ts), ts, ls="none", marker=".", ms=3, color="white", alpha=0.8,
            label="expiries (at the forward)")
    ax.axvline(0.0, color="white", lw=0.6, ls=":")
    what = f"quoted range within {z_range[0]:g} to +{z_range[1]:g} ATM std devs" if mask_unquoted else "all"
    ax.set_xlabel(f"log-moneyness ln(K/F)  ({what})")
    ax.set_ylabel("days to expiry (calendar, log scale)")
    ax.set_title(_title(underlying, "implied-vol surface (arbitrage-free fit)", trade_date))
    return ax


def plot_atm_term_structure(
    surface: Any,
    ax: Any = None,
    *,
    underlying: str = "",
    trade_date: Any = "",
    n_t: int = 200,
    logx: bool = True,
) -> Any:
    """ATM (``K = F``) implied vol against days to expiry.

    Series: the surface (query API, dense in ``t``, line), the market-consistent fit at each expiry (dots) and
    raw SVI at each expiry (crosses). Returns the Axes.
    """
    ax = _axes(ax)
    ts = np.array([s.t for s in surface.slices])
    t_grid = np.geomspace(ts[0], ts[-1], n_t) if ts[-1] > ts[0] else ts[:1]
    one = np.array([1.0])
    atm_curve = np.array([surface.iv_k(one, float(t))[0] for t in t_grid])
    atm_mc = np.sqrt(np.array([s.atm_total_variance for s in surface.slices]) / ts)
    with np.errstate(invalid="ignore"):
        w_svi = np.array([float(s.svi_fit.params.total_variance(0.0)) for s in surface.slices])
        atm_svi = np.where(w_svi > 0, np.sqrt(np.maximum(w_svi, 0.0) / ts), np.nan)
    ax.plot(365.0 * t_grid, 100.0 * atm_curve, color=_C_MC, lw=1.3, label="surface (interpolated in time)")
    ax.plot(365.0 * ts, 100.0 * atm_mc, ls="none", marker="o", ms=4, color=_C_MC,
            label="arbitrage-free fit at each expiry")
    ax.plot(365.0 * ts, 100.0 * atm_svi, ls="none", marker="x", ms=5, color=_C_SVI, label="raw SVI at each expiry")
    if logx and ts[0] > 0:
        ax.set_xscale("log")
        _day_ticks(ax.xaxis, 365.0 * float(ts[0]), 365.0 * float(ts[-1]))
    ax.set_xlabel("days to expiry (calendar" + (", log scale)" if logx else ")"))
    ax.set_ylabel("ATM implied vol (%)")
    ax.set_title(_title(underlying, "ATM implied-vol term structure (K = F)", trade_date))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return ax


__all__ = [
    "GRID_TARGET_DAYS",
    "heatmap_grid",
    "plot_atm_term_structure",
    "plot_iv_heatmap",
    "plot_smile",
    "plot_smiles_grid",
    "select_slices",
]
