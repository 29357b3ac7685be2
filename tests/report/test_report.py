"""`volsurf report`: complete output, schema, agreement with the individual commands, and a real browser render."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REAL, ROOT, SAMPLES, CliResult, run_cli

SPX = SAMPLES / "spx_2026-07-31_close.csv"
SPY = SAMPLES / "spy_2025-06-09_close.csv"
CHARTS = {"smiles", "iv_heatmap", "atm_term_structure", "skew_term", "gex_by_strike", "gex_profile", "gex_by_expiry"}


def _cli(*args: str) -> CliResult:
    return run_cli(*args)


@pytest.fixture(scope="module")
def spx_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report_spx")
    res = _cli("report", str(SPX), "-o", str(out), "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert f"Report written to {out / 'report.html'}" in res.stderr
    return out


def test_report_files_complete(spx_report: Path):
    assert (spx_report / "report.html").stat().st_size > 100_000
    summary = json.loads((spx_report / "summary.json").read_text())
    assert CHARTS <= set(summary["charts"])
    for name in summary["charts"].values():
        png = spx_report / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (spx_report / "report.html").read_text()
    # self-contained: every chart embedded, nothing fetched from the network
    assert page.count('src="data:image/png;base64,') == len(summary["charts"])
    assert "http://" not in page and "https://" not in page
    for section in ("verdict", "surface", "skew", "gex", "rebalance", "hygiene", "assumptions"):
        assert f'id="{section}"' in page


def test_summary_validates_against_schema(spx_report: Path):
    from volsurf.report.summary import validate_summary

    summary = json.loads((spx_report / "summary.json").read_text())
    validate_summary(summary)
    h = summary["headline"]
    assert h["underlying"] == "SPX" and h["trade_date"] == "2026-07-31"
    assert h["regime"] in ("positive_gamma", "negative_gamma")
    # SPX skew: puts over calls
    assert h["rr25_30d"] < 0
    assert 0.05 < h["atm_iv_30d"] < 0.6
    # absent signals are said, not zero-filled
    assert h["rr25_30d_change"] is None and "changes" in summary["absent"]
    assert summary["rebalance"] is None and "rebalance" in summary["absent"]


def test_headline_matches_individual_commands(spx_report: Path):
    summary = json.loads((spx_report / "summary.json").read_text())
    h = summary["headline"]
    gex = _cli("gex", str(SPX), "--format", "json", "--vol", "surface")
    assert gex.exit_code == 0, gex.stderr
    g = json.loads(gex.stdout)
    assert h["net_gex"] == pytest.approx(g["net_gex"], rel=1e-9)
    assert h["call_wall"] == g["call_wall"] and h["put_wall"] == g["put_wall"]
    if g["gamma_flip"] is None:
        assert h["gamma_flip"] is None
    else:
        assert h["gamma_flip"] == pytest.approx(g["gamma_flip"], rel=1e-9)
    skew = _cli("skew", str(SPX), "--format", "json", "--surface", "fitted")
    assert skew.exit_code == 0, skew.stderr
    s = json.loads(skew.stdout)
    cm30 = next(c for c in s["constant_maturity"] if c["days"] == 30)
    assert h["rr25_30d"] == pytest.approx(cm30["rr25"], rel=1e-9)
    assert h["atm_iv_30d"] == pytest.approx(cm30["atm_iv"], rel=1e-9)
    assert h["variance_index_30d"] == pytest.approx(s["variance_index_30d"], rel=1e-12)
    assert h["otm_put_oi_share"] == pytest.approx(s["otm_put_oi_share"], rel=1e-12)
    assert h["put_call_oi_ratio"] == pytest.approx(s["put_call_oi_ratio"], rel=1e-12)


def test_report_with_previous_and_returns(tmp_path: Path):
    if not REAL.exists():
        pytest.skip("no ../shared")
    cur = REAL / "cboe_ralph-e-boy_gamma-chart/2025-05-06_1814/quotedata.csv"
    prev = REAL / "cboe_ralph-e-boy_gamma-chart/2025-05-01_1649/quotedata.csv"
    res = _cli("report", str(cur), "--previous", str(prev), "--equity-ytd", "0.12", "--bond-ytd", "0.01",
               "-o", str(tmp_path), "--format", "json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["headline"]["otm_put_oi_share_change"] is not None
    assert "changes" not in summary["absent"]
    reb = summary["rebalance"]
    # 60/40 after +12% / +1%: equity weight 0.6*1.12 / (0.6*1.12 + 0.4*1.01) = 0.62454...
    assert reb["drifted_weights"]["equity"] == pytest.approx(0.672 / 1.076, rel=1e-9)
    assert reb["trades"]["equity"] < 0 < reb["trades"]["bond"]
    assert any(f["name"] == "rebalancing_flow" for f in summary["flags"])


def test_report_bad_input_is_one_line(tmp_path: Path):
    p = tmp_path / "x.csv"
    p.write_text("not,a,chain\n")
    res = _cli("report", str(p), "-o", str(tmp_path / "out"))
    assert res.exit_code == 2 and res.stderr.startswith("Error: ") and "Traceback" not in res.stderr
    res = _cli("report", str(SPY), "--equity-ytd", "0.1", "-o", str(tmp_path / "out"))
    assert res.exit_code == 2 and "--bond-ytd" in res.stderr


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.browser
def test_report_renders_in_headless_chromium(spx_report: Path, tmp_path: Path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on this machine")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,2200"]
    url = (spx_report / "report.html").as_uri()
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    summary = json.loads((spx_report / "summary.json").read_text())
    n = len(summary["charts"])
    # the page's own load handler counts images that decoded with a non-zero size
    m = re.search(r'id="render-check"[^>]*>(\d+)/(\d+)<', dom.stdout)
    assert m is not None, "render check element missing"
    assert (int(m.group(1)), int(m.group(2))) == (n, n)
    h = summary["headline"]
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    assert "SPX" in text and "2026-07-31" in text
    assert f"${h['net_gex'] / 1e9:,.2f}bn per 1%" in text
    assert f"{h['call_wall']:,.0f} / {h['put_wall']:,.0f}" in text
    assert f"{h['atm_iv_30d'] * 100:.2f}%" in text
    shot = spx_report / "report_screenshot.png"
    res = subprocess.run([browser, *flags, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and shot.stat().st_size > 50_000
    keep = ROOT / "out"
    keep.mkdir(exist_ok=True)
    shutil.copy(shot, keep / "report_screenshot.png")


def test_skew_chart_series_are_decimal_vols(spx_report: Path):
    """The chart helper hands decimals to the plot (which scales to vol points): no double scaling."""
    from types import SimpleNamespace

    from volsurf.plots.skew_plots import plot_skew_term
    from volsurf.report.charts import skew_term_series

    summary = json.loads((spx_report / "summary.json").read_text())
    cms = [SimpleNamespace(**c) for c in summary["skew"]["constant_maturity"]]
    days, series = skew_term_series(SimpleNamespace(constant_maturity=cms))
    assert series["25d risk reversal"] == [c.rr25 for c in cms]
    ax = plot_skew_term(days, series)
    rr_line = next(line for line in ax.get_lines() if line.get_label() == "25d risk reversal")
    assert rr_line.get_ydata()[1] == pytest.approx(100 * summary["headline"]["rr25_30d"])
    assert all(abs(v) < 40 for line in ax.get_lines() for v in line.get_ydata() if v == v)


def test_report_on_the_older_cboe_payload_lists_what_it_cannot_compute(tmp_path: Path):
    """The 2022 Cboe JSON has no bid/ask: the report runs with --as-of on OI, volume and the feed's IVs."""
    path = REAL.parent / "real_feeds" / "cboe_delayed_json" / "spy_2022-04-04_data_only.json"
    if not path.exists():
        pytest.skip("needs ../shared/real_feeds beside the checkout")
    assert run_cli("report", path, "-o", tmp_path / "x").exit_code == 2  # no as-of time in the file
    res = run_cli("report", path, "--as-of", "2022-04-04 09:00", "-o", tmp_path / "out", "--format", "json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    for key in ("surface", "atm_iv_30d", "variance_index_30d", "skew_index_30d", "rr25_30d"):
        assert "no per-option bid/ask" in summary["absent"][key], key
    h = summary["headline"]
    assert h["atm_iv_30d"] is None and h["rr25_30d"] is None
    assert 0 < h["otm_put_oi_share"] < 1 and h["net_gex"] is not None
    assert "feed's own IVs" in summary["assumptions"]["gex_ivs"]
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Signals absent" in page and "no per-option bid/ask" in page


def test_flip_distance_is_from_the_spot_the_gex_profile_uses(spx_report: Path):
    """The demo chain's Last is stale: GEX centres on the parity-implied spot, and so does the flip distance."""
    s = json.loads((spx_report / "summary.json").read_text(encoding="utf-8"))
    h, g = s["headline"], s["gex"]
    assert g["spot_source"].startswith("implied") and g["spot"] != h["spot"]
    assert h["gamma_flip_distance_pct"] == pytest.approx((h["gamma_flip"] / g["spot"] - 1) * 100, rel=1e-12)
