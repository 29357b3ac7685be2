"""Daily series from CSV files: a date column and one or more value columns (prices, volumes, index levels).

Accepted layouts (all seen in public data):

- ISO dates (``2024-01-02``, with or without a time), Cboe's ``MM/DD/YYYY`` (zero-padded or not, e.g.
  ``11/1/2006``), day-first ``DD/MM/YYYY`` or ``DD.MM.YYYY`` when the month-first reading fails, ``YYYYMMDD``;
- a byte-order mark before the header, Windows line ends, blanks after the commas;
- a date column named ``date``/``day``/``timestamp``/... in English or another language (``Fecha``, ``Datum``,
  ``Data``, ``Date``...), else the first column whose cells parse as dates;
- FRED's ``.`` (and ``NA``, ``N/A``, ``#N/A``, ``null``, ``nan``, ``-``, an empty cell) for a missing value:
  an error by default (so a gap never passes silently), dropped with ``missing="drop"``;
- several value columns: ``column=`` names one, else the first of ``prefer`` present, else the only numeric
  column.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from volsurf.errors import DataError, FormatError, InputFileError, ParameterError

__all__ = ["MISSING_MARKERS", "read_dated_frame", "read_dated_series"]

_DATE_NAMES = (
    "date",
    "day",
    "timestamp",
    "time",
    "month",
    "datetime",
    "trade_date",
    "tradedate",
    "as_of",
    "asof",
    "dt",
    # other languages: Spanish/Portuguese/Italian, German/Dutch, French, Polish, Swedish, Chinese, Japanese
    "fecha",
    "data",
    "datum",
    "date_jour",
    "jour",
    "dia",
    "día",
    "giorno",
    "日期",
    "日付",
)

#: Cells read as "no value" (compared after stripping blanks, case-insensitive).
MISSING_MARKERS = frozenset({"", ".", "na", "n/a", "#n/a", "nan", "null", "none", "-", "--"})

#: Date layouts tried in order; the first that parses every cell wins (so 01/02/1990 is 2 January, as Cboe
#: writes it, unless some cell such as 13/02/1990 only parses day-first).
_DATE_FORMATS = ("ISO8601", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d", "%m/%d/%y", "%d-%b-%Y")

_MISSING_MODES = ("error", "drop")


#: Parsed files by content digest (a study reads several columns of one file; a changed file never hits).
_PARSED: OrderedDict[tuple[bytes, str], pd.DataFrame] = OrderedDict()
_PARSED_MAX = 8


def _read_text_frame(p: Path, spath: str) -> pd.DataFrame:
    """:func:`_parse_text` of the file's bytes, through a small cache keyed by a digest of those bytes."""
    data = p.read_bytes()
    key = (hashlib.blake2b(data, digest_size=16).digest(), spath)
    if key in _PARSED:
        _PARSED.move_to_end(key)
    else:
        _PARSED[key] = _parse_text(data, spath)
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    return _PARSED[key].copy()


def _parse_text(data: bytes, spath: str) -> pd.DataFrame:
    """All cells as stripped strings (no type guessing), header names stripped of blanks and BOMs."""
    last_exc: Exception | None = None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            frame = pd.read_csv(
                io.BytesIO(data),
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
                encoding=encoding,
            )
            break
        except pd.errors.EmptyDataError as exc:
            raise InputFileError(spath, "file is empty") from exc
        except UnicodeDecodeError as exc:
            last_exc = exc
        except (pd.errors.ParserError, ValueError) as exc:
            raise FormatError(spath, f"not a readable CSV ({str(exc).splitlines()[0]})") from exc
    else:  # pragma: no cover - cp1252 decodes nearly every byte
        raise FormatError(spath, f"not a readable CSV ({last_exc})", expected="UTF-8 or Windows-1252 text")
    frame.columns = [str(c).replace("\ufeff", "").strip() for c in frame.columns]
    return frame.fillna("").apply(lambda col: col.astype(str).str.strip())


