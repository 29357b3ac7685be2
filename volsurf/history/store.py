"""The Parquet store of snapshots and metrics: layout, schema, identity and atomic writes.

A store is a directory (local, or any fsspec URL such as ``s3://bucket/volsurf``) that any Parquet reader can
open without volsurf (pandas, pyarrow, DuckDB, Polars). Layout, schema version :data:`SCHEMA_VERSION`::

    DIR/_volsurf_store.json                                   store marker: schema version, tables, columns
    DIR/metrics/<snapshot_id>.parquet                         one row per snapshot (the commit record)
    DIR/surface_params/<snapshot_id>.parquet                  one row per fitted expiry
    DIR/contracts/underlying=<U>/trade_date=<D>/<snapshot_id>.parquet   one row per contract (hive partitions)
    DIR/failures/<failure_id>.parquet                         one row per snapshot (or file) that failed
    DIR/_index/metrics.parquet                                cache: every metrics row in one file

Identity: ``content_hash`` is a SHA-256 of the normalized snapshot (underlying, trade date, spot and every
contract's quotes, volume and open interest, in contract order), so the same data under another file name or
with its date written another way has the same hash; ``snapshot_id`` is its first :data:`ID_LENGTH` hex digits
and names every file of the snapshot. Ingesting the same data again finds ``metrics/<snapshot_id>.parquet``
and adds nothing.

Atomicity: every file is written to a hidden temporary name beside its final one (``.<name>.<host>.<pid>.tmp``,
which no reader globs or lists) and renamed into place; the metrics file is written last, so a snapshot is
committed when its metrics file exists. A run killed at any moment leaves at most hidden temporary files
(removed by the next ingest on the same host) and, between two renames, contracts or surface files of an
uncommitted snapshot, which the volsurf readers and SQL views leave out and the next ingest overwrites with the
same content. Concurrent ingests write per-snapshot files whose names cannot collide except for the same
snapshot, whose content is then the same: no lock is needed. On an object store (fsspec URL) a file is written
straight to its final key: an object PUT is atomic, so readers see the whole file or nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from volsurf.errors import InputFileError, ParameterError

if TYPE_CHECKING:  # pandas is imported where a frame is made: `track --store` reads Arrow and starts faster
    import pandas as pd

SCHEMA_VERSION = 1
MARKER = "_volsurf_store.json"
INDEX_DIR = "_index"
ID_LENGTH = 24
TABLES: tuple[str, ...] = ("contracts", "metrics", "surface_params", "failures")

# ---------------------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------------------

#: Columns of the normalized frame that make a snapshot's content (volsurf.market.snapshot.COLUMNS minus the
#: hygiene flags, which are derived from them).
CONTENT_COLUMNS: tuple[str, ...] = (
    "contract", "root", "expiry", "settlement", "strike", "type", "bid", "ask", "last", "volume",
    "open_interest", "vendor_iv", "vendor_delta", "vendor_gamma",
)


def content_hash(snapshot: Any) -> str:
    """SHA-256 (hex) of a snapshot's content: underlying, trade date, spot and the contracts' quotes.

    The file name, its format, the way its date line is written and the download time do not enter, so the
    same quotes downloaded twice, renamed, or exported with another date format hash the same. Rows are taken
    in contract order, floats by their IEEE bytes (NaN canonical).
    """
    import pandas as pd

    meta = snapshot.meta
    f = snapshot.frame
    order = np.argsort(f["contract"].to_numpy(dtype=str), kind="stable")
    h = hashlib.sha256()
    h.update(f"{meta.underlying}|{meta.trade_date.isoformat()}|{float(meta.spot)!r}|{len(f)}".encode())
    for c in CONTENT_COLUMNS:
        if c not in f.columns:
            h.update(f"|{c}:absent".encode())
            continue
        s = f[c]
        h.update(f"|{c}:".encode())
        if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
            v = s.to_numpy(dtype=float)[order]
            v = np.where(np.isnan(v), np.nan, v)  # one NaN bit pattern
            h.update(np.ascontiguousarray(v).tobytes())
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            ns = pd.to_datetime(s, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
            h.update(np.ascontiguousarray(ns[order]).tobytes())
        else:
            h.update("\x1f".join(s.astype(str).to_numpy()[order].tolist()).encode())
    return h.hexdigest()


def file_hash(path: str) -> str:
    """SHA-256 (hex) of a file's bytes (recognises byte-identical copies before loading them)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot_id(content: str) -> str:
    """The file-name id of a snapshot: the first :data:`ID_LENGTH` hex digits of its content hash."""
    return content[:ID_LENGTH]


