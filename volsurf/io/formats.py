"""Loading option-chain files into a normalized :class:`~volsurf.market.snapshot.Snapshot`.

Formats are detected by content, never by file name:

- ``cboe_quotedata``: Cboe delayed-quotes export (``quotedata.csv``): a preamble (name/``Last:`` line, a
  locale-dependent ``Date:`` line), a 22-column header ``Expiration Date,Calls,...,Strike,Puts,...`` with
  duplicate names, then one row per (expiry, root, strike) holding the call on the left and the put on the right.
- ``yfinance``: one row per contract (``contractSymbol``, ``strike``, ``bid``, ``ask``, ``volume``,
  ``openInterest``, ``impliedVolatility``...); expiry and type from columns or from the OCC symbol.
- ``datashop``: Cboe DataShop / LiveVol long format (``underlying_symbol, quote_datetime, root, expiration,
  strike, option_type, ... bid, ask, ... implied_volatility, delta, gamma, ..., open_interest``); a file may hold
  many quote times (one snapshot each).
- ``optionsdx``: OptionsDX end-of-day wide format (``[QUOTE_UNIXTIME], [UNDERLYING_LAST], [EXPIRE_DATE],
  [C_BID] ... [P_IV]``), one snapshot per quote date.
- ``canonical``: volsurf's own CSV, written by :func:`write_canonical` (``volsurf normalize``).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from volsurf.errors import (
    FormatError,
    InputFileError,
    ParameterError,
    TradeDateWarning,
    UnknownFormatError,
    warn,
)
from volsurf.market.snapshot import COLUMNS, FLOAT_COLUMNS, HYGIENE_RULES, NY, Snapshot, SnapshotMeta
from volsurf.market.timing import settlement_for_root, settlement_times

CANONICAL_MAGIC = "# volsurf-canonical v1"
CANONICAL_FLOAT_FORMAT = "%.10g"
MISSING_TOKENS = frozenset({"", "-", "--", "n/a", "na", "nan", "none", "null"})
VENDOR_IV_PLACEHOLDER = 1e-4  # yfinance writes 1e-05 for "no IV"
WEEKLY_SUFFIXES = ("W", "P")  # SPXW -> SPX, NDXP -> NDX, RUTW -> RUT

# ----------------------------------------------------------------------------------------------- reading


def _read_text(path: str) -> str:
    p = Path(path)
    if not p.exists():
        raise InputFileError(path, "no such file", "check the path")
    if p.is_dir():
        raise InputFileError(path, "is a directory, expected a chain file", "pass a file, or use a command that takes many")
    raw = p.read_bytes()
    if not raw.strip():
        raise InputFileError(path, "file is empty", "download the chain again")
    if b"\x00" in raw[:4096] or _binary_share(raw[:4096]) > 0.05:
        raise InputFileError(path, "looks like a binary file, expected a CSV text file", "export the chain as CSV")
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _binary_share(chunk: bytes) -> float:
    if not chunk:
        return 0.0
    control = len(chunk) - len(chunk.translate(None, _CONTROL_BYTES))
    return control / len(chunk)


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))


def _parse_numbers(values: pd.Series, path: str, column: str, line_numbers: np.ndarray) -> np.ndarray:
    """Strings -> float, with thousands separators removed and missing tokens as NaN.

    Anything else that does not parse raises :class:`FormatError` naming the first bad line and column.
    """
    s = values.astype(str).str.strip().str.replace(",", "", regex=False).str.strip('"')
    missing = s.str.lower().isin(MISSING_TOKENS)
    num = pd.to_numeric(s.where(~missing, None), errors="coerce")
    bad = num.isna() & ~missing
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise FormatError(
            path,
            f"cannot read {values.iloc[i]!r} as a number",
            line=int(line_numbers[i]),
            column=column,
            expected="a number (or an empty field)",
        )
    return num.to_numpy(dtype=float)


# ----------------------------------------------------------------------------------------------- dates

_MONTHS: dict[str, int] = {}
for _i, _names in enumerate(
    [
        "january enero janvier januar gennaio janeiro января январь jan ene janv",
        "february febrero février fevrier februar febbraio fevereiro февраля февраль feb febr",
        "march marzo mars märz marz março marco марта март mar mär",
        "april abril avril aprile апреля апрель apr abr avr",
        "may mayo mai maggio maio мая май",
        "june junio juin juni giugno junho июня июнь jun",
        "july julio juillet juli luglio julho июля июль jul",
        "august agosto août aout августа август aug ago",
        "september septiembre setiembre septembre settembre setembro сентября сентябрь sep sept set",
        "october octubre octobre oktober ottobre outubro октября октябрь oct okt ott out",
        "november noviembre novembre novembro ноября ноябрь nov",
        "december diciembre décembre decembre dezember dicembre dezembro декабря декабрь dec dic dez déc",
    ],
    start=1,
):
    for _n in _names.split():
        _MONTHS[_n] = _i

_TZ_ABBR = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "UTC": 0, "GMT": 0}


def parse_cboe_date_line(text: str) -> pd.Timestamp:
    """Parse the locale-dependent ``Date:`` value of a Cboe export into a timezone-aware timestamp.

    Handles e.g. ``February 5 2022, 8:09 PM EST``, ``September 14, 2023 at 4:31 PM EDT``,
    ``23 de marzo de 2022, 10:11 GMT-4``, ``9 декабря 2023 г. в 13:49 GMT-5``, ``3 August 2026 at 05:22 GMT-4``.
    A value without a zone is taken as New York time. Raises ``ValueError`` when it cannot be read.
    """
    s = text.strip().strip('"')
    s = re.sub(r"^date:\s*", "", s, flags=re.I)
    low = s.lower()
    month = None
    for word in re.findall(r"[^\W\d_]+\.?", low):
        w = word.rstrip(".")
        if w in _MONTHS and w not in {"de", "a", "at", "в", "г"}:
            month = _MONTHS[w]
            break
    if month is None:
        raise ValueError(f"no month name in {text!r}")
    tm = re.search(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", low)
    if tm is None:
        raise ValueError(f"no time of day in {text!r}")
    hour, minute = int(tm.group(1)), int(tm.group(2))
    before_time = low[: tm.start()]
    year_m = re.search(r"\b(19|20)\d{2}\b", before_time)
    if year_m is None:
        raise ValueError(f"no year in {text!r}")
    year = int(year_m.group(0))
    day_candidates = [int(x) for x in re.findall(r"\b(\d{1,2})\b", before_time.replace(year_m.group(0), " "))]
    if not day_candidates:
        raise ValueError(f"no day of month in {text!r}")
    day = day_candidates[0]
    after = low[tm.end() :]
    ampm = re.search(r"\b([ap])\.?\s?m\.?", after)
    if ampm:
        if ampm.group(1) == "p" and hour < 12:
            hour += 12
        elif ampm.group(1) == "a" and hour == 12:
            hour = 0
    offset_hours: float | None = None
    gm = re.search(r"(?:gmt|utc)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", after)
    if gm:
        sign = 1 if gm.group(1) == "+" else -1
        offset_hours = sign * (int(gm.group(2)) + int(gm.group(3) or 0) / 60)
    else:
        ab = re.search(r"\b([a-z]{3})\b", after.replace("pm", " ").replace("am", " "))
        if ab and ab.group(1).upper() in _TZ_ABBR:
            offset_hours = _TZ_ABBR[ab.group(1).upper()]
    naive = pd.Timestamp(year=year, month=month, day=day, hour=hour, minute=minute)
    if offset_hours is None:
        return naive.tz_localize(NY)
    return (naive - pd.Timedelta(hours=offset_hours)).tz_localize("UTC").tz_convert(NY)


# ----------------------------------------------------------------------------------------------- helpers


def _underlying_from_roots(roots: Iterable[str]) -> str:
    roots = sorted({r for r in roots if r})
    if not roots:
        return "UNKNOWN"
    for r in sorted(roots, key=len):
        if all(x == r or (x.startswith(r) and x[len(r) :] in WEEKLY_SUFFIXES) for x in roots):
            return r
    # e.g. only SPXW present: strip a weekly suffix
    r = min(roots, key=len)
    if len(r) > 3 and r[-1] in WEEKLY_SUFFIXES:
        return r[:-1]
    return r


def _per_distinct(values: pd.Series | np.ndarray, fn: Callable[[object], object]) -> np.ndarray:
    """``fn`` applied to every element, evaluated once per distinct value (object array).

    Chains repeat a handful of roots, dates and labels over thousands of rows; a Python call per distinct value
    plus an integer take is far cheaper than a pandas string op or ``map`` over every row.
    """
    codes, uniq = pd.factorize(values, use_na_sentinel=False)
    mapped = np.empty(len(uniq), dtype=object)
    mapped[:] = [fn(u) for u in uniq]
    return mapped[codes]


def _str_per_distinct(values: pd.Series, fn: Callable[[object], object]):
    """:func:`_per_distinct` as a string column array: only the distinct results are converted to the string
    dtype (pandas infers it as for any column of str), then taken per row (no per-row object conversion)."""
    codes, uniq = pd.factorize(values, use_na_sentinel=False)
    if len(uniq) == 0:
        return pd.Series(np.empty(0, dtype=object)).astype(str).array
    return pd.Series([fn(u) for u in uniq]).take(codes).array


def _clean_root(r: object) -> object:
    return r.strip().upper() if isinstance(r, str) else r


def contract_ids(roots: np.ndarray, expiry_dates: pd.Series, is_call: np.ndarray, strikes: np.ndarray) -> np.ndarray:
    """OCC-style ids without root padding: ROOT + YYMMDD + C/P + strike*1000 as 8 digits."""
    yymmdd = pd.to_datetime(expiry_dates).dt.strftime("%y%m%d").to_numpy()
    cp = np.where(is_call, "C", "P")
    k = np.char.zfill(np.round(strikes * 1000).astype(np.int64).astype(str), 8)
    out = np.char.add(np.char.add(np.char.add(roots.astype(str), yymmdd.astype(str)), cp.astype(str)), k)
    return out.astype(object)


_OCC_RE = re.compile(r"^\s*([A-Z0-9]{1,6}?)\s*(\d{6})([CP])(\d{8})\s*$")


def parse_occ_symbols(symbols: pd.Series) -> pd.DataFrame:
    """Split OCC symbols (``SPY260218C00600000``) into root, expiry_date (YYYY-MM-DD), type, strike (NaN if not OCC)."""
    parts = symbols.astype(str).str.upper().str.extract(_OCC_RE)
    out = pd.DataFrame(index=symbols.index)
    out["root"] = parts[0]
    out["expiry_date"] = pd.to_datetime(parts[1], format="%y%m%d", errors="coerce").dt.strftime("%Y-%m-%d")
    out["type"] = parts[2].map({"C": "call", "P": "put"})
    out["strike"] = pd.to_numeric(parts[3], errors="coerce") / 1000.0
    return out


def _finalize(
    df: pd.DataFrame,
    *,
    path: str,
    source_format: str,
    spot: float,
    quote_time: pd.Timestamp,
    underlying: str | None = None,
    underlying_name: str = "",
    valuation_time: pd.Timestamp | None = None,
    trade_date=None,
    extra_warnings: Iterable[str] = (),
) -> Snapshot:
    """Common tail of every loader: settlement times, ids, hygiene rules, metadata."""
    from volsurf.market import calendar

    df = df.copy()
    df["root"] = _str_per_distinct(df["root"].astype(str), _clean_root) if len(df) else df["root"].astype(str)
    if "settlement" not in df or df["settlement"].isna().any():
        df["settlement"] = _str_per_distinct(df["root"], settlement_for_root)
    df["expiry"] = settlement_times(df["expiry_date"], df["settlement"]) if len(df) else pd.DatetimeIndex([], tz=NY)
    is_call = (df["type"] == "call").to_numpy()
    if "contract" not in df or df["contract"].isna().any() or (df["contract"].astype(str).str.len() < 10).any():
        df["contract"] = contract_ids(df["root"].to_numpy(), df["expiry_date"], is_call, df["strike"].to_numpy())
    for c in FLOAT_COLUMNS:
        if c not in df:
            df[c] = np.nan
        df[c] = df[c].astype(float)

    if trade_date is None:
        trade_date = _trade_date_for(quote_time)
    if valuation_time is None:
        valuation_time = _valuation_time_for(quote_time)

    warnings: list[str] = []
    if len(df):
        first_expiry = pd.Timestamp(df["expiry_date"].min()).date()
        if first_expiry < trade_date and calendar.is_session(first_expiry):
            # Cboe lists an expiry until the next session starts; an older one means the Date line is not the
            # as-of time (edited, or a stale page). The data belong to that expiry's session: value there.
            warn(
                warnings,
                TradeDateWarning,
                f"the file lists expiry {first_expiry} although its Date line implies trade date {trade_date}: "
                f"the Date line is not the as-of time; using trade date {first_expiry} (its close) instead",
            )
            trade_date = first_expiry
            valuation_time = calendar.session_open_close(first_expiry)[1]
    counts = dict.fromkeys(HYGIENE_RULES, 0)
    # removed rows
    expired = (df["expiry"] <= valuation_time).to_numpy()
    counts["expired"] = int(expired.sum())
    removed = [df.loc[expired].assign(reason="expired")]
    df = df.loc[~expired]
    dup = df.duplicated("contract", keep="first").to_numpy()
    counts["duplicate"] = int(dup.sum())
    removed.append(df.loc[dup].assign(reason="duplicate"))
    df = df.loc[~dup]
    # flagged rows
    bid, ask = df["bid"].to_numpy(), df["ask"].to_numpy()
    with np.errstate(invalid="ignore"):
        rules = {
            "crossed": bid > ask,
            "zero_bid": ~(bid > 0),
            "no_ask": ~(ask > 0),
            "vendor_iv_missing": ~(df["vendor_iv"].to_numpy() > VENDOR_IV_PLACEHOLDER),
            "missing_oi": np.isnan(df["open_interest"].to_numpy()),
        }
    # Flags as a bit code per row, spelled out once per distinct code (string joins per row are slow).
    code = np.zeros(len(df), dtype=np.int64)
    for bit, (name, mask) in enumerate(rules.items()):
        counts[name] = int(mask.sum())
        code |= mask.astype(np.int64) << bit
    names = list(rules)
    df["flags"] = _str_per_distinct(pd.Series(code), lambda c: ";".join(n for b, n in enumerate(names) if c >> b & 1))
    df.loc[rules["vendor_iv_missing"], "vendor_iv"] = np.nan
    warnings.extend(extra_warnings)

    df = _sort_chain(df)[list(COLUMNS)]
    meta = SnapshotMeta(
        underlying=underlying or _underlying_from_roots(df["root"].unique()),
        spot=float(spot),
        quote_time=quote_time,
        trade_date=trade_date,
        valuation_time=valuation_time,
        source_format=source_format,
        source_file=str(path),
        hygiene=counts,
        underlying_name=underlying_name,
        warnings=tuple(warnings),
    )
    gone = pd.concat(removed, ignore_index=True)
    gone["flags"] = ""
    return Snapshot(frame=df, meta=meta, removed=gone[[*COLUMNS, "reason"]])


def _sort_chain(df: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by expiry, root, strike, type (stable), with a fresh index.

    Same order as ``sort_values([...], kind="stable")``, computed on integer codes with ``np.lexsort`` and
    skipped when the rows are already in order (the take of arrow string columns costs as much as the sort).
    Missing keys fall back to pandas, which puts them last.
    """
    keys = ["expiry", "root", "strike", "type"]
    if df[keys].isna().to_numpy().any():
        return df.sort_values(keys, kind="stable").reset_index(drop=True)
    exp_codes, _ = pd.factorize(pd.DatetimeIndex(df["expiry"]).asi8, sort=True)
    root_codes, roots = pd.factorize(df["root"], sort=True)
    type_codes, _ = pd.factorize(df["type"], sort=True)
    group = exp_codes * len(roots) + root_codes
    strike = df["strike"].to_numpy(dtype=float)
    if len(df) > 1:
        dg, ds, dt = np.diff(group), np.diff(strike), np.diff(type_codes)
        if np.all((dg > 0) | ((dg == 0) & ((ds > 0) | ((ds == 0) & (dt >= 0))))):
            return df.reset_index(drop=True)
    return df.take(np.lexsort((type_codes, strike, group))).reset_index(drop=True)


