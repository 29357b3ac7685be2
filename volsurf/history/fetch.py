"""Collect snapshots from the Cboe delayed-quotes feed into the Parquet store (``volsurf fetch``).

The feed is one JSON document per symbol, ``<base-url>/<SYMBOL>.json`` (index symbols with a leading
underscore: ``_SPX``, ``_NDX``, ``_VIX``; stocks and ETFs plain: ``SPY``). One *cycle* fetches every symbol once:

1. :class:`FeedClient` downloads the document (timeouts, a User-Agent naming volsurf, retries with exponential
   backoff and jitter on connection errors, 5xx and 429 with ``Retry-After`` honoured; no retry on other 4xx);
2. :func:`read_response` checks it (valid and complete JSON, a non-empty option list, the requested symbol, the
   feed's own ``timestamp``) and loads it with the Cboe JSON loader;
3. the raw response is kept, gzip-compressed and named by symbol and feed timestamp, when a raw folder is given;
4. :func:`fetch_symbol` compares it with the store: an identical response adds nothing (``duplicate``), a
   timestamp older than the last stored snapshot of the symbol is rejected, and the same data as the last
   stored snapshot under a newer timestamp is a ``stale`` market; anything new goes through the store's own
   per-file ingest (:func:`volsurf.history.ingest.ingest_file`: one atomic commit per snapshot).

A bad response never reaches the store: it is reported in one line (:meth:`FetchOutcome.line`) and skipped.
:func:`run_schedule` repeats cycles aligned to the clock (every 15 minutes: :00, :15, :30, :45), during NYSE
sessions only (open to close plus the feed's 15-minute delay; holidays and early closes from the exchange
calendar) unless told otherwise, with an injectable clock and wait for tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import gzip
import hashlib
import http.client
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from volsurf.errors import DataError, InputFileError, ParameterError, VolsurfError
from volsurf.market.calendar import is_session, session_open_close
from volsurf.units import NY

#: The public endpoint's folder: a symbol's feed is ``<DEFAULT_BASE_URL>/<SYMBOL>.json``.
DEFAULT_BASE_URL = "https://cdn.cboe.com/api/global/delayed_quotes/options"

#: The feed's delay: the session's last quotes are published up to this long after the close.
FEED_DELAY = pd.Timedelta(minutes=15)

#: Outcome statuses; a symbol succeeded in a cycle when its status is in :data:`OK_STATUSES`.
STATUSES: tuple[str, ...] = ("stored", "duplicate", "stale", "rejected", "failed")
OK_STATUSES = frozenset({"stored", "duplicate"})

_SYMBOL_RE = re.compile(r"^[_^]?[A-Z0-9][A-Z0-9.\-]{0,14}$")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _user_agent() -> str:
    # the package's version without importing the package's upper layers (the import-linter contract)
    version = getattr(sys.modules.get("volsurf"), "__version__", "unknown")
    return f"volsurf/{version} (volsurf fetch; options volatility-surface analyzer)"


# ---------------------------------------------------------------------------------------------------------
# Symbols
# ---------------------------------------------------------------------------------------------------------


def feed_symbol(text: str) -> str:
    """The feed's spelling of a symbol: upper case, an index's ``^`` prefix written ``_`` (``^spx`` -> ``_SPX``).

    Raises
    ------
    ParameterError
        Not a ticker (letters, digits, ``.`` and ``-``, with an optional ``_``/``^`` prefix).
    """
    s = str(text).strip().upper()
    if not _SYMBOL_RE.match(s):
        raise ParameterError(f"not a symbol: {text!r}",
                             hint="a ticker such as SPY or QQQ; index symbols with a leading underscore: _SPX, _NDX, _VIX")
    return "_" + s[1:] if s.startswith("^") else s


def underlying_of(symbol: str) -> str:
    """The underlying a feed symbol stands for, as the loader and the store name it (``_SPX`` -> ``SPX``)."""
    return str(symbol).strip().lstrip("^_$").upper()


def check_base_url(url: str) -> str:
    """``url`` without its trailing slash, checked to be an ``http(s)://host[/path]`` folder URL."""
    parts = urllib.parse.urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ParameterError(f"not a base URL: {url!r}",
                             hint=f"an http(s) folder such as {DEFAULT_BASE_URL} or http://127.0.0.1:8000")
    return str(url).strip().rstrip("/")


