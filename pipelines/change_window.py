"""Change windows: is a deploy allowed now? (pure; the clock is an argument).

Spec: windows separated by commas, each `[DAY] HH:MM-[DAY] HH:MM [ZONE]`:

    Sat 22:00-Sun 04:00 UTC        weekly, across midnight
    Wed 01:00-03:00 Europe/Berlin  weekly; the end is on the start's day (or the next one)
    22:00-02:00                    every day (zone UTC when none is given)
    always | never

A window is half-open, [start, end), in the wall-clock time of its zone (a DST shift inside a
window lengthens or shortens it by the shift).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = 86_400
WEEK = 7 * DAY
DAYS = {name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
FULL_DAYS = {name: i for i, name in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}
ALWAYS = "always"
NEVER = "never"


class WindowError(ValueError):
    """A change-window spec that cannot be read."""


@dataclass(frozen=True, slots=True)
class Window:
    text: str
    start: int  # seconds since the period's start (Monday 00:00 weekly, midnight daily)
    end: int
    period: int  # WEEK or DAY
    zone: tzinfo

    @property
    def length(self) -> int:
        return (self.end - self.start) % self.period

    def position(self, moment: datetime) -> int:
        local = moment.astimezone(self.zone)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return seconds + (local.weekday() * DAY if self.period == WEEK else 0)


@dataclass(frozen=True, slots=True)
class Verdict:
    open: bool
    reason: str
    closes: datetime | None = None  # when open: the end of the window we are in
    opens: datetime | None = None  # when closed: the next start of any window


def _zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WindowError(f"unknown time zone {name!r}") from exc


def _day(word: str) -> int:
    day = DAYS.get(word.lower(), FULL_DAYS.get(word.lower()))
    if day is None:
        raise WindowError(f"{word!r} is not a day (Mon..Sun)")
    return day


def _clock(word: str) -> int:
    hours, sep, minutes = word.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise WindowError(f"{word!r} is not a time HH:MM")
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return DAY
    if not (0 <= h < 24 and 0 <= m < 60):
        raise WindowError(f"{word!r} is not a time HH:MM")
    return h * 3600 + m * 60


def _end_point(words: list[str]) -> tuple[int | None, int]:
    """(day or None, seconds into the day) from `[DAY] HH:MM`."""
    if len(words) == 1:
        return None, _clock(words[0])
    if len(words) == 2:
        return _day(words[0]), _clock(words[1])
    raise WindowError(f"{' '.join(words)!r} is not [DAY] HH:MM")


def parse_window(text: str) -> Window:
    left, sep, right = text.partition("-")
    if not sep:
        raise WindowError(f"{text!r}: a window is START-END, e.g. Sat 22:00-Sun 04:00 UTC")
    start_words, end_words = left.split(), right.split()
    zone: tzinfo = UTC
    if len(end_words) >= 2 and ":" not in end_words[-1]:
        zone = _zone(end_words.pop())
    if not start_words or not end_words:
        raise WindowError(f"{text!r}: a window is START-END, e.g. Sat 22:00-Sun 04:00 UTC")
    start_day, start = _end_point(start_words)
    end_day, end = _end_point(end_words)
    if start_day is None:
        if end_day is not None:
            raise WindowError(f"{text!r}: give the start's day too")
        window = Window(text.strip(), start, end % DAY, DAY, zone)
    else:
        if end_day is None:  # same day, or the next one when it ends at or before the start
            end_day = start_day if end > start else (start_day + 1) % 7
        window = Window(text.strip(), start_day * DAY + start, (end_day * DAY + end) % WEEK,
                        WEEK, zone)
    if window.length == 0:
        raise WindowError(f"{text!r}: the window is empty")
    return window


def parse_windows(spec: str) -> tuple[Window, ...] | bool:
    """The windows of a spec, or True for `always` and False for `never`."""
    words = spec.strip().lower()
    if not words:
        raise WindowError("no change window given")
    if words == ALWAYS:
        return True
    if words == NEVER:
        return False
    return tuple(parse_window(part) for part in spec.split(",") if part.strip())


def check(spec: str, now: datetime, margin: int = 0) -> Verdict:
    """Open when `now` lies in a window that stays open `margin` seconds more."""
    if now.tzinfo is None:
        raise WindowError("the time must carry a zone")
    windows = parse_windows(spec)
    if windows is True:
        return Verdict(True, "the change window is 'always'")
    if windows is False:
        return Verdict(False, "the change window is 'never' (change freeze)")
    assert not isinstance(windows, bool)
    next_open: datetime | None = None
    for w in windows:
        elapsed = (w.position(now) - w.start) % w.period
        left = w.length - elapsed
        if elapsed < w.length and left >= margin:
            closes = now + timedelta(seconds=left)
            return Verdict(True, f"inside change window {w.text}", closes=closes)
        wait = (w.start - w.position(now)) % w.period or w.period
        opens = now + timedelta(seconds=wait)
        if next_open is None or opens < next_open:
            next_open = opens
    too_short = any((w.position(now) - w.start) % w.period < w.length for w in windows)
    reason = (f"the change window closes in less than {margin}s" if too_short
              else f"outside the change window {spec.strip()}")
    return Verdict(False, reason, opens=next_open)
