"""The Parquet store: layout, identity, atomic writes, reading back with other readers, track --store, SQL."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from store_helpers import SPY_FILES, cboe_variant, with_date_line

from volsurf.history.ingest import ingest
from volsurf.history.store import MARKER, SCHEMA_VERSION, Store, content_hash


@pytest.fixture(scope="module")
def spy_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The two bundled SPY samples ingested in-process (the store most tests read)."""
    url = str(tmp_path_factory.mktemp("store") / "spy.store")
    res = ingest([str(p) for p in SPY_FILES], url, jobs=1, progress=False)
    assert res.count("added") == 2, res.outcomes
    return url


def test_layout_and_marker(spy_store: str) -> None:
    root = Path(spy_store)
    marker = Store.open(spy_store).manifest()
    assert marker["schema_version"] == SCHEMA_VERSION
    assert (root / MARKER).is_file()
    metrics = sorted(p.name for p in (root / "metrics").glob("*.parquet"))
    assert len(metrics) == 2
    for name in metrics:
        sid = name.removesuffix(".parquet")
        assert (root / "surface_params" / name).is_file()
        assert len(list((root / "contracts").glob(f"underlying=SPY/trade_date=*/{sid}.parquet"))) == 1
    assert not list(root.rglob("*.tmp"))


def test_any_parquet_reader_opens_it(spy_store: str) -> None:
    import duckdb
    import pyarrow.dataset as ds

    m = pd.read_parquet(Path(spy_store) / "metrics")
    assert sorted(m["trade_date"]) == ["2025-06-09", "2025-08-29"]
    for col in ("underlying", "trade_date", "quote_time", "source_file", "content_hash", "atm_iv_30d",
                "variance_index_30d", "rr25_30d", "bf25_30d", "put_skew_90_100_30d", "otm_put_oi_share",
                "otm_put_volume_share", "put_call_oi_ratio", "put_call_volume_ratio", "net_gex", "gamma_flip",
                "gamma_flip_low", "gamma_flip_high", "call_wall", "put_wall", "regime", "regime_robust",
                "fit_rmse_vol_points", "fit_inside_band_share"):
        assert col in m.columns, col
    c = ds.dataset(Path(spy_store) / "contracts", partitioning="hive").to_table().to_pandas()
    assert {"t", "forward", "iv_mid", "iv_bid", "iv_ask", "delta", "gamma", "flags", "iv_status"} <= set(c.columns)
    assert set(c["underlying"].astype(str)) == {"SPY"}
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{spy_store}/contracts/*/*/*.parquet')").fetchall()[0][0]
    assert n == len(c)
    # every metrics file has the same schema (explicit types, nulls included)
    schemas = {str(ds.dataset(p).schema) for p in sorted((Path(spy_store) / "metrics").glob("*.parquet"))}
    assert len(schemas) == 1


def test_headline_is_the_reports(spy_store: str) -> None:
    """The stored headline figures are those of `volsurf report` (same definitions, same GEX settings)."""
    from volsurf.report.pipeline import analyze

    a = analyze(str(SPY_FILES[1]))
    h = a.summary["headline"]
    row = Store.open(spy_store).read_metrics(underlying="SPY", start="2025-08-29").iloc[0]
    for k in ("spot", "implied_spot", "net_gex", "gamma_flip", "gamma_flip_distance_pct", "call_wall", "put_wall",
              "atm_iv_30d", "variance_index_30d", "rr25_30d", "put_skew_90_100_30d", "otm_put_oi_share",
              "otm_put_volume_share", "put_call_oi_ratio"):
        want = h[k]
        got = row[k]
        if want is None:
            assert got is None or (isinstance(got, float) and math.isnan(got)), k
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12), k
    assert row["regime"] == h["regime"]
    assert bool(row["regime_robust"]) == h["regime_robust"]
    if h["gamma_flip_range"]:
        assert [row["gamma_flip_low"], row["gamma_flip_high"]] == pytest.approx(h["gamma_flip_range"])
    surf = a.summary["surface"]
    assert row["fit_expiries"] == surf["n_expiries"]
    assert row["fit_rmse_vol_points"] == pytest.approx(surf["medians"]["mc"]["rmse_vol_points"])


