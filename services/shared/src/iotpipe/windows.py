"""Time windows, as the services name them in URLs and requests.

A window is a half-open UTC interval ``[start, end)``. Its text form is an ISO-8601
interval with ``--`` as the separator (ISO 8601 allows it where ``/`` cannot be
used, as in a URL path): ``2026-11-26T00:00:00Z--2026-11-27T00:00:00Z``. A day
(``2026-11-26``) and an hour (``2026-11-26T10``) are accepted as shorthands.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

SEPARATOR = "--"


def _parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add 'Z'")
    return value.astimezone(UTC)


def _format_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, order=True)
class Window:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise ValueError(
                f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )

    @classmethod
    def parse(cls, text: str) -> Window:
        """Parse ``start--end``, a day ``YYYY-MM-DD`` or an hour ``YYYY-MM-DDTHH``."""
        text = text.strip()
        try:
            if SEPARATOR in text:
                start, end = text.split(SEPARATOR, 1)
                return cls(_parse_instant(start), _parse_instant(end))
            if len(text) == 10:
                return cls.day(date.fromisoformat(text))
            if len(text) == 13 and text[10] == "T":
                start_hour = datetime.fromisoformat(text + ":00").replace(tzinfo=UTC)
                return cls(start_hour, start_hour + timedelta(hours=1))
        except ValueError as exc:
            raise ValueError(f"invalid window {text!r}: {exc}") from None
        except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
            raise ValueError(f"invalid window {text!r}: outside the years 1-9999 in UTC") from None
        raise ValueError(
            f"invalid window {text!r}: use START--END (ISO-8601 with Z), YYYY-MM-DD or YYYY-MM-DDTHH"
        )

    @classmethod
    def day(cls, day: date) -> Window:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return cls(start, start + timedelta(days=1))

    def __str__(self) -> str:
        return f"{_format_instant(self.start)}{SEPARATOR}{_format_instant(self.end)}"

    def contains(self, other: Window) -> bool:
        return self.start <= other.start and other.end <= self.end

    def days(self) -> Iterator[Window]:
        """The UTC days this window touches, clipped to the window (for day-by-day backfills)."""
        cursor = self.start
        while cursor < self.end:
            next_day = datetime(cursor.year, cursor.month, cursor.day, tzinfo=UTC) + timedelta(
                days=1
            )
            yield Window(cursor, min(next_day, self.end))
            cursor = next_day

    def hours(self) -> Iterator[datetime]:
        """Start of every UTC hour the window touches (the lake's event partitions)."""
        cursor = self.start.replace(minute=0, second=0, microsecond=0)
        while cursor < self.end:
            yield cursor
            cursor += timedelta(hours=1)
