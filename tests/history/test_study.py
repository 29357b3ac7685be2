"""Quarter-end event study (volsurf.history.study) and ``volsurf study quarter-end``.

References are independent: a plain-pandas recomputation of the headline statistic on shared series, event
days known from the calendar, planted effects with exact answers, and scipy's permutation test, bootstrap and
Benjamini-Hochberg.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, run_cli
from scipy import stats

from volsurf.errors import DataError, ParameterError
from volsurf.history.study import (
    EVENT_SETS,
    SeriesInput,
    benjamini_hochberg,
    event_sessions,
    quarter_end_studies,
    quarter_end_study,
    ratio_series,
)
from volsurf.market.calendar import nyse, sessions_between

SERIES = SHARED / "real_series"


def require_series() -> None:
    if not SERIES.exists():
        pytest.skip("needs ../shared/real_series beside the checkout (the real data folder); not present")


def _sessions(start: str, end: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(sessions_between(start, end))


# --------------------------------------------------------------------------------------------------------
# Independent recomputation of the headline statistic (plain pandas + the exchange calendar)
# --------------------------------------------------------------------------------------------------------


def _independent_headline(values: pd.Series, lookback: int) -> dict[str, tuple[float, int]]:
    """Mean of value(T0) - value(T-N) per event set, written from the issue's definition only."""
    cal = pd.DatetimeIndex(nyse().sessions)
    values = values.dropna()
    first, last = values.index.min(), values.index.max()
    by_month = pd.Series(cal, index=cal).groupby(cal.to_period("M")).max()
    month_ends = pd.DatetimeIndex(by_month.to_numpy())
    month_ends = month_ends[(month_ends >= first) & (month_ends <= last)]
    out = {}
    for name, keep in (
        ("quarter_end", month_ends.month.isin([3, 6, 9, 12])),
        ("other_month_end", ~month_ends.month.isin([3, 6, 9, 12])),
    ):
        deltas = []
        for t0 in month_ends[keep]:
            i = cal.get_loc(t0)
            tn = cal[i - lookback]
            if t0 in values.index and tn in values.index:
                deltas.append(values[t0] - values[tn])
        out[name] = (float(np.mean(deltas)), len(deltas))
    return out


@pytest.mark.parametrize(
    ("rel", "column", "lookback"),
    [
        ("cboe_indices/SKEW_History.csv", "SKEW", 10),
        ("treasury_yields/DGS10.csv", "DGS10", 5),  # FRED '.' for missing: those events drop out
    ],
)
def test_headline_matches_plain_pandas(rel, column, lookback):
    require_series()
    path = SERIES / rel
    raw = pd.read_csv(path, na_values=["."])
    dates = pd.to_datetime(raw.iloc[:, 0], format="mixed")
    values = pd.Series(raw[column].to_numpy(float), index=dates)
    ref = _independent_headline(values, lookback)

    from volsurf.io.series import read_dated_series

    s = read_dated_series(path, column=column, missing="drop")
    r = quarter_end_study(s, lookback=lookback, n_bootstrap=200, n_permutations=200)
    for name in ("quarter_end", "other_month_end"):
        assert r.sets[name].mean_change == pytest.approx(ref[name][0], abs=1e-9)
        assert r.sets[name].n_events == ref[name][1]
    diff = ref["quarter_end"][0] - ref["other_month_end"][0]
    assert r.difference == pytest.approx(diff, abs=1e-9)


def test_skew_event_counts_span_from_1990():
    require_series()
    from volsurf.io.series import read_dated_series

    s = read_dated_series(SERIES / "cboe_indices/SKEW_History.csv", missing="drop")
    r = quarter_end_study(s, n_bootstrap=200, n_permutations=200)
    assert r.span == ("1990-01-02", "2026-07-22")
    # 1990-03-30 is the first quarter-end with 10 sessions of history; 2026-06-30 the last before 07-22
    qe = r.sets["quarter_end"].events
    assert str(qe[0]) == "1990-03-30" and str(qe[-1]) == "2026-06-30"
    assert str(r.sets["year_end"].events[0]) == "1990-12-31"


