"""Run ``volsurf study quarter-end`` on the shared daily series and write docs/quarter_end.md (+ docs/img charts).

The page is generated from one run of the command (JSON output and ``--plot`` charts); nothing in its tables
is typed by hand. The series list (``SERIES``) is also what ``benchmarks/bench_study.py`` times.

Run: ``.venv/bin/python scripts/quarter_end_docs.py [--shared ../shared/real_series]``
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "real_series"
DOC = ROOT / "docs" / "quarter_end.md"
IMG = ROOT / "docs" / "img"

# (argument relative to the shared folder, label, unit of the change). ``:log`` studies the natural log (prices).
SERIES: list[tuple[str, str, str]] = [
    ("cboe_indices/SKEW_History.csv", "Cboe SKEW", "index points"),
    ("cboe_indices/VIX_History.csv", "VIX (close)", "vol points"),
    ("cboe_indices/VIX9D_History.csv", "VIX9D (close)", "vol points"),
    ("cboe_indices/VIX3M_History.csv", "VIX3M (close)", "vol points"),
    ("cboe_indices/VVIX_History.csv", "VVIX", "index points"),
    ("vix_daily.csv", "VIX (arch copy, 2014-2019)", "vol points"),
    ("put_call/cboe_put_call_ratios_2019_2026.csv:TOTAL_PUT_CALL_RATIO", "Total put/call", "ratio"),
    ("put_call/cboe_put_call_ratios_2019_2026.csv:INDEX_PUT_CALL_RATIO", "Index put/call", "ratio"),
    ("put_call/cboe_put_call_ratios_2019_2026.csv:SPX_SPXW_PUT_CALL_RATIO", "SPX+SPXW put/call", "ratio"),
    ("put_call/cboe_put_call_ratios_2019_2026.csv:EQUITY_PUT_CALL_RATIO", "Equity put/call", "ratio"),
    ("put_call/cboe_put_call_ratios_2019_2026.csv:ETP_PUT_CALL_RATIO", "ETP put/call", "ratio"),
    ("put_call/cboe_put_call_ratios_2019_2026.csv:VIX_PUT_CALL_RATIO", "VIX options put/call", "ratio"),
    ("put_call/cboe_totalpc_2006_2019.csv:Ratio", "Total put/call 2006-2019", "ratio"),
    ("squeezemetrics_dix_gex_daily.csv:gex", "SqueezeMetrics GEX", "dollars"),
    ("squeezemetrics_dix_gex_daily.csv:dix", "SqueezeMetrics DIX", "share"),
    ("squeezemetrics_dix_gex_daily.csv:price:log", "S&P 500 (SqueezeMetrics file), log", "log return"),
    ("spy_daily_1993_2024.csv:adjusted_close:log", "SPY adjusted close, log", "log return"),
    ("sp500_daily.csv:Adj Close:log", "S&P 500 adjusted close, log", "log return"),
    ("nasdaq_daily.csv:Adj Close:log", "NASDAQ Composite adjusted close, log", "log return"),
    ("ndx_vix_rates_daily_2000_2026.csv:NDX_close:log", "NASDAQ-100 close, log", "log return"),
    ("ndx_vix_rates_daily_2000_2026.csv:IRX_close", "13-week T-bill yield (IRX)", "percentage points"),
    ("ndx_vix_rates_daily_2000_2026.csv:DFF", "Effective fed funds (DFF)", "percentage points"),
    ("treasury_yields/DGS3MO.csv", "3-month Treasury (FRED)", "percentage points"),
    ("treasury_yields/DGS2.csv", "2-year Treasury (FRED)", "percentage points"),
    ("treasury_yields/DGS10.csv", "10-year Treasury (FRED)", "percentage points"),
    ("treasury_yields/DGS30.csv", "30-year Treasury (FRED)", "percentage points"),
]
RATIO = ("cboe_indices/VIX9D_History.csv", "cboe_indices/VIX3M_History.csv", "VIX9D / VIX3M", "ratio")

# Charts copied into docs/img: series name in the run -> file name.
CHARTS = {
    "SKEW_History": "quarter_end_skew.png",
    "cboe_put_call_ratios_2019_2026:INDEX_PUT_CALL_RATIO": "quarter_end_index_put_call.png",
    "VIX_History": "quarter_end_vix.png",
    "VIX9D_History/VIX3M_History": "quarter_end_vix9d_vix3m.png",
    "squeezemetrics_dix_gex_daily:gex": "quarter_end_gex.png",
}


def study_args(shared: Path) -> list[str]:
    """Arguments of ``volsurf study quarter-end`` for every shared daily series (and the VIX9D/VIX3M ratio)."""
    args = []
    for spec, _, _ in SERIES:
        path, _, rest = spec.partition(":")
        args.append(str(shared / path) + (f":{rest}" if rest else ""))
    args += ["--ratio", f"{shared / RATIO[0]}:{shared / RATIO[1]}"]
    return args


def run_study(shared: Path, extra: list[str]) -> tuple[dict, float]:
    """Run the command (JSON out) and return its output and wall time."""
    cmd = [sys.executable, "-c", "from volsurf.cli.main import main; main()", "study", "quarter-end", *study_args(shared), "--format", "json",
           *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"volsurf study quarter-end failed:\n{done.stderr}")
    return json.loads(done.stdout), elapsed


def _labels() -> dict[str, tuple[str, str]]:
    """Run name -> (label, unit)."""
    out = {}
    for spec, label, unit in SERIES:
        path, _, rest = spec.partition(":")
        col = rest.removesuffix(":log").removesuffix("log") if rest else ""
        stem = Path(path).stem
        out[f"{stem}:{col}" if col else stem] = (label, unit)
    out[f"{Path(RATIO[0]).stem}/{Path(RATIO[1]).stem}"] = (RATIO[2], RATIO[3])
    return out


def _g(x: float | None, digits: int = 3) -> str:
    """``digits`` significant digits; scientific notation for very large or small magnitudes."""
    if x is None or not math.isfinite(x):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{max(digits - 1 - math.floor(math.log10(abs(x))), 0)}f}"


def _p(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4f}" if x >= 0.001 else f"{x:.1e}"


def _compress_png(src: Path, dst: Path) -> None:
    """Copy a chart as a 128-colour palette PNG (a third of the size, same look)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow ships with matplotlib
        shutil.copyfile(src, dst)
        return
    with Image.open(src) as im:
        im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)


