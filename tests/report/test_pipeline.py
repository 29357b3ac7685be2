"""One pipeline: `volsurf flags` and `volsurf report` give the same flags for the same inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REAL, SAMPLES, require_shared, run_cli

SPY_AUG = SAMPLES / "spy_2025-08-29_close.csv"
SPY_JUN = SAMPLES / "spy_2025-06-09_close.csv"
RALPH = REAL / "cboe_ralph-e-boy_gamma-chart"


def _flag_triples(flags: list[dict]) -> list[tuple]:
    return [(f["name"], f["triggered"], f["evaluated"], f["strength"]) for f in flags]


def _both(tmp_path: Path, file: Path, *extra: str) -> tuple[list[tuple], list[tuple], dict]:
    flags = run_cli("flags", file, *extra, "--format", "json")
    assert flags.exit_code == 0, flags.stderr
    out = tmp_path / "report"
    rep = run_cli("report", file, *extra, "-o", out, "--format", "json")
    assert rep.exit_code == 0, rep.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return _flag_triples(json.loads(flags.stdout)), _flag_triples(summary["flags"]), summary


def test_single_snapshot_flags_identical(tmp_path: Path):
    from_flags, from_report, _ = _both(tmp_path, SPY_AUG, "--equity-ytd", "0.12", "--bond-ytd", "0.02")
    assert from_flags == from_report
    assert {n for n, *_ in from_flags} >= {"quarter_end_window", "skew_steepening", "rebalancing_flow"}


def test_previous_snapshot_flags_identical(tmp_path: Path):
    from_flags, from_report, summary = _both(tmp_path, SPY_AUG, "--previous", str(SPY_JUN))
    assert from_flags == from_report
    steep = next(f for f in summary["flags"] if f["name"] == "skew_steepening")
    assert steep["evaluated"], steep
    assert summary["skew"]["previous"]["trade_date"] == "2025-06-09"


@pytest.mark.slow
def test_history_flags_identical_and_history_feeds_changes(tmp_path: Path):
    require_shared()
    current = RALPH / "2025-09-25_2105" / "quotedata.csv"
    from_flags, from_report, summary = _both(tmp_path, current, "--history", str(RALPH))
    assert from_flags == from_report
    # history mode compares with the latest earlier snapshot too (like-for-like demand change present)
    assert summary["skew"]["history_snapshots"] >= 5
    # the 2025-09-01 download was made on Labor Day: its data are the 2025-08-29 session's
    assert summary["skew"]["previous"]["trade_date"] == "2025-08-29"
    assert summary["headline"]["otm_put_oi_share_change"] is not None