# ---------------------------------------------------------------------------------------------------------
# The HTTP client
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts and retries of one download.

    Attributes
    ----------
    attempts : int
        Tries in all (the first one included).
    timeout : float
        Seconds allowed to connect and for each read from the socket.
    deadline : float
        Seconds allowed for one whole response (a server trickling bytes is cut off).
    backoff, factor, max_delay : float
        The wait before retry ``n`` (1-based) is ``min(max_delay, backoff * factor**(n-1))``...
    jitter : float
        ...times ``1 + jitter * U`` with ``U`` uniform in [0, 1), so that many clients do not retry in step.
    max_retry_after : float
        Longest ``Retry-After`` (seconds) honoured; a server asking for more ends the attempts.
    """

    attempts: int = 4
    timeout: float = 30.0
    deadline: float = 300.0
    backoff: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.5
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ParameterError(f"attempts must be at least 1, got {self.attempts}")
        for name in ("timeout", "deadline"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("backoff", "max_delay", "jitter", "max_retry_after"):
            if not getattr(self, name) >= 0:
                raise ParameterError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.factor < 1:
            raise ParameterError(f"factor must be at least 1, got {self.factor}")

    def delay(self, retry: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): ``retry_after`` when the server gave one,
        else the exponential backoff with jitter."""
        if retry_after is not None:
            return max(0.0, float(retry_after))
        base = min(self.max_delay, self.backoff * self.factor ** (retry - 1))
        u = (rng or random).random()
        return min(self.max_delay, base * (1.0 + self.jitter * u))


