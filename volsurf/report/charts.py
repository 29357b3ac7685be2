"""The report's charts: what to draw (tasks over the analysis) and drawing them in forked worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from volsurf.report.pipeline import Analysis


def skew_term_series(metrics: Any) -> tuple[list[float], dict[str, list[float]]]:
    """Maturities (days) and decimal-vol skew series for the skew-by-maturity chart."""
    cms = metrics.constant_maturity
    return [c.days for c in cms], {
        "25d risk reversal": [c.rr25 for c in cms],
        "25d butterfly": [c.bf25 for c in cms],
        "10d put skew": [c.put_skew_10d for c in cms],
        "put skew 90/100": [c.put_skew_90_100 for c in cms],
    }


def surface_chart_tasks(snapshot: Any, surf: Any) -> list[tuple[str, str, Callable[[], Any]]]:
    """The surface charts as (name, stage, draw) triples (they need only the snapshot and the fit)."""
    from volsurf.plots import surface_plots

    td = snapshot.meta.trade_date.isoformat()
    und = snapshot.meta.underlying
    return [
        # The report shows an overview (6 smiles, coarser grids); `volsurf surface --plot` draws the full detail.
        ("smiles", "charts: surface",
         lambda: surface_plots.plot_smiles_grid(surf, max_panels=6, underlying=und, trade_date=td)),
        ("iv_heatmap", "charts: surface",
         lambda: surface_plots.plot_iv_heatmap(surf, underlying=und, trade_date=td, n_t=40, n_k=81)),
        ("atm_term_structure", "charts: surface",
         lambda: surface_plots.plot_atm_term_structure(surf, underlying=und, trade_date=td, n_t=80)),
    ]


def chart_tasks(analysis: Analysis, *, include_surface: bool = True) -> list[tuple[str, str, Callable[[], Any]]]:
    """The report's charts as (name, stage, draw) triples; ``draw()`` returns a Figure or Axes."""
    from volsurf.plots import gex_plots, skew_plots

    meta = analysis.snapshot.meta
    td = meta.trade_date.isoformat()
    und = meta.underlying
    m = analysis.metrics
    g = analysis.gex
    bs = g.by_strike
    days, series = skew_term_series(m)
    tasks: list[tuple[str, str, Callable[[], Any]]] = (
        surface_chart_tasks(analysis.snapshot, analysis.surface)
        if include_surface and analysis.surface is not None else []
    )
    if any(v is not None and math.isfinite(v) for vals in series.values() for v in vals):
        tasks.append(("skew_term", "charts: skew",
                      lambda: skew_plots.plot_skew_term(days, series, trade_date=td, underlying=und)))
    if m.smile_curves:
        tasks.append(("cm_smiles", "charts: skew",
                      lambda: skew_plots.plot_smiles(m.smile_curves, trade_date=td, underlying=und)))
    tasks += [
        ("gex_by_strike", "charts: gex", lambda: gex_plots.plot_gex_by_strike(
            bs["strike"], bs["call_gex"], bs["put_gex"], bs["net_gex"], spot=g.spot, flip=g.flip.flip,
            trade_date=td, underlying=und, assumption=g.assumption.name)),
        ("gex_profile", "charts: gex", lambda: gex_plots.plot_gex_profile(
            g.profile_spots, g.profile_net, spot=g.spot, flip=g.flip.flip, by_bucket=g.profile_by_bucket,
            trade_date=td, underlying=und, assumption=g.assumption.name)),
        ("gex_by_expiry", "charts: gex", lambda: gex_plots.plot_gex_by_bucket(
            g.by_bucket, trade_date=td, underlying=und, assumption=g.assumption.name)),
    ]
    for i, study in enumerate(analysis.studies):
        tasks.append((f"study_{i}", "charts: study", _study_chart(study)))
    cta = analysis.cta
    if cta is not None:
        from volsurf.plots import cta_plots

        tasks.append(("cta_scenarios", "charts: cta", lambda: cta_plots.plot_cta_scenarios(
            [s.name for s in cta.scenarios], [s.flow_usd for s in cta.scenarios], [s.position for s in cta.scenarios],
            date=cta.date.isoformat(), underlying=und)))
    return tasks


def _study_chart(study: Any) -> Callable[[], Any]:
    def draw() -> Any:
        from volsurf.plots.study_plots import plot_quarter_end_paths

        return plot_quarter_end_paths(**study.chart_data())[0]

    return draw


# Set just before forking chart workers: the children inherit it (nothing is pickled but the task index).
_FORK_TASKS: list[tuple[str, Path, Callable[[], Any]]] = []


