"""The JSON feeds that open GEX tools download: Cboe delayed quotes (current envelope and older payload) and the
TD Ameritrade / Schwab chains. Every check compares with the JSON's own values."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SHARED

from volsurf.errors import DataQualityWarning, FormatError, UnknownFormatError
from volsurf.io import load, write_canonical

FEEDS = SHARED / "real_feeds"
ENVELOPE = FEEDS / "cboe_delayed_json/aapl_2026-08-07_envelope_excerpt.json"
OLD = FEEDS / "cboe_delayed_json/spy_2022-04-04_data_only.json"
SCHWAB = FEEDS / "schwab_chains_json/spy_2022-05-23.json"
NY = "America/New_York"


def _need(path: Path) -> dict:
    if not path.exists():
        pytest.skip("needs ../shared/real_feeds beside the checkout (the real data folder); not present")
    return json.loads(path.read_text(encoding="utf-8"))


def _both(snap) -> pd.DataFrame:
    return pd.concat([snap.frame, snap.removed], ignore_index=True)


def _occ_expiry(sym: str) -> str:
    d = sym.strip()[-15:-9]
    return f"20{d[:2]}-{d[2:4]}-{d[4:]}"


def test_cboe_envelope():
    raw = _need(ENVELOPE)
    snap = load(ENVELOPE)
    opts = raw["data"]["options"]
    both = _both(snap)
    assert snap.meta.source_format == "cboe_json"
    assert len(both) == len(opts)
    assert snap.meta.spot == raw["data"]["current_price"]
    assert snap.meta.underlying == raw["symbol"]
    assert snap.meta.quote_time == pd.Timestamp(raw["timestamp"], tz="UTC").tz_convert(NY)
    assert sorted(both["expiry_date"].unique()) == sorted({_occ_expiry(o["option"]) for o in opts})
    by_id = both.set_index("contract")
    for o in opts:
        row = by_id.loc[o["option"]]
        assert row["bid"] == o["bid"] and row["ask"] == o["ask"]
        assert row["open_interest"] == o["open_interest"] and row["volume"] == o["volume"]
        assert row["type"] == ("call" if o["option"][-9] == "C" else "put")
        assert row["strike"] == int(o["option"][-8:]) / 1000
        # iv 0 means "missing" in this feed
        assert (np.isnan(row["vendor_iv"]) if o["iv"] == 0 else row["vendor_iv"] == o["iv"])


def test_cboe_old_payload_needs_as_of():
    _need(OLD)
    with pytest.raises(FormatError, match="--as-of") as e:
        load(OLD)
    assert "\n" not in e.value.one_line() and str(OLD) in e.value.one_line()


def test_cboe_old_payload_with_as_of():
    raw = _need(OLD)
    with pytest.warns(DataQualityWarning, match="no per-option bid/ask"):
        snap = load(OLD, as_of="2022-04-01 16:15")
    opts = raw["options"]
    both = _both(snap)
    assert len(both) == len(opts)
    assert snap.meta.spot == raw["current_price"]
    assert snap.meta.underlying == raw["symbol"]
    assert snap.meta.quote_time == pd.Timestamp("2022-04-01 16:15", tz=NY)
    assert snap.meta.trade_date == dt.date(2022, 4, 1)
    assert both["expiry_date"].nunique() == len({_occ_expiry(o["option"]) for o in opts})
    assert both["bid"].isna().all() and both["ask"].isna().all()
    assert both["open_interest"].sum() == sum(o["open_interest"] for o in opts)
    # expired: the contracts of the as-of day's own expiry (PM-settled SPY, valued at the close)
    assert (snap.removed["expiry_date"] == "2022-04-01").all()
    assert len(snap.removed) == sum(_occ_expiry(o["option"]) == "2022-04-01" for o in opts)


def test_schwab_chain():
    raw = _need(SCHWAB)
    snap = load(SCHWAB)
    both = _both(snap)
    contracts = [(side, k, s, c) for side, key in (("call", "callExpDateMap"), ("put", "putExpDateMap"))
                 for k, strikes in raw[key].items() for s, cs in strikes.items() for c in cs]
    assert snap.meta.source_format == "schwab_json"
    assert len(both) == len(contracts) == raw["numberOfContracts"]
    assert snap.meta.spot == raw["underlyingPrice"]
    assert snap.meta.underlying == raw["symbol"]
    times = [c["quoteTimeInLong"] for *_, c in contracts] + [raw["underlying"]["quoteTime"]]
    assert snap.meta.quote_time == pd.Timestamp(max(times), unit="ms", tz="UTC").tz_convert(NY)
    assert sorted(both["expiry_date"].unique()) == sorted({k.split(":")[0] for _, k, _, _ in contracts})
    both = both.set_index(["expiry_date", "type", "strike"])
    for side, k, s, c in contracts[::37]:
        row = both.loc[(k.split(":")[0], side, float(s))]
        assert row["bid"] == c["bid"] and row["ask"] == c["ask"] and row["last"] == c["last"]
        assert row["open_interest"] == c["openInterest"] and row["volume"] == c["totalVolume"]
        if c["volatility"] == -999:
            assert np.isnan(row["vendor_iv"])
        else:
            assert row["vendor_iv"] == pytest.approx(c["volatility"] / 100)
        assert row["root"] == c["symbol"].split("_")[0]


def test_json_round_trip_through_canonical(tmp_path: Path):
    _need(SCHWAB)
    for path, opts in ((SCHWAB, {}), (ENVELOPE, {})):
        snap = load(path, **opts)
        out = tmp_path / (path.stem + ".csv")
        write_canonical(snap, out)
        back = load(out)
        assert back.meta.source_format == snap.meta.source_format
        pd.testing.assert_frame_equal(back.frame, snap.frame, check_dtype=False)


def test_truncated_json_names_line_and_column(tmp_path: Path):
    text = _need(SCHWAB) and SCHWAB.read_text(encoding="utf-8")
    p = tmp_path / "chain.json"
    p.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(FormatError, match=r"line \d+.*invalid JSON"):
        load(p)
    p.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(UnknownFormatError):
        load(p)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, timeout=300)


def test_cli_normalize_and_inspect_as_of(tmp_path: Path):
    raw = _need(OLD)
    r = _cli("inspect", str(OLD))
    assert r.returncode == 2 and "--as-of" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    out = tmp_path / "spy.csv"
    r = _cli("normalize", str(OLD), "-o", str(out), "--as-of", "2022-04-01 16:15")
    assert r.returncode == 0, r.stderr
    back = load(out)
    assert back.meta.spot == raw["current_price"] and back.meta.trade_date == dt.date(2022, 4, 1)
    r = _cli("inspect", str(OLD), "--as-of", "2022-04-01T20:15Z", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["quote_time"].startswith("2022-04-01T16:15")


@pytest.mark.slow
def test_cli_report_on_schwab(tmp_path: Path):
    _need(SCHWAB)
    r = _cli("report", str(SCHWAB), "-o", str(tmp_path / "rep"), "--format", "json")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["headline"]["underlying"] == "SPY"
    assert summary["headline"]["spot"] == json.loads(SCHWAB.read_text())["underlyingPrice"]


def test_quotes_absent_reason():
    _need(OLD)
    from volsurf.io.common import quotes_absent_reason

    assert quotes_absent_reason(load(OLD, as_of="2022-04-01 16:15")) is not None
    assert quotes_absent_reason(load(SCHWAB)) is None


def test_directories_pick_up_chain_json_only(tmp_path: Path):
    _need(SCHWAB)
    from volsurf.io import expand_paths

    d = tmp_path / "downloads"
    d.mkdir()
    (d / "spy.json").write_bytes(SCHWAB.read_bytes())
    (d / "summary.json").write_text('{"schema_version": 1, "headline": {}}')
    assert [Path(p).name for p in expand_paths([str(d)])] == ["spy.json"]
