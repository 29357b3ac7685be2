"""`volsurf fetch` through the real entry point against a scripted feed server on 127.0.0.1: a scheduled run,
fetch -> track --store -> report --history-store end to end, one-line failures and exit statuses, Ctrl-C.

Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLES, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "history"))
from feed_server import Reply, envelope, feed_server, loopback_only  # noqa: F401 - autouse

SPY = SAMPLES / "spy_2025-06-09_close.csv"
SPX = SAMPLES / "spx_2026-07-31_close.csv"
TIMES = ("2025-06-09 18:00:00", "2025-06-09 18:15:00", "2025-06-09 18:30:00")
FAST = ("--timeout", "1", "--retries", "1", "--backoff", "0.01")


@pytest.fixture(scope="module")
def spy_bodies() -> list[bytes]:
    return [envelope(SPY, "SPY", t, shift=0.01 * i) for i, t in enumerate(TIMES)]


@pytest.fixture
def server():
    with feed_server() as srv:
        yield srv


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_scheduled_run_stores_three_snapshots(server, spy_bodies, tmp_path):
    server.script("/SPY.json", *[Reply(200, b) for b in spy_bodies])
    store = tmp_path / "store"
    res = run_cli("fetch", "SPY", "--base-url", server.url, "--store", store, "--raw-dir", tmp_path / "raw",
                  "--every", "1s", "--count", "3", "--any-time", *FAST)
    assert res.exit_code == 0, res.output
    out = lines(res.stdout)
    assert len(out) == 3 and all("SPY" in ln and "2,924 contracts" in ln and " stored " in ln for ln in out)
    assert [ln.split("as of ")[1][:19] for ln in out] == ["2025-06-09 14:00:00", "2025-06-09 14:15:00",
                                                           "2025-06-09 14:30:00"]
    assert "Traceback" not in res.stderr
    q = run_cli("query", "--store", store, "SELECT quote_time FROM metrics ORDER BY quote_time", "--format", "json")
    assert q.exit_code == 0, q.output
    times = [pd.Timestamp(r["quote_time"]) for r in json.loads(q.stdout)]
    assert len(times) == 3 and times == sorted(times) and len(set(times)) == 3
    assert len(os.listdir(tmp_path / "raw")) == 3
    # once more: the feed has not moved (the last response again, same timestamp) -> duplicate, exit 0
    again = run_cli("fetch", "SPY", "--base-url", server.url, "--store", store, *FAST)
    assert again.exit_code == 0 and "duplicate" in again.stdout


def test_fetch_track_report_end_to_end(server, tmp_path):
    """`volsurf fetch _SPX` three times, then `track --store` and `report --history-store`."""
    store = tmp_path / "store"
    stamps = ("2026-07-29 20:00:00", "2026-07-30 20:00:00", "2026-07-31 20:00:00")
    # the bundled SPX chain cut to its first 25 expiries (to 2026-09-04: 12,140 contracts) to keep the test short
    bodies = [envelope(SPX, "_SPX", t, shift=0.05 * i, wire_symbol="^SPX", expiries=25) for i, t in enumerate(stamps)]
    for body in bodies:
        server.script("/_SPX.json", Reply(200, body))
        res = run_cli("fetch", "_SPX", "--base-url", server.url, "--store", store, *FAST)
        assert res.exit_code == 0, res.output
        assert "_SPX" in res.stdout and "stored" in res.stdout
    track = run_cli("track", "--store", store, "--format", "json")
    assert track.exit_code == 0, track.output
    rows = json.loads(track.stdout)
    rows = rows["series"]
    assert [r["trade_date"] for r in rows] == ["2026-07-29", "2026-07-30", "2026-07-31"]
    today = tmp_path / "spx_today.json"
    today.write_bytes(envelope(SPX, "_SPX", "2026-08-03 19:00:00", shift=0.15, wire_symbol="^SPX", expiries=25))
    rep = run_cli("report", today, "--history-store", store, "-o", tmp_path / "report", "--format", "json")
    assert rep.exit_code == 0, rep.output
    assert (tmp_path / "report" / "report.html").exists()
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["snapshot"]["underlying"] == "SPX"


def test_failures_are_one_line_each_and_set_the_exit_status(server, spy_bodies, tmp_path):
    server.script("/SPY.json", Reply(200, spy_bodies[0]))
    server.script("/QQQ.json", Reply(200, spy_bodies[0]))  # a response for another symbol
    server.script("/IWM.json", Reply(200, b'{"timestamp": "2025-06-09 18:00:00", "data": {"opti'))
    server.script("/DIA.json", Reply(503, b"down"))
    res = run_cli("fetch", "SPY", "QQQ", "IWM", "DIA", "--base-url", server.url, "--store", tmp_path / "s", *FAST)
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert len(lines(res.stdout)) == 1 and "SPY" in res.stdout and "stored" in res.stdout
    err = [ln for ln in lines(res.stderr) if "retry" not in ln]
    assert len(err) == 3
    assert "QQQ  rejected: response for SPY, not QQQ" in err[0]
    assert "IWM  rejected: truncated JSON" in err[1]
    assert "DIA  failed: HTTP 503" in err[2] and "after 2 attempts" in err[2]
    assert any("retry 1/1" in ln for ln in lines(res.stderr))


def test_429_retry_after_through_the_cli(server, spy_bodies, tmp_path):
    server.script("/SPY.json", Reply(429, b"", {"Retry-After": "1"}), Reply(200, spy_bodies[0]))
    res = run_cli("fetch", "SPY", "--base-url", server.url, "--store", tmp_path / "s", *FAST)
    assert res.exit_code == 0, res.output
    assert "retry 1/1 in 1.0 s: HTTP 429" in res.stderr
    assert "stored" in res.stdout


def test_json_format(server, spy_bodies, tmp_path):
    server.script("/SPY.json", Reply(200, spy_bodies[0]))
    res = run_cli("fetch", "SPY", "--base-url", server.url, "--store", tmp_path / "s", "--format", "json", *FAST)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] is True and doc["outcomes"][0]["status"] == "stored"
    assert doc["outcomes"][0]["as_of"].startswith("2025-06-09T14:00:00")
    assert "stored" in res.stderr  # the cycle line goes to stderr when stdout holds the records


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("../x",), "not a symbol"),
        (("SPY", "--every", "fast"), "cannot read the interval"),
        (("SPY", "--count", "3"), "go with --every"),
        (("SPY", "--every", "15m", "--until", "25:00"), "cannot read the time"),
        (("SPY", "--base-url", "ftp://mirror/x"), "not a base URL"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, args, text):
    res = run_cli("fetch", *args, "--store", tmp_path / "s")
    assert res.exit_code == 2
    assert res.stderr.startswith("Error:") and text in res.stderr and len(lines(res.stderr)) == 1
    assert not (tmp_path / "s").exists()


def test_unusable_store_or_raw_folder_is_a_one_line_error(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    res = run_cli("fetch", "SPY", "--store", a_file)
    assert res.exit_code == 2 and res.stderr.startswith("Error:") and "cannot open or create the store" in res.stderr
    res = run_cli("fetch", "SPY", "--store", tmp_path / "s", "--raw-dir", a_file / "raw")
    assert res.exit_code == 2 and "cannot create the folder of raw responses" in res.stderr
    assert "Traceback" not in res.output and not (tmp_path / "s").exists()


def test_ctrl_c_stops_between_cycles(server, spy_bodies, tmp_path):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    server.script("/SPY.json", *[Reply(200, b) for b in spy_bodies])
    store = tmp_path / "s"
    started = threading.Event()

    def interrupt_after_first_cycle() -> None:
        # wait until the first snapshot is committed, then press Ctrl-C while the run waits for the next tick
        for _ in range(300):
            if (store / "metrics").exists() and os.listdir(store / "metrics"):
                break
            started.wait(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt_after_first_cycle)
    timer.start()
    try:
        res = run_cli("fetch", "SPY", "--base-url", server.url, "--store", store, "--every", "1h", "--count", "3",
                      "--any-time", *FAST)
    finally:
        timer.join()
    assert res.exit_code == 0, res.output
    assert len(lines(res.stdout)) == 1 and "stored" in res.stdout
    assert "stopped after 1 cycle" in res.stderr
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
