"""The acceptance path with the real streaming job: Kafka -> bronze_stream -> DLQ ->
inspector (patched replay, sent twice) -> Kafka -> bronze_stream -> Bronze, exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from pyspark.sql import SparkSession
from spark_jobs.bronze_stream import BronzeSettings, BronzeStream

from iotpipe import kafka
from iotpipe.contract import SENSOR_TYPES, SensorEvent, SensorType
from iotpipe.demo import sample_events
from iotpipe.lake import Lake
from iotpipe.settings import KafkaSettings

from .conftest import dlq_settings, event_json, read_all, running, topic_names

pytestmark = pytest.mark.integration


async def produce_and_ingest(
    spark: SparkSession,
    settings: KafkaSettings,
    lake: Lake,
    events: list[SensorEvent],
    values: list[bytes],
) -> BronzeSettings:
    """Send each event's wire bytes (keyed by its sensor), then run the stream until it has
    read them all; returns the stream's settings, for the next run."""
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for event, value in zip(events, values, strict=True):
            await producer.send(settings.events_topic, value, key=event.sensor_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    job = BronzeSettings(available_now=True, metrics_port=0, summary=False)
    BronzeStream(spark, job, settings, lake).run()
    return job


async def test_a_patched_replay_reaches_bronze_exactly_once(
    spark: SparkSession, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = dlq_settings(kafka_settings, topic_names())
    lake = Lake(str(tmp_path / "lake"))
    await kafka.ensure_topics(settings.kafka, kafka.pipeline_topics(settings.kafka))
    events = sample_events(40, sensors=4, seed=21)
    broken = [e for e in events if e.sensor_type is SensorType.TEMPERATURE]
    good = [e for e in events if e.sensor_type is not SensorType.TEMPERATURE]
    # a firmware bug: temperatures reported in "degC"
    values = [e.to_json() for e in good] + [event_json(e, unit="degC") for e in broken]
    job = await produce_and_ingest(spark, settings.kafka, lake, [*good, *broken], values)
    assert spark.read.parquet(lake.bronze).count() == len(good)

    async with running(settings) as dlq:
        listed = (await dlq.client.get("/dlq/messages", params={"limit": 100})).json()
        assert len(listed["items"]) == len(broken) == 10
        assert {item["error_type"] for item in listed["items"]} == {"out_of_contract"}
        assert all("degC" in item["error_detail"] for item in listed["items"])
        request = {
            "filter": {"error_type": ["out_of_contract"], "status": "any"},
            "patch": {"unit": SENSOR_TYPES[SensorType.TEMPERATURE].unit},
        }
        first = (await dlq.replay(**request)).json()
        second = (await dlq.replay(**request)).json()
        assert first["counts"]["replayed"] == len(broken)
        assert second["counts"]["replayed"] == 0
        assert second["counts"]["already_replayed"] == len(broken)

    BronzeStream(spark, job, settings.kafka, lake).run()
    rows = spark.read.parquet(lake.bronze).collect()
    counts = Counter(row.event_id for row in rows)
    assert len(rows) == len(events)
    assert set(counts.values()) == {1}, "every event in Bronze exactly once"
    assert set(counts) == {str(e.event_id) for e in events}
    replayed = [row for row in rows if row.sensor_type == "temperature"]
    assert {row.unit for row in replayed} == {"celsius"}
    dead = await read_all(settings.kafka, settings.kafka.dlq_topic)
    assert len(dead) == len(broken), "the replayed events were valid: no new dead letters"
    assert {orjson.loads(r.value)["unit"] for r in dead} == {"degC"}


async def test_a_forced_re_replay_with_a_corrected_patch_wins_in_silver(
    spark: SparkSession, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """A replay's copy carries its job (Bronze ``replay_id``); a forced re-replay with a
    corrected patch lands as a second copy of the same readings, and Silver keeps it, not
    the first replay (first-arrival deduplication would drop the correction silently)."""
    from spark_jobs import bronze_to_silver
    from spark_jobs.medallion import MedallionSettings

    from iotpipe.windows import Window

    settings = dlq_settings(kafka_settings, topic_names())
    lake = Lake(str(tmp_path / "lake"))
    await kafka.ensure_topics(settings.kafka, kafka.pipeline_topics(settings.kafka))
    events = [
        e for e in sample_events(40, sensors=4, seed=5) if e.sensor_type is SensorType.HUMIDITY
    ]
    # the unit misspelt: every one out of contract
    values = [event_json(e, unit="pct") for e in events]
    job = await produce_and_ingest(spark, settings.kafka, lake, events, values)

    unit = SENSOR_TYPES[SensorType.HUMIDITY].unit
    selected = {"filter": {"error_type": ["out_of_contract"], "status": "any"}}
    async with running(settings) as dlq:
        first = (await dlq.replay(**selected, patch={"unit": unit, "value": 0.0})).json()
        assert first["counts"]["replayed"] == len(events)
        # The patch zeroed the values by mistake: replay again, forced, with the right one.
        fixed = (await dlq.replay(**selected, patch={"unit": unit}, force=True)).json()
        assert fixed["counts"]["replayed"] == len(events), fixed
    BronzeStream(spark, job, settings.kafka, lake).run()

    bronze = spark.read.parquet(lake.bronze).collect()
    assert Counter(row.replay_id for row in bronze) == {
        first["id"]: len(events),
        fixed["id"]: len(events),
    }
    hours = {e.timestamp.replace(minute=0, second=0, microsecond=0) for e in events}
    window = Window(min(hours), max(hours) + timedelta(hours=1))
    bronze_to_silver.run(spark, window, MedallionSettings(), lake)
    silver = spark.read.parquet(lake.silver).collect()
    assert len(silver) == len(events), "one row per reading"
    assert {row.replay_id for row in silver} == {fixed["id"]}
    assert sorted(row.value for row in silver) == sorted(e.value for e in events)