def test_content_hash_ignores_name_and_date_format(tmp_path: Path) -> None:
    from volsurf.io import load

    src = SPY_FILES[1]
    renamed = shutil.copy(src, tmp_path / "SPY 2025.09.01 download (1).csv")
    other_format = with_date_line(src, tmp_path / "spy_20250829.csv", "1 September 2025, 6:50 PM EDT")
    changed = cboe_variant(src, tmp_path / "changed.csv", 0)
    h = content_hash(load(src))
    assert content_hash(load(renamed)) == h
    assert load(other_format).meta.quote_time == load(src).meta.quote_time
    assert content_hash(load(other_format)) == h
    assert content_hash(load(changed)) != h


def test_reingest_adds_nothing_and_duplicates_are_recognised(spy_store: str, tmp_path: Path) -> None:
    before = sorted(p.name for p in Path(spy_store).rglob("*.parquet"))
    res = ingest([str(p) for p in SPY_FILES], spy_store, jobs=1, progress=False)
    assert res.count("added") == 0 and res.count("present") == 2
    # the same data under another name and another date format: loaded, recognised by content
    dup = with_date_line(SPY_FILES[1], tmp_path / "dl" / "spy_20250829.csv", "1 September 2025, 6:50 PM EDT")
    res = ingest([str(dup)], spy_store, jobs=1, progress=False)
    assert [o.status for o in res.outcomes] == ["present"]
    assert sorted(p.name for p in Path(spy_store).rglob("*.parquet")) == before


def test_byte_identical_copies_in_one_run(tmp_path: Path) -> None:
    a = shutil.copy(SPY_FILES[0], tmp_path / "a.csv")
    b = shutil.copy(SPY_FILES[0], tmp_path / "b.csv")
    res = ingest([str(a), str(b)], str(tmp_path / "s"), jobs=1, progress=False)
    assert sorted(o.status for o in res.outcomes) == ["added", "duplicate"]


def test_bad_file_recorded_in_failures_run_goes_on(tmp_path: Path) -> None:
    bad = tmp_path / "in" / "broken.csv"
    bad.parent.mkdir()
    bad.write_text("not,a,chain\n1,2,3\n", encoding="utf-8")
    good = shutil.copy(SPY_FILES[0], tmp_path / "in" / "spy.csv")
    url = str(tmp_path / "s")
    res = ingest([str(tmp_path / "in")], url, jobs=1, progress=False)
    assert {o.source_file: o.status for o in res.outcomes} == {str(bad): "failed", str(good): "added"}
    fails = Store.open(url).read_table("failures").to_pandas()
    assert list(fails["source_file"]) == [str(bad)]
    assert "unknown chain format" in fails["reason"].iloc[0]
    assert "\n" not in fails["reason"].iloc[0]
    # the same failure again does not pile up
    ingest([str(tmp_path / "in")], url, jobs=1, progress=False)
    assert len(Store.open(url).read_table("failures")) == 1


