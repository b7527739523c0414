"""The replay ledger: which dead letters were replayed, where to, and by which replay.

A compacted topic keyed by the source coordinates (:func:`iotpipe.dlq.source_key`), so it
keeps the latest record per source message forever while staying small. The service reads
it from the beginning at startup (a :class:`~dlq_inspector.tail.TopicTail`) and consults it
before every replay: a message is replayed once unless the request says ``force``.
A tombstone (null value) for a key marks that message unresolved again. One partition is
plenty (one small record per replayed message) and keeps the ledger in write order.

The in-memory view applies every key's records in ledger offset order, whoever wrote them:
the replayer records its own writes at their offsets as soon as they are acknowledged (and
the tail skips them instead of reading them back), and a record at or below the offset a
key already holds changes nothing, so the order in which the two paths arrive is irrelevant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiokafka import ConsumerRecord

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LedgerEntry:
    """One ledger record's value. Not ``frozen`` (treat it as read-only): a frozen dataclass
    costs ~3 us more per instance to create, once per replayed message."""

    replay_id: str
    replayed_at_ms: int
    target_topic: str
    target_partition: int
    target_offset: int
    dlq_partition: int
    dlq_offset: int
    patched: bool

    def to_json(self) -> bytes:
        # a dict: orjson encodes it in about half the time of the dataclass itself
        return orjson.dumps(
            {
                "replay_id": self.replay_id,
                "replayed_at_ms": self.replayed_at_ms,
                "target_topic": self.target_topic,
                "target_partition": self.target_partition,
                "target_offset": self.target_offset,
                "dlq_partition": self.dlq_partition,
                "dlq_offset": self.dlq_offset,
                "patched": self.patched,
            }
        )


class ReplayLedger:
    def __init__(self, on_change: Callable[[str, bool], None] = lambda key, present: None) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self._on_change = on_change
        """Called with (key, True) when a key comes into the ledger, (key, False) when it goes."""
        self._at: dict[str, int] = {}
        """key -> ledger offset of the record that set it (tombstones included)."""

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get(self, key: str) -> LedgerEntry | None:
        return self.entries.get(key)

    def _newer(self, key: str, offset: int) -> bool:
        if self._at.get(key, -1) >= offset:
            return False
        self._at[key] = offset
        return True

    def record(self, key: str, entry: LedgerEntry, offset: int) -> None:
        """Record this process's own write, acknowledged at ``offset`` of the ledger topic."""
        if self._newer(key, offset):
            self._set(key, entry)

    def apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one consumed ledger record (the tail's callback)."""
        if record.key is None:
            return
        key = record.key.decode()
        if not self._newer(key, record.offset):
            return
        if record.value is None:
            if self.entries.pop(key, None) is not None:
                self._on_change(key, False)
            return
        try:
            self._set(key, LedgerEntry(**orjson.loads(record.value)))
        except (orjson.JSONDecodeError, TypeError) as exc:
            log.warning("ledger record for %s is unreadable, ignored: %s", key, exc)

    def _set(self, key: str, entry: LedgerEntry) -> None:
        new = key not in self.entries
        self.entries[key] = entry
        if new:
            self._on_change(key, True)
