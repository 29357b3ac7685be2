"""Format detection by content and the public loading entry points (:func:`load`, :func:`load_all`,
:func:`load_many`, :func:`expand_paths`)."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from volsurf.errors import FormatError, InputFileError, UnknownFormatError
from volsurf.io.canonical import CANONICAL_MAGIC, _load_canonical
from volsurf.io.cboe_csv import _find_cboe_header, _load_cboe
from volsurf.io.common import _num, _read_long_csv, _read_text, _require_columns
from volsurf.io.datashop import _datashop_frames, _datashop_snapshot, _load_datashop
from volsurf.io.optionsdx import _load_optionsdx
from volsurf.io.yfinance import _load_yfinance
from volsurf.market.snapshot import Snapshot

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