def test_interrupted_writes_are_invisible(spy_store: str, tmp_path: Path) -> None:
    """A killed run leaves temporary files and maybe an uncommitted snapshot's contracts: readers do not see
    them, and the next ingest removes the temporary files of dead processes."""
    url = str(tmp_path / "s")
    shutil.copytree(spy_store, url)
    root = Path(url)
    sid = sorted(p.stem for p in (root / "metrics").glob("*.parquet"))[0]
    from volsurf.history.store import _HOST

    # a half-written metrics file of a dead process, and an orphan contracts file (no metrics)
    dead_pid = 2**22 + 12345
    (root / "metrics" / f".{sid}.parquet.{_HOST}.{dead_pid}.tmp").write_bytes(b"PAR1 half")
    orphan = root / "contracts" / "underlying=SPY" / "trade_date=2025-01-02" / "ffffffffffffffffffffffff.parquet"
    orphan.parent.mkdir(parents=True)
    shutil.copy(next((root / "contracts").glob(f"*/*/{sid}.parquet")), orphan)
    store = Store.open(url)
    assert store.read_metrics()["snapshot_id"].nunique() == 2
    contracts = store.read_table("contracts", columns=["snapshot_id"]).to_pandas()
    assert "ffffffffffffffffffffffff" not in set(contracts["snapshot_id"])
    from volsurf.history.sql import query

    assert query(url, "SELECT count(DISTINCT snapshot_id) AS n FROM contracts")["n"].iloc[0] == 2
    assert pd.read_parquet(root / "metrics").shape[0] == 2  # hidden temporary files are skipped by pyarrow
    assert store.clean_temporary() == 1


def test_track_store_equals_track_over_files(spy_store: str, tmp_path: Path) -> None:
    """Same series (columns, dtypes, values) from the stored metrics as from refitting the files."""
    from volsurf.history.stored import stored_series
    from volsurf.history.track import track

    files = [str(p) for p in SPY_FILES]
    a = track(files, surface="fitted", window=5, min_history=2).series
    b = stored_series(spy_store, underlying="SPY", window=5, min_history=2).series
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def _same(a: object, b: object) -> bool:
    """Equal values of the same type (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))  # type: ignore[arg-type]


def test_track_records_equal_the_frame_records(spy_store: str) -> None:
    """``track --store`` prints stored_track_records (no DataFrame): the same columns, values and Python types as
    stored_series(...).records(), with the superseded snapshots reported alike."""
    from volsurf.history.stored import stored_series, stored_track_records

    for kw in ({}, {"start": "2025-07-01"}, {"window": 3, "min_history": 2}):
        frame = stored_series(spy_store, **kw)  # type: ignore[arg-type]
        fast = stored_track_records(spy_store, **kw)  # type: ignore[arg-type]
        assert fast.columns == list(frame.series.columns)
        assert fast.skipped == frame.skipped and fast.baseline == frame.baseline
        want = frame.records()
        assert len(fast.records) == len(want) > 0
        for r, w in zip(fast.records, want, strict=True):
            assert list(r) == list(w)
            assert all(_same(r[k], w[k]) for k in w), [k for k in w if not _same(r[k], w[k])]


@pytest.mark.parametrize(
    ("values", "arrow_type"),
    [
        ([1.5, None, float("nan")], "float64"),
        ([1, 2, 3], "int64"),
        ([1, None, 3], "int64"),
        ([True, False], "bool"),
        ([True, None], "bool"),
        (["a", "b"], "string"),
        (["a", None], "string"),
        ([None, None], "string"),
    ],
)
def test_column_values_type_like_pandas(values: list[object], arrow_type: str) -> None:
    """An Arrow column's record values are typed as pandas' to_pandas + to_dict(orient="records") types them
    (the reference), including the track frame's all-missing text column of None."""
    import pyarrow as pa

    from volsurf.history.stored import _column_values

    col = pa.chunked_array([pa.array(values, type=pa.type_for_alias(arrow_type))])
    s = pa.table({"c": col}).to_pandas()["c"]
    if s.isna().all() and pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        s = pd.Series([None] * len(s), dtype=object)
    want = pd.DataFrame({"c": s}).to_dict(orient="records")
    got = _column_values(col)
    assert all(_same(g, w["c"]) for g, w in zip(got, want, strict=True)), (got, want)


