"""``volsurf skew``, ``volsurf track`` and ``volsurf flags``."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from volsurf.cli.common import (
    as_of_option,
    emit,
    format_option,
    output_option,
    plot_dir_option,
    rebalance_options,
    resolve_returns,
)

FC = TypeVar("FC", bound=Callable[..., Any])


def _surface_option(default: str) -> Callable[[FC], FC]:
    return click.option(
        "--surface",
        "surface_method",
        type=click.Choice(["nodes", "fitted"]),
        default=default,
        show_default=True,
        help="Smile used for skew: 'fitted' (the arbitrage-free surface, ~0.5 s per chain) or 'nodes' (PCHIP "
             "through OTM mid IVs, ~10 ms: the default for long series).",
    )


_SURFACE_OPTION = _surface_option("nodes")

CM_COLUMNS = ["days", "atm_iv", "rr25", "bf25", "put_skew_10d", "put_skew_90_100", "skew_90_110", "slope", "curvature", "reason"]


def _save(ax: Any, path: Path) -> str:
    from volsurf.plots import save_figure

    return save_figure(ax, path, dpi=110)[0]


def _skew_plots(m: Any, plot_dir: str) -> list[str]:
    """Smile chart (constant-maturity smiles plus the nearest expiries' quotes) and skew-by-maturity chart."""
    import numpy as np

    from volsurf._paths import output_dir, safe_stem
    from volsurf.plots.skew_plots import plot_skew_term, plot_smiles

    out_dir = output_dir(plot_dir, "plot folder")
    stem = safe_stem(f"{m.meta.get('underlying', 'chain')}_{m.trade_date}")
    written = []
    nodes = m.smile_nodes
    curves = dict(m.smile_curves)
    points: dict[str, tuple[Any, Any]] = {}
    if len(nodes):
        t_exp = np.unique(nodes["t"].to_numpy(dtype=float))
        for label in curves:
            d = float(label.rstrip("d"))
            t_near = t_exp[np.argmin(np.abs(t_exp - d / 365.0))]
            if abs(t_near * 365.0 - d) > 0.25 * d + 1.0:
                continue  # no expiry close enough to show as quotes
            sel = nodes[nodes["t"] == t_near]
            k = np.log(sel["strike"].to_numpy(dtype=float) / sel["forward"].to_numpy(dtype=float))
            kr = curves[label][0]
            keep = (k >= kr.min()) & (k <= kr.max())
            points[label] = (k[keep], sel["iv_mid"].to_numpy(dtype=float)[keep])
    ax = plot_smiles(curves, points=points, trade_date=m.trade_date, underlying=str(m.meta.get("underlying", "")))
    written.append(_save(ax, out_dir / f"{stem}_smile.png"))
    per = m.per_expiry
    if len(per):
        per = per[per["days"] >= 1.0]
        series = {
            "25d risk reversal": per["rr25"].to_numpy(dtype=float),
            "25d butterfly": per["bf25"].to_numpy(dtype=float),
            "90/100 put skew": per["put_skew_90_100"].to_numpy(dtype=float),
        }
        days = per["days"].to_numpy(dtype=float)
    else:
        days = [c.days for c in m.constant_maturity]
        series = {
            "25d risk reversal": [c.rr25 for c in m.constant_maturity],
            "90/100 put skew": [c.put_skew_90_100 for c in m.constant_maturity],
        }
    ax = plot_skew_term(days, series, trade_date=m.trade_date, underlying=str(m.meta.get("underlying", "")))
    written.append(_save(ax, out_dir / f"{stem}_skew_term.png"))
    return written


def _with_skew_index(obj: dict[str, Any], snap: Any, terms: str) -> dict[str, Any]:
    """``obj`` with ``skew_index_30d`` and ``skew_index`` (:meth:`SkewIndexResult.to_dict`) placed right after
    ``variance_index``; roots as the variance index uses them (every root in the chain)."""
    from volsurf.analytics.skew_index import skew_index_from_chain
    from volsurf.errors import VolsurfError

    if "skew_index_30d" in obj and terms == "vix":
        return obj  # already measured upstream
    roots = sorted(set(snap.frame["root"].astype(str).unique()))
    try:
        res = skew_index_from_chain(snap.frame, snap.meta.valuation_time, roots=roots,
                                    terms="monthly" if terms == "monthly" else "vix").to_dict()
    except VolsurfError as exc:
        res = {"available": False, "index": None, "reason": exc.one_line(), "warnings": []}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("skew_index_30d", "skew_index"):
            continue
        out[key] = value
        if key == "variance_index":
            out["skew_index_30d"] = res.get("index")
            out["skew_index"] = res
    if "skew_index" not in out:
        out["skew_index_30d"] = res.get("index")
        out["skew_index"] = res
    return out


@click.command("skew")
@click.argument("file", type=click.Path(dir_okay=False))
@format_option()
@output_option()
@plot_dir_option()
@_surface_option("fitted")
@click.option("--skew-terms", type=click.Choice(["vix", "monthly"]), default="vix", show_default=True,
              help="Expiries of the SKEW-method index: 'vix' (the variance index's pair bracketing 30 days) or "
                   "'monthly' (standard monthlies with the legacy roll, as Cboe's published SKEW; may "
                   "extrapolate). See docs/skew_index.md.")
@as_of_option()
def skew_cmd(file: str, fmt: str, output: str | None, plot_dir: str | None, surface_method: str,
             skew_terms: str, as_of: str | None = None) -> None:
    """Skew (ATM, 25d RR/BF, put skew, slope) per expiry and at 7/30/60/90 days, the 30-day variance index,
    the 30-day SKEW-method index (Cboe SKEW methodology), OTM put demand and calendar context of one chain
    FILE. Vols are decimal (0.05 = 5 vol points); the SKEW-method index is in SKEW points (100 - 10 x skewness).

    \b
    Example:
      volsurf skew sample_chains/spx_2026-07-31_close.csv
      volsurf skew chain.csv --format json --plot charts/
      volsurf skew chain.csv --skew-terms monthly
    """
    from volsurf.analytics.measure import snapshot_metrics
    from volsurf.io import load

    snap = load(file, as_of=as_of)
    m = snapshot_metrics(snap, surface=surface_method, per_expiry=True)
    obj = _with_skew_index(m.to_dict(), snap, skew_terms)
    cm_rows = [{c: r.get(c) for c in CM_COLUMNS} for r in obj["constant_maturity"]]
    if fmt == "csv":
        rows = [{"kind": "constant_maturity", **r} for r in cm_rows]
        rows += [{"kind": "expiry", "expiry_date": r.get("expiry_date"), **{c: r.get(c) for c in CM_COLUMNS if c != "days"},
                  "days": r.get("days")} for r in obj["per_expiry"]]
        emit(fmt, json_obj=obj, records=rows, columns=["kind", "expiry_date", *CM_COLUMNS], output=output)
    else:
        cal = obj["calendar"]
        qe = obj["demand"]["quarter_end_expiry"] or {}
        header = {
            "underlying": obj["underlying"],
            "trade_date": obj["trade_date"],
            "spot": obj["spot"],
            "surface": obj["surface_source"],
            "variance_index_30d": obj["variance_index_30d"],
            "variance_index_reason": obj["variance_index"].get("reason") or None,
            "skew_index_30d": obj["skew_index_30d"],
            "skew_index_sensitivity": obj["skew_index"].get("sensitivity"),
            "skew_index_reason": obj["skew_index"].get("reason") or None,
            "otm_put_volume_share": obj["otm_put_volume_share"],
            "otm_put_oi_share": obj["otm_put_oi_share"],
            "put_call_volume_ratio": obj["put_call_volume_ratio"],
            "put_call_oi_ratio": obj["put_call_oi_ratio"],
            "quarter_end_expiry": qe.get("expiry_date"),
            "quarter_end_otm_put_oi_share": qe.get("otm_put_oi_share"),
            "top5_strike_oi_share": obj["demand"]["oi_concentration"]["all"]["top_share"],
            "trading_days_to_quarter_end": cal.get("trading_days_to_quarter_end"),
            "in_quarter_end_window": cal.get("in_quarter_end_window"),
            "in_year_end_window": cal.get("in_year_end_window"),
        }
        emit(fmt, json_obj=obj, records=cm_rows, columns=CM_COLUMNS, header=header, output=output)
    for msg in obj["skew_index"].get("warnings") or ():
        click.echo(f"warning: skew index: {msg}", err=True)
    if plot_dir:
        for p in _skew_plots(m, plot_dir):
            click.echo(f"wrote {p}", err=True)


TRACK_COLUMNS = [
    "trade_date",
    "spot",
    "atm_iv_30d",
    "rr25_30d",
    "rr25_30d_z",
    "put_skew_90_100_30d",
    "rr25_7d",
    "atm_iv_7d",
    "variance_index_30d",
    "skew_index_30d",
    "otm_put_oi_share",
    "d_otm_put_oi_share",
    "otm_put_volume_share",
    "put_call_oi_ratio",
    "trading_days_to_quarter_end",
    "in_quarter_end_window",
]


def _track_plots(res: Any, plot_dir: str) -> list[str]:
    from matplotlib.figure import Figure

    from volsurf._paths import atomic_path, output_dir, safe_stem
    from volsurf.plots.skew_plots import plot_metric_over_time

    s = res.series
    dates = s["trade_date"].tolist()
    qe = sorted({q for q in s["quarter_end_date"].dropna().tolist() if dates and dates[0] <= q <= dates[-1]})
    under = str(s["underlying"].iloc[0])
    specs = [
        ("rr25", "25d risk reversal", "vol points", 100.0),
        ("put_skew_90_100", "90/100 put skew", "vol points", 100.0),
        ("atm_iv", "ATM implied vol", "vol points", 100.0),
    ]
    fig = Figure(figsize=(10, 11))
    axes = fig.subplots(4, 1, sharex=True)
    for ax, (key, label, unit, scale) in zip(axes[:3], specs, strict=True):
        marks = qe  # quarter-end lines once per panel
        for d in (7, 30):
            col = f"{key}_{d}d"
            if col in s.columns and s[col].notna().any():
                plot_metric_over_time(dates, s[col], label=f"{label} {d}d", unit=unit, scale=scale, quarter_ends=marks,
                                      ax=ax, title=f"{under} {label}")
                marks = []
    plot_metric_over_time(dates, s["otm_put_oi_share"], label="OTM put share of OI", unit="%", scale=100.0,
                          quarter_ends=qe, ax=axes[3], title=f"{under} OTM put demand")
    plot_metric_over_time(dates, s["otm_put_volume_share"], label="OTM put share of volume", unit="%", scale=100.0,
                          ax=axes[3], title=f"{under} OTM put demand")
    for ax in axes:
        ax.set_ylabel(ax.get_ylabel().split(" (")[-1].rstrip(")"))
    fig.suptitle(f"{under} skew and OTM put demand, {dates[0]} to {dates[-1]} (dashed red: quarter-ends)")
    out = output_dir(plot_dir, "plot folder") / f"{safe_stem(f'{under}_track_{dates[0]}_{dates[-1]}')}.png"
    fig.tight_layout()
    with atomic_path(out, "chart") as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=100, format="png")
    return [str(out)]


