"""``make demo``: the local pipeline end to end, with a report.

Today it proves the foundation: the stack comes up, keyed events go through a
real broker and come back through Spark's Kafka source, a row goes through
PostgreSQL, and the report says what happened. Later stages join as they land.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from rich.console import Console
from rich.table import Table

from iotpipe import kafka
from iotpipe.contract import SENSOR_TYPES, SensorEvent, SensorType, now_utc
from iotpipe.local.stack import LocalStack
from iotpipe.settings import KafkaSettings


def sample_events(count: int, *, sensors: int = 20, seed: int = 7) -> list[SensorEvent]:
    """A deterministic batch of valid readings spread over ``sensors`` sensors."""
    rng = random.Random(seed)
    types = list(SensorType)
    start = now_utc() - timedelta(seconds=count)
    events = []
    for i in range(count):
        sensor = i % sensors
        sensor_type = types[sensor % len(types)]
        spec = SENSOR_TYPES[sensor_type]
        events.append(
            SensorEvent(
                event_id=uuid.UUID(int=rng.getrandbits(128)),
                sensor_id=f"sensor-{sensor:04d}",
                sensor_type=sensor_type,
                timestamp=start + timedelta(seconds=i),
                value=round(rng.uniform(spec.min_value, spec.max_value), 3),
                unit=spec.unit,
                location=f"site-{sensor % 3}",
            )
        )
    return events


async def produce(
    settings: KafkaSettings, topic: str, events: list[SensorEvent]
) -> dict[str, set[int]]:
    """Send keyed events (acks=all, idempotent); return the partitions each key landed on."""
    producer = kafka.producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, e.to_json(), key=e.sensor_id.encode()) for e in events
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    placed: dict[str, set[int]] = {}
    for event, record in zip(events, metadata, strict=True):
        placed.setdefault(event.sensor_id, set()).add(record.partition)
    return placed


def read_topic_with_spark(bootstrap: str, topic: str) -> list[tuple[str, int, str]]:
    """(key, partition, value) of every record, read by Spark's Kafka source in batch mode."""
    from iotpipe.spark import session

    frame = (
        session("iotpipe-demo")
        .read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "partition", "CAST(value AS STRING) AS value")
    )
    return [(row.key, row.partition, row.value) for row in frame.collect()]


@dataclass
class Report:
    rows: list[tuple[str, str]] = field(default_factory=list)
    ok: bool = True

    def add(self, what: str, value: object, *, ok: bool = True) -> None:
        self.rows.append((what, f"{value}" if ok else f"[red]{value}[/red]"))
        self.ok &= ok

    def print(self, console: Console) -> None:
        table = Table(title="iotpipe demo", show_header=True, header_style="bold")
        table.add_column("step")
        table.add_column("result", justify="right")
        for row in self.rows:
            table.add_row(*row)
        console.print(table)


def run(events: int = 1_000, *, keep_up: bool = False) -> bool:
    import psycopg

    console = Console()
    stack = LocalStack.load()
    started_at = time.perf_counter()
    with console.status("starting the local stack (Kafka, PostgreSQL)..."):
        started = stack.up()
    report = Report()
    report.add("stack", f"kafka {stack.kafka.bootstrap_servers}, postgres :{stack.postgres.port}")
    try:
        settings = stack.kafka.settings()
        topic = f"demo-{uuid.uuid4().hex[:8]}"
        asyncio.run(kafka.ensure_topics(settings, [kafka.TopicSpec(topic, partitions=3)]))
        batch = sample_events(events)
        with console.status(f"producing {events:,} events to {topic}..."):
            placed = asyncio.run(produce(settings, topic, batch))
        report.add("events produced (acks=all, idempotent)", f"{len(batch):,}")
        with console.status("reading them back with Spark's Kafka source..."):
            rows = read_topic_with_spark(stack.kafka.bootstrap_servers, topic)
        report.add("rows read by Spark", f"{len(rows):,}", ok=len(rows) == len(batch))
        ids_back = {orjson.loads(value)["event_id"] for _, _, value in rows}
        report.add(
            "event ids intact", len(ids_back), ok=ids_back == {str(e.event_id) for e in batch}
        )
        split = [key for key, partitions in placed.items() if len(partitions) != 1]
        report.add(
            "keys on a single partition", f"{len(placed) - len(split)}/{len(placed)}", ok=not split
        )
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            conn.execute(
                "create table if not exists demo_roundtrip (run text primary key, events int)"
            )
            conn.execute("insert into demo_roundtrip values (%s, %s)", (topic, len(rows)))
            back = conn.execute(
                "select events from demo_roundtrip where run = %s", (topic,)
            ).fetchone()
        stored = back[0] if back else None
        report.add("PostgreSQL write + read", stored, ok=stored == len(rows))
    finally:
        if started and not keep_up:
            stack.down()
    report.add("stack", "left running" if (keep_up or not started) else "stopped")
    report.add("elapsed", f"{time.perf_counter() - started_at:.1f} s")
    report.print(console)
    return report.ok
