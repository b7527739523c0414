"""An in-memory index of the DLQ: what each dead letter is, without its bytes.

The service tails ``sensor-events-dlq`` from the beginning and keeps one small
:class:`Entry` per record, so that listing, filtering, paginating, stats and metrics
never rescan Kafka. The original bytes stay in Kafka; they are read by offset when a
message is shown or replayed. Stats and metrics do not scan the index either: its tallies
(totals and unresolved by error type, the oldest unresolved, the recent ones) change with
each record added or pruned and each replay the ledger records or forgets.

Order: messages are listed in dead-lettered time order, merged across partitions
(ties by partition, then offset). Each partition is walked in offset order, so a
cursor (the next offset per partition) resumes exactly where a page stopped.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import orjson

from dlq_inspector import metrics
from iotpipe.contract import ErrorType
from iotpipe.dlq import DeadLetter, source_key

log = logging.getLogger(__name__)

# Where a record is not JSON (truncated, say), its sensor id may still be readable.
_SENSOR_ID = re.compile(rb'"sensor_id"\s*:\s*"([^"\\]{1,128})"')


def sensor_id_of(value: bytes) -> str | None:
    """The record's ``sensor_id`` where it can be read, else ``None``."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        match = _SENSOR_ID.search(value)
        return match.group(1).decode("utf-8", errors="replace").strip() or None if match else None
    if isinstance(document, dict):
        found = document.get("sensor_id")
        if isinstance(found, str):
            return found.strip() or None
        if isinstance(found, int | float) and not isinstance(found, bool):
            return str(found)
    return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One dead letter, as indexed (the bytes stay in Kafka)."""

    partition: int
    offset: int
    error_type: ErrorType
    error_detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp_ms: int
    dead_lettered_at_ms: int
    sensor_id: str | None
    size: int

    @property
    def id(self) -> str:
        return message_id(self.partition, self.offset)

    @property
    def source_key(self) -> str:
        return source_key(self.source_topic, self.source_partition, self.source_offset)

    @property
    def order(self) -> tuple[int, int, int]:
        return (self.dead_lettered_at_ms, self.partition, self.offset)


def _order(entry: Entry) -> tuple[int, int, int]:
    return entry.order


def message_id(partition: int, offset: int) -> str:
    """A DLQ message's id in the API: ``<partition>:<offset>`` in the DLQ topic."""
    return f"{partition}:{offset}"


