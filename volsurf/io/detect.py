"""Format detection by content and the public loading entry points (:func:`load`, :func:`load_all`,
:func:`load_many`, :func:`expand_paths`)."""

from __future__ import annotations

import contextlib
import contextvars
import glob
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import FormatError, InputFileError, UnknownFormatError
from volsurf.io.canonical import CANONICAL_MAGIC, _load_canonical
from volsurf.io.cboe_csv import _find_cboe_header, _load_cboe
from volsurf.io.cboe_json import _load_cboe_json
from volsurf.io.common import GZIP_MAGIC, _read_text, gzip_head
from volsurf.io.datashop import _datashop_frames, _datashop_snapshot, _load_datashop
from volsurf.io.dates import read_as_of
from volsurf.io.optionsdx import _load_optionsdx, optionsdx_table
from volsurf.io.schwab_json import _load_schwab_json
from volsurf.io.yfinance import _load_yfinance
from volsurf.market.snapshot import Snapshot

Loader = Callable[..., Snapshot]


def detect_format(lines: list[str], text: str | None = None) -> str | None:
    """Name of the format whose signature the content matches, or None.

    ``lines`` are the file's lines; ``text`` (the whole file, optional) lets JSON feeds be told apart by their
    keys wherever they stand.
    """
    head = [line.strip().lstrip("\ufeff") for line in lines[:25]]
    first = next((h for h in head if h), "")
    if first.startswith("{") or (first.startswith("[") and first[1:].lstrip()[:1] in ("{", "")):
        body = text if text is not None else "\n".join(lines)
        if '"callExpDateMap"' in body or '"putExpDateMap"' in body:
            return "schwab_json"
        if '"options"' in body and '"option"' in body:
            return "cboe_json"
        return None
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
    "cboe_json": _load_cboe_json,
    "schwab_json": _load_schwab_json,
}

#: File name endings :func:`expand_paths` picks up in a directory.
CHAIN_SUFFIXES = (".csv", ".txt", ".json")


#: Per-file as-of overrides set by :func:`as_of_for` (path -> as-of), read by :func:`load` when the caller passes
#: none: lets a command give ``--as-of`` for its chain file to code that loads it by path (the report pipeline).
_AS_OF_FOR: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("volsurf_as_of_for", default=None)


@contextlib.contextmanager
def as_of_for(path: str | os.PathLike, as_of: object) -> Iterator[None]:
    """Within the block, :func:`load` of ``path`` (and only that file) uses ``as_of`` unless given another.

    Parameters
    ----------
    path : str or PathLike
        The chain file.
    as_of : str, Timestamp or None
        The as-of time (None: no override).
    """
    if as_of is None:
        yield
        return
    current = dict(_AS_OF_FOR.get() or {})
    current[os.path.abspath(str(path))] = as_of
    token = _AS_OF_FOR.set(current)
    try:
        yield
    finally:
        _AS_OF_FOR.reset(token)


