"""Time windows, as the services name them in URLs and requests.

A window is a half-open UTC interval ``[start, end)``. Its text form is an ISO-8601
interval with ``--`` as the separator (ISO 8601 allows it where ``/`` cannot be
used, as in a URL path): ``2026-11-26T00:00:00Z--2026-11-27T00:00:00Z``. A day
(``2026-11-26``) and an hour (``2026-11-26T10``) are accepted as shorthands.

In the services' APIs a window is two fields, ``window_start`` and ``window_end`` (ISO-8601
instants with a zone), in a query or a body alike (:class:`WindowFields`,
:func:`window_query`); the text form is the CLIs' and the Spark jobs' argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field

SEPARATOR = "--"


def _parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add 'Z'")
    return value.astimezone(UTC)


def _format_instant(value: datetime) -> str:
    utc = value.astimezone(UTC)
    # %Y does not pad years before 1000 here ('52-01-01...'), which ISO 8601 and parse refuse.
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}Z"


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


START_DOC = "Start of the UTC window `[window_start, window_end)`: ISO-8601 with a zone."
END_DOC = "End (exclusive) of the window: ISO-8601 with a zone."


class WindowFields(BaseModel):
    """The one window shape of the services' APIs: ``window_start``, ``window_end``."""

    window_start: AwareDatetime = Field(description=START_DOC, examples=["2026-11-26T00:00:00Z"])
    window_end: AwareDatetime = Field(description=END_DOC, examples=["2026-11-27T00:00:00Z"])

    @property
    def window(self) -> Window:
        return window_of(self.window_start, self.window_end)

    @classmethod
    def of(cls, window: Window) -> WindowFields:
        return cls(window_start=window.start, window_end=window.end)


def window_of(start: datetime, end: datetime) -> Window:
    """The window ``[start, end)`` of two aware instants; ValueError if it is not one."""
    try:
        return Window(start.astimezone(UTC), end.astimezone(UTC))
    except OverflowError:
        raise ValueError("the window is outside the years 1-9999 in UTC") from None


def window_params(window: Window) -> dict[str, str]:
    """``window`` as the query parameters ``window_start`` and ``window_end``."""
    return {
        "window_start": _format_instant(window.start),
        "window_end": _format_instant(window.end),
    }
