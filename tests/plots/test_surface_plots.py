"""Surface charts (volsurf.plots.surface_plots): content of the axes (series, labels, titles, colorbar) on a
synthetic chain with a known smile and on real chains, rendered with the Agg backend."""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.collections import QuadMesh
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from volsurf.plots.surface_plots import (
    GRID_TARGET_DAYS,
    heatmap_grid,
    plot_atm_term_structure,
    plot_iv_heatmap,
    plot_smile,
    plot_smiles_grid,
    select_slices,
)
from volsurf.pricing.black76 import black76_price
from volsurf.surface.fit import ExpiryQuotes, fit_surface

matplotlib.use("Agg")

SPY = "sample_chains/spy_2025-06-09_close.csv"
DAYS = (30.0, 91.0, 182.0, 365.0)


def _true_iv(x):
    """The generating smile: decimal vol at log-moneyness x (same for every expiry, so w rises with t)."""
    return 0.20 - 0.10 * x + 0.15 * x * x


@cache
def synthetic_surface():
    """Fit of OTM quotes priced off a known smile; bid/ask = price -+ max(0.01, 1% of price)."""
    out = []
    for d in DAYS:
        t = d / 365.0
        fwd, disc = 100.0 * np.exp(0.02 * t), np.exp(-0.04 * t)
        s = 0.2 * np.sqrt(t)
        x = np.linspace(-3.5 * s, 2.5 * s, 61)
        strike = fwd * np.exp(x)
        is_call = strike >= fwd
        price = black76_price(fwd, strike, t, _true_iv(x), is_call, disc)
        hs = np.maximum(0.01, 0.01 * price)
        out.append(ExpiryQuotes(t, fwd, disc, strike, is_call, np.maximum(price - hs, 0.0), price + hs, f"{d:.0f}d"))
    return fit_surface(out)


@cache
def spy_surface():
    from conftest import ROOT, enrich_cached

    from volsurf.surface.summary import fit_from_enriched

    e = enrich_cached(str(ROOT / SPY))
    return fit_from_enriched(e), e.meta


def _errorbars(ax):
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


@pytest.fixture
def ax():
    return Figure().add_subplot()


@pytest.mark.parametrize("i", range(len(DAYS)))
def test_smile_curve_recovers_the_generating_smile(ax, i):
    surf = synthetic_surface()
    sl = surf.slices[i]
    out = plot_smile(sl, ax, surface=surf, underlying="TEST", trade_date="2024-01-02")
    assert out is ax
    lines = {line.get_label(): line for line in ax.get_lines()}
    mc = lines["arbitrage-free fit (market layer)"]
    x, y = mc.get_xdata(), mc.get_ydata()
    s = 0.2 * np.sqrt(sl.t)
    core = (x > -2.5 * s) & (x < 2.0 * s)  # where the quotes are dense and far from the edges
    np.testing.assert_allclose(y[core], 100 * _true_iv(x[core]), atol=0.3)
    # the plotted range covers the quotes plus a margin on each side
    assert x.min() < np.log(sl.quoted_range[0]) and x.max() > np.log(sl.quoted_range[1])
    # SVI is drawn as total variance -> vol from its own parameters (a hand computation here)
    svi = next(v for k, v in lines.items() if k.startswith("raw SVI"))
    p = sl.svi_fit.params
    xs = svi.get_xdata()
    w = p.a + p.b * (p.rho * (xs - p.m) + np.sqrt((xs - p.m) ** 2 + p.sigma**2))
    np.testing.assert_allclose(svi.get_ydata(), 100 * np.sqrt(w / sl.t), rtol=1e-12)


def test_smile_content_labels_and_series(ax, tmp_path):
    surf = synthetic_surface()
    sl = surf.slices[1]
    plot_smile(sl, ax, surface=surf, underlying="TEST", trade_date="2024-01-02", show_essvi=True)
    title = ax.get_title()
    assert title.startswith("TEST ") and title.endswith("-- 2024-01-02") and sl.label in title
    assert ax.get_xlabel() == "log-moneyness ln(K/F)" and ax.get_ylabel() == "implied vol (%)"
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels[:3] == ["arbitrage-free fit (market layer)", "raw SVI", "eSSVI"]
    assert any(lbl.startswith("forward") for lbl in labels)
    (eb,) = _errorbars(ax)
    # one bar per liquid quote, centred on the mid IV (vol points), spanning bid to ask IV
    n_liq = int(np.count_nonzero(sl.liquid))
    data_line, _, (bars,) = eb.lines
    np.testing.assert_allclose(data_line.get_ydata(), 100 * sl.iv_mid[sl.liquid])
    segs = bars.get_segments()
    assert len(segs) == n_liq
    np.testing.assert_allclose([seg[0][1] for seg in segs], 100 * sl.iv_bid[sl.liquid], atol=1e-9)
    np.testing.assert_allclose([seg[1][1] for seg in segs], 100 * sl.iv_ask[sl.liquid], atol=1e-9)
    # legend lists every series
    assert len(ax.get_legend().get_texts()) >= 5
    ax.get_figure().savefig(tmp_path / "smile.png")
    assert (tmp_path / "smile.png").read_bytes()[:4] == b"\x89PNG"


