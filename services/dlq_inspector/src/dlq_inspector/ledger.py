"""The replay ledger: which dead letters were replayed, where to, and by which replay.

A compacted topic keyed by the source coordinates (:func:`iotpipe.dlq.source_key`), so it
keeps the latest record per source message forever while staying small. The service reads
it from the beginning at startup (a :class:`~dlq_inspector.tail.TopicTail`) and consults it
before every replay: a message is replayed once unless the request says ``force``.
A tombstone (null value) for a key marks that message unresolved again. One partition is
plenty (one small record per replayed message) and keeps the ledger in write order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson
from aiokafka import ConsumerRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    replay_id: str
    replayed_at_ms: int
    target_topic: str
    target_partition: int
    target_offset: int
    dlq_partition: int
    dlq_offset: int
    patched: bool

    def to_json(self) -> bytes:
        return orjson.dumps(self)  # orjson serialises dataclasses natively (and fast)


class ReplayLedger:
    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get(self, key: str) -> LedgerEntry | None:
        return self.entries.get(key)

    def record(self, key: str, entry: LedgerEntry) -> None:
        self.entries[key] = entry

    def apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one consumed ledger record (the tail's callback)."""
        if record.key is None:
            return
        key = record.key.decode()
        if record.value is None:
            self.entries.pop(key, None)
            return
        try:
            self.entries[key] = LedgerEntry(**orjson.loads(record.value))
        except (orjson.JSONDecodeError, TypeError) as exc:
            log.warning("ledger record for %s is unreadable, ignored: %s", key, exc)
