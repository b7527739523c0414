"""Faults during a run, each followed by the same exact accounting as the scenario:
the streaming job SIGKILLed twice, the Kafka broker stopped and restarted while
producing, and a flood of malformed records."""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka.errors import KafkaError
from local_pipeline.accounting import Accounting, window_of
from local_pipeline.pipeline import LocalPipeline, Scenario
from local_pipeline.services import Services
from pyspark.sql import SparkSession
from spark_jobs import schemas
from spark_jobs.medallion import read_table

from iotpipe import kafka
from iotpipe.contract import (
    REQUIRED_FIELDS,
    ContractViolation,
    SensorEvent,
    now_utc,
    parse_event,
)
from iotpipe.demo import sample_events
from iotpipe.local import KafkaBroker, Postgres
from iotpipe.settings import KafkaSettings

from .conftest import pipeline_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def finish(pipeline: LocalPipeline, services: Services, **account: bool) -> Accounting:
    """Drain the stream, run the window through medallion, gates and load, and account."""
    pipeline.drain()
    pipeline.stop_stream()
    window = window_of(pipeline.spark, pipeline.lake)
    result = pipeline.process(window, services)
    assert result.ok, result.error
    accounting = pipeline.account(window, **account)
    assert accounting.balanced, accounting.failures()
    return accounting


def wait_for(what: str, condition: object, timeout: float = 1200) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.timeout(2400)
def test_streaming_job_sigkilled_twice_mid_run(
    kafka_settings: KafkaSettings, postgres: Postgres, spark: SparkSession, tmp_path: Path
) -> None:
    scenario = Scenario(
        events=3_000, rate=100, sensors=10, malformed_rate=0.02, late_rate=0.01,
        late_max_minutes=1, dropout_fraction=0.0, redeliver=0, seed=5,
    )  # fmt: skip
    with pipeline_for(
        kafka_settings, postgres, spark, tmp_path, rate_hz=scenario.sensor_rate_hz
    ) as (pipeline, services):
        # Small micro-batches, so that the job is mid-way through the topic when it is killed.
        stream = pipeline.start_stream(max_offsets_per_trigger=150)
        producing = threading.Thread(target=lambda: asyncio.run(pipeline.simulate(scenario)))
        producing.start()
        try:
            for kill in range(2):
                done = stream.batches()
                wait_for(
                    f"two more Bronze batches before kill {kill + 1}",
                    lambda d=done: stream.batches() >= d + 2,
                )
                stream.kill()
        finally:
            producing.join(timeout=600)
        accounting = finish(pipeline, services)
    assert stream.exits.count(-signal.SIGKILL) == 2
    assert stream.restarts >= 2  # a third when the first batch after a kill failed (see docs)
    assert accounting.produced == scenario.events
    print(f"restarts {stream.restarts}, exit codes {stream.exits}, DLQ copies "
          f"{accounting.dlq_records - sum(accounting.dlq.values())}")  # fmt: skip


async def produce_through_restart(
    settings: KafkaSettings, broker: KafkaBroker, events: list[SensorEvent]
) -> tuple[set[str], int]:
    """Send ``events`` at a steady pace; a third of the way in, stop the broker (a graceful
    stop, as a rolling restart does), leave it down for a few seconds and start it again,
    while sending goes on. Return the event ids acknowledged (acks=all) and the failures."""
    producer = kafka.producer(settings, request_timeout_ms=5_000, retry_backoff_ms=200)
    await producer.start()
    sent: list[tuple[str, asyncio.Future[object]]] = []
    failed = 0
    restart: asyncio.Task[None] | None = None

    async def bounce() -> None:
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(broker.start)

    try:
        for number, event in enumerate(events):
            if number == len(events) // 3:
                restart = asyncio.create_task(bounce())
            try:
                future = await producer.send(
                    settings.events_topic, event.to_json(), key=event.sensor_id.encode()
                )
                sent.append((str(event.event_id), future))
            except KafkaError:
                failed += 1
            if number % 50 == 49:
                await asyncio.sleep(0.1)  # ~500 events/s
        assert restart is not None
        await restart
        outcomes = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
    finally:
        if not broker.running():
            await asyncio.to_thread(broker.start)
        await producer.stop()
    acked = {
        event_id
        for (event_id, _), o in zip(sent, outcomes, strict=True)
        if not isinstance(o, BaseException)
    }
    return acked, failed + len(sent) - len(acked)