def test_smile_in_strike_marks_the_forward(ax):
    surf = synthetic_surface()
    sl = surf.slices[0]
    plot_smile(sl, ax, surface=None, x="strike")
    assert ax.get_xlabel() == "strike (points)"
    fwd_line = next(line for line in ax.get_lines() if line.get_label().startswith("forward"))
    np.testing.assert_allclose(fwd_line.get_xdata(), [sl.forward, sl.forward])
    # without a surface the slice's own spline is inverted: same smile
    mc = next(line for line in ax.get_lines() if line.get_label().startswith("arbitrage-free"))
    k = mc.get_xdata() / sl.forward
    core = (np.log(k) > -0.08) & (np.log(k) < 0.06)
    np.testing.assert_allclose(mc.get_ydata()[core], 100 * _true_iv(np.log(k[core])), atol=0.3)
    with pytest.raises(ValueError):
        plot_smile(sl, ax, x="delta")


def test_smile_on_a_real_chain_shows_zero_bid_and_inconsistent_quotes():
    surf, meta = spy_surface()
    # the 2025-06-30 quarter-end expiry has zero-bid wings; some quotes conflict with no-arbitrage
    sl = next(s for s in surf.slices if s.label.startswith("2025-06-30"))
    ax = plot_smile(sl, surface=surf, underlying=meta.underlying, trade_date=meta.trade_date)
    assert "SPY" in ax.get_title() and "2025-06-09" in ax.get_title()
    assert len(_errorbars(ax)) == 1
    scatter_labels = [c.get_label() for c in ax.collections if c.get_label() and not c.get_label().startswith("_")]
    if np.any(~sl.liquid):
        assert "zero bid (ask IV)" in scatter_labels
    if np.any(sl.arb_inconsistent):
        assert "quote outside the fit (no-arbitrage)" in scatter_labels
    # far-wing asks must not flatten the smile: the y range is set by mids and the fitted curve
    lo, hi = ax.get_ylim()
    assert lo <= 100 * np.nanmin(sl.iv_mid[sl.liquid]) and hi >= 100 * np.nanmax(sl.iv_mid[sl.liquid])
    assert hi < 100 * np.nanmax(sl.iv_mid[sl.liquid]) * 1.5


def test_smiles_grid_panels_and_titles():
    surf, meta = spy_surface()
    fig = plot_smiles_grid(surf, underlying="SPY", trade_date=meta.trade_date, max_panels=4)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 4
    assert "SPY" in fig._suptitle.get_text() and "-- 2025-06-09" in fig._suptitle.get_text()
    for a in visible:
        assert len(_errorbars(a)) == 1
        assert "d)" in a.get_title()  # "<expiry> <root> (<days>d)"
        assert a.get_xlabel() == "log-moneyness ln(K/F)"
    # one legend, in the first panel
    assert sum(a.get_legend() is not None for a in visible) == 1
    # panels in maturity order
    days = [float(a.get_title().split("(")[1].rstrip("d)")) for a in visible]
    assert days == sorted(days)


def test_smiles_grid_given_figure_and_indices():
    surf = synthetic_surface()
    fig = Figure()
    out = plot_smiles_grid(surf, fig, indices=[0, 2], trade_date="2024-01-02")
    assert out is fig
    assert [a.get_title() for a in fig.axes if a.get_visible()] == ["30d (30d)", "182d (182d)"]