# --------------------------------------------------------------------------------------------------------
# Event days
# --------------------------------------------------------------------------------------------------------


def test_event_days_2024():
    d = lambda kind: [str(x) for x in event_sessions(kind, "2024-01-01", "2024-12-31")]  # noqa: E731
    # 2024-03-29 was Good Friday: the quarter ended on Thursday 03-28
    assert d("quarter_end") == ["2024-03-28", "2024-06-28", "2024-09-30", "2024-12-31"]
    assert d("other_month_end") == [
        "2024-01-31", "2024-02-29", "2024-04-30", "2024-05-31", "2024-07-31", "2024-08-30", "2024-10-31", "2024-11-29",
    ]
    assert d("year_end") == ["2024-12-31"]
    assert d("quarterly_expiration") == ["2024-03-15", "2024-06-21", "2024-09-20", "2024-12-20"]


def test_quarterly_expiration_moves_before_a_holiday():
    # Good Friday 2008-03-21: the March expiration moved to Thursday 03-20
    assert "2008-03-20" in [str(x) for x in event_sessions("quarterly_expiration", "2008-01-01", "2008-12-31")]


def test_events_clipped_to_span():
    days = event_sessions("quarter_end", "2024-03-29", "2024-12-30")
    assert [str(x) for x in days] == ["2024-06-28", "2024-09-30"]
    with pytest.raises(ParameterError):
        event_sessions("month_end", "2024-01-01", "2024-12-31")


# --------------------------------------------------------------------------------------------------------
# Planted effects (exact answers)
# --------------------------------------------------------------------------------------------------------


def _planted(start="2000-01-03", end="2019-12-31", bump=5.0, noise=0.0, seed=1) -> pd.Series:
    """Zero everywhere (plus noise), ``bump`` on quarter-end sessions."""
    idx = _sessions(start, end)
    rng = np.random.default_rng(seed)
    v = noise * rng.standard_normal(idx.size)
    qe = pd.DatetimeIndex(event_sessions("quarter_end", start, end).astype("datetime64[ns]"))
    v[idx.isin(qe)] += bump
    return pd.Series(v, index=idx, name="planted")


def test_planted_effect_exact():
    s = _planted()
    r = quarter_end_study(s, n_bootstrap=500, n_permutations=2000)
    assert r.sets["quarter_end"].n_events == 80 and r.sets["other_month_end"].n_events == 160
    assert r.sets["quarter_end"].mean_change == pytest.approx(5.0, abs=1e-12)
    assert r.sets["other_month_end"].mean_change == pytest.approx(0.0, abs=1e-12)
    assert r.difference == pytest.approx(5.0, abs=1e-12)
    assert r.difference_ci95 == pytest.approx((5.0, 5.0), abs=1e-12)
    # no relabelling reaches the observed difference: the smallest attainable p-value
    assert r.p_value == pytest.approx(1 / 2001)
    # year-ends are quarter-ends (bump 5); expiry Fridays are never quarter-ends here (bump 0 at both ends)
    assert r.sets["year_end"].mean_change == pytest.approx(5.0)
    assert r.sets["quarterly_expiration"].mean_change == pytest.approx(0.0)


