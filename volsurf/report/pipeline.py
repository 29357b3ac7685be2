"""The analysis pipeline: one chain file (and optional previous/history snapshots) -> numbers and flags.

One path for every command that compares snapshots: :func:`compare` measures the previous snapshot or the
history with the same surface layer as the current one, and :func:`evaluate` turns the comparison into flags.
``volsurf flags`` calls :func:`flags_for_file`, ``volsurf report`` calls :func:`analyze`; both go through
:func:`compare` and :func:`evaluate`, so they give the same flags for the same inputs. :mod:`volsurf.report.html`
writes the page, the summary and the charts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volsurf.errors import DataQualityWarning, ParameterError, warn
from volsurf.report.summary import build_summary

if TYPE_CHECKING:
    from volsurf.analytics.demand import DemandChange
    from volsurf.analytics.measure import SnapshotMetrics
    from volsurf.flows.cta import CtaResult
    from volsurf.signals.flags import Flag, FlagThresholds

#: The smile layer every snapshot of one analysis is measured on (``fitted``: the arbitrage-free surface).
DEFAULT_SURFACE_METHOD = "fitted"


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
    cta: Any = None  # volsurf.flows.cta.CtaResult when a price file was given
    studies: list[Any] = field(default_factory=list)  # volsurf.history.study.QuarterEndStudy per --study series


@dataclass(frozen=True)
class Comparison:
    """What the current snapshot is compared with.

    Attributes
    ----------
    mode : str
        ``single snapshot``, ``previous`` (one earlier snapshot) or ``history`` (trailing baselines).
    previous : SnapshotMetrics or None
        The previous snapshot; in history mode the latest history snapshot before the current trade date.
    history_records : tuple of dict or None
        History mode: the metric records before the current trade date, oldest first.
    demand_change : DemandChange or None
        OTM put demand against ``previous`` (like-for-like over the expiries both list).
    notes : tuple of str
        What was ignored or looks odd (also raised as warnings).
    """

    mode: str
    previous: SnapshotMetrics | None = None
    history_records: tuple[dict[str, Any], ...] | None = None
    demand_change: DemandChange | None = None
    notes: tuple[str, ...] = ()

    @property
    def previous_record(self) -> dict[str, Any] | None:
        if self.history_records:
            return self.history_records[-1]
        return self.previous.record() if self.previous is not None else None

    @property
    def like_for_like(self) -> dict[str, float] | None:
        return dict(self.demand_change.like_for_like) if self.demand_change is not None else None


def compare(
    current: SnapshotMetrics,
    *,
    current_path: str | None = None,
    previous: str | None = None,
    history: Sequence[str] | None = None,
    surface_method: str = DEFAULT_SURFACE_METHOD,
    thresholds: FlagThresholds | None = None,
    history_store: str | None = None,
) -> Comparison:
    """Measure the previous snapshot or the history the same way as ``current`` and pair them with it.

    Parameters
    ----------
    current : SnapshotMetrics
        The current snapshot's metrics.
    current_path : str, optional
        The current snapshot's file (left out of ``history`` when a history glob also matches it).
    previous : str, optional
        An earlier snapshot file of the same underlying (change mode).
    history : sequence of str, optional
        Earlier snapshots (files, directories, globs): baseline mode; the latest one before the current trade
        date also serves as the previous snapshot.
    surface_method : str
        Smile layer for every snapshot measured here (``fitted`` or ``nodes``): use the one ``current`` was
        measured on, so that changes compare like with like.
    thresholds : FlagThresholds, optional
        Their ``baseline_window`` and ``min_history`` shape the history's baselines.
    history_store : str, optional
        A Parquet store (``volsurf ingest``) whose metrics of the same underlying before the current trade date
        serve as the history, read without refitting (:func:`volsurf.history.stored.stored_history`).
    """
    from volsurf.analytics.demand import demand_change
    from volsurf.analytics.measure import path_metrics
    from volsurf.signals.flags import FlagThresholds

    if sum(bool(x) for x in (previous, history, history_store)) > 1:
        raise ParameterError("give one of a previous snapshot, a history or a history store")
    th = thresholds or FlagThresholds()
    if history_store:
        from volsurf.history.stored import stored_history

        if surface_method != "fitted":
            raise ParameterError("a history store holds metrics of the fitted surface", hint="use --surface fitted")
        records, stored_prev = stored_history(history_store, current, window=th.baseline_window,
                                              min_history=th.min_history)
        if stored_prev is None:
            return Comparison("history", None, (), None, ())
        return Comparison("history", stored_prev, tuple(records), demand_change(current.demand, stored_prev.demand))
    notes: list[str] = []
    if previous:
        prev = path_metrics(previous, surface=surface_method)
        if prev.meta.get("underlying") != current.meta.get("underlying"):
            raise ParameterError(
                f"the previous snapshot is {prev.meta.get('underlying')}, the current one is "
                f"{current.meta.get('underlying')}",
                hint="compare snapshots of one underlying",
            )
        if prev.trade_date >= current.trade_date:
            warn(notes, DataQualityWarning,
                 f"the previous snapshot's trade date {prev.trade_date} is not before {current.trade_date}")
        return Comparison("previous", prev, None, demand_change(current.demand, prev.demand), tuple(notes))
    if history:
        from volsurf.history.track import track
        from volsurf.io import expand_paths

        files = expand_paths(history)
        if current_path is not None:
            files = [f for f in files if Path(f).resolve() != Path(current_path).resolve()]
        res = track(files, window=th.baseline_window, min_history=th.min_history, surface=surface_method,
                    progress=False)
        records = res.records()
        earlier = [i for i, r in enumerate(records) if str(r["trade_date"]) < current.trade_date]
        if len(earlier) < len(records):
            warn(notes, DataQualityWarning,
                 f"{len(records) - len(earlier)} history snapshots on or after {current.trade_date} ignored")
        if not earlier:
            return Comparison("history", None, (), None, tuple(notes))
        prev = res.snapshots[earlier[-1]]
        return Comparison("history", prev, tuple(records[i] for i in earlier),
                          demand_change(current.demand, prev.demand), tuple(notes))
    return Comparison("single snapshot")


def evaluate(
    current: SnapshotMetrics,
    comparison: Comparison,
    *,
    equity_ytd: float | None = None,
    bond_ytd: float | None = None,
    thresholds: FlagThresholds | None = None,
    cta: CtaResult | None = None,
) -> list[Flag]:
    """The flags of ``current`` against ``comparison`` (see :func:`volsurf.signals.flags.evaluate_flags`).

    With a trend-follower model result ``cta`` the list also holds ``cta_rebalance_alignment``
    (:func:`volsurf.flows.cta.cta_alignment_flag`: the rebalancing trade and the CTA flow point the same way).
    """

    from volsurf.signals.flags import evaluate_flags

    flags = evaluate_flags(
        current.record(),
        previous=comparison.previous_record,
        history=list(comparison.history_records) if comparison.history_records is not None else None,
        like_for_like=comparison.like_for_like,
        equity_ytd=equity_ytd,
        bond_ytd=bond_ytd,
        thresholds=thresholds,
    )
    if cta is not None:
        from volsurf.flows.cta import cta_alignment_flag
        from volsurf.flows.rebalance import rebalance_flow

        reb = (rebalance_flow({"equity": equity_ytd, "bond": bond_ytd})
               if equity_ytd is not None and bond_ytd is not None else None)
        flags.append(cta_alignment_flag(reb, cta))
    return flags


def _with_vendor_ivs(enriched: Any) -> Any:
    """``enriched`` with the vendor's IV as each option's mid IV (for GEX on a feed that has no quotes)."""
    import dataclasses

    f = enriched.frame.assign(iv_mid=enriched.frame["vendor_iv"], iv_bid=float("nan"), iv_ask=float("nan"))
    return dataclasses.replace(enriched, frame=f, assumptions={
        **enriched.assumptions, "gex_ivs": "the feed's own IVs (the file has no bid/ask to compute IVs from)"})


def cta_for(prices_path: str, trade_date: Any, column: str | None = None) -> CtaResult:
    """The trend-follower model on the snapshot's trade date from a daily price file (last close on or before)."""
    from volsurf.flows.cta import cta_positioning, load_prices

    return cta_positioning(load_prices(prices_path, column=column), date=trade_date)