def test_like_for_like_matches_demand_change() -> None:
    """The vectorized like-for-like share changes equal demand_change's, pair by pair."""
    from volsurf.analytics.demand import demand_change
    from volsurf.history.stored import _like_for_like, metrics_from_row

    rng = np.random.default_rng(3)
    dates = [f"2025-0{m}-{d:02d}" for m in (6, 7, 8, 9) for d in (5, 12, 19, 26)]
    rows = []
    for i in range(5):
        listed = sorted(rng.choice(dates, size=8, replace=False))
        by = []
        for d in listed:
            sums = {k: float(rng.integers(0, 1000)) for k in ("call_volume", "put_volume", "call_oi", "put_oi")}
            sums["otm_put_volume"] = sums["put_volume"] * 0.7
            sums["otm_put_oi"] = sums["put_oi"] * 0.6
            by.append({"expiry_date": d, **sums, "otm_put_volume_share": None, "otm_put_oi_share": None,
                       "put_call_volume_ratio": None, "put_call_oi_ratio": None, "is_quarter_end": d == "2025-09-26"})
        rows.append({"demand_by_expiry": by, "trade_date": f"2025-06-0{i + 1}"})
    lfl = _like_for_like([r["demand_by_expiry"] for r in rows])
    assert all(math.isnan(lfl[c][0]) for c in lfl)
    for i in range(1, 5):
        ch = demand_change(metrics_from_row(rows[i]).demand, metrics_from_row(rows[i - 1]).demand)
        for c in ("otm_put_oi_share", "otm_put_volume_share"):
            want = ch.like_for_like[c]
            assert (math.isnan(want) and math.isnan(lfl[c][i])) or lfl[c][i] == pytest.approx(want, rel=1e-12)


def test_sql_views(spy_store: str) -> None:
    from volsurf.history.sql import query

    df = query(spy_store, """
        SELECT m.trade_date, count(*) AS n, avg(c.iv_mid) AS iv
        FROM contracts c JOIN metrics m USING (snapshot_id)
        GROUP BY 1 ORDER BY 1""")
    assert list(df["trade_date"]) == ["2025-06-09", "2025-08-29"]
    assert (df["n"] > 1000).all()
    sp = query(spy_store, "SELECT snapshot_id, count(*) AS n, min(svi_b) AS b FROM surface_params GROUP BY 1")
    assert len(sp) == 2 and (sp["b"] >= 0).all()
    assert len(query(spy_store, "SELECT * FROM failures")) == 0
    from volsurf.errors import ParameterError

    with pytest.raises(ParameterError, match="query failed"):
        query(spy_store, "SELECT no_such_column FROM metrics")


def test_sql_times_are_new_york_instants(spy_store: str) -> None:
    """Expiries come back as the instants the contracts table holds, shown in New York time with the offset (a
    SPY PM expiry settles at 16:00 New York), not as naive UTC."""
    from volsurf.history.sql import query
    from volsurf.history.store import Store

    df = query(spy_store, "SELECT DISTINCT expiry, settlement FROM contracts ORDER BY 1")
    assert str(df["expiry"].dt.tz) == "America/New_York"
    pm = df.loc[df["settlement"] == "PM", "expiry"]
    assert len(pm) and (pm.dt.hour == 16).all() and (pm.dt.minute == 0).all()
    stored = Store.open(spy_store).read_table("contracts", columns=["expiry"]).column("expiry").to_pandas()
    assert set(df["expiry"].dt.tz_convert("UTC")) == set(stored.dt.tz_convert("UTC"))


def test_not_a_store(tmp_path: Path) -> None:
    from volsurf.errors import InputFileError

    with pytest.raises(InputFileError, match="not a volsurf store"):
        Store.open(str(tmp_path))


