"""Ingest chain files into the Parquet store (:mod:`volsurf.history.store`), on a process pool or on Dask.

:func:`process_snapshot` is the per-snapshot pipeline (enrich -> fit -> measure -> GEX -> rows of the store's
tables), a pure function of one snapshot. :func:`ingest_file` runs it on every snapshot of one file (a DataShop
or monthly OptionsDX file holds many quote times) and commits each to the store: it is the one task every
engine runs, so results are identical whichever engine runs them. :func:`ingest` expands the paths, leaves out
files already stored, and maps :func:`ingest_file` over the rest with the chosen engine:

- ``local`` (default): in-process for ``jobs=1``, else a process pool of ``jobs`` workers;
- ``dask``: Dask distributed, on a new ``LocalCluster`` of ``jobs`` single-threaded worker processes, or on an
  existing cluster given by its scheduler address (``tcp://HOST:PORT``).

One task per file; a worker holds one file's snapshots at a time, so its memory does not grow with the number of
files. A snapshot that fails (bad file, no usable quotes, a bug) is written to the ``failures`` table with its
one-line reason and the run goes on.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from volsurf.errors import InputFileError, ParameterError, VolsurfError
from volsurf.history.store import (
    SCHEMA_VERSION,
    Store,
    content_hash,
    file_hash,
    frame_to_table,
    metrics_schema,
    snapshot_id,
    table_schema,
    volsurf_version,
)

ENGINES: tuple[str, ...] = ("local", "dask")

#: The smile layer the stored metrics are measured on (the report's: ``volsurf.report.pipeline``).
SURFACE_METHOD = "fitted"

# Metadata key of the metrics files listing the :meth:`SnapshotMetrics.record` columns (the ``track`` series).
RECORD_COLUMNS_KEY = b"volsurf.record_columns"

SURFACE_STRINGS = ("snapshot_id", "underlying", "trade_date", "valuation_time", "expiry", "root", "settlement",
                   "svi_flags")
SURFACE_INTS = ("n_liquid", "butterfly_violations", "calendar_violations", "svi_butterfly_violations",
                "raw_butterfly_violations", "raw_calendar_violations", "arb_inconsistent_quotes")


@dataclass(frozen=True)
class StoredSnapshot:
    """The store rows of one snapshot (Arrow tables) and its identity."""

    snapshot_id: str
    content_hash: str
    underlying: str
    trade_date: str
    contracts: Any
    surface: Any
    metrics: Any


@dataclass(frozen=True)
class Outcome:
    """What happened to one snapshot (or to a file that could not be read at all).

    ``status`` is ``added`` (committed now), ``present`` (already in the store: same content), ``failed``
    (recorded in ``failures``) or ``duplicate`` (a byte-identical copy of another file of this run).
    """

    source_file: str
    status: str
    snapshot_id: str | None = None
    underlying: str | None = None
    trade_date: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    cpu_seconds: float | None = None
    metrics_row: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("source_file", "status", "snapshot_id", "underlying", "trade_date",
                                              "reason", "seconds", "peak_rss_mb", "cpu_seconds")}


@dataclass(frozen=True)
class IngestResult:
    """Outcomes of a run (one per snapshot or per file left out), its engine and its wall time."""

    outcomes: tuple[Outcome, ...]
    engine: str
    workers: int
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def summary(self) -> dict[str, Any]:
        done = self.count("added")
        return {
            "engine": self.engine,
            "workers": self.workers,
            "added": done,
            "present": self.count("present"),
            "duplicate": self.count("duplicate"),
            "failed": self.count("failed"),
            "seconds": round(self.seconds, 3),
            "snapshots_per_second": round(done / self.seconds, 3) if self.seconds > 0 else None,
        }


# ---------------------------------------------------------------------------------------------------------
# The per-snapshot function
# ---------------------------------------------------------------------------------------------------------


def _clean(v: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python (the store keeps SQL NULL for 'not available')."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _fit_quality(summ: dict[str, Any] | None) -> dict[str, Any]:
    if summ is None:
        return {k: None for k in ("fit_expiries", "fit_expiries_skipped", "fit_rmse_vol_points", "fit_inside_band_share",
                                  "svi_rmse_vol_points", "svi_inside_band_share", "essvi_rmse_vol_points",
                                  "essvi_inside_band_share", "fit_butterfly_violations", "fit_calendar_violations",
                                  "raw_butterfly_violations", "raw_calendar_violations", "arb_inconsistent_quotes")}
    med, vio = summ["medians"], summ["violations"]
    return {
        "fit_expiries": summ["n_expiries"],
        "fit_expiries_skipped": len(summ["skipped"]),
        "fit_rmse_vol_points": med["mc"]["rmse_vol_points"],
        "fit_inside_band_share": med["mc"]["inside_band_share"],
        "svi_rmse_vol_points": med["svi"]["rmse_vol_points"],
        "svi_inside_band_share": med["svi"]["inside_band_share"],
        "essvi_rmse_vol_points": med["essvi"]["rmse_vol_points"],
        "essvi_inside_band_share": med["essvi"]["inside_band_share"],
        "fit_butterfly_violations": vio["butterfly"],
        "fit_calendar_violations": vio["calendar"],
        "raw_butterfly_violations": vio["raw_butterfly"],
        "raw_calendar_violations": vio["raw_calendar"],
        "arb_inconsistent_quotes": vio["arb_inconsistent_quotes"],
    }


def process_snapshot(
    snapshot: Any,
    *,
    file_digest: str = "",
    index: int = 0,
    n_in_file: int = 1,
    digest: str | None = None,
) -> StoredSnapshot:
    """Run the pipeline on one snapshot and build its rows of the store's tables (no I/O).

    Parameters
    ----------
    snapshot : Snapshot
        A loaded, normalized snapshot (:func:`volsurf.io.load_all`).
    file_digest : str
        SHA-256 of the file it came from (``file_hash`` column).
    index, n_in_file : int
        Its position among the snapshots of that file and their number.
    digest : str, optional
        Its :func:`~volsurf.history.store.content_hash` when already computed.

    Returns
    -------
    StoredSnapshot
        The Arrow tables of ``contracts``, ``surface_params`` and ``metrics`` (one row).

    Notes
    -----
    The stored metrics are those of ``volsurf track --surface fitted`` (the arbitrage-free surface; when no
    surface can be fitted, the skew columns are empty as in ``track``) and the headline figures of
    ``volsurf report`` (:mod:`volsurf.analytics.headline`, same GEX settings). Warnings raised on the way are
    kept in the ``warnings`` column instead of being shown.
    """
    import pyarrow as pa

    from volsurf.analytics import gex_report as gexmod
    from volsurf.analytics.headline import snapshot_headline
    from volsurf.analytics.measure import snapshot_metrics
    from volsurf.errors import DataError
    from volsurf.market.snapshot import HYGIENE_RULES
    from volsurf.pricing.enrich import enrich
    from volsurf.surface.summary import fit_from_enriched, surface_summary, table_rows

    meta = snapshot.meta
    digest = digest or content_hash(snapshot)
    sid = snapshot_id(digest)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enriched = enrich(snapshot)
        try:
            surface = fit_from_enriched(enriched, overlap=False)  # one task per core: no second thread
        except DataError as exc:
            surface = None
            notes.append(f"no fitted surface: {exc.one_line()}")
        metrics = snapshot_metrics(snapshot, enriched=enriched, fitted_surface=surface, surface=SURFACE_METHOD,
                                   per_expiry=False, chart_data=False)
        gex = gexmod.gex_report(enriched, vol=gexmod.surface_vol(surface) if surface is not None else None)
        g = gex.to_dict()
        summ = surface_summary(surface, enriched) if surface is not None else None
    trade_date = meta.trade_date.isoformat()
    rec = metrics.record()
    head = snapshot_headline(meta=meta, implied_spot=enriched.implied_spot, metrics=metrics, gex=g)
    flip_range = head["gamma_flip_range"] or [None, None]
    warn_text = list(dict.fromkeys([*meta.warnings, *enriched.warnings, *(str(c.message) for c in caught)]))
    row: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "snapshot_id": sid,
        "content_hash": digest,
        "file_hash": file_digest,
        "snapshot_index": index,
        "snapshots_in_file": n_in_file,
        "source_format": meta.source_format,
        "underlying_name": meta.underlying_name,
        "quote_time": meta.quote_time.isoformat(),
        **rec,
        "implied_spot": head["implied_spot"],
        "net_gex": head["net_gex"],
        "call_gex": g.get("call_gex"),
        "put_gex": g.get("put_gex"),
        "gross_gex": g.get("gross_gex"),
        "dex": g.get("dex"),
        "vanna_exposure": g.get("vanna_exposure"),
        "charm_exposure": g.get("charm_exposure"),
        "regime": head["regime"],
        "regime_robust": head["regime_robust"],
        "gamma_flip": head["gamma_flip"],
        "gamma_flip_distance_pct": head["gamma_flip_distance_pct"],
        "gamma_flip_low": flip_range[0],
        "gamma_flip_high": flip_range[1],
        "call_wall": head["call_wall"],
        "put_wall": head["put_wall"],
        "largest_abs_gex_strike": g.get("largest_abs_gex_strike"),
        "variance_index_reason": (
            None if math.isfinite(metrics.variance_index_30d) else metrics.variance_index.get("reason")
        ),
        "surface_method": SURFACE_METHOD,
        "surface_source": metrics.surface_source,
        **_fit_quality(summ),
        "contracts": len(snapshot.frame),
        "expiries": int(snapshot.frame["expiry"].nunique()),
        **{f"hygiene_{k}": int(meta.hygiene.get(k, 0)) for k in HYGIENE_RULES},
        "volsurf_version": volsurf_version(),
        "warnings": warn_text,
        "notes": [*notes, *metrics.notes],
        "constant_maturity": [
            {**{k: _clean(v) for k, v in m.to_dict().items() if k != "days"}, "days": round(m.days)}
            for m in metrics.constant_maturity
        ],
        "demand_by_expiry": [
            {k: _clean(v) for k, v in r.items()} for r in metrics.demand.by_expiry.to_dict(orient="records")
        ],
    }
    row = {k: (_clean(v) if not isinstance(v, list) else v) for k, v in row.items()}
    schema = metrics_schema(list(row)).with_metadata({RECORD_COLUMNS_KEY: ",".join(rec).encode()})
    metrics_tab = pa.Table.from_pylist([row], schema=schema)

    frame = enriched.frame.reset_index(drop=True)
    frame.insert(0, "snapshot_id", sid)
    contracts_tab = frame_to_table(frame)

    srows = table_rows(summ) if summ is not None else []
    scols = ["snapshot_id", "underlying", "trade_date", "valuation_time", *(list(srows[0]) if srows else
                                                                         _surface_columns())]
    ident = {"snapshot_id": sid, "underlying": meta.underlying, "trade_date": trade_date,
             "valuation_time": meta.valuation_time.isoformat()}
    surface_tab = pa.Table.from_pylist([{**ident, **{k: _clean(v) for k, v in r.items()}} for r in srows],
                                       schema=table_schema(scols, strings=SURFACE_STRINGS, ints=SURFACE_INTS))
    return StoredSnapshot(sid, digest, str(meta.underlying), trade_date, contracts_tab, surface_tab, metrics_tab)


def _surface_columns() -> list[str]:
    from volsurf.surface.summary import CSV_COLUMNS

    return list(CSV_COLUMNS)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB): the worker's high-water mark."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _failure_id(file_digest: str, index: int) -> str:
    return hashlib.sha256(f"{file_digest}|{index}".encode()).hexdigest()[:24]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, VolsurfError):
        return exc.one_line()
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fail(store: Store, path: str, file_digest: str, index: int, exc: BaseException, stage: str,
          t0: float) -> Outcome:

    reason = _one_line(exc)
    store.record_failure(_failure_id(file_digest, index), {
        "source_file": path, "file_hash": file_digest, "snapshot_index": index, "stage": stage,
        "error": type(exc).__name__, "reason": reason, "volsurf_version": volsurf_version(),
    })
    return Outcome(path, "failed", reason=reason, seconds=time.perf_counter() - t0)


_ALLOCATOR_TUNED: list[bool] = []


def _relax_malloc_thresholds() -> None:
    """Give numpy's temporaries back glibc's heap where the environment pinned malloc's thresholds (once per process).

    Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand freed memory back to the OS).
    Setting any threshold turns glibc's dynamic mmap threshold off, so every array over 128 KiB becomes a fresh
    ``mmap`` and page-faults on first touch: measured here as 20-55% more CPU per snapshot in a Dask worker than
    in a pool worker. Where that variable is set (Linux only), the mmap threshold is raised to 32 MiB and the trim
    threshold to 128 MiB; memory above them still goes back to the OS, so a worker's footprint stays bounded.
    """
    if _ALLOCATOR_TUNED or "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    _ALLOCATOR_TUNED.append(True)
    import ctypes

    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameters (malloc.h)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 128 << 20)
    except (OSError, AttributeError):  # not glibc: nothing to relax
        pass


def ingest_file(path: str, store_url: str, file_digest: str | None = None, as_of: str | None = None,
                part: int = 0, n_parts: int = 1) -> list[Outcome]:
    """Load every snapshot of one file, process the new ones and commit each to the store (the engines' task).

    Never raises for a bad file or snapshot: the failure is written to the ``failures`` table and returned as an
    ``Outcome`` with status ``failed``. BLAS runs single-threaded inside (one task per core; and a product's
    summation order, hence its last bits, then does not depend on the engine's thread settings).
    """
    from threadpoolctl import threadpool_limits

    _relax_malloc_thresholds()
    with threadpool_limits(limits=1):
        return _ingest_file(path, store_url, file_digest, as_of, part, n_parts)


def _ingest_file(path: str, store_url: str, file_digest: str | None, as_of: str | None, part: int,
                 n_parts: int) -> list[Outcome]:
    from volsurf.io import load_all

    t0, c0 = time.perf_counter(), time.process_time()
    store = Store.open(store_url)
    try:
        file_digest = file_digest or file_hash(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snaps = load_all(path, as_of=as_of)
    except Exception as exc:  # a file that cannot be read is a failure of the run, never its end
        # (recorded once, by the first part of a split file)
        return [_fail(store, path, file_digest or "", -1, exc, "load", t0)] if part == 0 else []
    store.clear_failure(_failure_id(file_digest, -1))
    mine = range(part, len(snaps), n_parts)  # a split file: every n_parts-th snapshot from this part's own
    # the file's reading time, shared among the snapshots of this task
    n = max(len(mine), 1)
    load_wall, load_cpu = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n
    out: list[Outcome] = []
    for i in mine:
        snap = snaps[i]
        t1, c1 = time.perf_counter() - load_wall, time.process_time() - load_cpu
        try:
            digest = content_hash(snap)
            sid = snapshot_id(digest)
            if store.has_snapshot(sid):
                out.append(Outcome(path, "present", sid, str(snap.meta.underlying), snap.meta.trade_date.isoformat(),
                                   "already in the store (same content)", time.perf_counter() - t1))
                continue
            rows = process_snapshot(snap, file_digest=file_digest, index=i, n_in_file=len(snaps), digest=digest)
            store.commit_snapshot(rows.snapshot_id, underlying=rows.underlying, trade_date=rows.trade_date,
                                  contracts=rows.contracts, surface=rows.surface, metrics=rows.metrics)
            store.clear_failure(_failure_id(file_digest, i))
            out.append(Outcome(path, "added", sid, rows.underlying, rows.trade_date, None, time.perf_counter() - t1,
                               _peak_rss_mb(), time.process_time() - c1, rows.metrics))
        except Exception as exc:  # one bad snapshot is recorded and the file goes on
            out.append(_fail(store, path, file_digest, i, exc, "process", t1))
    return out


# ---------------------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------------------


class _Progress:
    """tqdm bar of snapshots done and failed with the rate (stderr)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        self.counts = {"added": 0, "present": 0, "failed": 0}
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="ingest", unit="task", file=sys.stderr, leave=False)

    def update(self, outcomes: Sequence[Outcome]) -> None:
        for o in outcomes:
            if o.status in self.counts:
                self.counts[o.status] += 1
        if self.bar is not None:
            self.bar.set_postfix(self.counts, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _already_stored(store: Store) -> dict[str, int]:
    """file_hash -> number of its snapshots committed (files whose every snapshot is stored are left out)."""
    tab = store.read_table("metrics", columns=["file_hash", "snapshots_in_file"])
    if tab is None or tab.num_rows == 0:
        return {}
    df = tab.to_pandas()
    counts = df.groupby("file_hash")["snapshots_in_file"].agg(["size", "max"])
    return {str(h): int(r["max"]) for h, r in counts.iterrows() if int(r["size"]) >= int(r["max"])}


#: One engine task: (file, its SHA-256, part, number of parts); a part takes every n-th snapshot of the file.
Task = tuple[str, str, int, int]


def _tasks(files: list[tuple[str, str]], jobs: int) -> list[Task]:
    """One task per file; when there are fewer than two files per worker, a file that holds several snapshots
    (DataShop, OptionsDX) is split into parts, so that one big file does not keep a single worker busy while the
    others idle. Each part reads the whole file and processes its share of the snapshots: more reading, less
    waiting."""
    if jobs <= 1 or not files or len(files) >= 2 * jobs:
        return [(p, d, 0, 1) for p, d in files]
    from volsurf.io.detect import holds_many_snapshots

    n_parts = min(jobs, -(-2 * jobs // len(files)))
    out: list[Task] = []
    for p, d in files:
        k = n_parts if holds_many_snapshots(p) else 1
        out.extend((p, d, i, k) for i in range(k))
    return out


def _run_local(tasks: list[Task], store_url: str, jobs: int, on_done: Callable[[list[Outcome]], None],
               as_of: str | None = None) -> None:
    if jobs <= 1 or len(tasks) <= 1:
        for path, digest, part, n_parts in tasks:
            on_done(ingest_file(path, store_url, digest, as_of, part, n_parts))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # forkserver: workers start from a clean server process that has volsurf imported (no fork of a threaded
    # parent). No max_tasks_per_child: on Python 3.11 an executor whose workers retire stops replacing them once
    # every task is queued, and the run hangs; a task holds one file at a time, so memory stays bounded anyway.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["volsurf.history.ingest"])
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx) as pool:
        futures = {pool.submit(ingest_file, path, store_url, digest, as_of, part, n_parts): (path, digest)
                   for path, digest, part, n_parts in tasks}
        for fut in as_completed(futures):
            try:
                on_done(fut.result())
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory): record, go on
                path, digest = futures[fut]
                on_done([_fail(Store.open(store_url), path, digest, -1, exc, "worker", time.perf_counter())])


def _run_dask(tasks: list[Task], store_url: str, jobs: int, scheduler: str | None,
              on_done: Callable[[list[Outcome]], None], as_of: str | None = None) -> int:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ParameterError("--engine dask needs dask.distributed", hint="pip install 'dask[distributed]'") from exc
    cluster = None
    if scheduler is None:
        import dask

        # one single-threaded worker process per job: the fit is CPU-bound Python/numpy. No dashboard, so the
        # workers' statistical profiler (a stack sample every 10 ms, holding the GIL) only costs CPU.
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                                   dashboard_address=None, memory_limit="2GiB")
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ParameterError(f"cannot reach the Dask scheduler at {scheduler}: {_one_line(exc)}",
                                 hint="start it with `dask scheduler` and give its tcp://HOST:PORT") from exc
    try:
        workers = len(client.scheduler_info().get("workers", {}))
        futures = client.map(ingest_file, [t[0] for t in tasks], [store_url] * len(tasks), [t[1] for t in tasks],
                             [as_of] * len(tasks), [t[2] for t in tasks], [t[3] for t in tasks], pure=False)
        keys = {f.key: task for f, task in zip(futures, tasks, strict=True)}
        for fut in as_completed(futures):
            try:
                on_done(fut.result())
            except Exception as exc:  # the task itself never raises: a worker died or the cluster failed
                path, digest = keys[fut.key][:2]
                on_done([_fail(Store.open(store_url), path, digest, -1, exc, "worker", time.perf_counter())])
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return workers


def ingest(
    paths: Sequence[str],
    store_url: str,
    *,
    engine: str = "local",
    jobs: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    as_of: str | None = None,
) -> IngestResult:
    """Ingest every snapshot of ``paths`` (files, directories, globs) into the store at ``store_url``.

    Parameters
    ----------
    paths : sequence of str
        Chain files, directories or globs (:func:`volsurf.io.expand_paths`).
    store_url : str
        The store (created when absent): a directory or an fsspec URL.
    engine : str
        ``local`` (process pool) or ``dask``.
    jobs : int, optional
        Worker processes (default: the CPU count; with a Dask ``scheduler``, the cluster's workers are used).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://HOST:PORT``); implies ``engine="dask"``.
    progress : bool, optional
        Progress bar on stderr (default: on a terminal).
    as_of : str, optional
        As-of time of the chain, replacing the file's (New York time unless a zone is given): for a file that
        carries none (older Cboe JSON). Only with a single file; its bytes are then loaded even when already
        stored (the stored snapshot may have another as-of time), and the content hash decides.

    Returns
    -------
    IngestResult
        One :class:`Outcome` per snapshot; files already stored or byte-identical to another one of the run
        get one outcome each (``present`` / ``duplicate``) without being loaded.
    """
    from volsurf.io import expand_paths

    if scheduler is not None:
        engine = "dask"
    if engine not in ENGINES:
        raise ParameterError(f"unknown engine {engine!r}", hint=f"one of {', '.join(ENGINES)}")
    if jobs is not None and jobs < 1:
        raise ParameterError(f"jobs must be at least 1, got {jobs}")
    n_jobs = jobs or os.cpu_count() or 1
    t0 = time.perf_counter()
    files = expand_paths(list(paths))
    if not files:
        raise ParameterError("no files to ingest", hint="give files, directories or globs")
    for f in files:
        if not os.path.isfile(f):
            raise InputFileError(f, "no such file", hint="check the path (files, directories and globs are accepted)")
    if as_of is not None:
        from volsurf.io.dates import read_as_of

        if len(files) != 1:
            raise ParameterError(f"an as-of time replaces the time of one file; the paths give {len(files)} files",
                                 hint="ingest the file that carries no time on its own")
        read_as_of(as_of)  # a value it cannot read stops the run here, not in every task
    store = Store.open(store_url, create=True)
    notes: list[str] = []
    removed = store.clean_temporary()
    if removed:
        notes.append(f"removed {removed} temporary files of an interrupted run")
    stored = _already_stored(store)
    outcomes: list[Outcome] = []
    files_to_do: list[tuple[str, str]] = []
    first_of: dict[str, str] = {}
    for path in files:
        try:
            digest = file_hash(path)
        except OSError as exc:
            outcomes.append(_fail(store, path, "", -1, exc, "read", time.perf_counter()))
            continue
        if digest in stored and as_of is None:
            outcomes.append(Outcome(path, "present", reason="file already ingested (same bytes)"))
        elif digest in first_of:
            outcomes.append(Outcome(path, "duplicate", reason=f"same bytes as {first_of[digest]}"))
        else:
            first_of[digest] = path
            files_to_do.append((path, digest))
    tasks = _tasks(files_to_do, n_jobs)
    bar = _Progress(len(tasks), progress)

    rows: list[Any] = []  # metrics rows of the snapshots added, for the index (compacted as they come)

    def done(res: list[Outcome]) -> None:
        rows.extend(o.metrics_row for o in res if o.metrics_row is not None)
        if len(rows) >= 256:
            import pyarrow as pa

            rows[:] = [pa.concat_tables(rows, promote_options="permissive").combine_chunks()]
        outcomes.extend(replace(o, metrics_row=None) if o.metrics_row is not None else o for o in res)
        bar.update(res)

    workers = n_jobs
    try:
        if engine == "dask":
            workers = _run_dask(tasks, store.url if not store.local else store.root, n_jobs, scheduler, done, as_of)
        else:
            _run_local(tasks, store.url if not store.local else store.root, n_jobs, done, as_of)
    finally:
        bar.close()
        # one file with every snapshot's metrics row, so that readers need not open one file per snapshot
        store.update_index(rows)
    return IngestResult(tuple(outcomes), engine, workers, time.perf_counter() - t0, tuple(notes))


__all__ = [
    "ENGINES",
    "SURFACE_METHOD",
    "IngestResult",
    "Outcome",
    "StoredSnapshot",
    "ingest",
    "ingest_file",
    "process_snapshot",
]