@click.command("track")
@click.argument("paths", nargs=-1, required=False)
@format_option()
@output_option()
@plot_dir_option()
@_SURFACE_OPTION
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option("--window", type=click.IntRange(2, 1000), default=20, show_default=True,
              help="Trailing baseline length (snapshots).")
@click.option("--min-history", type=click.IntRange(2, 1000), default=5, show_default=True,
              help="Fewest prior snapshots for a baseline z-score.")
@click.option("--strict", is_flag=True, help="Fail on the first unreadable file instead of skipping it.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on a TTY, >10 files).")
@click.option("--store", "store_url", default=None,
              help="Read the metrics of a Parquet store (volsurf ingest) instead of PATHS: no refit; the store's "
                   "metrics are those of --surface fitted.")
@click.option("--underlying", default=None, help="With --store: the underlying (needed when it holds several).")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="With --store: first trade date (YYYY-MM-DD).")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="With --store: last trade date (YYYY-MM-DD).")
def track_cmd(paths: tuple[str, ...], fmt: str, output: str | None, plot_dir: str | None, surface_method: str,
              jobs: int, window: int, min_history: int, strict: bool, progress: bool | None,
              store_url: str | None = None, underlying: str | None = None, date_from: Any = None,
              date_to: Any = None) -> None:
    """Skew and OTM put demand of each snapshot in PATHS (files, directories, globs; one underlying), ordered
    by trade date, with trailing-baseline z-scores (`_z`) and like-for-like share changes (`d_`).

    \b
    Example:
      volsurf track ../shared/real_chains/cboe_ralph-e-boy_gamma-chart/ --plot charts/
      volsurf track 'history/spy_*.csv' --jobs 2 --progress --format csv -o spy_skew.csv
      volsurf track --store history.store --underlying SPX --from 2025-01-01
    """
    from volsurf.errors import ParameterError

    if min_history > window:
        raise ParameterError(f"--min-history {min_history} exceeds --window {window}")
    if store_url is not None and paths:
        raise ParameterError("give PATHS or --store, not both")
    if store_url is None and not paths:
        raise ParameterError("no files to track", hint="give PATHS (files, directories, globs) or --store DIR")
    if store_url is None and (underlying or date_from or date_to):
        raise ParameterError("--underlying, --from and --to go with --store")
    res = None
    start = date_from.date().isoformat() if date_from else None
    end = date_to.date().isoformat() if date_to else None
    if store_url is not None and not plot_dir:
        # the records straight from the store's Arrow columns: no pandas import, half the start-up time
        from volsurf.history.stored import stored_track_records

        st = stored_track_records(store_url, underlying=underlying, window=window, min_history=min_history,
                                  start=start, end=end)
        columns, records, skipped, baseline = st.columns, st.records, st.skipped, st.baseline
    else:
        if store_url is not None:
            from volsurf.history.stored import stored_series

            res = stored_series(store_url, underlying=underlying, window=window, min_history=min_history,
                                start=start, end=end)
        else:
            from volsurf.history.track import track

            res = track(list(paths), progress=progress, jobs=jobs, window=window, min_history=min_history,
                        strict=strict, surface=surface_method)
        columns, records, skipped, baseline = list(res.series.columns), res.records(), res.skipped, res.baseline
    for path, reason in skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    cols = TRACK_COLUMNS if fmt == "table" else columns
    emit(fmt, json_obj={"baseline": baseline, "skipped": [list(x) for x in skipped], "series": records},
         records=records, columns=[c for c in cols if c in columns], output=output)
    if plot_dir and res is not None:
        for p in _track_plots(res, plot_dir):
            click.echo(f"wrote {p}", err=True)