def _draw_one(i: int) -> str:
    from volsurf.plots import save_figure

    _name, path, draw = _FORK_TASKS[i]
    return save_figure(draw(), path, dpi=90)[0]


class ChartJob:
    """Charts drawn by one forked child process while the parent goes on computing.

    ``join()`` returns name -> path; if the child failed, the charts are drawn in the parent instead, so a
    problem in the parallel path can never lose a chart.
    """

    def __init__(self, tasks: list[tuple[str, str, Callable[[], Any]]], out_dir: Path) -> None:
        import multiprocessing

        global _FORK_TASKS
        out_dir.mkdir(parents=True, exist_ok=True)
        self.tasks = tasks
        self.out_dir = out_dir
        ctx = multiprocessing.get_context("fork")
        self._queue = ctx.SimpleQueue()
        _FORK_TASKS = [(name, out_dir / name, draw) for name, _, draw in tasks]
        try:
            self._proc = ctx.Process(target=_chart_job_main, args=(self._queue,), daemon=True)
            self._proc.start()
        finally:
            _FORK_TASKS = []

    def terminate(self) -> None:
        """Stop the child now (the run failed or was interrupted); its files go with the staging folder."""
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=1.0)

    def join(self) -> dict[str, Path]:
        status, payload = self._queue.get()
        self._proc.join()
        if status == "ok":
            return {name: Path(p) for (name, _, _), p in zip(self.tasks, payload, strict=True)}
        from volsurf.plots import save_figure

        return {name: Path(save_figure(draw(), self.out_dir / name, dpi=90)[0]) for name, _, draw in self.tasks}


def _ignore_sigint() -> None:
    """Chart workers leave Ctrl-C to the parent, which stops them (no traceback from every child)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _chart_job_main(queue: Any) -> None:
    _ignore_sigint()
    try:
        queue.put(("ok", [_draw_one(i) for i in range(len(_FORK_TASKS))]))
    except Exception as exc:  # reported to the parent, which redraws in-process
        queue.put(("error", repr(exc)))


def _import_plotting() -> None:
    """Import matplotlib and the chart modules once in the parent, so that forked children inherit them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.figure

    from volsurf.plots import gex_plots, skew_plots, surface_plots  # noqa: F401


def start_surface_charts(snapshot: Any, surface: Any, out_dir: str | Path) -> ChartJob | None:
    """Start drawing the surface charts in a forked child (None where forking is not safe)."""
    if not _fork_is_safe():
        return None
    _import_plotting()
    return ChartJob(surface_chart_tasks(snapshot, surface), Path(out_dir))


def _fork_is_safe() -> bool:
    import multiprocessing
    import os
    import threading

    # fork() with other threads alive can deadlock the child; CPU count 1 gains nothing.
    return ("fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
            and (os.cpu_count() or 1) > 1)


def draw_charts(
    analysis: Analysis,
    out_dir: Path,
    progress: Callable[[str], None] | None = None,
    parallel: bool | None = None,
) -> dict[str, Path]:
    """Draw every chart of the report as PNG into ``out_dir``; returns name -> path.

    With ``parallel`` (default: when the process may fork safely, i.e. on Linux/macOS with no other thread
    alive) the charts are drawn by two forked worker processes: matplotlib holds the GIL, so threads would not
    help, and forked children inherit the analysis without pickling it.
    """
    import matplotlib

    matplotlib.use("Agg")

    from volsurf.plots import save_figure

    step = progress or (lambda _name: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    job = analysis.early_charts
    tasks = chart_tasks(analysis, include_surface=job is None)
    if parallel is None:
        parallel = _fork_is_safe()
    if parallel:
        _import_plotting()
    if parallel:
        import multiprocessing

        global _FORK_TASKS
        _FORK_TASKS = [(name, out_dir / name, draw) for name, _, draw in tasks]
        try:
            for stage in dict.fromkeys(stage for _, stage, _ in tasks):
                step(stage)
            with multiprocessing.get_context("fork").Pool(2, initializer=_ignore_sigint) as pool:
                paths = pool.map(_draw_one, range(len(tasks)), chunksize=1)
        finally:
            _FORK_TASKS = []
        early = job.join() if job is not None else {}
        return {**early, **{name: Path(p) for (name, _, _), p in zip(tasks, paths, strict=True)}}
    charts: dict[str, Path] = job.join() if job is not None else {}
    last_stage = None
    for name, stage, draw in tasks:
        if stage != last_stage:
            step(stage)
            last_stage = stage
        charts[name] = Path(save_figure(draw(), out_dir / name, dpi=90)[0])
    return charts
