"""`volsurf ingest`, `volsurf query` and `volsurf track --store` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES, run_cli

SPY = [SAMPLES / "spy_2025-06-09_close.csv", SAMPLES / "spy_2025-08-29_close.csv"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("cli") / "h.store")
    res = run_cli("ingest", *map(str, SPY), "--store", url, "--jobs", "1", "--format", "json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["added"] == 2 and out["failed"] == 0
    assert {o["status"] for o in out["outcomes"]} == {"added"}
    return url


def test_ingest_again_table(store: str) -> None:
    res = run_cli("ingest", str(SPY[0]), "--store", store, "--jobs", "1")
    assert res.exit_code == 0, res.stderr
    assert "present" in res.stdout and "added" in res.stdout


def test_query_formats(store: str) -> None:
    sql = "SELECT trade_date, underlying, rr25_30d, regime FROM metrics ORDER BY trade_date"
    res = run_cli("query", "--store", store, sql, "--format", "json")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["trade_date"] for r in rows] == ["2025-06-09", "2025-08-29"]
    res = run_cli("query", "--store", store, sql, "--format", "csv")
    assert res.stdout.splitlines()[0] == "trade_date,underlying,rr25_30d,regime"
    res = run_cli("query", "--store", store, "SELECT count(*) AS n FROM contracts")
    assert res.exit_code == 0 and "n" in res.stdout


def test_query_errors_are_one_line(store: str, tmp_path: Path) -> None:
    res = run_cli("query", "--store", store, "SELECT nope FROM metrics")
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: query failed") and res.stderr.count("\n") == 1
    res = run_cli("query", "--store", str(tmp_path), "SELECT 1")
    assert res.exit_code == 2 and "not a volsurf store" in res.stderr


def test_track_store_equals_track_files(store: str) -> None:
    a = run_cli("track", *map(str, SPY), "--surface", "fitted", "--format", "json", "--min-history", "2",
                "--window", "5")
    b = run_cli("track", "--store", store, "--format", "json", "--min-history", "2", "--window", "5")
    assert a.exit_code == 0 and b.exit_code == 0, a.stderr + b.stderr
    assert json.loads(a.stdout)["series"] == json.loads(b.stdout)["series"]
    c = run_cli("track", "--store", store, "--from", "2025-07-01", "--format", "csv")
    assert c.exit_code == 0 and len(c.stdout.strip().splitlines()) == 2


def test_track_store_bad_input(store: str) -> None:
    res = run_cli("track", str(SPY[0]), "--store", store)
    assert res.exit_code == 2 and "not both" in res.stderr
    res = run_cli("track", "--store", store, "--underlying", "QQQ")
    assert res.exit_code == 2 and res.stderr.startswith("Error: no stored snapshot of QQQ")
    res = run_cli("track")
    assert res.exit_code == 2 and "no files to track" in res.stderr
    res = run_cli("track", "--store", store, "--from", "01/07/2025")
    assert res.exit_code == 2


def test_report_and_flags_with_history_store(store: str, tmp_path: Path) -> None:
    """--history-store gives the flags --history gives over the same files (no refit of the history)."""
    cur = SAMPLES / "spy_2025-08-29_close.csv"
    a = run_cli("flags", str(cur), "--history", str(SPY[0]), "--format", "json")
    b = run_cli("flags", str(cur), "--history-store", store, "--format", "json")
    assert a.exit_code == 0 and b.exit_code == 0, a.stderr + b.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)
    r = run_cli("report", str(cur), "--history-store", store, "-o", str(tmp_path / "rep"), "--format", "json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["skew"]["history_snapshots"] == 1
    assert summary["skew"]["previous"]["trade_date"] == "2025-06-09"


def test_ingest_bad_input(tmp_path: Path) -> None:
    res = run_cli("ingest", str(tmp_path / "missing.csv"), "--store", str(tmp_path / "s"))
    assert res.exit_code == 2 and res.stderr.startswith("Error: ") and "no such file" in res.stderr
    assert not (tmp_path / "s").exists()
    res = run_cli("ingest", str(SPY[0]), "--store", str(tmp_path / "s"), "--engine", "spark")
    assert res.exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("nothing here\n", encoding="utf-8")
    res = run_cli("ingest", str(bad), "--store", str(tmp_path / "s"), "--jobs", "1", "--format", "csv")
    assert res.exit_code == 0
    assert "failed" in res.stdout and res.stderr.startswith(f"failed {bad}:")


def test_track_store_runs_without_pandas(store: str) -> None:
    """`track --store` reads the metrics through Arrow and Python lists: the command never imports pandas (about
    half its start-up time), and prints what the DataFrame path prints."""
    import subprocess
    import sys

    code = ("import sys\nfrom volsurf.cli.main import main\ntry:\n    main(['track', '--store', sys.argv[1], "
            "'--format', 'json'])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "sys.stderr.write('PANDAS=%s' % ('pandas' in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, store], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.endswith("PANDAS=False"), out.stderr
    from volsurf.history.stored import stored_series

    want = stored_series(store)
    got = json.loads(out.stdout)
    assert got["skipped"] == [list(x) for x in want.skipped]
    assert len(got["series"]) == len(want.series) == 2
    assert list(got["series"][0]) == list(want.series.columns)


def test_ingest_as_of_needs_one_file(tmp_path: Path) -> None:
    res = run_cli("ingest", *map(str, SPY), "--store", str(tmp_path / "s"), "--as-of", "2025-06-09 16:00")
    assert res.exit_code == 2 and res.stderr.startswith("Error: an as-of time replaces the time of one file")
    assert res.stderr.count("\n") == 1 and not (tmp_path / "s").exists()
