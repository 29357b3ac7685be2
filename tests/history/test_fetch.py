"""volsurf.history.fetch: the HTTP client with the real urllib stack against a scripted server on 127.0.0.1,
the response checks, the store rules (duplicate, older, stale), and the schedule on an injected clock.

Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import json
import os
import random
import socket
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLES, SHARED
from feed_server import FeedServer, Reply, envelope, feed_server, loopback_only  # noqa: F401 - autouse

from volsurf.errors import ParameterError
from volsurf.history import fetch as f
from volsurf.history.store import Store

SPY = SAMPLES / "spy_2025-06-09_close.csv"
FEEDS = SHARED / "real_feeds" / "cboe_delayed_json"
NY = "America/New_York"

# SPY envelopes at 14:00, 14:15 and 14:30 New York time on 2025-06-09, each with other quotes.
TIMES = ("2025-06-09 18:00:00", "2025-06-09 18:15:00", "2025-06-09 18:30:00")


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    return [envelope(SPY, "SPY", t, shift=0.01 * i) for i, t in enumerate(TIMES)]


@pytest.fixture(scope="module")
def small() -> bytes:
    """A small SPY envelope (200 contracts) for the client tests."""
    return envelope(SPY, "SPY", TIMES[0], limit=200)


@pytest.fixture
def server():
    with feed_server() as srv:
        yield srv


class Sleeps(list):
    """A sleep that records its waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(server: FeedServer, *, attempts: int = 3, timeout: float = 2.0, sleep=None) -> f.FeedClient:
    policy = f.RetryPolicy(attempts=attempts, timeout=timeout, backoff=0.01, max_delay=0.05)
    return f.FeedClient(server.url, policy, sleep=sleep if sleep is not None else Sleeps(), rng=random.Random(0))


def parquet_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet"))


# ---------------------------------------------------------------------------------------------------------
# Symbols, URLs, policy
# ---------------------------------------------------------------------------------------------------------


def test_symbols_and_urls():
    assert f.feed_symbol("_spx") == "_SPX"
    assert f.feed_symbol("^SPX") == "_SPX"
    assert f.feed_symbol(" spy ") == "SPY"
    assert f.underlying_of("_SPX") == f.underlying_of("^SPX") == "SPX"
    for bad in ("../etc/passwd", "", "SP Y", "_"):
        with pytest.raises(ParameterError):
            f.feed_symbol(bad)
    c = f.FeedClient()
    assert c.url_for("_spx") == "https://cdn.cboe.com/api/global/delayed_quotes/options/_SPX.json"
    assert f.FeedClient("http://127.0.0.1:8000/mirror/").url_for("SPY") == "http://127.0.0.1:8000/mirror/SPY.json"
    for bad in ("ftp://x/y", "cdn.cboe.com/api", "http://", "http://h/x?q=1"):
        with pytest.raises(ParameterError):
            f.check_base_url(bad)
    assert "volsurf" in c.user_agent


def test_retry_policy_backoff_jitter_and_retry_after():
    p = f.RetryPolicy(backoff=1.0, factor=2.0, max_delay=5.0, jitter=0.5)
    rng = random.Random(1)
    for retry, base in ((1, 1.0), (2, 2.0), (3, 4.0)):
        d = p.delay(retry, rng=rng)
        assert base <= d <= base * 1.5
    assert p.delay(10, rng=rng) == 5.0  # capped
    assert p.delay(1, retry_after=7.0) == 7.0  # the server's word, not the backoff
    assert f.parse_retry_after("3") == 3.0
    later = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert f.parse_retry_after(later, now=1_000_000.0) == pytest.approx(30.0)
    assert f.parse_retry_after("soon") is None
    with pytest.raises(ParameterError):
        f.RetryPolicy(attempts=0)


# ---------------------------------------------------------------------------------------------------------
# The HTTP client against the local server
# ---------------------------------------------------------------------------------------------------------


