"""Reading the locale-dependent ``Date:`` line of a Cboe export (and ``--as-of`` values).

Cboe's page writes the download time with the browser's locale: ``May 26, 2023 at 5:21 PM EDT``,
``26 mai 2023 à 17:21 UTC+2``, ``26.05.2023, 17:21 MESZ``, ``2023年5月26日 17:21 GMT-4``, ``mar. 26/05/2023 17:21``
... and the export writes it unquoted when it holds no comma, so a CSV reader splits it. :func:`date_value_from_line`
takes the raw preamble line and cuts the value between the ``Date`` label and the next preamble key
(``Bid:``, ``Ask:``, ``Size:``, ``Volume:``); :func:`read_date_value` reads it with the month, weekday, AM/PM and
zone names of every CLDR locale (:mod:`volsurf.io.cldr_names`) and returns a :class:`DateReading`. When day and
month cannot be told apart (``05/06/2023``) the reading carries both; :func:`choose_reading` decides with the
expiries the file lists and says what it decided.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from volsurf.units import NY

# ----------------------------------------------------------------------------------------------- text


_DASHES = dict.fromkeys(map(ord, "\u2212\u2010\u2011\u2012\u2013\u2014\u2015\ufe63\uff0d"), "-")


@lru_cache(maxsize=4096)
def _char_map(ch: str) -> str:
    cat = unicodedata.category(ch)
    if cat == "Nd":
        return str(unicodedata.digit(ch))
    if cat == "Cf":
        return ""  # bidi marks (LRM, RLM, ALM) that RTL locales put around numbers
    if cat in ("Zs", "Cc"):
        return " "
    return ch


def norm_text(text: str) -> str:
    """``text`` in one spelling: NFKC, ASCII digits, minus signs and dashes as ``-``, spaces as ' ', casefolded."""
    s = unicodedata.normalize("NFKC", text).translate(_DASHES)
    if not s.isascii():
        s = "".join(_char_map(ch) for ch in s)
    return s.casefold()


def word_runs(text: str) -> list[str]:
    """Maximal runs of letters and combining marks (the words of a date line, digits and punctuation dropped)."""
    out: list[str] = []
    cur: list[str] = []
    for ch in text:
        if ch.isalpha() or (not ch.isascii() and unicodedata.category(ch)[0] == "M"):
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


# ----------------------------------------------------------------------------------------------- name tables

#: Zone abbreviations browsers print that CLDR spells out (or that collide there): offset in minutes.
_EXTRA_ZONES = {
    "est": -300, "edt": -240, "cst": -360, "cdt": -300, "mst": -420, "mdt": -360, "pst": -480, "pdt": -420,
    "akst": -540, "akdt": -480, "hst": -600, "ast": -240, "adt": -180, "nst": -210, "ndt": -150,
    "utc": 0, "gmt": 0, "ut": 0, "z": 0, "wet": 0, "west": 60, "bst": 60, "cet": 60, "cest": 120, "met": 60,
    "mest": 120, "mez": 60, "mesz": 120, "eet": 120, "eest": 180, "oez": 120, "oesz": 180, "wez": 0, "wesz": 60,
    "msk": 180, "trt": 180, "jst": 540, "kst": 540, "hkt": 480, "sgt": 480, "awst": 480, "acst": 570, "acdt": 630,
    "aest": 600, "aedt": 660, "nzst": 720, "nzdt": 780, "sast": 120, "brt": -180, "art": -180,
    "hne": -300, "hae": -240, "hnc": -360, "hac": -300, "hnr": -420, "har": -360, "hnp": -480, "hap": -420,
}

#: Month spellings browsers or spreadsheets use beyond CLDR's.
_EXTRA_MONTHS = {"sept": 9, "june": 6, "july": 7, "janv": 1, "févr": 2, "avr": 4, "juil": 7, "déc": 12}


def _phrase_pattern(phrases: list[str]) -> re.Pattern:
    """One regex for names of several words (longest first); any non-letters may stand between the words."""
    alts = sorted(phrases, key=len, reverse=True)
    return re.compile(
        r"(?<![^\W\d_])(" + "|".join(r"[\W_]+".join(map(re.escape, p.split(" "))) for p in alts) + r")(?![^\W\d_])"
    )


@dataclass(frozen=True)
class _Tables:
    months: dict[str, int]
    weekdays: frozenset[str]
    ampm: dict[str, str]
    zones: dict[str, int]
    fillers: frozenset[str]
    month_pat: re.Pattern | None
    ampm_pat: re.Pattern
    gmt_pat: re.Pattern
    month_phrases: dict[str, int]
    month_phrase_pat: re.Pattern
    zone_phrases: dict[str, int]
    zone_phrase_pat: re.Pattern


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    from volsurf.io import cldr_names as c

    months = {**c.MONTHS, **_EXTRA_MONTHS}
    zones = {**c.ZONES, **_EXTRA_ZONES}
    # "M05" is how CLDR's root locale (and locales without month names) writes May
    pats = [p.replace("NUM", r"(\d{1,2})") for p in c.MONTH_PATTERNS] + [r"(?<![^\W\d_])m(\d{2})(?!\d)"]
    month_pat = re.compile("|".join(f"(?:{p})" for p in pats)) if pats else None
    alts = sorted(c.AMPM, key=len, reverse=True)
    ampm_pat = re.compile(
        r"\s*(?<![^\W\d_])(" + "|".join(r"[.\s]*".join(map(re.escape, a)) for a in alts) + r")\.?(?![^\W\d_])"
    )
    # "GMT" as the locales spell it (UTC, GMT, MAG, TU, ...), optionally followed by an offset
    gmt_words = sorted({"gmt", "utc", "ut", *(k for k, v in zones.items() if v == 0 and len(k) > 1)}, key=len, reverse=True)
    gmt_pat = re.compile(
        r"(?<![^\W\d_])(?:" + "|".join(map(re.escape, gmt_words)) + r")(?:\s*([+-])\s*(\d{1,2})(?:[:.]?(\d{2}))?)?(?![^\W\d_])"
    )
    return _Tables(
        months, c.WEEKDAYS, c.AMPM, zones, c.FILLERS, month_pat, ampm_pat, gmt_pat,
        c.MONTH_PHRASES, _phrase_pattern(list(c.MONTH_PHRASES)), c.ZONE_PHRASES, _phrase_pattern(list(c.ZONE_PHRASES)),
    )


# ----------------------------------------------------------------------------------------------- the reading


@dataclass(frozen=True)
class DateReading:
    """What a date value says.

    Attributes
    ----------
    time : pandas.Timestamp
        The instant (New York time); a date without a time of day is that day's 16:00 (the close).
    alternatives : tuple of pandas.Timestamp
        Other readings when day and month are both 12 or less in a numeric date (``05/06/2023``).
    order : str
        How the date was written: ``name`` (a month name), ``ISO``, ``YMD``, ``DMY`` or ``MDY`` (the order of
        ``time``; the alternative has the other).
    why : str
        Why ``order`` was preferred for an ambiguous numeric date ("" otherwise).
    has_time, has_zone : bool
        Whether the value gave a time of day and a zone (without one: New York time).
    """

    time: pd.Timestamp
    alternatives: tuple[pd.Timestamp, ...] = ()
    order: str = "name"
    why: str = ""
    has_time: bool = True
    has_zone: bool = True


_LABEL = re.compile(r'^[\s",;\ufeff]*(?:date|datum|fecha|data|дата|日付|日期|날짜)\s*[:：]', re.I)
_NEXT_KEY = re.compile(r'[",;\s]*(?:bid|ask|size|volume)\s*:', re.I)


def date_value_from_line(line: str) -> str | None:
    """The date value of a raw preamble line (``Date: ...,Bid: ...``), or None when the line has no Date label.

    Everything between the label and the next preamble key (``Bid:``, ``Ask:``, ``Size:``, ``Volume:``), with
    quotes, stray quotes and trailing separators removed; the CSV quoting is not trusted.
    """
    m = _LABEL.match(line)
    if m is None:
        return None
    rest = line[m.end() :]
    k = _NEXT_KEY.search(rest)
    if k is not None:
        rest = rest[: k.start()]
    return rest.replace('"', " ").strip(" \t,;'")


_ISO = re.compile(
    r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:t|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?"
    r"(?:\s*(z|[+-]\d{2}(?::?\d{2})?)(?![\w:]))?"
)
_YMD = re.compile(r"(?<!\d)(\d{4})\s*([./-])\s*(\d{1,2})\s*\2\s*(\d{1,2})(?!\d)\.?")
_XYY = re.compile(r"(?<!\d)(\d{1,2})\s*([./-])\s*(\d{1,2})\s*\2\s*(\d{4}|\d{2})(?![\d:])")
_TIME_COLON = re.compile(
    r"(?<!\d)(\d{1,2})\s*(?::|h|시|時|时|点|นาฬิกา|ساعت)\s*(\d{1,2})(?:\s*(?::|분|分|min(?![^\W\d_])|นาที)\s*(\d{1,2}))?"
    r"(?:\s*(?:초|秒|s(?![^\W\d_])|วินาที))?(?:[.,]\d+)?(?:\s*\(?\s*([+-])(\d{2}):?(\d{2})\)?)?(?!\d)"
)
_TIME_DOT = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{2})(?:\.(\d{2}))?(?:\s*\(?\s*([+-])(\d{2}):?(\d{2})\)?)?(?![\d])")
_CJK = {"year": re.compile(r"(\d{4})\s*[年년]"), "day": re.compile(r"(?<!\d)(\d{1,2})\s*[日일]")}
_UPPER_TOKEN = re.compile(r"(?<![A-Za-z])([A-Z]{2,5})(?![A-Za-z])")
_KNOWN_UPPER = frozenset({"AM", "PM", "GMT", "UTC", "UT"})
#: Words written between date and time (or after it) that are no zone, whatever their case.
_CONNECTORS = frozenset("at um uhr kl klo om alle las der den the and und et y às ás le el del ora hrs".split())


def _blank(s: str, m: re.Match) -> str:
    return s[: m.start()] + " " * (m.end() - m.start()) + s[m.end() :]


def _offset(sign: str | None, hh: str | None, mm: str | None) -> int:
    if sign is None:
        return 0
    v = int(hh or 0) * 60 + int(mm or 0)
    return -v if sign == "-" else v


def read_date_value(value: str) -> DateReading:
    """Read a date value written in any CLDR locale into a :class:`DateReading`.

    Parameters
    ----------
    value : str
        The value of a ``Date:`` line (with or without its label), e.g. ``mar. 26/05/2023 17:21 UTC−4``.

    Raises
    ------
    ValueError
        With what is missing (no year, no month, an unknown zone name ...).
    """
    tb = _tables()
    months, weekdays, ampm_table, zones, month_pat, ampm_pat, gmt_pat, fillers = (
        tb.months, tb.weekdays, tb.ampm, tb.zones, tb.month_pat, tb.ampm_pat, tb.gmt_pat, tb.fillers
    )
    original = value
    m = _LABEL.match(value)
    if m:
        value = value[m.end() :]
    s = norm_text(value.replace('"', " "))
    year = month = day = None
    hour = minute = None
    second = 0
    time_span: tuple[int, int] | None = None
    offset: int | None = None
    order = "name"
    alt: tuple[int, int, int] | None = None
    why = ""
    ampm_hint = bool(re.search(r"(?<![^\W\d_])[ap]\.?\s*m\.?(?![^\W\d_])", s))

    iso = _ISO.search(s)
    if iso:
        year, month, day = int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
        order = "ISO"
        if iso.group(4):
            hour, minute, second = int(iso.group(4)), int(iso.group(5)), int(iso.group(6) or 0)
        z = iso.group(7)
        if z:
            offset = 0 if z == "z" else _offset(z[0], z[1:3], z[-2:] if len(z) > 3 else None)
        s = _blank(s, iso)
    # zone written as an offset from GMT/UTC (GMT+2, UTC−4, GMT-04:00, UTC)
    for g in gmt_pat.finditer(s):
        offset = _offset(g.group(1), g.group(2), g.group(3))
        s = _blank(s, g)
        break
    if year is None:
        ymd = _YMD.search(s)
        if ymd:
            year, month, day, order = int(ymd.group(1)), int(ymd.group(3)), int(ymd.group(4)), "YMD"
            s = _blank(s, ymd)
    if year is None:
        has_year4 = re.search(r"(?<!\d)\d{4}(?!\d)", s) is not None
        for x in _XYY.finditer(s):
            a, b, yy = int(x.group(1)), int(x.group(3)), x.group(4)
            if len(yy) == 2 and has_year4:
                continue
            y = int(yy) + (2000 if len(yy) == 2 else 0)
            dmy_ok, mdy_ok = _valid(y, b, a), _valid(y, a, b)
            if not (dmy_ok or mdy_ok):
                continue
            sep = x.group(2)
            if dmy_ok and mdy_ok and a != b:
                if sep in ".-":
                    order, why = "DMY", f"'{sep}' between the numbers is written day first"
                elif ampm_hint:
                    order, why = "MDY", "a 12-hour clock with '/' is the US order (month first)"
                else:
                    order, why = "DMY", "a 24-hour clock with '/' is written day first"
                alt = (y, a, b) if order == "DMY" else (y, b, a)
            else:
                order = "DMY" if dmy_ok else "MDY"
            year, month, day = (y, b, a) if order == "DMY" else (y, a, b)
            s = _blank(s, x)
            break
    if hour is None:
        for pat in (_TIME_COLON, _TIME_DOT):
            for t in pat.finditer(s):
                h, mi = int(t.group(1)), int(t.group(2))
                if h <= 24 and mi <= 59:
                    hour, minute, second = h, mi, int(t.group(3) or 0)
                    if t.group(4):
                        offset = _offset(t.group(4), t.group(5), t.group(6))
                    time_span = (t.start(), t.end())
                    s = _blank(s, t)
                    break
            if hour is not None:
                break
    if hour is not None and hour <= 12 and time_span is not None:
        # the AM/PM marker stands right after the time (or right before it: 오후 5:21, 下午5:21)
        marker = ampm_pat.match(s, time_span[1])
        marker = marker if marker and marker.group(1).strip() else None
        if marker is None:
            for cand in ampm_pat.finditer(s, max(0, time_span[0] - 16), time_span[0]):
                if cand.group(1).strip() and not s[cand.end() : time_span[0]].strip():
                    marker = cand
        if marker and re.sub(r"[.\s]", "", marker.group(1)) not in zones:
            kind = ampm_table.get(re.sub(r"[.\s]", "", marker.group(1)))
            if kind == "pm" and hour < 12:
                hour += 12
            elif kind == "am" and hour == 12:
                hour = 0
            s = _blank(s, marker)
    if offset is None:
        # a numeric offset standing apart from the time (after an AM/PM marker, or after a time-first date)
        off = re.search(r"(?:^|[\s(])([+-])(\d{2}):?(\d{2})(?!\d)", s)
        if off:
            offset = _offset(off.group(1), off.group(2), off.group(3))
            s = _blank(s, off)
    if offset is None:
        zp = tb.zone_phrase_pat.search(s)
        if zp:
            offset = tb.zone_phrases[" ".join(word_runs(zp.group(1)))]
            s = _blank(s, zp)
    words = word_runs(s)
    if offset is None:
        for w in words:
            if w in zones and w not in months and w not in ampm_table:
                offset = zones[w]
                break
        else:
            # an abbreviation in capitals after the time that no table knows: do not guess New York time
            tail = original.split(":", 1)[-1] if _LABEL.match(original) else original
            for u in _UPPER_TOKEN.findall(tail):
                low = u.casefold()
                if (len(u) >= 3 and u not in _KNOWN_UPPER and low not in months and low not in weekdays
                        and low not in ampm_table and low not in fillers and low not in _CONNECTORS):
                    raise ValueError(f"unknown time zone {u!r}")
    if year is None:
        cy = _CJK["year"].search(s)
        if cy:
            year = int(cy.group(1))
            s = _blank(s, cy)
        else:
            y4 = re.search(r"(?<!\d)(\d{4})(?!\d)", s)
            if y4 is None:
                raise ValueError("no year")
            year = int(y4.group(1))
            s = _blank(s, y4)
        if month_pat is not None:
            mp = month_pat.search(s)
            if mp:
                month = int(next(g for g in mp.groups() if g is not None))
                s = _blank(s, mp)
        if month is None:
            ph = tb.month_phrase_pat.search(s)
            if ph:
                month = tb.month_phrases[" ".join(word_runs(ph.group(1)))]
                s = _blank(s, ph)
        if month is None:
            month = _month_from_words(word_runs(s), months, weekdays, fillers)
        cd = _CJK["day"].search(s)
        if cd:
            day = int(cd.group(1))
        else:
            nums = [int(n) for n in re.findall(r"(?<!\d)(\d{1,2})(?!\d)", s) if 1 <= int(n) <= 31]
            if not nums:
                raise ValueError("no day of the month")
            day = nums[0]
    if month is None or day is None:
        raise ValueError("no month or day")
    if not _valid(year, month, day):
        raise ValueError(f"no such date {year}-{month:02d}-{day:02d}")
    has_time = hour is not None
    if not has_time:
        hour, minute, second = 16, 0, 0
    if hour == 24:
        hour = 0
    has_zone = offset is not None

    def instant(y: int, mo: int, d: int) -> pd.Timestamp:
        naive = pd.Timestamp(year=y, month=mo, day=d, hour=hour, minute=minute, second=second)
        if offset is None:
            return naive.tz_localize(NY, ambiguous=True, nonexistent="shift_forward")
        return (naive - pd.Timedelta(minutes=offset)).tz_localize("UTC").tz_convert(NY)

    alts = (instant(*alt),) if alt is not None else ()
    return DateReading(instant(year, month, day), alts, order, why, has_time, has_zone)


def _month_from_words(words: list[str], months: dict[str, int], weekdays: frozenset[str], fillers: frozenset[str]) -> int:
    """The month a date's words name: an exact month name (one that is no weekday or connector first), else a
    word that starts with a month name (Basque ``maiatzaren``) or a Hebrew word with a one-letter prefix (``במאי``)."""
    cands = [w for w in words if w in months]
    cands.sort(key=lambda w: (w in fillers, w in weekdays))
    if cands:
        return months[cands[0]]
    for w in words:
        if "\u0590" <= w[0] <= "\u05ff" and w[1:] in months:
            return months[w[1:]]
    best = ""
    for w in words:
        if w in weekdays:
            continue
        for n in range(len(w) - 1, 3, -1):
            if w[:n] in months and n > len(best):
                best = w[:n]
                break
    if best:
        return months[best]
    raise ValueError("no month (name or number)")


def _valid(y: int, m: int, d: int) -> bool:
    try:
        dt.date(y, m, d)
    except ValueError:
        return False
    return 1990 <= y <= 2100


def parse_cboe_date_line(text: str) -> pd.Timestamp:
    """The instant a ``Date:`` value (with or without its label) gives, in New York time.

    Handles e.g. ``February 5 2022, 8:09 PM EST``, ``September 14, 2023 at 4:31 PM EDT``,
    ``23 de marzo de 2022, 10:11 GMT-4``, ``9 декабря 2023 г. в 13:49 GMT-5``, ``26.05.2023, 17:21 MESZ``. A value
    without a zone is New York time; an ambiguous numeric date is read as :func:`read_date_value` prefers.
    Raises ``ValueError`` when it cannot be read.
    """
    value = date_value_from_line(text)
    return read_date_value(text if value is None else value).time


def choose_reading(reading: DateReading, first_expiry: dt.date | None, text: str) -> tuple[pd.Timestamp, str | None]:
    """The instant of ``reading``, deciding between day-first and month-first readings of an ambiguous date.

    A Cboe export lists expiries from the trading date on (none older), and its first expiry is usually within
    days of it: the reading whose trading date is on or before ``first_expiry`` and closest to it wins; when
    both qualify equally, the order the line itself suggests (:attr:`DateReading.why`). Returns the instant and
    the sentence saying what was decided (None when nothing was ambiguous).
    """
    if not reading.alternatives:
        return reading.time, None
    from volsurf.market import calendar

    options = [reading.time, *reading.alternatives]
    orders = [reading.order, "MDY" if reading.order == "DMY" else "DMY"]

    def score(t: pd.Timestamp) -> tuple[int, int]:
        if first_expiry is None:
            return (0, 0)
        gap = (first_expiry - calendar.trade_date_for(t)).days
        return (0 if gap >= 0 else 1, abs(gap))

    scores = [score(t) for t in options]
    best = min(range(len(options)), key=lambda i: (scores[i], i))
    other = 1 - best
    if first_expiry is not None and scores[best] != scores[other]:
        reason = f"the first listed expiry is {first_expiry}"
    else:
        reason = reading.why or "the line gives no other hint"
    names = {"DMY": "day first", "MDY": "month first"}
    msg = (
        f"the Date line {text[:60]!r} reads as {options[best]:%Y-%m-%d} ({names[orders[best]]}) or "
        f"{options[other]:%Y-%m-%d} ({names[orders[other]]}); took {options[best]:%Y-%m-%d} because {reason}"
    )
    return options[best], msg


def parse_as_of(value: str | pd.Timestamp | dt.datetime) -> pd.Timestamp:
    """An ``--as-of`` value as a New York timestamp: ISO (``2022-04-04 16:00``, ``2022-04-04T20:00Z``) or any
    date that :func:`read_date_value` reads; without a zone it is New York time, without a time the close."""
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
        return ts.tz_localize(NY) if ts.tzinfo is None else ts.tz_convert(NY)
    return read_date_value(str(value)).time


def read_as_of(value: str | pd.Timestamp | dt.datetime) -> pd.Timestamp:
    """:func:`parse_as_of`, with a value it cannot read reported as a :class:`~volsurf.errors.ParameterError`
    (one line, with an example of what it reads)."""
    from volsurf.errors import ParameterError

    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise ParameterError(f"cannot read the as-of time {value!r} ({exc})",
                             hint="e.g. '2022-04-01 16:15' (New York time) or '2022-04-01T20:15Z'") from exc
