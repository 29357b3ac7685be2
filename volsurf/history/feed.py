"""The Cboe delayed-quotes feed: symbols, the HTTP client with its retry policy, and response checks.

:class:`FeedClient` downloads ``<base-url>/<SYMBOL>.json`` (timeouts, a User-Agent naming volsurf, retries with
exponential backoff and jitter on connection errors, 5xx and 429 with ``Retry-After`` honoured; no retry on
other 4xx); :func:`read_response` checks a document (valid and complete JSON, a non-empty option list, the
requested symbol, the feed's own ``timestamp``) and loads it with the Cboe JSON loader; :func:`keep_raw` keeps
the raw response gzip-compressed. Used by :mod:`volsurf.history.fetch`.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import hashlib
import http.client
import json
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from volsurf.errors import DataError, ParameterError, VolsurfError

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
