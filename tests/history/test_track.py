"""Per-snapshot pipeline on synthetic chains with a known smile, tracking and the CLI on real files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from volsurf.market.calendar import session_open_close
from volsurf.market.snapshot import Snapshot, SnapshotMeta
from volsurf.pricing.black76 import black76_price

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "real_chains"
RALPH = SHARED / "cboe_ralph-e-boy_gamma-chart"
NY = "America/New_York"


def synthetic_snapshot(trade_date="2023-09-14", spot=4500.0, skew=0.0, atm=0.18, rate=0.0, put_oi=1000.0,
                       days=(3, 10, 17, 24, 38, 52, 66, 94, 122), n_strikes=61):
    """A chain priced with Black-76 from iv(k) = atm + skew k (rate r, no dividends), 1-tick-wide quotes."""
    day = pd.Timestamp(trade_date).date()
    _, close = session_open_close(day)
    rows = []
    for d in days:
        exp = (pd.Timestamp(trade_date) + pd.Timedelta(days=d)).tz_localize(NY) + pd.Timedelta(hours=16)
        t = (exp - close).total_seconds() / 60 / 525_600
        fwd = spot * math.exp(rate * t)
        disc = math.exp(-rate * t)
        width = 4 * atm * math.sqrt(t)
        strikes = np.round(fwd * np.exp(np.linspace(-width, 0.6 * width, n_strikes)))
        strikes = np.unique(strikes)
        k = np.log(strikes / fwd)
        iv = atm + skew * k
        for kind in ("call", "put"):
            px = black76_price(fwd, strikes, t, iv, kind == "call", disc)
            rows.append(pd.DataFrame({
                "expiry": exp, "expiry_date": exp.date().isoformat(), "strike": strikes, "type": kind,
                "bid": np.maximum(px - 0.05, 0.0), "ask": px + 0.05, "last": px,
                "volume": 10.0, "open_interest": put_oi if kind == "put" else 1000.0,
            }))
    f = pd.concat(rows, ignore_index=True)
    f = f[f["bid"] > 0].reset_index(drop=True)
    f["root"] = "SPXW"
    f["settlement"] = "PM"
    f["contract"] = ("SPXW" + pd.to_datetime(f["expiry_date"]).dt.strftime("%y%m%d") + np.where(f["type"] == "call", "C", "P")
                     + (f["strike"] * 1000).astype(int).astype(str).str.zfill(8))
    for c in ("vendor_iv", "vendor_delta", "vendor_gamma"):
        f[c] = np.nan
    f["flags"] = ""
    meta = SnapshotMeta(underlying="SPX", spot=spot, quote_time=close, trade_date=day, valuation_time=close,
                        source_format="synthetic", source_file=f"synthetic_{trade_date}")
    return Snapshot(frame=f, meta=meta)


@pytest.mark.parametrize("skew", [0.0, -0.4])
def test_pipeline_recovers_known_smile(skew):
    from volsurf.analytics.measure import snapshot_metrics

    m = snapshot_metrics(synthetic_snapshot(skew=skew), per_expiry=False)
    cm30 = m.cm(30)
    assert cm30.atm_iv == pytest.approx(0.18, abs=2e-3)
    assert cm30.slope == pytest.approx(skew, abs=0.02)
    if skew == 0:
        assert cm30.rr25 == pytest.approx(0.0, abs=1e-3)
    else:
        # 25d strikes of iv = a + b k by hand: rr25 = b (k25c - k25p)
        assert cm30.rr25 == pytest.approx(skew * (cm30.k_25c - cm30.k_25p), abs=1e-3)
        assert cm30.rr25 < -0.01
    rec = m.record()
    assert rec["trade_date"] == "2023-09-14" and rec["in_quarter_end_window"] is False
    assert "rr25_90d" in rec


def test_snapshot_metrics_is_pure():
    from volsurf.analytics.measure import snapshot_metrics

    snap = synthetic_snapshot(skew=-0.3)
    before = snap.frame.copy()
    a = snapshot_metrics(snap, per_expiry=False).record()
    b = snapshot_metrics(snap, per_expiry=False).record()
    pd.testing.assert_frame_equal(snap.frame, before)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k]))


def test_track_series_over_synthetic_files(tmp_path):
    from volsurf.history.track import track
    from volsurf.io import write_canonical

    dates = ["2023-09-19", "2023-09-14", "2023-09-15", "2023-09-18"]  # out of order on purpose
    for i, d in enumerate(dates):
        write_canonical(synthetic_snapshot(d, skew=-0.2 - 0.05 * i, put_oi=1000 + 100 * i), tmp_path / f"c{i}.csv")
    res = track([str(tmp_path)], window=3, min_history=2)
    s = res.series
    assert s["trade_date"].tolist() == sorted(dates)
    # Steeper skew with each file: rr25 falls in file order (c0 .. c3)
    order = [dates.index(d) for d in s["trade_date"]]
    rr = s["rr25_30d"].to_numpy()
    assert np.all(np.diff(rr[np.argsort(order)]) < 0)
    assert {"rr25_30d_z", "otm_put_oi_share_pct", "d_otm_put_oi_share"} <= set(s.columns)
    assert math.isnan(s["d_otm_put_oi_share"].iloc[0])


# ----------------------------------------------------------------------------------------------- CLI, real files


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip("shared real chains not available")


@pytest.mark.slow
def test_skew_cli_json_on_real_spx():

    path = SHARED / "cboe_carlosjimenezdiaz_GEX_Python/2023-09-14/spx_quotedata.csv"
    _need(path)
    r = run_cli("skew", *[str(path), "--format", "json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    for key in ("trade_date", "constant_maturity", "variance_index_30d", "otm_put_volume_share", "otm_put_oi_share",
                "put_call_volume_ratio", "put_call_oi_ratio", "calendar"):
        assert key in obj
    cm = {c["days"]: c for c in obj["constant_maturity"]}
    assert set(cm) == {7, 30, 60, 90}
    assert {"days", "atm_iv", "rr25", "bf25", "put_skew_90_100", "slope"} <= set(cm[30])
    assert cm[30]["rr25"] < 0
    assert 8 < obj["variance_index_30d"] < 40  # VIX points (Cboe VIX closed at 12.82 that day)
    assert {"trading_days_to_quarter_end", "in_quarter_end_window", "in_year_end_window"} <= set(obj["calendar"])


@pytest.mark.slow
def test_track_and_flags_cli_on_ralph_spy(tmp_path):

    _need(RALPH)
    r = run_cli("track", *[str(RALPH), "--format", "json", "--plot", str(tmp_path)])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    dates = [row["trade_date"] for row in obj["series"]]
    assert dates == sorted(dates) and len(dates) == len(set(dates))
    assert all(row["underlying"] == "SPY" for row in obj["series"])
    assert all(0.3 < row["otm_put_oi_share"] < 0.95 for row in obj["series"])
    assert list(tmp_path.glob("SPY_track_*.png"))

    files = sorted(RALPH.glob("*/quotedata.csv"))
    r = run_cli("flags", *[str(files[-1]), "--previous", str(files[-2]), "--format", "json",
                                       "--equity-ytd", "0.12", "--bond-ytd", "0.03"])
    assert r.exit_code == 0, r.output
    flags = json.loads(r.stdout)
    names = [f["name"] for f in flags]
    assert names[:4] == ["quarter_end_window", "skew_steepening", "otm_put_demand_rising", "quarter_end_hedging"]
    assert "rebalancing_flow" in names
    for f in flags:
        assert {"name", "triggered", "strength", "evidence"} <= set(f)


@pytest.mark.slow
def test_flags_cli_single_file_explains_not_evaluated():

    path = SHARED / "cboe_carlosjimenezdiaz_GEX_Python/2023-09-14/spy_quotedata.csv"
    _need(path)
    r = run_cli("flags", *[str(path)])
    assert r.exit_code == 0, r.output
    assert "skew_steepening: NOT EVALUATED" in r.output
    assert "quarter_end_window: not triggered" in r.output
