"""Folders of snapshots as users have them: unreadable files skipped with a reason, duplicate downloads collapsed,
the series in trading-date order.

Traders save chains by hand for weeks, from several browsers: a folder then holds empty files, the same data
downloaded twice (same content, Date lines in different locales), weekend, holiday and pre-market downloads
(which hold the previous session's close). Two files are the same snapshot when they have the same underlying,
the same trading date and the same quotes (every contract's bid, ask, last, volume and open interest).

:func:`collect` loads every file (:func:`volsurf.io.load_many` uses it); :func:`screen_files` does the same
sorting on a light reading of each file for callers that load the files themselves (``volsurf track``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from volsurf.errors import DataQualityWarning, VolsurfError, warn
from volsurf.market.snapshot import Snapshot

#: Columns whose values make two snapshots "the same quotes".
QUOTE_COLUMNS = ("contract", "bid", "ask", "last", "volume", "open_interest")


@dataclass(frozen=True)
class SnapshotKey:
    """What identifies a snapshot in a folder: underlying, trading date, quote time and a digest of the quotes."""

    path: str
    underlying: str
    trade_date: dt.date
    quote_time: pd.Timestamp
    digest: str


@dataclass
class Collection:
    """The result of sorting a folder.

    Attributes
    ----------
    snapshots : list of Snapshot
        One per distinct snapshot, in trading-date then quote-time order (:func:`collect` only).
    keys : list of SnapshotKey
        The kept files' keys, in the same order.
    skipped : list of (str, str)
        Every file left out, with the reason (unreadable, or a duplicate of a kept file).
    notes : list of str
        One sentence per collapsed duplicate.
    """

    snapshots: list[Snapshot] = field(default_factory=list)
    keys: list[SnapshotKey] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        """The kept files in series order."""
        return [k.path for k in self.keys]


def quotes_digest(frame: pd.DataFrame) -> str:
    """A digest of a chain's quotes (:data:`QUOTE_COLUMNS`, rows in contract order), independent of row order."""
    cols = [c for c in QUOTE_COLUMNS if c in frame]
    f = frame[cols].sort_values("contract", kind="stable").reset_index(drop=True)
    h = pd.util.hash_pandas_object(f, index=False).to_numpy()
    return hashlib.sha1(np.ascontiguousarray(h).tobytes()).hexdigest()


def snapshot_key(snap: Snapshot) -> SnapshotKey:
    """The :class:`SnapshotKey` of a loaded snapshot (quotes of the live and the removed rows)."""
    both = pd.concat([snap.frame, snap.removed], ignore_index=True) if snap.removed is not None else snap.frame
    m = snap.meta
    return SnapshotKey(m.source_file, m.underlying, m.trade_date, m.quote_time, quotes_digest(both))


def dedupe(keys: Iterable[SnapshotKey]) -> tuple[list[SnapshotKey], list[tuple[str, str]], list[str]]:
    """Keys in trading-date then quote-time order, duplicates removed.

    The first file (in that order, then by path) of each (underlying, trading date, quotes) stays; the others
    are returned as skipped with the kept file named, and one note per collapsed group.
    """
    ordered = sorted(keys, key=lambda k: (k.trade_date, k.quote_time, k.path))
    kept: list[SnapshotKey] = []
    first: dict[tuple[str, dt.date, str], SnapshotKey] = {}
    skipped: list[tuple[str, str]] = []
    dups: dict[str, list[str]] = {}
    for k in ordered:
        ident = (k.underlying, k.trade_date, k.digest)
        if ident in first:
            keep = first[ident]
            skipped.append((k.path, f"duplicate of {keep.path} (same {k.underlying} quotes of {k.trade_date})"))
            dups.setdefault(keep.path, []).append(k.path)
        else:
            first[ident] = k
            kept.append(k)
    notes = [
        f"{len(others) + 1} files hold the same snapshot ({first_path}, {', '.join(others)}): kept {first_path}"
        for first_path, others in dups.items()
    ]
    return kept, skipped, notes


