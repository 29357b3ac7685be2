"""SQL over the store: DuckDB views ``contracts``, ``metrics``, ``surface_params`` and ``failures``.

The views read the Parquet files in place (nothing is copied). ``contracts`` and ``surface_params`` hold the
committed snapshots only (those with a metrics row); ``contracts`` has ``underlying`` and ``trade_date`` from
its partition directories, as text like every date of the store (ISO ``YYYY-MM-DD`` sorts and compares as a
date). A table with no file yet is an empty view. Remote stores (fsspec URLs) are read through DuckDB's fsspec
bridge.
"""

from __future__ import annotations

from typing import Any

from volsurf.errors import ParameterError
from volsurf.history.store import Store

VIEWS: tuple[str, ...] = ("contracts", "metrics", "surface_params", "failures")

_EMPTY: dict[str, str] = {
    "metrics": "SELECT NULL::VARCHAR AS snapshot_id, NULL::VARCHAR AS underlying, NULL::VARCHAR AS trade_date "
               "WHERE false",
    "contracts": "SELECT NULL::VARCHAR AS snapshot_id, NULL::VARCHAR AS underlying, NULL::VARCHAR AS trade_date "
                 "WHERE false",
    "surface_params": "SELECT NULL::VARCHAR AS snapshot_id, NULL::VARCHAR AS underlying WHERE false",
    "failures": "SELECT NULL::VARCHAR AS source_file, NULL::VARCHAR AS file_hash, NULL::BIGINT AS snapshot_index, "
                "NULL::VARCHAR AS stage, NULL::VARCHAR AS error, NULL::VARCHAR AS reason, "
                "NULL::VARCHAR AS volsurf_version WHERE false",
}


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - duckdb is a dependency
        raise ParameterError("volsurf query needs duckdb", hint="pip install duckdb") from exc
    return duckdb


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def connect(store_url: str, *, threads: int | None = None) -> Any:
    """An in-memory DuckDB connection with the store's tables as views.

    Parameters
    ----------
    store_url : str
        The store (a directory or an fsspec URL).
    threads : int, optional
        DuckDB worker threads (default: DuckDB's, the CPU count).
    """
    duckdb = _duckdb()
    store = Store.open(store_url)
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads TO {int(threads)}")
    prefix = ""
    if not store.local:
        con.register_filesystem(store.fs)
        prefix = f"{store.fs.protocol[0] if isinstance(store.fs.protocol, tuple) else store.fs.protocol}://"
    metrics = store.read_table("metrics")  # through the index: one file instead of one per snapshot
    if metrics is not None:
        con.register("_metrics_rows", metrics)
    for view in ("metrics", "contracts", "surface_params", "failures"):  # metrics first: the others use it
        has_files = bool(store._files(view))
        if view == "metrics" and metrics is not None:
            con.execute("CREATE VIEW metrics AS SELECT * FROM _metrics_rows")
            continue
        if not has_files:
            con.execute(f"CREATE VIEW {view} AS {_EMPTY[view]}")
            continue
        glob = _quote(prefix + store.glob(view))
        if view == "contracts":
            src = (f"read_parquet({glob}, hive_partitioning=true, union_by_name=true, "
                   "hive_types={'underlying': VARCHAR, 'trade_date': VARCHAR})")
        else:
            src = f"read_parquet({glob}, union_by_name=true)"
        if view in ("contracts", "surface_params"):
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM {src} "
                        "WHERE snapshot_id IN (SELECT snapshot_id FROM metrics)")
        else:
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM {src}")
    return con


def _new_york_times(df: Any, description: Any) -> Any:
    """Instants shown in New York time with their offset, like the store's own time columns.

    DuckDB hands ``TIMESTAMPTZ_NS`` columns (the contracts' ``expiry``, written from pandas' nanosecond times) to
    pandas as naive UTC; they are localized to UTC first. Every time-zone-aware column is then converted to
    New York time (the same instant)."""
    import pandas as pd

    from volsurf.units import NY

    for name, typ, *_ in description:
        col = df.get(name)
        if col is None or not pd.api.types.is_datetime64_any_dtype(col.dtype):
            continue
        if getattr(col.dtype, "tz", None) is None:
            if "TZ" not in str(typ).upper() and "TIME ZONE" not in str(typ).upper():
                continue  # a plain TIMESTAMP: no instant to convert
            col = col.dt.tz_localize("UTC")
        df[name] = col.dt.tz_convert(NY)
    return df


def query(store_url: str, sql: str, *, threads: int | None = None) -> Any:
    """Run ``sql`` over the store's views and return the result as a pandas DataFrame.

    Raises
    ------
    ParameterError
        The SQL does not parse or names an unknown column or table (DuckDB's message, one line).
    """
    duckdb = _duckdb()
    con = connect(store_url, threads=threads)
    try:
        res = con.execute(sql)
        return _new_york_times(res.df(), res.description or [])
    except duckdb.Error as exc:
        msg = " ".join(str(exc).split())
        raise ParameterError(f"query failed: {msg}", hint=f"views: {', '.join(VIEWS)}") from exc
    finally:
        con.close()


__all__ = ["VIEWS", "connect", "query"]
