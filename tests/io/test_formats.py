"""Loading: every real file, facts from SOURCES.md, every format, hygiene, and bad input."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, REAL, ROOT, SAMPLES, load_cached, real_chain_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from volsurf.errors import FormatError, InputFileError, UnknownFormatError, VolsurfError
from volsurf.io import load, load_all, load_many, write_canonical
from volsurf.io.dates import parse_cboe_date_line
from volsurf.market.snapshot import COLUMNS, HYGIENE_RULES

# ------------------------------------------------------------------------------------------ SOURCES.md facts


def _sources_facts() -> dict[str, dict]:
    """Row counts, spot, expiry counts and OI totals per file, as stated in ../shared/real_chains/SOURCES.md."""
    text = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    facts: dict[str, dict] = {}
    for line in text.splitlines():
        if not line.startswith("| ") or "`real_chains/" not in line:
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        rel = cells[1].strip("`").removeprefix("real_chains/")
        und = cells[7]
        last = re.search(r"(?:Last|S=)\s*([\d.]+)", und)
        facts[rel] = {
            "rows": int(cells[9].replace(",", "")),
            "expiries": int(cells[10].split()[0]),
            "spot": float(last.group(1)) if last else None,
            "roots": re.findall(r"roots ([A-Z, ]+);", und)[0].replace(" ", "").split(",") if "roots" in und else None,
        }
    for m in re.finditer(r"^- `([^`]+)`: (.*)$", text, flags=re.M):
        rel, note = m.group(1), m.group(2)
        oi = re.search(r"total OI calls ([\d,]+) / puts ([\d,]+)", note)
        if rel in facts and oi:
            facts[rel]["call_oi"] = int(oi.group(1).replace(",", ""))
            facts[rel]["put_oi"] = int(oi.group(2).replace(",", ""))
    return facts


FACTS = _sources_facts() if REAL.exists() else {}
FILES = real_chain_files()


def _rel(p: Path) -> str:
    return str(p.relative_to(REAL))


def test_sources_table_parsed():
    if not REAL.exists():
        pytest.skip("no ../shared")
    assert len(FACTS) >= 32
    assert all("rows" in f for f in FACTS.values())


@pytest.mark.parametrize("path", FILES, ids=[_rel(p) for p in FILES])
def test_real_file_matches_sources(path: Path):
    facts = FACTS[_rel(path)]
    snap = load_cached(str(path))
    both = pd.concat([snap.frame, snap.removed], ignore_index=True)
    if snap.meta.source_format == "cboe_quotedata":
        assert len(both) == 2 * facts["rows"], "each Cboe row holds one call and one put"
        assert snap.meta.underlying in facts["roots"] or snap.meta.underlying + "W" in facts["roots"]
        assert sorted(both["root"].unique()) == sorted(facts["roots"])
    else:
        assert len(both) == facts["rows"]
    assert both["expiry_date"].nunique() == facts["expiries"]
    assert snap.meta.spot == pytest.approx(facts["spot"], abs=1e-4)
    if "call_oi" in facts:
        oi = both.groupby("type")["open_interest"].sum()
        assert oi["call"] == facts["call_oi"]
        assert oi["put"] == facts["put_oi"]
    # schema
    assert list(snap.frame.columns) == list(COLUMNS)
    assert set(snap.meta.hygiene) >= set(HYGIENE_RULES)
    assert not snap.frame["contract"].duplicated().any()
    assert str(snap.frame["expiry"].dt.tz) == "America/New_York"


# Trade dates stated in SOURCES.md's per-file notes (downloads on weekends/holidays/pre-open).
TRADE_DATES = {
    "cboe_Luca-Castelli_Index-Gamma/spx_quotedata.csv": dt.date(2022, 2, 4),
    "cboe_Luca-Castelli_Index-Gamma/ndx_quotedata.csv": dt.date(2022, 2, 4),
    "cboe_nickkxsper_index-gamma/2022-02-19/spx_quotedata.csv": dt.date(2022, 2, 18),
    "cboe_carlosjimenezdiaz_GEX_Python/2022-03-23/spx_quotedata.csv": dt.date(2022, 3, 23),
    "cboe_carlosjimenezdiaz_GEX_Python/2023-09-04/spx_quotedata.csv": dt.date(2023, 9, 1),
    "cboe_carlosjimenezdiaz_GEX_Python/2023-09-14/spx_quotedata.csv": dt.date(2023, 9, 14),
    "cboe_romankop_CMF_Test_Case/spx_quotedata.csv": dt.date(2023, 12, 8),
    "cboe_ralph-e-boy_gamma-chart/2025-09-01_1850/quotedata.csv": dt.date(2025, 8, 29),
    "cboe_GallegoToscano_svi-volatility-surface/spx_quotedata_20260803.csv": dt.date(2026, 7, 31),
    "cboe_nickkxsper_index-gamma/2022-07-12_excel_resaved/spx_quotedata.csv": dt.date(2022, 7, 12),
}


@pytest.mark.parametrize("rel,expected", sorted(TRADE_DATES.items()))
def test_trade_date_from_exchange_calendar(rel: str, expected: dt.date):
    if not REAL.exists():
        pytest.skip("no ../shared")
    snap = load_cached(str(REAL / rel))
    assert snap.meta.trade_date == expected
    # intraday files value at the quote time, others at that session's close
    if snap.meta.quote_time.date() == expected and dt.time(9, 30) <= snap.meta.quote_time.time() <= dt.time(16):
        assert snap.meta.valuation_time == snap.meta.quote_time
    else:
        assert snap.meta.valuation_time == pd.Timestamp(f"{expected} 16:00", tz="America/New_York")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("February 5 2022, 8:09 PM EST", "2022-02-05 20:09-05:00"),
        ("February 19, 2022, 4:17 PM EST", "2022-02-19 16:17-05:00"),
        ("September 14, 2023 at 4:31 PM EDT", "2023-09-14 16:31-04:00"),
        ("23 de marzo de 2022, 10:11 GMT-4", "2022-03-23 10:11-04:00"),
        ("11 de noviembre de 2024, 8:02 GMT-5", "2024-11-11 08:02-05:00"),
        ("9 декабря 2023 г. в 13:49 GMT-5", "2023-12-09 13:49-05:00"),
        ("1 January 2025 at 22:26 GMT-5", "2025-01-01 22:26-05:00"),
        ("3 August 2026 at 05:22 GMT-4", "2026-08-03 05:22-04:00"),
        ("Date: May 1, 2025 at 12:49 AM EDT", "2025-05-01 00:49-04:00"),
        ("May 1, 2025 at 12:15 PM EDT", "2025-05-01 12:15-04:00"),
    ],
)
def test_locale_date_lines(text: str, expected: str):
    assert parse_cboe_date_line(text) == pd.Timestamp(expected)


def test_settlement_times_per_root():
    if not REAL.exists():
        pytest.skip("no ../shared")
    spx = load_cached(str(REAL / "cboe_nickkxsper_index-gamma/2022-02-19/spx_quotedata.csv")).frame
    am = spx[spx["root"] == "SPX"]
    pm = spx[spx["root"] == "SPXW"]
    assert (am["expiry"].dt.strftime("%H:%M") == "09:30").all() and (am["settlement"] == "AM").all()
    assert (pm["expiry"].dt.strftime("%H:%M") == "16:00").all() and (pm["settlement"] == "PM").all()
    # SPX and SPXW share (expiry date, strike) on the March quarterly: both kept, keyed by root
    shared = spx[spx["expiry_date"] == "2022-03-18"].groupby(["strike", "type"])["root"].nunique()
    assert (shared == 2).any()
    ndx = load_cached(str(REAL / "cboe_Luca-Castelli_Index-Gamma/ndx_quotedata.csv")).frame
    assert set(ndx.groupby("root")["settlement"].first().items()) == {("NDX", "AM"), ("NDXP", "PM")}


def test_vendor_iv_zero_is_missing_and_counted():
    if not REAL.exists():
        pytest.skip("no ../shared")
    snap = load_cached(str(REAL / "cboe_carlosjimenezdiaz_GEX_Python/2022-03-23/spx_quotedata.csv"))
    # SOURCES.md: IV==0 rows: calls 265, puts 68 (no expired rows in this intraday file)
    assert snap.meta.hygiene["vendor_iv_missing"] == 265 + 68
    assert snap.frame["vendor_iv"].isna().sum() == 265 + 68
    assert (snap.frame["vendor_iv"].dropna() > 0).all()


def test_expired_rows_removed_and_kept_aside():
    if not REAL.exists():
        pytest.skip("no ../shared")
    snap = load_cached(str(REAL / "cboe_carlosjimenezdiaz_GEX_Python/2023-09-14/spx_quotedata.csv"))
    assert snap.meta.hygiene["expired"] == len(snap.removed) > 0
    assert (snap.removed["expiry_date"] == "2023-09-14").all()
    assert (snap.frame["expiry"] > snap.meta.valuation_time).all()


def test_resaved_spreadsheet_file():
    if not REAL.exists():
        pytest.skip("no ../shared")
    snap = load_cached(str(REAL / "cboe_nickkxsper_index-gamma/2022-07-12_excel_resaved/spx_quotedata.csv"))
    assert (snap.frame.loc[snap.frame["expiry_date"] == "2022-07-12", "strike"].min()) == 1000.0
    assert snap.meta.quote_time == pd.Timestamp("2022-07-12 11:55", tz="America/New_York")


def test_relabelled_file_gets_a_warning():
    if not REAL.exists():
        pytest.skip("no ../shared")
    snap = load_cached(str(REAL / "cboe_ralph-e-boy_gamma-chart/2025-05-06_0913_relabelled_dup_of_05-02/quotedata.csv"))
    assert any("2025-05-02" in w for w in snap.meta.warnings)
    # SOURCES.md: the content is the May 2 2025 close chain
    assert snap.meta.trade_date == dt.date(2025, 5, 2)
    assert snap.meta.valuation_time == pd.Timestamp("2025-05-02 16:00", tz="America/New_York")
    clean = load_cached(str(REAL / "cboe_ralph-e-boy_gamma-chart/2025-05-06_1814/quotedata.csv"))
    assert clean.meta.warnings == ()


def test_yfinance_file():
    if not REAL.exists():
        pytest.skip("no ../shared")
    snap = load_cached(str(REAL / "yfinance_ZOOMKB_bs-vs-heston/spy_options.csv"))
    f = snap.frame
    assert snap.meta.source_format == "yfinance"
    assert snap.meta.underlying == "SPY"
    assert snap.meta.trade_date == dt.date(2026, 2, 10)
    assert f["volume"].isna().sum() == 95  # SOURCES.md: 95 blank volumes
    assert (f["vendor_iv"].dropna() > 1e-4).all()  # the 1e-05 placeholders became NaN
    assert f["expiry_date"].nunique() == 6


def test_datashop_multi_time():
    snaps = load_all(DATA / "datashop_spx_small.csv")
    assert [s.meta.quote_time.strftime("%H:%M") for s in snaps] == ["15:45", "16:00"]
    latest = load(DATA / "datashop_spx_small.csv")
    assert latest.meta.quote_time == snaps[-1].meta.quote_time
    f = latest.frame
    assert latest.meta.underlying == "SPX"
    assert latest.meta.spot == pytest.approx(3834.6)
    row = f[f["contract"] == "SPX230120P03850000"].iloc[0]
    assert (row["bid"], row["ask"], row["open_interest"], row["settlement"]) == (88.1, 89.7, 6100, "AM")
    assert row["expiry"] == pd.Timestamp("2023-01-20 09:30", tz="America/New_York")
    assert len(f) == 6


def test_optionsdx_wide():
    snaps = load_all(DATA / "spx_eod_202301_small.txt")
    assert len(snaps) == 2
    first = snaps[0]
    f = first.frame
    assert first.meta.underlying == "SPX"
    assert first.meta.spot == pytest.approx(3824.14)
    assert len(f) == 8
    am = f[f["expiry_date"] == "2023-01-20"]
    assert (am["root"] == "SPX").all() and (am["settlement"] == "AM").all()
    pm = f[f["expiry_date"] == "2023-01-06"]
    assert (pm["root"] == "SPXW").all()
    put = f[(f["strike"] == 3775) & (f["type"] == "put")].iloc[0]
    assert (put["bid"], put["ask"], put["volume"], put["vendor_iv"]) == (14.9, 15.5, 2280, 0.2402)
    assert first.meta.hygiene["missing_oi"] == 8  # OptionsDX has no open interest


def test_optionsdx_load_all_equals_one_load_per_date():
    """load_all parses an OptionsDX file once; each snapshot equals load(path, quote_time=...) of its date."""
    path = DATA / "spx_eod_202301_small.txt"
    for snap in load_all(path):
        one = load(path, quote_time=snap.meta.quote_time)
        pd.testing.assert_frame_equal(snap.frame, one.frame, check_exact=True)
        assert snap.meta == one.meta


def test_holds_many_snapshots(tmp_path: Path):
    """From the head and tail only: DataShop/OptionsDX files whose first and last rows differ in quote time;
    a gzip copy of one is assumed to; one-time files and other formats are not."""
    import gzip

    from volsurf.io.detect import holds_many_snapshots

    assert holds_many_snapshots(str(DATA / "datashop_spx_small.csv"))
    assert holds_many_snapshots(str(DATA / "spx_eod_202301_small.txt"))
    assert not holds_many_snapshots(str(SAMPLES / "spy_2025-06-09_close.csv"))
    lines = (DATA / "datashop_spx_small.csv").read_text(encoding="utf-8").splitlines()
    one_time = tmp_path / "one_time.csv"
    one_time.write_text("\n".join(ln for ln in lines if "16:00:00" not in ln) + "\n", encoding="utf-8")
    assert len(load_all(one_time)) == 1 and not holds_many_snapshots(str(one_time))
    gz = tmp_path / "eod.txt.gz"
    gz.write_bytes(gzip.compress((DATA / "spx_eod_202301_small.txt").read_bytes()))
    assert holds_many_snapshots(str(gz))


@pytest.mark.parametrize("name", ["spx_2026-07-31_close.csv", "spy_2025-06-09_close.csv"])
def test_canonical_round_trip(tmp_path: Path, name: str):
    snap = load(SAMPLES / name)
    out = tmp_path / "canon.csv"
    write_canonical(snap, out)
    back = load(out)
    assert back.meta.source_format == snap.meta.source_format
    for field in ("underlying", "spot", "quote_time", "trade_date", "valuation_time", "hygiene", "warnings"):
        assert getattr(back.meta, field) == getattr(snap.meta, field), field
    pd.testing.assert_frame_equal(back.frame, snap.frame, check_dtype=False)


def test_load_many_orders_by_trade_date():
    if not REAL.exists():
        pytest.skip("no ../shared")
    snaps = load_many([str(REAL / "cboe_ralph-e-boy_gamma-chart")])
    dates = [s.meta.trade_date for s in snaps]
    assert dates == sorted(dates) and len(snaps) == 9


# ------------------------------------------------------------------------------------------ bad input


def _cboe_lines() -> list[str]:
    return (SAMPLES / "spy_2025-06-09_close.csv").read_text().splitlines()


def test_empty_file(tmp_path: Path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(InputFileError, match="empty"):
        load(p)


def test_binary_file(tmp_path: Path):
    p = tmp_path / "x.csv"
    p.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(InputFileError, match="binary"):
        load(p)


def test_unknown_format(tmp_path: Path):
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(UnknownFormatError, match="unknown chain format"):
        load(p)


def test_missing_file():
    with pytest.raises(InputFileError, match="no such file"):
        load("/nonexistent/chain.csv")


def test_unparseable_number_names_line_and_column(tmp_path: Path):
    lines = _cboe_lines()
    fields = lines[10].split(",")
    fields[4] = "abc"  # call Bid
    lines[10] = ",".join(fields)
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines))
    with pytest.raises(FormatError) as e:
        load(p)
    assert e.value.line == 11 and e.value.column == "Bid" and "abc" in str(e.value)


def test_unparseable_expiry(tmp_path: Path):
    lines = _cboe_lines()
    lines[7] = "Someday" + lines[7][lines[7].index(",") :]
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines))
    with pytest.raises(FormatError) as e:
        load(p)
    assert e.value.line == 8 and e.value.column == "Expiration Date"


def test_bad_date_line(tmp_path: Path):
    lines = _cboe_lines()
    lines[2] = "Date: sometime,Bid: 1,Ask: 2,Size: 1*1,Volume: 0"
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines))
    with pytest.raises(FormatError) as e:
        load(p)
    assert e.value.line == 3


def test_missing_column_long_format(tmp_path: Path):
    p = tmp_path / "yf.csv"
    p.write_text("contractSymbol,strike,bid,volume\nSPY260218C00600000,600,91.7,3\n")
    with pytest.raises(FormatError, match="missing column 'ask'"):
        load(p)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, timeout=120)


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n1,2\n")
    res = _run_cli("inspect", str(p))
    assert res.returncode == 2
    assert res.stderr.startswith("Error: ") and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr and str(p) in res.stderr


def test_cli_inspect_json_keys():
    import json

    res = _run_cli("inspect", str(SAMPLES / "spy_2025-06-09_close.csv"), "--format", "json")
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    for key in ("underlying", "spot", "quote_time", "trade_date", "format", "contracts", "expiries",
                "call_open_interest", "put_open_interest", "flagged"):
        assert key in obj
    assert obj["underlying"] == "SPY" and obj["trade_date"] == "2025-06-09"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", obj["quote_time"])
    # SOURCES.md: 2025-06-09 file total OI calls 2,513,692 / puts 4,651,611 includes the expired 06-09 expiry
    assert obj["call_open_interest"] + obj["put_open_interest"] < 2_513_692 + 4_651_611


def test_cli_normalize_round_trip(tmp_path: Path):
    out = tmp_path / "n.csv"
    res = _run_cli("normalize", str(SAMPLES / "spy_2025-08-29_close.csv"), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert load(out).meta.source_format == "cboe_quotedata"


# ------------------------------------------------------------------------------------------ mangled files

_BASE = (SAMPLES / "spy_2025-06-09_close.csv").read_bytes()[:60_000]


def _mangle(data: bytes, how: str, a: int, b: int, junk: bytes) -> bytes:
    lines = data.split(b"\n")
    if how == "truncate":
        return data[: a % max(len(data), 1)]
    if how == "junk":
        pos = a % max(len(data), 1)
        return data[:pos] + junk + data[pos:]
    if how == "shuffle_columns":
        out = []
        for line in lines[3:]:
            cells = line.split(b",")
            if len(cells) > 3:
                i, j = a % len(cells), b % len(cells)
                cells[i], cells[j] = cells[j], cells[i]
            out.append(b",".join(cells))
        return b"\n".join(lines[:3] + out)
    if how == "wrong_number":
        i = 4 + a % max(len(lines) - 4, 1)
        cells = lines[i].split(b",")
        if cells:
            cells[b % len(cells)] = junk or b"x"
        lines[i] = b",".join(cells)
        return b"\n".join(lines)
    if how == "drop_lines":
        i = a % max(len(lines), 1)
        return b"\n".join(lines[:i] + lines[i + 1 + b % 5 :])
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    how=st.sampled_from(["truncate", "junk", "shuffle_columns", "wrong_number", "drop_lines"]),
    a=st.integers(0, 10**6),
    b=st.integers(0, 10**6),
    junk=st.binary(min_size=0, max_size=12),
)
def test_mangled_files_load_or_fail_cleanly(tmp_path: Path, how: str, a: int, b: int, junk: bytes):
    p = tmp_path / "mangled.csv"
    p.write_bytes(_mangle(_BASE, how, a, b, junk))
    try:
        snap = load(p)
    except VolsurfError as exc:
        text = exc.one_line()
        assert "\n" not in text and str(p) in text
    else:
        assert list(snap.frame.columns) == list(COLUMNS)
        assert np.isfinite(snap.meta.spot)


def test_mangled_file_via_cli(tmp_path: Path):
    p = tmp_path / "m.csv"
    p.write_bytes(_mangle(_BASE, "wrong_number", 20, 5, b"1.2.3"))
    res = _run_cli("inspect", str(p))
    assert res.returncode in (0, 2)
    assert "Traceback" not in res.stderr
    if res.returncode == 2:
        assert res.stderr.startswith("Error: ") and "line" in res.stderr


def test_help_does_not_import_numpy():
    code = "import sys; from volsurf import cli; assert 'numpy' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_directory_input_gives_clear_error(tmp_path: Path):
    with pytest.raises(InputFileError, match="directory"):
        load(tmp_path)


def test_shared_not_written(tmp_path: Path):
    """The loader never writes beside its input (shared/ is read-only in CI)."""
    src = tmp_path / "c.csv"
    shutil.copy(SAMPLES / "spy_2025-08-29_close.csv", src)
    before = sorted(tmp_path.iterdir())
    load(src)
    assert sorted(tmp_path.iterdir()) == before


def test_gzip_compressed_chains_load_like_the_plain_file(tmp_path: Path):
    """A gzip copy (what `volsurf fetch --raw-dir` keeps) loads to the same snapshot; directories pick up
    ``*.csv.gz`` and chain ``*.json.gz``; a truncated archive is a one-line input error (exit 2)."""
    import gzip

    from conftest import run_cli

    from volsurf.history.store import content_hash
    from volsurf.io import expand_paths

    src = SAMPLES / "spy_2025-06-09_close.csv"
    d = tmp_path / "raw"
    d.mkdir()
    gz = d / "spy_2025-06-09_close.csv.gz"
    gz.write_bytes(gzip.compress(src.read_bytes(), mtime=0))
    (d / "summary.json.gz").write_bytes(gzip.compress(b'{"schema_version": 1}', mtime=0))
    plain, packed = load(src), load(gz)
    pd.testing.assert_frame_equal(plain.frame, packed.frame, check_exact=True)
    assert content_hash(plain) == content_hash(packed)  # the store sees the same snapshot
    assert [Path(p).name for p in expand_paths([str(d)])] == [gz.name]
    bad = tmp_path / "cut.csv.gz"
    bad.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    with pytest.raises(InputFileError, match="damaged gzip file"):
        load(bad)
    res = run_cli("skew", bad)
    assert res.exit_code == 2 and "damaged gzip file" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
