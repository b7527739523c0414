"""The simulator's app wired to the session's real broker, and a reader for what arrived."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from sensor_simulator.api import build_app
from sensor_simulator.config import SimulatorSettings

from iotpipe import kafka
from iotpipe.settings import KafkaSettings

TOKEN = "simulator-integration-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def simulator_settings(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> SimulatorSettings:
    home = tmp_path_factory.mktemp("simulator")
    (home / "replays").mkdir()
    return SimulatorSettings(
        api_token=TOKEN,
        kafka=kafka_settings,
        max_rate=200_000,
        ground_truth_dir=home / "truth",
        replay_dir=home / "replays",
    )


@pytest.fixture
async def client(simulator_settings: SimulatorSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(simulator_settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as http:
        yield http
    await app.state.runs.shutdown()


@pytest.fixture
async def topic(kafka_settings: KafkaSettings) -> str:
    """A fresh 3-partition topic, so that a test counts only its own records."""
    name = f"simulator-{uuid.uuid4().hex[:10]}"
    await kafka.ensure_topics(kafka_settings, [kafka.TopicSpec(name, partitions=3)])
    return name


@pytest.fixture
def replay_dir(simulator_settings: SimulatorSettings) -> Path:
    assert simulator_settings.replay_dir is not None
    return simulator_settings.replay_dir


async def read_topic(settings: KafkaSettings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record in the topic now (up to the end offsets when called)."""
    consumer = kafka.consumer(settings, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]  # as `topic` makes them
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(120):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
                for items in batch.values():
                    records.extend(items)
        return records
    finally:
        await consumer.stop()


async def wait_for(client: httpx.AsyncClient, run_id: str) -> dict:
    """Poll a run until it is no longer running (3 minutes at most); return its status."""
    async with asyncio.timeout(180):
        while True:
            status = (await client.get(f"/runs/{run_id}")).json()
            if status["state"] not in ("running", "stopping"):
                return status
            await asyncio.sleep(0.2)


async def metric_samples(client: httpx.AsyncClient) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    text = (await client.get("/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
