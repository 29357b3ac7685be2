"""Flags with 60+ earlier snapshots use thresholds calibrated on the history's own 10-session changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volsurf.market.calendar import sessions_between
from volsurf.signals.flags import FlagThresholds, evaluate_flags


def _records(n: int, rr25_path: np.ndarray) -> list[dict]:
    days = sessions_between("2024-01-02", "2025-12-31")[:n]
    return [
        {"trade_date": str(pd.Timestamp(d).date()), "rr25_30d": float(v), "put_skew_90_100_30d": 0.02,
         "otm_put_oi_share": 0.5, "otm_put_volume_share": 0.5}
        for d, v in zip(days, rr25_path, strict=True)
    ]


def test_calibrated_threshold_is_the_90th_percentile_of_past_changes():
    rng = np.random.default_rng(7)
    n = 120
    path = -0.04 + np.cumsum(rng.normal(0, 0.002, n))
    path[-1] = path[-11] - 0.02  # today's 10-session fall: far beyond anything in the history
    recs = _records(n, path)
    flags = {f.name: f for f in evaluate_flags(recs[-1], history=recs[:-1], thresholds=FlagThresholds())}
    steep = flags["skew_steepening"]
    ev = steep.evidence["rr25_30d"]
    assert steep.evidence["mode"] == "calibrated" and ev["threshold_source"] == "history"
    # independent recomputation: 10-position changes of the history (one snapshot per session), signed so that
    # a fall is positive, 90th percentile
    hist = np.asarray(path[:-1])
    signed = -(hist[10:] - hist[:-10])
    assert ev["threshold_change"] == pytest.approx(-np.percentile(signed, 90), abs=1e-12)
    assert ev["n_observations"] == signed.size
    assert ev["percentile_of_today"] == 100.0
    assert steep.triggered and steep.strength > 1


def test_short_history_keeps_the_z_baseline():
    path = np.linspace(-0.04, -0.05, 30)
    recs = _records(30, path)
    steep = next(f for f in evaluate_flags(recs[-1], history=recs[:-1]) if f.name == "skew_steepening")
    assert steep.evidence["mode"] == "baseline"
