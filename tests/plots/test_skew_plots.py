"""Skew charts: each draws on the given Axes (or a new one), labels units, titles with the date."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from volsurf.plots.skew_plots import plot_metric_over_time, plot_skew_term, plot_smiles


@pytest.fixture
def ax():
    return Figure().add_subplot()


def test_plot_smiles_draws_on_given_axes(ax, tmp_path):
    k = np.linspace(-0.2, 0.1, 21)
    out = plot_smiles({"30d": (k, 0.2 - 0.5 * k)}, points={"30d": (k[::4], 0.2 - 0.5 * k[::4])},
                      trade_date="2023-09-14", underlying="SPX", ax=ax)
    assert out is ax
    assert "2023-09-14" in ax.get_title() and "SPX" in ax.get_title()
    assert "vol points" in ax.get_ylabel() and "ln(K/F)" in ax.get_xlabel()
    # vol points: the line holds 100 x the decimal vol
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), 100 * (0.2 - 0.5 * k))
    ax.get_figure().savefig(tmp_path / "smile.png")
    assert (tmp_path / "smile.png").stat().st_size > 0


def test_plot_skew_term_creates_axes_when_none():
    out = plot_skew_term([7, 30, 60, 90], {"25d risk reversal": [-0.01, -0.03, -0.035, -0.04]},
                         trade_date="2023-09-14")
    assert out is not None and "2023-09-14" in out.get_title()
    assert "days" in out.get_xlabel() and "vol points" in out.get_ylabel()
    assert out.get_xscale() == "log"


def test_plot_metric_over_time_marks_quarter_ends(ax):
    dates = ["2023-09-25", "2023-09-26", "2023-10-02"]
    plot_metric_over_time(dates, [0.6, 0.62, 0.61], label="OTM put share of OI", unit="%", scale=100,
                          quarter_ends=["2023-09-29"], ax=ax)
    assert "2023-09-25" in ax.get_title() and "2023-10-02" in ax.get_title()
    assert "(%)" in ax.get_ylabel()
    labels = [line.get_label() for line in ax.get_lines()]
    assert "quarter-end" in labels
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [60, 62, 61])