def test_heatmap_values_colorbar_and_labels(tmp_path):
    surf = synthetic_surface()
    fig = Figure()
    ax = plot_iv_heatmap(surf, fig.add_subplot(), underlying="TEST", trade_date="2024-01-02", n_t=15, n_k=31)
    assert ax.get_title() == "TEST implied-vol surface (arbitrage-free fit) -- 2024-01-02"
    assert ax.get_xlabel().startswith("log-moneyness ln(K/F)")
    assert "days to expiry" in ax.get_ylabel() and ax.get_yscale() == "log"
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1
    # a colorbar axes with the label
    cbar_axes = [a for a in fig.axes if a is not ax]
    assert len(cbar_axes) == 1 and cbar_axes[0].get_ylabel() == "implied vol (%)"
    days, x, _ = heatmap_grid(surf, n_t=15, n_k=31)
    z = np.ma.masked_invalid(meshes[0].get_array()).reshape(15, 31)
    ok = ~np.ma.getmaskarray(z)
    assert ok.sum() > 100
    np.testing.assert_allclose(days[[0, -1]], [DAYS[0], DAYS[-1]])
    # at the first and last expiry the cells hold the generating smile (vol points)
    for row in (0, -1):
        np.testing.assert_allclose(z[row][ok[row]], 100 * _true_iv(x[ok[row]]), atol=0.4)
    # at the money the generating vol is 20% at every maturity (the time interpolation keeps ATM exact)
    atm = int(np.argmin(np.abs(x)))
    np.testing.assert_allclose(z[:, atm], 100 * _true_iv(x[atm]), atol=0.1)
    # every cell is the query API's vol at (k, t)
    for row in (3, 9):
        ref = 100 * surf.iv_k(np.exp(x), days[row] / 365.0)
        np.testing.assert_allclose(z[row][ok[row]], ref[ok[row]], rtol=1e-12)
    fig.savefig(tmp_path / "heat.png")
    assert (tmp_path / "heat.png").stat().st_size > 1000


def test_heatmap_mask_widens_with_maturity():
    surf, _ = spy_surface()
    _, x, iv = heatmap_grid(surf, n_t=12, n_k=41)
    width = np.isfinite(iv).sum(axis=1)
    assert width[-1] > width[0] > 0
    # the quoted-range mask never shows a cell beyond the quoted ends of all expiries
    lo = min(np.log(s.quoted_range[0]) for s in surf.slices)
    hi = max(np.log(s.quoted_range[1]) for s in surf.slices)
    assert x[np.isfinite(iv).any(axis=0)].min() >= lo - 1e-12 and x[np.isfinite(iv).any(axis=0)].max() <= hi + 1e-12


def test_atm_term_structure_series_and_values(ax):
    surf = synthetic_surface()
    plot_atm_term_structure(surf, ax, underlying="TEST", trade_date="2024-01-02")
    assert ax.get_title() == "TEST ATM implied-vol term structure (K = F) -- 2024-01-02"
    assert ax.get_xscale() == "log" and "days to expiry" in ax.get_xlabel() and "(%)" in ax.get_ylabel()
    curve, mc, svi = ax.get_lines()
    assert curve.get_label().startswith("surface") and mc.get_label().startswith("arbitrage-free")
    assert svi.get_label().startswith("raw SVI")
    np.testing.assert_allclose(mc.get_xdata(), DAYS, rtol=1e-9)
    # flat ATM vol 20% in the generating smile, at every expiry and in between
    np.testing.assert_allclose(mc.get_ydata(), 20.0, atol=0.1)
    np.testing.assert_allclose(curve.get_ydata(), 20.0, atol=0.1)
    np.testing.assert_allclose(svi.get_ydata(), 20.0, atol=0.3)
    # readable day ticks (30, 60, 90...), not 10^2
    assert {30, 90, 180, 365} <= set(np.round(ax.get_xticks()).astype(int))


def test_atm_term_structure_real_chain_is_increasing_in_total_variance():
    surf, meta = spy_surface()
    ax = plot_atm_term_structure(surf, underlying=meta.underlying, trade_date=meta.trade_date)
    curve = ax.get_lines()[0]
    d, v = curve.get_xdata(), curve.get_ydata() / 100
    assert np.all(np.diff(v * v * d) >= -1e-12)  # calendar no-arbitrage at the money


def _fake_surface(days):
    return SimpleNamespace(slices=[SimpleNamespace(t=d / 365.0) for d in sorted(days)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.5, 3000.0), min_size=1, max_size=80, unique=True), st.integers(1, 16))
def test_select_slices_properties(days, max_panels):
    surf = _fake_surface(days)
    idx = select_slices(surf, max_panels=max_panels)
    assert idx == sorted(set(idx)) and 0 < len(idx) <= max_panels
    assert all(0 <= i < len(days) for i in idx)
    assert len(idx) >= min(max_panels, len(days), 6) or len(idx) == min(len(days), max_panels)


def test_select_slices_picks_nearest_to_targets():
    days = [1, 2, 3, 7, 8, 14, 21, 28, 35, 63, 91, 119, 182, 364, 728, 1092, 1820]
    idx = select_slices(_fake_surface(days), max_panels=12)
    chosen = {days[i] for i in idx}
    assert {1, 7, 14, 28, 63, 91, 182, 364, 728, 1092, 1820} <= chosen
    assert len(GRID_TARGET_DAYS) == 11
