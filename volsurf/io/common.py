"""Shared pieces of the chain loaders: reading text, number parsing, contract ids, OCC symbols, and
:func:`_finalize` (settlement times, ids, hygiene rules, metadata) that every loader ends with."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import FormatError, InputFileError, TradeDateWarning, clip, warn
from volsurf.market.snapshot import (
    COLUMNS,
    FLOAT_COLUMNS,
    HYGIENE_RULES,
    OI_MAX,
    VOLUME_MAX,
    Snapshot,
    SnapshotMeta,
)
from volsurf.market.timing import settlement_for_root, settlement_times
from volsurf.units import NY

MISSING_TOKENS = frozenset({"", "-", "--", "n/a", "na", "nan", "none", "null"})
VENDOR_IV_PLACEHOLDER = 1e-4  # yfinance writes 1e-05 for "no IV"
WEEKLY_SUFFIXES = ("W", "P")  # SPXW -> SPX, NDXP -> NDX, RUTW -> RUT



GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(path: str, raw: bytes) -> bytes:
    """The content of a gzip file (every member), or a one-line error for a damaged or truncated one."""
    import gzip
    import zlib

    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputFileError(path, f"damaged gzip file ({exc})", "download the file again, or decompress it "
                             "with gunzip to see how much is left") from exc


def gzip_head(path: str | Path, size: int) -> bytes:
    """The first ``size`` bytes of a file's content, decompressed when it is gzip (b"" when unreadable)."""
    import gzip
    import zlib

    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
        if head[:2] != GZIP_MAGIC:
            return head
        with gzip.open(path, "rb") as gz:
            return gz.read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def _read_text(path: str) -> str:
    p = Path(path)
    if not p.exists():
        raise InputFileError(path, "no such file", "check the path")
    if p.is_dir():
        raise InputFileError(path, "is a directory, expected a chain file", "pass a file, or use a command that takes many")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"cannot read the file ({exc.strerror or exc})", "check its permissions") from exc
    if raw[:2] == GZIP_MAGIC:  # a gzip-compressed chain (e.g. the raw responses `volsurf fetch --raw-dir` keeps)
        raw = _gunzip(path, raw)
    if not raw or raw.isspace():  # (no stripped copy of a large file)
        raise InputFileError(path, "file is empty", "download the chain again")
    if b"\x00" in raw[:4096] or _binary_share(raw[:4096]) > 0.05:
        raise InputFileError(path, "looks like a binary file, expected a CSV text file", "export the chain as CSV")
    _check_line_lengths(path, raw)
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


#: Longest line a text (CSV) chain may hold. A Cboe row is a few hundred characters; a longer line is damage, and
#: rejecting it here (on the raw bytes, before decoding or splitting) keeps the error as cheap as the file.
#: JSON feeds are exempt: a payload is often one long line.
MAX_LINE_CHARS = 100_000

