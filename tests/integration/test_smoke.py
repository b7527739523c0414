"""The foundation's round trip: aiokafka in, Spark's Kafka source out, PostgreSQL alongside."""

from __future__ import annotations

import uuid

import orjson
import psycopg
import pytest

from iotpipe import kafka
from iotpipe.demo import produce, sample_events
from iotpipe.local import KafkaBroker, Postgres
from iotpipe.settings import KafkaSettings

pytestmark = pytest.mark.integration


async def test_keyed_events_round_trip_through_kafka_and_spark(
    kafka_broker: KafkaBroker, kafka_settings: KafkaSettings, spark
) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    await kafka.ensure_topics(kafka_settings, [kafka.TopicSpec(topic, partitions=3)])
    events = sample_events(1_000, sensors=25)

    placed = await produce(kafka_settings, topic, events)

    frame = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_broker.bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "partition", "CAST(value AS STRING) AS value")
    )
    rows = frame.collect()

    assert len(rows) == 1_000
    by_id = {orjson.loads(row.value)["event_id"]: row for row in rows}
    assert set(by_id) == {str(e.event_id) for e in events}
    for event in events:
        assert by_id[str(event.event_id)].key == event.sensor_id
    partitions_per_key: dict[str, set[int]] = {}
    for row in rows:
        partitions_per_key.setdefault(row.key, set()).add(row.partition)
    assert len(partitions_per_key) == 25
    assert all(len(p) == 1 for p in partitions_per_key.values())
    assert {k: p for k, p in partitions_per_key.items()} == placed
    assert len({p for ps in placed.values() for p in ps}) > 1, (
        "25 keys should spread over partitions"
    )


def test_postgres_write_and_read(postgres: Postgres) -> None:
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("create table if not exists smoke (id int primary key, note text)")
        conn.execute(
            "insert into smoke values (1, 'hello') on conflict (id) do update set note = 'hello'"
        )
        assert conn.execute("select note from smoke where id = 1").fetchone() == ("hello",)
        assert conn.execute("select inet_server_port()").fetchone() == (postgres.port,)
