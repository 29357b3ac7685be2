"""Reading the store back: the ``track`` series and the report's history from stored metrics (no refit).

:func:`stored_series` gives the series :func:`volsurf.history.track.track` gives over the same files with
``surface="fitted"`` (same columns, baselines and like-for-like demand changes), from the ``metrics`` table alone.
:func:`stored_history` gives what :func:`volsurf.report.pipeline.compare` needs in history mode: the records
before a trade date and the latest earlier snapshot as a :class:`~volsurf.analytics.measure.SnapshotMetrics`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from volsurf.analytics.shares import SUM_COLUMNS, share_ratios
from volsurf.errors import DataError, ParameterError
from volsurf.history.store import DEMAND_EXPIRY_FLOATS, Store, arrow_floats, arrow_mask
from volsurf.signals.baseline import BASELINE_FLOOR, BASELINE_METRICS, baseline_columns

if TYPE_CHECKING:  # pandas only where a frame is made (`track --store` starts faster without it)
    import pandas as pd

    from volsurf.history.track import TrackResult

_SUMS: tuple[str, ...] = SUM_COLUMNS
_SHARES: tuple[str, ...] = ("otm_put_volume_share", "otm_put_oi_share", "put_call_volume_ratio", "put_call_oi_ratio")


def record_columns(store: Store) -> list[str]:
    """The :meth:`SnapshotMetrics.record` columns the store's metrics files were written with."""
    import pyarrow.parquet as pq

    from volsurf.history.ingest import RECORD_COLUMNS_KEY

    files = store._files("metrics")
    if not files:
        return []
    if store.local:
        schema = pq.read_schema(files[-1])
    else:
        with store.fs.open(files[-1], "rb") as fh:
            schema = pq.read_schema(fh)
    meta = schema.metadata or {}
    return meta.get(RECORD_COLUMNS_KEY, b"").decode().split(",")


_SORT_KEYS: tuple[str, ...] = ("trade_date", "valuation_time", "quote_time", "snapshot_id")


def _read_arrow(store: Store, underlying: str | None, start: str | None, end: str | None,
                before: str | None, columns: Sequence[str] | None = None) -> Any:
    """The stored metrics rows in range as an Arrow table (only ``columns`` when given), ordered by trade date,
    valuation and quote time (None when there is none)."""
    need = None if columns is None else list(dict.fromkeys([*columns, "underlying", *_SORT_KEYS]))
    tab = store.read_table("metrics", columns=need)
    if tab is None or tab.num_rows == 0:
        return None
    if underlying or start or end or before:
        unders = tab["underlying"].to_pylist()
        dates = tab["trade_date"].to_pylist()
        dated = bool(start or end or before)
        keep = np.fromiter(
            ((not underlying or u == underlying) and (not dated or d is not None) and (not start or d >= start)
             and (not end or d <= end) and (not before or d < before) for u, d in zip(unders, dates, strict=True)),
            dtype=bool, count=len(dates))
        tab = tab.filter(arrow_mask(keep))
    if tab.num_rows == 0:
        return None
    # stable sort, as pandas' sort_values(kind="stable") on the same keys
    return tab.sort_by([(k, "ascending") for k in _SORT_KEYS])


def _read(store: Store, underlying: str | None, start: str | None, end: str | None,
          before: str | None) -> pd.DataFrame:
    import pandas as pd

    tab = _read_arrow(store, underlying, start, end, before)
    return pd.DataFrame() if tab is None else tab.to_pandas()


