"""The main job: one chain file -> a complete analysis (numbers in :class:`Analysis`, then HTML/JSON/PNG).

:func:`analyze` is a pure function of its inputs (the chain, optional previous/history snapshots, optional
year-to-date returns); :func:`write_report` draws the charts and writes ``report.html`` (self-contained, charts
embedded as base64 PNG), ``summary.json`` (validated against ``volsurf/schemas/summary.schema.json``) and the
charts as PNG files.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from volsurf import __version__
from volsurf._json import finite_or_none, to_jsonable

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "summary.schema.json"


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


def _cm(metrics: Any, days: int) -> dict[str, Any]:
    m = metrics.cm(days)
    return m.to_dict() if m is not None else {}


def build_summary(
    *,
    snapshot: Any,
    enriched: Any,
    surface_obj: dict[str, Any],
    metrics: Any,
    prev_metrics: Any,
    demand_chg: Any,
    history_count: int | None,
    flags: Sequence[Any],
    gex: Any,
    rebalance: Any,
    equity_ytd: float | None,
    bond_ytd: float | None,
) -> dict[str, Any]:
    """The ``summary.json`` object (documented in the README and the JSON schema)."""
    meta = snapshot.meta
    g = gex.to_dict()
    spot = meta.spot
    flip = _num(g.get("gamma_flip"))
    net = _num(g.get("net_gex"))
    cm30 = _cm(metrics, 30)
    prev30 = _cm(prev_metrics, 30) if prev_metrics is not None else {}
    absent: dict[str, str] = {}
    vi = metrics.variance_index
    if not vi.get("available", vi.get("index") is not None):
        absent["variance_index_30d"] = vi.get("reason", "not available")
    if _num(cm30.get("rr25")) is None:
        absent["rr25_30d"] = cm30.get("reason") or "no 30-day smile (the chain does not reach 30 days)"
    if prev_metrics is None:
        absent["changes"] = "no previous snapshot given (--previous FILE or --history PATHS)"
    if flip is None:
        absent["gamma_flip"] = g.get("gamma_flip_reason") or "no zero crossing of the GEX profile in range"
    if rebalance is None:
        absent["rebalance"] = "no year-to-date returns given (--equity-ytd and --bond-ytd)"
    demand = metrics.demand
    headline = {
        "underlying": meta.underlying,
        "trade_date": meta.trade_date.isoformat(),
        "spot": spot,
        "implied_spot": enriched.implied_spot,
        "net_gex": net,
        "regime": None if net is None else ("positive_gamma" if net > 0 else "negative_gamma"),
        "regime_robust": g.get("regime_robust"),
        "gamma_flip": flip,
        "gamma_flip_distance_pct": None if flip is None else (flip / spot - 1) * 100,
        "gamma_flip_range": g.get("gamma_flip_range"),
        "call_wall": g.get("call_wall"),
        "put_wall": g.get("put_wall"),
        "atm_iv_30d": _num(cm30.get("atm_iv")),
        "variance_index_30d": _num(metrics.variance_index_30d),
        "rr25_30d": _num(cm30.get("rr25")),
        "rr25_30d_change": _change(cm30.get("rr25"), prev30.get("rr25")) if prev30 else None,
        "put_skew_90_100_30d": _num(cm30.get("put_skew_90_100")),
        "otm_put_oi_share": _num(demand.otm_put_oi_share),
        "otm_put_oi_share_change": (
            _num(demand_chg.like_for_like.get("otm_put_oi_share")) if demand_chg is not None else None
        ),
        "otm_put_volume_share": _num(demand.otm_put_volume_share),
        "put_call_oi_ratio": _num(demand.put_call_oi_ratio),
        "flags_triggered": [f.name for f in flags if f.triggered],
    }
    cal = metrics.calendar
    return to_jsonable(
        {
            "schema_version": 1,
            "generated_by": f"volsurf {__version__}",
            "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "snapshot": {
                **meta.to_dict(),
                "contracts": len(snapshot.frame),
                "expiries": int(snapshot.frame["expiry"].nunique()),
                "implied_spot": enriched.implied_spot,
                "warnings": list(meta.warnings) + list(enriched.warnings),
            },
            "calendar": cal,
            "headline": headline,
            "flags": [f.to_dict() for f in flags],
            "surface": surface_obj,
            "skew": {
                "constant_maturity": metrics.to_dict()["constant_maturity"],
                "variance_index": metrics.variance_index,
                "delta_convention": "undiscounted forward delta N(d1), not premium-adjusted",
                "surface_source": metrics.surface_source,
                "previous": (
                    {"trade_date": prev_metrics.trade_date, "constant_maturity": prev_metrics.to_dict()["constant_maturity"]}
                    if prev_metrics is not None else None
                ),
                "history_snapshots": history_count,
            },
            "demand": {**demand.to_dict(), "change": demand_chg.to_dict() if demand_chg is not None else None},
            "gex": {k: v for k, v in g.items() if k not in ("profile_by_bucket",)},
            "rebalance": (
                {"equity_ytd": equity_ytd, "bond_ytd": bond_ytd, **rebalance.to_dict()} if rebalance is not None else None
            ),
            "hygiene": {
                "flagged": dict(meta.hygiene),
                "iv_status": enriched.frame["iv_status"].value_counts().to_dict(),
                "rules": _hygiene_rules(),
            },
            "assumptions": {
                "dealer_positioning": g.get("assumption"),
                "dealer_positioning_description": g.get("assumption_description"),
                "vol_model_for_gex_profile": g.get("vol_model"),
                **enriched.assumptions,
            },
            "absent": absent,
        }
    )


def _hygiene_rules() -> dict[str, str]:
    from volsurf.market.snapshot import HYGIENE_RULES

    return {k: f"{a}: {d}" for k, (a, d) in HYGIENE_RULES.items()}


def validate_summary(summary: dict[str, Any]) -> None:
    """Validate ``summary`` against the checked-in JSON schema (raises ``jsonschema.ValidationError``)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(summary, schema)


