"""Volume spikes: hand-computed baselines, planted month-end spikes, known market events, CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from volsurf.errors import DataError, FormatError, InputFileError, ParameterError
from volsurf.flows.volume import detect_volume_spikes, load_volume_series, spike_clustering
from volsurf.market.calendar import sessions_between

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SP500 = SHARED / "real_series" / "sp500_daily.csv"
needs_series = pytest.mark.skipif(not SP500.exists(), reason="shared real series not available")

D = dt.date

# Last NYSE session of each month of 2023, from the holiday calendar (weekends and Good Friday not involved
# except: April 30 Sunday -> Friday 28, September 30 Saturday -> Friday 29, December 31 Sunday -> Friday 29).
MONTH_ENDS_2023 = [
    D(2023, 1, 31),
    D(2023, 2, 28),
    D(2023, 3, 31),
    D(2023, 4, 28),
    D(2023, 5, 31),
    D(2023, 6, 30),
    D(2023, 7, 31),
    D(2023, 8, 31),
    D(2023, 9, 29),
    D(2023, 10, 31),
    D(2023, 11, 30),
    D(2023, 12, 29),
]


def _series(days, values) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.to_datetime(days))


def test_ratio_by_hand():
    days = sessions_between(D(2024, 1, 2), D(2024, 1, 10))[:5]
    s = detect_volume_spikes(_series(days, [10, 20, 30, 40, 100]), window=3, threshold=2.0).frame
    # day 4: 40 / median(10, 20, 30) = 2; day 5: 100 / median(20, 30, 40) = 10/3
    assert s["ratio"].iloc[:3].isna().all()
    assert s["ratio"].iloc[3:].tolist() == pytest.approx([2.0, 100 / 30])
    assert s["baseline"].iloc[3:].tolist() == pytest.approx([20.0, 30.0])
    assert s["spike"].tolist() == [False, False, False, True, True]
    # robust z on day 5: window logs log 20, log 30, log 40; median log 30; deviations 0.405 and 0.288 -> MAD
    # log(40/30)
    z = (np.log(100) - np.log(30)) / (1.4826 * np.log(40 / 30))
    assert s["robust_z"].iloc[4] == pytest.approx(z)


def _planted_2023(multiplier: float = 3.0) -> pd.Series:
    days = sessions_between(D(2022, 11, 1), D(2023, 12, 29))
    rng = np.random.default_rng(7)
    vol = 1e9 * np.exp(rng.normal(0.0, 0.05, len(days)))
    idx = pd.to_datetime(days)
    planted = idx.isin(pd.to_datetime(MONTH_ENDS_2023))
    vol[planted] *= multiplier
    return pd.Series(vol, index=idx)


def test_planted_month_end_spikes_found_and_clustered():
    spikes = detect_volume_spikes(_planted_2023())
    f = spikes.frame
    flagged = set(f.loc[f["spike"], "date"])
    assert flagged == set(MONTH_ENDS_2023)
    assert (f.set_index("date").loc[MONTH_ENDS_2023, "month_end_rank"] == 0).all()
    rows = {r.window: r for r in spike_clustering(spikes, last_n=1)}
    m = rows["last 1 of month"]
    # scored month-ends: 2022-11-30 (the 21st session of the series) and 2022-12-30, unplanted, plus 12
    assert (m.n_in, m.spikes_in, m.spikes_out) == (14, 12, 0)
    assert m.rate_in == pytest.approx(12 / 14) and m.p_value < 1e-10
    q = rows["last 1 of quarter"]
    assert (q.n_in, q.spikes_in) == (5, 4)
    # quad witching days of 2023 (03-17, 06-16, 09-15, 12-15) carry no planted spike
    assert rows["quad witching (control)"].spikes_in == 0


def test_no_spike_in_flat_noise():
    days = sessions_between(D(2023, 1, 3), D(2023, 12, 29))
    vol = 1e9 * np.exp(np.random.default_rng(1).normal(0.0, 0.05, len(days)))
    spikes = detect_volume_spikes(_series(days, vol))
    # log(1.5) = 0.41 is 8 standard deviations of this noise
    assert spikes.n_spikes == 0
    assert spikes.n_scored == len(days) - 20


@pytest.mark.parametrize(("kwargs", "match"), [({"window": 2}, "window"), ({"threshold": 1.0}, "threshold")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        detect_volume_spikes(_planted_2023(), **kwargs)


def test_zero_volume_rejected():
    v = _planted_2023()
    v.iloc[30] = 0.0
    with pytest.raises(DataError, match="zero"):
        detect_volume_spikes(v)


def test_too_short():
    with pytest.raises(DataError, match="baseline"):
        detect_volume_spikes(_planted_2023().iloc[:10])


def _write(path: Path, rows) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_volume_csv_reader(tmp_path):
    p = _write(
        tmp_path / "v.csv", [["Date", "Close", "Volume"], ["2024-01-03", 1, 200], ["2024-01-02", 1, 100]]
    )
    s = load_volume_series(p)
    assert s.tolist() == [100, 200]  # sorted by date
    with pytest.raises(InputFileError):
        load_volume_series(tmp_path / "missing.csv")
    bad = _write(tmp_path / "b.csv", [["date", "volume"], ["2024-01-02", "lots"]])
    with pytest.raises(FormatError, match="line 2"):
        load_volume_series(bad)


# --- the real S&P 500 series ------------------------------------------------------------------------------


@needs_series
def test_sp500_known_events_flagged():
    f = detect_volume_spikes(load_volume_series(SP500)).frame.set_index("date")
    assert len(f) == 5031
    # reopening after September 11, the flash crash, the day after the Brexit vote
    for day in (D(2001, 9, 17), D(2010, 5, 6), D(2016, 6, 24)):
        assert f.loc[day, "spike"], day
    # the last session of each year is quiet (holiday week): never flagged
    assert not f.loc[f["year_end_rank"] == 0, "spike"].any()


@needs_series
def test_sp500_quad_witching_control():
    rows = {r.window: r for r in spike_clustering(detect_volume_spikes(load_volume_series(SP500)), last_n=3)}
    ctrl = rows["quad witching (control)"]
    # 20 years x 4 quarterly expiries; those sessions are famous for index-expiry and index-rebalance volume
    assert ctrl.n_in == 80
    assert ctrl.rate_ratio > 10 and ctrl.p_value < 1e-10
    m = rows["last 3 of month"]
    # 240 months x 3 sessions, less January 1999 whose last sessions fall in the first 20 (unscored) days
    assert m.n_in == 20 * 12 * 3 - 3
    assert m.n_in + m.n_out == 5011


# --- CLI --------------------------------------------------------------------------------------------------


def test_cli_json(tmp_path):
    v = _planted_2023()
    p = _write(tmp_path / "v.csv", [["date", "volume"], *[[d.date().isoformat(), x] for d, x in v.items()]])
    res = run_cli(*["volume-spikes", str(p), "--last-n", "1", "--format", "json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["spikes"] == 12
    assert obj["clustering"][0]["window"] == "last 1 of month"
    assert obj["clustering"][0]["spikes_in"] == 12
    assert {d["date"] for d in obj["spike_days"]} == {d.isoformat() for d in MONTH_ENDS_2023}
    res = run_cli(*["volume-spikes", str(p), "--spikes", "--format", "csv"])
    assert res.exit_code == 0 and len(res.stdout.strip().splitlines()) == 13


def test_cli_missing_file_exit_2():
    res = run_cli("volume-spikes", "no/such/file.csv")
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: no/such/file.csv: file not found")
