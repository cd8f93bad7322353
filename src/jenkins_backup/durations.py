"""Calendar durations as retention's ``--keep-within`` takes them: ``7d``, ``2w``, ``1y2m3d``,
``36h``.

Units are y (years), m (months), w (weeks), d (days) and h (hours), each at most once, largest
first, as restic writes them. Years and months are calendar ones: a month before 31 March is
28 or 29 February (the day is clamped to the shorter month), not 3 March.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(
    r"^(?:(\d{1,4})y)?(?:(\d{1,5})m)?(?:(\d{1,5})w)?(?:(\d{1,6})d)?(?:(\d{1,7})h)?$"
)


@dataclass(frozen=True)
class Duration:
    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0

    def before(self, time_ns: int) -> int:
        """The instant this long before ``time_ns`` (ns since the epoch, UTC calendar)."""
        seconds, rest_ns = divmod(time_ns, 1_000_000_000)
        t = datetime.fromtimestamp(seconds, tz=UTC)
        months = t.year * 12 + (t.month - 1) - (self.years * 12 + self.months)
        year, month = divmod(months, 12)
        if year < 1:
            return -(2**63)  # before the calendar: everything is within
        day = min(t.day, calendar.monthrange(year, month + 1)[1])
        t = t.replace(year=year, month=month + 1, day=day)
        try:
            t -= timedelta(weeks=self.weeks, days=self.days, hours=self.hours)
        except OverflowError:
            return -(2**63)
        return int(t.timestamp()) * 1_000_000_000 + rest_ns


def parse_duration(text: str) -> Duration:
    """``1y2m3d``-style text as a Duration; ValueError with the reason when it is not one."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()):
        raise ValueError(
            f"{text!r} is not a duration: give a number and a unit, largest first, e.g. 7d, 2w,"
            " 36h, 1y2m3d (y years, m months, w weeks, d days, h hours)"
        )
    years, months, weeks, days, hours = (int(g) if g else 0 for g in m.groups())
    if not (years or months or weeks or days or hours):
        raise ValueError(f"{text!r} is a zero duration: it would keep only the newest backup")
    return Duration(years, months, weeks, days, hours)
