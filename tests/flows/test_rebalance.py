"""Rebalancing flow: hand-computed drifts and trades, bands, schedules on the real calendar, data and CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from volsurf.errors import DataError, FormatError, InputFileError, ParameterError, VolsurfError
from volsurf.flows.rebalance import (
    DEFAULT_AUM,
    bond_proxy_monthly_returns,
    bond_proxy_return,
    historical_rebalance_flows,
    load_bond_yields,
    load_price_series,
    period_return,
    rebalance_flow,
    rebalance_schedule,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SERIES = SHARED / "real_series"
SP500 = SERIES / "sp500_daily.csv"
YIELDS = SERIES / "corporate_bond_yields_monthly.csv"
needs_series = pytest.mark.skipif(not SP500.exists(), reason="shared real series not available")

D = dt.date


# --- the core ---------------------------------------------------------------------------------------------


def test_sixty_forty_after_equity_rally():
    # 0.6 x 1.2 = 0.72 equities, 0.4 bonds, book 1.12: equities 0.72 / 1.12 = 64.2857 %
    r = rebalance_flow({"equity": 0.20, "bond": 0.0}, aum=1e12)
    assert r.drifted_weights["equity"] == pytest.approx(0.72 / 1.12, abs=1e-12)
    assert round(100 * r.drifted_weights["equity"], 2) == 64.29
    assert r.trades_of_book["equity"] == pytest.approx(0.6 - 0.72 / 1.12)
    assert round(100 * r.trades_of_book["equity"], 2) == -4.29
    assert r.trades["equity"] == pytest.approx(-42.857142857e9, rel=1e-9)
    assert r.trades["bond"] == pytest.approx(42.857142857e9, rel=1e-9)
    assert r.book_return == pytest.approx(0.12)
    assert r.final_weights == pytest.approx({"equity": 0.6, "bond": 0.4})


def test_default_target_and_aum():
    r = rebalance_flow({"equity": 0.1, "bond": 0.0})
    assert r.target_weights == {"equity": 0.6, "bond": 0.4}
    assert r.aum == DEFAULT_AUM


def test_three_assets_by_hand():
    # grown: 0.5 x 1.10 = 0.55, 0.3 x 0.95 = 0.285, 0.2 x 1.20 = 0.24; book 1.075
    r = rebalance_flow(
        {"equity": 0.10, "bond": -0.05, "gold": 0.20}, {"equity": 0.5, "bond": 0.3, "gold": 0.2}, aum=100.0
    )
    assert r.drifted_weights == pytest.approx(
        {"equity": 0.55 / 1.075, "bond": 0.285 / 1.075, "gold": 0.24 / 1.075}
    )
    assert r.trades == pytest.approx(
        {
            "equity": 100 * (0.5 - 0.55 / 1.075),
            "bond": 100 * (0.3 - 0.285 / 1.075),
            "gold": 100 * (0.2 - 0.24 / 1.075),
        }
    )
    assert r.trades["bond"] == pytest.approx(3.48837, abs=1e-5)
    assert r.gross_traded == pytest.approx(3.48837, abs=1e-5)


def test_start_weights_off_target():
    # started 65/35, flat returns: sell 5 points of equities
    r = rebalance_flow({"equity": 0.0, "bond": 0.0}, start_weights={"equity": 0.65, "bond": 0.35}, aum=1.0)
    assert r.trades == pytest.approx({"equity": -0.05, "bond": 0.05})


def test_adv_multiple():
    r = rebalance_flow({"equity": 0.2, "bond": 0.0}, aum=1e12, adv=5e10)
    assert r.adv_multiple["equity"] == pytest.approx(-42.857142857e9 / 5e10)
    per_asset = rebalance_flow({"equity": 0.2, "bond": 0.0}, aum=1e12, adv={"equity": 5e11})
    assert per_asset.adv_multiple["equity"] == pytest.approx(-0.0857142857)
    assert math.isnan(per_asset.adv_multiple["bond"])


# --- bands ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("band", "trades"), [(0.05, False), (0.04, True), (0.0, True)])
def test_band_two_assets(band, trades):
    # drift is 4.2857 points
    r = rebalance_flow({"equity": 0.2, "bond": 0.0}, aum=1.0, band=band)
    assert r.rebalanced == {"equity": trades, "bond": trades}
    expected = -(0.72 / 1.12 - 0.6) if trades else 0.0
    assert r.trades["equity"] == pytest.approx(expected, abs=1e-15)


def test_band_three_assets_to_target_rest_pro_rata():
    # grown: 0.65, 0.306, 0.19 (book 1.146); drifts +6.72, -3.30, -3.42 points: only equities breach 5 points.
    r = rebalance_flow(
        {"equity": 0.30, "bond": 0.02, "gold": -0.05},
        {"equity": 0.5, "bond": 0.3, "gold": 0.2},
        aum=1.0,
        band=0.05,
    )
    assert r.rebalanced == {"equity": True, "bond": False, "gold": False}
    book = 1.146
    # equities back to 50 %; the other 50 % shared by bond and gold in their current ratio 0.306 : 0.19
    assert r.final_weights["equity"] == pytest.approx(0.5)
    assert r.final_weights["bond"] == pytest.approx(0.5 * 0.306 / 0.496)
    assert r.final_weights["gold"] == pytest.approx(0.5 * 0.19 / 0.496)
    assert r.trades["equity"] == pytest.approx(0.5 - 0.65 / book)
    assert r.trades["bond"] == pytest.approx(0.5 * 0.306 / 0.496 - 0.306 / book)
    assert sum(r.trades.values()) == pytest.approx(0.0, abs=1e-15)


# --- properties -------------------------------------------------------------------------------------------

returns = st.floats(min_value=-0.9, max_value=3.0, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(returns, min_size=2, max_size=6),
    st.floats(min_value=1.0, max_value=1e13),
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=0.2)),
)
def test_trades_are_self_financing(rets, aum, band):
    n = len(rets)
    names = [f"a{i}" for i in range(n)]
    target = {k: 1.0 / n for k in names}
    r = rebalance_flow(dict(zip(names, rets, strict=True)), target, aum=aum, band=band)
    assert sum(r.trades.values()) == pytest.approx(0.0, abs=1e-9 * aum)
    assert sum(r.drifted_weights.values()) == pytest.approx(1.0)
    assert sum(r.final_weights.values()) == pytest.approx(1.0)
    if band is None:
        assert r.final_weights == pytest.approx(target)
        # the best performer is sold, the worst bought (or nothing when all returns are equal)
        best, worst = names[rets.index(max(rets))], names[rets.index(min(rets))]
        assert r.trades[best] <= 1e-9 * aum and r.trades[worst] >= -1e-9 * aum


@settings(max_examples=40, deadline=None)
@given(returns, st.floats(min_value=0.05, max_value=0.95))
def test_equal_returns_no_trade(x, w):
    r = rebalance_flow({"a": x, "b": x}, {"a": w, "b": 1 - w}, aum=1e9)
    assert abs(r.trades["a"]) < 1e-3


# --- input errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"returns": {"equity": 0.1, "bond": 0}, "target_weights": {"equity": 0.6, "bond": 0.3}},
            "sum to 0.9",
        ),
        ({"returns": {"equity": 0.1}}, "do not match"),
        ({"returns": {"equity": 0.1, "bond": 0, "gold": 0}}, "do not match"),
        ({"returns": {"equity": -1.0, "bond": 0}}, "> -1"),
        ({"returns": {"equity": 0.1, "bond": 0}, "band": -0.1}, "band"),
        ({"returns": {"equity": 0.1, "bond": 0}, "aum": 0.0}, "aum"),
        ({"returns": {"equity": 0.1, "bond": 0}, "adv": -5.0}, "ADV"),
        ({"returns": {"equity": 0.1, "bond": 0}, "target_weights": {"equity": 1.2, "bond": -0.2}}, ">= 0"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        rebalance_flow(**kwargs)


# --- schedules on the real calendar -----------------------------------------------------------------------


def test_schedule_q1_2024_skips_good_friday():
    r = rebalance_flow({"equity": 0.2, "bond": 0.0}, aum=1e12)
    s = rebalance_schedule(r, D(2024, 2, 15), "quarter", 5)
    assert s.period_end == D(2024, 3, 28)
    assert s.days == (D(2024, 3, 22), D(2024, 3, 25), D(2024, 3, 26), D(2024, 3, 27), D(2024, 3, 28))
    assert s.amounts[:, 0] == pytest.approx([-42.857142857e9 / 5] * 5)
    rows = s.records()
    assert rows[-2]["cumulative_usd"] == pytest.approx(r.trades["equity"])
    assert {row["date"] for row in rows} == {d.isoformat() for d in s.days}


def test_schedule_year_end_2022_skips_christmas_observed():
    r = rebalance_flow({"equity": -0.2, "bond": -0.15}, aum=1e9)
    s = rebalance_schedule(r, D(2022, 7, 1), "year", 5, day_weights=[1, 1, 1, 1, 4])
    assert s.days == (D(2022, 12, 23), D(2022, 12, 27), D(2022, 12, 28), D(2022, 12, 29), D(2022, 12, 30))
    assert s.amounts[-1, 0] == pytest.approx(0.5 * r.trades["equity"])
    assert s.amounts.sum(axis=0) == pytest.approx([r.trades["equity"], r.trades["bond"]])


def test_schedule_month_ending_on_weekend():
    r = rebalance_flow({"equity": 0.05, "bond": 0.0}, aum=1.0, adv=0.1)
    s = rebalance_schedule(r, D(2024, 6, 3), "month", 3)
    assert s.days == (D(2024, 6, 26), D(2024, 6, 27), D(2024, 6, 28))
    assert s.adv_multiple[:, 0] == pytest.approx([r.adv_multiple["equity"] / 3] * 3)


def test_schedule_too_many_days():
    r = rebalance_flow({"equity": 0.05, "bond": 0.0})
    with pytest.raises(ParameterError, match="sessions"):
        rebalance_schedule(r, D(2024, 2, 1), "month", 25)


# --- returns from data ------------------------------------------------------------------------------------


def _write(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_price_csv_prefers_adj_close(tmp_path):
    p = _write(
        tmp_path / "eq.csv",
        [
            ["Date", "Close", "Adj Close"],
            ["2024-03-27", 100, 50],
            ["2024-03-28", 110, 60],
            ["2024-04-01", 120, 66],
        ],
    )
    s = load_price_series(p)
    assert s.iloc[-1] == 66
    # start on Good Friday (no row) uses the 03-28 close; 66 / 60 - 1
    assert period_return(s, "2024-03-29", "2024-04-01") == pytest.approx(0.1)


def test_price_csv_close_then_single_numeric(tmp_path):
    p1 = _write(tmp_path / "a.csv", [["date", "Open", "Close"], ["2024-01-02", 1, 10], ["2024-01-03", 1, 11]])
    assert load_price_series(p1).tolist() == [10, 11]
    p2 = _write(tmp_path / "b.csv", [["day", "px"], ["2024-01-02", 10], ["2024-01-03", 12]])
    assert period_return(load_price_series(p2), "2024-01-02", "2024-01-03") == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("rows", "error", "match"),
    [
        ([["date", "a", "b"], ["2024-01-02", 1, 2]], FormatError, "cannot tell which column"),
        ([["date", "Close"], ["2024-01-02", 1], ["not a date", 2]], FormatError, "line 3"),
        ([["date", "Close"], ["2024-01-02", "abc"]], FormatError, "non-numeric"),
        ([["date", "Close"], ["2024-01-02", 1], ["2024-01-02", 2]], FormatError, "duplicated"),
        ([["date", "Close"], ["2024-01-02", -1]], DataError, "non-positive"),
        ([["date", "Close"]], FormatError, "no data rows"),
    ],
)
def test_bad_price_csv(tmp_path, rows, error, match):
    p = _write(tmp_path / "bad.csv", rows)
    with pytest.raises(error, match=match):
        load_price_series(p)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_price_series(tmp_path / "nope.csv")


def test_return_outside_data(tmp_path):
    p = _write(tmp_path / "a.csv", [["date", "Close"], ["2024-01-02", 10], ["2024-01-03", 11]])
    with pytest.raises(DataError, match="on or before"):
        period_return(load_price_series(p), "2023-12-01", "2024-01-03")


def test_bond_proxy_by_hand():
    y = pd.Series([5.00, 5.10, 4.90], index=pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01"]))
    m = bond_proxy_monthly_returns(y, duration=6.0)
    # Feb: 5.00 %/12 carry - 6 x 0.10 %; Mar: 5.10 %/12 + 6 x 0.20 %
    assert m.tolist() == pytest.approx([0.05 / 12 - 6 * 0.001, 0.051 / 12 + 6 * 0.002])
    total = bond_proxy_return(y, "2020-01-31", "2020-03-31", duration=6.0)
    assert total == pytest.approx((1 + 0.05 / 12 - 0.006) * (1 + 0.051 / 12 + 0.012) - 1)
    with pytest.raises(DataError):
        bond_proxy_return(y, "2019-12-31", "2020-03-31")


# --- the real series --------------------------------------------------------------------------------------


def _raw_yields(months: list[str]) -> list[float]:
    """AAA yields (percent) for the given YYYY-MM months, read with the csv module (independent of the code)."""
    with YIELDS.open() as fh:
        table = {row["month"][:7]: float(row["AAA"]) for row in csv.DictReader(fh)}
    return [table[m] for m in months]


@needs_series
def test_yearly_flows_real_series():
    px = load_price_series(SP500)
    y = load_bond_yields(YIELDS)
    h = historical_rebalance_flows(px, y, "year", duration=6.0).set_index("period")
    assert list(h.index) == [str(yr) for yr in range(1999, 2019)]
    assert not h.loc["1999", "complete"] and h.loc["2000":, "complete"].all()
    # S&P 500 calendar-year price returns as published by S&P Dow Jones Indices
    published = {"2002": -0.2337, "2008": -0.3849, "2013": 0.2960, "2017": 0.1942, "2018": -0.0624}
    for year, ret in published.items():
        assert h.loc[year, "equity_return"] == pytest.approx(ret, abs=6e-5)
    # 2008 bond proxy by hand: carry y_{m-1}/12 minus 6 x change, Dec 2007 .. Dec 2008
    ys = [v / 100 for v in _raw_yields(["2007-12"] + [f"2008-{m:02d}" for m in range(1, 13)])]
    bond = math.prod(1 + ys[i - 1] / 12 - 6.0 * (ys[i] - ys[i - 1]) for i in range(1, 13)) - 1
    assert h.loc["2008", "bond_return"] == pytest.approx(bond, rel=1e-12)
    eq = 0.6 * (1 + h.loc["2008", "equity_return"])
    drifted = eq / (eq + 0.4 * (1 + bond))
    assert h.loc["2008", "drifted_equity_weight"] == pytest.approx(drifted)
    assert h.loc["2008", "equity_trade_pct"] == pytest.approx(100 * (0.6 - drifted))
    assert h.loc["2008", "equity_trade_pct"] > 10  # buy equities after the crash
    assert h.loc["2013", "equity_trade_pct"] < -5  # sell after +30 %
    assert h.loc["2008", "equity_trade_usd"] == pytest.approx(DEFAULT_AUM * (0.6 - drifted))


@needs_series
def test_quarterly_flows_real_series():
    h = historical_rebalance_flows(load_price_series(SP500), load_bond_yields(YIELDS), "quarter")
    assert len(h) == 80
    q = h.set_index("period").loc["2008Q4"]
    # 2008Q4 S&P 500: 1166.36 (2008-09-30) -> 903.25 (2008-12-31)
    assert q["equity_return"] == pytest.approx(903.25 / 1166.36 - 1, abs=1e-5)
    assert q["start"] == D(2008, 9, 30) and q["end"] == D(2008, 12, 31)


# --- CLI --------------------------------------------------------------------------------------------------


def _run_main(argv, capsys=None):
    res = run_cli(*argv)
    return res.exit_code, res.stdout, res.stderr


def test_cli_json_keys(capsys):
    code, out, _ = _run_main(
        ["rebalance", "--equity-return", "0.20", "--bond-return", "0", "--aum", "1e12", "--format", "json"],
        capsys,
    )
    assert code == 0
    obj = json.loads(out)
    for key in ("drifted_weights", "target_weights", "trades"):
        assert set(obj[key]) == {"equity", "bond"}
    assert obj["drifted_weights"]["equity"] == pytest.approx(0.72 / 1.12)
    assert obj["trades"]["equity"] == pytest.approx(-1e12 * (0.72 / 1.12 - 0.6))


def test_cli_three_assets_band_schedule():
    res = run_cli(*[
            "rebalance",
            "--weights",
            "equity=0.5,bond=0.3,gold=0.2",
            "--return",
            "equity=30%",
            "--return",
            "bond=0.02,gold=-0.05",
            "--band",
            "0.05",
            "--aum",
            "1",
            "--schedule-days",
            "5",
            "--period",
            "quarter",
            "--as-of",
            "2024-01-15",
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["rebalanced"] == {"equity": True, "bond": False, "gold": False}
    assert obj["schedule"]["days"] == ["2024-03-22", "2024-03-25", "2024-03-26", "2024-03-27", "2024-03-28"]
    assert obj["trades"]["equity"] == pytest.approx(0.5 - 0.65 / 1.146)


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_cli_other_formats(fmt):
    res = run_cli(*["rebalance", "--equity-return", "0.1", "--bond-return", "0.01", "--format", fmt]
    )
    assert res.exit_code == 0, res.output
    assert "equity" in res.output


@needs_series
def test_cli_returns_from_files():
    args = ["rebalance", "--equity-prices", str(SP500), "--bond-yields", str(YIELDS), "--format", "json"]
    res = run_cli(*[*args, "--start", "2007-12-31", "--end", "2008-12-31"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["returns"]["equity"] == pytest.approx(-0.3849, abs=6e-5)
    assert obj["trades"]["equity"] > 0
    hist = run_cli(*[*args, "--history", "year"])
    assert hist.exit_code == 0, hist.output
    assert len(json.loads(hist.stdout)["rows"]) == 20


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--equity-return", "0.1", "--bond-return", "0", "--weights", "equity=0.6,bond=0.3"], "sum to 0.9"),
        (
            ["--equity-prices", "does/not/exist.csv", "--start", "2020-01-01", "--end", "2020-02-01"],
            "not found",
        ),
        (["--equity-return", "abc", "--bond-return", "0"], "not a number"),
        (["--weights", "equity:0.6"], "not asset=value"),
        ([], "no returns given"),
    ],
)
def test_cli_errors_exit_2(capsys, argv, message):
    code, _, err = _run_main(["rebalance", *argv], capsys)
    assert code == 2
    assert err.startswith("Error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_cli_bad_csv_exit_2(tmp_path, capsys):
    bad = _write(tmp_path / "bad.csv", [["date", "Close"], ["2024-01-02", "x"]])
    code, _, err = _run_main(
        [
            "rebalance",
            "--equity-prices",
            str(bad),
            "--bond-return",
            "0",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-03",
        ],
        capsys,
    )
    assert code == 2 and "non-numeric" in err and "line 2" in err


def test_cli_errors_are_volsurf_errors():
    from volsurf.cli.main import cli

    with pytest.raises(VolsurfError):
        cli.main(
            ["rebalance", "--weights", "equity=0.7,bond=0.4", "--equity-return", "0"], standalone_mode=False
        )


def test_returns_since_rebalance_from_price_files():
    import datetime as dt

    from conftest import SHARED

    from volsurf.flows.rebalance import returns_since_rebalance

    sp = SHARED / "real_series" / "sp500_daily.csv"
    if not sp.exists():
        pytest.skip("no ../shared")
    # S&P 500 price return in 2013 was +29.60% (1426.19 -> 1848.36); in 2008 -38.49%.
    eq, _ = returns_since_rebalance(sp, sp, dt.date(2013, 12, 31), "year")
    assert eq == pytest.approx(1848.36 / 1426.19 - 1, abs=5e-5)
    eq, _ = returns_since_rebalance(sp, sp, dt.date(2008, 12, 31), "year")
    assert eq == pytest.approx(-0.3849, abs=5e-5)
    # quarter: from the 2013-09-30 close (1681.55) to 2013-12-31 (1848.36)
    eq, _ = returns_since_rebalance(sp, sp, dt.date(2013, 12, 31), "quarter")
    assert eq == pytest.approx(1848.36 / 1681.55 - 1, abs=5e-5)
