"""The self-contained HTML page and :func:`write_report`, which writes the page, ``summary.json`` and the charts.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from volsurf.report.charts import draw_charts
from volsurf.report.pipeline import Analysis
from volsurf.report.summary import validate_summary


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
    if kind == "sig":
        return f"{v:.4g}"
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
              + f"; quarter ends {html.escape(str(cal.get('quarter_end_date', '')))}"
              + ('; <a href="#study">what history shows</a>' if summary.get("quarter_end_study") else "")),
        _card("Net GEX", _fmt(h["net_gex"], "bn"), html.escape(regime_txt)
              + ("" if h.get("regime_robust") is None else f"; robust: {_fmt(h.get('regime_robust'))}"),
              "pos" if regime == "positive_gamma" else "neg"),
        _card("Gamma flip", _fmt(h["gamma_flip"]),
              (f"{h['gamma_flip_distance_pct']:+.2f}% from the GEX spot; range {_fmt((h.get('gamma_flip_range') or [None])[0])}"
               f"-{_fmt((h.get('gamma_flip_range') or [None, None])[-1])}") if h["gamma_flip"] is not None
              else html.escape(absent.get("gamma_flip", ""))),
        _card("Call / put wall", f"{_fmt(h['call_wall'], digits=0)} / {_fmt(h['put_wall'], digits=0)}", "strikes with the largest call / put GEX"),
        _card("ATM IV (30d)", _fmt(h["atm_iv_30d"], "vol"), "forward ATM, constant maturity"),
        _card("Variance index (30d)", _fmt(h["variance_index_30d"]),
              "VIX methodology, VIX points" if h["variance_index_30d"] is not None else html.escape(absent.get("variance_index_30d", ""))),
        _card("SKEW index (30d)", _fmt(h.get("skew_index_30d")),
              (f"Cboe SKEW method; {_fmt(summary['skew'].get('skew_index', {}).get('sensitivity'))} points without "
               "the 3 farthest puts") if h.get("skew_index_30d") is not None
              else html.escape(absent.get("skew_index_30d", ""))),
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
         ("atm_iv_fit", "ATM IV (fit)", "vol"), ("rmse_vol_points", "RMSE (vol pts)", "num"),
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
    si = summary["skew"].get("skew_index") or {}
    si_rows = [{"term": name, **{k: si[name].get(k) for k in ("expiry_date", "forward", "k0", "strip_count", "p1",
                                                                "p2", "p3", "skewness", "term_skew_index")}}
               for name in ("near", "next") if isinstance(si.get(name), dict)]
    skew_index_html = (
        f"<p>SKEW-method index (Cboe methodology on the VIX strip, docs/skew_index.md): {_fmt(si.get('index'))}; "
        f"dropping the 3 farthest puts moves it by {_fmt(si.get('sensitivity'))} points.</p>"
        + _table(si_rows, [("term", "term", "str"), ("expiry_date", "expiry", "str"), ("forward", "F", "num"),
                           ("k0", "K0", "num"), ("strip_count", "strikes", "int"), ("p1", "P1", "sig"),
                           ("p2", "P2", "sig"), ("p3", "P3", "sig"), ("skewness", "S", "num"),
                           ("term_skew_index", "SKEW", "num")])
        + "".join(f'<div class="warn">{html.escape(str(w))}</div>' for w in si.get("warnings", []))
    ) if si.get("index") is not None else f'<p class="absent">SKEW index: {html.escape(absent.get("skew_index_30d", ""))}</p>'
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
    cta = summary.get("cta")
    if cta:
        lb_rows = [{"days": lb["days"], "signal": lb["signal"], "position": lb["position"],
                    "trigger": lb["trigger_price"], "distance": lb["distance_pct"]} for lb in cta["lookbacks"]]
        sc_rows = [{"name": s["name"], "price": s["price"], "position": s["position"], "flow": s["flow_usd"]}
                   for s in cta["scenarios"]]
        cta_html = (
            f"<p>Trend-follower model (docs/cta.md) on {html.escape(str(cta['date']))} at {cta['price']:,.2f}: aggregate "
            f"position {cta['position']:+.2f} of its maximum, estimated equity futures notional "
            f"${cta['notional_usd'] / 1e9:,.1f}bn, realized vol {_fmt(cta['realized_vol'], 'pct', 1)}.</p>"
            + _table(lb_rows, [("days", "lookback (sessions)", "int"), ("signal", "signal", "num"),
                               ("position", "position", "num"), ("trigger", "trigger price", "num"),
                               ("distance", "distance (%)", "num")])
            + "<p>Five-session scenarios (flow = change in notional, USD):</p>"
            + _table(sc_rows, [("name", "scenario", "str"), ("price", "price", "num"),
                               ("position", "position", "num"), ("flow", "flow (USD)", "num")])
            + _img(charts, "cta_scenarios", "CTA scenario flows")
        )
    else:
        cta_html = f'<p class="absent">{html.escape(absent.get("cta", ""))}</p>'
    study_rows = summary.get("quarter_end_study") or []
    if study_rows:
        study_html = (
            "<p>Change over the 10 sessions into each quarter-end vs other month-ends on the daily history given "
            "(docs/quarter_end.md defines the statistic; difference with a bootstrap 95% interval, permutation p):</p>"
            + _table(study_rows, [("series", "series", "str"), ("n_qe", "quarter-ends", "int"),
                                  ("qe_mean", "mean change", "sig"), ("other_mean", "other month-ends", "sig"),
                                  ("difference", "difference", "sig"), ("ci_lo", "95% lo", "sig"),
                                  ("ci_hi", "95% hi", "sig"), ("p_value", "p", "sig"), ("q_value", "q", "sig")])
            + "".join(_img(charts, f"study_{i}", f"quarter-end path of {r['series']}") for i, r in enumerate(study_rows))
        )
    else:
        study_html = ('<p class="absent">no daily series given (--study FILE): the quarter-end event study is not '
                      "shown</p>")
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
{skew_index_html}
{_img(charts, 'skew_term', 'skew by maturity')}{_img(charts, 'cm_smiles', 'constant-maturity smiles')}
<h3>OTM put demand by expiry</h3>{demand_table}
<h2 id="gex">Dealer gamma exposure</h2>
<p>Assumption: {html.escape(str(g.get('assumption')))}: {html.escape(str(g.get('assumption_description', '')))}.
Dollars per 1% move of the underlying; profile vols sticky-strike from {html.escape(str(g.get('vol_model')))}.</p>
{_img(charts, 'gex_by_strike', 'GEX by strike')}{_img(charts, 'gex_profile', 'GEX profile')}{_img(charts, 'gex_by_expiry', 'GEX by expiry bucket')}
{bucket_table}
<details><summary>Robustness: net GEX, flip and walls under each scenario</summary>{robust_table}</details>
<h2 id="rebalance">Rebalancing context</h2>{rebalance_html}
<h2 id="cta">Trend followers (CTA)</h2>{cta_html}
<h2 id="study">Quarter-end history</h2>{study_html}
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


def write_report(
    analysis: Analysis,
    out_dir: str | Path,
    progress: Callable[[str], None] | None = None,
    *,
    stage: Path | None = None,
) -> Path:
    """Write ``report.html``, ``summary.json`` and the PNG charts into ``out_dir``; returns the HTML path.

    Everything is drawn into a staging folder inside ``out_dir`` first (``stage``, or a fresh one) and moved
    into place when complete (:func:`volsurf._paths.publish`): an interrupted run leaves the previous report
    intact, and concurrent runs into one folder leave the later report whole.
    """
    from volsurf._paths import output_dir, publish, staging

    out = output_dir(out_dir, "report folder")
    if stage is None:
        with staging(out) as tmp:
            return write_report(analysis, out, progress, stage=tmp)
    _write_files(analysis, stage, progress)
    publish(stage, out, manifest="summary.json", last="report.html")
    return out / "report.html"


def _write_files(analysis: Analysis, out: Path, progress: Callable[[str], None] | None) -> Path:
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