def test_path_shape_and_anchors():
    s = _planted(noise=1.0)
    r = quarter_end_study(s, lookback=7, horizon=4, n_bootstrap=300, n_permutations=300)
    for es in r.sets.values():
        assert list(es.offsets) == list(range(-7, 5))
        assert es.paths.shape == (es.n_events, 12)
        np.testing.assert_allclose(es.paths[:, 0], 0.0)
        np.testing.assert_allclose(es.paths[:, 7], es.deltas)
        assert es.path_mean[7] == pytest.approx(es.mean_change)
        assert np.all(es.path_lo <= es.path_mean + 1e-12) and np.all(es.path_mean <= es.path_hi + 1e-12)
    # the path of a quarter-end event is the raw series difference, session by session
    qe = r.sets["quarter_end"]
    t0 = pd.Timestamp(qe.events[3])
    i = s.index.get_loc(t0)
    np.testing.assert_allclose(qe.paths[3], s.iloc[i - 7 : i + 5].to_numpy() - s.iloc[i - 7])


def test_missing_value_drops_the_event():
    s = _planted(noise=1.0)
    full = quarter_end_study(s, n_bootstrap=200, n_permutations=200)
    t0 = pd.Timestamp(full.sets["quarter_end"].events[5])
    t_n = s.index[s.index.get_loc(t0) - 10]
    gap = s.drop([t0])
    gap2 = s.drop([t_n])
    for g in (gap, gap2):
        r = quarter_end_study(g, n_bootstrap=200, n_permutations=200)
        assert r.sets["quarter_end"].n_events == full.sets["quarter_end"].n_events - 1
        assert t0.to_datetime64().astype("datetime64[D]") not in r.sets["quarter_end"].events


def test_events_use_exchange_sessions_not_series_rows():
    # a series with a value every calendar day (weekends too): T-N counts NYSE sessions, not rows
    days = pd.date_range("2015-01-01", "2018-12-31", freq="D")
    s = pd.Series(np.arange(days.size, dtype=float), index=days)
    r = quarter_end_study(s, lookback=10, n_bootstrap=200, n_permutations=200)
    qe = r.sets["quarter_end"]
    for t0, d in zip(qe.events, qe.deltas, strict=True):
        cal = _sessions("2014-12-01", str(t0))
        tn = cal[-11]
        assert d == pytest.approx((pd.Timestamp(t0) - tn).days)
    assert any("non-session" in n for n in r.notes)


# --------------------------------------------------------------------------------------------------------
# Resampling statistics against scipy
# --------------------------------------------------------------------------------------------------------


def _one_year(seed=3) -> pd.Series:
    idx = _sessions("2021-12-01", "2022-12-31")
    rng = np.random.default_rng(seed)
    return pd.Series(np.cumsum(rng.standard_normal(idx.size)), index=idx)


def test_permutation_p_value_matches_exact_scipy():
    s = _one_year()
    r = quarter_end_study(s, n_bootstrap=200, n_permutations=40_000, seed=11)
    qe, om = r.sets["quarter_end"].deltas, r.sets["other_month_end"].deltas
    assert (qe.size, om.size) == (5, 8)  # 2021-12-31 and the four of 2022

    def stat(x, y):
        return np.abs(np.mean(x) - np.mean(y))

    exact = stats.permutation_test(
        (qe, om), stat, permutation_type="independent", alternative="greater", n_resamples=np.inf
    ).pvalue
    assert r.p_value == pytest.approx(exact, abs=0.01)


def test_bootstrap_interval_matches_scipy():
    s = _planted(noise=2.0)
    r = quarter_end_study(s, n_bootstrap=20_000, n_permutations=200, seed=5)
    qe, om = r.sets["quarter_end"].deltas, r.sets["other_month_end"].deltas
    ref = stats.bootstrap(
        (qe, om),
        lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        method="percentile",
        n_resamples=20_000,
        rng=np.random.default_rng(0),
    ).confidence_interval
    width = ref.high - ref.low
    assert r.difference_ci95[0] == pytest.approx(ref.low, abs=0.03 * width)
    assert r.difference_ci95[1] == pytest.approx(ref.high, abs=0.03 * width)
    ref_qe = stats.bootstrap((qe,), np.mean, method="percentile", n_resamples=20_000, rng=np.random.default_rng(1))
    w = ref_qe.confidence_interval.high - ref_qe.confidence_interval.low
    assert r.sets["quarter_end"].ci95[0] == pytest.approx(ref_qe.confidence_interval.low, abs=0.03 * w)


