"""Cboe delayed-quotes CSV export (``quotedata.csv``).

A preamble (name/``Last:`` line, a locale-dependent ``Date:`` line), a 22-column header ``Expiration
Date,Calls,...,Strike,Puts,...`` with duplicate names, then one row per (expiry, root, strike) holding the call on
the left and the put on the right.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd

from volsurf.errors import FormatError
from volsurf.io.common import _finalize, _parse_numbers
from volsurf.io.dates import parse_cboe_date_line
from volsurf.market.snapshot import Snapshot

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