def _options(path: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``as_of`` read into a New York timestamp (dropped when None)."""
    if options.get("as_of") is None:
        override = (_AS_OF_FOR.get() or {}).get(os.path.abspath(path))
        if override is not None:
            options["as_of"] = override
    as_of = options.get("as_of")
    if as_of is None:
        options.pop("as_of", None)
        return options
    options["as_of"] = read_as_of(as_of)
    return options


def _read(path: str) -> tuple[str, list[str], str]:
    text = _read_text(path)
    lines = text.split("\n")
    fmt = detect_format(lines, text)
    if fmt is None:
        raise UnknownFormatError(
            path,
            "unknown chain format",
            line=1,
            expected="a Cboe quotedata export or Cboe/Schwab JSON, a yfinance/DataShop/OptionsDX CSV, or volsurf canonical CSV",
            hint="see README 'Input formats'",
        )
    return text, lines, fmt


def load(path: str | os.PathLike, **options: Any) -> Snapshot:
    """Load one chain file of any supported format (detected by content) into a :class:`Snapshot`.

    Parameters
    ----------
    path : str or PathLike
        The chain file.
    **options
        Format-specific: ``spot`` (yfinance files without a spot column), ``quote_time`` (pick one quote time of
        a multi-time DataShop/OptionsDX file; default the latest), ``underlying`` (OptionsDX files), ``as_of``
        (a timestamp or text such as ``2022-04-01 16:15``; replaces the file's as-of time, and is required by
        files that carry none, such as the older Cboe JSON payload).

    Raises
    ------
    InputFileError, FormatError, UnknownFormatError
        With the file, line and column when they apply.
    """
    p = str(path)
    options = _options(p, dict(options))
    text, lines, fmt = _read(p)
    snap = LOADERS[fmt](p, text, lines, **options)
    if snap.frame.empty:
        raise FormatError(p, "no live contracts after hygiene (all expired or duplicates)", expected="at least one unexpired contract")
    return snap


def load_all(path: str | os.PathLike, **options: Any) -> list[Snapshot]:
    """Every snapshot in a file: one per quote time for DataShop/OptionsDX files, else ``[load(path)]``."""
    p = str(path)
    options = _options(p, dict(options))
    text, lines, fmt = _read(p)
    if fmt == "datashop":
        groups = _datashop_frames(p, text)
        as_of = options.get("as_of")
        return [_datashop_snapshot(p, t, g, ln, len(groups), as_of) for t, g, ln in groups]
    if fmt == "optionsdx":
        table = optionsdx_table(p, text)  # parsed once, not once per quote date
        times = np.unique(table[2])
        return [_load_optionsdx(p, text, lines, quote_time=pd.Timestamp(t, unit="s", tz="UTC"), table=table, **options)
                for t in times]
    return [load(p, **options)]


def holds_many_snapshots(path: str) -> bool:
    """Whether a file may hold several snapshots, from its head and tail only: a DataShop or OptionsDX file whose
    first and last data rows differ in quote time (these files are in time order); a compressed one is assumed
    to. Used to split a big file among workers; a wrong guess only costs parallelism."""
    head = gzip_head(path, 65536)
    lines = head.decode("utf-8", errors="replace").split("\n")[:-1]  # the last line may be cut off
    fmt = detect_format(lines)
    if fmt not in ("datashop", "optionsdx"):
        return False
    with open(path, "rb") as fh:
        if fh.read(2) == GZIP_MAGIC:
            return True
        fh.seek(max(0, os.path.getsize(path) - 65536))
        tail = fh.read().decode("utf-8", errors="replace")
    rows = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    last = next((ln for ln in reversed(tail.split("\n")) if ln.strip()), "")
    if len(rows) < 2 or not last:
        return False
    names = [c.strip().strip('"').strip().strip("[]").upper() for c in rows[0].split(",")]
    key = names.index("QUOTE_UNIXTIME" if fmt == "optionsdx" else "QUOTE_DATETIME")
    first_cells, last_cells = rows[1].split(","), last.split(",")
    if len(first_cells) <= key or len(last_cells) <= key:
        return False
    return first_cells[key].strip() != last_cells[key].strip()


def _looks_like_chain_json(path: Path) -> bool:
    """Whether a ``.json`` file in a directory is a chain feed (other JSON, such as a report's summary.json, is
    not picked up from directories; named explicitly it still loads or fails with its reason)."""
    head = gzip_head(path, 65536)
    if not head:
        return True  # let the loader report it
    return any(key in head for key in (b'"callExpDateMap"', b'"putExpDateMap"', b'"options"'))


def _chain_suffix(path: Path) -> str:
    """The chain suffix of a file name, looking through a ``.gz`` (``x.json.gz`` -> ``.json``)."""
    suffixes = [x.lower() for x in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files from paths, directories (recursively: ``*.csv``, ``*.txt`` and chain ``*.json`` feeds, each also
    gzip-compressed as ``*.gz``) and glob patterns, deduplicated."""
    out: list[str] = []
    for p in paths:
        if any(ch in p for ch in "*?["):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise InputFileError(p, "glob matched no files")
            out.extend(m for m in matches if os.path.isfile(m))
        elif os.path.isdir(p):
            found = sorted(str(f) for f in Path(p).rglob("*") if f.is_file() and _chain_suffix(f) in CHAIN_SUFFIXES
                           and (_chain_suffix(f) != ".json" or _looks_like_chain_json(f)))
            if not found:
                raise InputFileError(p, "directory holds no .csv, .txt or .json files (plain or .gz)")
            out.extend(found)
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def load_many(
    paths: Iterable[str],
    *,
    progress: bool | None = None,
    strict: bool = False,
    skipped: list[tuple[str, str]] | None = None,
    **options: Any,
) -> list[Snapshot]:
    """Load many files (paths, directories, globs): one snapshot per distinct snapshot, in trading-date (then
    quote-time) order.

    Files that cannot be loaded (empty, unreadable Date line, ...) are skipped and duplicates (same underlying,
    trading date and quotes) collapsed into the first one, each with a
    :class:`~volsurf.errors.DataQualityWarning` naming the file and the reason (see
    :func:`volsurf.io.collect.collect`). ``strict`` raises the first error instead; ``skipped`` (a list) receives
    ``(path, reason)`` of every file left out. A progress bar (tqdm, on stderr) is shown when ``progress`` is
    True, or by default for more than 20 files on a terminal.
    """
    from volsurf.io.collect import collect, report_collection

    col = collect(paths, strict=strict, progress=progress, **options)
    report_collection(col)
    if skipped is not None:
        skipped.extend(col.skipped)
    return col.snapshots
