"""Clock-aligned repetition of fetch cycles during NYSE sessions (``volsurf fetch --every``).

Cycles fall on multiples of the interval (every 15 minutes: :00, :15, :30, :45), only from the session open to
its close plus the feed's 15-minute delay (holidays and early closes from the exchange calendar) unless told
otherwise; the clock and the wait are injectable for tests.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from volsurf.errors import DataError, ParameterError
from volsurf.history.feed import FEED_DELAY
from volsurf.market.calendar import is_session, session_open_close
from volsurf.units import NY

# ---------------------------------------------------------------------------------------------------------
# Scheduling
# ---------------------------------------------------------------------------------------------------------

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_interval(text: str) -> float:
    """Seconds of an interval written ``30s``, ``15m``, ``1h`` (1 second to 1 day)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)\s*", str(text).lower())
    if not m:
        raise ParameterError(f"cannot read the interval {text!r}", hint="a number and a unit: 30s, 15m, 1h")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not 1 <= seconds <= 86400:
        raise ParameterError(f"interval {text!r} is out of range", hint="between 1s and 24h")
    return seconds


def parse_until(text: str, now: pd.Timestamp) -> pd.Timestamp:
    """The end of a scheduled run: ``HH:MM`` (New York time: the next such time, today or tomorrow) or a date
    and time (New York unless a zone is given)."""
    now = _ny(now)
    s = str(text).strip()
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", s)
    if m:
        h, mi, se = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 23 or mi > 59 or se > 59:
            raise ParameterError(f"cannot read the time {text!r}", hint="HH:MM in New York time, e.g. 16:15")

        def at(day: dt.date) -> pd.Timestamp:
            wall = pd.Timestamp(day) + pd.Timedelta(hours=h, minutes=mi, seconds=se)
            return pd.Timestamp(wall.tz_localize(NY, ambiguous=True, nonexistent="shift_forward"))

        t = at(now.date())
        if t <= now:
            t = at(now.date() + dt.timedelta(days=1))
        return t
    try:
        return _ny(pd.Timestamp(s))
    except ValueError:
        raise ParameterError(f"cannot read the time {text!r}",
                             hint="HH:MM (New York time) or a date and time such as '2026-09-30 16:15'") from None


def _ny(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize(NY) if ts.tzinfo is None else ts.tz_convert(NY)


def next_tick(now: pd.Timestamp, every: float, *, inclusive: bool = False) -> pd.Timestamp:
    """The next time aligned to ``every`` seconds from New York midnight (15 minutes: :00, :15, :30, :45).

    ``inclusive`` returns ``now`` itself when it is on a tick.
    """
    now = _ny(now)
    midnight = _ny(pd.Timestamp(now.date()))
    elapsed = (now - midnight).total_seconds()
    k = math.ceil(elapsed / every) if inclusive else math.floor(elapsed / every) + 1
    t = midnight + pd.Timedelta(seconds=k * every)
    next_midnight = _ny(pd.Timestamp(now.date() + dt.timedelta(days=1)))
    return min(t, next_midnight)


def session_window(day: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """When the feed moves on NYSE session ``day``: from the open to the close (early closes included) plus
    :data:`FEED_DELAY`; None on weekends and holidays."""
    d = pd.Timestamp(day).date()
    if not is_session(d):
        return None
    open_, close = session_open_close(d)
    return open_, close + FEED_DELAY


def in_session(t: pd.Timestamp) -> bool:
    """True when ``t`` falls in a :func:`session_window`."""
    t = _ny(t)
    w = session_window(t.date())
    return w is not None and w[0] <= t <= w[1]


def next_in_session(t: pd.Timestamp, every: float) -> pd.Timestamp:
    """The first tick (aligned to ``every``) at or after ``t`` that falls in a session window."""
    t = _ny(t)
    day = t.date()
    for i in range(30):
        w = session_window(day + dt.timedelta(days=i))
        if w is None or w[1] < t:
            continue
        cand = next_tick(max(t, w[0]), every, inclusive=True)
        if cand <= w[1]:
            return cand
    raise DataError(f"no NYSE session within 30 days of {t}")  # pragma: no cover - the calendar has sessions


@dataclass
class ScheduleState:
    """What :func:`run_schedule` did: cycles run and why it ended (``count``, ``until``, ``stopped``)."""

    cycles: int = 0
    ended: str = ""
    started: list[pd.Timestamp] = field(default_factory=list)


def now_ny() -> pd.Timestamp:
    """The current time in New York (the schedule's clock)."""
    return pd.Timestamp.now(tz=NY)


def run_schedule(
    cycle: Callable[[int], object],
    *,
    every: float,
    until: pd.Timestamp | None = None,
    count: int | None = None,
    any_time: bool = False,
    clock: Callable[[], pd.Timestamp] = now_ny,
    wait: Callable[[float], bool] | None = None,
    on_wait: Callable[[pd.Timestamp, str], None] | None = None,
) -> ScheduleState:
    """Run ``cycle(n)`` (n = 1, 2, ...) on a schedule.

    The first cycle runs at once (at the first session tick when started outside a session); the next ones on
    the ticks of ``every`` seconds aligned to the clock (:func:`next_tick`). Without ``any_time`` only ticks in
    a NYSE session window count (:func:`session_window`); the wait across nights, weekends and holidays is
    announced through ``on_wait(time, reason)``.

    Parameters
    ----------
    cycle : callable
        Runs one cycle.
    every : float
        Seconds between ticks.
    until : Timestamp, optional
        No cycle starts after it.
    count : int, optional
        Stop after this many cycles.
    any_time : bool
        Ignore the exchange calendar.
    clock : callable
        The current time (tz-aware); tests inject a fake one.
    wait : callable
        ``wait(seconds) -> stop requested`` (default: :func:`time.sleep`, never stopped); waits are cut in
        pieces of at most a minute, so the clock is read again after a suspend.
    on_wait : callable, optional
        Told of waits for the next session.

    Returns
    -------
    ScheduleState
        Cycles run and why the run ended.
    """
    if count is not None and count < 1:
        raise ParameterError(f"count must be at least 1, got {count}")

    def _sleep(seconds: float) -> bool:
        time.sleep(seconds)
        return False

    do_wait = wait or _sleep
    state = ScheduleState()
    first = True
    while True:
        if count is not None and state.cycles >= count:
            state.ended = "count"
            return state
        now = _ny(clock())
        due = now if first else next_tick(now, every)
        if not any_time and not in_session(due):
            due = next_in_session(due, every)
            if until is None or due <= until:
                if on_wait is not None:
                    on_wait(due, "waiting for the NYSE session")
        if until is not None and due > until:
            state.ended = "until"
            return state
        while True:
            remaining = (due - _ny(clock())).total_seconds()
            if remaining <= 0:
                break
            if do_wait(min(remaining, 60.0)):
                state.ended = "stopped"
                return state
        if do_wait(0):  # a stop asked for during the last cycle, when the next one is already due
            state.ended = "stopped"
            return state
        state.cycles += 1
        state.started.append(_ny(clock()))
        cycle(state.cycles)
        first = False