def _reason(path: str, exc: VolsurfError) -> str:
    """The error's one line without the leading file name (the skip list names the file)."""
    text = exc.one_line()
    return text[len(path) + 2 :] if text.startswith(f"{path}: ") else text


def _iterate(files: list[str], progress: bool | None, desc: str) -> Iterable[str]:
    if progress is None:
        import sys

        progress = len(files) > 20 and sys.stderr.isatty()
    if not progress:
        return files
    from tqdm import tqdm

    return tqdm(files, desc=desc, unit="file")


def collect(
    paths: Iterable[str],
    *,
    strict: bool = False,
    progress: bool | None = None,
    loader: Callable[..., Snapshot] | None = None,
    **options: Any,
) -> Collection:
    """Load every chain in ``paths`` (files, directories, globs) into a :class:`Collection`.

    Parameters
    ----------
    paths : iterable of str
        Expanded with :func:`volsurf.io.expand_paths`.
    strict : bool
        Raise the first file's error instead of skipping the file.
    progress : bool, optional
        tqdm bar on stderr (default: on a terminal for more than 20 files).
    loader : callable, optional
        ``loader(path, **options) -> Snapshot`` (default :func:`volsurf.io.load`).
    **options
        Passed to the loader (``as_of`` ...).
    """
    from volsurf.io.detect import expand_paths, load

    loader = loader or load
    files = expand_paths(paths)
    out = Collection()
    snaps: dict[str, Snapshot] = {}
    keys: list[SnapshotKey] = []
    for f in _iterate(files, progress, "loading"):
        try:
            snap = loader(f, **options)
        except VolsurfError as exc:
            if strict:
                raise
            out.skipped.append((f, _reason(f, exc)))
            continue
        snaps[f] = snap
        keys.append(snapshot_key(snap))
    kept, dup_skipped, notes = dedupe(keys)
    out.keys = kept
    out.snapshots = [snaps[k.path] for k in kept]
    out.skipped.extend(dup_skipped)
    out.notes = notes
    return out


def screen_files(
    paths: Iterable[str], *, strict: bool = False, **options: Any
) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """The files of ``paths`` worth processing, in trading-date order, and the skipped ones with reasons.

    For callers that load each file themselves (``volsurf track`` computes metrics per file, possibly in worker
    processes): Cboe exports are read lightly (preamble, expiry column and a digest of the data rows, no number
    parsing), other formats are loaded. Files that a full load rejects later are still the caller's to skip.

    Returns
    -------
    files : list of str
        One file per distinct snapshot, in trading-date then quote-time order.
    skipped : list of (str, str)
        Unreadable files and duplicates, with the reason.
    notes : list of str
        One sentence per collapsed group of duplicates.
    """
    from volsurf.io.cboe_csv import light_key
    from volsurf.io.detect import _options, _read, expand_paths, load

    files = expand_paths(paths)
    skipped: list[tuple[str, str]] = []
    keys: list[SnapshotKey] = []
    for f in files:
        try:
            opts = _options(f, dict(options))
            _text, lines, fmt = _read(f)
            key = light_key(f, lines, as_of=opts.get("as_of")) if fmt == "cboe_quotedata" else None
            if key is None:
                key = snapshot_key(load(f, **options))
        except VolsurfError as exc:
            if strict:
                raise
            skipped.append((f, _reason(f, exc)))
            continue
        keys.append(key)
    kept, dup_skipped, notes = dedupe(keys)
    return [k.path for k in kept], skipped + dup_skipped, notes


def report_collection(col: Collection, sink: list[str] | None = None) -> None:
    """Warn (:class:`~volsurf.errors.DataQualityWarning`) once per skipped file and per collapsed duplicate."""
    for path, reason in col.skipped:
        if not reason.startswith("duplicate of "):
            warn(sink, DataQualityWarning, f"skipped {path}: {reason}", stacklevel=3)
    for note in col.notes:
        warn(sink, DataQualityWarning, note, stacklevel=3)