def _like_for_like(by_expiry: Any) -> dict[str, np.ndarray]:
    """Like-for-like share changes of each row against the previous one (as
    :func:`volsurf.analytics.demand.demand_change`), vectorized over the series; ``by_expiry`` is the Arrow
    ``demand_by_expiry`` column (a list of per-expiry rows per snapshot), or a list of such lists.

    Each row's sums and the previous row's are taken over the expiry dates both list (a missing sum counts 0),
    then :func:`~volsurf.analytics.shares.share_ratios` of each; NaN where the two rows have no expiry in common.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(by_expiry, pa.ChunkedArray):
        arr = by_expiry.combine_chunks()
    elif isinstance(by_expiry, pa.Array):
        arr = by_expiry
    else:
        arr = pa.array(list(by_expiry))
    n = len(arr)
    out = {c: np.full(n, np.nan) for c in _SHARES}
    # values go through Python lists (see volsurf.history.store.arrow_floats)
    lengths = np.array([0 if v is None else v for v in pc.list_value_length(arr).to_pylist()], dtype=np.int64)
    if n < 2 or lengths.sum() == 0:
        return out
    flat = pc.list_flatten(arr)
    dates = np.array(["" if v is None else str(v) for v in flat.field("expiry_date").to_pylist()], dtype=object)
    sums = np.column_stack([np.nan_to_num(arrow_floats(flat.field(c)), nan=0.0) for c in _SUMS])
    pos = np.repeat(np.arange(n), lengths)
    _, code = np.unique(dates.astype(str), return_inverse=True)
    n_code = int(code.max()) + 1
    key = pos * n_code + code  # (row, expiry date); a row lists each expiry date once
    # entry j of row i meets entry k of row i - 1 with the same date: key_j == key_k + n_code
    _, cur_at, prev_at = np.intersect1d(key, key + n_code, assume_unique=True, return_indices=True)
    row = pos[cur_at]
    has = np.bincount(row, minlength=n) > 0
    cur = {c: np.bincount(row, sums[cur_at, j], minlength=n) for j, c in enumerate(_SUMS)}
    prv = {c: np.bincount(row, sums[prev_at, j], minlength=n) for j, c in enumerate(_SUMS)}
    cur_r, prev_r = share_ratios(cur), share_ratios(prv)
    for c in _SHARES:
        out[c][1:] = np.where(has, cur_r[c] - prev_r[c], np.nan)[1:]
    return out


@dataclass(frozen=True)
class _StoredColumns:
    """The stored ``track`` series as columns: the record columns as Arrow, the baselines and like-for-like
    changes as arrays (one definition for the DataFrame of :func:`stored_series` and the records of
    :func:`stored_track_records`)."""

    table: Any
    derived: dict[str, np.ndarray]
    skipped: tuple[tuple[str, str], ...]


def _stored_columns(store_url: str, underlying: str | None, start: str | None, end: str | None,
                    before: str | None, window: int, min_history: int, keep_duplicates: bool) -> _StoredColumns:
    store = Store.open(store_url)
    rec_cols = record_columns(store)
    # only the columns the series needs are read
    flat_cols = list(dict.fromkeys([*rec_cols, *_SORT_KEYS, "underlying", "source_file"]))
    tab = _read_arrow(store, underlying, start, end, before, columns=[*flat_cols, "demand_by_expiry"])
    if tab is None:
        what = f" of {underlying}" if underlying else ""
        raise DataError(f"no stored snapshot{what} in the range", hint="check --underlying, --from and --to")
    unders = sorted({str(u) for u in tab["underlying"].to_pylist()})
    if len(unders) > 1:
        raise ParameterError(f"the store holds several underlyings: {', '.join(unders)}",
                             hint="pick one with --underlying")
    skipped: list[tuple[str, str]] = []
    if not keep_duplicates:
        # a trade date's latest snapshot (rows are in time order) supersedes the earlier ones
        dates = np.asarray(tab["trade_date"].to_pylist(), dtype=object)
        superseded = np.zeros(len(dates), dtype=bool)
        superseded[:-1] = dates[:-1] == dates[1:]
        for src, d in zip(np.asarray(tab["source_file"].to_pylist(), dtype=object)[superseded], dates[superseded],
                          strict=True):
            skipped.append((str(src), f"superseded by a later snapshot of {d}"))
        tab = tab.filter(arrow_mask(~superseded))
    cols = [c for c in rec_cols if c in tab.column_names]
    floats = {m: arrow_floats(tab[m]) for m in BASELINE_METRICS if m in cols}
    derived = baseline_columns(floats, window, min_history)
    lfl = _like_for_like(tab["demand_by_expiry"])
    for c in ("otm_put_oi_share", "otm_put_volume_share"):
        derived[f"d_{c}"] = lfl[c]
    return _StoredColumns(tab.select(cols), derived, tuple(skipped))


def stored_series(
    store_url: str,
    *,
    underlying: str | None = None,
    start: str | None = None,
    end: str | None = None,
    before: str | None = None,
    window: int = 20,
    min_history: int = 5,
    keep_duplicates: bool = False,
) -> TrackResult:
    """The ``track`` series of the stored snapshots (no file is read or fitted again).

    Parameters
    ----------
    store_url : str
        The store.
    underlying : str, optional
        Required when the store holds several underlyings.
    start, end : str, optional
        Trade-date range, ISO dates, inclusive.
    before : str, optional
        Only trade dates strictly before this ISO date.
    window, min_history : int
        Trailing baseline (see :mod:`volsurf.signals.flags`).
    keep_duplicates : bool
        Keep several snapshots of one trade date (default: the latest valuation time).

    Returns
    -------
    TrackResult
        ``series`` as :func:`volsurf.history.track.track` with ``surface="fitted"``; ``snapshots`` is empty (use
        :func:`metrics_from_row` on a row of :meth:`Store.read_metrics` for one snapshot's objects).
    """
    import pandas as pd

    from volsurf.history.track import TrackResult

    sc = _stored_columns(store_url, underlying, start, end, before, window, min_history, keep_duplicates)
    series = sc.table.to_pandas()
    for c in series.columns:
        # a text column with no value at all is a column of None in track's frame (pandas infers object)
        if series[c].dtype != object and pd.api.types.is_string_dtype(series[c].dtype) and series[c].isna().all():
            series[c] = pd.Series([None] * len(series), index=series.index, dtype=object)
    for c, v in sc.derived.items():
        series[c] = v
    return TrackResult(series, (), sc.skipped, _baseline_info(window, min_history))


def _baseline_info(window: int, min_history: int) -> dict[str, Any]:
    return {"window": window, "min_history": min_history, "source": "store"}


@dataclass(frozen=True)
class StoredTrack:
    """The stored ``track`` series as records (what :meth:`TrackResult.records` gives for :func:`stored_series`,
    built without pandas).

    Attributes
    ----------
    columns : list of str
        The series columns in order.
    records : list of dict
        One per snapshot, ordered by trade date.
    skipped : tuple of (str, str)
        ``(source_file, reason)`` of superseded snapshots.
    baseline : dict
        The trailing-baseline settings.
    """

    columns: list[str]
    records: list[dict[str, Any]]
    skipped: tuple[tuple[str, str], ...]
    baseline: dict[str, Any]


def _column_values(col: Any) -> list[Any]:
    """An Arrow column's values typed as pandas' ``to_dict(orient="records")`` types them after ``to_pandas``:
    integers with a null become floats (NaN), booleans with a null keep None, missing text is NaN (all missing:
    None, as track's frame holds it)."""
    import pyarrow as pa

    t, nulls = col.type, col.null_count
    if pa.types.is_floating(t):
        return [math.nan if v is None else v for v in col.to_pylist()]
    if pa.types.is_integer(t):
        return [math.nan if v is None else float(v) for v in col.to_pylist()] if nulls else col.to_pylist()
    if pa.types.is_boolean(t):
        return col.to_pylist()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        values = col.to_pylist()
        if nulls == len(values):
            return values
        return [math.nan if v is None else v for v in values] if nulls else values
    import pandas as pd  # any other type: pandas' own conversion

    return pd.Series(col.to_pandas()).astype(object).tolist()


def stored_track_records(
    store_url: str,
    *,
    underlying: str | None = None,
    start: str | None = None,
    end: str | None = None,
    window: int = 20,
    min_history: int = 5,
) -> StoredTrack:
    """The records of :func:`stored_series` (same parameters) without building a DataFrame: what ``volsurf track
    --store`` prints."""
    sc = _stored_columns(store_url, underlying, start, end, None, window, min_history, False)
    names = list(sc.table.column_names)
    values = [_column_values(sc.table[c]) for c in names]
    names += list(sc.derived)
    values += [v.tolist() for v in sc.derived.values()]
    records = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    return StoredTrack(names, records, sc.skipped, _baseline_info(window, min_history))


def _seq(row: Mapping[Any, Any], key: str) -> list[Any]:
    """A list-valued column of a stored row as a list (empty for null)."""
    v = row.get(key)
    return list(v) if v is not None else []


def _f(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def metrics_from_row(row: Mapping[Any, Any]) -> Any:
    """A :class:`~volsurf.analytics.measure.SnapshotMetrics` rebuilt from one stored metrics row (constant
    maturities, variance and SKEW indices, demand with its per-expiry table, calendar; no per-expiry skew and no
    chart data)."""
    import dataclasses

    import pandas as pd

    from volsurf.analytics.demand import DemandMetrics
    from volsurf.analytics.measure import SnapshotMetrics
    from volsurf.analytics.skew import SmileMetrics
    from volsurf.market.snapshot import HYGIENE_RULES
    from volsurf.units import DAYS_PER_YEAR

    names = [f.name for f in dataclasses.fields(SmileMetrics)]
    cms = []
    for d in _seq(row, "constant_maturity"):
        vals = {k: _f(d.get(k)) for k in names if k not in ("reason", "days")}
        vals["days"] = vals["t"] * DAYS_PER_YEAR if math.isfinite(vals["t"]) else float(d.get("days"))
        cms.append(SmileMetrics(**vals, reason=d.get("reason")))
    by_exp = pd.DataFrame.from_records(_seq(row, "demand_by_expiry"),
                                       columns=["expiry_date", *DEMAND_EXPIRY_FLOATS, "is_quarter_end"])
    qe_date = row.get("quarter_end_expiry")
    qe = None
    if isinstance(qe_date, str):
        hit = by_exp[by_exp["expiry_date"] == qe_date]
        if len(hit):
            qe = {str(k): (v.item() if hasattr(v, "item") else v) for k, v in hit.iloc[0].to_dict().items()}
    demand = DemandMetrics(
        call_volume=_f(row.get("call_volume")),
        put_volume=_f(row.get("put_volume")),
        otm_put_volume=_f(row.get("otm_put_volume")),
        call_oi=_f(row.get("call_oi")),
        put_oi=_f(row.get("put_oi")),
        otm_put_oi=_f(row.get("otm_put_oi")),
        otm_put_volume_share=_f(row.get("otm_put_volume_share")),
        otm_put_oi_share=_f(row.get("otm_put_oi_share")),
        put_call_volume_ratio=_f(row.get("put_call_volume_ratio")),
        put_call_oi_ratio=_f(row.get("put_call_oi_ratio")),
        by_expiry=by_exp,
        quarter_end=qe,
        quarter_end_reason=None if qe is not None else "no quarter-end expiry listed in the stored snapshot",
        concentration={},
        forward_source="enriched forward per expiry",
    )
    vi = _f(row.get("variance_index_30d"))
    meta = {
        "underlying": row.get("underlying"),
        "underlying_name": row.get("underlying_name"),
        "spot": _f(row.get("spot")),
        "quote_time": row.get("quote_time"),
        "trade_date": row.get("trade_date"),
        "valuation_time": row.get("valuation_time"),
        "format": row.get("source_format"),
        "source_file": row.get("source_file"),
        "flagged": {k: int(row.get(f"hygiene_{k}") or 0) for k in HYGIENE_RULES},
        "warnings": _seq(row, "warnings"),
    }
    calendar = {k: row.get(k) for k in ("trading_days_to_quarter_end", "in_quarter_end_window",
                                        "in_year_end_window", "quarter_end_date")}
    return SnapshotMetrics(
        meta=meta,
        trade_date=str(row.get("trade_date")),
        constant_maturity=tuple(cms),
        per_expiry=pd.DataFrame(),
        variance_index={"available": math.isfinite(vi), "index": vi if math.isfinite(vi) else None,
                        "reason": row.get("variance_index_reason")},
        demand=demand,
        calendar=calendar,
        surface_source=str(row.get("surface_source")),
        skew_index={"index": row.get("skew_index_30d"), "sensitivity": row.get("skew_index_sensitivity")},
        notes=tuple(str(n) for n in _seq(row, "notes")),
    )


def stored_history(
    store_url: str, current: Any, *, window: int = 20, min_history: int = 5
) -> tuple[list[dict[str, Any]], Any]:
    """History records before ``current``'s trade date (same underlying) and the latest of them as a
    :class:`SnapshotMetrics` (None when the store has no earlier snapshot)."""
    underlying = str(current.meta.get("underlying"))
    try:
        res = stored_series(store_url, underlying=underlying, before=current.trade_date, window=window,
                            min_history=min_history)
    except DataError:
        return [], None
    records = res.records()
    store = Store.open(store_url)
    df = _read(store, underlying, None, None, current.trade_date)
    last = df.iloc[-1].to_dict()
    return records, metrics_from_row(last)


__all__ = ["BASELINE_FLOOR", "StoredTrack", "metrics_from_row", "record_columns", "stored_history", "stored_series",
           "stored_track_records"]
