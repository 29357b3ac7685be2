"""Cboe DataShop / LiveVol long format (``underlying_symbol, quote_datetime, root, expiration, strike,
option_type, ... bid, ask, ... implied_volatility, delta, gamma, ..., open_interest``); a file may hold many quote
times (one snapshot each)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from volsurf.errors import FormatError, ParameterError
from volsurf.io.common import _finalize, _num, _other_times_warning, _read_long_csv, _require_columns
from volsurf.market.snapshot import Snapshot
from volsurf.units import NY

DATASHOP_REQUIRED = ("underlying_symbol", "quote_datetime", "root", "expiration", "strike", "option_type", "bid", "ask")


def _datashop_frames(path: str, text: str) -> list[tuple[pd.Timestamp, pd.DataFrame, np.ndarray]]:
    df, line_no = _read_long_csv(path, text)
    _require_columns(path, list(df.columns), DATASHOP_REQUIRED, 1)
    qt = pd.to_datetime(df["quote_datetime"].str.strip(), errors="coerce")
    if qt.isna().any():
        i = int(np.flatnonzero(qt.isna().to_numpy())[0])
        raise FormatError(path, f"cannot read quote_datetime {df['quote_datetime'].iloc[i]!r}", line=int(line_no[i]), column="quote_datetime", expected="YYYY-MM-DD HH:MM:SS")
    df = df.assign(_qt=qt.to_numpy(), _line=line_no)
    return [(pd.Timestamp(t), g.drop(columns="_qt"), g["_line"].to_numpy())  # type: ignore[arg-type]
            for t, g in df.groupby("_qt", sort=True)]


def _datashop_snapshot(path: str, quote_time: pd.Timestamp, df: pd.DataFrame, line_no: np.ndarray, n_times: int, as_of: pd.Timestamp | None = None) -> Snapshot:
    exp = pd.to_datetime(df["expiration"].str.strip(), errors="coerce")
    if exp.isna().any():
        i = int(np.flatnonzero(exp.isna().to_numpy())[0])
        raise FormatError(path, f"cannot read expiration {df['expiration'].iloc[i]!r}", line=int(line_no[i]), column="expiration", expected="YYYY-MM-DD")
    kind = df["option_type"].str.strip().str.upper().map({"C": "call", "P": "put", "CALL": "call", "PUT": "put"})
    if kind.isna().any():
        i = int(np.flatnonzero(kind.isna().to_numpy())[0])
        raise FormatError(path, f"cannot read option_type {df['option_type'].iloc[i]!r}", line=int(line_no[i]), column="option_type", expected="C or P")
    frame = pd.DataFrame(
        {
            "root": df["root"].str.strip().str.upper().to_numpy(),
            "expiry_date": exp.dt.strftime("%Y-%m-%d").to_numpy(),
            "strike": _num(df, "strike", path, line_no),
            "type": kind.to_numpy(),
            "bid": _num(df, "bid", path, line_no),
            "ask": _num(df, "ask", path, line_no),
            "last": _num(df, "close", path, line_no),
            "volume": _num(df, "trade_volume", path, line_no),
            "open_interest": _num(df, "open_interest", path, line_no),
            "vendor_iv": _num(df, "implied_volatility", path, line_no),
            "vendor_delta": _num(df, "delta", path, line_no),
            "vendor_gamma": _num(df, "gamma", path, line_no),
        }
    )
    spot = np.nan
    for col in ("active_underlying_price", "underlying_last"):
        if col in df:
            spot = float(np.nanmedian(_num(df, col, path, line_no)))
            if np.isfinite(spot):
                break
    if not np.isfinite(spot) and "underlying_bid" in df and "underlying_ask" in df:
        spot = float(np.nanmedian((_num(df, "underlying_bid", path, line_no) + _num(df, "underlying_ask", path, line_no)) / 2))
    if not np.isfinite(spot):
        raise FormatError(path, "no underlying price", line=1, expected="active_underlying_price or underlying_bid/underlying_ask columns")
    qt = quote_time.tz_localize(NY) if quote_time.tzinfo is None else quote_time.tz_convert(NY)
    if qt.hour == 0 and qt.minute == 0:
        qt = qt + pd.Timedelta(hours=16)
    underlying = df["underlying_symbol"].str.strip().str.lstrip("^").iloc[0].upper()
    return _finalize(frame, path=path, source_format="datashop", spot=spot, quote_time=qt, underlying=underlying, as_of=as_of,
                     extra_warnings=_other_times_warning(n_times))


def _load_datashop(path: str, text: str, lines: list[str], *, quote_time: pd.Timestamp | None = None, as_of: pd.Timestamp | None = None, **_: object) -> Snapshot:
    groups = _datashop_frames(path, text)
    if quote_time is not None:
        sel = [g for g in groups if g[0] == pd.Timestamp(quote_time).tz_localize(None)]
        if not sel:
            raise ParameterError(f"{path}: no quotes at {quote_time}", "choose one of the file's quote_datetime values")
        t, g, ln = sel[0]
    else:
        t, g, ln = groups[-1]  # the latest quote time
    return _datashop_snapshot(path, t, g, ln, len(groups), as_of)
