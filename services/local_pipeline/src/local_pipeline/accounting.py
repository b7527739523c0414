"""The exact accounting of one run, each number taken from where the data lives.

Nothing here trusts a job's own report: the events topic's offsets, the DLQ topic's
records, the lake's Parquet (read with Spark) and the warehouse's rows are counted
independently, and the checks say whether they balance::

    produced (committed records on the events topic) = Bronze offsets + DLQ source offsets
    aborted transactions' records                    = in neither
    Silver rows                                  = Bronze - duplicates - rows with nulls
    sum of Gold reading_count                    = Silver rows
    warehouse fact rows (and their readings)     = Gold rows (and readings) of the window
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from sensor_simulator.config import MalformedKind
from spark_jobs import schemas
from spark_jobs.bronze_to_silver import REQUIRED
from spark_jobs.medallion import read_table

from iotpipe import kafka
from iotpipe.contract import ErrorType
from iotpipe.dlq import DeadLetter
from iotpipe.lake import Lake
from iotpipe.lakefs import committed_files, filesystem
from iotpipe.settings import KafkaSettings
from iotpipe.windows import Window

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DLQ_TYPE_OF: dict[MalformedKind, ErrorType] = {
    MalformedKind.BROKEN_JSON: ErrorType.MALFORMED_JSON,
    MalformedKind.WRONG_TYPE: ErrorType.SCHEMA_MISMATCH,
    MalformedKind.MISSING_FIELD: ErrorType.MISSING_REQUIRED,
    MalformedKind.OUT_OF_CONTRACT: ErrorType.OUT_OF_CONTRACT,
}
"""What the DLQ calls each kind of record the simulator breaks (see ``MalformedKind``)."""

Offset = tuple[int, int]
"""(partition, offset) on the events topic."""


# ---------------------------------------------------------------- Kafka


async def end_offsets(settings: KafkaSettings, topic: str) -> dict[int, int]:
    """The next offset of every partition of ``topic`` (to a ``read_committed`` reader: the
    last stable offset, before which every transaction has committed or aborted)."""
    from aiokafka import TopicPartition

    admin = kafka.admin(settings)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] or not described["partitions"]:
        raise LookupError(f"topic {topic!r} does not exist")
    consumer = kafka.consumer(settings)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def read_topic(
    settings: KafkaSettings, topic: str, *, committed: bool = True, keep: bool = True
) -> list[Any]:
    """Every record of ``topic`` from the beginning to its last stable offset (where every
    transaction before it has committed or aborted): the committed ones (``read_committed``,
    as every consumer of the pipeline reads), or with ``committed=False`` every data record,
    aborted transactions' included. ``keep=False`` returns only their :data:`Offset` s."""
    from aiokafka import TopicPartition

    ends = await end_offsets(settings, topic)
    isolation = "read_committed" if committed else "read_uncommitted"
    consumer = kafka.consumer(settings, isolation_level=isolation)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in ends]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp.partition]]:
            batch = await consumer.getmany(timeout_ms=1_000)
            for found in batch.values():
                found = [r for r in found if r.offset < ends[r.partition]]
                records += found if keep else [(r.partition, r.offset) for r in found]
        return records
    finally:
        await consumer.stop()


async def produced_offsets(settings: KafkaSettings) -> tuple[set[Offset], set[Offset]]:
    """(committed, aborted) records of the events topic, by offset. Offsets are not records:
    a transaction's commit or abort marker takes one, and an aborted transaction's records
    are on the topic but never read, so the produced records are counted, not the offsets."""
    topic = settings.events_topic
    committed = set(await read_topic(settings, topic, keep=False))
    written = set(await read_topic(settings, topic, committed=False, keep=False))
    return committed, written - committed


async def dead_letters(settings: KafkaSettings) -> list[DeadLetter]:
    """Every record on the DLQ topic, duplicates included (the Kafka sink is at-least-once)."""
    return [
        DeadLetter.from_kafka(r.value, list(r.headers))
        for r in await read_topic(settings, settings.dlq_topic)
    ]


# ---------------------------------------------------------------- the report's numbers


@dataclass(frozen=True)
class Check:
    name: str
    expected: object
    actual: object
    ok: bool


@dataclass(frozen=True)
class SensorHealth:
    gold_health_pct: float
    """Sum of its windows' readings / sum of their expected readings x 100."""
    windows: int
    readings: int