class FeedError(DataError):
    """A download or a response that cannot be used (one line, with the URL and the attempts made).

    ``kind`` names the failure: ``http`` (a status), ``connection``, ``timeout``, ``truncated``, ``stopped``,
    or for responses :func:`read_response` rejects ``invalid_json``, ``truncated_json``, ``not_feed``, ``empty``,
    ``wrong_symbol``, ``no_timestamp``, ``load``.
    """

    def __init__(self, message: str, *, kind: str, url: str = "", status: int | None = None,
                 retryable: bool = False, retry_after: float | None = None, attempts: int = 1,
                 hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.kind = kind
        self.url = url
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts


@dataclass(frozen=True)
class FeedResponse:
    """A complete ``200`` response: its URL, body (decompressed), headers, attempts made and seconds taken."""

    url: str
    body: bytes
    headers: dict[str, str]
    attempts: int = 1
    seconds: float = 0.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date); None when absent or
    unreadable."""
    if value is None:
        return None
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class FeedClient:
    """Downloads of the feed with timeouts and retries (standard library ``urllib``).

    Parameters
    ----------
    base_url : str
        The folder of the feed documents (:data:`DEFAULT_BASE_URL`, a mirror, or a local test server).
    policy : RetryPolicy
        Timeouts, attempts and backoff.
    sleep : callable, optional
        ``sleep(seconds)`` between attempts (default :func:`time.sleep`; tests record the waits).
    should_stop : callable, optional
        Checked after each wait: when it returns true the download ends with a ``stopped`` error instead of
        retrying (Ctrl-C in a scheduled run).
    on_retry : callable, optional
        ``on_retry(attempt, error, delay)`` before each wait.
    rng : random.Random, optional
        Source of the jitter.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], object] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_retry: Callable[[int, FeedError, float], None] | None = None,
        rng: random.Random | None = None,
        user_agent: str | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.policy = policy or RetryPolicy()
        self.sleep = sleep if sleep is not None else time.sleep
        self.should_stop = should_stop
        self.on_retry = on_retry
        self.rng = rng if rng is not None else random.Random()
        self.user_agent = user_agent or _user_agent()

    def url_for(self, symbol: str) -> str:
        """``<base-url>/<SYMBOL>.json``."""
        return f"{self.base_url}/{urllib.parse.quote(feed_symbol(symbol))}.json"

    def _opener(self, url: str) -> urllib.request.OpenerDirector:
        host = urllib.parse.urlsplit(url).hostname or ""
        # A loopback server (a local mirror, the tests) is never reached through an environment proxy.
        proxies: dict[str, str] | None = {} if host in _LOOPBACK_HOSTS else None
        return urllib.request.build_opener(urllib.request.ProxyHandler(proxies))

    def _once(self, url: str) -> FeedResponse:
        req = urllib.request.Request(url, headers={
            "User-Agent": self.user_agent,
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
        })
        t0 = time.monotonic()
        try:
            with self._opener(url).open(req, timeout=self.policy.timeout) as resp:
                chunks: list[bytes] = []
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    if time.monotonic() - t0 > self.policy.deadline:
                        raise FeedError(f"the response took longer than {self.policy.deadline:g} s", kind="timeout",
                                        url=url, retryable=True)
                headers = {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                status = int(exc.code)
                retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                retryable = status == 429 or status >= 500
                hint = None
                if status == 404:
                    hint = "index symbols take a leading underscore (_SPX, _NDX, _VIX); stocks and ETFs are plain"
                raise FeedError(f"HTTP {status} {exc.reason}", kind="http", url=url, status=status,
                                retryable=retryable, retry_after=retry_after, hint=hint) from None
        except http.client.IncompleteRead as exc:
            raise FeedError(f"truncated response: the connection closed after {len(exc.partial):,} bytes"
                            f"{f' of {len(exc.partial) + exc.expected:,}' if exc.expected else ''}",
                            kind="truncated", url=url, retryable=True) from None
        except TimeoutError:
            raise FeedError(f"no answer within {self.policy.timeout:g} s (timeout)", kind="timeout", url=url,
                            retryable=True) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise FeedError(f"no answer within {self.policy.timeout:g} s (timeout)", kind="timeout", url=url,
                                retryable=True) from None
            raise FeedError(f"cannot connect: {_reason(exc.reason) if isinstance(exc.reason, BaseException) else exc.reason}",
                            kind="connection", url=url, retryable=True) from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise FeedError(f"connection failed: {_reason(exc)}", kind="connection", url=url, retryable=True) from None
        except OSError as exc:
            raise FeedError(f"connection failed: {_reason(exc)}", kind="connection", url=url, retryable=True) from None
        body = b"".join(chunks)
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and len(body) < int(declared):
            # http.client's chunked read() returns what it got when the connection closes early
            raise FeedError(f"truncated response: the connection closed after {len(body):,} bytes of "
                            f"{int(declared):,}", kind="truncated", url=url, retryable=True)
        if headers.get("content-encoding", "").strip().lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as exc:
                raise FeedError(f"truncated response: the gzip body does not decompress ({_reason(exc)})",
                                kind="truncated", url=url, retryable=True) from None
        return FeedResponse(url, body, headers, 1, time.monotonic() - t0)

    def get(self, url: str) -> FeedResponse:
        """Download ``url`` with the retry policy.

        Raises
        ------
        FeedError
            The last failure, once retries are spent or for a status that is not retried (4xx except 429).
        """
        t0 = time.monotonic()
        for attempt in range(1, self.policy.attempts + 1):
            try:
                resp = self._once(url)
                return FeedResponse(resp.url, resp.body, resp.headers, attempt, time.monotonic() - t0)
            except FeedError as exc:
                exc.attempts = attempt
                if not exc.retryable or attempt == self.policy.attempts:
                    if exc.retryable and attempt > 1:
                        exc.message = f"{exc.message} (after {attempt} attempts)"
                    raise
                if exc.retry_after is not None and exc.retry_after > self.policy.max_retry_after:
                    exc.message = (f"{exc.message}: the server asks to retry after {exc.retry_after:g} s, more than "
                                   f"{self.policy.max_retry_after:g} s")
                    raise
                wait = self.policy.delay(attempt, exc.retry_after, self.rng)
                if self.on_retry is not None:
                    self.on_retry(attempt, exc, wait)
                self.sleep(wait)
                if self.should_stop is not None and self.should_stop():
                    raise FeedError(f"stopped before retrying ({exc.message})", kind="stopped", url=url,
                                    attempts=attempt) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch(self, symbol: str) -> FeedResponse:
        """Download the feed document of ``symbol``."""
        return self.get(self.url_for(symbol))


# ---------------------------------------------------------------------------------------------------------
# Reading a response
# ---------------------------------------------------------------------------------------------------------


def _json_error(text: str, exc: json.JSONDecodeError, url: str) -> FeedError:
    end = len(text.rstrip())
    if exc.pos >= end - 1 or exc.msg.startswith("Unterminated"):
        return FeedError(f"truncated JSON: the document ends after {len(text.encode()):,} bytes "
                         f"({exc.msg}: line {exc.lineno}, column {exc.colno})", kind="truncated_json", url=url)
    return FeedError(f"invalid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno})", kind="invalid_json",
                     url=url)


def check_payload(symbol: str, body: bytes, url: str = "") -> dict[str, Any]:
    """The parsed feed document, checked before any loading: complete JSON, the envelope with a non-empty
    ``data.options`` list, the requested symbol and a ``timestamp``.

    Raises
    ------
    FeedError
        One of ``invalid_json``, ``truncated_json``, ``not_feed``, ``empty``, ``wrong_symbol``, ``no_timestamp``.
    """
    if not body.strip():
        raise FeedError("empty response body", kind="empty", url=url)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"the response is not UTF-8 text (byte {exc.start})", kind="invalid_json", url=url) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc, url) from None
    data = obj.get("data") if isinstance(obj, dict) else None
    payload = data if isinstance(data, dict) else obj if isinstance(obj, dict) else None
    if payload is None or "options" not in payload:
        raise FeedError("not the Cboe delayed-quotes document (no data.options list)", kind="not_feed", url=url)
    options = payload.get("options")
    if not isinstance(options, list):
        raise FeedError("not the Cboe delayed-quotes document (data.options is not a list)", kind="not_feed", url=url)
    if not options:
        raise FeedError("empty option list (data.options holds no contract)", kind="empty", url=url)
    want = underlying_of(symbol)
    named = (obj.get("symbol") if isinstance(data, dict) else None) or payload.get("symbol")
    if not named:
        raise FeedError("the response names no symbol", kind="wrong_symbol", url=url)
    if underlying_of(str(named)) != want:
        raise FeedError(f"response for {named}, not {feed_symbol(symbol)}", kind="wrong_symbol", url=url)
    if not isinstance(data, dict) or not obj.get("timestamp"):
        raise FeedError("no timestamp (the older payload without the envelope): the snapshot cannot be dated",
                        kind="no_timestamp", url=url)
    return obj


