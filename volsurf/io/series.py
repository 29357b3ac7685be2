"""Daily series from CSV files: a date column and one or more value columns (prices, volumes, index levels)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from volsurf.errors import FormatError, InputFileError

__all__ = ["read_dated_series"]

_DATE_NAMES = ("date", "day", "timestamp", "time", "month", "datetime")




def _pick_column(frame: pd.DataFrame, prefer: Sequence[str], date_col: str, path: str, what: str) -> str:
    lower = {c.strip().lower(): c for c in frame.columns}
    for name in prefer:
        if name.lower() in lower:
            return lower[name.lower()]
    numeric = [c for c in frame.columns if c != date_col and pd.api.types.is_numeric_dtype(frame[c])]
    if len(numeric) == 1:
        return numeric[0]
    raise FormatError(
        path,
        f"cannot tell which column holds the {what}",
        expected=f"a column named {' or '.join(repr(p) for p in prefer)} or exactly one numeric column",
        hint=f"columns found: {', '.join(map(str, frame.columns))}",
    )


def read_dated_series(path: str | Path, prefer: Sequence[str], what: str = "value") -> pd.Series:
    """Read ``date,value`` data from a CSV into a float Series on a sorted DatetimeIndex.

    Parameters
    ----------
    path : str or Path
        CSV with a date column (named date/day/timestamp/month..., or else the first column if it parses).
    prefer : sequence of str
        Value column names to try in order (case-insensitive); otherwise the only numeric column.
    what : str
        What the values are, for error messages.

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    FormatError
        No date column, no unambiguous value column, unparseable dates/values, duplicated dates.
    """
    p = Path(path)
    spath = str(path)
    if not p.exists():
        raise InputFileError(spath, "file not found")
    if p.is_dir():
        raise InputFileError(spath, "is a directory, expected a CSV file")
    try:
        frame = pd.read_csv(p)
    except pd.errors.EmptyDataError as exc:
        raise InputFileError(spath, "file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise FormatError(spath, f"not a readable CSV ({str(exc).splitlines()[0]})") from exc
    if frame.empty:
        raise FormatError(spath, "no data rows", expected="a header line and one row per day")
    frame.columns = [str(c).strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    date_col = next((lower[n] for n in _DATE_NAMES if n in lower), frame.columns[0])
    dates = pd.to_datetime(frame[date_col], errors="coerce", format="mixed")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        raise FormatError(
            spath,
            f"unparseable date {frame[date_col].iloc[bad[0]]!r}",
            line=int(bad[0]) + 2,
            column=date_col,
            expected="dates like YYYY-MM-DD",
        )
    value_col = _pick_column(frame, prefer, date_col, spath, what)
    values = pd.to_numeric(frame[value_col], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if bad.size:
        raise FormatError(
            spath,
            f"non-numeric {what} {frame[value_col].iloc[bad[0]]!r}",
            line=int(bad[0]) + 2,
            column=value_col,
            expected="a number on every row",
        )
    index = pd.DatetimeIndex(dates).tz_localize(None) if dates.dt.tz is not None else pd.DatetimeIndex(dates)
    series = pd.Series(values.to_numpy(dtype=float), index=index.normalize(), name=value_col)
    dup = series.index.duplicated()
    if dup.any():
        raise FormatError(spath, f"duplicated date {series.index[dup][0].date()}", column=date_col)
    return series.sort_index()
