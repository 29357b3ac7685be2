"""Reading the locale-dependent ``Date:`` line of a Cboe export."""

from __future__ import annotations

import re

import pandas as pd

from volsurf.market.snapshot import NY

_MONTHS: dict[str, int] = {}
for _i, _names in enumerate(
    [
        "january enero janvier januar gennaio janeiro января январь jan ene janv",
        "february febrero février fevrier februar febbraio fevereiro февраля февраль feb febr",
        "march marzo mars märz marz março marco марта март mar mär",
        "april abril avril aprile апреля апрель apr abr avr",
        "may mayo mai maggio maio мая май",
        "june junio juin juni giugno junho июня июнь jun",
        "july julio juillet juli luglio julho июля июль jul",
        "august agosto août aout августа август aug ago",
        "september septiembre setiembre septembre settembre setembro сентября сентябрь sep sept set",
        "october octubre octobre oktober ottobre outubro октября октябрь oct okt ott out",
        "november noviembre novembre novembro ноября ноябрь nov",
        "december diciembre décembre decembre dezember dicembre dezembro декабря декабрь dec dic dez déc",
    ],
    start=1,
):
    for _n in _names.split():
        _MONTHS[_n] = _i

_TZ_ABBR = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "UTC": 0, "GMT": 0}


def parse_cboe_date_line(text: str) -> pd.Timestamp:
    """Parse the locale-dependent ``Date:`` value of a Cboe export into a timezone-aware timestamp.

    Handles e.g. ``February 5 2022, 8:09 PM EST``, ``September 14, 2023 at 4:31 PM EDT``,
    ``23 de marzo de 2022, 10:11 GMT-4``, ``9 декабря 2023 г. в 13:49 GMT-5``, ``3 August 2026 at 05:22 GMT-4``.
    A value without a zone is taken as New York time. Raises ``ValueError`` when it cannot be read.
    """
    s = text.strip().strip('"')
    s = re.sub(r"^date:\s*", "", s, flags=re.I)
    low = s.lower()
    month = None
    for word in re.findall(r"[^\W\d_]+\.?", low):
        w = word.rstrip(".")
        if w in _MONTHS and w not in {"de", "a", "at", "в", "г"}:
            month = _MONTHS[w]
            break
    if month is None:
        raise ValueError(f"no month name in {text!r}")
    tm = re.search(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", low)
    if tm is None:
        raise ValueError(f"no time of day in {text!r}")
    hour, minute = int(tm.group(1)), int(tm.group(2))
    before_time = low[: tm.start()]
    year_m = re.search(r"\b(19|20)\d{2}\b", before_time)
    if year_m is None:
        raise ValueError(f"no year in {text!r}")
    year = int(year_m.group(0))
    day_candidates = [int(x) for x in re.findall(r"\b(\d{1,2})\b", before_time.replace(year_m.group(0), " "))]
    if not day_candidates:
        raise ValueError(f"no day of month in {text!r}")
    day = day_candidates[0]
    after = low[tm.end() :]
    ampm = re.search(r"\b([ap])\.?\s?m\.?", after)
    if ampm:
        if ampm.group(1) == "p" and hour < 12:
            hour += 12
        elif ampm.group(1) == "a" and hour == 12:
            hour = 0
    offset_hours: float | None = None
    gm = re.search(r"(?:gmt|utc)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", after)
    if gm:
        sign = 1 if gm.group(1) == "+" else -1
        offset_hours = sign * (int(gm.group(2)) + int(gm.group(3) or 0) / 60)
    else:
        ab = re.search(r"\b([a-z]{3})\b", after.replace("pm", " ").replace("am", " "))
        if ab and ab.group(1).upper() in _TZ_ABBR:
            offset_hours = _TZ_ABBR[ab.group(1).upper()]
    naive = pd.Timestamp(year=year, month=month, day=day, hour=hour, minute=minute)
    if offset_hours is None:
        return naive.tz_localize(NY)
    return (naive - pd.Timedelta(hours=offset_hours)).tz_localize("UTC").tz_convert(NY)
