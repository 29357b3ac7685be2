"""Cboe delayed-quotes JSON feed (``cdn.cboe.com/api/global/delayed_quotes/options/<SYMBOL>.json``).

Two layouts, told apart by content:

- the current envelope: ``{"timestamp": "YYYY-MM-DD HH:MM:SS" (UTC), "symbol", "data": {"current_price", ...,
  "options": [{"option": OCC symbol, "bid", "bid_size", "ask", "ask_size", "iv" (decimal, 0 = missing),
  "open_interest", "volume", "delta", "gamma", ..., "last_trade_price", "last_trade_time"}, ...]}}``;
- the older payload (the ``data`` object alone, as many GEX scripts saved it): no ``timestamp`` and no per-option
  bid/ask. Its as-of time must be given (``as_of``, ``--as-of``); volsurf keeps the vendor's IV, greeks, open
  interest and volume, but cannot compute IVs, a surface or quote-based figures from it (every row is flagged
  ``zero_bid;no_ask``).

Index chains mix roots (SPX and SPXW); the root comes from each OCC symbol, the underlying from ``symbol``
without its ``^``/``_`` prefix.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import DataQualityWarning, FormatError, warn
from volsurf.io.common import _finalize, parse_occ_symbols
from volsurf.market.snapshot import Snapshot
from volsurf.units import NY

#: What the older payload (no bid/ask) does not allow, for reports ("Signals absent").
NO_QUOTES_REASON = "the Cboe JSON payload has no per-option bid/ask (older layout): nothing can be computed from quotes"


def parse_json(path: str, text: str) -> Any:
    """``json.loads`` with a :class:`FormatError` naming the line and column of a syntax error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"invalid JSON ({exc.msg}, column {exc.colno})", line=exc.lineno,
                          expected="a complete JSON document as the feed sends it") from exc


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, copy=True)


def _load_cboe_json(path: str, text: str, lines: list[str], *, as_of: pd.Timestamp | None = None, **_: object) -> Snapshot:
    obj = parse_json(path, text)
    if not isinstance(obj, dict):
        raise FormatError(path, "the JSON document is not an object", line=1, expected="the Cboe delayed-quotes payload")
    envelope = isinstance(obj.get("data"), dict)
    data = obj["data"] if envelope else obj
    options = data.get("options")
    if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
        raise FormatError(path, "no 'options' list of contracts", line=1, column="data.options", expected="a list of option objects")
    if not options:
        raise FormatError(path, "the 'options' list is empty", line=1, column="data.options", expected="at least one option")
    spot = data.get("current_price", data.get("close"))
    if not isinstance(spot, int | float) or not np.isfinite(spot) or spot <= 0:
        raise FormatError(path, f"cannot read the underlying price {spot!r}", line=1, column="data.current_price", expected="a positive number")
    notes: list[str] = []
    stamp = obj.get("timestamp") if envelope else None
    if stamp is not None:
        try:
            quote_time = pd.Timestamp(stamp)
        except ValueError as exc:
            raise FormatError(path, f"cannot read the timestamp {stamp!r}", line=1, column="timestamp", expected="'YYYY-MM-DD HH:MM:SS' (UTC)") from exc
        quote_time = (quote_time.tz_localize("UTC") if quote_time.tzinfo is None else quote_time).tz_convert(NY)
    elif as_of is not None:
        quote_time = as_of
        notes.append(f"as-of time {as_of} from --as-of (this payload carries none)")
    else:
        raise FormatError(
            path, "this Cboe JSON payload carries no as-of time (no 'timestamp')", line=1, column="timestamp",
            expected="the envelope with 'timestamp'", hint="give the time the file was downloaded with --as-of",
        )

    df = pd.DataFrame.from_records(options)
    if "option" not in df:
        raise FormatError(path, "the options have no 'option' symbol", line=1, column="option", expected="OCC symbols like 'SPXW260807C05000000'")
    occ = parse_occ_symbols(df["option"])
    bad = occ["strike"].isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FormatError(path, f"options[{i}]: cannot read the option symbol {df['option'].iloc[i]!r}", line=1,
                          column="option", expected="an OCC symbol like 'SPXW260807C05000000'")
    has_quotes = "bid" in df and "ask" in df
    if not has_quotes:
        warn(notes, DataQualityWarning, f"{path}: {NO_QUOTES_REASON}; vendor IV, greeks, open interest and volume are kept")
    frame = pd.DataFrame(
        {
            "contract": df["option"].astype(str).str.strip().str.upper().to_numpy(),
            "root": occ["root"].to_numpy(),
            "expiry_date": occ["expiry_date"].to_numpy(),
            "strike": occ["strike"].to_numpy(dtype=float),
            "type": occ["type"].to_numpy(),
            "bid": _column(df, "bid"),
            "ask": _column(df, "ask"),
            "last": _column(df, "last_trade_price"),
            "volume": _column(df, "volume"),
            "open_interest": _column(df, "open_interest"),
            "vendor_iv": _column(df, "iv"),
            "vendor_delta": _column(df, "delta"),
            "vendor_gamma": _column(df, "gamma"),
        }
    )
    symbol = str(obj.get("symbol") or data.get("symbol") or "").strip().lstrip("^_$").upper() or None
    return _finalize(frame, path=path, source_format="cboe_json", spot=float(spot), quote_time=quote_time,
                     underlying=symbol, extra_warnings=notes, as_of=as_of if stamp is not None else None)
