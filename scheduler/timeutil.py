"""Dates, times, durations and cron fields as staff write them, with clear refusals.

Pure functions: nothing here reads the clock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s|ms)")
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
DURATION_HELP = "write a number and a unit, such as 90s, 15m, 12h, 3d, 1w or 1h30m"
MAX_DURATION = timedelta(days=3650)  # no interval, grace, jitter or pace is longer than 10 years
# the years a campaign may name: far enough for any detention date or end, near enough
# that adding a day, a zone offset or a grace never leaves the calendar
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)
RANGE_HELP = f"write a date between {FIRST_DAY} and {LAST_DAY}"


def _shown(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _in_range(day: date, value: object) -> None:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"'{_shown(value)}' is out of range; {RANGE_HELP}")


def parse_duration(value: object) -> timedelta:
    """Parse ``15m``, ``12h``, ``3d``, ``1h30m`` or ``0`` into a timedelta."""
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a duration; {DURATION_HELP}")
    if isinstance(value, int | float):
        if value == 0:
            return timedelta(0)
        raise ValueError(f"'{_shown(value)}' has no unit; {DURATION_HELP}")
    text = str(value).strip().lower().replace(" ", "")
    if text == "0":
        return timedelta(0)
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"'{_shown(value)}' is not a duration; {DURATION_HELP}")
    if not seconds <= MAX_DURATION.total_seconds():  # also inf, from 400 nines
        raise ValueError(
            f"'{_shown(value)}' is too long; a duration may be at most "
            f"{MAX_DURATION.days}d (10 years)"
        )
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Write a timedelta back the way staff write it."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def parse_date(value: object) -> date:
    """Parse ``2025-12-01`` into a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{_shown(value)}' is not a date; write YYYY-MM-DD, such as 2025-12-01"
        ) from None
    _in_range(day, value)
    return day


def parse_datetime(value: object) -> datetime:
    """Parse ``2025-12-03 10:00`` (local, naive) or with an offset (aware)."""
    if isinstance(value, datetime):
        return value
    text = str(value).strip()
    try:
        if not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", text
        ):
            raise ValueError
        if len(text) > 10 and text[11:13].find(":") == 1:  # 9:00 -> 09:00
            text = text[:11] + "0" + text[11:]
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"'{_shown(value)}' is not a date and time; write YYYY-MM-DD HH:MM, such as 2025-12-03 10:00 "
            "(in the campaign's time zone), or add an offset: 2025-12-03 10:00+04:00"
        ) from None
    _in_range(when.date(), value)
    return when


def parse_date_or_datetime(value: object) -> date | datetime:
    """Parse a date, or a date and time when one is given."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return parse_date(text)
    try:
        return parse_datetime(text)
    except ValueError as exc:
        if "out of range" in str(exc):
            raise
        raise ValueError(
            f"'{_shown(value)}' is not a date; write YYYY-MM-DD (or YYYY-MM-DD HH:MM for a time of day)"
        ) from None


@cache
def zone(name: str) -> ZoneInfo:
    """Return the IANA time zone of that name, or say which names are close."""
    try:
        if not name or "\\" in name or name.startswith("/") or ".." in name:
            raise ZoneInfoNotFoundError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        import difflib

        close = difflib.get_close_matches(name, sorted(available_timezones()), n=3)
        hint = (
            f"did you mean {', '.join(close)}?" if close else "use an IANA name such as Asia/Baku"
        )
        raise ValueError(f"unknown time zone '{name}'; {hint}") from None


def localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """Attach a zone to a wall-clock time, by the daylight-saving rules we promise.

    A time that does not exist (the hour skipped in spring) moves forward by the
    gap; a time that happens twice (the hour repeated in autumn) is the first one.
    """
    aware = naive.replace(tzinfo=tz, fold=0)
    back = aware.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != naive:
        return back
    return aware


def to_zone(value: datetime, tz: ZoneInfo) -> datetime:
    """Return an aware datetime in ``tz``; a naive one is wall-clock time there."""
    if value.tzinfo is None:
        return localize(value, tz)
    return value.astimezone(tz)


def start_of(value: date | datetime, tz: ZoneInfo) -> datetime:
    """First instant of a date (or the datetime itself) in ``tz``."""
    if isinstance(value, datetime):
        return to_zone(value, tz)
    return localize(datetime(value.year, value.month, value.day), tz)


def end_of(value: date | datetime, tz: ZoneInfo) -> datetime:
    """First instant after an inclusive date (or just after the datetime itself)."""
    if isinstance(value, datetime):
        return to_zone(value, tz) + timedelta(microseconds=1)
    nxt = value + timedelta(days=1)
    return localize(datetime(nxt.year, nxt.month, nxt.day), tz)


# -- cron ------------------------------------------------------------------

_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
CRON_HELP = (
    "write five fields: minute hour day-of-month month day-of-week, "
    'such as "0 11 * * *" (11:00 daily) or "0 9 * * 1" (Mondays at 09:00)'
)


def _dow_value(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit():
        number = int(token)
        if number > 7:
            raise ValueError(f"day of week {number} is out of range (0-7, 0 and 7 are Sunday)")
        return number % 7
    if token[:3] in _DOW_NAMES and len(token) == 3:
        return _DOW_NAMES.index(token[:3])
    raise ValueError(f"'{token}' is not a day of week (0-7 or sun..sat)")


def _dow_field(field: str) -> str:
    """Translate standard cron's day of week (0 = Sunday) into names APScheduler reads.

    APScheduler 3 counts 0 as Monday; a staff member's ``0 9 * * 0`` means Sunday.
    """
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"'{step_text}' is not a step in the day-of-week field")
            step = int(step_text)
        if part == "*":
            lo, hi = 0, 6
        elif "-" in part:
            a, b = part.split("-", 1)
            lo, hi = _dow_value(a), _dow_value(b)
            if b.strip() == "7":
                hi = 7
            if hi < lo:
                raise ValueError(f"'{part}' runs backwards in the day-of-week field")
        else:
            lo = hi = _dow_value(part)
        days.update(d % 7 for d in range(lo, hi + 1, step))
    # APScheduler wants mon..sun order; names avoid any numbering question
    return ",".join(_DOW_NAMES[d] for d in sorted(days, key=lambda d: (d - 1) % 7))


def cron_fields(expr: str) -> dict[str, str]:
    """Split a five-field cron expression into APScheduler's CronTrigger arguments."""
    fields = str(expr).split()
    if len(fields) != 5:
        raise ValueError(f"'{expr}' has {len(fields)} fields; {CRON_HELP}")
    minute, hour, day, month, dow = fields
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise ValueError(
            f"'{expr}' restricts both day of month and day of week, which cron tools read "
            "differently; restrict one of them (use two posts for both)"
        )
    return {
        "minute": minute,
        "hour": hour,
        "day": "*" if day == "?" else day,
        "month": month,
        "day_of_week": _dow_field("*" if dow == "?" else dow),
    }