def read_response(symbol: str, body: bytes, url: str = "", *, workdir: str | None = None) -> tuple[Any, str]:
    """Check a feed response (:func:`check_payload`) and load it with the Cboe JSON loader.

    The body is written to ``workdir`` (a temporary folder by default, which the caller removes) under
    ``<SYMBOL>_<sha256 prefix>.json`` and loaded from there, so the store's file-based ingest can take the same
    file.

    Returns
    -------
    (Snapshot, str)
        The loaded snapshot and the path of the file it was loaded from.

    Raises
    ------
    FeedError
        Checks that fail, and ``load`` for what the loader rejects (its one-line reason, with the URL in place
        of the temporary file).
    """
    import warnings

    from volsurf.io import load

    check_payload(symbol, body, url)
    folder = workdir or tempfile.mkdtemp(prefix="volsurf-fetch-")
    path = os.path.join(folder, f"{feed_symbol(symbol)}_{hashlib.sha256(body).hexdigest()[:16]}.json")
    with open(path, "wb") as fh:
        fh.write(body)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snap = load(path)
    except VolsurfError as exc:
        raise FeedError(exc.one_line().replace(path, url or "the response"), kind="load", url=url) from None
    if snap.meta.underlying != underlying_of(symbol):
        raise FeedError(f"response for {snap.meta.underlying}, not {feed_symbol(symbol)}", kind="wrong_symbol",
                        url=url)
    return snap, path


def raw_name(symbol: str, as_of: pd.Timestamp) -> str:
    """File name of a kept raw response: ``<SYMBOL>_<feed timestamp, UTC, YYYYMMDDTHHMMSSZ>.json.gz``."""
    utc = pd.Timestamp(as_of).tz_convert("UTC")
    return f"{feed_symbol(symbol)}_{utc.strftime('%Y%m%dT%H%M%SZ')}.json.gz"


