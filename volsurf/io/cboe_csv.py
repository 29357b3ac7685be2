"""Cboe delayed-quotes CSV export (``quotedata.csv``).

A preamble (name/``Last:`` line, a locale-dependent ``Date:`` line), a 22-column header ``Expiration
Date,Calls,...,Strike,Puts,...`` with duplicate names, then one row per (expiry, root, strike) holding the call on
the left and the put on the right.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from volsurf.errors import FormatError, TradeDateWarning, warn
from volsurf.io.common import (
    _check_in_calendar,
    _finalize,
    _parse_numbers,
    _trade_date_for,
    _underlying_from_roots,
)
from volsurf.io.dates import DateReading, choose_reading, date_value_from_line, read_date_value
from volsurf.market import calendar
from volsurf.market.snapshot import Snapshot

if TYPE_CHECKING:
    from volsurf.io.collect import SnapshotKey

CBOE_HEADER = (
    "Expiration Date,Calls,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest,Strike,"
    "Puts,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest"
).split(",")


def _find_cboe_header(lines: list[str]) -> int | None:
    for i, line in enumerate(lines[:20]):
        if line.lstrip('"').startswith("Expiration Date,Calls"):
            return i
    return None


@dataclass(frozen=True)
class _Preamble:
    spot: float
    name: str
    reading: DateReading | None
    date_line: int  # 1-based; 0 = no Date line
    date_text: str


def _csv_fields(path: str, line: str, line_no: int) -> list[str]:
    """The fields of one CSV line; a line the csv module refuses (a field over its size limit) is a FormatError."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error as exc:
        raise FormatError(path, f"cannot split the line into fields ({exc})", line=line_no,
                          expected="comma-separated fields") from exc


def _check_header(path: str, lines: list[str]) -> int:
    hi = _find_cboe_header(lines)
    assert hi is not None
    header = _csv_fields(path, lines[hi], hi + 1)
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
    return hi


def _preamble(path: str, lines: list[str], hi: int, as_of: pd.Timestamp | None) -> _Preamble:
    """Name/Last line and Date line, in any order, anywhere above the header.

    The Date value is cut from the raw line (:func:`~volsurf.io.dates.date_value_from_line`): a CSV reader splits
    an unquoted date that holds a comma. With ``as_of`` a missing or unreadable Date line is no error.
    """
    spot = None
    reading: DateReading | None = None
    date_line = 0
    date_text = ""
    name = ""
    for j, line in enumerate(lines[:hi]):
        value = date_value_from_line(line)
        if value is not None:
            if date_line == 0:
                date_line, date_text = j + 1, value
                try:
                    reading = read_date_value(value)
                except ValueError as exc:
                    if as_of is None:
                        raise FormatError(
                            path,
                            f"cannot read the Date line {_truncate(line)!r} ({exc})",
                            line=j + 1,
                            column="Date",
                            expected="a date and time such as 'Date: May 1, 2025 at 4:49 PM EDT'",
                            hint="pass the as-of time with --as-of",
                        ) from exc
            continue
        fields = [f.strip() for f in _csv_fields(path, line, j + 1)] if line.strip() else []
        for f in fields:
            if f.startswith("Last:") and spot is None:
                try:
                    spot = float(f[5:].strip().replace(",", ""))
                except ValueError as exc:
                    raise FormatError(path, f"cannot read spot from {_truncate(f)!r}", line=j + 1,
                                      expected="'Last: <number>'") from exc
                name = fields[0]
    if spot is None:
        raise FormatError(path, "no 'Last: <spot>' line above the header", line=1, expected="the underlying's name line, e.g. 'S&P 500 INDEX,Last: 4505.10,...'")
    if date_line == 0 and as_of is None:
        raise FormatError(
            path, "no 'Date:' line above the header", line=hi, expected="a line such as 'Date: May 1, 2025 at 4:49 PM EDT,...'",
            hint="pass the as-of time with --as-of",
        )
    return _Preamble(spot, name, reading, date_line, date_text)


