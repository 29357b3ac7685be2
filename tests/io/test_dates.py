"""The Date line of Cboe exports: generated CLDR variants on a real export, the issue's cases, ambiguous day/month,
bad lines, and ``as_of``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from conftest import REAL, SAMPLES, require_shared

from volsurf.errors import FormatError, ParameterError, TradeDateWarning
from volsurf.io import load
from volsurf.io.dates import date_value_from_line, parse_as_of, read_date_value

SMALL = REAL / "cboe_ralph-e-boy_gamma-chart/2025-05-06_1809_truncated/quotedata.csv"

#: Locales browsers commonly report: every generated variant of these must read exactly.
CORE = (
    "en en_US en_GB en_CA en_AU en_IN de de_AT de_CH fr fr_CA fr_CH es es_MX es_US es_AR it pt pt_BR pt_PT nl nl_BE "
    "da sv nb fi pl cs sk hu ro tr ru uk el bg hr sl sr lt lv et ca eu gl ja zh zh_Hant ko he ar fa hi th vi id ms"
).split()


def _lines(path: Path) -> tuple[list[str], int]:
    lines = path.read_text(encoding="utf-8").split("\n")
    return lines, next(i for i, ln in enumerate(lines) if date_value_from_line(ln) is not None)


def test_generated_cldr_variants_on_a_real_export():
    """Every CLDR locale's patterns, 12/24-hour clocks, weekday, connectors, zone names and offsets: written into
    the Date line of a real export, the quote time (to the minute) and the trading date must come out."""
    require_shared()
    pytest.importorskip("babel")
    import date_variants as dv

    lines, row = _lines(SMALL)
    variants = dv.all_variants()
    failures = [(v, why) for v in variants if (why := dv.check(v, lines, row))]
    locales = {v.locale for v in variants}
    failed_locales = {v.locale for v, _ in failures}
    listing = "\n".join(f"{v.locale} {v.kind} {v.value!r}: {why[:120]}" for v, why in failures)
    assert len(variants) >= 500 and len(locales) >= 300
    assert not failed_locales & set(CORE), listing
    # the rest are rare locales whose month abbreviations collide with other locales' (see the listing)
    assert len(failures) <= 0.03 * len(variants), listing
    assert len(locales - failed_locales) >= 0.9 * len(locales), listing


@pytest.mark.parametrize("locale", ["en_US", "de", "fr_CA", "ja", "ar"])
def test_variants_load_through_the_full_loader(tmp_path: Path, locale: str):
    require_shared()
    pytest.importorskip("babel")
    import date_variants as dv

    lines, row = _lines(SMALL)
    for v in dv.variants_for(locale, 3):
        doc = list(lines)
        doc[row] = v.line
        p = tmp_path / "quotedata.csv"
        p.write_text("\n".join(doc), encoding="utf-8")
        snap = load(p)
        want = pd.Timestamp(dv.INSTANT).tz_convert("America/New_York")
        assert abs((snap.meta.quote_time - want).total_seconds()) < 60, v
        assert snap.meta.trade_date == dv.TRADE_DATE


# The issue's cases: the text says the instant (local time and zone) on its own.
ISSUE_CASES = [
    ("Date: 26 May 2023, 5:21 PM EDT,Bid: 1,Ask: 2,Size: 1*1,Volume: 0", "2023-05-26 17:21-04:00"),
    ('"Date: 26 May 2023, 5:21 PM EDT",Bid: 1', "2023-05-26 17:21-04:00"),
    ('Date: 26 May 2023, 17:21 UTC\u22124",Bid: 1', "2023-05-26 17:21-04:00"),
    ("Date: 26.05.2023, 17:21 MESZ,Bid: 1", "2023-05-26 17:21+02:00"),
    ("Date: 26 May 2023 at 17:21 CEST,Bid: 1", "2023-05-26 17:21+02:00"),
    ("Date: 26 May 2023 at 22:21 BST,Bid: 1", "2023-05-26 22:21+01:00"),
    ("Date: mar. 23/05/2023 17:21 UTC+2,Bid: 1", "2023-05-23 17:21+02:00"),
    ("Date: mar., 23 may 2023, 17:21 GMT+2,Bid: 1", "2023-05-23 17:21+02:00"),
    ("Date: 26 mei 2023 om 23:21 CEST,Bid: 1", "2023-05-26 23:21+02:00"),
    ("Date: 26. maj 2023 kl. 23.21 CEST,Bid: 1", "2023-05-26 23:21+02:00"),
    ("Date: 26 maj 2023 23:21 CEST,Bid: 1", "2023-05-26 23:21+02:00"),
    ("Date: 26 maja 2023 23:21 CEST,Bid: 1", "2023-05-26 23:21+02:00"),
    ("Date: 26. května 2023 v 23:21 SELČ,Bid: 1", "2023-05-26 23:21+02:00"),
    ("Date: 26 Mayıs 2023 Cuma 17:21 GMT-4,Bid: 1", "2023-05-26 17:21-04:00"),
    ("Date: 2023年5月27日 6:21 JST,Bid: 1", "2023-05-27 06:21+09:00"),
    ("Date: 2023年5月27日 星期六 上午5:21 GMT+8,Bid: 1", "2023-05-27 05:21+08:00"),
    ("Date: 2023년 5월 27일 오전 6:21 GMT+9,Bid: 1", "2023-05-27 06:21+09:00"),
    ("Date: 26/05/2023 17:21,Bid: 1", "2023-05-26 17:21-04:00"),
    ("Date: 6/9/2025, 1:52:00 PM,Bid: 1", "2025-06-09 13:52-04:00"),
    ("Date: 09.06.2025, 13:52,Bid: 1", "2025-06-09 13:52-04:00"),
    ("Date: 2025-06-09 13:52,Bid: 1", "2025-06-09 13:52-04:00"),
    ("Date: 2025-06-09T17:52:00Z,Bid: 1", "2025-06-09 13:52-04:00"),
    ("Datum: 09.06.2025, 13:52 MESZ,Bid: 1", "2025-06-09 13:52+02:00"),
    ("DATE: June 9, 2025 at 1:52 PM EDT,Bid: 1", "2025-06-09 13:52-04:00"),
    ("Date: June 9, 2025,Bid: 1", "2025-06-09 16:00-04:00"),
]


@pytest.mark.parametrize("line,expected", ISSUE_CASES)
def test_issue_date_lines(line: str, expected: str):
    value = date_value_from_line(line)
    assert value is not None and "Bid" not in value and '"' not in value
    assert read_date_value(value).time == pd.Timestamp(expected)


def test_date_without_time_is_the_close():
    r = read_date_value("June 9, 2025")
    assert not r.has_time and r.time == pd.Timestamp("2025-06-09 16:00", tz="America/New_York")


def _sample_with_date(tmp_path: Path, value: str) -> Path:
    lines = (SAMPLES / "spy_2025-06-09_close.csv").read_text(encoding="utf-8").split("\n")
    row = next(i for i, ln in enumerate(lines) if date_value_from_line(ln) is not None)
    lines[row] = f"Date: {value},Bid: 599.45,Ask: 599.48,Size: 1*6,Volume: 51676756"
    p = tmp_path / "quotedata.csv"
    p.write_text("\n".join(lines), encoding="utf-8")
    return p


def _first_expiry(path: Path) -> dt.date:
    lines = path.read_text(encoding="utf-8").split("\n")
    hi = next(i for i, ln in enumerate(lines) if ln.startswith("Expiration Date,Calls"))
    return min(dt.datetime.strptime(ln.split(",")[0], "%a %b %d %Y").date() for ln in lines[hi + 1 :] if ln.strip())


def test_ambiguous_day_month_decided_by_expiries(tmp_path: Path):
    # 24-hour clock with '/' suggests day first (6 September), but the file lists 9 June: month first wins
    p = _sample_with_date(tmp_path, "6/9/2025 16:52")
    first = _first_expiry(p)
    assert first == dt.date(2025, 6, 9)
    with pytest.warns(TradeDateWarning, match="first listed expiry"):
        snap = load(p)
    assert snap.meta.trade_date == first
    assert any("took 2025-06-09" in w for w in snap.meta.warnings)


def test_ambiguous_day_month_follows_the_line_when_expiries_agree(tmp_path: Path):
    p = _sample_with_date(tmp_path, "09.06.2025 16:52")
    with pytest.warns(TradeDateWarning, match="day first"):
        snap = load(p)
    assert snap.meta.quote_time == pd.Timestamp("2025-06-09 16:52", tz="America/New_York")


def test_unreadable_date_line_is_one_line_naming_file_and_line(tmp_path: Path):
    p = _sample_with_date(tmp_path, "sometime next week " + "x" * 200)
    with pytest.raises(FormatError) as e:
        load(p)
    msg = e.value.one_line()
    # line 1 of the export is blank, the Date line is line 3
    assert "\n" not in msg and str(p) in msg and e.value.line == 3 and "Date: sometime" in msg and "..." in msg


def test_unknown_zone_is_an_error_not_new_york(tmp_path: Path):
    p = _sample_with_date(tmp_path, "June 9, 2025 at 4:52 PM XYZT")
    with pytest.raises(FormatError, match="unknown time zone 'XYZT'"):
        load(p)


def test_as_of_overrides_the_date_line(tmp_path: Path):
    base = load(SAMPLES / "spy_2025-06-09_close.csv")
    snap = load(SAMPLES / "spy_2025-06-09_close.csv", as_of="2025-06-09 15:00")
    assert base.meta.quote_time == pd.Timestamp("2025-06-09 16:52", tz="America/New_York")
    assert snap.meta.quote_time == pd.Timestamp("2025-06-09 15:00", tz="America/New_York")
    assert snap.meta.valuation_time == snap.meta.quote_time
    # an unreadable Date line loads with --as-of
    p = _sample_with_date(tmp_path, "sometime")
    assert load(p, as_of="2025-06-09T20:00Z").meta.quote_time == pd.Timestamp("2025-06-09 16:00", tz="America/New_York")
    with pytest.raises(ParameterError, match="as-of"):
        load(SAMPLES / "spy_2025-06-09_close.csv", as_of="whenever")


def test_parse_as_of_forms():
    ny = "America/New_York"
    assert parse_as_of("2022-04-01 16:15") == pd.Timestamp("2022-04-01 16:15", tz=ny)
    assert parse_as_of("2022-04-01T20:15Z") == pd.Timestamp("2022-04-01 16:15", tz=ny)
    assert parse_as_of("2022-04-01") == pd.Timestamp("2022-04-01 16:00", tz=ny)
    assert parse_as_of(dt.datetime(2022, 4, 1, 16, 15)) == pd.Timestamp("2022-04-01 16:15", tz=ny)


def test_as_of_on_canonical_reruns_hygiene(tmp_path: Path):
    from volsurf.io import write_canonical

    snap = load(SAMPLES / "spy_2025-06-09_close.csv")
    out = tmp_path / "c.csv"
    write_canonical(snap, out)
    later = load(out, as_of="2025-06-10 12:00")
    assert later.meta.trade_date == dt.date(2025, 6, 10)
    assert later.meta.valuation_time == pd.Timestamp("2025-06-10 12:00", tz="America/New_York")
    # valued at noon: the 2025-06-10 expiry (16:00) is still live
    assert (later.frame["expiry_date"] >= "2025-06-10").all()
    assert (later.frame["expiry_date"] == "2025-06-10").any()
    assert len(later.frame) == len(snap.frame)


def test_as_of_for_applies_to_one_file_only():
    from volsurf.io.detect import as_of_for

    a, b = SAMPLES / "spy_2025-06-09_close.csv", SAMPLES / "spy_2025-08-29_close.csv"
    before = load(b).meta.quote_time
    with as_of_for(a, "2025-06-09 15:00"):
        assert load(a).meta.quote_time == pd.Timestamp("2025-06-09 15:00", tz="America/New_York")
        assert load(b).meta.quote_time == before
        # an explicit as_of wins over the block's
        assert load(a, as_of="2025-06-09 14:00").meta.quote_time.hour == 14
    assert load(a).meta.quote_time != pd.Timestamp("2025-06-09 15:00", tz="America/New_York")
