"""The main job's analysis: one chain file (and optional previous/history snapshots) -> :class:`Analysis`.

:func:`analyze` is a pure function of its inputs; :mod:`volsurf.report.html` writes the page, the summary
and the charts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from volsurf._json import finite_or_none
from volsurf.report.summary import build_summary


@dataclass
class Analysis:
    """Every result the report shows (the heavy objects kept for the charts)."""

    summary: dict[str, Any]
    snapshot: Any
    enriched: Any
    surface: Any
    metrics: Any
    gex: Any
    rebalance: Any = None
    stage_times: dict[str, float] = field(default_factory=dict)
    early_charts: Any = None  # a ChartJob started as soon as the surface was fitted (see analyze's on_surface)


_num = finite_or_none


def _change(cur: Any, prev: Any) -> float | None:
    a, b = _num(cur), _num(prev)
    return None if a is None or b is None else a - b


def analyze(
    path: str,
    *,
    previous: str | None = None,
    history: Sequence[str] | None = None,
    equity_ytd: float | None = None,
    bond_ytd: float | None = None,
    assumption: str | None = None,
    progress: Callable[[str], None] | None = None,
    on_surface: Callable[[Any, Any], Any] | None = None,
) -> Analysis:
    """Run the whole pipeline on one chain file.

    Parameters
    ----------
    path : str
        The chain file (any supported format).
    previous : str, optional
        An earlier snapshot of the same underlying: changes in skew and demand are measured against it.
    history : sequence of str, optional
        Earlier snapshots (files, directories, globs): trailing baselines for the flags.
    equity_ytd, bond_ytd : float, optional
        Year-to-date (or since-last-rebalance) returns, decimal, for the rebalancing-flow context.
    assumption : str, optional
        Dealer positioning for GEX (default: :data:`volsurf.analytics.gex.DEFAULT_ASSUMPTION`).
    progress : callable, optional
        Called with a stage name before each stage (the CLI advances its progress bar with it).
    on_surface : callable, optional
        Called as ``on_surface(snapshot, surface)`` right after the surface fit; its return value is kept as
        ``Analysis.early_charts`` (the CLI starts drawing the surface charts there, in parallel with the rest).
    """
    import time

    from volsurf.analytics import gex as gexmod
    from volsurf.history.track import like_for_like, snapshot_metrics, track
    from volsurf.io.formats import expand_paths, load
    from volsurf.pricing.enrich import enrich
    from volsurf.signals.flags import evaluate_flags
    from volsurf.surface.summary import fit_from_enriched, surface_summary

    times: dict[str, float] = {}
    step = progress or (lambda _name: None)

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        step(name)
        t0 = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t0
        return out

    snapshot = timed("load", lambda: load(path))
    enriched = timed("enrich", lambda: enrich(snapshot))
    surface = timed("surface", lambda: fit_from_enriched(enriched))
    early = on_surface(snapshot, surface) if on_surface is not None else None
    metrics = timed("skew", lambda: snapshot_metrics(
        snapshot, enriched=enriched, fitted_surface=surface, per_expiry=False, chart_data=True))

    prev_metrics = None
    demand_chg = None
    if previous:
        prev_metrics = timed("previous", lambda: snapshot_metrics(load(previous), surface="nodes", per_expiry=False))
        from volsurf.analytics.demand import demand_change

        demand_chg = demand_change(metrics.demand, prev_metrics.demand)
        if prev_metrics.meta.get("underlying") != metrics.meta.get("underlying"):
            from volsurf.errors import ParameterError

            raise ParameterError(
                f"--previous is {prev_metrics.meta.get('underlying')}, the chain is {metrics.meta.get('underlying')}",
                hint="compare snapshots of the same underlying",
            )
    hist_records = None
    if history:
        files = [f for f in expand_paths(history) if Path(f).resolve() != Path(path).resolve()]
        res = timed("history", lambda: track(files, progress=False))
        hist_records = [r for r in res.records() if str(r.get("trade_date", "")) < metrics.trade_date]
    record = metrics.record()
    flags = timed(
        "flags",
        lambda: evaluate_flags(
            record,
            previous=prev_metrics.record() if prev_metrics else None,
            history=hist_records,
            like_for_like=like_for_like(demand_chg) if demand_chg is not None else None,
            equity_ytd=equity_ytd,
            bond_ytd=bond_ytd,
        ),
    )
    gex_kwargs: dict[str, Any] = {"vol": gexmod.surface_vol(surface)}
    if assumption:
        gex_kwargs["assumption"] = assumption
    gex = timed("gex", lambda: gexmod.gex_report(enriched, **gex_kwargs))
    rebalance = None
    if equity_ytd is not None and bond_ytd is not None:
        from volsurf.flows.rebalance import rebalance_flow

        rebalance = rebalance_flow({"equity": equity_ytd, "bond": bond_ytd})

    summary = build_summary(
        snapshot=snapshot,
        enriched=enriched,
        surface_obj=surface_summary(surface, enriched),
        metrics=metrics,
        prev_metrics=prev_metrics,
        demand_chg=demand_chg,
        history_count=len(hist_records) if hist_records is not None else None,
        flags=flags,
        gex=gex,
        rebalance=rebalance,
        equity_ytd=equity_ytd,
        bond_ytd=bond_ytd,
    )
    return Analysis(summary, snapshot, enriched, surface, metrics, gex, rebalance, times, early)