def parse_message_id(text: str) -> tuple[int, int]:
    partition, offset = text.split(":")
    return int(partition), int(offset)


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Which messages a listing or a replay is about (every given criterion must hold)."""

    error_types: frozenset[ErrorType] = frozenset()
    sensor_id: str | None = None
    since_ms: int | None = None
    """Dead-lettered at or after (epoch ms)."""
    until_ms: int | None = None
    """Dead-lettered before (epoch ms)."""
    replayed: bool | None = None
    """Only replayed (True) or only unresolved (False) messages."""

    def matches(self, entry: Entry, is_replayed: Callable[[str], bool]) -> bool:
        return (
            (not self.error_types or entry.error_type in self.error_types)
            and (self.sensor_id is None or entry.sensor_id == self.sensor_id)
            and (self.since_ms is None or entry.dead_lettered_at_ms >= self.since_ms)
            and (self.until_ms is None or entry.dead_lettered_at_ms < self.until_ms)
            and (self.replayed is None or is_replayed(entry.source_key) == self.replayed)
        )


@dataclass
class Page:
    entries: list[Entry]
    positions: dict[int, int]
    """Where the next page starts: the next offset to look at, per partition."""
    has_more: bool


class DlqIndex:
    """Every dead letter in the topic, by partition in offset order, with its tallies.

    ``is_replayed`` says whether a source key is in the replay ledger; the ledger calls
    :meth:`replay_changed` when a key comes or goes.
    """

    def __init__(
        self,
        is_replayed: Callable[[str], bool] = lambda key: False,
        recent_window_s: float = 300.0,
    ) -> None:
        self._entries: dict[int, list[Entry]] = {}
        self._offsets: dict[int, list[int]] = {}
        self._by_key: dict[str, list[Entry]] = {}
        self._is_replayed = is_replayed
        self.counts: Counter[ErrorType] = Counter()
        self.unresolved: Counter[ErrorType] = Counter()
        """Entries whose source record is not in the replay ledger, by error type."""
        self._unresolved_from: dict[int, int] = {}
        """Per partition: no entry before this position is unresolved."""
        self._recent: deque[int] = deque()
        self._recent_window_ms = int(recent_window_s * 1000)
        self.unreadable = 0
        """Records on the DLQ topic that are not dead letters (missing/bad headers)."""

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def partitions(self) -> list[int]:
        return sorted(self._entries)

    def add(
        self,
        partition: int,
        offset: int,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]],
    ) -> Entry | None:
        """Index one consumed DLQ record (records must arrive in offset order per partition)."""
        offsets = self._offsets.setdefault(partition, [])
        if offsets and offset <= offsets[-1]:
            return None  # already indexed (a re-read after a reconnect)
        try:
            letter = DeadLetter.from_kafka(value, headers)
        except ValueError as exc:
            self.unreadable += 1
            metrics.UNREADABLE.inc()
            log.warning(
                "DLQ record %s is not a dead letter: %s", message_id(partition, offset), exc
            )
            return None
        entry = Entry(
            partition=partition,
            offset=offset,
            error_type=letter.error_type,
            error_detail=letter.error_detail,
            source_topic=letter.source_topic,
            source_partition=letter.source_partition,
            source_offset=letter.source_offset,
            source_timestamp_ms=letter.source_timestamp_ms,
            dead_lettered_at_ms=letter.dead_lettered_at_ms,
            sensor_id=sensor_id_of(letter.value),
            size=len(letter.value),
        )
        self._entries.setdefault(partition, []).append(entry)
        offsets.append(offset)
        self._by_key.setdefault(entry.source_key, []).append(entry)
        self.counts[entry.error_type] += 1
        if not self._is_replayed(entry.source_key):
            self.unresolved[entry.error_type] += 1
        self._recent.append(entry.dead_lettered_at_ms)
        self._trim_recent()
        metrics.MESSAGES_SEEN.labels(entry.error_type.value).inc()
        return entry

    def prune(self, partition: int, log_start_offset: int) -> int:
        """Forget what retention deleted from the topic; return how many entries went."""
        offsets = self._offsets.get(partition, [])
        cut = bisect.bisect_left(offsets, log_start_offset)
        if cut:
            for entry in self._entries[partition][:cut]:
                self.counts[entry.error_type] -= 1
                if not self._is_replayed(entry.source_key):
                    self.unresolved[entry.error_type] -= 1
                same = self._by_key[entry.source_key]
                same.remove(entry)
                if not same:
                    del self._by_key[entry.source_key]
            del self._entries[partition][:cut]
            del offsets[:cut]
            self._unresolved_from[partition] = max(0, self._unresolved_from.get(partition, 0) - cut)
        return cut

    def replay_changed(self, key: str, replayed: bool) -> None:
        """The ledger now holds ``key`` (``replayed``) or no longer does."""
        for entry in self._by_key.get(key, ()):
            self.unresolved[entry.error_type] += -1 if replayed else 1
            if not replayed:
                at = bisect.bisect_left(self._offsets[entry.partition], entry.offset)
                start = self._unresolved_from.get(entry.partition, 0)
                self._unresolved_from[entry.partition] = min(start, at)

    def oldest_unresolved(self) -> Entry | None:
        """The first entry in listing order that is not replayed (each partition's search
        resumes where it last stopped: amortised constant time)."""
        heads = []
        for p, entries in self._entries.items():
            at = self._unresolved_from.get(p, 0)
            while at < len(entries) and self._is_replayed(entries[at].source_key):
                at += 1
            self._unresolved_from[p] = at
            if at < len(entries):
                heads.append(entries[at])
        return min(heads, key=lambda entry: entry.order, default=None)

    def oldest(self) -> Entry | None:
        return min((e[0] for e in self._entries.values() if e), key=_order, default=None)

    def newest(self) -> Entry | None:
        return max((e[-1] for e in self._entries.values() if e), key=_order, default=None)

    def recent(self) -> int:
        """How many entries were dead-lettered in the last ``recent_window_s``."""
        self._trim_recent()
        since = int(time.time() * 1000) - self._recent_window_ms
        return sum(1 for at in self._recent if at >= since)

    def _trim_recent(self) -> None:
        since = int(time.time() * 1000) - self._recent_window_ms
        while self._recent and self._recent[0] < since:
            self._recent.popleft()

    def get(self, partition: int, offset: int) -> Entry | None:
        offsets = self._offsets.get(partition, [])
        at = bisect.bisect_left(offsets, offset)
        if at < len(offsets) and offsets[at] == offset:
            return self._entries[partition][at]
        return None

    def scan(self, positions: dict[int, int] | None = None) -> Iterator[Entry]:
        """Every entry from ``positions`` on (default: all), in listing order."""
        positions = positions or {}
        runs = [
            itertools.islice(
                self._entries[p], bisect.bisect_left(self._offsets[p], positions.get(p, 0)), None
            )
            for p in self.partitions()
        ]
        return heapq.merge(*runs, key=lambda entry: entry.order)

    def page(
        self,
        flt: MessageFilter,
        positions: dict[int, int],
        limit: int,
        is_replayed: Callable[[str], bool],
    ) -> Page:
        """Up to ``limit`` matching entries from ``positions``; the cursor skips non-matches."""
        found: list[Entry] = []
        after = {p: positions.get(p, 0) for p in self.partitions()} | positions
        for entry in self.scan(positions):
            if not flt.matches(entry, is_replayed):
                after[entry.partition] = entry.offset + 1
                continue
            if len(found) == limit:
                return Page(found, after, has_more=True)
            found.append(entry)
            after[entry.partition] = entry.offset + 1
        return Page(found, after, has_more=False)

    def select(self, flt: MessageFilter, is_replayed: Callable[[str], bool]) -> list[Entry]:
        return [entry for entry in self.scan() if flt.matches(entry, is_replayed)]