@dataclass(frozen=True)
class FlagsResult:
    """``volsurf flags``: the current snapshot's metrics, what it was compared with, and the flags."""

    current: SnapshotMetrics
    comparison: Comparison
    flags: list[Flag]
    cta: CtaResult | None = None


def flags_for_file(
    path: str,
    *,
    previous: str | None = None,
    history: Sequence[str] | None = None,
    equity_ytd: float | None = None,
    bond_ytd: float | None = None,
    thresholds: FlagThresholds | None = None,
    surface_method: str = DEFAULT_SURFACE_METHOD,
    cta_prices: str | None = None,
    history_store: str | None = None,
    as_of: Any = None,
) -> FlagsResult:
    """Load, measure and compare one chain file and evaluate its flags (the same steps as :func:`analyze`;
    ``history_store``: see :func:`compare`)."""
    from volsurf.analytics.measure import path_metrics

    current = path_metrics(path, surface=surface_method, as_of=as_of)
    comparison = compare(current, current_path=path, previous=previous, history=history,
                         surface_method=surface_method, thresholds=thresholds, history_store=history_store)
    cta = cta_for(cta_prices, current.trade_date) if cta_prices else None
    flags = evaluate(current, comparison, equity_ytd=equity_ytd, bond_ytd=bond_ytd, thresholds=thresholds, cta=cta)
    return FlagsResult(current, comparison, flags, cta)


