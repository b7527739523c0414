"""A transactional producer upstream, aborts included, through the real stream: an aborted
transaction's records are acknowledged and on the topic, and in neither Bronze nor the DLQ;
the committed ones balance exactly (produced = Bronze + DLQ, counted as records)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from local_pipeline.accounting import dead_letters, produced_offsets, read_topic
from pyspark.sql import SparkSession
from spark_jobs.bronze_stream import BronzeSettings, BronzeStream

from iotpipe import kafka
from iotpipe.lake import Lake
from iotpipe.settings import KafkaSettings

from .conftest import AUTH, wait_for

pytestmark = pytest.mark.integration


async def test_aborted_transactions_reach_neither_bronze_nor_the_dlq(
    client: httpx.AsyncClient, kafka_settings: KafkaSettings, spark: SparkSession, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = kafka_settings.model_copy(
        update={"events_topic": f"txn-events-{suffix}", "dlq_topic": f"txn-dlq-{suffix}"}
    )
    await kafka.ensure_topics(settings, kafka.pipeline_topics(settings))
    run = {
        "rate": 4000,
        "max_events": 4000,
        "sensors": 40,
        "seed": 3,
        "malformed_rate": 0.05,
        "topic": settings.events_topic,
        "transactions": {"interval_ms": 100, "abort_rate": 0.4},
    }
    response = await client.post("/runs", json=run, headers=AUTH)
    assert response.status_code == 201, response.text
    status = await wait_for(client, response.json()["id"])
    assert status["state"] == "completed", status
    counters = status["counters"]
    assert counters["delivered"] == 4000
    assert counters["aborted_transactions"] > 0 < counters["committed_transactions"]
    assert 0 < counters["aborted"] < 4000

    committed, aborted = await produced_offsets(settings)
    assert len(committed) == counters["delivered"] - counters["aborted"]
    assert len(aborted) == counters["aborted"]
    everything = await read_topic(settings, settings.events_topic, committed=False, keep=False)
    assert len(everything) == counters["delivered"], "the aborted records are on the topic"

    lake = Lake(str(tmp_path / "lake"))
    job = BronzeSettings(available_now=True, metrics_port=0, summary=False)
    await asyncio.to_thread(BronzeStream(spark, job, settings, lake).run)
    rows = spark.read.parquet(lake.bronze).select("kafka_partition", "kafka_offset").collect()
    in_bronze = {(r.kafka_partition, r.kafka_offset) for r in rows}
    assert len(in_bronze) == len(rows), "no record twice in Bronze"
    in_dlq = {(d.source_partition, d.source_offset) for d in await dead_letters(settings)}
    assert in_dlq, "the malformed records of committed transactions are dead letters"
    assert in_bronze & in_dlq == set()
    assert in_bronze | in_dlq == committed, "every committed record in Bronze or the DLQ"
    assert (in_bronze | in_dlq) & aborted == set(), "no aborted record anywhere"
