"""A scripted stand-in for the Cboe delayed-quotes CDN on 127.0.0.1 (tests of ``volsurf fetch``), and feed
envelopes built from Cboe CSV exports.

``FeedServer`` serves, per path, a queue of :class:`Reply` objects (the last one repeats): a status, a body,
headers, a stall before answering, a body cut short of its Content-Length, gzip encoding. Nothing here opens a
connection beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0  # seconds to wait before answering (ended early when the server closes)
    cut_to: int | None = None  # send only this many body bytes (Content-Length says the whole), then close
    gzip: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads: nothing left running after a test

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients that gave up: expected
        pass


class FeedServer:
    """HTTP server on 127.0.0.1 (a free port) answering GET requests from per-path scripts."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                reply = owner._next(self.path, dict(self.headers.items()))
                if reply.stall:
                    owner.release.wait(reply.stall)
                body = gzip.compress(reply.body) if reply.gzip else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if reply.gzip:
                    self.send_header("Content-Encoding", "gzip")
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                self.wfile.write(body if reply.cut_to is None else body[: reply.cut_to])
                self.wfile.flush()

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, path: str, *replies: Reply) -> None:
        """Queue ``replies`` for ``path`` (``/SPY.json``); the last one repeats."""
        with self.lock:
            self.scripts[path] = list(replies)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def _next(self, path: str, headers: dict[str, str]) -> Reply:
        with self.lock:
            self.requests.append((path, headers))
            queue = self.scripts.get(path)
            if not queue:
                return Reply(404, b'{"error": "not found"}')
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection beyond 127.0.0.1 fails the test (imported into the fetch test modules)."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in LOOPBACK and self.family in (socket.AF_INET, socket.AF_INET6):
            self.close()  # the caller never gets it back
            raise AssertionError(f"a test tried to connect to {address!r}: only 127.0.0.1 is allowed")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@contextlib.contextmanager
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def envelope(path: str | Path, symbol: str, timestamp: str, *, shift: float = 0.0, wire_symbol: str | None = None,
             limit: int | None = None, expiries: int | None = None) -> bytes:
    """The current Cboe feed envelope of a chain file (any format volsurf loads, e.g. a Cboe CSV export):
    ``timestamp`` (UTC, ``YYYY-MM-DD HH:MM:SS``), ``symbol``, ``data.current_price`` and one option object per
    contract. ``shift`` moves every non-zero bid and ask (another market state), ``wire_symbol`` names another
    symbol in the payload, ``limit`` keeps the first contracts only, ``expiries`` the first expiry dates only."""
    from volsurf.io import load

    snap = load(str(path))
    f = snap.frame if limit is None else snap.frame.iloc[:limit]
    if expiries is not None:
        f = f[f["expiry_date"].isin(sorted(f["expiry_date"].unique())[:expiries])]
    options = []
    for r in f.itertuples(index=False):
        bid, ask = _num(r.bid), _num(r.ask)
        options.append({
            "option": r.contract,
            "bid": bid + shift if bid else bid,
            "bid_size": 10.0,
            "ask": ask + shift if ask else ask,
            "ask_size": 10.0,
            "iv": _num(r.vendor_iv) or 0.0,
            "open_interest": _num(r.open_interest),
            "volume": _num(r.volume),
            "delta": _num(r.vendor_delta),
            "gamma": _num(r.vendor_gamma),
            "last_trade_price": _num(r.last),
            "last_trade_time": None,
        })
    obj = {
        "timestamp": pd.Timestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S"),
        "data": {
            "options": options,
            "symbol": wire_symbol or symbol,
            "current_price": float(snap.meta.spot),
            "close": float(snap.meta.spot),
        },
        "symbol": wire_symbol or symbol,
    }
    return json.dumps(obj).encode()
