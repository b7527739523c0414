"""The dead-letter record: what the streaming job writes to ``sensor-events-dlq`` and
what the DLQ inspector reads.

- key: the source coordinates ``<topic>-<partition>-<offset>``, so a duplicate written
  after a restart is recognisable (and the replay ledger can key on it);
- value: the original bytes, untouched, or, for a source record too large to be
  dead-lettered whole (beyond the stream's ``dlq_max_value_bytes``), their first part;
- headers (UTF-8 strings): ``error_type`` (an :class:`~iotpipe.contract.ErrorType`),
  ``error_detail`` (at most :data:`MAX_DETAIL_CHARS`), ``source_topic``,
  ``source_partition``, ``source_offset``, ``source_timestamp_ms`` (the source record's
  Kafka timestamp) and ``dead_lettered_at_ms``; and ``source_size``, the source value's
  length in bytes, only on a letter whose value was cut (the whole is at the source
  coordinates while the topic keeps it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from iotpipe.contract import ErrorType

HEADER_ERROR_TYPE = "error_type"
HEADER_ERROR_DETAIL = "error_detail"
HEADER_SOURCE_TOPIC = "source_topic"
HEADER_SOURCE_PARTITION = "source_partition"
HEADER_SOURCE_OFFSET = "source_offset"
HEADER_SOURCE_TIMESTAMP_MS = "source_timestamp_ms"
HEADER_DEAD_LETTERED_AT_MS = "dead_lettered_at_ms"
HEADER_SOURCE_SIZE = "source_size"
"""Optional: set when the value holds only the first part of the source record's bytes."""

HEADER_REPLAY_ID = "dlq_replay_id"
HEADER_REPLAY_OF = "dlq_replay_of"
"""Headers on an event the DLQ inspector replayed (on the events topic, not on a dead letter):
which replay job sent it, and the source key (:func:`source_key`) of the letter it replaces.
Bronze keeps the first as ``replay_id``; Silver lets the latest replay of a reading win."""

MAX_DETAIL_CHARS = 2_000
"""The longest ``error_detail`` a dead letter carries (a parser's message can quote its input)."""

HEADERS = (
    HEADER_ERROR_TYPE,
    HEADER_ERROR_DETAIL,
    HEADER_SOURCE_TOPIC,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_TIMESTAMP_MS,
    HEADER_DEAD_LETTERED_AT_MS,
)


def source_key(topic: str, partition: int, offset: int) -> str:
    """The DLQ record key for a source record (also the replay ledger's key)."""
    return f"{topic}-{partition}-{offset}"


def parse_source_key(key: str) -> tuple[str, int, int]:
    """Inverse of :func:`source_key` (topic names may contain dashes)."""
    topic, partition, offset = key.rsplit("-", 2)
    return topic, int(partition), int(offset)


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ record, decoded."""

    error_type: ErrorType
    error_detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp_ms: int
    dead_lettered_at_ms: int
    value: bytes
    source_size: int | None = None
    """The source value's length when ``value`` is only its first part (else None)."""

    @property
    def key(self) -> str:
        return source_key(self.source_topic, self.source_partition, self.source_offset)

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (HEADER_ERROR_TYPE, self.error_type.value.encode()),
            (HEADER_ERROR_DETAIL, self.error_detail.encode()),
            (HEADER_SOURCE_TOPIC, self.source_topic.encode()),
            (HEADER_SOURCE_PARTITION, str(self.source_partition).encode()),
            (HEADER_SOURCE_OFFSET, str(self.source_offset).encode()),
            (HEADER_SOURCE_TIMESTAMP_MS, str(self.source_timestamp_ms).encode()),
            (HEADER_DEAD_LETTERED_AT_MS, str(self.dead_lettered_at_ms).encode()),
            *([] if self.source_size is None else [(HEADER_SOURCE_SIZE, b"%d" % self.source_size)]),
        ]

    @classmethod
    def from_kafka(
        cls, value: bytes | None, headers: Sequence[tuple[str, bytes]] | Iterable[tuple[str, bytes]]
    ) -> DeadLetter:
        """Decode a consumed DLQ record; raises ``ValueError`` if a header is missing or bad."""
        found = {name: raw.decode("utf-8", errors="replace") for name, raw in headers}
        missing = [name for name in HEADERS if name not in found]
        if missing:
            raise ValueError(f"not a dead-letter record: missing header(s) {', '.join(missing)}")
        return cls(
            error_type=ErrorType(found[HEADER_ERROR_TYPE]),
            error_detail=found[HEADER_ERROR_DETAIL],
            source_topic=found[HEADER_SOURCE_TOPIC],
            source_partition=int(found[HEADER_SOURCE_PARTITION]),
            source_offset=int(found[HEADER_SOURCE_OFFSET]),
            source_timestamp_ms=int(found[HEADER_SOURCE_TIMESTAMP_MS]),
            dead_lettered_at_ms=int(found[HEADER_DEAD_LETTERED_AT_MS]),
            value=value or b"",
            source_size=int(found[HEADER_SOURCE_SIZE]) if HEADER_SOURCE_SIZE in found else None,
        )
