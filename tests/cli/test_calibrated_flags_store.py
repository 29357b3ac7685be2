"""Flags calibrated from a store holding 60+ snapshots of the underlying (issue: quarter-end study, item 2).

The store is built the way ingest writes it: one real snapshot ingested, then its metrics row replayed on 70
earlier NYSE sessions with a known 25d risk-reversal path (one metrics file per snapshot, as `volsurf ingest`
commits them). `report --history-store` and `flags --history-store` must then use the calibrated threshold and
show today's percentile in the evidence.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import SAMPLES, run_cli

from volsurf.market.calendar import sessions_between

SPY_JUN = SAMPLES / "spy_2025-06-09_close.csv"
SPY_AUG = SAMPLES / "spy_2025-08-29_close.csv"


def _store_with_history(tmp_path: Path, n: int = 70) -> tuple[Path, np.ndarray]:
    store = tmp_path / "store"
    assert run_cli("ingest", SPY_JUN, "--store", store).exit_code == 0
    (seed,) = list((store / "metrics").glob("*.parquet"))
    row = pq.read_table(seed)
    days = [str(d)[:10] for d in sessions_between("2025-01-02", "2025-08-28")][-n:]
    rng = np.random.default_rng(11)
    rr25 = -0.05 + np.cumsum(rng.normal(0.0, 0.002, n))
    for i, (day, value) in enumerate(zip(days, rr25, strict=True)):
        sid = f"{i:024x}"
        t = row
        for name, val in (("snapshot_id", sid), ("trade_date", day), ("content_hash", sid), ("file_hash", sid),
                          ("quote_time", f"{day}T16:15:00-04:00"), ("valuation_time", f"{day}T16:00:00-04:00"),
                          ("rr25_30d", float(value))):
            j = t.schema.get_field_index(name)
            t = t.set_column(j, t.schema.field(j), pa.array([val], type=t.schema.field(j).type))
        pq.write_table(t, store / "metrics" / f"{sid}.parquet")
    seed.unlink()
    index = store / "_index" / "metrics.parquet"
    if index.exists():
        index.unlink()  # readers fall back to the per-snapshot files
    return store, rr25


def test_report_and_flags_use_thresholds_calibrated_on_the_store(tmp_path: Path):
    store, rr25 = _store_with_history(tmp_path)
    out = tmp_path / "report"
    rep = run_cli("report", SPY_AUG, "--history-store", store, "-o", out)
    assert rep.exit_code == 0, rep.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    steep = next(f for f in summary["flags"] if f["name"] == "skew_steepening")
    ev = steep["evidence"]
    assert ev["mode"] == "calibrated", ev
    rr = ev["rr25_30d"]
    assert rr["threshold_source"] == "history" and rr["n_observations"] == 60  # 70 sessions, 10-session changes
    # independent recomputation: 90th percentile of the history's signed 10-session falls of rr25
    signed = -(rr25[10:] - rr25[:-10])
    assert abs(rr["threshold_change"] + np.percentile(signed, 90)) < 1e-12
    assert 0.0 <= rr["percentile_of_today"] <= 100.0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "percentile_of_today" in page
    flags = run_cli("flags", SPY_AUG, "--history-store", store, "--format", "json")
    assert flags.exit_code == 0, flags.stderr
    assert [f["evidence"] for f in json.loads(flags.stdout) if f["name"] == "skew_steepening"] == [ev]