def test_metrics_index_is_only_a_cache(spy_store: str, tmp_path: Path) -> None:
    """The metrics index saves opening one file per snapshot; a missing, stale or damaged index changes nothing."""
    url = str(tmp_path / "s")
    shutil.copytree(spy_store, url)
    store = Store.open(url)
    full = store.read_table("metrics").to_pandas()
    index = Path(store.index_path())
    assert index.is_file() and len(pd.read_parquet(index)) == 2
    # stale: an index written by a concurrent run that did not see one snapshot
    pd.read_parquet(index).iloc[:1].to_parquet(index)
    assert store.read_table("metrics").to_pandas()["snapshot_id"].tolist() == full["snapshot_id"].tolist()
    index.write_bytes(b"damaged")
    pd.testing.assert_frame_equal(store.read_table("metrics").to_pandas(), full)
    index.unlink()
    pd.testing.assert_frame_equal(store.read_table("metrics").to_pandas(), full)
    assert store.update_index() == 2 and index.is_file()


def test_files_with_many_quote_times_give_one_snapshot_each(tmp_path: Path) -> None:
    """A DataShop file (two quote times) and a monthly OptionsDX file (two days): one snapshot per quote time."""
    data = Path(__file__).resolve().parents[1] / "data"
    files = [str(data / "datashop_spx_small.csv"), str(data / "spx_eod_202301_small.txt")]
    url = str(tmp_path / "s")
    res = ingest(files, url, jobs=1, progress=False)
    assert [o.status for o in res.outcomes] == ["added"] * 4
    m = Store.open(url).read_metrics()
    assert sorted(zip(m["source_file"], m["snapshot_index"], strict=True)) == [
        (files[0], 0), (files[0], 1), (files[1], 0), (files[1], 1)]
    assert set(m["snapshots_in_file"]) == {2}
    assert m["snapshot_id"].nunique() == 4
    # too few quotes for a surface: the skew columns are empty with the reason, the rest is measured
    assert set(m["surface_source"]) == {"none"}
    assert m["rr25_30d"].isna().all() and m["spot"].notna().all() and (m["contracts"] > 0).all()
    assert all(any("no fitted surface" in n for n in notes) for notes in m["notes"])
    assert ingest(files, url, jobs=1, progress=False).count("present") == 2  # two files, already stored


def test_fsspec_store(spy_store: str) -> None:
    """A store at an fsspec URL (the in-memory filesystem stands in for an object store): written straight to
    its keys, read back by track --store and SQL like a local one."""
    import uuid

    from volsurf.history.sql import query
    from volsurf.history.stored import stored_series

    url = f"memory://volsurf-test-{uuid.uuid4().hex}/store"
    res = ingest([str(p) for p in SPY_FILES], url, jobs=1, progress=False)
    assert res.count("added") == 2
    assert ingest([str(SPY_FILES[0])], url, jobs=1, progress=False).count("present") == 1
    pd.testing.assert_frame_equal(stored_series(url, window=5, min_history=2).series,
                                  stored_series(spy_store, window=5, min_history=2).series, check_exact=True)
    n = query(url, "SELECT count(*) AS n FROM contracts")["n"].iloc[0]
    assert n == query(spy_store, "SELECT count(*) AS n FROM contracts")["n"].iloc[0]


def test_track_store_equals_track_on_real_history(tmp_path: Path) -> None:
    """Three real SPY sessions (shared data) with expiries in common: the like-for-like demand changes and the
    whole series are the same from the store as from refitting the files."""
    from conftest import REAL, require_shared

    from volsurf.history.stored import stored_series
    from volsurf.history.track import track

    require_shared()
    base = REAL / "cboe_ralph-e-boy_gamma-chart"
    files = [str(base / d / "quotedata.csv") for d in ("2025-05-01_1649", "2025-05-06_1814", "2025-05-08_1657")]
    url = str(tmp_path / "real.store")
    assert ingest(files, url, jobs=1, progress=False).count("added") == 3
    a = track(files, surface="fitted", window=5, min_history=2).series
    b = stored_series(url, window=5, min_history=2).series
    assert a["d_otm_put_oi_share"].iloc[1:].notna().all()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
