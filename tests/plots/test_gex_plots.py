"""Tests for volsurf.plots.gex_plots: drawing only (Agg), titles, units, markers, values in $bn."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from volsurf.plots.gex_plots import plot_gex_by_strike, plot_gex_profile


def _strike_data():
    k = np.arange(4300.0, 4701.0, 25.0)
    call = np.where(k >= 4500, 2e9, 0.5e9)
    put = np.where(k <= 4500, -1.5e9, -0.2e9)
    return k, call, put, call + put


@pytest.mark.parametrize("given_ax", [False, True])
def test_by_strike_chart(given_ax):
    k, c, p, n = _strike_data()
    ax_in = Figure().add_subplot() if given_ax else None
    ax = plot_gex_by_strike(k, c, p, n, spot=4505.1, flip=4487.2, trade_date="2023-09-14", underlying="SPX",
                            assumption="dealer_long_calls_short_puts", ax=ax_in)
    if given_ax:
        assert ax is ax_in
    assert "2023-09-14" in ax.get_title() and "SPX" in ax.get_title()
    assert "$bn per 1% move" in ax.get_ylabel()
    assert "strike" in ax.get_xlabel()
    # three bar series, one bar per strike each, heights in $bn
    assert len(ax.patches) == 3 * k.size
    heights = sorted({round(b.get_height(), 9) for b in ax.patches})
    assert 2.0 in heights and -1.5 in heights
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("spot" in s for s in labels) and any("gamma flip" in s for s in labels)


def test_by_strike_range_filters_and_no_flip():
    k, c, p, n = _strike_data()
    ax = plot_gex_by_strike(k, c, p, n, spot=4500.0, flip=None, strike_range=(4400.0, 4600.0))
    assert len(ax.patches) == 3 * int(np.count_nonzero((k >= 4400) & (k <= 4600)))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any("gamma flip" in s for s in labels)
    assert ax.get_xlim() == (4400.0, 4600.0)


def test_profile_chart():
    s = np.linspace(3800, 5200, 401)
    net = 5e10 * np.tanh((s - 4490) / 80)
    ax = plot_gex_profile(s, net, spot=4505.1, flip=4490.0, by_bucket={"0dte": net / 2, "monthly": net / 2},
                          later=("end of day", net * 0.8), trade_date="2023-09-14", underlying="SPX",
                          assumption="dealer_long_calls_short_puts")
    assert "profile" in ax.get_title() and "2023-09-14" in ax.get_title()
    assert "$bn per 1% move" in ax.get_ylabel()
    assert "spot" in ax.get_xlabel()
    main = ax.get_lines()[0]
    np.testing.assert_allclose(main.get_ydata(), net / 1e9)
    # the zero line is drawn
    assert any(np.allclose(line.get_ydata(), 0.0) for line in ax.get_lines()[1:])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "0dte" in labels and "end of day" in labels and any("gamma flip 4,490.0" in x for x in labels)


def test_gex_by_bucket_chart_content():
    import pandas as pd

    from volsurf.plots.gex_plots import plot_gex_by_bucket

    table = pd.DataFrame({"bucket": ["0dte", "this_week", "monthly"], "call_gex": [1e9, 2e9, 3e9],
                          "put_gex": [-2e9, -1e9, -0.5e9], "net_gex": [-1e9, 1e9, 2.5e9]})
    ax = plot_gex_by_bucket(table, trade_date="2024-01-02", underlying="SPX", assumption="x")
    assert len(ax.patches) == 9  # 3 buckets x (call, put, net)
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights[0] == -2.0 and heights[-1] == 3.0  # $bn
    assert "2024-01-02" in ax.get_title() and "$bn" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0dte", "this_week", "monthly"]


def test_by_strike_bins_many_strikes_and_keeps_totals():
    import numpy as np

    from volsurf.plots.gex_plots import plot_gex_by_strike

    k = np.arange(4000.0, 5000.0, 1.0)  # 1,000 strikes in range
    call = np.full(k.size, 1e8)
    put = np.full(k.size, -5e7)
    ax = plot_gex_by_strike(k, call, put, call + put, spot=4500.0, max_bars=50)
    # range 3825..5175 over 50 bars -> 27 points -> a round 50-point bin from 3800: 28 bins per series
    n = len(ax.patches) // 3
    assert len(ax.patches) == 3 * n and n == 28
    heights = np.array([p.get_height() for p in ax.patches])
    # the bins sum the strikes inside spot +/- 15% (3825..5175 covers all 1,000): totals preserved, in $bn
    assert heights[:n].sum() == pytest.approx(k.size * 0.1)
    assert heights[n : 2 * n].sum() == pytest.approx(-k.size * 0.05)
    assert "50-point strike bins" in ax.get_xlabel()