@pytest.mark.timeout(2400)
def test_broker_restart_while_producing_loses_nothing_acknowledged(
    kafka_broker: KafkaBroker,
    kafka_settings: KafkaSettings,
    postgres: Postgres,
    spark: SparkSession,
    tmp_path: Path,
) -> None:
    # Event times over the last five minutes (one every 200 ms, so each of the 20 sensors
    # reports every 4 s): however many the outage costs, the newest delivered one is well
    # within the quality gate's freshness lag (15 min), so the gates judge the data, not
    # the fault.
    now = now_utc()
    events = [
        event.model_copy(update={"timestamp": now - timedelta(milliseconds=200 * (1_500 - i))})
        for i, event in enumerate(sample_events(1_500, sensors=20, seed=21))
    ]
    with pipeline_for(kafka_settings, postgres, spark, tmp_path, rate_hz=1 / 4) as (
        pipeline,
        services,
    ):
        stream = pipeline.start_stream()
        try:
            acked, failed = asyncio.run(
                produce_through_restart(pipeline.kafka, kafka_broker, events)
            )
        finally:
            if not kafka_broker.running():
                kafka_broker.start()
        pipeline.acknowledged = len(acked)
        accounting = finish(pipeline, services, all_acknowledged=False)
        bronze_ids = {
            row.event_id
            for row in read_table(spark, pipeline.lake.bronze, schemas.BRONZE)
            .select("event_id")
            .collect()
        }
    assert acked, "something was acknowledged"
    assert acked <= bronze_ids, f"{len(acked - bronze_ids)} acknowledged events lost"
    assert len(acked) + failed == len(events)
    assert accounting.bronze == accounting.produced, "no invalid records were sent"
    print(f"acknowledged {len(acked)}, failed {failed}, on the topic {accounting.produced}, "
          f"stream restarts {stream.restarts}")  # fmt: skip


def wrong_shapes(count: int, rng: random.Random) -> list[bytes]:
    """JSON documents of the wrong shape: other types, missing or mistyped fields, nesting."""
    template = orjson.loads(sample_events(1)[0].to_json())
    required = sorted(REQUIRED_FIELDS)

    def without(fields: list[str]) -> dict[str, object]:
        return {k: v for k, v in template.items() if k not in fields}

    makers = [
        lambda: orjson.dumps([rng.random() for _ in range(rng.randint(0, 5))]),
        lambda: orjson.dumps(rng.randint(-(10**6), 10**6)),
        lambda: orjson.dumps("reading " * rng.randint(0, 3)),
        lambda: b"null",
        lambda: b"true",
        lambda: orjson.dumps({"sensor_id": rng.randint(0, 9), "value": "high"}),
        lambda: orjson.dumps({**template, "value": {"celsius": rng.random()}}),
        lambda: orjson.dumps({**template, "timestamp": "yesterday"}),
        lambda: orjson.dumps({**template, "sensor_type": ["temperature"]}),
        lambda: orjson.dumps({**template, "event_id": "not-a-uuid"}),
        lambda: orjson.dumps({"event": template}),
        lambda: orjson.dumps(without(rng.sample(required, rng.randint(1, 3)))),
    ]
    return [rng.choice(makers)() for _ in range(count)]


@pytest.mark.timeout(2400)
def test_malformed_flood_all_dead_lettered_and_the_stream_keeps_running(
    kafka_settings: KafkaSettings, postgres: Postgres, spark: SparkSession, tmp_path: Path
) -> None:
    rng = random.Random(99)
    flood = [rng.randbytes(rng.randint(0, 300)) for _ in range(10_000)]
    flood += wrong_shapes(3_000, rng)
    expected: Counter[str] = Counter()
    for raw in flood:
        with pytest.raises(ContractViolation) as caught:
            parse_event(raw)
        expected[str(caught.value.error_type)] += 1
    series = sample_events(600, sensors=10, seed=1)
    before, after = series[:300], series[300:]
    with pipeline_for(kafka_settings, postgres, spark, tmp_path, rate_hz=1 / 10) as (
        pipeline,
        services,
    ):
        stream = pipeline.start_stream()

        async def send(values: list[bytes]) -> None:
            producer = kafka.producer(pipeline.kafka)
            await producer.start()
            try:
                sent = [
                    await producer.send(pipeline.kafka.events_topic, v, key=str(i % 7).encode())
                    for i, v in enumerate(values)
                ]
                await asyncio.gather(*sent)
            finally:
                await producer.stop()
            pipeline.acknowledged += len(values)

        asyncio.run(send([e.to_json() for e in before]))
        asyncio.run(send(flood))
        asyncio.run(send([e.to_json() for e in after]))
        accounting = finish(pipeline, services)
    assert stream.exits == [], "the job never stopped"
    assert stream.restarts == 0
    assert accounting.dlq == expected
    assert sum(accounting.dlq.values()) == len(flood) == 13_000
    assert accounting.bronze == len(before) + len(after)
    assert accounting.silver == accounting.bronze  # distinct readings, nothing to drop
    print(f"DLQ by type: {dict(accounting.dlq)}")
