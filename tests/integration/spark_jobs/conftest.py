"""Fixtures of the bronze_stream tests (named ``bronze_*``): a fresh topic pair and a lake."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from iotpipe import kafka
from iotpipe.contract import ContractViolation, ErrorType, now_utc, parse_event
from iotpipe.demo import sample_events
from iotpipe.dlq import DeadLetter
from iotpipe.lake import Lake
from iotpipe.settings import KafkaSettings

BAD_RECORDS: dict[ErrorType, list[bytes]] = {
    ErrorType.MALFORMED_JSON: [b"{not json", b"", b"\xff\xfe garbage", b'{"a": 1} trailing'],
    ErrorType.SCHEMA_MISMATCH: [b"[1, 2]", b'"text"', b"null"],
    ErrorType.MISSING_REQUIRED: [b"{}", b'{"sensor_id": "s-1"}'],
    ErrorType.OUT_OF_CONTRACT: [],  # built from valid events below
}


def bad_records(per_kind: int, *, seed: int = 3) -> list[tuple[bytes, ErrorType]]:
    """``per_kind`` invalid records of every error type, checked against the contract."""
    rng = random.Random(seed)
    out: list[tuple[bytes, ErrorType]] = []
    templates = [orjson.loads(e.to_json()) for e in sample_events(per_kind, seed=seed)]
    for kind in ErrorType:
        for i in range(per_kind):
            if kind is ErrorType.OUT_OF_CONTRACT and i % 2:  # from a clock years ahead
                raw = orjson.dumps(dict(templates[i], timestamp="2099-01-01T00:00:00.000Z"))
            elif kind is ErrorType.OUT_OF_CONTRACT:
                raw = orjson.dumps(dict(templates[i], unit="furlongs"))
            elif kind is ErrorType.SCHEMA_MISMATCH and i % 2:
                raw = orjson.dumps(dict(templates[i], value="hot"))
            elif kind is ErrorType.MISSING_REQUIRED and i % 2:
                record = dict(templates[i])
                del record[rng.choice(["event_id", "value", "timestamp", "sensor_type"])]
                raw = orjson.dumps(record)
            else:
                raw = BAD_RECORDS[kind][i % len(BAD_RECORDS[kind])]
            out.append((raw, kind))
    for raw, kind in out:
        with pytest.raises(ContractViolation) as caught:
            parse_event(raw, now_utc())
        assert caught.value.error_type is kind, raw
    return out


@dataclass
class Produced:
    """What a test put on the events topic: (partition, offset) -> expected outcome."""

    valid: dict[tuple[int, int], bytes]
    invalid: dict[tuple[int, int], ErrorType]

    @property
    def all(self) -> set[tuple[int, int]]:
        return set(self.valid) | set(self.invalid)


def lax(raw: bytes) -> bytes:
    """A valid event in a form the fast path leaves to the contract: a numeric string for
    the value, no schema_version (its default)."""
    document = orjson.loads(raw)
    document["value"] = str(document["value"])
    del document["schema_version"]
    return orjson.dumps(document)


async def produce_mixed(
    settings: KafkaSettings, valid: int, per_kind: int, *, seed: int = 11
) -> Produced:
    """Produce ``valid`` good events (every tenth in a :func:`lax` form) and ``per_kind``
    bad ones of each type, interleaved."""
    records: list[tuple[bytes, ErrorType | None]] = [
        (lax(e.to_json()) if i % 10 == 9 else e.to_json(), None)
        for i, e in enumerate(sample_events(valid, seed=seed))
    ]
    records += bad_records(per_kind, seed=seed)
    random.Random(seed).shuffle(records)
    placed = await produce_raw(settings, settings.events_topic, [raw for raw, _ in records])
    produced = Produced({}, {})
    for (raw, kind), where in zip(records, placed, strict=True):
        if kind is None:
            produced.valid[where] = raw
        else:
            produced.invalid[where] = kind
    return produced


async def produce_raw(
    settings: KafkaSettings, topic: str, values: Iterable[bytes]
) -> list[tuple[int, int]]:
    producer = kafka.producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=str(i % 7).encode())
            for i, value in enumerate(values)
        ]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


async def read_dead_letters(settings: KafkaSettings) -> list[tuple[str, DeadLetter]]:
    """Every record on the DLQ topic: (key, decoded dead letter)."""
    consumer = kafka.consumer(settings, settings.dlq_topic)
    await consumer.start()
    try:
        partitions = consumer.assignment()
        while not partitions:
            await asyncio.sleep(0.1)
            partitions = consumer.assignment()
        end = await consumer.end_offsets(list(partitions))
        out: list[tuple[str, DeadLetter]] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=1_000)
            for records in batch.values():
                out += [
                    (r.key.decode(), DeadLetter.from_kafka(r.value, list(r.headers)))
                    for r in records
                ]
        return out
    finally:
        await consumer.stop()


@pytest.fixture
async def bronze_kafka(kafka_settings: KafkaSettings) -> KafkaSettings:
    """A fresh events topic (3 partitions) and DLQ topic for one test."""
    name = f"bronze-{uuid.uuid4().hex[:8]}"
    settings = kafka_settings.model_copy(update={"events_topic": name, "dlq_topic": f"{name}-dlq"})
    await kafka.ensure_topics(settings, kafka.pipeline_topics(settings))
    return settings


@pytest.fixture
def bronze_lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))
