"""Trailing baseline statistics and flag rules (hand-computed references)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import percentileofscore

from volsurf.errors import ParameterError
from volsurf.signals.flags import (
    FlagThresholds,
    direction_of,
    evaluate_flags,
    rolling_baseline,
    trailing_baseline,
)


def test_trailing_baseline_by_hand():
    b = trailing_baseline([1, 2, 3, 4, 5], 10, window=5, min_history=5)
    assert b.mean == 3 and b.std == pytest.approx(math.sqrt(2.5))
    assert b.z == pytest.approx(7 / math.sqrt(2.5))
    assert b.percentile == 1.0


def test_window_excludes_old_values_and_current():
    r = rolling_baseline([100, 1, 2, 3, 4, 5, 6], window=3, min_history=3)
    # last element: window = [4, 5]... no: the 3 values before 6 are 3, 4, 5
    assert r["mean"][-1] == pytest.approx(4.0)
    assert r["z"][-1] == pytest.approx(2.0)  # (6 - 4) / 1
    assert np.isnan(r["z"][:3]).all()  # fewer than 3 prior values


def test_min_history_and_floor():
    b = trailing_baseline([0.01, 0.01], 0.02, window=5, min_history=3)
    assert math.isnan(b.z) and "need 3" in b.reason
    flat = trailing_baseline([0.01] * 5, 0.02, window=5, min_history=3, min_std=0.005)
    assert flat.z == pytest.approx(2.0)  # std 0 floored at 0.005


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=6, max_size=30),
    st.floats(0.1, 10),
    st.floats(-5, 5),
)
def test_z_affine_invariant_and_percentile_matches_scipy(xs, a, c):
    x = np.array(xs)
    r1 = rolling_baseline(x, window=5, min_history=3)
    r2 = rolling_baseline(a * x + c, window=5, min_history=3)
    ok = np.isfinite(r1["z"]) & (r1["std"] > 1e-6)
    np.testing.assert_allclose(r1["z"][ok], r2["z"][ok], rtol=1e-6, atol=1e-6)
    i = len(x) - 1
    ref = percentileofscore(x[i - 5 : i], x[i], kind="mean") / 100
    assert r1["percentile"][i] == pytest.approx(ref)


def test_directions():
    assert direction_of("rr25_30d") == -1
    assert direction_of("put_skew_90_100_30d") == 1
    assert direction_of("put_skew_10d") == 1
    assert direction_of("otm_put_oi_share") == 1


def rec(day="2023-09-26", rr=-0.03, ps=0.08, oi=0.60, vol=0.55, days=30):
    return {
        "trade_date": day,
        f"rr25_{days}d": rr,
        f"put_skew_90_100_{days}d": ps,
        "otm_put_oi_share": oi,
        "otm_put_volume_share": vol,
    }


def by_name(flags):
    return {f.name: f for f in flags}


def test_single_snapshot_change_rules_not_evaluated():
    f = by_name(evaluate_flags(rec()))
    for name in ("skew_steepening", "otm_put_demand_rising", "quarter_end_hedging"):
        assert not f[name].evaluated and not f[name].triggered and f[name].strength is None
        assert "reason" in f[name].evidence


@pytest.mark.parametrize(
    "day,inside,td",
    [("2023-09-29", True, 0), ("2023-09-25", True, 4), ("2023-09-22", False, 5), ("2023-09-14", False, 11)],
)
def test_quarter_end_window(day, inside, td):
    f = by_name(evaluate_flags(rec(day)))["quarter_end_window"]
    assert f.triggered is inside and f.strength == (1.0 if inside else 0.0)
    assert f.evidence["trading_days_to_quarter_end"] == td
    assert f.evidence["quarter_end_date"] == "2023-09-29"


def test_previous_mode_combined_flag():
    prev = rec("2023-09-25", rr=-0.03, ps=0.08, oi=0.60, vol=0.55)
    cur = rec("2023-09-26", rr=-0.05, ps=0.085, oi=0.615, vol=0.56)
    f = by_name(evaluate_flags(cur, previous=prev))
    steep = f["skew_steepening"]
    # rr25 fell 2 vol points against a 1-point threshold
    assert steep.triggered and steep.strength == pytest.approx(2.0)
    assert steep.evidence["rr25_30d"]["change"] == pytest.approx(-0.02)
    dem = f["otm_put_demand_rising"]
    assert dem.triggered and dem.strength == pytest.approx(1.5)  # +1.5 points of OI share
    combo = f["quarter_end_hedging"]
    assert combo.triggered and combo.strength == pytest.approx(1.0)  # min(window 1, 2, 1.5)


def test_like_for_like_replaces_raw_change():
    prev = rec("2023-09-25", oi=0.60)
    cur = rec("2023-09-26", oi=0.58)  # roll-off made the raw share fall
    f = by_name(evaluate_flags(cur, previous=prev, like_for_like={"otm_put_oi_share": 0.02}))
    assert f["otm_put_demand_rising"].triggered
    assert f["otm_put_demand_rising"].evidence["otm_put_oi_share"]["change_basis"].startswith("expiries")


def test_history_mode_uses_baseline():
    hist = [rec(f"2023-08-{d:02d}", rr=-0.03 + 0.001 * (i % 2)) for i, d in enumerate(range(14, 31))]
    cur = rec("2023-09-26", rr=-0.045)
    f = by_name(evaluate_flags(cur, history=hist))["skew_steepening"]
    ev = f.evidence["rr25_30d"]
    assert f.evidence["mode"] == "baseline" and ev["baseline_n"] == 17
    # std of alternating -0.03/-0.029 (17 values) is ~0.0005, floored at 0.0025: z = -(−0.045 − mean)/0.0025
    mean = np.mean([-0.03 + 0.001 * (i % 2) for i in range(17)])
    assert ev["z"] == pytest.approx((-0.045 - mean) / 0.0025)
    assert f.triggered


def test_maturity_fallback_when_30d_missing():
    prev = {**rec("2023-09-25", days=7), "rr25_30d": None}
    cur = {**rec("2023-09-26", rr=-0.06, days=7), "rr25_30d": float("nan")}
    f = by_name(evaluate_flags(cur, previous=prev))["skew_steepening"]
    assert f.evaluated and "rr25_7d" in f.evidence


def test_rebalancing_flow_flag():
    # 60/40 after +20% equities, 0% bonds: equities drift to 72/112 = 64.29%, sell 4.29% of the book
    f = by_name(evaluate_flags(rec(), equity_ytd=0.20, bond_ytd=0.0))["rebalancing_flow"]
    assert f.triggered
    assert f.evidence["equity_trade_pct_of_book"] == pytest.approx(0.6 - 72 / 112)
    assert f.strength == pytest.approx((72 / 112 - 0.6) / 0.01)
    assert f.evidence["direction"] == "sell equities"


def test_thresholds_overrides_and_validation():
    th = FlagThresholds().with_overrides({"z": "2", "window_days": "3"})
    assert th.z == 2.0 and th.window_days == 3 and isinstance(th.window_days, int)
    with pytest.raises(ParameterError):
        FlagThresholds().with_overrides({"nope": 1})
    with pytest.raises(ParameterError):
        FlagThresholds().with_overrides({"z": "-1"})
    with pytest.raises(ParameterError):
        evaluate_flags(rec(), equity_ytd=0.1)


def test_flag_json_shape():
    for f in evaluate_flags(rec()):
        d = f.to_dict()
        assert {"name", "triggered", "strength", "evidence"} <= set(d)
