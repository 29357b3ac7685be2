"""Skew and demand metrics of many snapshots as a time series, with trailing baselines.

Each snapshot is measured by :func:`volsurf.analytics.measure.snapshot_metrics` (a pure function of the
snapshot); :func:`track` maps it over files, in-process or on a process pool, and orders the results.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd

from volsurf.analytics.demand import demand_change
from volsurf.analytics.measure import SnapshotMetrics, like_for_like, path_metrics
from volsurf.errors import DataError, ParameterError, VolsurfError
from volsurf.signals.baseline import BASELINE_METRICS, baseline_columns

# ---------------------------------------------------------------------------------------------------------
# Time series
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TrackResult:
    """The metric series (one row per snapshot, ordered by trade date then valuation time).

    ``series`` has the :meth:`SnapshotMetrics.record` columns, ``<m>_z`` / ``<m>_pct`` baseline columns for
    :data:`BASELINE_METRICS`, and ``d_<share>`` like-for-like demand changes against the previous row.
    ``skipped`` lists ``(path, reason)`` of files that failed or were superseded (same trade date).
    """

    series: pd.DataFrame
    snapshots: tuple[SnapshotMetrics, ...]
    skipped: tuple[tuple[str, str], ...]
    baseline: dict[str, Any]

    def records(self) -> list[dict[str, Any]]:
        return [{str(k): v for k, v in r.items()} for r in self.series.to_dict(orient="records")]


def _progress(iterable: Iterable, total: int, enabled: bool | None, desc: str) -> Iterable:
    """tqdm on stderr; by default only on a TTY and for more than 10 items."""
    if enabled is None:
        enabled = total > 10 and sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="file", file=sys.stderr, leave=False)


def track(
    paths: Sequence[str],
    *,
    progress: bool | None = None,
    jobs: int = 1,
    window: int = 20,
    min_history: int = 5,
    strict: bool = False,
    keep_duplicates: bool = False,
    surface: str = "nodes",
    metrics_fn: Callable[[str], SnapshotMetrics] | None = None,
) -> TrackResult:
    """Metrics of every snapshot in ``paths`` (files, directories, globs) as a time series.

    Parameters
    ----------
    paths : sequence of str
        Expanded with :func:`volsurf.io.expand_paths`; unreadable files and duplicate snapshots (same underlying,
        trade date and quotes) are skipped with their reason (:func:`volsurf.io.collect.screen_files`).
    progress : bool, optional
        tqdm progress bar on stderr (default: on a TTY with more than 10 files).
    jobs : int
        Worker processes (1 = in-process).
    window, min_history : int
        Trailing baseline (see :mod:`volsurf.signals.flags`).
    strict : bool
        Raise on the first file that fails instead of skipping it.
    keep_duplicates : bool
        Keep several snapshots of one trade date (default: keep the latest valuation time).
    surface : str
        ``nodes`` or ``fitted`` (see :func:`build_surface`).
    metrics_fn : callable
        Per-file function (default :func:`path_metrics` with ``surface``).
    """
    from volsurf.io.collect import screen_files

    if metrics_fn is None:
        metrics_fn = partial(path_metrics, surface=surface)
    files, screened_out, _notes = screen_files(paths, strict=strict)
    if not files and not screened_out:
        raise ParameterError("no files to track", hint="give files, directories or globs")
    skipped: list[tuple[str, str]] = list(screened_out)
    results: list[SnapshotMetrics] = []

    def handle(path: str, res: SnapshotMetrics | VolsurfError) -> None:
        if isinstance(res, VolsurfError):
            if strict:
                raise res
            skipped.append((path, res.one_line()))
        else:
            results.append(res)

    if jobs > 1 and len(files) > 1:
        # Small chunks: ~0.1 s of work per file, so a chunk of 4 amortizes the IPC while keeping the workers
        # evenly loaded (and the progress bar moving) on short runs.
        chunksize = max(1, min(4, len(files) // (4 * jobs)))
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(files)), initializer=_ignore_sigint)
        try:
            results_iter = pool.map(_safe, [metrics_fn] * len(files), files, chunksize=chunksize)
            for path, res in _progress(zip(files, results_iter, strict=True), len(files), progress, "track"):
                handle(path, res)
        except BaseException:
            # Ctrl-C or a --strict failure: stop the workers now instead of letting them finish the queue.
            _stop_workers(pool)
            raise
        pool.shutdown()
    else:
        for path in _progress(files, len(files), progress, "track"):
            handle(path, _safe(metrics_fn, path))
    if not results:
        raise DataError("no snapshot could be processed", hint="; ".join(f"{p}: {r}" for p, r in skipped[:3]))
    unders = sorted({str(r.meta.get("underlying")) for r in results})
    if len(unders) > 1:
        raise ParameterError(
            f"snapshots of several underlyings: {', '.join(unders)}", hint="track one underlying at a time"
        )
    results.sort(key=lambda r: (r.trade_date, str(r.meta.get("valuation_time")), str(r.meta.get("quote_time"))))
    if not keep_duplicates:
        kept: list[SnapshotMetrics] = []
        for r in results:
            if kept and kept[-1].trade_date == r.trade_date:
                skipped.append((str(kept[-1].meta.get("source_file")), f"superseded by a later snapshot of {r.trade_date}"))
                kept[-1] = r
            else:
                kept.append(r)
        results = kept
    series = pd.DataFrame([r.record() for r in results])
    for c, v in baseline_columns({m: series[m].to_numpy(dtype=float) for m in BASELINE_METRICS
                                  if m in series.columns}, window, min_history).items():
        series[c] = v
    changes = [None] + [demand_change(cur.demand, prev.demand) for prev, cur in itertools.pairwise(results)]
    for c in ("otm_put_oi_share", "otm_put_volume_share"):
        series[f"d_{c}"] = [like_for_like(ch).get(c, math.nan) if ch is not None else math.nan for ch in changes]
    return TrackResult(series, tuple(results), tuple(skipped), {"window": window, "min_history": min_history})


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops them (no traceback from every worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and terminate the running workers (``shutdown`` alone waits for them)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout=1.0)


def _safe(fn: Callable[[str], SnapshotMetrics], path: str) -> SnapshotMetrics | VolsurfError:
    try:
        return fn(path)
    except VolsurfError as exc:
        return exc