def _quote_time(path: str, pre: _Preamble, first_expiry: dt.date | None, as_of: pd.Timestamp | None) -> tuple[pd.Timestamp, list[str]]:
    """The as-of time (``as_of``, else the Date line with an ambiguous day/month decided) and the notes."""
    notes: list[str] = []
    if as_of is not None:
        if pre.date_line:
            notes.append(f"as-of time {as_of} given; the file's Date line ({pre.date_text[:60]!r}) not used")
        return as_of, notes
    assert pre.reading is not None
    quote_time, decided = choose_reading(pre.reading, first_expiry, pre.date_text)
    if decided:
        warn(notes, TradeDateWarning, f"{path}, line {pre.date_line}: {decided}", stacklevel=3)
    if not pre.reading.has_time:
        warn(notes, TradeDateWarning, f"{path}, line {pre.date_line}: the Date line has no time of day; taken as "
             f"{quote_time:%Y-%m-%d} 16:00 New York (the close)", stacklevel=3)
    return quote_time, notes


def light_key(path: str, lines: list[str], *, as_of: pd.Timestamp | None = None) -> SnapshotKey | None:
    """The :class:`~volsurf.io.collect.SnapshotKey` of a Cboe export without parsing its numbers.

    Underlying from the option symbols' roots, trading date from the Date line and the expiry column (as
    :func:`~volsurf.io.common._finalize` decides it), digest of the data rows. None when the body is irregular
    (the caller then loads the file).
    """
    from volsurf.io.collect import SnapshotKey

    hi = _check_header(path, lines)
    pre = _preamble(path, lines, hi, as_of)
    rows = [ln.rstrip() for ln in lines[hi + 1 :] if ln.strip(" ,\t")]
    if not rows:
        return None
    expiries: set[str] = set()
    roots: set[str] = set()
    for ln in rows:
        parts = ln.split(",", 2)
        if len(parts) < 3 or len(parts[1].strip()) < 16:
            return None
        expiries.add(parts[0].strip())
        roots.add(parts[1].strip()[:-15])
    parsed = pd.to_datetime(pd.Series(sorted(expiries)), format="%a %b %d %Y", errors="coerce")
    if parsed.isna().any():
        return None
    first_expiry = parsed.min().date()
    quote_time, _ = _quote_time(path, pre, first_expiry, as_of)
    _check_in_calendar(path, quote_time, parsed.dt.strftime("%Y-%m-%d"))
    trade_date = _trade_date_for(quote_time)
    if first_expiry < trade_date and calendar.is_session(first_expiry):
        trade_date = first_expiry
    digest = hashlib.sha1("\n".join(rows).encode("utf-8")).hexdigest()
    return SnapshotKey(path, _underlying_from_roots(r.upper() for r in roots), trade_date, quote_time, "csv:" + digest)


def _load_cboe(path: str, text: str, lines: list[str], *, as_of: pd.Timestamp | None = None, **_: object) -> Snapshot:
    hi = _check_header(path, lines)
    pre = _preamble(path, lines, hi, as_of)
    spot, name = pre.spot, pre.name

    raw, line_no = _cboe_body(path, lines, hi)
    # Parse and format each distinct expiry once (tens of dates over thousands of rows).
    exp_codes, exp_uniq = pd.factorize(raw[0], use_na_sentinel=False)
    exp_parsed = pd.DatetimeIndex(pd.to_datetime(pd.Series(exp_uniq, dtype=object), format="%a %b %d %Y", errors="coerce"))
    exp_bad = exp_parsed.isna()[exp_codes]
    if exp_bad.any():
        i = int(np.flatnonzero(exp_bad)[0])
        raise FormatError(path, f"cannot read expiry {_truncate(str(raw[0].iloc[i]), 40)!r}", line=int(line_no[i]), column="Expiration Date", expected="a date like 'Fri Sep 15 2023'")
    strike = raw[11].to_numpy(dtype=float)
    if not (np.isfinite(strike) & (strike > 0)).all():
        i = int(np.flatnonzero(~(np.isfinite(strike) & (strike > 0)))[0])
        raise FormatError(path, f"strike {raw[11].iloc[i]} is not a positive finite number", line=int(line_no[i]), column="Strike", expected="a positive strike")
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
            raise FormatError(path, f"cannot read the option symbol {_truncate(str(sym.iloc[i]), 40)!r}", line=int(line_no[i]), column=CBOE_HEADER[first], expected="an OCC-style symbol like 'SPXW230915C04500000'")
        return d

    df = pd.concat([side(1, "call"), side(12, "put")], ignore_index=True)
    first_expiry = pd.Timestamp(exp_parsed.min()).date() if len(exp_parsed) else None
    quote_time, notes = _quote_time(path, pre, first_expiry, as_of)
    return _finalize(df, path=path, source_format="cboe_quotedata", spot=spot, quote_time=quote_time, underlying_name=name,
                     extra_warnings=notes)


