"""Dated-series reader (volsurf.io.series): layouts of public daily files, column choice, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED

from volsurf.errors import DataError, FormatError, InputFileError, ParameterError
from volsurf.io.series import read_dated_frame, read_dated_series

SERIES = SHARED / "real_series"


def _w(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_cboe_mm_dd_yyyy_and_close_preferred(tmp_path):
    p = _w(tmp_path / "VIX_History.csv", "DATE,OPEN,HIGH,LOW,CLOSE\n01/02/1990,17.24,17.5,17,17.3\n01/03/1990,18,18,18,18.19\n")
    s = read_dated_series(p, prefer=("CLOSE",))
    assert s.name == "CLOSE" and s.tolist() == [17.3, 18.19]
    assert list(s.index) == [pd.Timestamp("1990-01-02"), pd.Timestamp("1990-01-03")]  # month first, as Cboe


def test_unpadded_us_dates_crlf_and_blanks(tmp_path):
    # the layout of Cboe's old totalpc.csv: M/D/YYYY, Windows line ends, blanks after the commas
    p = _w(tmp_path / "pc.csv", "DATE,CALLS,PUTS,TOTAL,Ratio\r\n11/1/2006, 1401036, 1271445, 2672481, 0.91\r\n"
           "10/04/2019, 2175006, 2289715, 4464721, 1.05\r\n")
    s = read_dated_series(p, column="ratio")
    assert s.name == "Ratio" and s.tolist() == [0.91, 1.05]
    assert s.index[0] == pd.Timestamp("2006-11-01") and s.index[1] == pd.Timestamp("2019-10-04")


def test_day_first_when_month_first_fails(tmp_path):
    p = _w(tmp_path / "eu.csv", "Datum,Wert\n13/02/2024,1\n01/03/2024,2\n")
    s = read_dated_series(p)
    assert list(s.index) == [pd.Timestamp("2024-02-13"), pd.Timestamp("2024-03-01")]


def test_bom_and_foreign_date_header(tmp_path):
    p = _w(tmp_path / "pcr.csv", "\ufeffFecha,TOTAL,INDEX\n2024-01-02,1.0,1.2\n2024-01-03,0.9,1.1\n")
    s = read_dated_series(p, column="INDEX")
    assert s.tolist() == [1.2, 1.1] and s.index[0] == pd.Timestamp("2024-01-02")
    f = read_dated_frame(p)
    assert list(f.columns) == ["TOTAL", "INDEX"] and f.index.name == "Fecha"


def test_latin1_file(tmp_path):
    p = _w(tmp_path / "l1.csv", "Fecha,Índice\n2024-01-02,5\n", encoding="cp1252")
    assert read_dated_series(p).name == "Índice"


def test_date_column_found_by_content(tmp_path):
    p = _w(tmp_path / "x.csv", "label,when,value\na,2024-01-02,1\nb,2024-01-03,2\n")
    assert read_dated_series(p, column="value").index[1] == pd.Timestamp("2024-01-03")


def test_fred_dot_missing(tmp_path):
    p = _w(tmp_path / "DGS10.csv", "DATE,DGS10\n2024-01-01,.\n2024-01-02,3.95\n2024-01-03,3.91\n")
    with pytest.raises(FormatError, match=r"line 2, column 'DGS10': missing value '\.'"):
        read_dated_series(p)
    s = read_dated_series(p, missing="drop")
    assert s.tolist() == [3.95, 3.91] and s.index[0] == pd.Timestamp("2024-01-02")
    f = read_dated_frame(p)
    assert np.isnan(f["DGS10"].iloc[0]) and f["DGS10"].iloc[1] == 3.95


def test_only_numeric_column_with_missing_markers(tmp_path):
    p = _w(tmp_path / "x.csv", "date,name,v\n2024-01-02,a,NA\n2024-01-03,b,2\n")
    assert read_dated_series(p, missing="drop").tolist() == [2.0]


@pytest.mark.parametrize(
    ("text", "kwargs", "error", "match"),
    [
        ("date,a,b\n2024-01-02,1,2\n", {}, FormatError, "cannot tell which column"),
        ("date,a,b\n2024-01-02,1,2\n", {"column": "c"}, FormatError, "no column 'c'"),
        ("date,v\n2024-01-02,1\nnot a date,2\n", {}, FormatError, "line 3, column 'date': unparseable date"),
        ("date,v\n2024-01-02,abc\n", {"missing": "drop"}, FormatError, "line 2, column 'v': non-numeric"),
        ("date,v\n2024-01-02,1\n2024-01-02,2\n", {}, FormatError, "duplicated date 2024-01-02"),
        ("date,v\n", {}, FormatError, "no data rows"),
        ("date,v,w\n2024-01-02,.,1\n", {"column": "v", "missing": "drop"}, DataError, "no values"),
        ("date,v\n2024-01-02,1\n", {"missing": "skip"}, ParameterError, "missing"),
    ],
)
def test_errors(tmp_path, text, kwargs, error, match):
    p = _w(tmp_path / "bad.csv", text)
    with pytest.raises(error, match=match):
        read_dated_series(p, **kwargs)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_dated_series(tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="empty"):
        read_dated_series(_w(tmp_path / "e.csv", ""))
    with pytest.raises(InputFileError, match="directory"):
        read_dated_series(tmp_path)


def test_old_signature_prefer_positional(tmp_path):
    # the calls of flows.volume / flows.rebalance / the CTA code: read_dated_series(path, prefer, what=...)
    p = _w(tmp_path / "spx.csv", "date,Open,Close,Volume\n2024-01-03,1,11,5\n2024-01-02,1,10,4\n")
    s = read_dated_series(p, ("Volume", "volume"), what="volume")
    assert s.name == "Volume" and s.tolist() == [4.0, 5.0]  # sorted by date
    assert read_dated_series(p, prefer=("close",), what="price").tolist() == [10.0, 11.0]


def test_timestamps_normalized(tmp_path):
    p = _w(tmp_path / "t.csv", "timestamp,v\n2024-01-02 16:00:00-05:00,1\n2024-01-03 16:00:00-05:00,2\n")
    s = read_dated_series(p)
    assert s.index[0] == pd.Timestamp("2024-01-02") and s.index.tz is None


# --- the shared files (skip when ../shared is absent) -----------------------------------------------------


def require_series() -> None:
    if not SERIES.exists():
        pytest.skip("needs ../shared/real_series beside the checkout (the real data folder); not present")


@pytest.mark.parametrize(
    ("rel", "kwargs", "name", "n", "first", "last_value"),
    [
        ("cboe_indices/SKEW_History.csv", {}, "SKEW", 9189, "1990-01-02", 150.19),
        ("cboe_indices/VIX_History.csv", {"prefer": ("CLOSE",)}, "CLOSE", 9234, "1990-01-02", 16.64),
        ("put_call/cboe_totalpc_2006_2019.csv", {"column": "Ratio"}, "Ratio", 3253, "2006-11-01", 1.05),
        ("put_call/cboe_put_call_ratios_2019_2026.csv", {"column": "INDEX_PUT_CALL_RATIO"}, "INDEX_PUT_CALL_RATIO",
         1705, "2019-10-07", 1.06),
        ("squeezemetrics_dix_gex_daily.csv", {"column": "gex"}, "gex", 3504, "2011-05-02", -1944044431.83),
    ],
)
def test_shared_files(rel, kwargs, name, n, first, last_value):
    require_series()
    s = read_dated_series(SERIES / rel, missing="drop", **kwargs)
    assert s.name == name and len(s) == n and str(s.index[0].date()) == first
    assert s.iloc[-1] == pytest.approx(last_value)


def test_shared_fred_file_drops_dots():
    require_series()
    path = SERIES / "treasury_yields/DGS10.csv"
    raw = path.read_text().splitlines()[1:]
    dots = sum(1 for line in raw if line.endswith(","  ) or line.split(",")[1] == ".")
    s = read_dated_series(path, missing="drop")
    assert len(s) == len(raw) - dots and dots > 0


def test_rewritten_file_is_read_again(tmp_path):
    # the reader caches parsed files by content: a rewrite of the same size at once must not hit the cache
    p = _w(tmp_path / "x.csv", "date,v\n2024-01-02,1\n")
    assert read_dated_series(p).tolist() == [1.0]
    _w(p, "date,v\n2024-01-02,2\n")
    assert read_dated_series(p).tolist() == [2.0]
    s = read_dated_series(p)
    s.iloc[0] = 99.0  # a caller mutating its result does not touch the cache
    assert read_dated_series(p).tolist() == [2.0]
