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
    # (the two files list no expiry in common, so the like-for-like share change itself is unavailable)
    assert summary["demand"]["change"] is not None
    assert summary["demand"]["change"]["like_for_like"]["common_expiries"] == 0


def _trend_prices(path: Path, end: str, n: int = 400) -> Path:
    """A steady 10%-a-year uptrend with a small wiggle ending on ``end`` (business days)."""
    import numpy as np
    import pandas as pd

    days = pd.bdate_range(end=end, periods=n)
    px = 100 * np.exp(0.10 / 252 * np.arange(n) + 0.004 * np.sin(np.arange(n)))
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "close": px}).to_csv(path, index=False)
    return path


def test_cta_flag_and_section_identical_in_flags_and_report(tmp_path: Path):
    prices = _trend_prices(tmp_path / "spy_daily.csv", "2025-08-29")
    extra = ("--equity-ytd", "0.12", "--bond-ytd", "0.02", "--cta-prices", str(prices))
    from_flags, from_report, summary = _both(tmp_path, SPY_AUG, *extra)
    assert from_flags == from_report
    names = [n for n, *_ in from_flags]
    assert "cta_rebalance_alignment" in names
    cta = summary["cta"]
    # every lookback of a steady uptrend is long: the aggregate position is positive, each signal +1
    assert cta["position"] > 0 and all(lb["signal"] == 1 for lb in cta["lookbacks"])
    assert cta["date"] == "2025-08-29"
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert 'id="cta"' in page and "cta_scenarios" in summary["charts"]
    assert "cta" not in summary["absent"]


def test_report_shows_the_quarter_end_study_of_a_series(tmp_path: Path):
    import numpy as np
    import pandas as pd

    days = pd.bdate_range("2018-01-01", "2024-12-31")
    values = 120 + np.cumsum(np.random.default_rng(3).normal(0, 1, days.size))
    series = tmp_path / "skew.csv"
    pd.DataFrame({"DATE": days.strftime("%m/%d/%Y"), "SKEW": values}).to_csv(series, index=False)
    out = tmp_path / "report"
    res = run_cli("report", SPY_AUG, "--study", series, "-o", out)
    assert res.exit_code == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    (row,) = summary["quarter_end_study"]
    # 28 quarter-ends in 2018-2024 (the first quarter-end lacks 10 earlier sessions only if the series starts late)
    assert row["series"] == "skew" and row["n_qe"] == 28
    assert summary["charts"]["study_0"] == "study_0.png"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="study"' in page and 'href="#study"' in page