def _explain(f: Any) -> str:
    """One line per flag: verdict, strength and the numbers."""
    if not f.evaluated:
        return f"{f.name}: NOT EVALUATED ({f.evidence.get('reason')})"
    verdict = "TRIGGERED" if f.triggered else "not triggered"
    parts = []
    for k, v in f.evidence.items():
        if isinstance(v, dict):
            inner = ", ".join(f"{ik}={_short(iv)}" for ik, iv in v.items())
            parts.append(f"{k}[{inner}]")
        else:
            parts.append(f"{k}={_short(v)}")
    return f"{f.name}: {verdict} (strength {_short(f.strength)}): " + "; ".join(parts)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


@click.command("flags")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--previous", type=click.Path(dir_okay=False), default=None,
              help="The previous snapshot of the same underlying (change mode).")
@click.option("--history", multiple=True, help="Earlier snapshots (files, dirs, globs; repeatable): baseline mode.")
@click.option("--history-store", default=None,
              help="A Parquet store (volsurf ingest) as the history: baseline mode without refitting.")
@rebalance_options
@click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE",
              help="Override a threshold (see docs/skew.md), e.g. --threshold z=2 --threshold rr25_change=0.005.")
@_surface_option("fitted")
@format_option()
@output_option()
@as_of_option()
def flags_cmd(file: str, previous: str | None, history: tuple[str, ...], equity_ytd: float | None,
              bond_ytd: float | None, equity_prices: str | None, bond_prices: str | None, since: str,
              cta_prices: str | None, thresholds: tuple[str, ...], surface_method: str, fmt: str, output: str | None,
              history_store: str | None = None, as_of: str | None = None) -> None:
    """Evaluate the quarter-end flags on FILE and print each with its strength and evidence.

    Rules (docs/skew.md): quarter_end_window, skew_steepening, otm_put_demand_rising, quarter_end_hedging
    (all three together) and, with returns, rebalancing_flow. Change rules need --previous or --history;
    without them they are reported as not evaluated, never as zero change.

    \b
    Example:
      volsurf flags today.csv --previous yesterday.csv
      volsurf flags today.csv --history 'chains/spy_*.csv' --equity-ytd 0.15 --bond-ytd 0.01 --format json
    """
    from volsurf.errors import ParameterError
    from volsurf.io import load
    from volsurf.report.pipeline import flags_for_file
    from volsurf.signals.flags import FlagThresholds

    if sum(bool(x) for x in (previous, history, history_store)) > 1:
        raise ParameterError("give one of --previous, --history and --history-store")
    overrides = {}
    for item in thresholds:
        name, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"--threshold {item!r} is not NAME=VALUE", hint="e.g. --threshold z=2")
        overrides[name.strip()] = value.strip()
    th = FlagThresholds().with_overrides(overrides)
    if equity_prices or bond_prices:
        trade_date = load(file, as_of=as_of).meta.trade_date
        equity_ytd, bond_ytd = resolve_returns(equity_ytd, bond_ytd, equity_prices, bond_prices, since, trade_date)
    elif (equity_ytd is None) != (bond_ytd is None):
        raise ParameterError("--equity-ytd and --bond-ytd go together", hint="give both returns, or neither")
    res = flags_for_file(file, previous=previous, history=list(history) or None, equity_ytd=equity_ytd,
                         bond_ytd=bond_ytd, thresholds=th, surface_method=surface_method,
                         cta_prices=cta_prices or equity_prices, as_of=as_of, history_store=history_store)
    flags, rec = res.flags, res.current.record()
    objs = [f.to_dict() for f in flags]
    if fmt == "json":
        emit(fmt, json_obj=objs, output=output)
        return
    rows = [{"name": f.name, "triggered": f.triggered, "strength": f.strength, "evaluated": f.evaluated} for f in flags]
    if fmt == "csv":
        emit(fmt, json_obj=objs, records=rows, output=output)
        return
    header = {"file": file, "underlying": rec.get("underlying"), "trade_date": rec["trade_date"],
              "mode": res.comparison.mode}
    emit("table", json_obj=objs, records=rows, header=header, output=output)
    text = "\n".join(_explain(f) for f in flags)
    if output:
        with open(output, "a", encoding="utf-8") as fh:
            fh.write("\n" + text + "\n")
    else:
        click.echo("\n" + text)