_JSON_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*[{\[]")


def _check_line_lengths(path: str, raw: bytes) -> None:
    if _JSON_START.match(raw):  # (a match, not raw.lstrip(): no copy of the file)
        return
    start = _first_long_line(raw, MAX_LINE_CHARS)
    if start is None:
        return
    line = raw.count(b"\n", 0, start) + 1
    end = raw.find(b"\n", start)
    size = (len(raw) if end < 0 else end) - start
    raise FormatError(path, f"line is {size:,} bytes long", line=line,
                      expected=f"lines of at most {MAX_LINE_CHARS:,} characters (a chain row is a few hundred)",
                      hint="the file is damaged: download it again")


def _first_long_line(raw: bytes, limit: int, chunk: int = 1 << 20) -> int | None:
    """Offset of the first line of ``raw`` longer than ``limit`` bytes, or None.

    Newlines are found with numpy over fixed-size chunks of a view of ``raw``: linear time (a regex with a
    bounded repeat backtracks at every position) and a few MB of memory whatever the file's size.
    """
    view = memoryview(raw)
    prev = -1  # offset of the last newline seen
    for off in range(0, len(raw), chunk):
        block = np.frombuffer(view[off : off + chunk], dtype=np.uint8)
        nl = np.flatnonzero(block == 10) + off
        if nl.size:
            starts = np.concatenate(([prev + 1], nl[:-1] + 1))
            long = np.flatnonzero(nl - starts > limit)
            if long.size:
                return int(starts[long[0]])
            prev = int(nl[-1])
        if off + block.size - (prev + 1) > limit:
            return prev + 1
    return None


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
            f"cannot read {clip(repr(values.iloc[i]), 60)} as a number",
            line=int(line_numbers[i]),
            column=column,
            expected="a number (or an empty field)",
        )
    return num.to_numpy(dtype=float)




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


def _per_distinct(values: pd.Series | np.ndarray, fn: Callable[[Any], object]) -> np.ndarray:
    """``fn`` applied to every element, evaluated once per distinct value (object array).

    Chains repeat a handful of roots, dates and labels over thousands of rows; a Python call per distinct value
    plus an integer take is far cheaper than a pandas string op or ``map`` over every row.
    """
    codes, uniq = pd.factorize(values, use_na_sentinel=False)
    mapped = np.empty(len(uniq), dtype=object)
    mapped[:] = [fn(u) for u in uniq]
    return mapped[codes]


def _str_per_distinct(values: pd.Series, fn: Callable[[Any], object]) -> Any:
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
    trade_date: dt.date | None = None,
    extra_warnings: Iterable[str] = (),
    as_of: pd.Timestamp | None = None,
) -> Snapshot:
    """Common tail of every loader: settlement times, ids, hygiene rules, metadata.

    ``as_of`` (``--as-of``) replaces the file's ``quote_time`` (and so the trade date and valuation time).
    """
    if as_of is not None:
        if quote_time is None or pd.Timestamp(as_of) != pd.Timestamp(quote_time):
            extra_warnings = [*extra_warnings, f"as-of time {as_of} given (the file says {quote_time})"]
        quote_time, trade_date, valuation_time = as_of, None, None
    from volsurf.market import calendar

    check_spot(path, spot)
    df = df.copy(deep=False)  # copy-on-write: columns are copied only when changed (a chain of 578,000 rows: 80 MB)
    _check_strikes(path, df)
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

    _check_in_calendar(path, quote_time, df["expiry_date"])
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
    if expired.any():
        df = df.loc[~expired]
    dup = df.duplicated("contract", keep="first").to_numpy()
    counts["duplicate"] = int(dup.sum())
    removed.append(df.loc[dup].assign(reason="duplicate"))
    if dup.any():
        df = df.loc[~dup]
    # flagged rows: values no row can use are set to missing first (counted), so that no rule below and
    # nothing downstream sees a negative or infinite price, volume or vendor figure.
    unusable = _set_aside_unusable(df)
    bid, ask = df["bid"].to_numpy(), df["ask"].to_numpy()
    with np.errstate(invalid="ignore"):
        rules = {
            "crossed": bid > ask,
            "zero_bid": ~(bid > 0),
            "no_ask": ~(ask > 0),
            "vendor_iv_missing": ~(df["vendor_iv"].to_numpy() > VENDOR_IV_PLACEHOLDER),
            "missing_oi": np.isnan(df["open_interest"].to_numpy()),
            "bad_oi": ~np.isnan(df["open_interest"].to_numpy())
            & ~((df["open_interest"].to_numpy() >= 0) & (df["open_interest"].to_numpy() <= OI_MAX)),
            **unusable,
        }
    # Flags as a bit code per row, spelled out once per distinct code (string joins per row are slow).
    code = np.zeros(len(df), dtype=np.int64)
    for bit, (name, mask) in enumerate(rules.items()):
        counts[name] = int(mask.sum())
        code |= mask.astype(np.int64) << bit
    names = list(rules)
    df["flags"] = _str_per_distinct(pd.Series(code), lambda c: ";".join(n for b, n in enumerate(names) if int(c) >> b & 1))
    df.loc[rules["vendor_iv_missing"], "vendor_iv"] = np.nan
    df.loc[rules["bad_oi"], "open_interest"] = np.nan
    warnings.extend(extra_warnings)

    df = _sort_chain(df)[list(COLUMNS)]
    meta = SnapshotMeta(
        underlying=printable(underlying or _underlying_from_roots(df["root"].unique())),
        spot=float(spot),
        quote_time=quote_time,
        trade_date=trade_date,
        valuation_time=valuation_time,
        source_format=source_format,
        source_file=str(path),
        hygiene=counts,
        underlying_name=printable(underlying_name),
        warnings=tuple(warnings),
    )
    gone = pd.concat(removed, ignore_index=True)
    gone["flags"] = ""
    return Snapshot(frame=df, meta=meta, removed=gone[[*COLUMNS, "reason"]])


