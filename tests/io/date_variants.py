"""Date lines as browsers write them, generated from CLDR (Babel): every locale's date and time patterns, 12- and
24-hour clocks, with and without weekday, the locale's connector ("at", "à", "um", ...), zone names and offsets.

Used by tests/io/test_dates.py; run directly for the summary (``.venv/bin/python tests/io/date_variants.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from babel import Locale, localedata
from babel.dates import format_datetime, get_timezone

#: The instant every variant writes: 2025-05-06 18:09 New York (after the close of Tuesday 2025-05-06), the
#: Date line of the small real export cboe_ralph-e-boy_gamma-chart/2025-05-06_1809_truncated.
INSTANT = dt.datetime(2025, 5, 6, 22, 9, tzinfo=dt.UTC)
TRADE_DATE = dt.date(2025, 5, 6)

#: Zones the downloader's browser may be in.
ZONES = ("America/New_York", "Europe/Berlin", "Europe/London", "Asia/Tokyo", "America/Los_Angeles",
         "Australia/Sydney", "UTC", "Asia/Kolkata", "America/Chicago", "Europe/Paris")

MINUS = "\u2212"


@dataclass(frozen=True)
class Variant:
    locale: str
    line: str  # the whole preamble line, label and trailing keys included
    value: str  # the date text alone
    zone: str
    kind: str


def locales() -> list[str]:
    """Every CLDR language, plus the regional variants browsers commonly report."""
    ids = localedata.locale_identifiers()
    base = sorted(i for i in ids if "_" not in i)
    regional = ["en_US", "en_GB", "en_CA", "en_AU", "en_IN", "fr_CA", "fr_CH", "de_AT", "de_CH", "es_MX", "es_US",
                "es_AR", "pt_BR", "pt_PT", "zh_Hant", "zh_Hans_HK", "nl_BE", "it_CH", "sv_FI", "ar_EG", "ar_SA"]
    return base + [r for r in regional if r in ids]


def _offset_text(prefix: str, minutes: int, minus: str = "-") -> str:
    sign = "+" if minutes >= 0 else minus
    h, m = divmod(abs(minutes), 60)
    return f"{prefix}{sign}{h}" + (f":{m:02d}" if m else "")


def variants_for(ident: str, k: int) -> list[Variant]:
    """Four to six variants of one locale; ``k`` rotates the zone, label and quoting choices."""
    loc = Locale.parse(ident)
    out: list[Variant] = []
    date_long = loc.date_formats["long"].pattern
    date_full = loc.date_formats["full"].pattern
    date_medium = loc.date_formats["medium"].pattern
    date_short = loc.date_formats["short"].pattern
    if "yyyy" not in date_short:
        date_short = re.sub(r"y+", "y", date_short)
    time_short = loc.time_formats["short"].pattern
    h12 = "h:mm a" if "a" not in time_short else time_short
    h24 = "HH:mm" if "a" in time_short else time_short
    connectors = [loc.datetime_formats.get(w, "{1} {0}") for w in ("long", "medium", "full")]
    combos = [
        (date_long, h24, connectors[0], "z"),
        (date_full, h12, connectors[2], "gmt"),
        (date_medium, time_short, connectors[1], "utc_minus"),
        (date_short, h24, "{1}, {0}", "none"),
        (date_long, h12, connectors[0], "offset"),
    ]
    for j, (dpat, tpat, conn, ztype) in enumerate(combos):
        zone = ZONES[(k + j) % len(ZONES)] if ztype != "none" else "America/New_York"
        tz = get_timezone(zone)
        minutes = int(INSTANT.astimezone(tz).utcoffset().total_seconds() // 60)
        conn = conn if isinstance(conn, str) else str(conn)
        pattern = conn.replace("{1}", dpat).replace("{0}", tpat)
        text = format_datetime(INSTANT, pattern, tzinfo=tz, locale=ident)
        if ztype == "z":
            text += " " + format_datetime(INSTANT, "z", tzinfo=tz, locale=ident)
        elif ztype == "gmt":
            text += " " + _offset_text("GMT", minutes)
        elif ztype == "utc_minus":
            text += " " + _offset_text("UTC", minutes, MINUS)
        elif ztype == "offset":
            text += " " + _offset_text("UTC", minutes) if minutes % 60 else " " + format_datetime(INSTANT, "ZZZZZ", tzinfo=tz, locale="en")
        label = ("Date:", "DATE:", "Datum:", "Date: ")[(k + j) % 4]
        quoted = (k + j) % 3
        value = text
        if quoted == 0:
            line = f'"{label} {value}",Bid: 557.3,Ask: 557.45,Size: 2*1,"Volume: 74,119,581"'
        elif quoted == 1:
            line = f"{label} {value},Bid: 557.3,Ask: 557.45,Size: 2*1,Volume: 74119581"
        else:
            line = f'{label} "{value}",Bid: 557.3,Ask: 557.45,Size: 2*1,Volume: 74119581'
        out.append(Variant(ident, line, value, zone, f"{ztype}/{'12h' if tpat == h12 and 'a' in tpat else '24h'}"))
    return out


def all_variants() -> list[Variant]:
    out: list[Variant] = []
    for k, ident in enumerate(locales()):
        try:
            out.extend(variants_for(ident, k))
        except (KeyError, ValueError):  # a locale without the patterns (none in CLDR 4x, kept for safety)
            continue
    return out


def check(v: Variant, lines: list[str], date_row: int) -> str | None:
    """None when the export with ``v`` as its Date line gives the instant (to the minute) and trade date; else why."""
    import pandas as pd

    from volsurf.errors import VolsurfError
    from volsurf.io.cboe_csv import light_key

    doc = list(lines)
    doc[date_row] = v.line
    try:
        key = light_key("variant.csv", doc)
    except VolsurfError as exc:
        return exc.one_line()
    want = pd.Timestamp(INSTANT).tz_convert("America/New_York")
    if key is None:
        return "irregular body"
    if abs((key.quote_time - want).total_seconds()) >= 60:
        return f"read {key.quote_time}, expected {want}"
    if key.trade_date != TRADE_DATE:
        return f"trade date {key.trade_date}, expected {TRADE_DATE}"
    return None


if __name__ == "__main__":
    import sys
    import warnings
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    warnings.simplefilter("ignore")
    src = Path(__file__).resolve().parents[3] / "shared/real_chains/cboe_ralph-e-boy_gamma-chart/2025-05-06_1809_truncated/quotedata.csv"
    lines = src.read_text(encoding="utf-8").split("\n")
    row = next(i for i, ln in enumerate(lines) if ln.startswith("Date:") or ln.startswith('"Date:'))
    vs = all_variants()
    bad = [(v, why) for v in vs if (why := check(v, lines, row))]
    locs = {v.locale for v in vs}
    bad_locs = {v.locale for v, _ in bad}
    print(f"{len(vs) - len(bad)} of {len(vs)} variants pass; {len(locs - bad_locs)} of {len(locs)} locales pass all")
    for v, why in bad:
        print(f"  {v.locale:10} {v.kind:14} {v.value!r}: {why}")
