"""``volsurf surface`` and volsurf.surface.summary: JSON keys and values on the sample chains, CSV columns, the
table, the chart files, errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from functools import cache

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT, enrich_cached
from vollib.black.implied_volatility import implied_volatility as vl_iv

from volsurf.cli.surface import surface_cmd
from volsurf.errors import DataError
from volsurf.surface.summary import CSV_COLUMNS, TABLE_COLUMNS, fit_from_enriched, surface_summary, table_rows

SPY = str(ROOT / "sample_chains" / "spy_2025-06-09_close.csv")
SPX = str(ROOT / "sample_chains" / "spx_2026-07-31_close.csv")

EXPIRY_KEYS = {
    "expiry", "t", "forward", "params", "rmse_vol_points", "inside_band_share", "svi_rmse_vol_points",
    "svi_inside_band_share", "butterfly_violations", "calendar_violations", "essvi_params", "essvi_rmse_vol_points",
    "essvi_inside_band_share", "raw_butterfly_violations", "raw_calendar_violations", "atm_iv_fit", "days", "root",
}


@cache
def fitted(path: str):
    e = enrich_cached(path)
    surf = fit_from_enriched(e)
    return e, surf, surface_summary(surf, e)


def _run(args):
    res = CliRunner().invoke(surface_cmd, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


@pytest.mark.parametrize("path", [SPY, SPX], ids=["spy", "spx"])
def test_summary_keys_and_fit_quality(path):
    e, surf, s = fitted(path)
    json.dumps(s, allow_nan=False)  # plain JSON: no numpy types, no NaN
    assert s["underlying"] == e.meta.underlying
    assert s["n_expiries"] == len(s["expiries"]) == len(surf.slices) >= 10
    for r in s["expiries"]:
        assert EXPIRY_KEYS <= set(r)
        assert set(r["params"]) == {"a", "b", "rho", "m", "sigma"}
    # the market-consistent surface: median inside-the-band share >= 95%, no arbitrage on the dense grid
    assert s["medians"]["mc"]["inside_band_share"] >= 0.95
    assert np.median([r["inside_band_share"] for r in s["expiries"] if r["days"] >= 7]) >= 0.95
    assert s["violations"]["butterfly"] == s["violations"]["calendar"] == 0
    assert all(r["butterfly_violations"] == 0 and r["calendar_violations"] == 0 for r in s["expiries"])
    # the market layer fits closer than raw SVI, which fits closer than eSSVI (medians)
    med = s["medians"]
    assert med["mc"]["rmse_vol_points"] < med["svi"]["rmse_vol_points"] < med["essvi"]["rmse_vol_points"]
    assert set(s["timings"]) >= {"svi", "mc", "total"} and s["timings"]["total"] > 0
    assert isinstance(s["skipped"], list)


@pytest.mark.parametrize("path", [SPY, SPX], ids=["spy", "spx"])
def test_summary_values_against_independent_references(path):
    e, _, s = fitted(path)
    trade = e.meta.trade_date
    spot = e.meta.spot
    for r in s["expiries"]:
        # days to expiry from the calendar (close to close; AM-settled expiries a few hours less, the end of
        # daylight saving time adds an hour)
        cal_days = (dt.date.fromisoformat(r["expiry"]) - trade).days
        assert cal_days - 0.5 <= r["days"] <= cal_days + 1 / 24 + 1e-4
        assert r["t"] == pytest.approx(r["days"] / 365.0, abs=1e-6)
        # forward: spot carried at a rate minus dividend yield between -2% and 7%
        assert -0.02 * r["t"] - 0.01 <= math.log(r["forward"] / spot) <= 0.07 * r["t"] + 0.01
        # SVI ATM vol by hand from the parameters; Lee's bound and the parameter domain
        p = r["params"]
        w0 = p["a"] + p["b"] * (p["rho"] * -p["m"] + math.hypot(p["m"], p["sigma"]))
        assert r["svi_atm_iv"] == pytest.approx(math.sqrt(w0 / r["t"]), rel=1e-9)
        assert p["b"] >= 0 and abs(p["rho"]) <= 1 and p["sigma"] > 0 and p["b"] * (1 + abs(p["rho"])) <= 2 + 1e-9
        assert 0 <= r["inside_band_share"] <= 1 and r["rmse_vol_points"] >= 0


@pytest.mark.parametrize("path", [SPY, SPX], ids=["spy", "spx"])
def test_atm_iv_matches_vollib_on_the_quotes_straddling_the_forward(path):
    """ATM vol of the surface vs vollib's Black IV of the two OTM mids around the forward, interpolated in
    log-moneyness (expiries of 7 days or more, where strikes are dense relative to the smile)."""
    e, _, s = fitted(path)
    f = e.frame
    checked = 0
    for r in s["expiries"]:
        if r["days"] < 7:
            continue
        g = f[(f["expiry_date"].astype(str) == r["expiry"]) & (f["root"] == r["root"]) & f["otm"] & (f["bid"] > 0)]
        fwd, t, disc = r["forward"], r["t"], r["discount"]
        rate = -math.log(disc) / t
        below = g[g["strike"] < fwd].sort_values("strike").tail(1)
        above = g[g["strike"] >= fwd].sort_values("strike").head(1)
        if below.empty or above.empty:
            continue
        ks, vols = [], []
        for row in (below.iloc[0], above.iloc[0]):
            mid = 0.5 * (row["bid"] + row["ask"])
            flag = "c" if row["type"] == "call" else "p"
            vols.append(vl_iv(mid, fwd, row["strike"], rate, t, flag))
            ks.append(math.log(row["strike"] / fwd))
        if ks[1] - ks[0] > 0.02:  # too coarse a strike grid for a linear read of the smile
            continue
        ref = np.interp(0.0, ks, vols)
        assert r["atm_iv_fit"] == pytest.approx(ref, abs=0.004), r["label"]
        checked += 1
    assert checked >= 5


def test_table_rows_flatten_parameters():
    _, _, s = fitted(SPY)
    rows = table_rows(s)
    assert list(rows[0]) == CSV_COLUMNS
    r0, e0 = rows[0], s["expiries"][0]
    assert r0["svi_rho"] == e0["params"]["rho"] and r0["essvi_theta"] == e0["essvi_params"]["theta"]
    assert list(table_rows(s, TABLE_COLUMNS)[0]) == TABLE_COLUMNS


def test_cli_json(tmp_path):
    out = tmp_path / "s.json"
    _run([SPY, "--format", "json", "-o", str(out)])
    obj = json.loads(out.read_text())
    assert obj["underlying"] == "SPY" and obj["trade_date"] == "2025-06-09"
    assert [r["expiry"] for r in obj["expiries"]] == sorted(r["expiry"] for r in obj["expiries"])
    assert all(EXPIRY_KEYS <= set(r) for r in obj["expiries"])


def test_cli_csv_columns():
    res = _run([SPY, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == CSV_COLUMNS
    _, _, s = fitted(SPY)
    assert len(rows) == s["n_expiries"]
    assert [r["expiry"] for r in rows] == [r["expiry"] for r in s["expiries"]]
    assert all(float(r["inside_band_share"]) <= 1 for r in rows)


def test_cli_table_has_header_and_one_row_per_expiry():
    res = _run([SPY])
    text = res.stdout
    assert "surface_inside_band_share" in text and "svi_rmse_vol_points" in text
    assert "medians over expiries >= 7 days" in text
    _, _, s = fitted(SPY)
    for r in s["expiries"]:
        assert r["expiry"] in text
    header_line = next(line for line in text.splitlines() if line.startswith("expiry"))
    assert header_line.split() == TABLE_COLUMNS


def test_cli_min_days_drops_short_expiries():
    res = _run([SPY, "--format", "json", "--min-days", "7"])
    obj = json.loads(res.stdout)
    assert obj["expiries"] and all(r["days"] > 7 for r in obj["expiries"])


def test_cli_plot_writes_the_charts(tmp_path):
    res = _run([SPY, "--format", "json", "-o", str(tmp_path / "s.json"), "--plot", str(tmp_path / "charts")])
    names = {p.name for p in (tmp_path / "charts").iterdir()}
    assert {"smiles.png", "iv_heatmap.png", "atm_term_structure.png"} <= names
    smiles = sorted(n for n in names if n.startswith("smile_"))
    # smile_<YYYY-MM-DD>_<root>.png for the expiries nearest 7/30/90/365 days (SPY here: 7 and 21 days)
    assert smiles == ["smile_2025-06-16_SPY.png", "smile_2025-06-30_SPY.png"]
    assert all(n.endswith(".png") for n in names)
    for n in names:
        assert (tmp_path / "charts" / n).read_bytes()[:4] == b"\x89PNG"
    assert res.stderr.count("wrote ") == len(names)


def test_write_surface_plots_svg(tmp_path):
    from plots.test_surface_plots import synthetic_surface

    from volsurf.cli.surface import write_surface_plots

    paths = write_surface_plots(synthetic_surface(), underlying="TEST", trade_date="2024-01-02",
                                plot_dir=tmp_path, svg=True, smile_days=(30.0,))
    names = sorted(p.split("/")[-1] for p in paths)
    assert "smiles.svg" in names and "iv_heatmap.svg" in names and "atm_term_structure.svg" in names
    assert "smile_30d.png" in names and "smile_30d.svg" in names  # synthetic labels are "<days>d"
    assert len([n for n in names if n.endswith(".svg")]) == len([n for n in names if n.endswith(".png")]) == 4
    svg = (tmp_path / "atm_term_structure.svg").read_text()
    assert "<svg" in svg[:2000]


def test_cli_svg_needs_plot():
    res = CliRunner().invoke(surface_cmd, [SPY, "--svg"])
    assert res.exit_code == 2 and "--plot" in res.output


def test_cli_help_has_an_example():
    res = CliRunner().invoke(surface_cmd, ["--help"])
    assert res.exit_code == 0 and "Example:" in res.output and "volsurf surface sample_chains/" in res.output


def test_cli_no_fittable_expiry_is_one_error_line(capsys):
    from volsurf.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["surface", SPY, "--min-days", "400"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error:")


def test_fit_from_enriched_empty_chain_raises():
    e = enrich_cached(SPY)
    with pytest.raises(DataError):
        fit_from_enriched(e.with_frame(e.frame.iloc[:0]))