def test_seeded_and_order_independent():
    a, b = _planted(noise=1.0, seed=1), _one_year()
    r1 = quarter_end_studies([SeriesInput("a", "v", a), SeriesInput("b", "v", b)], n_bootstrap=300, n_permutations=300)
    r2 = quarter_end_studies([SeriesInput("b", "v", b), SeriesInput("a", "v", a)], n_bootstrap=300, n_permutations=300)
    assert r1[0].difference_ci95 == r2[1].difference_ci95 and r1[0].p_value == r2[1].p_value
    assert r1[0].q_value == r2[1].q_value


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, size=25)
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p), atol=1e-15)
    with_nan = np.r_[p[:5], np.nan]
    q = benjamini_hochberg(with_nan)
    assert math.isnan(q[-1])
    np.testing.assert_allclose(q[:5], stats.false_discovery_control(p[:5]), atol=1e-15)


def test_q_values_across_run():
    inputs = [SeriesInput(n, "v", s) for n, s in (("a", _planted(noise=1.0)), ("b", _one_year()))]
    rs = quarter_end_studies(inputs, n_bootstrap=200, n_permutations=500)
    np.testing.assert_allclose([r.q_value for r in rs], stats.false_discovery_control([r.p_value for r in rs]))


# --------------------------------------------------------------------------------------------------------
# Transforms, ratios, errors, JSON shape
# --------------------------------------------------------------------------------------------------------


def test_log_transform_is_log_return():
    s = np.exp(_planted(noise=0.01)) * 100
    r = quarter_end_study(s, transform="log", n_bootstrap=200, n_permutations=200)
    assert r.difference == pytest.approx(5.0, abs=0.1)
    with pytest.raises(DataError, match="<= 0"):
        quarter_end_study(s - 200, transform="log")


def test_ratio_series_common_dates():
    a = pd.Series([1.0, 2.0, 3.0], index=pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]), name="A")
    b = pd.Series([2.0, 4.0], index=pd.to_datetime(["2024-01-03", "2024-01-04"]), name="B")
    out = ratio_series(a, b)
    assert out.name == "A/B" and out.tolist() == [1.0, 0.75]
    with pytest.raises(DataError):
        ratio_series(a, b.set_axis(pd.to_datetime(["2020-01-02", "2020-01-03"])))


def test_bad_parameters():
    s = _one_year()
    with pytest.raises(ParameterError):
        quarter_end_study(s, lookback=0)
    with pytest.raises(ParameterError):
        quarter_end_study(s, transform="sqrt")
    with pytest.raises(DataError, match="too few"):
        quarter_end_study(s.iloc[:5])


def test_json_shape():
    r = quarter_end_studies([SeriesInput("p", "v", _planted(noise=1.0))], n_bootstrap=200, n_permutations=200)[0]
    d = r.to_dict()
    for k in ("name", "column", "span", "lookback", "difference", "difference_ci95", "p_value", "q_value", "path"):
        assert k in d
    for k in EVENT_SETS:
        assert set(d[k]) >= {"mean_change", "n_events"}
    assert len(d["path"]) == 4 * 21 and set(d["path"][0]) == {"event_set", "offset", "mean", "ci_lo", "ci_hi", "n_events"}
    from volsurf._json import dumps_json

    assert json.loads(dumps_json(d))["span"] == list(r.span)


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------