def _truncate(line: str, width: int = 80) -> str:
    line = line.strip()
    return line if len(line) <= width else line[: width - 3] + "..."


_NUMERIC_CBOE = [i for i in range(22) if i not in (0, 1, 12)]


def _require_22(path: str, rows: list[list[str]], line_no: np.ndarray, index: np.ndarray | None = None) -> None:
    """Every row has 22 fields (extra empty fields, e.g. a trailing comma, are allowed)."""
    for j, r in enumerate(rows):
        if len(r) < 22 or any(x.strip() for x in r[22:]):
            i = j if index is None else int(index[j])
            raise FormatError(path, f"row has {len(r)} fields", line=int(line_no[i]), expected="22 comma-separated fields")


def _check_field_counts(path: str, rows: list[str], line_no: np.ndarray) -> None:
    """The fast parser pads short rows and drops extra fields: hold it to the slow parser's rule.

    A row without quotes has 21 commas (or more, all trailing and empty); only rows that differ, or hold a
    quote, go through the csv module.
    """
    odd = np.flatnonzero(np.fromiter((ln.count(",") != 21 or '"' in ln for ln in rows), dtype=bool, count=len(rows)))
    if odd.size:
        _require_22(path, list(csv.reader(rows[i] for i in odd)), line_no, odd)


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
    # Bytes, not a StringIO: a StringIO holds its text as 4 bytes a character (176 MB for a 44 MB chain).
    data = "\n".join(body[i] for i in nonblank).encode("utf-8")
    try:
        raw = pd.read_csv(
            io.BytesIO(data), encoding="utf-8", header=None, usecols=range(22), thousands=",",
            dtype={0: str, 1: str, 12: str}, na_values=["-", "--", "N/A", "n/a"], keep_default_na=True,
            skip_blank_lines=False, engine="c",
        )
        del data
        ok = len(raw) == len(nonblank) and all(pd.api.types.is_float_dtype(raw[c]) or pd.api.types.is_integer_dtype(raw[c]) for c in _NUMERIC_CBOE)
    except (pd.errors.ParserError, ValueError):
        ok = False
    if ok:
        _check_field_counts(path, [body[i] for i in nonblank], line_no)
        for c in _NUMERIC_CBOE:
            raw[c] = raw[c].astype(float)
        raw[0] = raw[0].astype(str).str.strip()
        return raw, line_no
    # Slow path: locate the problem precisely.
    reader = csv.reader(body[i] for i in nonblank)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise FormatError(path, f"cannot split the row into fields ({exc})", line=int(line_no[reader.line_num - 1]),
                          expected="22 comma-separated fields") from exc
    _require_22(path, rows, line_no)
    frame = pd.DataFrame([r[:22] for r in rows])
    for c in _NUMERIC_CBOE:
        frame[c] = _parse_numbers(frame[c], path, CBOE_HEADER[c], line_no)
    frame[0] = frame[0].astype(str).str.strip()
    return frame, line_no