@dataclass
class Accounting:
    window: Window
    produced: int
    """Committed records on the events topic (every offset of a topic no transaction wrote)."""
    aborted: int
    """Records of aborted transactions on the events topic: never read by anyone."""
    bronze: int
    dlq: Counter[str]
    """Dead letters per error type, each source offset once."""
    dlq_records: int
    """Records on the DLQ topic, including copies a crashed Kafka sink wrote again."""
    null_rows: int
    duplicates: int
    silver: int
    anomalies: dict[str, int]
    gold_windows: int
    gold_readings: int
    warehouse_rows: int
    warehouse_readings: int
    sensors: dict[str, SensorHealth]
    """Per sensor in Gold: its windows' health (received / expected, all windows)."""
    latency_s: dict[str, float]
    """Event time -> Bronze commit, p50 and p95 (injected late events left out)."""
    checks: list[Check] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return all(check.ok for check in self.checks)

    def check(self, name: str, expected: object, actual: object, *, ok: bool | None = None) -> None:
        """Record a check: it holds when ``expected == actual`` (or as ``ok`` says)."""
        self.checks.append(Check(name, expected, actual, expected == actual if ok is None else ok))

    def failures(self) -> list[str]:
        return [f"{c.name}: expected {c.expected}, got {c.actual}" for c in self.checks if not c.ok]


def bronze_frame(spark: SparkSession, lake: Lake, window: Window) -> DataFrame:
    from pyspark.sql import functions as sf

    bronze = read_table(spark, lake.bronze, schemas.BRONZE)
    return bronze.where(
        (sf.col("timestamp") >= sf.lit(window.start)) & (sf.col("timestamp") < sf.lit(window.end))
    )


