"""Event-path charts (volsurf.plots.study_plots): content checked under Agg, not pixels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba

from volsurf.market.calendar import sessions_between
from volsurf.plots import save_figure
from volsurf.plots.study_plots import EVENT_LINE_COLOR, plot_event_path, plot_quarter_end_paths


def _inputs(n_events: int = 6, lookback: int = 3, horizon: int = 2):
    offsets = np.arange(-lookback, horizon + 1)
    paths = np.outer(np.arange(1, n_events + 1), offsets + lookback).astype(float)
    mean = paths.mean(axis=0)
    return offsets, paths, mean, mean - 1.0, mean + 1.0


def test_event_path_lines_and_labels():
    offsets, paths, mean, lo, hi = _inputs()
    ax = plot_event_path(offsets, paths, mean, lo, hi, label="quarter-ends", lookback=3, unit="index points")
    (coll,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segs = coll.get_segments()
    assert len(segs) == 6
    np.testing.assert_allclose(segs[2][:, 1], paths[2])
    assert tuple(coll.get_colors()[0]) == to_rgba(EVENT_LINE_COLOR)
    (mean_line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("mean")]
    np.testing.assert_allclose(mean_line.get_ydata(), mean)
    np.testing.assert_allclose(mean_line.get_xdata(), offsets)
    assert ax.get_title() == "quarter-ends (n=6)"
    assert ax.get_ylabel() == "change since T-3 (index points)"
    assert "event day" in ax.get_xlabel()


def test_side_by_side_shared_limits(tmp_path):
    offsets, paths, mean, lo, hi = _inputs()
    outlier = paths.copy()
    outlier[0] *= 1000  # one crisis path must not flatten the means
    axes = plot_quarter_end_paths(
        offsets,
        {"quarter_end": (outlier, mean, lo, hi), "other_month_end": (paths / 2, mean / 2, lo / 2, hi / 2)},
        series_name="SKEW",
        lookback=3,
    )
    assert [a.get_title() for a in axes] == ["quarter-ends (n=6)", "other month-ends (n=6)"]
    assert axes[0].get_ylim() == axes[1].get_ylim()
    y0, y1 = axes[0].get_ylim()
    assert y0 <= lo.min() and y1 >= hi.max() and y1 < outlier.max()
    assert axes[0].get_figure()._suptitle.get_text() == "SKEW: change since T-3 around the event day"
    (written,) = save_figure(axes[0], tmp_path / "qe.png")
    assert written.endswith("qe.png") and (tmp_path / "qe.png").stat().st_size > 1000


def test_chart_data_from_study():
    from volsurf.history.study import quarter_end_study

    idx = pd.DatetimeIndex(sessions_between("2015-01-02", "2019-12-31"))
    s = pd.Series(np.sin(np.arange(idx.size) / 7.0), index=idx, name="x")
    r = quarter_end_study(s, lookback=5, horizon=3, n_bootstrap=200, n_permutations=200)
    axes = plot_quarter_end_paths(**r.chart_data())
    qe = r.sets["quarter_end"]
    (coll,) = [c for c in axes[0].collections if isinstance(c, LineCollection)]
    assert len(coll.get_segments()) == qe.n_events
    (mean_line,) = [ln for ln in axes[0].get_lines() if ln.get_label().startswith("mean")]
    # the last quarter-end (2019-12-31) has no later sessions in the series: averaged over the others there
    np.testing.assert_allclose(mean_line.get_ydata(), np.nanmean(qe.paths, axis=0))