def test_500_then_200_is_retried(server, small):
    server.script("/SPY.json", Reply(500, b"oops"), Reply(503, b"busy"), Reply(200, small))
    sleeps = Sleeps()
    resp = client(server, attempts=4, sleep=sleeps).fetch("SPY")
    assert resp.body == small and resp.attempts == 3
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1]  # exponential backoff
    assert server.hits("/SPY.json") == 3
    ua = server.requests[0][1]["User-Agent"]
    assert ua.startswith("volsurf/")


def test_5xx_until_attempts_are_spent(server):
    server.script("/SPY.json", Reply(502, b"bad gateway"))
    with pytest.raises(f.FeedError) as err:
        client(server, attempts=3).fetch("SPY")
    assert err.value.kind == "http" and err.value.status == 502 and err.value.attempts == 3
    assert "HTTP 502" in err.value.one_line() and "after 3 attempts" in err.value.one_line()
    assert server.hits("/SPY.json") == 3


def test_429_honours_retry_after(server, small):
    server.script("/SPY.json", Reply(429, b"slow down", {"Retry-After": "2"}), Reply(200, small))
    sleeps = Sleeps()
    resp = client(server, sleep=sleeps).fetch("SPY")
    assert resp.attempts == 2 and sleeps == [2.0]


def test_429_asking_too_long_ends_the_attempts(server):
    server.script("/SPY.json", Reply(429, b"", {"Retry-After": "3600"}))
    with pytest.raises(f.FeedError) as err:
        client(server).fetch("SPY")
    assert "retry after 3600 s" in err.value.one_line()
    assert server.hits("/SPY.json") == 1


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_4xx_are_not_retried(server, status):
    server.script("/SPY.json", Reply(status, b"no"))
    sleeps = Sleeps()
    with pytest.raises(f.FeedError) as err:
        client(server, sleep=sleeps).fetch("SPY")
    assert err.value.status == status and err.value.attempts == 1 and not err.value.retryable
    assert server.hits("/SPY.json") == 1 and sleeps == []
    if status == 404:
        assert "_SPX" in err.value.one_line()  # the hint on index symbols


def test_a_stall_past_the_timeout_is_retried(server, small):
    server.script("/SPY.json", Reply(200, small, stall=5.0), Reply(200, small))
    resp = client(server, timeout=0.3).fetch("SPY")
    assert resp.attempts == 2 and resp.body == small


def test_stalls_until_attempts_are_spent(server, small):
    server.script("/SPY.json", Reply(200, small, stall=5.0))
    with pytest.raises(f.FeedError) as err:
        client(server, attempts=2, timeout=0.2).fetch("SPY")
    assert err.value.kind == "timeout" and err.value.attempts == 2
    assert "timeout" in err.value.one_line()


def test_a_body_cut_short_is_retried(server, small):
    server.script("/SPY.json", Reply(200, small, cut_to=1000), Reply(200, small))
    resp = client(server).fetch("SPY")
    assert resp.attempts == 2 and resp.body == small
    server.script("/SPY.json", Reply(200, small, cut_to=1000))
    with pytest.raises(f.FeedError) as err:
        client(server, attempts=2).fetch("SPY")
    assert err.value.kind == "truncated" and "1,000 bytes" in err.value.one_line()


