"""The Bronze freshness SLA: how old is the newest file Bronze has committed?

Bronze is partitioned ``event_date=YYYY-MM-DD/event_hour=H``; the newest data is in the
newest partition, so partitions are listed newest first (not the whole table), on a local
lake or S3 alike (``iotpipe.lakefs``). The files' modification time is when the stream
wrote them: that, not the events' own time, is what "Bronze is fresh" means.

Only **committed** files count. The stream's file sink writes its files in place and lists
them in ``_spark_metadata`` afterwards, so a partition folder also holds files still being
written and the files of an attempt that died (orphans, never committed, never read by
anything downstream): they would make a stalled stream look fresh. Where Bronze has a sink
log, a file counts only if the log lists it (:func:`iotpipe.lakefs.committed_files`); a
partition with none is passed over for the next older one.

Nor can a partition from the **future** pin the check: an event dated more than the
contract's ``CONTRACT_MAX_AHEAD_SECONDS`` after its arrival is dead-lettered by the stream
(``out_of_contract``), so a partition that starts later than now plus that bound holds no data
a contract-abiding stream wrote now (an old file there, from before the rule or a stray
writer, would otherwise be "the newest partition" forever: a false SLA miss, or with one
sensor's clock ahead a stalled stream that looks fresh). Such partitions are passed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow.fs as pafs

from iotpipe.lake import EVENT_PARTITIONS
from iotpipe.lakefs import committed_files, filesystem

DEFAULT_MAX_AHEAD = timedelta(hours=1)
"""The horizon when the contract sets no bound ahead (``CONTRACT_MAX_AHEAD_SECONDS=none``):
the contract's own default."""


@dataclass(frozen=True)
class Freshness:
    location: str
    newest: datetime | None
    """Modification time of the newest committed Bronze file; None when Bronze has none."""
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
            return f"Bronze at {self.location} has no committed data files ({limit})"
        minutes = self.age.total_seconds() / 60 if self.age else 0.0
        verdict = "fresh" if self.ok else "STALE"
        return (
            f"Bronze is {verdict}: newest committed file written "
            f"{self.newest:%Y-%m-%dT%H:%M:%SZ}, {minutes:.1f} min ago ({limit})"
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


def _day(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def _partitions_newest_first(fs: pafs.FileSystem, path: str, horizon: datetime) -> list[str]:
    """The ``event_date`` / ``event_hour`` folders that start no later than ``horizon``,
    newest first (hours numerically: 10 after 9). A day folder without hour folders counts
    as one partition starting at midnight."""
    date_col, hour_col = EVENT_PARTITIONS
    days = sorted(
        (
            (day, folder)
            for value, folder in _partitions(fs, path, date_col)
            if (day := _day(value))
        ),
        reverse=True,
    )
    found: list[str] = []
    for day, folder in days:
        if day > horizon:
            continue
        hours = [(int(v), p) for v, p in _partitions(fs, folder, hour_col) if v.isdigit()]
        if not hours:
            found.append(folder)
        found += [p for h, p in sorted(hours, reverse=True) if day + timedelta(hours=h) <= horizon]
    return found


def newest_file_time(
    location: str, now: datetime | None = None, max_ahead: timedelta | None = DEFAULT_MAX_AHEAD
) -> datetime | None:
    """Modification time of the newest committed data file in Bronze's newest partition
    that has one, among the partitions that start no later than ``now + max_ahead``."""
    fs, path = filesystem(location)
    horizon = (now or datetime.now(UTC)) + (max_ahead or DEFAULT_MAX_AHEAD)
    committed = committed_files(fs, path)
    for partition in _partitions_newest_first(fs, path, horizon):
        times = [
            info.mtime
            for info in fs.get_file_info(pafs.FileSelector(partition, recursive=True))
            if info.type == pafs.FileType.File
            and not info.base_name.startswith(("_", "."))
            and (committed is None or info.base_name in committed)
            and info.mtime is not None
        ]
        if times:
            return max(times).astimezone(UTC)
    return None


def check(
    location: str,
    sla: timedelta,
    now: datetime | None = None,
    max_ahead: timedelta | None = DEFAULT_MAX_AHEAD,
) -> Freshness:
    checked_at = now or datetime.now(UTC)
    return Freshness(
        location=location,
        newest=newest_file_time(location, checked_at, max_ahead),
        checked_at=checked_at,
        sla=sla,
    )