@lru_cache(maxsize=512)
def _trade_date_for(quote_time: pd.Timestamp):
    from volsurf.market import calendar

    return calendar.trade_date_for(quote_time)


@lru_cache(maxsize=512)
def _valuation_time_for(quote_time: pd.Timestamp) -> pd.Timestamp:
    from volsurf.market import calendar

    return calendar.valuation_time_for(quote_time)


def _require_columns(path: str, header: list[str], required: Iterable[str], header_line: int) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise FormatError(
            path,
            f"missing column {missing[0]!r}",
            line=header_line,
            column=missing[0],
            expected="columns " + ", ".join(required),
        )


# ----------------------------------------------------------------------------------------------- CBOE

CBOE_HEADER = (
    "Expiration Date,Calls,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest,Strike,"
    "Puts,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest"
).split(",")


def _find_cboe_header(lines: list[str]) -> int | None:
    for i, line in enumerate(lines[:20]):
        if line.lstrip('"').startswith("Expiration Date,Calls"):
            return i
    return None


def _load_cboe(path: str, text: str, lines: list[str], **_: object) -> Snapshot:
    hi = _find_cboe_header(lines)
    assert hi is not None
    header = next(csv.reader([lines[hi]]))
    header = [h.strip() for h in header]
    while header and header[-1] == "":
        header.pop()
    if header != CBOE_HEADER:
        bad = next((i for i, (a, b) in enumerate(zip(header, CBOE_HEADER, strict=False)) if a != b), len(header))
        raise FormatError(
            path,
            f"unexpected Cboe header field {header[bad] if bad < len(header) else '(missing)'!r}",
            line=hi + 1,
            column=CBOE_HEADER[bad] if bad < len(CBOE_HEADER) else None,
            expected="the 22-column header 'Expiration Date,Calls,...,Strike,Puts,...,Open Interest'",
        )
    # Preamble: name/Last line and Date line, in any order, anywhere above the header.
    spot = None
    quote_time = None
    name = ""
    for j, line in enumerate(lines[:hi]):
        fields = [f.strip() for f in next(csv.reader([line]))] if line.strip() else []
        for f in fields:
            if f.startswith("Last:") and spot is None:
                try:
                    spot = float(f[5:].strip().replace(",", ""))
                except ValueError as exc:
                    raise FormatError(path, f"cannot read spot from {f!r}", line=j + 1, expected="'Last: <number>'") from exc
                name = fields[0]
            if f.startswith("Date:") and quote_time is None:
                try:
                    quote_time = parse_cboe_date_line(f)
                except ValueError as exc:
                    raise FormatError(
                        path, f"cannot read the quote date {f!r}", line=j + 1, expected="a date such as 'Date: May 1, 2025 at 4:49 PM EDT'"
                    ) from exc
    if spot is None:
        raise FormatError(path, "no 'Last: <spot>' line above the header", line=1, expected="the underlying's name line, e.g. 'S&P 500 INDEX,Last: 4505.10,...'")
    if quote_time is None:
        raise FormatError(path, "no 'Date:' line above the header", line=hi, expected="a line such as 'Date: May 1, 2025 at 4:49 PM EDT,...'")

    raw, line_no = _cboe_body(path, lines, hi)
    # Parse and format each distinct expiry once (tens of dates over thousands of rows).
    exp_codes, exp_uniq = pd.factorize(raw[0], use_na_sentinel=False)
    exp_parsed = pd.DatetimeIndex(pd.to_datetime(pd.Series(exp_uniq, dtype=object), format="%a %b %d %Y", errors="coerce"))
    exp_bad = exp_parsed.isna()[exp_codes]
    if exp_bad.any():
        i = int(np.flatnonzero(exp_bad)[0])
        raise FormatError(path, f"cannot read expiry {raw[0].iloc[i]!r}", line=int(line_no[i]), column="Expiration Date", expected="a date like 'Fri Sep 15 2023'")
    strike = raw[11].to_numpy(dtype=float)
    if not (strike > 0).all():
        i = int(np.flatnonzero(~(strike > 0))[0])
        raise FormatError(path, f"strike {raw[11].iloc[i]!r} is not a positive number", line=int(line_no[i]), column="Strike", expected="a positive strike")
    expiry_date = pd.Series(np.asarray(exp_parsed.strftime("%Y-%m-%d"), dtype=object).tolist()).take(exp_codes).array
    fields = ["last", "_net", "bid", "ask", "volume", "vendor_iv", "vendor_delta", "vendor_gamma", "open_interest"]

    def side(first: int, kind: str) -> pd.DataFrame:
        sym = raw[first].astype(str).str.strip()
        d = pd.DataFrame(
            {
                "contract": sym.array,
                # compact OCC: ROOT + YYMMDD + C/P + 8-digit strike -> the root is all but the last 15 characters
                "root": sym.str[:-15].array,
                "expiry_date": expiry_date,
                "strike": strike,
                "type": kind,
            }
        )
        for j, nm in enumerate(fields, start=first + 1):
            if nm != "_net":
                d[nm] = raw[j].to_numpy(dtype=float)
        bad = (sym.str.len() < 16).to_numpy() | ~sym.str[-9:-8].isin(["C", "P"]).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FormatError(path, f"cannot read the option symbol {sym.iloc[i]!r}", line=int(line_no[i]), column=CBOE_HEADER[first], expected="an OCC-style symbol like 'SPXW230915C04500000'")
        return d

    df = pd.concat([side(1, "call"), side(12, "put")], ignore_index=True)
    return _finalize(df, path=path, source_format="cboe_quotedata", spot=spot, quote_time=quote_time, underlying_name=name)