def test_gzip_encoding(server, small):
    server.script("/SPY.json", Reply(200, small, gzip=True))
    assert client(server).fetch("SPY").body == small
    # a gzip stream cut short inside a complete HTTP response
    cut = gzip.compress(small)[:500]
    server.script("/SPY.json", Reply(200, cut, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(f.FeedError) as err:
        client(server, attempts=1).fetch("SPY")
    assert err.value.kind == "truncated" and "gzip" in err.value.one_line()


def test_connection_refused_is_retried():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    c = f.FeedClient(f"http://127.0.0.1:{port}", f.RetryPolicy(attempts=3, timeout=1.0, backoff=0.01), sleep=sleeps)
    with pytest.raises(f.FeedError) as err:
        c.fetch("SPY")
    assert err.value.kind == "connection" and err.value.attempts == 3 and len(sleeps) == 2


# ---------------------------------------------------------------------------------------------------------
# Response checks
# ---------------------------------------------------------------------------------------------------------


def _env(symbol="SPY", options=None, timestamp="2025-06-09 18:00:00", **extra) -> bytes:
    data = {"symbol": symbol, "current_price": 599.0,
            "options": options if options is not None else [
                {"option": "SPY250620C00600000", "bid": 5.0, "ask": 5.2, "iv": 0.15, "open_interest": 10, "volume": 1}]}
    obj = {"timestamp": timestamp, "symbol": symbol, "data": data, **extra}
    if timestamp is None:
        del obj["timestamp"]
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("body", "kind", "text"),
    [
        (b"", "empty", "empty response"),
        (b"<html>Access denied</html>", "invalid_json", "invalid JSON"),
        (_env()[:-40], "truncated_json", "truncated JSON"),
        (b'{"data": {"foo": 1}}', "not_feed", "no data.options"),
        (_env(options=[]), "empty", "empty option list"),
        (_env(symbol="QQQ"), "wrong_symbol", "response for QQQ, not SPY"),
        (_env(timestamp=None), "no_timestamp", "no timestamp"),
    ],
)
def test_bad_responses_are_named(body, kind, text):
    with pytest.raises(f.FeedError) as err:
        f.check_payload("SPY", body, "http://127.0.0.1/SPY.json")
    assert err.value.kind == kind
    assert text in err.value.one_line()


def test_index_symbol_spellings_match():
    f.check_payload("_SPX", _env(symbol="^SPX"))
    f.check_payload("_SPX", _env(symbol="_SPX"))
    with pytest.raises(f.FeedError, match="response for _NDX"):
        f.check_payload("_SPX", _env(symbol="_NDX"))


def test_loader_errors_name_the_url_not_a_temporary_file(tmp_path):
    body = _env(options=[{"option": "NOT-A-SYMBOL", "bid": 1.0, "ask": 1.1}])
    with pytest.raises(f.FeedError) as err:
        f.read_response("SPY", body, "http://127.0.0.1/SPY.json", workdir=str(tmp_path))
    assert err.value.kind == "load" and "http://127.0.0.1/SPY.json" in err.value.one_line()
    assert str(tmp_path) not in err.value.one_line()


# ---------------------------------------------------------------------------------------------------------
# Into the store
# ---------------------------------------------------------------------------------------------------------


def test_stored_then_duplicate_with_raw_kept(server, bodies, tmp_path):
    store = f.open_store(str(tmp_path / "store"))
    server.script("/SPY.json", Reply(200, bodies[0]))
    c = client(server)
    first = f.fetch_symbol("SPY", store, c, raw_dir=str(tmp_path / "raw"))
    assert first.status == "stored" and first.ok and first.contracts > 1000
    assert first.as_of == pd.Timestamp("2025-06-09 14:00", tz=NY)
    assert first.raw_path.endswith("SPY_20250609T180000Z.json.gz")
    assert gzip.decompress(Path(first.raw_path).read_bytes()) == bodies[0]
    assert "stored" in first.line() and "2025-06-09 14:00:00 EDT" in first.line() and "contracts" in first.line()
    again = f.fetch_symbol("SPY", store, c, raw_dir=str(tmp_path / "raw"))
    assert again.status == "duplicate" and again.ok and again.snapshot_id == first.snapshot_id
    assert store.committed_ids() == {first.snapshot_id}
    assert Path(store.index_path()).exists()  # the store's metrics index is kept up to date
    assert sorted(os.listdir(tmp_path / "raw")) == ["SPY_20250609T180000Z.json.gz"]
    assert Store.open(str(tmp_path / "store")).read_metrics()["underlying"].tolist() == ["SPY"]


@pytest.mark.parametrize(
    ("reply", "status", "text"),
    [
        (Reply(200, b'{"timestamp": "2025-06-09 18:00:00", "data": {"options": [{"option"'), "rejected",
         "truncated JSON"),
        (Reply(200, b"<html>maintenance</html>"), "rejected", "invalid JSON"),
        (Reply(200, _env(options=[])), "rejected", "empty option list"),
        (Reply(200, _env(symbol="_NDX")), "rejected", "response for _NDX, not SPY"),
        (Reply(500, b"down"), "failed", "HTTP 500"),
        (Reply(200, b"{}", cut_to=1), "failed", "truncated response"),
    ],
)
def test_bad_responses_never_reach_the_store(server, tmp_path, reply, status, text):
    store = f.open_store(str(tmp_path / "store"))
    server.script("/SPY.json", reply)
    out = f.fetch_symbol("SPY", store, client(server, attempts=2), raw_dir=str(tmp_path / "raw"))
    assert out.status == status and not out.ok
    assert text in out.reason and text in out.line()
    assert parquet_files(tmp_path / "store") == []  # no snapshot, no failure row, nothing partial
    assert not (tmp_path / "raw").exists() or os.listdir(tmp_path / "raw") == []


def test_older_timestamp_and_stale_market(server, bodies, tmp_path):
    store = f.open_store(str(tmp_path / "store"))
    c = client(server)
    server.script("/SPY.json", Reply(200, bodies[1]))
    assert f.fetch_symbol("SPY", store, c).status == "stored"
    # an earlier snapshot served after a later one (a stale CDN copy)
    server.script("/SPY.json", Reply(200, bodies[0]))
    older = f.fetch_symbol("SPY", store, c)
    assert older.status == "rejected" and "older than the last stored snapshot" in older.reason
    # the same quotes under a newer timestamp: the market has not moved
    same = envelope(SPY, "SPY", "2025-06-09 18:45:00", shift=0.01)
    server.script("/SPY.json", Reply(200, same))
    stale = f.fetch_symbol("SPY", store, c)
    assert stale.status == "stale" and not stale.ok and "same data as the last stored snapshot" in stale.reason
    assert len(store.committed_ids()) == 1
    # a newer, different snapshot is stored again
    server.script("/SPY.json", Reply(200, bodies[2]))
    assert f.fetch_symbol("SPY", store, c).status == "stored"
    assert len(store.committed_ids()) == 2


def test_cycle_goes_on_after_a_failing_symbol(server, bodies, tmp_path):
    store = f.open_store(str(tmp_path / "store"))
    server.script("/SPY.json", Reply(200, bodies[0]))
    seen: list[str] = []
    outs = f.fetch_cycle(["QQQ", "SPY"], store, client(server, attempts=1), cycle=4,
                         on_outcome=lambda o: seen.append(o.status))
    assert [o.status for o in outs] == seen == ["failed", "stored"]
    assert all(o.cycle == 4 for o in outs)
    assert "HTTP 404" in outs[0].reason


def test_shared_feed_files(server, tmp_path):
    if not FEEDS.exists():
        pytest.skip("needs ../shared/real_feeds beside the checkout")
    store = f.open_store(str(tmp_path / "store"))
    c = client(server, attempts=1)
    aapl = (FEEDS / "aapl_2026-08-07_envelope_excerpt.json").read_bytes()
    server.script("/AAPL.json", Reply(200, aapl))
    server.script("/MSFT.json", Reply(200, aapl))
    server.script("/SPY.json", Reply(200, (FEEDS / "spy_2022-04-04_data_only.json").read_bytes()))
    snap, _ = f.read_response("AAPL", aapl, workdir=str(tmp_path))
    assert snap.meta.quote_time == pd.Timestamp("2026-08-07 18:58:23", tz="UTC")
    assert f.fetch_symbol("MSFT", store, c).reason == "response for AAPL, not MSFT"
    older = f.fetch_symbol("SPY", store, c)
    assert older.status == "rejected" and "no timestamp" in older.reason
    assert parquet_files(tmp_path / "store") == []


def test_recorded_envelope_is_stored(server, tmp_path):
    if not FEEDS.exists():
        pytest.skip("needs ../shared/real_feeds beside the checkout")
    server.script("/AAPL.json", Reply(200, (FEEDS / "aapl_2026-08-07_envelope_excerpt.json").read_bytes()))
    out = f.fetch_symbol("AAPL", f.open_store(str(tmp_path / "store")), client(server, attempts=1))
    assert out.status == "stored", out.reason


def test_full_size_index_envelope_from_a_shared_cboe_export(server, tmp_path):
    ndx = SHARED / "real_chains" / "cboe_Luca-Castelli_Index-Gamma" / "ndx_quotedata.csv"
    if not ndx.exists():
        pytest.skip("needs ../shared/real_chains beside the checkout")
    body = envelope(ndx, "_NDX", "2022-02-04 21:00:00", wire_symbol="^NDX")
    server.script("/_NDX.json", Reply(200, body, gzip=True))
    store = f.open_store(str(tmp_path / "store"))
    out = f.fetch_symbol("^ndx", store, client(server))
    assert out.status == "stored", out.reason
    assert out.symbol == "_NDX" and out.contracts > 15000
    row = store.read_metrics().iloc[0]
    assert row["underlying"] == "NDX" and row["trade_date"] == "2022-02-04"


# ---------------------------------------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------------------------------------


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=NY)