def window_of(spark: SparkSession, lake: Lake) -> Window:
    """The whole UTC hours that Bronze's event times fall in (what a run processes)."""
    from pyspark.sql import functions as sf

    row = (
        read_table(spark, lake.bronze, schemas.BRONZE)
        .agg(sf.min("timestamp").alias("first"), sf.max("timestamp").alias("last"))
        .first()
    )
    if row is None or row["first"] is None:
        raise ValueError(f"Bronze at {lake.bronze} has no rows")
    first = row["first"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    last = row["last"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return Window(first, last + timedelta(hours=1))


def commit_times(bronze: str) -> dict[str, float]:
    """Bronze data file name -> when the file sink committed it."""
    fs, root = filesystem(bronze)
    return committed_files(fs, root) or {}


def latency(bronze: DataFrame, lake: Lake, late_ids: set[str]) -> dict[str, float]:
    """p50/p95 seconds from event time to the Bronze commit of each event's first copy."""
    from pyspark.sql import functions as sf

    committed = commit_times(lake.bronze)
    rows = bronze.select(
        "event_id",
        sf.unix_micros("timestamp").alias("micros"),
        sf.element_at(sf.split(sf.input_file_name(), "/"), -1).alias("file"),
    ).collect()
    first: dict[str, float] = {}
    for row in rows:
        if row.event_id in late_ids or row.file not in committed:
            continue
        seconds = committed[row.file] - row.micros / 1e6
        first[row.event_id] = min(seconds, first.get(row.event_id, seconds))
    if not first:
        return {}
    p50, p95 = np.percentile(np.fromiter(first.values(), dtype=float), [50, 95])
    return {"p50": float(p50), "p95": float(p95)}


def warehouse_counts(dsn: str, window: Window) -> tuple[int, int]:
    """(fact rows, sum of their reading_count) with window_start in ``window``."""
    bounds = (window.start.replace(tzinfo=None), window.end.replace(tzinfo=None))
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(reading_count), 0) FROM fact_sensor_readings "
            "WHERE window_start >= %s AND window_start < %s",
            bounds,
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def account(
    spark: SparkSession,
    lake: Lake,
    kafka_settings: KafkaSettings,
    warehouse_dsn: str,
    window: Window,
    *,
    late_ids: set[str] | None = None,
    events_kafka: KafkaSettings | None = None,
) -> Accounting:
    """Count every layer of ``window`` from its source and check that they balance.
    ``kafka_settings`` reads the DLQ, ``events_kafka`` (default: the same) the events topic:
    where each service has its own user, no one user may read both."""
    from pyspark.sql import functions as sf

    produced, aborted = asyncio.run(produced_offsets(events_kafka or kafka_settings))
    letters = asyncio.run(dead_letters(kafka_settings))
    dlq_types = {(d.source_partition, d.source_offset): d.error_type for d in letters}

    delays = latency(bronze_frame(spark, lake, window), lake, late_ids or set())
    bronze = bronze_frame(spark, lake, window).cache()  # (a cached frame has no file names)
    try:
        offsets = [(r.kafka_partition, r.kafka_offset) for r in bronze.collect()]
        valid = sf.lit(True)
        for name in REQUIRED:
            valid = valid & sf.col(name).isNotNull()
        valid = valid & ~sf.isnan("value")
        good = bronze.where(valid)
        valid_rows = good.count()
        distinct = good.select("sensor_id", "timestamp").distinct().count()
    finally:
        bronze.unpersist()

    silver = read_table(spark, lake.silver, schemas.SILVER).where(
        (sf.col("timestamp") >= sf.lit(window.start)) & (sf.col("timestamp") < sf.lit(window.end))
    )
    flags = silver.agg(
        sf.count("*").alias("rows"),
        sf.count_if("is_out_of_range").alias("out_of_range"),
        sf.count_if("is_zscore_anomaly").alias("zscore"),
        sf.count_if("is_anomaly").alias("total"),
    ).first()
    assert flags is not None
    gold = read_table(spark, lake.gold_windows, schemas.GOLD_WINDOWS).where(
        (sf.col("window_start") >= sf.lit(window.start))
        & (sf.col("window_start") < sf.lit(window.end))
    )
    totals = gold.agg(
        sf.count("*").alias("rows"), sf.coalesce(sf.sum("reading_count"), sf.lit(0)).alias("n")
    ).first()
    assert totals is not None
    sensors = (
        gold.groupBy("sensor_id")
        .agg(
            (sf.sum("reading_count") * 100.0 / sf.sum("expected_count")).alias("health"),
            sf.count("*").alias("windows"),
            sf.sum("reading_count").alias("readings"),
        )
        .collect()
    )
    warehouse_rows, warehouse_readings = warehouse_counts(warehouse_dsn, window)

    result = Accounting(
        window=window,
        produced=len(produced),
        aborted=len(aborted),
        bronze=len(offsets),
        dlq=Counter({str(t): n for t, n in Counter(dlq_types.values()).items()}),
        dlq_records=len(letters),
        null_rows=len(offsets) - valid_rows,
        duplicates=valid_rows - distinct,
        silver=int(flags["rows"]),
        anomalies={k: int(flags[k]) for k in ("out_of_range", "zscore", "total")},
        gold_windows=int(totals["rows"]),
        gold_readings=int(totals["n"]),
        warehouse_rows=warehouse_rows,
        warehouse_readings=warehouse_readings,
        sensors={
            r.sensor_id: SensorHealth(float(r.health), int(r.windows), int(r.readings))
            for r in sensors
        },
        latency_s=delays,
    )
    in_bronze = set(offsets)
    in_dlq = set(dlq_types)
    result.check("no offset twice in Bronze", len(offsets), len(in_bronze))
    result.check("no offset in both Bronze and the DLQ", set(), in_bronze & in_dlq)
    result.check("produced = Bronze + DLQ (offset sets)", len(produced), len(in_bronze | in_dlq))
    result.check(
        "Bronze + DLQ offsets are the produced ones", set(), (in_bronze | in_dlq) ^ produced
    )
    result.check("no aborted record in Bronze or the DLQ", set(), (in_bronze | in_dlq) & aborted)
    result.check(
        "Silver = Bronze - duplicates - null rows",
        result.bronze - result.duplicates - result.null_rows,
        result.silver,
    )
    result.check("Gold readings = Silver rows", result.silver, result.gold_readings)
    result.check("warehouse rows = Gold rows", result.gold_windows, result.warehouse_rows)
    result.check("warehouse readings = Gold readings", result.gold_readings, warehouse_readings)
    return result


def injections(truth_dir: Path | None, kind: str) -> list[dict[str, Any]]:
    """The simulator's ground-truth entries of one ``kind`` (``late``, ``dropout``, ...)."""
    if truth_dir is None:
        return []
    return [
        entry
        for path in sorted(truth_dir.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
        if (entry := json.loads(line)).get("kind") == kind
    ]