def printable(text: str) -> str:
    """``text`` without control characters (a name from a file ends up in tables, chart titles, file names)."""
    return _CONTROL_CHARS.sub("", text)


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _check_in_calendar(path: str, quote_time: pd.Timestamp, expiry_dates: pd.Series) -> None:
    """The quote time and every expiry inside the exchange calendar's range (a Date line of 2099 is damage)."""
    from volsurf.market import calendar

    cal = calendar.nyse()
    lo, hi = pd.Timestamp(cal.first_session).date(), pd.Timestamp(cal.last_session).date()
    day = pd.Timestamp(quote_time).date()
    if not lo <= day <= hi:
        raise FormatError(path, f"the quote time {day} is outside the exchange calendar ({lo} .. {hi})",
                          expected="a quote date the NYSE calendar covers", hint="fix the Date line or pass --as-of")
    if len(expiry_dates):
        dates = pd.to_datetime(pd.Series(pd.unique(expiry_dates.astype(str))), format="%Y-%m-%d", errors="coerce")
        first, last = dates.min(), dates.max()
        if pd.isna(first) or not (lo <= first.date() and last.date() <= hi):
            raise FormatError(path, f"expiries {first.date() if pd.notna(first) else '?'} .. "
                              f"{last.date() if pd.notna(last) else '?'} fall outside the exchange calendar "
                              f"({lo} .. {hi})", column="expiry", expected="expiry dates the NYSE calendar covers")


def check_spot(path: str, spot: object) -> None:
    """Raise a one-line :class:`FormatError` unless ``spot`` is a positive finite number (every price, forward
    and exposure is scaled by it: there is no row-by-row fallback)."""
    try:
        value = float(spot)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise FormatError(path, f"spot {clip(str(spot), 40)} is not a positive finite number",
                          expected="the underlying's price, e.g. 'Last: 4505.10'",
                          hint="fix the file's spot (the 'Last:' or '# spot:' line)")


def _check_strikes(path: str, df: pd.DataFrame) -> None:
    """Raise a one-line :class:`FormatError` at the first strike that is not a positive finite number.

    A strike is part of a contract's identity (its id, its place on the smile): a row without one cannot be
    set aside as a flagged row, so the file is rejected, as the Cboe loader does for a strike it cannot read.
    """
    k = pd.to_numeric(df["strike"], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(k) & (k > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        name = df["contract"].iloc[i] if "contract" in df else None
        what = f" (contract {clip(str(name), 40)})" if isinstance(name, str) and name else ""
        raise FormatError(path, f"strike {clip(str(df['strike'].iloc[i]), 40)}{what} is not a positive finite number",
                          column="strike", expected="a positive strike")


def _set_aside_unusable(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Set values no computation can use to missing, in place; return the mask of rows each rule touched.

    ``bad_price``: bid, ask or last negative or non-finite. ``bad_volume``: volume negative, non-finite or above
    :data:`~volsurf.market.snapshot.VOLUME_MAX`. ``bad_vendor_greek``: vendor IV, delta or gamma non-finite.
    Missing values (NaN) are no fault: they are counted by their own rules (``zero_bid``, ``missing_oi``...).
    """
    masks: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore"):
        price_bad = np.zeros(len(df), dtype=bool)
        for c in ("bid", "ask", "last"):
            v = df[c].to_numpy()
            bad = np.isinf(v) | (v < 0)
            if bad.any():
                df.loc[bad, c] = np.nan
            price_bad |= bad
        masks["bad_price"] = price_bad
        v = df["volume"].to_numpy()
        vol_bad = np.isinf(v) | (v < 0) | (v > VOLUME_MAX)
        if vol_bad.any():
            df.loc[vol_bad, "volume"] = np.nan
        masks["bad_volume"] = vol_bad
        greek_bad = np.zeros(len(df), dtype=bool)
        for c in ("vendor_iv", "vendor_delta", "vendor_gamma"):
            bad = np.isinf(df[c].to_numpy())
            if bad.any():
                df.loc[bad, c] = np.nan
            greek_bad |= bad
        masks["bad_vendor_greek"] = greek_bad
    return masks


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
def _trade_date_for(quote_time: pd.Timestamp) -> dt.date:
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


def _other_times_warning(n_times: int) -> list[str]:
    if n_times <= 1:
        return []
    return [f"the file holds {n_times} quote times; this snapshot is one of them (load_all() returns every one)"]


def _underlying_from_filename(path: str) -> str:
    stem = Path(path).stem.lower()
    m = re.match(r"([a-z]{1,6})[_-]", stem)
    return m.group(1).upper() if m else "UNKNOWN"


def quotes_absent_reason(snapshot: Snapshot) -> str | None:
    """Why nothing that needs quotes (IVs from mids, forwards, the surface, skew) can be computed from
    ``snapshot``: no contract has a bid or an ask (the older Cboe JSON payload). None when quotes are there.

    Reports list the figures this rules out under "Signals absent" with this reason.
    """
    f = snapshot.frame
    if ((f["bid"] > 0) | (f["ask"] > 0)).any():
        return None
    fmt = snapshot.meta.source_format
    what = "the older Cboe JSON payload" if fmt == "cboe_json" else f"this {fmt} file"
    return f"{what} has no per-option bid/ask: IVs, forwards, the surface and skew cannot be computed from quotes"