def test_intervals_and_until():
    assert f.parse_interval("15m") == 900 and f.parse_interval("30s") == 30 and f.parse_interval("1h") == 3600
    for bad in ("15", "0s", "2d", "fast", "25h"):
        with pytest.raises(ParameterError):
            f.parse_interval(bad)
    now = ts("2026-09-30 10:00")
    assert f.parse_until("16:15", now) == ts("2026-09-30 16:15")
    assert f.parse_until("09:00", now) == ts("2026-10-01 09:00")  # the next one
    assert f.parse_until("2026-10-02 16:15", now) == ts("2026-10-02 16:15")
    with pytest.raises(ParameterError):
        f.parse_until("25:00", now)


def test_ticks_are_aligned_to_the_clock():
    assert f.next_tick(ts("2026-09-30 10:07:13"), 900) == ts("2026-09-30 10:15")
    assert f.next_tick(ts("2026-09-30 10:15"), 900) == ts("2026-09-30 10:30")
    assert f.next_tick(ts("2026-09-30 10:15"), 900, inclusive=True) == ts("2026-09-30 10:15")
    assert f.next_tick(ts("2026-09-30 23:59:59"), 900) == ts("2026-10-01 00:00")


def test_session_windows_from_the_exchange_calendar():
    assert f.session_window(dt.date(2026, 11, 26)) is None  # Thanksgiving
    assert f.session_window(dt.date(2026, 11, 28)) is None  # Saturday
    assert f.session_window(dt.date(2026, 11, 27)) == (ts("2026-11-27 09:30"), ts("2026-11-27 13:15"))  # early close
    assert f.session_window(dt.date(2026, 11, 30)) == (ts("2026-11-30 09:30"), ts("2026-11-30 16:15"))
    assert f.in_session(ts("2026-11-27 13:15")) and not f.in_session(ts("2026-11-27 13:30"))
    assert f.next_in_session(ts("2026-11-25 16:30"), 900) == ts("2026-11-27 09:30")
    assert f.next_in_session(ts("2026-11-27 09:31"), 900) == ts("2026-11-27 09:45")