# ---------------------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------------------

#: Metrics columns holding text, true/false and whole numbers (every other scalar column is float64).
STRING_COLUMNS = frozenset({
    "snapshot_id", "content_hash", "file_hash", "source_file", "source_format", "underlying", "underlying_name",
    "trade_date", "quote_time", "valuation_time", "volsurf_version", "surface_method", "surface_source",
    "quarter_end_expiry", "quarter_end_date", "regime", "variance_index_reason",
})
BOOL_COLUMNS = frozenset({"in_quarter_end_window", "in_year_end_window", "regime_robust"})
INT_COLUMNS = frozenset({
    "schema_version", "snapshot_index", "snapshots_in_file", "trading_days_to_quarter_end", "contracts",
    "expiries", "fit_expiries", "fit_expiries_skipped", "fit_butterfly_violations", "fit_calendar_violations",
    "raw_butterfly_violations", "raw_calendar_violations", "arb_inconsistent_quotes",
})
LIST_STRING_COLUMNS = frozenset({"warnings", "notes"})


def _pa() -> Any:
    try:
        import pyarrow as pa
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        raise ParameterError("the Parquet store needs pyarrow", hint="pip install pyarrow") from exc
    return pa


# pyarrow imports pandas (0.2-0.4 s) the first time it converts an array to numpy or a Python object to an array.
# The metrics path (`volsurf track --store`) reads a few thousand values, so it goes through Python lists and
# builds its filter masks from bytes; the command then starts without pandas.


def arrow_floats(col: Any) -> np.ndarray:
    """A numeric Arrow column as a float array, nulls as NaN (via a list: see above)."""
    return np.array(col.to_pylist(), dtype=float)


def arrow_mask(mask: np.ndarray) -> Any:
    """A numpy boolean mask as an Arrow boolean array (from its packed bits: see above)."""
    pa = _pa()
    m = np.asarray(mask, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), m.size, [None, pa.py_buffer(np.packbits(m, bitorder="little"))])


def arrow_isin(col: Any, values: set[str]) -> np.ndarray:
    """Boolean mask of the text column's values that are in ``values``."""
    v = col.to_pylist()
    return np.fromiter((x in values for x in v), dtype=bool, count=len(v))


def _scalar_type(name: str) -> Any:
    pa = _pa()
    if name in STRING_COLUMNS:
        return pa.string()
    if name in BOOL_COLUMNS:
        return pa.bool_()
    if name in INT_COLUMNS or name.startswith("hygiene_"):
        return pa.int64()
    if name in LIST_STRING_COLUMNS:
        return pa.list_(pa.string())
    return pa.float64()


def _struct_of(example: dict[str, Any]) -> Any:
    pa = _pa()
    fields = []
    for k, v in example.items():
        if isinstance(v, bool | np.bool_):
            t = pa.bool_()
        elif isinstance(v, str) or v is None:
            t = pa.string()
        elif isinstance(v, int | np.integer):
            t = pa.int64()
        else:
            t = pa.float64()
        fields.append(pa.field(k, t))
    return pa.struct(fields)


def nested_types() -> dict[str, Any]:
    """Types of the nested metrics columns ``constant_maturity`` and ``demand_by_expiry``."""
    from volsurf.analytics.skew import unavailable_metrics

    pa = _pa()
    cm = {"days": 0, **{k: (v if isinstance(v, bool) else 0.0) for k, v in unavailable_metrics(0.1, "x").to_dict().items()
                        if k not in ("days", "reason")}, "reason": ""}
    demand = {"expiry_date": "", **{k: 0.0 for k in DEMAND_EXPIRY_FLOATS}, "is_quarter_end": True}
    return {"constant_maturity": pa.list_(_struct_of(cm)), "demand_by_expiry": pa.list_(_struct_of(demand))}


