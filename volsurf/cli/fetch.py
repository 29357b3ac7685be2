"""``volsurf fetch``: snapshots from the Cboe delayed-quotes feed into the Parquet store, once or on a schedule."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import click

from volsurf.cli.common import emit, format_option, output_option

OUTCOME_COLUMNS = ["cycle", "symbol", "status", "as_of", "contracts", "snapshot_id", "reason", "attempts", "raw_path",
                   "seconds"]


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, in_cycle: threading.Event) -> Iterator[None]:
    """Ctrl-C (SIGINT) or SIGTERM asks the schedule to stop between cycles; a second Ctrl-C quits at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        if in_cycle.is_set():
            click.echo("stopping after this cycle (Ctrl-C again to quit at once)", err=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@click.command("fetch")
@click.argument("symbols", nargs=-1, required=True)
@click.option("--store", "store_url", required=True,
              help="The store: a directory (created when absent) or an fsspec URL, as for `volsurf ingest`.")
@click.option("--raw-dir", type=click.Path(file_okay=False), default=None,
              help="Keep every readable response there, gzip-compressed: <SYMBOL>_<feed timestamp UTC>.json.gz.")
@click.option("--base-url", default=None, metavar="URL",
              help="Folder of the feed documents (<URL>/<SYMBOL>.json): a mirror or a local server "
                   "[default: https://cdn.cboe.com/api/global/delayed_quotes/options].")
@click.option("--every", default=None, metavar="INTERVAL",
              help="Repeat every INTERVAL (30s, 15m, 1h) aligned to the clock, during NYSE sessions only (open to "
                   "close plus the feed's 15-minute delay; holidays and early closes from the exchange calendar).")
@click.option("--until", default=None, metavar="TIME",
              help="With --every: start no cycle after TIME (HH:MM New York time, the next one; or a date and time).")
@click.option("--count", type=click.IntRange(1, None), default=None, help="With --every: stop after N cycles.")
@click.option("--any-time", is_flag=True, help="With --every: run outside NYSE sessions too.")
@click.option("--timeout", type=click.FloatRange(0.01, None, min_open=False), default=30.0, show_default=True,
              help="Seconds to connect and for each read.")
@click.option("--retries", type=click.IntRange(0, 20), default=3, show_default=True,
              help="Retries after a connection error, a timeout, 5xx or 429 (never after other 4xx).")
@click.option("--backoff", type=click.FloatRange(0, None), default=1.0, show_default=True,
              help="First wait before a retry in seconds (doubled each time, with jitter; Retry-After honoured).")
@format_option()
@output_option("With --format json/csv: write the outcomes to this file instead of stdout.")
def fetch_cmd(symbols: tuple[str, ...], store_url: str, raw_dir: str | None, base_url: str | None,
              every: str | None, until: str | None, count: int | None, any_time: bool, timeout: float,
              retries: int, backoff: float, fmt: str, output: str | None) -> None:
    """Download the Cboe delayed-quotes feed of each SYMBOL (index symbols with a leading underscore: _SPX,
    _NDX, _VIX; stocks and ETFs plain: SPY, QQQ), check it and ingest it into the store that `volsurf ingest`
    writes (same identity: a response already stored adds nothing).

    Bad responses never reach the store: invalid or truncated JSON, an empty option list, a response for
    another symbol or without timestamp, a timestamp older than the last stored snapshot of the symbol, or a
    stale market (the same data as last time) are reported in one line each and skipped.

    Each cycle prints one line per symbol: as-of time, contracts, stored / duplicate or why it was skipped.
    Exit status 0 when every symbol was stored or a duplicate in every cycle, 1 otherwise. Ctrl-C (or
    SIGTERM) stops a scheduled run between cycles.

    \b
    Example:
      volsurf fetch _SPX SPY --store history.store --raw-dir raw/
      volsurf fetch _SPX --store history.store --every 15m --until 16:15
      volsurf fetch _SPX --base-url http://127.0.0.1:8000 --store history.store --every 30s --count 3 --any-time
    """
    from volsurf.errors import ParameterError
    from volsurf.history import fetch as f

    syms = list(dict.fromkeys(f.feed_symbol(s) for s in symbols))
    base = f.check_base_url(base_url) if base_url is not None else f.DEFAULT_BASE_URL
    if every is None and (until is not None or count is not None or any_time):
        raise ParameterError("--until, --count and --any-time go with --every", hint="e.g. --every 15m --count 4")
    interval = f.parse_interval(every) if every is not None else None
    end = f.parse_until(until, f.now_ny()) if until is not None else None
    policy = f.RetryPolicy(attempts=retries + 1, timeout=timeout, backoff=backoff,
                           max_delay=max(60.0, backoff))
    log_err = fmt != "table"  # json/csv: stdout holds the records, the per-cycle lines go to stderr
    stop = threading.Event()
    in_cycle = threading.Event()

    def on_retry(attempt: int, exc: f.FeedError, delay: float) -> None:
        sym = exc.url.rsplit("/", 1)[-1].removesuffix(".json")
        click.echo(f"{f.now_ny():%Y-%m-%d %H:%M:%S %Z}  {sym}  retry {attempt}/{retries} in {delay:.1f} s: "
                   f"{exc.one_line()}", err=True)

    client = f.FeedClient(base, policy, sleep=stop.wait if interval is not None else None,
                          should_stop=stop.is_set, on_retry=on_retry)
    if raw_dir is not None:
        f.prepare_raw_dir(raw_dir)
    store = f.open_store(store_url)
    outcomes: list[f.FetchOutcome] = []

    def show(o: f.FetchOutcome) -> None:
        outcomes.append(o)
        click.echo(f"{f.now_ny():%Y-%m-%d %H:%M:%S %Z}  {o.line()}", err=log_err or not o.ok)

    def cycle(n: int) -> None:
        in_cycle.set()
        try:
            f.fetch_cycle(syms, store, client, raw_dir=raw_dir, cycle=n, on_outcome=show)
        finally:
            in_cycle.clear()

    if interval is None:
        cycle(1)
    else:
        def on_wait(when: Any, reason: str) -> None:
            click.echo(f"{f.now_ny():%Y-%m-%d %H:%M:%S %Z}  {reason}: next cycle {when:%Y-%m-%d %H:%M %Z}", err=True)

        with _stop_on_signals(stop, in_cycle):
            state = f.run_schedule(cycle, every=interval, until=end, count=count, any_time=any_time,
                                   wait=stop.wait, on_wait=on_wait)
        if state.ended == "stopped":
            click.echo(f"stopped after {state.cycles} cycle{'s' if state.cycles != 1 else ''}", err=True)
        elif state.ended == "until":
            click.echo(f"reached --until after {state.cycles} cycle{'s' if state.cycles != 1 else ''}", err=True)
    if fmt != "table":
        records = [o.to_dict() for o in outcomes]
        emit(fmt, json_obj={"store": store_url, "ok": all(o.ok for o in outcomes), "outcomes": records},
             records=records, columns=OUTCOME_COLUMNS, output=output)
    if not all(o.ok for o in outcomes):
        sys.exit(1)
