"""yfinance-style CSV: one row per contract (``contractSymbol``, ``strike``, ``bid``, ``ask``, ``volume``,
``openInterest``, ``impliedVolatility``...); expiry and type from columns or from the OCC symbol."""

from __future__ import annotations

import numpy as np
import pandas as pd

from volsurf.errors import FormatError
from volsurf.io.common import _finalize, _num, _read_long_csv, _require_columns, parse_occ_symbols
from volsurf.market.snapshot import Snapshot
from volsurf.units import NY


def _load_yfinance(path: str, text: str, lines: list[str], *, spot: float | None = None, as_of: pd.Timestamp | None = None, **_: object) -> Snapshot:
    df, line_no = _read_long_csv(path, text)
    _require_columns(path, list(df.columns), ["contractSymbol", "strike", "bid", "ask"], 1)
    occ = parse_occ_symbols(df["contractSymbol"])
    strike = _num(df, "strike", path, line_no)
    exp_col = next((c for c in ("expiry", "expiration", "expirationDate", "expiration_date") if c in df), None)
    if exp_col is not None:
        expiry_date = pd.to_datetime(df[exp_col].str.strip().str[:10], errors="coerce").dt.strftime("%Y-%m-%d")
        expiry_date = expiry_date.fillna(occ["expiry_date"])
    else:
        expiry_date = occ["expiry_date"]
    if expiry_date.isna().any():
        i = int(np.flatnonzero(expiry_date.isna().to_numpy())[0])
        raise FormatError(path, "cannot tell the expiry", line=int(line_no[i]), column=exp_col or "contractSymbol", expected="a date YYYY-MM-DD or an OCC symbol")
    type_col = next((c for c in ("option_type", "type", "optionType", "putCall") if c in df), None)
    kind = occ["type"]
    if type_col is not None:
        t = df[type_col].str.strip().str.lower().map({"call": "call", "c": "call", "calls": "call", "put": "put", "p": "put", "puts": "put"})
        kind = t.fillna(kind)
    if kind.isna().any():
        i = int(np.flatnonzero(kind.isna().to_numpy())[0])
        raise FormatError(path, "cannot tell call from put", line=int(line_no[i]), column=type_col or "contractSymbol", expected="'call'/'put' or an OCC symbol")
    frame = pd.DataFrame(
        {
            "contract": df["contractSymbol"].str.strip().to_numpy(),
            "root": occ["root"].fillna("").to_numpy(),
            "expiry_date": expiry_date.to_numpy(),
            "strike": strike,
            "type": kind.to_numpy(),
            "bid": _num(df, "bid", path, line_no),
            "ask": _num(df, "ask", path, line_no),
            "last": _num(df, "lastPrice", path, line_no),
            "volume": _num(df, "volume", path, line_no),
            "open_interest": _num(df, "openInterest", path, line_no),
            "vendor_iv": _num(df, "impliedVolatility", path, line_no),
        }
    )
    # spot and quote time: from the file when present
    spot_col = next((c for c in ("S", "spot", "underlyingPrice", "underlying_price", "regularMarketPrice") if c in df), None)
    if spot is None:
        if spot_col is None:
            raise FormatError(path, "no underlying price column", line=1, expected="a column S, spot or underlyingPrice", hint="pass the spot explicitly (--spot)")
        spots = _num(df, spot_col, path, line_no)
        spot = float(np.nanmedian(spots))
    date_col = next((c for c in ("spot_date", "snapshot_date", "quote_date", "date") if c in df), None)
    if date_col is not None:
        qd = pd.to_datetime(df[date_col].str.strip(), errors="coerce").dropna()
        if qd.empty:
            raise FormatError(path, "cannot read the quote date", line=2, column=date_col, expected="a date YYYY-MM-DD")
        q = qd.max()
        quote_time = (q.tz_localize(NY) if q.tzinfo is None else q.tz_convert(NY))
        if quote_time.hour == 0 and quote_time.minute == 0:
            quote_time = quote_time + pd.Timedelta(hours=16)  # a date alone: that day's close
    elif "lastTradeDate" in df:
        q = pd.to_datetime(df["lastTradeDate"], errors="coerce", utc=True).max()
        if pd.isna(q):
            raise FormatError(path, "cannot read lastTradeDate", line=2, column="lastTradeDate", expected="timestamps")
        quote_time = q.tz_convert(NY)
    else:
        raise FormatError(path, "no quote date column", line=1, expected="a column spot_date, snapshot_date, quote_date or lastTradeDate")
    bad_root = frame["root"] == ""
    if bad_root.any():
        frame.loc[bad_root, "root"] = "UNKNOWN"
    return _finalize(frame, path=path, source_format="yfinance", spot=spot, quote_time=quote_time, as_of=as_of)