class FakeClock:
    """A clock that only moves when waited on (or when a cycle takes time)."""

    def __init__(self, start: pd.Timestamp, cycle_seconds: float = 20.0) -> None:
        self.now = start
        self.cycle_seconds = cycle_seconds
        self.waits: list[float] = []
        self.stop_after: int | None = None
        self.cycles: list[pd.Timestamp] = []

    def __call__(self) -> pd.Timestamp:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += pd.Timedelta(seconds=seconds)
        return self.stop_after is not None and len(self.cycles) >= self.stop_after

    def cycle(self, n: int) -> None:
        self.cycles.append(self.now)
        self.now += pd.Timedelta(seconds=self.cycle_seconds)


def test_schedule_runs_only_in_sessions_across_a_holiday_and_an_early_close():
    clock = FakeClock(ts("2026-11-25 15:52"))
    waits: list[pd.Timestamp] = []
    state = f.run_schedule(clock.cycle, every=900, count=6, clock=clock, wait=clock.wait,
                           on_wait=lambda when, reason: waits.append(when))
    assert state.cycles == 6 and state.ended == "count"
    assert clock.cycles == [ts("2026-11-25 15:52"), ts("2026-11-25 16:00"), ts("2026-11-25 16:15"),
                            ts("2026-11-27 09:30"), ts("2026-11-27 09:45"), ts("2026-11-27 10:00")]
    assert waits == [ts("2026-11-27 09:30")]
    assert max(clock.waits) <= 60.0  # long waits in pieces


