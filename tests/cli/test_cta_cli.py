"""``volsurf cta`` and ``volsurf divergence``: JSON keys and values against hand computations, CSV, table, charts,
help text and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest


def _run_main(argv, capsys):
    from volsurf.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cta")
    days = pd.bdate_range("2021-01-04", periods=420)
    r = 0.0005 + 0.01 * np.where(np.arange(days.size - 1) % 2 == 0, 1.0, -1.0)
    px = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    rng = np.random.default_rng(5)
    ndx = px * np.exp(np.cumsum(0.003 * rng.standard_normal(px.size)))
    broad = d / "broad.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "Close": px, "Volume": 1e6}).to_csv(broad, index=False)
    narrow = d / "narrow.csv"
    pd.DataFrame({"fecha": days.strftime("%Y-%m-%d"), "NDX_close": ndx, "VIX_close": 20.0}).to_csv(
        narrow, index=False
    )
    return {"broad": str(broad), "narrow": str(narrow), "px": px, "days": days, "dir": d}


def test_cta_json(files, capsys):
    code, out, _ = _run_main(["cta", files["broad"], "--adv", "1e11", "--format", "json"], capsys)
    assert code == 0
    obj = json.loads(out)
    assert {"date", "price", "position", "notional_usd", "lookbacks", "scenarios", "realized_vol"} <= set(obj)
    px = files["px"]
    assert obj["date"] == files["days"][-1].date().isoformat()
    assert obj["price"] == pytest.approx(px[-1])
    vol = np.std(np.diff(np.log(px))[-63:], ddof=1) * math.sqrt(252)
    assert obj["realized_vol"] == pytest.approx(vol)
    w = min(0.10 / vol, 1.5)  # steady rise: every lookback long
    assert obj["position"] == pytest.approx(w / 1.5)
    assert obj["notional_usd"] == pytest.approx(300e9 * 0.25 * w)
    assert [lb["days"] for lb in obj["lookbacks"]] == [21, 63, 126, 252]
    for lb in obj["lookbacks"]:
        assert {"days", "signal", "position", "trigger_price", "distance_pct"} <= set(lb)
        assert lb["trigger_price"] == pytest.approx(px[px.size - lb["days"]])
        assert lb["distance_pct"] == pytest.approx(100 * (px[px.size - lb["days"]] / px[-1] - 1))
    assert [s["name"] for s in obj["scenarios"]] == ["down_2vol", "down_1vol", "flat", "up_1vol", "up_2vol"]
    for s in obj["scenarios"]:
        assert {"name", "price", "position", "flow_usd"} <= set(s)
        assert s["flow_share_of_adv"] == pytest.approx(s["flow_usd"] / 1e11)


def test_cta_options_table_csv_and_plots(files, capsys, tmp_path):
    code, out, _ = _run_main(
        ["cta", files["broad"], "--lookbacks", "10,40", "--aum", "1e11", "--date", "2022-06-01"], capsys
    )
    assert code == 0
    assert "Scenarios" in out and "Lookbacks" in out and "2022-06-01" in out
    code, out, _err = _run_main(
        ["cta", files["broad"], "--format", "csv", "--rule", "zscore", "--plot", str(tmp_path)], capsys
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["section"] for r in rows] == ["lookback"] * 4 + ["scenario"] * 5
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 3 and any("scenarios" in p for p in pngs)
    code, out, _ = _run_main(["cta", files["broad"], "--history", "--format", "json"], capsys)
    assert code == 0
    obj = json.loads(out)
    assert obj["years_made_money"] + obj["years_lost_money"] == obj["years"] == len(obj["rows"])


def test_cta_column_option(files, capsys):
    code, out, _ = _run_main(["cta", files["narrow"], "--column", "ndx_close", "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out)["column"] == "NDX_close"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cta", "nope.csv"], "not found"),
        (["cta", "{broad}", "--column", "Open"], "Open"),
        (["cta", "{broad}", "--lookbacks", "x,y"], "lookbacks"),
        (["cta", "{broad}", "--lookbacks", "21,630"], "too few"),
        (["cta", "{broad}", "--adv", "-5"], "--adv"),
        (["cta", "{broad}", "--date", "1990-01-02"], "no price"),
        (["cta", "{narrow}"], "column"),
        (["divergence", "{broad}", "{narrow}"], "column"),
        (["divergence", "{broad}", "{narrow}", "--narrow-column", "NDX_close", "--window", "400"], "share"),
    ],
)
def test_errors_one_line(files, capsys, argv, message):
    argv = [a.format(**files) for a in argv]
    code, _, err = _run_main(argv, capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
    assert "Traceback" not in err


def test_divergence_json_csv_and_plot(files, capsys, tmp_path):
    base = ["divergence", files["broad"], files["narrow"], "--narrow-column", "NDX_close"]
    code, out, _ = _run_main([*base, "--window", "10", "--format", "json"], capsys)
    assert code == 0
    obj = json.loads(out)
    assert obj["window"] == 10 and obj["baseline"] == 252
    assert obj["days_in_window"] + obj["days_outside"] == 420 - 10 - 252
    # hand: the last spread over 10 sessions
    b = files["px"]
    nd = pd.read_csv(files["narrow"])["NDX_close"].to_numpy()
    assert obj["last"]["spread"] == pytest.approx((b[-1] / b[-11] - 1) - (nd[-1] / nd[-11] - 1))
    assert {"frequency", "flag_days", "rate_in_window", "rate_outside"} <= set(obj)
    code, out, _err = _run_main(
        [*base, "--flags", "--format", "csv", "--threshold", "1.0", "--plot", str(tmp_path)], capsys
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and all(abs(float(r["z"])) >= 1.0 for r in rows)
    assert len(list(tmp_path.glob("*divergence.png"))) == 1
    code, out, _ = _run_main(base, capsys)
    assert code == 0 and "inside quarter-end window" in out


@pytest.mark.parametrize("cmd", ["cta", "divergence"])
def test_help_has_examples(cmd):
    from click.testing import CliRunner

    from volsurf.cli.cta import cta_cmd, divergence_cmd

    res = CliRunner().invoke({"cta": cta_cmd, "divergence": divergence_cmd}[cmd], ["--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.output and f"volsurf {cmd} " in res.output
    assert "--format" in res.output


def test_listed_in_main_help(capsys):
    from volsurf.cli.main import COMMANDS

    assert COMMANDS["cta"][:2] == ("volsurf.cli.cta", "cta_cmd")
    assert COMMANDS["divergence"][:2] == ("volsurf.cli.cta", "divergence_cmd")