# ------------------------------------------------------------------------------------------------ charts


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
        surface_chart_tasks(analysis.snapshot, analysis.surface) if include_surface else []
    )
    tasks += [
        ("skew_term", "charts: skew",
         lambda: skew_plots.plot_skew_term(days, series, trade_date=td, underlying=und)),
    ]
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
    return tasks


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

    def join(self) -> dict[str, Path]:
        status, payload = self._queue.get()
        self._proc.join()
        if status == "ok":
            return {name: Path(p) for (name, _, _), p in zip(self.tasks, payload, strict=True)}
        from volsurf.plots import save_figure

        return {name: Path(save_figure(draw(), self.out_dir / name, dpi=90)[0]) for name, _, draw in self.tasks}


def _chart_job_main(queue: Any) -> None:
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
            with multiprocessing.get_context("fork").Pool(2) as pool:
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


# ------------------------------------------------------------------------------------------------ HTML


def _fmt(v: Any, kind: str = "num", digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return '<span class="absent">n/a</span>'
    if kind == "pct":
        return f"{v * 100:.{digits}f}%"
    if kind == "volpts":
        return f"{v * 100:+.{digits}f} vol pts"
    if kind == "vol":
        return f"{v * 100:.{digits}f}%"
    if kind == "bn":
        return f"${v / 1e9:,.{digits}f}bn per 1%"
    if kind == "int":
        return f"{int(v):,}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return f"{v:,.{digits}f}"
    return html.escape(str(v))


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1b1f24;max-width:1250px}
h1{font-size:24px;margin:0 0 4px} h2{border-bottom:2px solid #d0d7de;padding-bottom:4px;margin-top:36px}
.sub{color:#57606a;margin-bottom:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:10px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 12px;background:#f6f8fa}
.card .k{font-size:12px;color:#57606a;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600;margin-top:2px} .card .n{font-size:12px;color:#57606a;margin-top:2px}
.pos{color:#1a7f37} .neg{color:#cf222e} .absent{color:#8c959f;font-style:italic}
table{border-collapse:collapse;margin:8px 0;font-size:13px} td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:right}
th{background:#f6f8fa} td.l,th.l{text-align:left}
.flag{border-left:4px solid #8c959f;padding:6px 10px;margin:6px 0;background:#f6f8fa}
.flag.on{border-color:#cf222e;background:#fff5f5} .flag .ev{font-size:12px;color:#57606a;font-family:monospace}
img.chart{max-width:100%;border:1px solid #d0d7de;border-radius:6px;margin:8px 0}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:6px;margin:6px 0}
"""


def _card(key: str, value: str, note: str = "", cls: str = "") -> str:
    return (f'<div class="card"><div class="k">{html.escape(key)}</div><div class="v {cls}">{value}</div>'
            f'<div class="n">{note}</div></div>')


def _img(charts: dict[str, Path], name: str, alt: str) -> str:
    p = charts.get(name)
    if p is None:
        return f'<p class="absent">chart {html.escape(name)} not available</p>'
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return f'<img class="chart" id="chart-{name}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str, str]]) -> str:
    head = "".join(f'<th class="{"l" if kind == "str" else ""}">{html.escape(label)}</th>' for _, label, kind in cols)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="{"l" if kind == "str" else ""}">{_fmt(r.get(key), kind) if kind != "str" else html.escape(str(r.get(key, "")))}</td>'
            for key, _, kind in cols
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(summary: dict[str, Any], charts: dict[str, Path]) -> str:
    """The self-contained report page (no network needed: charts are embedded)."""
    h = summary["headline"]
    snap = summary["snapshot"]
    cal = summary["calendar"] or {}
    absent = summary["absent"]
    spot = h["spot"]
    regime = h["regime"]
    regime_txt = {"positive_gamma": "positive gamma (dealer hedging damps moves)",
                  "negative_gamma": "negative gamma (dealer hedging amplifies moves)"}.get(regime, "n/a")
    windows = [name for name, on in (("quarter-end window", cal.get("in_quarter_end_window")),
                                     ("year-end window", cal.get("in_year_end_window")),
                                     ("first week of January", cal.get("in_first_week_of_january"))) if on]
    cards = [
        _card("Underlying", html.escape(f"{h['underlying']}"), html.escape(snap.get("underlying_name", ""))),
        _card("Trading date", html.escape(h["trade_date"]), f"valued {html.escape(snap['valuation_time'])}"),
        _card("Spot", _fmt(spot), f"parity-implied {_fmt(h.get('implied_spot'))}"),
        _card("Quarter-end", f"{_fmt(cal.get('trading_days_to_quarter_end'), 'int')} trading days",
              html.escape(", ".join(windows) or "outside the quarter/year-end windows")
              + f"; quarter ends {html.escape(str(cal.get('quarter_end_date', '')))}"),
        _card("Net GEX", _fmt(h["net_gex"], "bn"), html.escape(regime_txt)
              + ("" if h.get("regime_robust") is None else f"; robust: {_fmt(h.get('regime_robust'))}"),
              "pos" if regime == "positive_gamma" else "neg"),
        _card("Gamma flip", _fmt(h["gamma_flip"]),
              (f"{h['gamma_flip_distance_pct']:+.2f}% from spot; range {_fmt((h.get('gamma_flip_range') or [None])[0])}"
               f"-{_fmt((h.get('gamma_flip_range') or [None, None])[-1])}") if h["gamma_flip"] is not None
              else html.escape(absent.get("gamma_flip", ""))),
        _card("Call / put wall", f"{_fmt(h['call_wall'], digits=0)} / {_fmt(h['put_wall'], digits=0)}", "strikes with the largest call / put GEX"),
        _card("ATM IV (30d)", _fmt(h["atm_iv_30d"], "vol"), "forward ATM, constant maturity"),
        _card("Variance index (30d)", _fmt(h["variance_index_30d"]),
              "VIX methodology, VIX points" if h["variance_index_30d"] is not None else html.escape(absent.get("variance_index_30d", ""))),
        _card("25d risk reversal (30d)", _fmt(h["rr25_30d"], "volpts"),
              f"change {_fmt(h['rr25_30d_change'], 'volpts')}" if h["rr25_30d_change"] is not None
              else html.escape(absent.get("changes", ""))),
        _card("OTM put OI share", _fmt(h["otm_put_oi_share"], "pct", 1),
              f"change {_fmt(h['otm_put_oi_share_change'], 'pct', 2)}" if h["otm_put_oi_share_change"] is not None
              else html.escape(absent.get("changes", ""))),
        _card("Put/call OI ratio", _fmt(h["put_call_oi_ratio"]), f"OTM put volume share {_fmt(h['otm_put_volume_share'], 'pct', 1)}"),
    ]
    flags_html = []
    for f in summary["flags"]:
        state = "TRIGGERED" if f["triggered"] else ("not triggered" if f.get("evaluated", True) else "not evaluated")
        ev = html.escape(json.dumps(f["evidence"], default=str))
        strength = "" if f["strength"] is None else f" (strength {f['strength']:.2f})"
        flags_html.append(
            f'<div class="flag {"on" if f["triggered"] else ""}"><b>{html.escape(f["name"])}</b>: {state}{strength}'
            f'<div>{html.escape(f.get("description", ""))}</div><div class="ev">{ev}</div></div>'
        )
    warnings = "".join(f'<div class="warn">{html.escape(w)}</div>' for w in snap.get("warnings", []))
    surf = summary["surface"]
    med = surf.get("medians", {})
    viol = surf.get("violations", {})
    surf_rows = surf.get("expiries", [])
    surface_table = _table(
        surf_rows,
        [("expiry", "expiry", "str"), ("days", "days", "num"), ("forward", "forward", "num"),
         ("atm_iv", "ATM IV", "vol"), ("rmse_vol_points", "RMSE (vol pts)", "num"),
         ("inside_band_share", "inside bid/ask", "pct"), ("svi_rmse_vol_points", "SVI RMSE", "num"),
         ("svi_inside_band_share", "SVI inside", "pct"), ("butterfly_violations", "butterfly viol.", "int"),
         ("calendar_violations", "calendar viol.", "int")],
    )
    cm_rows = summary["skew"]["constant_maturity"]
    skew_table = _table(
        cm_rows,
        [("days", "days", "int"), ("atm_iv", "ATM IV", "vol"), ("rr25", "25d RR", "volpts"), ("bf25", "25d BF", "volpts"),
         ("put_skew_10d", "10d put skew", "volpts"), ("put_skew_90_100", "90/100 skew", "volpts"),
         ("slope", "slope dσ/dk", "num"), ("curvature", "curvature", "num")],
    )
    dem = summary["demand"]
    dem_rows = dem.get("by_expiry", [])
    demand_table = _table(
        dem_rows[:40],
        [("expiry_date", "expiry", "str"), ("call_oi", "call OI", "int"), ("put_oi", "put OI", "int"),
         ("otm_put_oi_share", "OTM put OI share", "pct"), ("otm_put_volume_share", "OTM put vol share", "pct"),
         ("put_call_oi_ratio", "P/C OI", "num"), ("is_quarter_end", "quarter-end", "str")],
    )
    g = summary["gex"]
    bucket_table = _table(
        g.get("by_bucket", []),
        [("bucket", "bucket", "str"), ("call_gex", "call GEX", "bn"), ("put_gex", "put GEX", "bn"), ("net_gex", "net GEX", "bn")],
    )
    robust_rows = g.get("robustness", [])
    robust_table = _table(
        robust_rows,
        [("assumption", "assumption", "str"), ("vol", "vols", "str"), ("timing", "0DTE timing", "str"),
         ("net_gex", "net GEX", "bn"), ("gamma_flip", "flip", "num"), ("call_wall", "call wall", "num"), ("put_wall", "put wall", "num")],
    )
    hyg = summary["hygiene"]
    hyg_rows = [{"rule": k, "rows": v, "meaning": hyg["rules"].get(k, "")} for k, v in hyg["flagged"].items()]
    hyg_rows += [{"rule": f"iv_status={k}", "rows": v, "meaning": "status of the mid-price IV"} for k, v in hyg["iv_status"].items()]
    hygiene_table = _table(hyg_rows, [("rule", "rule", "str"), ("rows", "rows", "int"), ("meaning", "meaning", "str")])
    assumptions_table = _table(
        [{"what": k, "value": v} for k, v in summary["assumptions"].items()], [("what", "assumption", "str"), ("value", "value", "str")]
    )
    reb = summary.get("rebalance")
    if reb:
        reb_rows = [{"asset": a, "drifted": reb["drifted_weights"][a], "target": reb["target_weights"][a],
                     "trade": reb["trades"][a]} for a in reb["trades"]]
        rebalance_html = (
            f"<p>With year-to-date returns equity {reb['equity_ytd']:+.2%} and bonds {reb['bond_ytd']:+.2%}, a "
            f"{'/'.join(f'{w:.0%}' for w in reb['target_weights'].values())} book of ${reb['aum'] / 1e12:,.1f}tn "
            "must trade as follows to restore its targets (negative = sell):</p>"
            + _table(reb_rows, [("asset", "asset", "str"), ("drifted", "drifted weight", "pct"), ("target", "target", "pct"),
                                ("trade", "trade (USD)", "num")])
        )
    else:
        rebalance_html = f'<p class="absent">{html.escape(absent.get("rebalance", ""))}</p>'
    absent_html = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in absent.items())
    title = f"volsurf report: {h['underlying']} {h['trade_date']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1 id="title">{html.escape(title)}</h1>
<div class="sub">{html.escape(snap['source_file'])} ({html.escape(snap['format'])}), quote time {html.escape(snap['quote_time'])};
{snap['contracts']:,} contracts, {snap['expiries']} expiries. Generated by {html.escape(summary['generated_by'])}.</div>
{warnings}
<section id="verdict"><div class="grid">{''.join(cards)}</div>
<h3>Flags</h3>{''.join(flags_html)}
{f'<h3>Signals absent</h3><ul>{absent_html}</ul>' if absent else ''}</section>
<h2 id="surface">Volatility surface</h2>
<p>Arbitrage-free call-price spline fitted inside the bid/ask (the market-consistent layer) with raw SVI / eSSVI
parameters. Median over expiries of 7+ days: RMSE {_fmt(med.get('mc', {}).get('rmse_vol_points'))} vol pts, inside the
bid/ask band {_fmt(med.get('mc', {}).get('inside_band_share'), 'pct', 1)} (raw SVI: {_fmt(med.get('svi', {}).get('rmse_vol_points'))} vol pts,
{_fmt(med.get('svi', {}).get('inside_band_share'), 'pct', 1)}). Arbitrage in the fit: {_fmt(viol.get('butterfly'), 'int')} butterfly,
{_fmt(viol.get('calendar'), 'int')} calendar violations on a dense grid; in the raw quotes: {_fmt(viol.get('raw_butterfly'), 'int')}
butterfly, {_fmt(viol.get('raw_calendar'), 'int')} calendar.</p>
{_img(charts, 'smiles', 'smiles per expiry')}{_img(charts, 'iv_heatmap', 'implied vol heatmap')}{_img(charts, 'atm_term_structure', 'ATM term structure')}
<details><summary>Fit quality per expiry</summary>{surface_table}</details>
<h2 id="skew">Skew and demand</h2>
{skew_table}
{_img(charts, 'skew_term', 'skew by maturity')}{_img(charts, 'cm_smiles', 'constant-maturity smiles')}
<h3>OTM put demand by expiry</h3>{demand_table}
<h2 id="gex">Dealer gamma exposure</h2>
<p>Assumption: {html.escape(str(g.get('assumption')))}: {html.escape(str(g.get('assumption_description', '')))}.
Dollars per 1% move of the underlying; profile vols sticky-strike from {html.escape(str(g.get('vol_model')))}.</p>
{_img(charts, 'gex_by_strike', 'GEX by strike')}{_img(charts, 'gex_profile', 'GEX profile')}{_img(charts, 'gex_by_expiry', 'GEX by expiry bucket')}
{bucket_table}
<details><summary>Robustness: net GEX, flip and walls under each scenario</summary>{robust_table}</details>
<h2 id="rebalance">Rebalancing context</h2>{rebalance_html}
<h2 id="hygiene">Data hygiene</h2>{hygiene_table}
<h2 id="assumptions">Assumptions</h2>{assumptions_table}
<p class="sub">Charts rendered: <span id="render-check">0/{len(charts)}</span></p>
<script>
window.addEventListener("load", function () {{
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
  document.getElementById("render-check").textContent = ok + "/" + imgs.length;
}});
</script>
</body></html>
"""


def write_report(analysis: Analysis, out_dir: str | Path, progress: Callable[[str], None] | None = None) -> Path:
    """Write ``report.html``, ``summary.json`` and the PNG charts into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = draw_charts(analysis, out, progress)
    summary = dict(analysis.summary)
    summary["charts"] = {k: p.name for k, p in charts.items()}
    validate_summary(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False), encoding="utf-8")
    if progress:
        progress("html")
    page = out / "report.html"
    page.write_text(render_html(summary, charts), encoding="utf-8")
    return page