def _cboe_file(path: Path, s: pd.Series, bom: bool = False) -> Path:
    lines = ["DATE,OPEN,HIGH,LOW,CLOSE"]
    lines += [f"{d:%m/%d/%Y},{v + 1:.6f},{v + 2:.6f},{v:.6f},{v + 100:.6f}" for d, v in s.items()]
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_cli_json(tmp_path):
    f = _cboe_file(tmp_path / "X_History.csv", _planted(noise=0.5), bom=True)
    res = run_cli("study", "quarter-end", f, "--resamples", "300", "--format", "json")
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    (one,) = obj["series"]
    assert one["name"] == "X_History" and one["column"] == "CLOSE" and one["lookback"] == 10
    assert one["difference"] == pytest.approx(5.0, abs=0.5)
    assert one["quarter_end"]["n_events"] == 80 and len(one["difference_ci95"]) == 2
    assert one["q_value"] == pytest.approx(one["p_value"])


def test_cli_table_csv_paths_plot_ratio(tmp_path):
    a = _cboe_file(tmp_path / "A.csv", _planted(noise=0.5))
    b = _cboe_file(tmp_path / "B.csv", _planted(noise=0.5, seed=2))
    res = run_cli("study", "quarter-end", f"{a}:LOW", "--ratio", f"{a}:{b}", "--resamples", "200", "--plot",
                  tmp_path / "img")
    assert res.exit_code == 0, res.output
    assert "A:LOW" in res.stdout and "A/B" in res.stdout and "difference" in res.stdout
    pngs = sorted(p.name for p in (tmp_path / "img").glob("*.png"))
    assert pngs == ["quarter_end_a_b.png", "quarter_end_a_low.png"]
    res = run_cli("study", "quarter-end", a, "--resamples", "200", "--format", "csv")
    rows = res.stdout.strip().splitlines()
    assert rows[0].startswith("series,column,first,last,n_qe,qe_mean") and len(rows) == 2
    res = run_cli("study", "quarter-end", a, "--resamples", "200", "--paths", "--format", "csv", "--horizon", "3")
    rows = res.stdout.strip().splitlines()
    assert rows[0] == "series,event_set,offset,mean,ci_lo,ci_hi,n_events" and len(rows) == 1 + 4 * 14


def test_cli_errors(tmp_path):
    a = _cboe_file(tmp_path / "A.csv", _one_year())
    res = run_cli("study", "quarter-end", f"{a}:NOPE")
    assert res.exit_code == 2 and "no column 'NOPE'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("study", "quarter-end")
    assert res.exit_code == 2 and "no series given" in res.stderr
    res = run_cli("study", "quarter-end", tmp_path / "missing.csv")
    assert res.exit_code == 2 and "not found" in res.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("DATE,CLOSE\n01/02/2024,1\n01/03/2024,abc\n")
    res = run_cli("study", "quarter-end", bad)
    assert res.exit_code == 2 and "line 3" in res.stderr and "'CLOSE'" in res.stderr


def test_cli_help_has_example():
    res = run_cli("study", "quarter-end", "--help")
    assert res.exit_code == 0 and "Example:" in res.stdout and "--lookback" in res.stdout
    res = run_cli("study", "--help")
    assert "quarter-end" in res.stdout


def test_cli_column_option_and_log_suffix(tmp_path):
    s = np.exp(_planted(noise=0.01)) * 100  # CLOSE = this + 100 in the file; LOW = this
    a = _cboe_file(tmp_path / "P.csv", s)
    res = run_cli("study", "quarter-end", f"{a}:LOW:log", "--resamples", "200", "--format", "json")
    assert res.exit_code == 0, res.output
    (one,) = json.loads(res.stdout)["series"]
    assert one["name"] == "P:LOW" and one["column"] == "LOW" and one["transform"] == "log"
    assert one["difference"] == pytest.approx(5.0, abs=0.1)  # log(e^5 x) - log(x)
    res = run_cli("study", "quarter-end", a, "--column", "low", "--resamples", "200", "--format", "json")
    (one,) = json.loads(res.stdout)["series"]
    assert one["column"] == "LOW" and one["transform"] == "level"
    res = run_cli("study", "quarter-end", f"{a}:LOW:log:extra")
    assert res.exit_code == 2 and "too many ':' parts" in res.stderr