def _row(s: dict, labels: dict[str, tuple[str, str]]) -> str:
    label, unit = labels.get(s["name"], (s["name"], ""))
    qe, om, ye, qx = s["quarter_end"], s["other_month_end"], s["year_end"], s["quarterly_expiration"]
    lo, hi = s["difference_ci95"]
    star = " **" if (s["q_value"] is not None and s["q_value"] < 0.05) else ""
    return (
        f"| {label} | {unit} | {s['span'][0]} .. {s['span'][1]} | {_g(qe['mean_change'])} ({qe['n_events']}) | "
        f"{_g(om['mean_change'])} ({om['n_events']}) | {star.strip()}{_g(s['difference'])}{star.strip()} | "
        f"[{_g(lo)}, {_g(hi)}] | {_p(s['p_value'])} | {_p(s['q_value'])} | "
        f"{_g(ye['mean_change'])} ({ye['n_events']}) | {_g(qx['mean_change'])} ({qx['n_events']}) |"
    )


def _by_name(run: dict) -> dict[str, dict]:
    return {s["name"]: s for s in run["series"]}


def _path_at(s: dict, event_set: str, offset: int) -> tuple[float, float, float]:
    for r in s["path"]:
        if r["event_set"] == event_set and r["offset"] == offset:
            return r["mean"], r["ci_lo"], r["ci_hi"]
    return math.nan, math.nan, math.nan


