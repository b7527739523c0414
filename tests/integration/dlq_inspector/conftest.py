"""A DLQ inspector app on the session's real broker, with topics of its own per test."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from dlq_inspector.app import build_app
from dlq_inspector.kafka_io import partitions_of
from dlq_inspector.settings import DlqSettings
from fastapi import FastAPI

from iotpipe import kafka
from iotpipe.contract import ErrorType, SensorEvent
from iotpipe.demo import sample_events
from iotpipe.dlq import DeadLetter
from iotpipe.settings import KafkaSettings

TOKEN = "dlq-integration-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def letter(
    value: bytes,
    error_type: ErrorType,
    *,
    offset: int,
    at_ms: int,
    detail: str = "broken",
    source_topic: str = "sensor-events",
) -> DeadLetter:
    return DeadLetter(
        error_type=error_type,
        error_detail=detail,
        source_topic=source_topic,
        source_partition=offset % 3,
        source_offset=offset,
        source_timestamp_ms=at_ms - 1_000,
        dead_lettered_at_ms=at_ms,
        value=value,
    )


def event_json(event: SensorEvent, **changes: Any) -> bytes:
    """An event's wire JSON with fields changed (``None`` removes a field)."""
    import orjson

    document = event.model_dump(mode="json") | changes
    return orjson.dumps({k: v for k, v in document.items() if v is not None})


def wrong_unit_letters(count: int, *, start_ms: int, first_offset: int = 0) -> list[DeadLetter]:
    """Valid readings dead-lettered because the unit was wrong: fixable with a patch."""
    return [
        letter(
            event_json(event, unit="kelvin"),
            ErrorType.OUT_OF_CONTRACT,
            offset=first_offset + i,
            at_ms=start_ms + i,
            detail="unit 'kelvin' does not match sensor_type",
        )
        for i, event in enumerate(sample_events(count, sensors=4, seed=first_offset + 1))
    ]


@dataclass
class DlqEnv:
    settings: DlqSettings
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka

    async def write(self, letters: Sequence[DeadLetter]) -> list[str]:
        """Write dead letters exactly as the streaming job does; return their message ids."""
        producer = kafka.producer(self.kafka)
        await producer.start()
        try:
            futures = [
                await producer.send(
                    self.kafka.dlq_topic, d.value, key=d.key.encode(), headers=d.headers()
                )
                for d in letters
            ]
            ids = []
            for future in futures:
                meta = await future
                ids.append(f"{meta.partition}:{meta.offset}")
        finally:
            await producer.stop()
        return ids

    async def events(self, *, committed: bool = True) -> list[ConsumerRecord[bytes, bytes]]:
        """Everything on this test's events topic (see :func:`read_all`)."""
        return await read_all(self.kafka, self.kafka.events_topic, committed=committed)

    async def replay(self, **body: Any) -> httpx.Response:
        return await self.client.post("/dlq/replay", json=body, headers=AUTH)


async def read_all(
    settings: KafkaSettings, topic: str, *, committed: bool = True
) -> list[ConsumerRecord[bytes, bytes]]:
    """The topic's committed records (as every consumer of the pipeline reads), or with
    ``committed=False`` every record written, aborted transactions' included."""
    tps = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
    isolation = "read_committed" if committed else "read_uncommitted"
    consumer = kafka.consumer(settings, isolation_level=isolation)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def topic_names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "events_topic": f"dlqt-events-{suffix}",
        "dlq_topic": f"dlqt-dlq-{suffix}",
        "ledger_topic": f"dlqt-replays-{suffix}",
    }


def dlq_settings(
    kafka_settings: KafkaSettings, topics: dict[str, str], **extra: Any
) -> DlqSettings:
    return DlqSettings(
        api_token=TOKEN,
        kafka=kafka_settings.model_copy(
            update={"events_topic": topics["events_topic"], "dlq_topic": topics["dlq_topic"]}
        ),
        ledger_topic=topics["ledger_topic"],
        # one transactional id per app under test: apps of other tests must not fence it
        **{"replay_transactional_id": f"{topics['ledger_topic']}-replay", **extra},
    )


@contextlib.asynccontextmanager
async def running(settings: DlqSettings) -> AsyncIterator[DlqEnv]:
    """The app with its lifespan (topics, tails, producer) and an HTTP client on it."""
    await kafka.ensure_topics(settings.kafka, [kafka.TopicSpec(settings.kafka.events_topic, 3)])
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dlq") as client:
            yield DlqEnv(settings, app, client)


@pytest.fixture
def topics() -> dict[str, str]:
    return topic_names()


@pytest.fixture
async def dlq(kafka_settings: KafkaSettings, topics: dict[str, str]) -> AsyncIterator[DlqEnv]:
    async with running(dlq_settings(kafka_settings, topics)) as env:
        yield env


@pytest.fixture(scope="module")
async def shared_dlq(kafka_settings: KafkaSettings) -> AsyncIterator[DlqEnv]:
    """One app for a module's tests that only read and do not care what others wrote."""
    async with running(dlq_settings(kafka_settings, topic_names())) as env:
        yield env