DEMAND_EXPIRY_FLOATS: tuple[str, ...] = (
    "call_volume", "put_volume", "otm_put_volume", "call_oi", "put_oi", "otm_put_oi",
    "otm_put_volume_share", "otm_put_oi_share", "put_call_volume_ratio", "put_call_oi_ratio",
)


def metrics_schema(columns: Sequence[str]) -> Any:
    """The Arrow schema of the metrics table for the given column order (types by name, see above)."""
    pa = _pa()
    nested = nested_types()
    return pa.schema([pa.field(c, nested[c] if c in nested else _scalar_type(c)) for c in columns])


def table_schema(columns: Sequence[str], strings: Iterable[str] = (), ints: Iterable[str] = (),
                 bools: Iterable[str] = ()) -> Any:
    """A flat Arrow schema: float64 unless the column is listed as string, int64 or bool."""
    pa = _pa()
    s, i, b = set(strings), set(ints), set(bools)
    return pa.schema([
        pa.field(c, pa.string() if c in s else pa.int64() if c in i else pa.bool_() if c in b else pa.float64())
        for c in columns
    ])


def frame_to_table(frame: pd.DataFrame) -> Any:
    """Arrow table of a pandas frame with a schema fixed by dtype (object columns are always strings), so every
    snapshot's file of one table has the same schema."""
    import pandas as pd

    pa = _pa()
    fields = []
    for c in frame.columns:
        d = frame[c].dtype
        if isinstance(d, pd.DatetimeTZDtype):
            t = pa.timestamp("ns", tz=str(d.tz))
        elif pd.api.types.is_datetime64_any_dtype(d):
            t = pa.timestamp("ns")
        elif pd.api.types.is_bool_dtype(d):
            t = pa.bool_()
        elif pd.api.types.is_integer_dtype(d):
            t = pa.int64()
        elif pd.api.types.is_float_dtype(d):
            t = pa.float64()
        else:
            t = pa.string()
        fields.append(pa.field(str(c), t))
    arrays = []
    for c, fld in zip(frame.columns, fields, strict=True):
        col = frame[c]
        try:
            arrays.append(pa.array(col, type=fld.type, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # an object column holding non-strings: as text
            arrays.append(pa.array(col.astype(object).where(col.notna(), None)
                                   .map(lambda v: v if v is None else str(v)), type=fld.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# ---------------------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------------------

_HOST = socket.gethostname().replace(".", "_")


@dataclass(frozen=True)
class Store:
    """A Parquet store at ``url`` (a local directory or an fsspec URL).

    Use :meth:`open` to get one; the methods write and read the files of the layout in the module docstring.
    """

    url: str
    root: str
    local: bool
    fs: Any = None

    # -- opening ------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> Store:
        """Open the store at ``url``; ``create`` makes it (and its marker) when absent.

        Raises
        ------
        InputFileError
            ``url`` is not a store (and ``create`` is false), or a store of a newer schema version.
        """
        url = str(url)
        if "://" in url and not url.startswith("file://"):
            import fsspec

            fs, root = fsspec.core.url_to_fs(url)
            store = cls(url, root.rstrip("/"), False, fs)
        else:
            root = os.path.abspath(url.removeprefix("file://"))
            store = cls(url, root, True, None)
        marker = store._join(MARKER)
        if not store._exists(marker):
            if not create:
                raise InputFileError(url, "not a volsurf store (no _volsurf_store.json)",
                                     hint="create one with `volsurf ingest PATHS --store DIR`")
            store._mkdir(store.root)
            store.write_bytes(marker, json.dumps(store_manifest(), indent=1).encode())
        else:
            info = json.loads(store.read_bytes(marker))
            if int(info.get("schema_version", 0)) > SCHEMA_VERSION:
                raise InputFileError(url, f"store schema version {info.get('schema_version')} is newer than this "
                                          f"volsurf's {SCHEMA_VERSION}", hint="upgrade volsurf")
        return store

    # -- paths --------------------------------------------------------------------------------------------

    def _join(self, *parts: str) -> str:
        return "/".join([self.root, *parts]) if not self.local else os.path.join(self.root, *parts)

    def table_dir(self, table: str) -> str:
        """The directory of one table."""
        return self._join(table)

    def metrics_path(self, sid: str) -> str:
        return self._join("metrics", f"{sid}.parquet")

    def surface_path(self, sid: str) -> str:
        return self._join("surface_params", f"{sid}.parquet")

    def contracts_path(self, sid: str, underlying: str, trade_date: str) -> str:
        return self._join("contracts", f"underlying={_safe_part(underlying)}", f"trade_date={trade_date}",
                          f"{sid}.parquet")

    def failure_path(self, fid: str) -> str:
        return self._join("failures", f"{fid}.parquet")

    # -- file system --------------------------------------------------------------------------------------

    def _exists(self, path: str) -> bool:
        return os.path.exists(path) if self.local else bool(self.fs.exists(path))

    def _mkdir(self, path: str) -> None:
        if self.local:
            os.makedirs(path, exist_ok=True)
        else:
            self.fs.makedirs(path, exist_ok=True)

    def read_bytes(self, path: str) -> bytes:
        if self.local:
            with open(path, "rb") as fh:
                return fh.read()
        return bytes(self.fs.cat_file(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically (temporary file and rename; a single PUT on object stores)."""
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        d, name = os.path.split(path)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, f".{name}.{_HOST}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def write_table(self, path: str, table: Any) -> None:
        """Write an Arrow table as one Parquet file at ``path``, atomically.

        Dictionary encoding for the text columns only (on the floats of a contracts file it cost 40% of the write
        time and 15% of the size, and doubled the read time); zstd, except for a one-row file (a snapshot's
        metrics), where compression saves nothing and took 60% of the write."""
        import pyarrow.parquet as pq

        pa = _pa()
        text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd" if table.num_rows > 1 else "none", use_dictionary=text)
        self.write_bytes(path, sink.getvalue().to_pybytes())

    def has_snapshot(self, sid: str) -> bool:
        """True when snapshot ``sid`` is committed (its metrics file exists)."""
        return self._exists(self.metrics_path(sid))

    def commit_snapshot(self, sid: str, *, underlying: str, trade_date: str, contracts: Any, surface: Any,
                        metrics: Any) -> None:
        """Write one snapshot: contracts, surface parameters, then the metrics file that commits it."""
        self.write_table(self.contracts_path(sid, underlying, trade_date), contracts)
        self.write_table(self.surface_path(sid), surface)
        self.write_table(self.metrics_path(sid), metrics)

    def record_failure(self, fid: str, row: dict[str, Any]) -> None:
        """Write one failure row (the same failure twice writes the same file)."""
        pa = _pa()
        cols = list(row)
        schema = table_schema(cols, strings=[c for c in cols if c not in ("snapshot_index",)], ints=["snapshot_index"])
        self.write_table(self.failure_path(fid), pa.Table.from_pylist([row], schema=schema))

    def clear_failure(self, fid: str) -> None:
        """Remove a failure record (the snapshot went through on a later run)."""
        p = self.failure_path(fid)
        if self.local:
            with contextlib.suppress(FileNotFoundError):
                os.remove(p)
        elif self.fs.exists(p):
            self.fs.rm_file(p)

    def clean_temporary(self) -> int:
        """Remove temporary files left by killed runs on this host (their process is gone); returns the count."""
        if not self.local:
            return 0
        import psutil

        n = 0
        for d, _dirs, files in os.walk(self.root):
            for name in files:
                if not (name.startswith(".") and name.endswith(".tmp")):
                    continue
                parts = name.rsplit(".", 3)  # .<final>.<host>.<pid>.tmp
                if len(parts) != 4 or parts[1] != _HOST or not parts[2].isdigit():
                    continue
                if psutil.pid_exists(int(parts[2])) and int(parts[2]) != os.getpid():
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(d, name))
                    n += 1
        return n

    # -- reading ------------------------------------------------------------------------------------------

    def _files(self, table: str) -> list[str]:
        d = self.table_dir(table)
        if self.local:
            if not os.path.isdir(d):
                return []
            out: list[str] = []
            for sub, _dirs, files in os.walk(d):
                out.extend(os.path.join(sub, f) for f in files if f.endswith(".parquet") and not f.startswith("."))
            return sorted(out)
        if not self.fs.exists(d):
            return []
        return sorted(p for p in self.fs.find(d) if p.endswith(".parquet") and not p.rsplit("/", 1)[-1].startswith("."))

    def glob(self, table: str) -> str:
        """A glob of the table's Parquet files (for DuckDB's ``read_parquet``)."""
        if table == "contracts":
            return self._join("contracts", "*", "*", "*.parquet")
        return self._join(table, "*.parquet")

    def committed_ids(self) -> set[str]:
        """Ids of the committed snapshots (from the metrics file names, without reading them)."""
        return {os.path.basename(p)[: -len(".parquet")] for p in self._files("metrics")}

    # -- the metrics index (a cache: one file instead of one per snapshot) ---------------------------------

    def index_path(self, table: str = "metrics") -> str:
        """``_index/<table>.parquet``: the rows of many snapshots in one file (a cache volsurf keeps; the
        per-snapshot files stay the truth, and readers that do not know the index never see it)."""
        return self._join(INDEX_DIR, f"{table}.parquet")

    def _read_file(self, path: str, columns: Sequence[str] | None = None) -> Any:
        """One Parquet file as an Arrow table (``ParquetFile``: ``read_table`` would import ``pyarrow.dataset``
        and with it pandas, which ``track --store`` does without)."""
        import pyarrow.parquet as pq

        cols = None if columns is None else list(columns)
        if self.local:
            return pq.ParquetFile(path).read(columns=cols)
        with self.fs.open(path, "rb") as fh:
            return pq.ParquetFile(fh).read(columns=cols)

    def _read_files(self, paths: Sequence[str], columns: Sequence[str] | None = None) -> list[Any]:
        if len(paths) < 4:
            return [self._read_file(p, columns) for p in paths]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(paths))) as pool:
            return list(pool.map(lambda p: self._read_file(p, columns), paths))

    def _metrics_table(self, extra: Sequence[Any] = (), columns: Sequence[str] | None = None) -> Any:
        """The committed snapshots' metrics rows: from the index, from ``extra`` tables (rows just written),
        and from the per-snapshot files of the snapshots neither holds. Sorted by snapshot id. ``columns``: only
        those (``snapshot_id`` is always read)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = self.committed_ids()
        if not ids:
            return None
        parts = [t for t in extra if t is not None and t.num_rows]
        have = {str(x) for t in parts for x in t.column("snapshot_id").to_pylist()}
        cols = None if columns is None else list(dict.fromkeys(["snapshot_id", *columns]))
        if cols is not None:
            parts = [t.select([c for c in cols if c in t.column_names]) for t in parts]
        ip = self.index_path()
        if self._exists(ip):
            try:
                idx = self._read_file(ip, self._present(ip, cols))
            except (OSError, pa.ArrowInvalid):  # a damaged cache is ignored (the files are the truth)
                idx = None
            if idx is not None and idx.num_rows:
                idx = idx.filter(arrow_mask(arrow_isin(idx["snapshot_id"], ids - have)))
                have |= {str(x) for x in idx.column("snapshot_id").to_pylist()}
                parts.append(idx)
        missing = [self.metrics_path(s) for s in sorted(ids - have)]
        parts += self._read_files(missing, self._present(missing[0], cols) if missing else None)
        tab = pa.concat_tables(parts, promote_options="permissive")
        tab = tab.filter(arrow_mask(arrow_isin(tab["snapshot_id"], ids)))
        return tab.take(pc.sort_indices(tab, [("snapshot_id", "ascending")]))

    def _present(self, path: str, columns: list[str] | None) -> list[str] | None:
        """The ``columns`` that the Parquet file at ``path`` has (older files may lack newer columns)."""
        if columns is None:
            return None
        import pyarrow.parquet as pq

        if self.local:
            names = set(pq.read_schema(path).names)
        else:
            with self.fs.open(path, "rb") as fh:
                names = set(pq.read_schema(fh).names)
        return [c for c in columns if c in names]

    def update_index(self, new_rows: Sequence[Any] = ()) -> int:
        """Rewrite the metrics index (atomically) from the previous index, ``new_rows`` and the committed
        snapshots still missing from both; returns its row count. Concurrent runs may overwrite each other's
        index: readers then read the missing snapshots' files, so results never depend on it."""
        tab = self._metrics_table(new_rows)
        if tab is None:
            return 0
        self.write_table(self.index_path(), tab)
        return int(tab.num_rows)

    def read_table(self, table: str, *, columns: Sequence[str] | None = None, filters: Any = None) -> Any:
        """One table as an Arrow table (None when the table has no file yet).

        ``metrics`` holds the committed snapshots (read through the index); ``contracts`` and ``surface_params``
        are restricted to committed snapshots; ``contracts`` gets its ``underlying`` and ``trade_date`` columns
        from the partition directories.
        """
        if table == "metrics":
            # the filter may name columns outside ``columns``: read them all then
            tab = self._metrics_table(columns=columns if filters is None else None)
            if tab is None:
                return None
            if filters is not None:
                tab = tab.filter(filters)
            return tab.select([c for c in columns if c in tab.column_names]) if columns is not None else tab
        import pyarrow.dataset as ds  # imports pandas: not on the metrics path (`track --store`)

        files = self._files(table)
        if not files:
            return None
        part = ds.partitioning(flavor="hive") if table == "contracts" else None
        kwargs: dict[str, Any] = {"format": "parquet", "partitioning": part}
        if not self.local:
            kwargs["filesystem"] = self.fs
        if table == "contracts":
            kwargs["partition_base_dir"] = self.table_dir("contracts")
        dataset = ds.dataset(files, **kwargs)
        if table in ("contracts", "surface_params"):
            committed = self.committed_ids()
            keep = ds.field("snapshot_id").isin(sorted(committed))
            filters = keep if filters is None else (filters & keep)
        return dataset.to_table(columns=list(columns) if columns is not None else None, filter=filters)

    def read_metrics(self, *, underlying: str | None = None, start: str | None = None, end: str | None = None,
                     columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The metrics table as a DataFrame, optionally for one underlying and a trade-date range (inclusive),
        ordered by trade date, valuation time and quote time."""
        import pandas as pd
        import pyarrow.dataset as ds

        flt = None
        for cond in (
            ds.field("underlying") == underlying if underlying else None,
            ds.field("trade_date") >= start if start else None,
            ds.field("trade_date") <= end if end else None,
        ):
            if cond is not None:
                flt = cond if flt is None else (flt & cond)
        tab = self.read_table("metrics", columns=columns, filters=flt)
        if tab is None:
            return pd.DataFrame()
        df = tab.to_pandas()
        keys = [c for c in ("trade_date", "valuation_time", "quote_time", "snapshot_id") if c in df.columns]
        if keys:
            df = df.sort_values(keys, kind="stable").reset_index(drop=True)
        return df

    def manifest(self) -> dict[str, Any]:
        """The store marker's content."""
        return dict(json.loads(self.read_bytes(self._join(MARKER))))


def _safe_part(value: str) -> str:
    """A partition value safe in a path (no separators or '=')."""
    return "".join(ch if ch.isalnum() or ch in "-_^." else "_" for ch in str(value)) or "_"


def volsurf_version() -> str:
    """The running volsurf's version (read from the loaded package: importing the package root here would tie
    this layer to the modules it re-exports)."""
    import sys

    return str(getattr(sys.modules.get("volsurf"), "__version__", "unknown"))


def store_manifest() -> dict[str, Any]:
    """The content of ``_volsurf_store.json``."""
    __version__ = volsurf_version()
    return {
        "format": "volsurf parquet store",
        "schema_version": SCHEMA_VERSION,
        "created_by": f"volsurf {__version__}",
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "tables": {
            "metrics": "metrics/<snapshot_id>.parquet: one row per snapshot (commits it)",
            "surface_params": "surface_params/<snapshot_id>.parquet: one row per fitted expiry",
            "contracts": "contracts/underlying=<U>/trade_date=<YYYY-MM-DD>/<snapshot_id>.parquet: one row per contract",
            "failures": "failures/<failure_id>.parquet: one row per snapshot or file that failed",
        },
        "docs": "docs/store.md",
    }


__all__ = [
    "CONTENT_COLUMNS",
    "ID_LENGTH",
    "MARKER",
    "SCHEMA_VERSION",
    "TABLES",
    "Store",
    "content_hash",
    "file_hash",
    "frame_to_table",
    "metrics_schema",
    "nested_types",
    "snapshot_id",
    "table_schema",
]