_NUMERIC_CBOE = [i for i in range(22) if i not in (0, 1, 12)]


def _cboe_body(path: str, lines: list[str], hi: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The 22-column body as a frame (numeric columns float) and each row's 1-based file line number.

    Fast path: pandas' C parser. If it fails or leaves a numeric column unparsed, a slower row-by-row pass
    finds the exact line and column to report.
    """
    body = lines[hi + 1 :]
    nonblank = np.flatnonzero(np.fromiter((bool(x.strip(" ,")) for x in body), dtype=bool, count=len(body)))
    if nonblank.size == 0:
        raise FormatError(path, "no data rows below the header", line=hi + 1, expected="one row per expiry and strike")
    line_no = nonblank + hi + 2
    text = "\n".join(body[i] for i in nonblank)
    try:
        raw = pd.read_csv(
            io.StringIO(text), header=None, usecols=range(22), thousands=",", dtype={0: str, 1: str, 12: str},
            na_values=["-", "--", "N/A", "n/a"], keep_default_na=True, skip_blank_lines=False, engine="c",
        )
        ok = len(raw) == len(nonblank) and all(pd.api.types.is_float_dtype(raw[c]) or pd.api.types.is_integer_dtype(raw[c]) for c in _NUMERIC_CBOE)
    except (pd.errors.ParserError, ValueError):
        ok = False
    if ok:
        for c in _NUMERIC_CBOE:
            raw[c] = raw[c].astype(float)
        raw[0] = raw[0].astype(str).str.strip()
        return raw, line_no
    # Slow path: locate the problem precisely.
    rows = list(csv.reader(body[i] for i in nonblank))
    for i, r in enumerate(rows):
        extra = [x for x in r[22:] if x.strip()]
        if len(r) < 22 or extra:
            raise FormatError(path, f"row has {len(r)} fields", line=int(line_no[i]), expected="22 comma-separated fields")
    frame = pd.DataFrame([r[:22] for r in rows])
    for c in _NUMERIC_CBOE:
        frame[c] = _parse_numbers(frame[c], path, CBOE_HEADER[c], line_no)
    frame[0] = frame[0].astype(str).str.strip()
    return frame, line_no


# ----------------------------------------------------------------------------------------------- long formats


def _read_long_csv(path: str, text: str) -> tuple[pd.DataFrame, np.ndarray]:
    lines = text.split("\n")
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].startswith("#")):
        start += 1
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines[start:])), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        line = int(m.group(1)) + start if m else None
        raise FormatError(path, f"malformed CSV row ({exc})".split("\n")[0], line=line, expected="the same number of fields on every row") from exc
    df.columns = [str(c).strip() for c in df.columns]
    line_no = np.arange(len(df)) + start + 2
    return df, line_no


def _num(df: pd.DataFrame, col: str, path: str, line_no: np.ndarray) -> np.ndarray:
    if col not in df:
        return np.full(len(df), np.nan)
    return _parse_numbers(df[col], path, col, line_no)


def _load_yfinance(path: str, text: str, lines: list[str], *, spot: float | None = None, **_: object) -> Snapshot:
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
    return _finalize(frame, path=path, source_format="yfinance", spot=spot, quote_time=quote_time)


DATASHOP_REQUIRED = ("underlying_symbol", "quote_datetime", "root", "expiration", "strike", "option_type", "bid", "ask")


def _datashop_frames(path: str, text: str) -> list[tuple[pd.Timestamp, pd.DataFrame, np.ndarray]]:
    df, line_no = _read_long_csv(path, text)
    _require_columns(path, list(df.columns), DATASHOP_REQUIRED, 1)
    qt = pd.to_datetime(df["quote_datetime"].str.strip(), errors="coerce")
    if qt.isna().any():
        i = int(np.flatnonzero(qt.isna().to_numpy())[0])
        raise FormatError(path, f"cannot read quote_datetime {df['quote_datetime'].iloc[i]!r}", line=int(line_no[i]), column="quote_datetime", expected="YYYY-MM-DD HH:MM:SS")
    df = df.assign(_qt=qt.to_numpy(), _line=line_no)
    return [(pd.Timestamp(t), g.drop(columns="_qt"), g["_line"].to_numpy()) for t, g in df.groupby("_qt", sort=True)]


def _datashop_snapshot(path: str, quote_time: pd.Timestamp, df: pd.DataFrame, line_no: np.ndarray, n_times: int) -> Snapshot:
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
    return _finalize(frame, path=path, source_format="datashop", spot=spot, quote_time=qt, underlying=underlying,
                     extra_warnings=_other_times_warning(n_times))


def _load_datashop(path: str, text: str, lines: list[str], *, quote_time: pd.Timestamp | None = None, **_: object) -> Snapshot:
    groups = _datashop_frames(path, text)
    if quote_time is not None:
        sel = [g for g in groups if g[0] == pd.Timestamp(quote_time).tz_localize(None)]
        if not sel:
            raise ParameterError(f"{path}: no quotes at {quote_time}", "choose one of the file's quote_datetime values")
        t, g, ln = sel[0]
    else:
        t, g, ln = groups[-1]  # the latest quote time
    return _datashop_snapshot(path, t, g, ln, len(groups))


def _odx_col(df: pd.DataFrame, name: str) -> str | None:
    target = name.strip("[]").upper()
    for c in df.columns:
        if c.strip().strip("[]").upper() == target:
            return c
    return None


def _load_optionsdx(path: str, text: str, lines: list[str], *, underlying: str | None = None, quote_time: pd.Timestamp | None = None, **_: object) -> Snapshot:
    df, line_no = _read_long_csv(path, text)
    df.columns = [c.strip().strip("[]").upper() for c in df.columns]
    _require_columns(path, list(df.columns), ["QUOTE_UNIXTIME", "UNDERLYING_LAST", "EXPIRE_DATE", "STRIKE", "C_BID", "C_ASK", "P_BID", "P_ASK"], 1)
    qu = _num(df, "QUOTE_UNIXTIME", path, line_no)
    times = np.unique(qu[np.isfinite(qu)])
    if quote_time is not None:
        target = pd.Timestamp(quote_time).timestamp()
        pick = times[np.argmin(np.abs(times - target))]
    else:
        pick = times[-1]
    m = qu == pick
    df, line_no = df.loc[m].reset_index(drop=True), line_no[m]
    exp_unix = _num(df, "EXPIRE_UNIX", path, line_no) if "EXPIRE_UNIX" in df else None
    exp = pd.to_datetime(df["EXPIRE_DATE"].str.strip(), errors="coerce")
    if exp.isna().any():
        i = int(np.flatnonzero(exp.isna().to_numpy())[0])
        raise FormatError(path, f"cannot read expiry {df['EXPIRE_DATE'].iloc[i]!r}", line=int(line_no[i]), column="[EXPIRE_DATE]", expected="YYYY-MM-DD")
    if exp_unix is not None and np.isfinite(exp_unix).all():
        local = pd.to_datetime(exp_unix, unit="s", utc=True).tz_convert(NY)
        settlement = np.where((local.hour < 12), "AM", "PM")
    else:
        settlement = None
    und = (underlying or _underlying_from_filename(path)).upper()
    strike = _num(df, "STRIKE", path, line_no)
    common = {"expiry_date": exp.dt.strftime("%Y-%m-%d").to_numpy(), "strike": strike}
    sides = []
    for p, kind in (("C", "call"), ("P", "put")):
        d = pd.DataFrame(common)
        d["type"] = kind
        d["bid"] = _num(df, f"{p}_BID", path, line_no)
        d["ask"] = _num(df, f"{p}_ASK", path, line_no)
        d["last"] = _num(df, f"{p}_LAST", path, line_no)
        d["volume"] = _num(df, f"{p}_VOLUME", path, line_no)
        d["vendor_iv"] = _num(df, f"{p}_IV", path, line_no)
        d["vendor_delta"] = _num(df, f"{p}_DELTA", path, line_no)
        d["vendor_gamma"] = _num(df, f"{p}_GAMMA", path, line_no)
        if settlement is not None:
            d["settlement"] = settlement
            # AM-settled monthly vs PM weekly: root follows the settlement for index options
            d["root"] = np.where(settlement == "AM", und, und + ("W" if und in ("SPX", "RUT") else ("P" if und == "NDX" else "")))
        else:
            d["root"] = und
        sides.append(d)
    frame = pd.concat(sides, ignore_index=True)
    spot = float(np.nanmedian(_num(df, "UNDERLYING_LAST", path, line_no)))
    qt = pd.Timestamp(pick, unit="s", tz="UTC").tz_convert(NY)
    return _finalize(frame, path=path, source_format="optionsdx", spot=spot, quote_time=qt, underlying=und,
                     extra_warnings=_other_times_warning(len(times)))


def _other_times_warning(n_times: int) -> list[str]:
    if n_times <= 1:
        return []
    return [f"the file holds {n_times} quote times; this snapshot is one of them (load_all() returns every one)"]


def _underlying_from_filename(path: str) -> str:
    stem = Path(path).stem.lower()
    m = re.match(r"([a-z]{1,6})[_-]", stem)
    return m.group(1).upper() if m else "UNKNOWN"


# ----------------------------------------------------------------------------------------------- canonical


def write_canonical(snapshot: Snapshot, path: str | Path | None = None) -> str:
    """Write ``snapshot`` as volsurf's canonical CSV (metadata in ``#`` lines, then the schema's columns).

    Returns the text; writes it to ``path`` when given. :func:`load` reads it back unchanged.
    """
    m = snapshot.meta
    head = [
        CANONICAL_MAGIC,
        f"# underlying: {m.underlying}",
        f"# underlying_name: {m.underlying_name}",
        f"# spot: {m.spot!r}",
        f"# quote_time: {m.quote_time.isoformat()}",
        f"# trade_date: {m.trade_date.isoformat()}",
        f"# valuation_time: {m.valuation_time.isoformat()}",
        f"# source_format: {m.source_format}",
        f"# source_file: {Path(m.source_file).name}",
        f"# hygiene: {json.dumps(m.hygiene)}",
        f"# warnings: {json.dumps(list(m.warnings))}",
    ]
    f = snapshot.frame.copy()
    f["expiry"] = _per_distinct(f["expiry"], lambda x: x.isoformat())
    for c in f.columns:
        v = f[c].to_numpy()
        if v.dtype == np.float64 and not (np.signbit(v) & (v == 0)).any():  # factorize merges -0.0 into 0.0
            # What to_csv(float_format=CANONICAL_FLOAT_FORMAT) writes, formatted once per distinct value (to_csv
            # formats every cell in Python; chains repeat strikes, volumes and open interest).
            f[c] = _per_distinct(v, lambda x: "" if x != x else CANONICAL_FLOAT_FORMAT % x)
    body = f.to_csv(index=False, float_format=CANONICAL_FLOAT_FORMAT, lineterminator="\n")
    text = "\n".join(head) + "\n" + body
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    return text


# Missing-number spellings the fast canonical read accepts; anything else that is not a plain number makes the C
# parser fail and the checked path (:func:`_parse_numbers`, case-insensitive, exact error lines) take over.
_FAST_NA = sorted({v for t in MISSING_TOKENS for v in (t, t.upper(), t.capitalize())} | {"NaN", "N/A"})


def _canonical_body_fast(text: str) -> pd.DataFrame | None:
    """The canonical body with float columns typed by the CSV reader itself, or None.

    pyarrow's CSV reader when it is installed (several times faster than pandas' C parser at building string
    columns), else pandas' C parser. None when anything is unusual (missing or duplicate columns, padded
    fields, a field the float parser rejects): the caller then takes the string path with per-field checks,
    which gives the same values for every file this accepts.
    """
    lines = text.split("\n", 64)
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].startswith("#")):
        start += 1
    if start >= len(lines) - 1:
        return None  # header not within the first lines, or no body: leave it to the checked path
    header = next(csv.reader([lines[start]]))
    if header != [h.strip() for h in header] or len(set(header)) != len(header) or not set(COLUMNS) <= set(header):
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pa_compute
        import pyarrow.csv as pa_csv
    except ImportError:
        pa = None
    if pa is not None:
        types = {c: (pa.float64() if c in FLOAT_COLUMNS else pa.string()) for c in header}
        try:
            table = pa_csv.read_csv(
                io.BytesIO(text.encode("utf-8")),
                read_options=pa_csv.ReadOptions(skip_rows=start, use_threads=False),
                convert_options=pa_csv.ConvertOptions(
                    column_types=types, null_values=_FAST_NA, strings_can_be_null=False, quoted_strings_can_be_null=False
                ),
            )
        except (pa.ArrowException, ValueError):
            return None
        for c in header:
            if c not in FLOAT_COLUMNS and any(
                pa_compute.any(pa_compute.starts_with(table[c], ws)).as_py() for ws in (" ", "\t")
            ):
                return None  # padded fields: the checked path strips them (skipinitialspace)
        return table.to_pandas()
    dtype = defaultdict(lambda: str, dict.fromkeys(FLOAT_COLUMNS, "float64"))
    try:
        df = pd.read_csv(
            io.StringIO(text), skiprows=start, dtype=dtype, keep_default_na=False,
            na_values=dict.fromkeys(FLOAT_COLUMNS, _FAST_NA), skipinitialspace=True, engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    if not all(df[c].dtype == np.float64 for c in FLOAT_COLUMNS):
        return None
    return df


def _load_canonical(path: str, text: str, lines: list[str], **_: object) -> Snapshot:
    meta: dict[str, str] = {}
    n_head = 0
    for line in lines:
        if not line.startswith("#"):
            break
        n_head += 1
        if ":" in line:
            k, v = line[1:].split(":", 1)
            meta[k.strip()] = v.strip()
    for key in ("underlying", "spot", "quote_time", "trade_date", "valuation_time", "hygiene"):
        if key not in meta:
            raise FormatError(path, f"canonical header lacks '# {key}:'", line=n_head, expected=f"a '# {key}: ...' line")
    df = _canonical_body_fast(text)
    if df is None:
        df, line_no = _read_long_csv(path, text)
        _require_columns(path, list(df.columns), COLUMNS, n_head + 1)
        for c in FLOAT_COLUMNS:
            df[c] = _num(df, c, path, line_no)
    # Parse each distinct settlement instant once (a chain has tens of expiries over thousands of rows).
    codes, uniq = pd.factorize(df["expiry"], use_na_sentinel=False)
    expiry = pd.DatetimeIndex(pd.to_datetime(np.asarray(uniq, dtype=object), utc=True)).tz_convert(NY)
    df["expiry"] = expiry.take(codes)
    df["flags"] = df["flags"].fillna("")
    try:
        hygiene = {k: int(v) for k, v in json.loads(meta["hygiene"]).items()}
        sm = SnapshotMeta(
            underlying=meta["underlying"],
            underlying_name=meta.get("underlying_name", ""),
            spot=float(meta["spot"]),
            quote_time=pd.Timestamp(meta["quote_time"]).tz_convert(NY),
            trade_date=pd.Timestamp(meta["trade_date"]).date(),
            valuation_time=pd.Timestamp(meta["valuation_time"]).tz_convert(NY),
            source_format=meta.get("source_format", "canonical"),
            source_file=str(path),
            hygiene=hygiene,
            warnings=tuple(json.loads(meta.get("warnings", "[]"))),
        )
    except (ValueError, TypeError) as exc:
        raise FormatError(path, f"bad canonical header value ({exc})", line=n_head, expected="the header volsurf normalize writes") from exc
    return Snapshot(frame=df[list(COLUMNS)].reset_index(drop=True), meta=sm)


# ----------------------------------------------------------------------------------------------- detection

Loader = Callable[..., Snapshot]


def detect_format(lines: list[str]) -> str | None:
    """Name of the format whose signature the first lines match, or None."""
    head = [line.strip().lstrip("\ufeff") for line in lines[:25]]
    if head and head[0].startswith(CANONICAL_MAGIC):
        return "canonical"
    if _find_cboe_header(lines) is not None:
        return "cboe_quotedata"
    first = next((h for h in head if h and not h.startswith("#")), "")
    cols = {c.strip().strip('"').strip() for c in first.split(",")}
    upper = {c.strip("[]").upper() for c in cols}
    if {"QUOTE_UNIXTIME", "UNDERLYING_LAST", "EXPIRE_DATE"} <= upper:
        return "optionsdx"
    if {"underlying_symbol", "quote_datetime", "root", "expiration", "option_type"} <= cols:
        return "datashop"
    if "contractSymbol" in cols:
        return "yfinance"
    return None


LOADERS: dict[str, Loader] = {
    "cboe_quotedata": _load_cboe,
    "yfinance": _load_yfinance,
    "datashop": _load_datashop,
    "optionsdx": _load_optionsdx,
    "canonical": _load_canonical,
}


def load(path: str | os.PathLike, **options: object) -> Snapshot:
    """Load one chain file of any supported format (detected by content) into a :class:`Snapshot`.

    Parameters
    ----------
    path : str or PathLike
        The chain file.
    **options
        Format-specific: ``spot`` (yfinance files without a spot column), ``quote_time`` (pick one quote time of
        a multi-time DataShop/OptionsDX file; default the latest), ``underlying`` (OptionsDX files).

    Raises
    ------
    InputFileError, FormatError, UnknownFormatError
        With the file, line and column when they apply.
    """
    p = str(path)
    text = _read_text(p)
    lines = text.split("\n")
    fmt = detect_format(lines)
    if fmt is None:
        raise UnknownFormatError(
            p,
            "unknown chain format",
            line=1,
            expected="a Cboe quotedata export, a yfinance/DataShop/OptionsDX CSV, or volsurf canonical CSV",
            hint="see README 'Input formats'",
        )
    snap = LOADERS[fmt](p, text, lines, **options)
    if snap.frame.empty:
        raise FormatError(p, "no live contracts after hygiene (all expired or duplicates)", expected="at least one unexpired contract")
    return snap


def load_all(path: str | os.PathLike, **options: object) -> list[Snapshot]:
    """Every snapshot in a file: one per quote time for DataShop/OptionsDX files, else ``[load(path)]``."""
    p = str(path)
    text = _read_text(p)
    lines = text.split("\n")
    fmt = detect_format(lines)
    if fmt == "datashop":
        groups = _datashop_frames(p, text)
        return [_datashop_snapshot(p, t, g, ln, len(groups)) for t, g, ln in groups]
    if fmt == "optionsdx":
        df, line_no = _read_long_csv(p, text)
        df.columns = [c.strip().strip("[]").upper() for c in df.columns]
        _require_columns(p, list(df.columns), ["QUOTE_UNIXTIME"], 1)
        times = np.unique(_num(df, "QUOTE_UNIXTIME", p, line_no))
        return [_load_optionsdx(p, text, lines, quote_time=pd.Timestamp(t, unit="s", tz="UTC"), **options) for t in times]
    return [load(p, **options)]


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files from paths, directories (recursively, ``*.csv``/``*.txt``) and glob patterns, deduplicated."""
    out: list[str] = []
    for p in paths:
        if any(ch in p for ch in "*?["):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise InputFileError(p, "glob matched no files")
            out.extend(m for m in matches if os.path.isfile(m))
        elif os.path.isdir(p):
            found = sorted(str(f) for f in Path(p).rglob("*") if f.is_file() and f.suffix.lower() in (".csv", ".txt"))
            if not found:
                raise InputFileError(p, "directory holds no .csv files")
            out.extend(found)
        else:
            out.append(p)
    seen: set[str] = set()
    return [x for x in out if not (x in seen or seen.add(x))]


def load_many(paths: Iterable[str], *, progress: bool | None = None, **options: object) -> list[Snapshot]:
    """Load many files (paths, directories, globs) and return snapshots in trading-date (then quote-time) order.

    A progress bar (tqdm, on stderr) is shown when ``progress`` is True, or by default for more than 20 files on
    a terminal.
    """
    files = expand_paths(paths)
    if progress is None:
        import sys

        progress = len(files) > 20 and sys.stderr.isatty()
    if progress:
        from tqdm import tqdm

        it: Iterable[str] = tqdm(files, desc="loading", unit="file")
    else:
        it = files
    snaps = [load(f, **options) for f in it]
    return sorted(snaps, key=lambda s: (s.meta.trade_date, s.meta.quote_time))