def write_page(run: dict, elapsed: float, shared: Path, commands: str) -> str:
    labels = _labels()
    series = run["series"]
    n = len(series)
    lookback = series[0]["lookback"]
    sig = [s for s in series if s["q_value"] is not None and s["q_value"] < 0.05]
    by = _by_name(run)
    lines: list[str] = []
    add = lines.append
    add("# Quarter-end event study: does skew steepen and put demand rise into quarter-end?")
    add("")
    add("_Generated by `scripts/quarter_end_docs.py` from one run of `volsurf study quarter-end` on the shared "
        "daily series (`../shared/real_series`, see its SOURCES.md). Do not edit by hand: re-run the script._")
    add("")
    add("The quarter-end flags (`volsurf flags`, docs/skew.md) read \"quarter-end hedging\" into a steeper skew "
        "and more OTM put demand inside the quarter-end window. This page tests the premise on real history: do "
        "skew, implied-vol and put/call series move differently in the run-up to quarter-ends than in the run-up "
        "to the other month-ends, and which way?")
    add("")
    add("## Definitions (recompute them with any tool)")
    add("")
    add("- **Event days** (XNYS sessions from `exchange_calendars`, 1990 on): *quarter-ends* = last session of "
        "March, June, September, December; *other month-ends* = last session of the other eight months (the "
        "comparison); *year-ends* = last session of December; *quarterly expirations* = third Friday of Mar/Jun/"
        "Sep/Dec, the previous session when the exchange is closed.")
    add(f"- **Headline change**: `delta = value(T0) - value(T-{lookback})`, `T-{lookback}` the {lookback}th NYSE "
        "session before the event day `T0`. An event whose value is missing at either end is dropped (no "
        "filling). Prices are studied in natural logs (the change is a log return); everything else in levels.")
    add("- **Difference** = mean delta at quarter-ends minus mean delta at other month-ends. **95% interval**: "
        f"percentile bootstrap ({series[0]['n_bootstrap']} resamples of the events of each set, seed "
        f"{series[0]['seed']}). **p**: two-sided permutation test ({series[0]['n_permutations']} relabellings of "
        f"the pooled deltas). **q**: Benjamini-Hochberg across the {n} series of the run.")
    add(f"- **Path**: mean of `value(T+j) - value(T-{lookback})` for `j = -{lookback} .. +{series[0]['horizon']}` "
        "with its bootstrap 95% interval; grey lines are single events.")
    add("")
    add("## Results")
    add("")
    add(f"{n} series; the run took {elapsed:.1f} s (JSON and charts). Means are in the unit shown, event counts "
        "in brackets; a difference in **bold** has q < 0.05.")
    add("")
    add("| series | unit | span | quarter-end mean (n) | other month-end mean (n) | difference | 95% CI | p | q | "
        "year-end mean (n) | quarterly expiration mean (n) |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in series:
        add(_row(s, labels))
    add("")
    add("## What the data shows")
    add("")
    if sig:
        add(f"Series whose quarter-end run-up differs from other month-ends at q < 0.05 ({len(sig)} of {n}):")
        add("")
        for s in sig:
            label, unit = labels.get(s["name"], (s["name"], ""))
            direction = "more negative" if s["difference"] < 0 else "more positive"
            add(f"- {label}: quarter-end delta {_g(s['quarter_end']['mean_change'])} vs "
                f"{_g(s['other_month_end']['mean_change'])} at other month-ends ({direction} by "
                f"{_g(abs(s['difference']))} {unit}; 95% CI [{_g(s['difference_ci95'][0])}, "
                f"{_g(s['difference_ci95'][1])}], q = {_p(s['q_value'])}).")
    else:
        add(f"No series differs at q < 0.05 across the {n} series.")
    add("")
    skew, vix, ratio = by.get("SKEW_History"), by.get("VIX_History"), by.get("VIX9D_History/VIX3M_History")
    ipc, gex = by.get("cboe_put_call_ratios_2019_2026:INDEX_PUT_CALL_RATIO"), by.get("squeezemetrics_dix_gex_daily:gex")
    if skew:
        qe, om, qx = skew["quarter_end"], skew["other_month_end"], skew["quarterly_expiration"]
        m5, lo5, hi5 = _path_at(skew, "quarter_end", 5)
        add(f"- **SKEW falls, not rises, into quarter-ends.** Over the {lookback} sessions to a quarter-end the "
            f"Cboe SKEW index moved {_g(qe['mean_change'])} points on average (95% CI [{_g(qe['ci95'][0])}, "
            f"{_g(qe['ci95'][1])}], {qe['n_events']} quarter-ends since {qe['first_event']}), against "
            f"{_g(om['mean_change'])} before other month-ends (CI [{_g(om['ci95'][0])}, {_g(om['ci95'][1])}]). "
            f"The quarter-end decline is larger by {_g(abs(skew['difference']))} points (CI "
            f"[{_g(skew['difference_ci95'][0])}, {_g(skew['difference_ci95'][1])}], p = {_p(skew['p_value'])}), "
            f"but with q = {_p(skew['q_value'])} across the {n} series the difference does not pass a 5% "
            f"false-discovery rate. The decline continues after the quarter-end (path mean {_g(m5)} at T+5, "
            f"CI [{_g(lo5)}, {_g(hi5)}]). Into the quarterly expiration SKEW *rises* ({_g(qx['mean_change'])}, "
            f"CI [{_g(qx['ci95'][0])}, {_g(qx['ci95'][1])}], n = {qx['n_events']}); the window T-{lookback} .. T0 "
            "of a quarter-end starts around that expiration, so a quarter-end change measures SKEW coming off "
            "its expiration-week level, and other month-ends, whose windows start around the smaller monthly "
            "expirations, show a smaller decline of the same sign. A plausible reading is an option-cycle effect "
            "(SKEW is computed from the two expiries around 30 days, which roll after an expiration) rather than "
            "quarter-end put buying; this statistic does not separate the two. Either way the sign is the "
            "opposite of the \"skew steepens into quarter-end\" story.")
    if vix:
        add(f"- **VIX**: quarter-end delta {_g(vix['quarter_end']['mean_change'])} vs "
            f"{_g(vix['other_month_end']['mean_change'])} vol points at other month-ends; difference "
            f"{_g(vix['difference'])}, CI [{_g(vix['difference_ci95'][0])}, {_g(vix['difference_ci95'][1])}], "
            f"q = {_p(vix['q_value'])}. No detectable quarter-end rise in implied vol.")
    if ratio:
        v9 = by.get("VIX9D_History")
        add(f"- **VIX9D / VIX3M** (short-end term structure, {ratio['span'][0]} on) is the one series that "
            f"passes q < 0.05: quarter-end delta {_g(ratio['quarter_end']['mean_change'])} (CI "
            f"[{_g(ratio['quarter_end']['ci95'][0])}, {_g(ratio['quarter_end']['ci95'][1])}]) vs "
            f"{_g(ratio['other_month_end']['mean_change'])} at other month-ends (CI "
            f"[{_g(ratio['other_month_end']['ci95'][0])}, {_g(ratio['other_month_end']['ci95'][1])}]), difference "
            f"{_g(ratio['difference'])} (CI [{_g(ratio['difference_ci95'][0])}, {_g(ratio['difference_ci95'][1])}], "
            f"q = {_p(ratio['q_value'])})"
            + (f"; VIX9D alone: {_g(v9['quarter_end']['mean_change'])} vs {_g(v9['other_month_end']['mean_change'])}"
               f" vol points (q = {_p(v9['q_value'])})" if v9 else "")
            + ". The 9-day vol *falls* relative to 3-month vol into quarter-ends and rises into other month-ends: "
            "the front of the curve cheapens into quarter-end, the opposite of front-end hedging pressure. A "
            "candidate explanation that this study does not test is the event calendar: the FOMC meetings with "
            "projections sit in the middle of March, June, September and December (inside T-10 and then past by "
            "T0), while the other meetings fall near the turn of January, April/May, July and October/November "
            "(ahead of T0, inside a 9-day window).")
    if ipc:
        add(f"- **Index put/call ratio** ({ipc['span'][0]} .. {ipc['span'][1]}, {ipc['quarter_end']['n_events']} "
            f"quarter-ends): difference {_g(ipc['difference'])}, CI [{_g(ipc['difference_ci95'][0])}, "
            f"{_g(ipc['difference_ci95'][1])}], q = {_p(ipc['q_value'])}. Daily put/call ratios are noisy and "
            "the history is short; the data cannot tell a quarter-end rise in index put demand from none (the "
            "SPX+SPXW, equity and total ratios agree, with or without the placeholder values, see Data checks).")
    if gex:
        add(f"- **SqueezeMetrics GEX** (dollars of dealer gamma per 1% move, their model): quarter-end delta "
            f"{_g(gex['quarter_end']['mean_change'])} vs {_g(gex['other_month_end']['mean_change'])}; "
            f"difference {_g(gex['difference'])}, CI [{_g(gex['difference_ci95'][0])}, "
            f"{_g(gex['difference_ci95'][1])}], q = {_p(gex['q_value'])}; at quarterly expirations "
            f"{_g(gex['quarterly_expiration']['mean_change'])}.")
    add("")
    story = [k for k in CHARTS if k in by]
    if story:
        from volsurf.history.study import benjamini_hochberg

        q5 = benjamini_hochberg([by[k]["p_value"] for k in story])
        add(f"The {len(story)} series the issue names for the hedging story (SKEW, index put/call, VIX, VIX9D/VIX3M, "
            "GEX), adjusted as their own family (Benjamini-Hochberg on the same p-values): "
            + "; ".join(f"{labels.get(k, (k, ''))[0]} q = {_p(float(q))}" for k, q in zip(story, q5, strict=True))
            + ".")
        add("")
    from volsurf.io.series import read_dated_series

    idx_pcr = read_dated_series(shared / PCR_FILE, column="INDEX_PUT_CALL_RATIO", missing="drop")
    counts = idx_pcr[~idx_pcr.isin(PLACEHOLDERS)].value_counts()
    add("### Data checks")
    add("")
    add(f"The 2019-2026 put/call file holds values of exactly {' and '.join(f'{v:g}' for v in PLACEHOLDERS)} on "
        f"days when the other ratios look normal (the index ratio's median is {idx_pcr.median():.2f}): "
        f"placeholders of the source, not ratios (the index ratio also shows {counts.index[0]:.2f} on "
        f"{int(counts.iloc[0])} days against {int(counts.iloc[1])} for the next most frequent value, which may be "
        "a placeholder too; it is kept). The study reads the files as published, so they are in the table "
        "above, and they make the put/call paths spiky. With them treated as missing (events touching them "
        "dropped), same settings:")
    add("")
    add("| series | placeholder days | quarter-end mean (n) | other month-end mean (n) | difference | 95% CI | p |")
    add("|---|---|---|---|---|---|---|")
    for row in placeholder_rows(shared, run):
        add(row)
    add("")
    noted = [(labels.get(s["name"], (s["name"], ""))[0], note) for s in series for note in s["notes"]]
    if noted:
        add("Notes of the run: " + "; ".join(f"{label}: {note}" for label, note in noted) + ".")
        add("")
    add("VVIX's first rows (2006-03-06 at 71.73, then 2006-03-15 at 15.71) look wrong too; no event window "
        "reaches them (the first event is 2006-03-31, whose T-10 is 2006-03-17).")
    add("")
    add("Caveats: events are about a month apart and treated as independent (10-session windows of consecutive "
        "events do not overlap, but volatility regimes persist, so intervals are somewhat optimistic); the "
        "quarter-end window shares its start with the quarterly expiration week, so calendar effects of the "
        "option cycle and of the quarter-end cannot be separated by this statistic alone; the price series "
        "(SPY, S&P 500, NASDAQ) overlap heavily and are not independent tests.")
    add("")
    add("## Calibrated flag thresholds")
    add("")
    add("`volsurf.signals.calibration.calibrated_threshold(history, lookback=10, percentile=90)` turns a history "
        "into a flag threshold: the 90th percentile (numpy's linear interpolation) of the past signed "
        f"{lookback}-session changes `direction x (x(T) - x(T-{lookback}))`, with today's change placed among them "
        "(share of past changes below it, ties counting half) and the number of past changes. With fewer than "
        "60 history values, no finite past change, or a non-positive percentile, the documented default stays "
        "and the evidence says why. The same N-session change (`session_changes`) is the study's headline "
        "statistic. On the shared series, with the last day of each file as \"today\":")
    add("")
    add("| series | direction | 90th percentile of the 10-session change | past changes | history | last day's "
        "change | its percentile |")
    add("|---|---|---|---|---|---|---|")
    for row in calibration_rows(shared, lookback):
        add(row)
    add("")
    add("## Paths")
    add("")
    add("Quarter-ends (left) and other month-ends (right): mean change since T-10 with its 95% interval, single "
        "events in grey (the y-range holds 96% of the single-event values so that the means stay readable).")
    add("")
    for name, fname in CHARTS.items():
        if name in by:
            label = labels.get(name, (name, ""))[0]
            add(f"### {label}")
            add("")
            add(f"![{label}: change since T-10 around quarter-ends and other month-ends](img/{fname})")
            add("")
    add("## How to reproduce")
    add("")
    add("```")
    add(commands)
    add("```")
    add("")
    add("The VIX9D/VIX3M ratio is a derived series: `--ratio A.csv:B.csv` divides A's value column by B's on the "
        "dates both have (`volsurf.history.study.ratio_series`). `FILE:COLUMN` picks a column (default `CLOSE` "
        "when present, else the only numeric column) and `FILE:COLUMN:log` studies its natural log. "
        "`--format csv --paths` prints the mean paths.")
    add("")
    add("A test (`tests/history/test_study.py::test_headline_matches_plain_pandas`) recomputes the headline "
        "means for SKEW and the FRED 10-year yield with plain pandas and the exchange calendar and matches them "
        "to 1e-9.")
    add("")
    return "\n".join(lines)


# Series for the calibration example: (argument as in SERIES, label, direction of the flagged move).
CALIBRATION_EXAMPLES = [
    ("cboe_indices/SKEW_History.csv", "Cboe SKEW", 1),
    ("put_call/cboe_put_call_ratios_2019_2026.csv:INDEX_PUT_CALL_RATIO", "Index put/call", 1),
    ("cboe_indices/VIX_History.csv", "VIX (close)", 1),
    ("squeezemetrics_dix_gex_daily.csv:gex", "SqueezeMetrics GEX (a fall = less dealer gamma)", -1),
]


# Values that occur in the 2019-2026 put/call file far outside any ratio's range, repeated exactly, in several
# columns on different days: placeholders of the source, not ratios.
PLACEHOLDERS = (4.22, 11.0)
PCR_FILE = "put_call/cboe_put_call_ratios_2019_2026.csv"
PCR_COLUMNS = [
    ("INDEX_PUT_CALL_RATIO", "Index put/call"),
    ("SPX_SPXW_PUT_CALL_RATIO", "SPX+SPXW put/call"),
    ("TOTAL_PUT_CALL_RATIO", "Total put/call"),
    ("ETP_PUT_CALL_RATIO", "ETP put/call"),
]


def placeholder_rows(shared: Path, run: dict) -> list[str]:
    """The put/call ratios with the placeholder values removed (as missing), same study settings as the run."""
    from volsurf.history.study import quarter_end_study
    from volsurf.io.series import read_dated_series

    first = run["series"][0]
    rows = []
    for col, label in PCR_COLUMNS:
        s = read_dated_series(shared / PCR_FILE, column=col, missing="drop")
        bad = s.isin(PLACEHOLDERS)
        r = quarter_end_study(
            s[~bad], name=label, column=col, lookback=first["lookback"], horizon=first["horizon"],
            n_bootstrap=first["n_bootstrap"], n_permutations=first["n_permutations"], seed=first["seed"],
        )
        qe, om = r.sets["quarter_end"], r.sets["other_month_end"]
        rows.append(
            f"| {label} | {int(bad.sum())} | {_g(qe.mean_change)} ({qe.n_events}) | {_g(om.mean_change)} "
            f"({om.n_events}) | {_g(r.difference)} | [{_g(r.difference_ci95[0])}, {_g(r.difference_ci95[1])}] | "
            f"{_p(r.p_value)} |"
        )
    return rows


def calibration_rows(shared: Path, lookback: int) -> list[str]:
    """Markdown rows: the calibrated threshold of each example series and where its last change sits."""
    from volsurf.io.series import read_dated_series
    from volsurf.signals.calibration import calibrated_threshold

    rows = []
    for spec, label, direction in CALIBRATION_EXAMPLES:
        path, _, col = spec.partition(":")
        s = read_dated_series(shared / path, prefer=("CLOSE",), column=col or None, missing="drop")
        c = calibrated_threshold(s, lookback, 90.0, direction=direction)
        rows.append(
            f"| {label} | {'+' if direction > 0 else '-'} | {_g(direction * c.threshold)} | {c.n_observations} | "
            f"{c.history_start} .. {c.history_end} | {_g(c.change_today)} | "
            f"{'-' if c.percentile_of_today is None else f'{c.percentile_of_today:.0f}'} |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder with the shared daily series")
    args = ap.parse_args(argv)
    shared = args.shared.resolve()
    if not shared.exists():
        raise SystemExit(f"{shared} not found (the shared real_series folder)")
    with tempfile.TemporaryDirectory() as tmp:
        run, elapsed = run_study(shared, ["--plot", tmp])
        IMG.mkdir(parents=True, exist_ok=True)
        for name, fname in CHARTS.items():
            slug = "".join(c if c.isalnum() else "_" for c in name.lower())
            while "__" in slug:
                slug = slug.replace("__", "_")
            _compress_png(Path(tmp) / f"quarter_end_{slug.strip('_')}.png", IMG / fname)
    rel = [a.replace(str(shared), "../shared/real_series") for a in study_args(shared)]
    commands = "volsurf study quarter-end \\\n    " + " \\\n    ".join(
        (f"'{a}'" if " " in a else a) for a in rel if a != "--ratio"
    ).replace("    ../shared/real_series/cboe_indices/VIX9D_History.csv:", "    --ratio ../shared/real_series/cboe_indices/VIX9D_History.csv:")
    commands += " \\\n    --format json --plot charts/"
    DOC.write_text(write_page(run, elapsed, shared, commands))
    print(f"wrote {DOC.relative_to(ROOT)} and {len(CHARTS)} charts in {IMG.relative_to(ROOT)} ({elapsed:.1f} s run)")


if __name__ == "__main__":
    main()
