"""TD Ameritrade / Schwab "chains" JSON (``/marketdata/v1/chains``, formerly ``/v1/marketdata/chains``).

``callExpDateMap`` / ``putExpDateMap`` -> ``"YYYY-MM-DD:DTE"`` -> ``"strike"`` -> [contract]; per contract ``bid``,
``ask``, ``last``, ``totalVolume``, ``openInterest``, ``volatility`` (percent; -999 = missing), ``delta``,
``gamma`` (-999 = missing), ``quoteTimeInLong`` (epoch ms, 0 = never quoted), ``expirationDate`` (epoch ms),
``settlementType`` (``A``/``P``), ``symbol`` (old TDA symbology ``SPY_052322C382`` or OCC ``SPXW  260807C05000000``).
The spot is ``underlyingPrice``; the as-of time the latest quote time in the file (``underlying.quoteTime`` and
the contracts' ``quoteTimeInLong``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from volsurf.errors import FormatError
from volsurf.io.cboe_json import parse_json
from volsurf.io.common import _finalize, parse_occ_symbols
from volsurf.market.snapshot import Snapshot
from volsurf.units import NY

_MISSING = -999.0


def _records(path: str, obj: dict) -> pd.DataFrame:
    rows: list[dict] = []
    for side, key in (("call", "callExpDateMap"), ("put", "putExpDateMap")):
        exp_map = obj.get(key, {})
        if not isinstance(exp_map, dict):
            raise FormatError(path, f"'{key}' is not an object", column=key, expected='{"YYYY-MM-DD:DTE": {"strike": [contract]}}')
        for exp_key, strikes in exp_map.items():
            if not isinstance(strikes, dict):
                raise FormatError(path, f"{key}[{exp_key!r}] is not an object", column=key, expected='{"strike": [contract]}')
            for strike_key, contracts in strikes.items():
                for c in contracts if isinstance(contracts, list) else [contracts]:
                    if not isinstance(c, dict):
                        raise FormatError(path, f"{key}[{exp_key!r}][{strike_key!r}] holds no contract object", column=key,
                                          expected="a list of contract objects")
                    rows.append({**c, "_side": side, "_exp_key": exp_key, "_strike_key": strike_key, "_map": key})
    return pd.DataFrame.from_records(rows)


def _num(df: pd.DataFrame, name: str, missing_is_nan: bool = True) -> np.ndarray:
    if name not in df:
        return np.full(len(df), np.nan)
    v = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, copy=True)
    if missing_is_nan:
        v[v == _MISSING] = np.nan
    return v


def _load_schwab_json(path: str, text: str, lines: list[str], *, as_of: pd.Timestamp | None = None, **_: object) -> Snapshot:
    obj = parse_json(path, text)
    if not isinstance(obj, dict):
        raise FormatError(path, "the JSON document is not an object", line=1, expected="the chains response")
    df = _records(path, obj)
    if df.empty:
        raise FormatError(path, "no contracts in callExpDateMap/putExpDateMap", column="callExpDateMap", expected="at least one contract",
                          hint=f"the response status is {obj.get('status')!r}" if obj.get("status") else None)
    exp_date = pd.to_datetime(df["_exp_key"].astype(str).str.split(":").str[0], format="%Y-%m-%d", errors="coerce")
    if exp_date.isna().any():
        i = int(np.flatnonzero(exp_date.isna().to_numpy())[0])
        raise FormatError(path, f"cannot read the expiry key {df['_exp_key'].iloc[i]!r}", column=str(df["_map"].iloc[i]), expected="'YYYY-MM-DD:DTE'")
    strike = _num(df, "strikePrice")
    from_key = pd.to_numeric(df["_strike_key"], errors="coerce").to_numpy(dtype=float)
    strike = np.where(np.isfinite(strike), strike, from_key)
    if not (strike > 0).all():
        i = int(np.flatnonzero(~(strike > 0))[0])
        raise FormatError(path, f"cannot read the strike {df['_strike_key'].iloc[i]!r}", column=str(df["_map"].iloc[i]), expected="a positive strike")
    symbol = df["symbol"].astype(str).str.strip() if "symbol" in df else pd.Series([""] * len(df))
    occ = parse_occ_symbols(symbol)
    # old TDA symbols: ROOT_MMDDYY[C|P]STRIKE
    tda_root = symbol.str.extract(r"^([A-Z0-9.]+)_\d{6}[CP]")[0]
    root = occ["root"].fillna(tda_root).fillna(str(obj.get("symbol", "UNKNOWN")).lstrip("$^_")).to_numpy()
    settlement = None
    if "settlementType" in df:
        st = df["settlementType"].astype(str).str.strip().str.upper().map({"A": "AM", "P": "PM"})
        if st.notna().all():
            settlement = st.to_numpy()
    frame = pd.DataFrame(
        {
            "root": root,
            "expiry_date": exp_date.dt.strftime("%Y-%m-%d").to_numpy(),
            "strike": strike,
            "type": df["_side"].to_numpy(),
            "bid": _num(df, "bid"),
            "ask": _num(df, "ask"),
            "last": _num(df, "last"),
            "volume": _num(df, "totalVolume"),
            "open_interest": _num(df, "openInterest"),
            "vendor_iv": _num(df, "volatility") / 100.0,
            "vendor_delta": _num(df, "delta"),
            "vendor_gamma": _num(df, "gamma"),
        }
    )
    if settlement is not None:
        frame["settlement"] = settlement
    spot = obj.get("underlyingPrice")
    und: dict = obj["underlying"] if isinstance(obj.get("underlying"), dict) else {}
    if not isinstance(spot, int | float) or not spot > 0:
        spot = und.get("last") or und.get("mark")
    if not isinstance(spot, int | float) or not spot > 0:
        raise FormatError(path, f"cannot read the underlying price {obj.get('underlyingPrice')!r}", column="underlyingPrice", expected="a positive number")
    times = np.concatenate([_num(df, "quoteTimeInLong", False), [float(und.get("quoteTime") or np.nan)]])
    times = times[np.isfinite(times) & (times > 0)]
    if times.size:
        quote_time = pd.Timestamp(int(times.max()), unit="ms", tz="UTC").tz_convert(NY)
    elif as_of is not None:
        quote_time = as_of
    else:
        raise FormatError(path, "no quote time in the file (quoteTimeInLong, underlying.quoteTime)", column="quoteTimeInLong",
                          expected="epoch milliseconds", hint="give the as-of time with --as-of")
    underlying = str(obj.get("symbol") or "").strip().lstrip("$^_").upper() or None
    notes = ["the feed marks these quotes as delayed (isDelayed)"] if obj.get("isDelayed") else []
    return _finalize(frame, path=path, source_format="schwab_json", spot=float(spot), quote_time=quote_time,
                     underlying=underlying, underlying_name=str(und.get("description", "")), extra_warnings=notes,
                     as_of=as_of if times.size else None)
