"""The Bronze freshness SLA: how old is the newest file Bronze has?

Bronze is partitioned ``event_date=YYYY-MM-DD/event_hour=H``; the newest data is in the
newest partition, so only that partition's files are listed (not the whole table), on a
local lake or S3 alike (``iotpipe.lakefs``). The files' modification time is when the
stream wrote them: that, not the events' own time, is what "Bronze is fresh" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow.fs as pafs

from iotpipe.lake import EVENT_PARTITIONS
from iotpipe.lakefs import filesystem


@dataclass(frozen=True)
class Freshness:
    location: str
    newest: datetime | None
    """Modification time of the newest Bronze file; None when Bronze has none."""
    checked_at: datetime
    sla: timedelta

    @property
    def age(self) -> timedelta | None:
        return None if self.newest is None else self.checked_at - self.newest

    @property
    def ok(self) -> bool:
        return self.age is not None and self.age <= self.sla

    def describe(self) -> str:
        limit = f"SLA {self.sla.total_seconds() / 60:g} min"
        if self.newest is None:
            return f"Bronze at {self.location} has no data files ({limit})"
        minutes = self.age.total_seconds() / 60 if self.age else 0.0
        verdict = "fresh" if self.ok else "STALE"
        return (
            f"Bronze is {verdict}: newest file written {self.newest:%Y-%m-%dT%H:%M:%SZ}, "
            f"{minutes:.1f} min ago ({limit})"
        )


def _partitions(fs: pafs.FileSystem, path: str, column: str) -> list[tuple[str, str]]:
    """(value, path) of the ``column=value`` folders directly under ``path``."""
    prefix = f"{column}="
    found = []
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        name = info.base_name
        if info.type == pafs.FileType.Directory and name.startswith(prefix):
            found.append((name.removeprefix(prefix), info.path))
    return found


def _newest_partition(fs: pafs.FileSystem, path: str) -> str | None:
    """The folder of the latest ``event_date`` / ``event_hour`` partition (None: none)."""
    date_col, hour_col = EVENT_PARTITIONS
    dates = _partitions(fs, path, date_col)
    if not dates:
        return None
    _, day = max(dates)
    hours = [(int(v), p) for v, p in _partitions(fs, day, hour_col) if v.isdigit()]
    return max(hours)[1] if hours else day


def newest_file_time(location: str) -> datetime | None:
    """Modification time of the newest data file in Bronze's newest partition."""
    fs, path = filesystem(location)
    partition = _newest_partition(fs, path)
    if partition is None:
        return None
    times = [
        info.mtime
        for info in fs.get_file_info(pafs.FileSelector(partition, recursive=True))
        if info.type == pafs.FileType.File
        and not info.base_name.startswith(("_", "."))
        and info.mtime is not None
    ]
    return max(times).astimezone(UTC) if times else None


def check(location: str, sla: timedelta, now: datetime | None = None) -> Freshness:
    return Freshness(
        location=location,
        newest=newest_file_time(location),
        checked_at=now or datetime.now(UTC),
        sla=sla,
    )