def keep_raw(raw_dir: str, symbol: str, as_of: pd.Timestamp, body: bytes) -> str:
    """Write the response gzip-compressed into ``raw_dir`` (atomically; an existing file of the same name, the
    same symbol and feed timestamp, is left as it is). Returns its path."""
    os.makedirs(raw_dir, exist_ok=True)
    path = os.path.join(raw_dir, raw_name(symbol, as_of))
    if os.path.exists(path):
        return path
    tmp = os.path.join(raw_dir, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(gzip.compress(body, mtime=0))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return path


# ---------------------------------------------------------------------------------------------------------
# One symbol, one cycle
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchOutcome:
    """What one cycle did with one symbol.

    ``status`` is ``stored`` (committed now), ``duplicate`` (the same response is already stored: nothing
    added), ``stale`` (the same data as the last stored snapshot under a newer timestamp), ``rejected`` (a bad
    response: invalid or truncated JSON, no option, another symbol, no timestamp, older than the last stored
    snapshot) or ``failed`` (the download failed, or the store's ingest did).
    """

    symbol: str
    status: str
    url: str
    as_of: pd.Timestamp | None = None
    contracts: int | None = None
    snapshot_id: str | None = None
    reason: str | None = None
    attempts: int = 0
    raw_path: str | None = None
    seconds: float = 0.0
    cycle: int = 1

    @property
    def ok(self) -> bool:
        """True for ``stored`` and ``duplicate``."""
        return self.status in OK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "cycle": self.cycle,
            "symbol": self.symbol,
            "status": self.status,
            "as_of": self.as_of.isoformat() if self.as_of is not None else None,
            "contracts": self.contracts,
            "snapshot_id": self.snapshot_id,
            "reason": self.reason,
            "attempts": self.attempts,
            "raw_path": self.raw_path,
            "url": self.url,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        """The one-line report: symbol, as-of time, contracts, and stored / duplicate / why it was skipped."""
        parts = [self.symbol]
        if self.as_of is not None:
            parts.append(f"as of {self.as_of.tz_convert(NY).strftime('%Y-%m-%d %H:%M:%S %Z')}")
        if self.contracts is not None:
            parts.append(f"{self.contracts:,} contracts")
        if self.status == "stored":
            parts.append(f"stored {self.snapshot_id}")
        elif self.status == "duplicate":
            parts.append(f"duplicate ({self.reason})" if self.reason else "duplicate")
        else:
            parts.append(f"{self.status}: {self.reason}")
        return "  ".join(parts)


@dataclass(frozen=True)
class _Last:
    snapshot_id: str
    quote_time: pd.Timestamp


def _stored_times(store: Any, underlying: str) -> dict[str, pd.Timestamp]:
    """snapshot_id -> quote time of the stored snapshots of ``underlying``."""
    df = store.read_metrics(underlying=underlying, columns=["snapshot_id", "quote_time"])
    if df.empty:
        return {}
    return {str(s): pd.Timestamp(q) for s, q in zip(df["snapshot_id"], df["quote_time"], strict=True)}


def fetch_symbol(
    symbol: str,
    store: Any,
    client: FeedClient,
    *,
    raw_dir: str | None = None,
    cycle: int = 1,
) -> FetchOutcome:
    """Fetch one symbol's feed, check it and ingest it into ``store`` (one cycle for one symbol).

    Parameters
    ----------
    symbol : str
        The feed symbol (``_SPX``, ``SPY``...).
    store : volsurf.history.store.Store
        The open store.
    client : FeedClient
        The HTTP client (base URL, retry policy).
    raw_dir : str, optional
        Keep the raw response there (gzip, named by symbol and feed timestamp).
    cycle : int
        The cycle number, recorded in the outcome.

    Returns
    -------
    FetchOutcome
        Never raises for a bad response or a failed download: the outcome says what happened.
    """
    from volsurf.history.ingest import ingest_file
    from volsurf.history.store import content_hash, snapshot_id

    t0 = time.monotonic()
    sym = feed_symbol(symbol)
    url = client.url_for(sym)

    def out(status: str, **kw: Any) -> FetchOutcome:
        return FetchOutcome(sym, status, url, seconds=time.monotonic() - t0, cycle=cycle, **kw)

    try:
        resp = client.get(url)
    except FeedError as exc:
        return out("failed", reason=exc.one_line(), attempts=exc.attempts)
    with tempfile.TemporaryDirectory(prefix="volsurf-fetch-") as work:
        try:
            snap, path = read_response(sym, resp.body, url, workdir=work)
        except FeedError as exc:
            return out("rejected", reason=exc.one_line(), attempts=resp.attempts)
        as_of = pd.Timestamp(snap.meta.quote_time)
        n = len(snap.frame)
        raw_path = keep_raw(raw_dir, sym, as_of, resp.body) if raw_dir is not None else None
        info = {"as_of": as_of, "contracts": n, "attempts": resp.attempts, "raw_path": raw_path}
        sid = snapshot_id(content_hash(snap))
        stored = _stored_times(store, underlying_of(sym))
        last = max((_Last(s, q) for s, q in stored.items()), key=lambda x: (x.quote_time, x.snapshot_id), default=None)
        if sid in stored and stored[sid] == as_of:
            return out("duplicate", snapshot_id=sid, reason="already in the store", **info)
        if last is not None and as_of < last.quote_time:
            when = last.quote_time.tz_convert(NY).strftime("%Y-%m-%d %H:%M:%S %Z")
            return out("rejected", snapshot_id=sid, reason=f"timestamp older than the last stored snapshot ({when})",
                       **info)
        if sid in stored:
            when = stored[sid].tz_convert(NY).strftime("%Y-%m-%d %H:%M:%S %Z")
            if last is not None and sid == last.snapshot_id:
                return out("stale", snapshot_id=sid,
                           reason=f"the same data as the last stored snapshot ({when}): the market has not moved",
                           **info)
            return out("duplicate", snapshot_id=sid, reason=f"the same data as the stored snapshot of {when}", **info)
        store_url = store.root if store.local else store.url
        results = ingest_file(path, store_url, hashlib.sha256(resp.body).hexdigest())
    res = results[0] if results else None
    if res is None or res.status == "failed":
        return out("failed", snapshot_id=sid, reason=f"ingest failed: {res.reason if res else 'no snapshot'}", **info)
    if res.status == "present":
        return out("duplicate", snapshot_id=res.snapshot_id, reason="already in the store", **info)
    # the store's metrics index is a cache of the metrics rows (readers then open one file, not one per snapshot);
    # the snapshot is committed whether or not the cache is brought up to date
    with contextlib.suppress(OSError, ValueError):
        store.update_index([row] if (row := getattr(res, "metrics_row", None)) is not None else [])
    return out("stored", snapshot_id=res.snapshot_id, **info)


def fetch_cycle(
    symbols: Sequence[str],
    store: Any,
    client: FeedClient,
    *,
    raw_dir: str | None = None,
    cycle: int = 1,
    on_outcome: Callable[[FetchOutcome], None] | None = None,
) -> list[FetchOutcome]:
    """One cycle: :func:`fetch_symbol` for every symbol in turn (``on_outcome`` gets each as it is done).

    An unexpected error for one symbol (a bug) is reported as ``failed`` and the cycle goes on.
    """
    outs: list[FetchOutcome] = []
    for sym in symbols:
        try:
            o = fetch_symbol(sym, store, client, raw_dir=raw_dir, cycle=cycle)
        except Exception as exc:  # one symbol's failure never ends a long-running collection
            o = FetchOutcome(feed_symbol(sym), "failed", client.url_for(sym), reason=f"internal error: {_reason(exc)}",
                             cycle=cycle)
        outs.append(o)
        if on_outcome is not None:
            on_outcome(o)
    return outs


def open_store(store_url: str) -> Any:
    """The store at ``store_url``, created when absent (temporary files of killed runs on this host removed)."""
    from volsurf.history.store import Store

    try:
        store = Store.open(store_url, create=True)
        store.clean_temporary()
    except OSError as exc:
        raise InputFileError(str(store_url), f"cannot open or create the store ({exc.strerror or _reason(exc)})",
                             hint="give a directory that can be created or an existing store") from None
    return store


def prepare_raw_dir(raw_dir: str) -> str:
    """Create the folder of raw responses (a one-line error when it cannot be)."""
    try:
        os.makedirs(raw_dir, exist_ok=True)
    except OSError as exc:
        raise InputFileError(str(raw_dir), f"cannot create the folder of raw responses ({exc.strerror or _reason(exc)})",
                             hint="give a writable directory") from None
    return raw_dir


def fetch(
    symbols: Sequence[str],
    store_url: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    raw_dir: str | None = None,
    policy: RetryPolicy | None = None,
) -> list[FetchOutcome]:
    """Fetch every symbol once into the store at ``store_url`` (the Python API of a one-shot ``volsurf fetch``).

    Parameters
    ----------
    symbols : sequence of str
        Feed symbols (``_SPX``, ``SPY``...).
    store_url : str
        The store (a directory or an fsspec URL), created when absent.
    base_url : str
        The feed folder (:data:`DEFAULT_BASE_URL`, a mirror or a local server).
    raw_dir : str, optional
        Keep the raw responses there.
    policy : RetryPolicy, optional
        Timeouts and retries.

    Returns
    -------
    list of FetchOutcome
        One per symbol.
    """
    syms = [feed_symbol(s) for s in symbols]
    store = open_store(store_url)
    return fetch_cycle(syms, store, FeedClient(base_url, policy),
                       raw_dir=prepare_raw_dir(raw_dir) if raw_dir is not None else None)


# ---------------------------------------------------------------------------------------------------------
# Scheduling
# ---------------------------------------------------------------------------------------------------------

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_interval(text: str) -> float:
    """Seconds of an interval written ``30s``, ``15m``, ``1h`` (1 second to 1 day)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)\s*", str(text).lower())
    if not m:
        raise ParameterError(f"cannot read the interval {text!r}", hint="a number and a unit: 30s, 15m, 1h")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not 1 <= seconds <= 86400:
        raise ParameterError(f"interval {text!r} is out of range", hint="between 1s and 24h")
    return seconds


def parse_until(text: str, now: pd.Timestamp) -> pd.Timestamp:
    """The end of a scheduled run: ``HH:MM`` (New York time: the next such time, today or tomorrow) or a date
    and time (New York unless a zone is given)."""
    now = _ny(now)
    s = str(text).strip()
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", s)
    if m:
        h, mi, se = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 23 or mi > 59 or se > 59:
            raise ParameterError(f"cannot read the time {text!r}", hint="HH:MM in New York time, e.g. 16:15")

        def at(day: dt.date) -> pd.Timestamp:
            wall = pd.Timestamp(day) + pd.Timedelta(hours=h, minutes=mi, seconds=se)
            return pd.Timestamp(wall.tz_localize(NY, ambiguous=True, nonexistent="shift_forward"))

        t = at(now.date())
        if t <= now:
            t = at(now.date() + dt.timedelta(days=1))
        return t
    try:
        return _ny(pd.Timestamp(s))
    except ValueError:
        raise ParameterError(f"cannot read the time {text!r}",
                             hint="HH:MM (New York time) or a date and time such as '2026-09-30 16:15'") from None


def _ny(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize(NY) if ts.tzinfo is None else ts.tz_convert(NY)


def next_tick(now: pd.Timestamp, every: float, *, inclusive: bool = False) -> pd.Timestamp:
    """The next time aligned to ``every`` seconds from New York midnight (15 minutes: :00, :15, :30, :45).

    ``inclusive`` returns ``now`` itself when it is on a tick.
    """
    now = _ny(now)
    midnight = _ny(pd.Timestamp(now.date()))
    elapsed = (now - midnight).total_seconds()
    k = math.ceil(elapsed / every) if inclusive else math.floor(elapsed / every) + 1
    t = midnight + pd.Timedelta(seconds=k * every)
    next_midnight = _ny(pd.Timestamp(now.date() + dt.timedelta(days=1)))
    return min(t, next_midnight)


def session_window(day: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """When the feed moves on NYSE session ``day``: from the open to the close (early closes included) plus
    :data:`FEED_DELAY`; None on weekends and holidays."""
    d = pd.Timestamp(day).date()
    if not is_session(d):
        return None
    open_, close = session_open_close(d)
    return open_, close + FEED_DELAY


def in_session(t: pd.Timestamp) -> bool:
    """True when ``t`` falls in a :func:`session_window`."""
    t = _ny(t)
    w = session_window(t.date())
    return w is not None and w[0] <= t <= w[1]


def next_in_session(t: pd.Timestamp, every: float) -> pd.Timestamp:
    """The first tick (aligned to ``every``) at or after ``t`` that falls in a session window."""
    t = _ny(t)
    day = t.date()
    for i in range(30):
        w = session_window(day + dt.timedelta(days=i))
        if w is None or w[1] < t:
            continue
        cand = next_tick(max(t, w[0]), every, inclusive=True)
        if cand <= w[1]:
            return cand
    raise DataError(f"no NYSE session within 30 days of {t}")  # pragma: no cover - the calendar has sessions


@dataclass
class ScheduleState:
    """What :func:`run_schedule` did: cycles run and why it ended (``count``, ``until``, ``stopped``)."""

    cycles: int = 0
    ended: str = ""
    started: list[pd.Timestamp] = field(default_factory=list)


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz=NY)


def run_schedule(
    cycle: Callable[[int], object],
    *,
    every: float,
    until: pd.Timestamp | None = None,
    count: int | None = None,
    any_time: bool = False,
    clock: Callable[[], pd.Timestamp] = _now,
    wait: Callable[[float], bool] | None = None,
    on_wait: Callable[[pd.Timestamp, str], None] | None = None,
) -> ScheduleState:
    """Run ``cycle(n)`` (n = 1, 2, ...) on a schedule.

    The first cycle runs at once (at the first session tick when started outside a session); the next ones on
    the ticks of ``every`` seconds aligned to the clock (:func:`next_tick`). Without ``any_time`` only ticks in
    a NYSE session window count (:func:`session_window`); the wait across nights, weekends and holidays is
    announced through ``on_wait(time, reason)``.

    Parameters
    ----------
    cycle : callable
        Runs one cycle.
    every : float
        Seconds between ticks.
    until : Timestamp, optional
        No cycle starts after it.
    count : int, optional
        Stop after this many cycles.
    any_time : bool
        Ignore the exchange calendar.
    clock : callable
        The current time (tz-aware); tests inject a fake one.
    wait : callable
        ``wait(seconds) -> stop requested`` (default: :func:`time.sleep`, never stopped); waits are cut in
        pieces of at most a minute, so the clock is read again after a suspend.
    on_wait : callable, optional
        Told of waits for the next session.

    Returns
    -------
    ScheduleState
        Cycles run and why the run ended.
    """
    if count is not None and count < 1:
        raise ParameterError(f"count must be at least 1, got {count}")

    def _sleep(seconds: float) -> bool:
        time.sleep(seconds)
        return False

    do_wait = wait or _sleep
    state = ScheduleState()
    first = True
    while True:
        if count is not None and state.cycles >= count:
            state.ended = "count"
            return state
        now = _ny(clock())
        due = now if first else next_tick(now, every)
        if not any_time and not in_session(due):
            due = next_in_session(due, every)
            if until is None or due <= until:
                if on_wait is not None:
                    on_wait(due, "waiting for the NYSE session")
        if until is not None and due > until:
            state.ended = "until"
            return state
        while True:
            remaining = (due - _ny(clock())).total_seconds()
            if remaining <= 0:
                break
            if do_wait(min(remaining, 60.0)):
                state.ended = "stopped"
                return state
        if do_wait(0):  # a stop asked for during the last cycle, when the next one is already due
            state.ended = "stopped"
            return state
        state.cycles += 1
        state.started.append(_ny(clock()))
        cycle(state.cycles)
        first = False


__all__ = [
    "DEFAULT_BASE_URL",
    "FEED_DELAY",
    "OK_STATUSES",
    "STATUSES",
    "FeedClient",
    "FeedError",
    "FeedResponse",
    "FetchOutcome",
    "RetryPolicy",
    "ScheduleState",
    "check_base_url",
    "check_payload",
    "feed_symbol",
    "fetch",
    "fetch_cycle",
    "fetch_symbol",
    "in_session",
    "keep_raw",
    "next_in_session",
    "next_tick",
    "open_store",
    "parse_interval",
    "parse_retry_after",
    "parse_until",
    "prepare_raw_dir",
    "raw_name",
    "read_response",
    "run_schedule",
    "session_window",
    "underlying_of",
]