def analyze(
    path: str,
    *,
    previous: str | None = None,
    history: Sequence[str] | None = None,
    equity_ytd: float | None = None,
    bond_ytd: float | None = None,
    assumption: str | None = None,
    cta_prices: str | None = None,
    thresholds: FlagThresholds | None = None,
    as_of: Any = None,
    study_series: Sequence[Any] | None = None,
    progress: Callable[[str], None] | None = None,
    on_surface: Callable[[Any, Any], Any] | None = None,
    history_store: str | None = None,
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
    as_of : Timestamp or str, optional
        Overrides the chain file's as-of time (not the previous or history files'); required by feeds that carry
        none (the older Cboe JSON payload).
    study_series : sequence of volsurf.history.study.SeriesInput, optional
        Daily series for the quarter-end event study shown in the report's calendar context (one path chart each).
    cta_prices : str, optional
        Daily closes of the underlying's index (CSV) for the trend-follower (CTA) model and its alignment flag.
    thresholds : FlagThresholds, optional
        Flag thresholds (default: the documented defaults).
    assumption : str, optional
        Dealer positioning for GEX (default: :data:`volsurf.analytics.gex.DEFAULT_ASSUMPTION`).
    progress : callable, optional
        Called with a stage name before each stage (the CLI advances its progress bar with it).
    on_surface : callable, optional
        Called as ``on_surface(snapshot, surface)`` right after the surface fit; its return value is kept as
        ``Analysis.early_charts`` (the CLI starts drawing the surface charts there, in parallel with the rest).
    history_store : str, optional
        A Parquet store (``volsurf ingest``) as the history, read without refitting (see :func:`compare`).
    """
    import time

    from volsurf.analytics import gex_report as gexmod
    from volsurf.analytics.measure import snapshot_metrics
    from volsurf.io import load
    from volsurf.io.common import quotes_absent_reason
    from volsurf.pricing.enrich import enrich
    from volsurf.surface.summary import fit_from_enriched, surface_summary

    times: dict[str, float] = {}
    step = progress or (lambda _name: None)

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        step(name)
        t0 = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t0
        return out

    snapshot = timed("load", lambda: load(path, as_of=as_of))
    enriched = timed("enrich", lambda: enrich(snapshot))
    no_quotes = quotes_absent_reason(snapshot)
    if no_quotes is None:
        surface = timed("surface", lambda: fit_from_enriched(enriched))
        early = on_surface(snapshot, surface) if on_surface is not None else None
    else:
        # A feed without bid/ask (the older Cboe JSON payload): no IVs of our own, so no surface and no skew;
        # demand, put/call ratios and GEX from the feed's own IVs are still computable (reported as such).
        surface, early = None, None
    metrics = timed("skew", lambda: snapshot_metrics(
        snapshot, enriched=enriched, fitted_surface=surface, per_expiry=False, chart_data=True))

    comparison = timed("compare", lambda: compare(
        metrics, current_path=path, previous=previous, history=history, surface_method=DEFAULT_SURFACE_METHOD,
        thresholds=thresholds, history_store=history_store))
    cta = cta_for(cta_prices, snapshot.meta.trade_date) if cta_prices else None
    flags = timed("flags", lambda: evaluate(metrics, comparison, equity_ytd=equity_ytd, bond_ytd=bond_ytd,
                                            thresholds=thresholds, cta=cta))
    gex_kwargs: dict[str, Any] = {"vol": gexmod.surface_vol(surface)} if surface is not None else {}
    if assumption:
        gex_kwargs["assumption"] = assumption
    gex_input = enriched if surface is not None else _with_vendor_ivs(enriched)
    gex = timed("gex", lambda: gexmod.gex_report(gex_input, **gex_kwargs))
    rebalance = None
    if equity_ytd is not None and bond_ytd is not None:
        from volsurf.flows.rebalance import rebalance_flow

        rebalance = rebalance_flow({"equity": equity_ytd, "bond": bond_ytd})

    studies: list[Any] = []
    if study_series:
        from volsurf.history.study import quarter_end_studies

        studies = timed("study", lambda: quarter_end_studies(list(study_series)))
    summary = build_summary(
        snapshot=snapshot,
        enriched=gex_input,
        surface_obj=(surface_summary(surface, enriched) if surface is not None
                     else {"available": False, "reason": no_quotes, "expiries": []}),
        metrics=metrics,
        prev_metrics=comparison.previous,
        demand_chg=comparison.demand_change,
        history_count=len(comparison.history_records) if comparison.history_records is not None else None,
        flags=flags,
        gex=gex,
        rebalance=rebalance,
        equity_ytd=equity_ytd,
        bond_ytd=bond_ytd,
        cta=cta,
        studies=studies,
    )
    return Analysis(summary, snapshot, enriched, surface, metrics, gex, rebalance, times, early, cta, studies)