def _parse_dates(cells: pd.Series) -> pd.Series:
    """Dates under the first layout of :data:`_DATE_FORMATS` that parses every cell, else mixed parsing."""
    for fmt in _DATE_FORMATS:
        parsed = pd.to_datetime(cells, errors="coerce", format=fmt)
        if not parsed.isna().any():
            return parsed
    return pd.to_datetime(cells, errors="coerce", format="mixed")


def _date_column(frame: pd.DataFrame) -> str:
    lower = {c.lower(): c for c in frame.columns}
    named = next((lower[n] for n in _DATE_NAMES if n in lower), None)
    if named is not None:
        return named
    for c in frame.columns:
        head = frame[c].head(20)
        if head.size and not pd.to_datetime(head, errors="coerce", format="mixed").isna().any():
            return c
    return frame.columns[0]


def _numeric(cells: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Values, mask of missing markers, mask of non-numeric text (neither a number nor a marker)."""
    missing = cells.str.lower().isin(MISSING_MARKERS).to_numpy()
    values = pd.to_numeric(cells.str.replace(",", "", regex=False).where(~missing), errors="coerce")
    bad = values.isna().to_numpy() & ~missing
    return values, missing, bad


def _numeric_columns(frame: pd.DataFrame, date_col: str) -> list[str]:
    out = []
    for c in frame.columns:
        if c == date_col:
            continue
        _, missing, bad = _numeric(frame[c])
        if not bad.any() and not missing.all():
            out.append(c)
    return out


def _pick_column(
    frame: pd.DataFrame,
    prefer: Sequence[str],
    column: str | None,
    date_col: str,
    path: str,
    what: str,
) -> str:
    lower = {c.lower(): c for c in frame.columns}
    if column is not None:
        if column.strip().lower() in lower:
            return lower[column.strip().lower()]
        raise FormatError(
            path,
            f"no column {column!r}",
            expected=f"a column named {column!r}",
            hint=f"columns found: {', '.join(map(str, frame.columns))}",
        )
    for name in prefer:
        if name.lower() in lower:
            return lower[name.lower()]
    numeric = _numeric_columns(frame, date_col)
    if len(numeric) == 1:
        return numeric[0]
    others = [c for c in frame.columns if c != date_col]
    if not numeric and len(others) == 1:
        return others[0]  # the only candidate: its bad cell is reported with its line
    wanted = f"a column named {' or '.join(repr(p) for p in prefer)} or " if prefer else ""
    raise FormatError(
        path,
        f"cannot tell which column holds the {what}",
        expected=f"{wanted}exactly one numeric column",
        hint=f"columns found: {', '.join(map(str, frame.columns))}; name one (e.g. --column)",
    )


def _load(path: str | Path) -> tuple[pd.DataFrame, str, pd.DatetimeIndex, str]:
    """Raw string frame, its date column, the parsed (normalized, tz-naive) dates and the path as text."""
    p = Path(path)
    spath = str(path)
    if not p.exists():
        raise InputFileError(spath, "file not found")
    if p.is_dir():
        raise InputFileError(spath, "is a directory, expected a CSV file")
    frame = _read_text_frame(p, spath)
    if frame.empty:
        raise FormatError(spath, "no data rows", expected="a header line and one row per day")
    date_col = _date_column(frame)
    dates = _parse_dates(frame[date_col])
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        raise FormatError(
            spath,
            f"unparseable date {frame[date_col].iloc[bad[0]]!r}",
            line=int(bad[0]) + 2,
            column=date_col,
            expected="dates like YYYY-MM-DD or MM/DD/YYYY",
        )
    index = pd.DatetimeIndex(dates)
    if index.tz is not None:
        index = index.tz_localize(None)
    return frame, date_col, index.normalize(), spath


def _values(
    frame: pd.DataFrame, col: str, spath: str, what: str, missing: str
) -> tuple[np.ndarray, np.ndarray]:
    """Float values of ``col`` and the mask of rows kept (all rows unless ``missing='drop'``)."""
    values, miss, bad = _numeric(frame[col])
    first_bad = np.flatnonzero(bad | miss) if missing == "error" else np.flatnonzero(bad)
    if first_bad.size:
        i = int(first_bad[0])
        kind = "missing" if miss[i] else "non-numeric"
        raise FormatError(
            spath,
            f"{kind} {what} {frame[col].iloc[i]!r}",
            line=i + 2,
            column=col,
            expected="a number on every row",
            hint="missing values ('.', 'NA', empty) are dropped with missing='drop'" if miss[i] else None,
        )
    keep = ~miss
    if not keep.any():
        raise DataError(f"{spath}: column {col!r} has no values", "choose another column")
    return values.to_numpy(dtype=float), keep


def _check_dup(index: pd.Index, spath: str, date_col: str) -> None:
    dup = index.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise FormatError(spath, f"duplicated date {index[i].date()}", column=date_col)


def read_dated_series(
    path: str | Path,
    prefer: Sequence[str] = (),
    what: str = "value",
    *,
    column: str | None = None,
    missing: str = "error",
) -> pd.Series:
    """Read ``date,value`` data from a CSV into a float Series on a sorted DatetimeIndex.

    Parameters
    ----------
    path : str or Path
        CSV with a date column (named date/day/timestamp/month/Fecha/Datum..., else the first column whose
        cells parse as dates) and one or more value columns. A byte-order mark, Windows line ends and blanks
        after commas are accepted; see the module docstring for the date layouts.
    prefer : sequence of str
        Value column names to try in order (case-insensitive) when ``column`` is not given; otherwise the only
        numeric column.
    what : str
        What the values are, for error messages.
    column : str, optional
        The value column to read (case-insensitive); an error when absent.
    missing : {"error", "drop"}
        What to do with a missing-value marker (:data:`MISSING_MARKERS`, e.g. FRED's ``.``): raise a
        :class:`FormatError` naming the line (default), or drop the row.

    Returns
    -------
    Series
        Float values named after the value column, on a tz-naive, normalized, sorted DatetimeIndex.

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    FormatError
        No date column, no unambiguous value column, unparseable dates/values, missing values (with
        ``missing="error"``), duplicated dates.
    DataError
        ``missing="drop"`` and the column holds no value at all.
    """
    if missing not in _MISSING_MODES:
        raise ParameterError(f"missing={missing!r}", f"use one of {', '.join(_MISSING_MODES)}")
    frame, date_col, index, spath = _load(path)
    value_col = _pick_column(frame, prefer, column, date_col, spath, what)
    values, keep = _values(frame, value_col, spath, what, missing)
    series = pd.Series(values[keep], index=index[keep], name=value_col)
    _check_dup(series.index, spath, date_col)
    return series.sort_index()


def read_dated_frame(path: str | Path, what: str = "value", *, missing: str = "drop") -> pd.DataFrame:
    """Every numeric column of a dated CSV as a float DataFrame on a sorted DatetimeIndex.

    A column is numeric when each of its cells is a number or a missing marker and at least one is a number;
    with ``missing="drop"`` (the default here) markers become NaN, with ``"error"`` they raise. The file
    layouts accepted are those of :func:`read_dated_series`.

    Raises
    ------
    FormatError
        As :func:`read_dated_series`, and when the file has no numeric column.
    """
    if missing not in _MISSING_MODES:
        raise ParameterError(f"missing={missing!r}", f"use one of {', '.join(_MISSING_MODES)}")
    frame, date_col, index, spath = _load(path)
    cols = _numeric_columns(frame, date_col)
    if not cols:
        raise FormatError(spath, f"no numeric column for the {what}", expected="a date column and number columns")
    data = {}
    for c in cols:
        values, keep = _values(frame, c, spath, what, missing)
        data[c] = np.where(keep, values, np.nan)
    out = pd.DataFrame(data, index=index)
    out.index.name = date_col
    _check_dup(out.index, spath, date_col)
    return out.sort_index()
