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
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from volsurf.errors import InputFileError
from volsurf.history.feed import (
    DEFAULT_BASE_URL,
    FEED_DELAY,
    OK_STATUSES,
    STATUSES,
    FeedClient,
    FeedError,
    FeedResponse,
    RetryPolicy,
    _reason,
    check_base_url,
    check_payload,
    feed_symbol,
    keep_raw,
    parse_retry_after,
    raw_name,
    read_response,
    underlying_of,
)
from volsurf.history.schedule import (
    ScheduleState,
    in_session,
    next_in_session,
    next_tick,
    now_ny,
    parse_interval,
    parse_until,
    run_schedule,
    session_window,
)
from volsurf.units import NY

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
    "now_ny",
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
