"""CTA and divergence charts (Agg): drawn data, units, titles, given axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from volsurf.plots.cta_plots import (
    plot_cta_position_history,
    plot_cta_scenarios,
    plot_cta_triggers,
    plot_divergence,
)


@pytest.mark.parametrize("given_ax", [False, True])
def test_scenarios_bars_in_bn(given_ax, tmp_path):
    ax_in = Figure().add_subplot() if given_ax else None
    names = ["down_2vol", "down_1vol", "flat", "up_1vol", "up_2vol"]
    flows = [-30e9, -15e9, 0.0, 15e9, 15e9]
    ax = plot_cta_scenarios(
        names, flows, [-0.27, -0.13, 0.0, 0.13, 0.13], date="2022-12-30", underlying="SPY", ax=ax_in
    )
    if given_ax:
        assert ax is ax_in
    assert [b.get_height() for b in ax.patches] == [-30.0, -15.0, 0.0, 15.0, 15.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert "$bn" in ax.get_ylabel()
    assert "2022-12-30" in ax.get_title() and "SPY" in ax.get_title()
    assert any("+0.13" in t.get_text() for t in ax.texts)
    ax.get_figure().savefig(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0


def test_triggers_lines():
    d = pd.bdate_range("2024-01-02", periods=10)
    nxt = pd.bdate_range("2024-01-16", periods=5)
    ax = plot_cta_triggers(
        d, np.arange(10.0) + 100, {"21d": (nxt, [101.0, 102, 103, 104, 105])}, date="2024-01-15"
    )
    lines = ax.get_lines()
    np.testing.assert_array_equal(lines[0].get_ydata(), np.arange(10.0) + 100)
    np.testing.assert_array_equal(lines[1].get_ydata(), [101.0, 102, 103, 104, 105])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["close", "trigger 21d"]
    assert "price" in ax.get_ylabel()


def test_position_history():
    d = pd.bdate_range("2020-01-01", periods=4)
    ax = plot_cta_position_history(d, [0.5, -0.2, 0.0, 1.0], underlying="SPY")
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [0.5, -0.2, 0.0, 1.0])
    assert ax.get_ylim() == (-1.05, 1.05)
    assert "2020-01-01" in ax.get_title() and "2020-01-06" in ax.get_title()


def test_divergence_chart():
    d = pd.bdate_range("2023-03-01", periods=30)
    spread = np.linspace(-0.02, 0.03, 30)
    flagged = np.zeros(30, dtype=bool)
    flagged[[20, 21]] = True
    q = [pd.Timestamp("2023-03-31")]
    ax = plot_divergence(d, spread, q, flagged=flagged, window=20, broad="SPY", narrow="NDX")
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), 100 * spread)  # percent
    assert "(%)" in ax.get_ylabel()
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(offsets)[:, 1], 100 * spread[[20, 21]])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "quarter-end" in labels and any("flag" in s for s in labels)
    assert "SPY vs NDX" in ax.get_title()
