"""Generate ``volsurf/io/cldr_names.py`` (month, weekday, AM/PM and zone names of every CLDR locale) with Babel.

Run from the checkout: ``.venv/bin/python tests/io/gen_cldr_names.py > volsurf/io/cldr_names.py``. The table is
committed, so volsurf does not need Babel at run time; the date-line tests use Babel (a dev dependency) to write
dates in every locale and check that the committed table reads them.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from babel import Locale, localedata
from babel.dates import format_datetime, get_timezone

from volsurf.io.dates import norm_text, word_runs

#: Locales whose reading wins when two locales spell different months (or zones) alike; the rest follow sorted.
PRIORITY = (
    "en en_US en_GB de fr es it pt pt_BR nl sv da nb fi pl cs sk hu ro tr ru uk el ja zh ko "
    "ca gl eu hr sl sr bg lt lv et is ga cy af id ms vi th he ar fa hi"
).split()

#: Zones whose short names (standard and daylight) are collected, in priority order.
ZONES = (
    "America/New_York America/Chicago America/Denver America/Los_Angeles America/Anchorage Pacific/Honolulu "
    "America/Halifax America/St_Johns America/Sao_Paulo America/Mexico_City America/Argentina/Buenos_Aires "
    "Europe/London Europe/Dublin Europe/Lisbon Europe/Berlin Europe/Paris Europe/Helsinki Europe/Moscow "
    "Europe/Istanbul Asia/Jerusalem Asia/Dubai Asia/Kolkata Asia/Singapore Asia/Hong_Kong Asia/Shanghai "
    "Asia/Taipei Asia/Tokyo Asia/Seoul Australia/Sydney Australia/Adelaide Australia/Perth Pacific/Auckland "
    "Africa/Johannesburg UTC"
).split()


def locales() -> list[str]:
    ids = localedata.locale_identifiers()
    rest = sorted(i for i in ids if i not in PRIORITY and ("_" not in i or (i.count("_") == 1 and i.split("_")[1].isupper())))
    return [p for p in PRIORITY if p in ids] + rest


def main() -> None:
    months: dict[str, int] = {}
    month_patterns: dict[str, int] = {}  # names with digits ("5月", "tháng 5"): regex -> 0 (the digits give the month)
    weekdays: set[str] = set()
    ampm: dict[str, str] = {}
    zones: dict[str, int] = {}
    month_phrases: dict[str, int] = {}
    zone_phrases: dict[str, int] = {}
    fillers: set[str] = set()
    sample = dt.datetime(2023, 5, 26, 17, 21, tzinfo=dt.UTC)
    for ident in locales():
        loc = Locale.parse(ident)
        own = {r for ctx in ("format", "stand-alone") for w in ("wide", "abbreviated", "narrow", "short")
               for names in (loc.months[ctx].get(w, {}), loc.days[ctx].get(w, {}), loc.day_periods.get(ctx, {}).get(w, {}))
               for n in names.values() for r in word_runs(norm_text(n))}
        for fmt in ("full", "long", "medium"):
            for r in word_runs(norm_text(format_datetime(sample, fmt, tzinfo=get_timezone("UTC"), locale=ident))):
                if r not in own:
                    fillers.add(r)
        for ctx in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for m, name in loc.months[ctx][width].items():
                    text = norm_text(name)
                    if any(ch.isdigit() for ch in text):
                        literal = re.sub(r"[\d\s.\-]+", "", text)
                        if len(literal) >= 3 or (literal and not literal.isascii()):
                            month_patterns.setdefault(re.sub(r"\d+", "NUM", re.escape(text.strip(". "))), 0)
                        continue
                    runs = word_runs(text)
                    if runs:
                        months.setdefault(max(runs, key=len), m)
                    if len(runs) > 1:
                        month_phrases.setdefault(" ".join(runs), m)
                for name in loc.days[ctx][width].values():
                    for run in word_runs(norm_text(name)):
                        weekdays.add(run)
            for width in ("abbreviated", "wide"):
                periods = loc.day_periods.get(ctx, {}).get(width, {})
                for key in ("am", "pm"):
                    if key in periods:
                        marker = re.sub(r"[.\s]", "", norm_text(periods[key]))
                        if marker and (len(marker) > 1 or not marker.isascii()):
                            ampm.setdefault(marker, key)
        for zone in ZONES:
            tz = get_timezone(zone)
            for month in (1, 7):
                when = dt.datetime(2023, month, 15, 12, tzinfo=dt.UTC)
                name = format_datetime(when, "z", tzinfo=tz, locale=ident)
                if not name or not any(ch.isalpha() for ch in name) or any(ch.isdigit() for ch in name):
                    continue
                offset = int(when.astimezone(tz).utcoffset().total_seconds() // 60)
                runs = word_runs(norm_text(name))
                if len(runs) == 1 and len(runs[0]) <= 6:
                    zones.setdefault(runs[0], offset)
                elif runs:
                    zone_phrases.setdefault(" ".join(runs), offset)
    # a weekday spelled like a month is only a weekday when another month name is on the line (see dates.py)
    out = [
        '"""Month, weekday, AM/PM and zone names of every CLDR locale (generated by tests/io/gen_cldr_names.py with',
        'Babel; do not edit by hand). Names are normalized with :func:`volsurf.io.dates.norm_text`."""',
        "",
        "#: month name (longest letter run of the CLDR name) -> month number",
        "MONTHS: dict[str, int] = {",
    ]
    for m in range(1, 13):
        names = " ".join(sorted(k for k, v in months.items() if v == m))
        out.append(f"    **dict.fromkeys({names!r}.split(), {m}),")
    out += [
        "}",
        "",
        "#: month names of several words (letter runs joined by one space) -> month number",
        f"MONTH_PHRASES: dict[str, int] = {dict(sorted(month_phrases.items()))!r}",
        "",
        "#: month names holding the month number (``NUM``): regex fragments",
        f"MONTH_PATTERNS: tuple[str, ...] = {tuple(sorted(month_patterns))!r}",
        "",
        "#: weekday names (letter runs)",
        f"WEEKDAYS: frozenset[str] = frozenset({' '.join(sorted(weekdays))!r}.split())",
        "",
        "#: words of formatted dates that are not month, weekday or day-period names in their locale (connectors",
        "#: such as 'de', 'at', 'um', era and zone words): never taken as a month when another candidate is there",
        f"FILLERS: frozenset[str] = frozenset({' '.join(sorted(fillers))!r}.split())",
        "",
        "#: AM/PM markers without dots and spaces -> 'am' or 'pm'",
        f"AMPM: dict[str, str] = {dict(sorted(ampm.items()))!r}",
        "",
        "#: short zone names -> UTC offset in minutes",
        f"ZONES: dict[str, int] = {dict(sorted(zones.items()))!r}",
        "",
        "#: zone names of several words (or long) -> UTC offset in minutes (CLDR writes them where it has no short name)",
        f"ZONE_PHRASES: dict[str, int] = {dict(sorted(zone_phrases.items()))!r}",
    ]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