def test_schedule_until_an_early_close_and_any_time():
    clock = FakeClock(ts("2026-11-27 12:40"))
    state = f.run_schedule(clock.cycle, every=900, until=ts("2026-11-27 16:15"), clock=clock, wait=clock.wait)
    assert state.ended == "until"
    assert clock.cycles == [ts("2026-11-27 12:40"), ts("2026-11-27 12:45"), ts("2026-11-27 13:00"),
                            ts("2026-11-27 13:15")]
    clock = FakeClock(ts("2026-11-26 03:00"))  # Thanksgiving night
    state = f.run_schedule(clock.cycle, every=3600, count=2, any_time=True, clock=clock, wait=clock.wait)
    assert clock.cycles == [ts("2026-11-26 03:00"), ts("2026-11-26 04:00")]


def test_schedule_stops_between_cycles():
    clock = FakeClock(ts("2026-11-30 10:00"))
    clock.stop_after = 2
    state = f.run_schedule(clock.cycle, every=60, count=10, clock=clock, wait=clock.wait)
    assert state.ended == "stopped" and state.cycles == 2


def test_scheduled_fetches_store_increasing_timestamps(server, bodies, tmp_path):
    """The real client and store on a fast schedule: three cycles, three snapshots in time order."""
    store = f.open_store(str(tmp_path / "store"))
    server.script("/SPY.json", *[Reply(200, b) for b in bodies])
    c = client(server)
    outs: list[f.FetchOutcome] = []
    state = f.run_schedule(lambda n: outs.extend(f.fetch_cycle(["SPY"], store, c, cycle=n)), every=1.0, count=3,
                           any_time=True)
    assert state.cycles == 3 and [o.status for o in outs] == ["stored"] * 3
    assert [o.as_of for o in outs] == sorted(o.as_of for o in outs) and len({o.as_of for o in outs}) == 3
    assert state.started == sorted(state.started)
    m = store.read_metrics()
    assert len(m) == 3 and m["quote_time"].is_monotonic_increasing


def test_nothing_connects_beyond_loopback():
    c = f.FeedClient(policy=f.RetryPolicy(attempts=1, timeout=1.0))  # the public endpoint
    with pytest.raises(AssertionError, match=r"only 127\.0\.0\.1 is allowed"):
        with socket.create_connection(("198.51.100.7", 443), timeout=1.0):
            pass
    assert c.url_for("_SPX").startswith("https://cdn.cboe.com/")
