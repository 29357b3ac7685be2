"""Units and market constants used across volsurf (one definition each).

Time to expiry is ACT/365 on minutes (years = minutes / ``MINUTES_PER_YEAR``); calendar-day maturities convert
with ``DAYS_PER_YEAR``; every exchange time is New York time (``NY``).
"""

from __future__ import annotations

#: The exchange time zone of US listed options (settlement, sessions, Cboe's Date line default).
NY = "America/New_York"
#: Minutes in a day.
MINUTES_PER_DAY = 1_440
#: Calendar days per year of the ACT/365 day count.
DAYS_PER_YEAR = 365.0
#: Minutes per year of the ACT/365 day count (time to expiry in years = minutes / MINUTES_PER_YEAR).
MINUTES_PER_YEAR = 525_600.0

__all__ = ["DAYS_PER_YEAR", "MINUTES_PER_DAY", "MINUTES_PER_YEAR", "NY"]
