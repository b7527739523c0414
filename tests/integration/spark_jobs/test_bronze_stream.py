"""bronze_stream end to end: real Kafka, real Spark, exact accounting, crash and restart."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pyspark.sql import DataFrame, SparkSession
from spark_jobs.bronze_stream import (
    JOB,
    SUMMARY_TABLE,
    BronzeSettings,
    BronzeStream,
    kafka_options,
)
from spark_jobs.schemas import BRONZE
from spark_jobs.stream_metrics import LATENCY_BUCKETS

from iotpipe.contract import (
    SENSOR_TYPES,
    ErrorType,
    EventTimeBounds,
    SensorEvent,
    SensorType,
    parse_event,
)
from iotpipe.dlq import DeadLetter, source_key
from iotpipe.lake import Lake
from iotpipe.local.process import free_port
from iotpipe.settings import KafkaSettings

from .conftest import Produced, produce_mixed, produce_raw, read_dead_letters

pytestmark = pytest.mark.integration


def bronze_rows(spark: SparkSession, lake: Lake) -> list:
    return spark.read.parquet(lake.bronze).collect()


async def assert_accounted(
    spark: SparkSession, lake: Lake, kafka: KafkaSettings, produced: Produced
) -> Counter:
    """Bronze holds exactly the valid records, the DLQ the invalid ones; return DLQ key counts."""
    rows = bronze_rows(spark, lake)
    bronze = [(row.kafka_partition, row.kafka_offset) for row in rows]
    assert len(bronze) == len(produced.valid), "Bronze has exactly the valid records"
    assert len(set(bronze)) == len(bronze), "no offset twice in Bronze"
    assert set(bronze) == set(produced.valid)
    assert {row.event_id for row in rows} == {
        orjson.loads(raw)["event_id"] for raw in produced.valid.values()
    }
    letters = await read_dead_letters(kafka)
    keys = Counter(key for key, _ in letters)
    by_key = {key: letter for key, letter in letters}
    expected = {
        source_key(kafka.events_topic, p, o): kind for (p, o), kind in produced.invalid.items()
    }
    assert set(keys) == set(expected), "every invalid record dead-lettered, nothing else"
    for key, letter in letters:
        assert letter.key == key, "a duplicate is recognisable by its key"
        assert letter.error_type is expected[key]
        assert letter.error_detail
    assert Counter(letter.error_type for letter in by_key.values()) == Counter(expected.values())
    dlq = {(letter.source_partition, letter.source_offset) for letter in by_key.values()}
    assert dlq.isdisjoint(bronze)
    assert dlq | set(bronze) == produced.all
    return keys


def metric_samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of this process's bronze_stream metrics (the in-process job's)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in REGISTRY.collect()
        if family.name.startswith("bronze_stream_")
        for sample in family.samples
    }


def assert_batch_metrics(
    before: dict, after: dict, produced: Produced, started: float, ended: float
) -> None:
    """What the batches recorded: Bronze rows, dead letters per type, commit latencies
    (every commit happened between ``started`` and ``ended``, which bounds each bucket)."""

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    valid = len(produced.valid)
    assert delta("bronze_stream_bronze_rows_total") == valid
    for kind, count in Counter(produced.invalid.values()).items():
        assert delta("bronze_stream_dead_letters_total", error_type=kind.value) == count
    latency = "bronze_stream_commit_latency_seconds"
    assert delta(f"{latency}_count") == valid
    assert delta(f"{latency}_bucket", le="+Inf") == valid
    times = [parse_event(raw).timestamp.timestamp() for raw in produced.valid.values()]
    for bound in LATENCY_BUCKETS:
        at_least = sum(1 for at in times if ended - at <= bound)
        at_most = sum(1 for at in times if started - at <= bound)
        assert at_least <= delta(f"{latency}_bucket", le=str(bound)) <= at_most, bound
    total = delta(f"{latency}_sum")
    assert sum(started - at for at in times) <= total <= sum(ended - at for at in times)


def assert_dlq_lake(spark: SparkSession, lake: Lake, letters: dict[str, DeadLetter]) -> None:
    """``dlq_lake`` holds one row per dead letter in the topic, its headers as columns."""
    rows = spark.read.parquet(lake.dlq).collect()
    assert sorted(row.key for row in rows) == sorted(letters)
    for row in rows:
        letter = letters[row.key]
        assert row.error_type == letter.error_type.value
        assert row.error_detail == letter.error_detail
        assert (row.source_topic, row.source_partition, row.source_offset) == (
            letter.source_topic,
            letter.source_partition,
            letter.source_offset,
        )
        assert (row.value or b"") == letter.value
        assert row.dead_lettered_date == row.dead_lettered_at.date()


def event(kind: SensorType, at: datetime, value: float, n: int) -> bytes:
    return SensorEvent(
        event_id=f"00000000-0000-4000-8000-{n:012d}",
        sensor_id=f"sensor-{kind.value}",
        sensor_type=kind,
        timestamp=at,
        value=value,
        unit=SENSOR_TYPES[kind].unit,
        location="plant-a",
    ).to_json()


async def test_every_record_lands_once_and_the_summary_respects_the_watermark(
    spark: SparkSession, bronze_kafka: KafkaSettings, bronze_lake: Lake
) -> None:
    settings = BronzeSettings(
        available_now=True, metrics_port=0, max_offsets_per_trigger=400, dlq_to_lake=True
    )
    produced = await produce_mixed(bronze_kafka, valid=300, per_kind=5)
    # An hour after the mixed events (event time = now): their newest must not move the
    # watermark past the timed events below, whatever the time of day.
    base = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    bounds = EventTimeBounds(max_ahead=timedelta(hours=2))  # the latest is base + 30 minutes
    # Round 1 also puts events at 10:00..10:04 (two types) and one at 10:12 (watermark -> 10:02).
    timed = [
        event(kind, base + timedelta(minutes=m, seconds=s), 10.0 + m + s / 10, m * 100 + s)
        for kind in (SensorType.HUMIDITY, SensorType.PRESSURE)
        for m in range(5)
        for s in (0, 30)
    ]
    timed.append(event(SensorType.HUMIDITY, base + timedelta(minutes=12), 50.0, 9_000))
    for where, raw in zip(
        await produce_raw(bronze_kafka, bronze_kafka.events_topic, timed), timed, strict=True
    ):
        produced.valid[where] = raw

    before, started = metric_samples(), time.time()
    BronzeStream(spark, settings, bronze_kafka, bronze_lake, bounds).run()
    ended = time.time()
    await assert_accounted(spark, bronze_lake, bronze_kafka, produced)
    assert_batch_metrics(before, metric_samples(), produced, started, ended)
    assert_dlq_lake(spark, bronze_lake, dict(await read_dead_letters(bronze_kafka)))

    # Round 2 (a restart from the checkpoints): one event late but within the watermark
    # (10:03:45), one beyond it (10:01:15), one at 10:30 that moves the watermark to 10:20.
    late = [
        event(SensorType.HUMIDITY, base + timedelta(minutes=3, seconds=45), 99.0, 9_001),
        event(SensorType.HUMIDITY, base + timedelta(minutes=1, seconds=15), 99.0, 9_002),
        event(SensorType.HUMIDITY, base + timedelta(minutes=30), 1.0, 9_003),
    ]
    for where, raw in zip(
        await produce_raw(bronze_kafka, bronze_kafka.events_topic, late), late, strict=True
    ):
        produced.valid[where] = raw
    BronzeStream(spark, settings, bronze_kafka, bronze_lake, bounds).run()
    keys = await assert_accounted(spark, bronze_lake, bronze_kafka, produced)
    assert set(keys.values()) == {1}, "a clean restart writes no DLQ duplicates"

    bronze = spark.read.parquet(bronze_lake.bronze)
    assert [(f.name, f.dataType) for f in bronze.schema.fields] == [
        (f.name, f.dataType) for f in BRONZE.fields
    ]
    partitions = {
        (r.event_date.isoformat(), r.event_hour)
        for r in bronze.where("sensor_id like 'sensor-humidity'").collect()
    }
    assert (base.date().isoformat(), base.hour) in partitions
    summary = {
        (r.minute_start.replace(tzinfo=UTC), r.sensor_type): (r.event_count, r.avg_value)
        for r in spark.read.parquet(bronze_lake.path(*SUMMARY_TABLE)).collect()
    }
    humidity_0103 = (base + timedelta(minutes=3), SensorType.HUMIDITY.value)
    assert summary[humidity_0103] == (3, pytest.approx((13.0 + 16.0 + 99.0) / 3)), (
        "late, in watermark"
    )
    humidity_0101 = (base + timedelta(minutes=1), SensorType.HUMIDITY.value)
    assert summary[humidity_0101] == (2, pytest.approx((11.0 + 14.0) / 2)), "beyond the watermark"
    pressure_0104 = (base + timedelta(minutes=4), SensorType.PRESSURE.value)
    assert summary[pressure_0104] == (2, pytest.approx((14.0 + 17.0) / 2))
    assert (base + timedelta(minutes=30), SensorType.HUMIDITY.value) not in summary, "still open"


async def one_batch(
    spark: SparkSession, kafka: KafkaSettings, lake: Lake
) -> tuple[Produced, BronzeStream, DataFrame]:
    """A mixed topic, a job over it, and the whole topic as one batch for its ``ingest``."""
    produced = await produce_mixed(kafka, valid=60, per_kind=2)
    job = BronzeStream(spark, BronzeSettings(metrics_port=0, tasks=2), kafka, lake)
    batch = (
        spark.read.format("kafka")
        .options(**kafka_options(kafka))
        .option("subscribe", kafka.events_topic)
        .load()
    )
    return produced, job, batch


async def test_a_batch_run_again_after_its_bronze_commit_only_resends_its_dead_letters(
    spark: SparkSession, bronze_kafka: KafkaSettings, bronze_lake: Lake
) -> None:
    """What a restart does with a batch that died after both its Bronze commits, before the
    end of its DLQ write: Bronze is not written again, every dead letter is sent again
    (same key), and nothing is counted twice."""
    produced, job, batch = await one_batch(spark, bronze_kafka, bronze_lake)
    before = metric_samples()
    job.ingest(batch, 0)
    after_first = metric_samples()
    job.ingest(batch, 0)

    keys = await assert_accounted(spark, bronze_lake, bronze_kafka, produced)
    assert set(keys.values()) == {2}, "each dead letter twice, under its source key"
    assert metric_samples() == after_first, "the second run counts nothing"
    rows = ("bronze_stream_bronze_rows_total", ())
    assert after_first[rows] - before.get(rows, 0) == len(produced.valid)


async def test_a_batch_that_died_between_its_two_bronze_commits_is_completed_once(
    spark: SparkSession, bronze_kafka: KafkaSettings, bronze_lake: Lake
) -> None:
    """A restart after the certain records' commit and before the judged ones': the run
    again commits only the judged records (valid and lax ones to Bronze, the rest to the
    DLQ), and the metrics of the two runs add up to the batch's."""
    produced, job, batch = await one_batch(spark, bronze_kafka, bronze_lake)

    def crash(*_: object) -> dict:
        raise RuntimeError("killed between the two commits")

    before = metric_samples()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(job, "_commit_judged", crash)
        with pytest.raises(RuntimeError, match="killed"):
            job.ingest(batch, 0)
    certain = len(bronze_rows(spark, bronze_lake))
    assert 0 < certain < len(produced.valid), "the lax records wait for the second commit"
    job.ingest(batch, 0)

    keys = await assert_accounted(spark, bronze_lake, bronze_kafka, produced)
    assert set(keys.values()) == {1}, "each dead letter once"
    after = metric_samples()
    rows = ("bronze_stream_bronze_rows_total", ())
    assert after[rows] - before.get(rows, 0) == len(produced.valid)
    assert sorted(int(p.name) for p in bronze_log(bronze_lake)) == [0, 1]


async def test_a_deleted_checkpoint_loses_nothing(
    spark: SparkSession, bronze_kafka: KafkaSettings, bronze_lake: Lake
) -> None:
    """docs/runbook.md's reset: delete the job's checkpoints, produce more, run again. A new
    checkpoint numbers its batches from 0 again, which Bronze's and the DLQ lake copy's
    sinks once took for batches they held (the new records were in neither). Now every
    record is in Bronze or the DLQ: the first round's twice (the new checkpoint reads the
    topic from its start again), the second round's once."""
    settings = BronzeSettings(available_now=True, metrics_port=0, dlq_to_lake=True)
    first = await produce_mixed(bronze_kafka, valid=120, per_kind=2, seed=21)
    BronzeStream(spark, settings, bronze_kafka, bronze_lake).run()
    await assert_accounted(spark, bronze_lake, bronze_kafka, first)

    shutil.rmtree(bronze_lake.checkpoint(JOB))
    second = await produce_mixed(bronze_kafka, valid=120, per_kind=2, seed=22)
    BronzeStream(spark, settings, bronze_kafka, bronze_lake).run()

    bronze = Counter(
        (row.kafka_partition, row.kafka_offset) for row in bronze_rows(spark, bronze_lake)
    )
    assert bronze == Counter({**dict.fromkeys(first.valid, 2), **dict.fromkeys(second.valid, 1)})
    letters = Counter(key for key, _ in await read_dead_letters(bronze_kafka))
    key = functools.partial(source_key, bronze_kafka.events_topic)
    assert letters == Counter(
        {**{key(*at): 2 for at in first.invalid}, **{key(*at): 1 for at in second.invalid}}
    )
    # The lake copy's new checkpoint reads the DLQ topic from its start again, too.
    lake_letters = Counter(row.key for row in spark.read.parquet(bronze_lake.dlq).collect())
    assert lake_letters == Counter(
        {**{key(*at): 3 for at in first.invalid}, **{key(*at): 1 for at in second.invalid}}
    )


async def test_a_bad_record_near_the_size_limit_is_dead_lettered_in_part(
    spark: SparkSession, bronze_kafka: KafkaSettings, bronze_lake: Lake
) -> None:
    """A record just under the broker's 1 MiB default plus the DLQ's key and headers is over
    it: the DLQ write failed, and the batch again on every restart. Now the letter keeps the
    value's first ``dlq_max_value_bytes`` and says how long the whole is; the stream goes on."""
    huge = b'{"sensor_id": "s-1", "pad": "' + b"x" * 1_048_370  # cut short: malformed_json
    produced = await produce_mixed(bronze_kafka, valid=40, per_kind=1, seed=31)
    [where] = await produce_raw(bronze_kafka, bronze_kafka.events_topic, [huge])
    produced.invalid[where] = ErrorType.MALFORMED_JSON
    settings = BronzeSettings(available_now=True, metrics_port=0, summary=False)

    BronzeStream(spark, settings, bronze_kafka, bronze_lake).run()

    await assert_accounted(spark, bronze_lake, bronze_kafka, produced)
    letters = dict(await read_dead_letters(bronze_kafka))
    cut = letters[source_key(bronze_kafka.events_topic, *where)]
    assert cut.value == huge[: settings.dlq_max_value_bytes]
    assert cut.source_size == len(huge)
    assert cut.error_type is ErrorType.MALFORMED_JSON
    assert all(letter.source_size is None for letter in letters.values() if letter is not cut)


def bronze_log(lake: Lake) -> list[Path]:
    """The entries of Bronze's file sink log (two per micro-batch)."""
    log = Path(lake.bronze) / "_spark_metadata"
    return [p for p in log.iterdir() if p.name.isdigit()] if log.exists() else []


def committed_batches(lake: Lake) -> int:
    return len(bronze_log(lake)) // 2


def job_process(
    lake: Lake, kafka: KafkaSettings, log: Path, *args: str, port: int = 0
) -> subprocess.Popen:
    env = {
        **os.environ,
        "LAKE_ROOT": lake.root,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_EVENTS_TOPIC": kafka.events_topic,
        "KAFKA_DLQ_TOPIC": kafka.dlq_topic,
        "BRONZE_METRICS_PORT": str(port),
        "BRONZE_SUMMARY": "false",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "spark_jobs.bronze_stream", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the JVM dies with it
        )


@pytest.mark.timeout(1800)  # two JVM starts; slow when the machine is shared
def test_sigkill_mid_run_then_restart_keeps_bronze_exact(
    spark: SparkSession, bronze_kafka: KafkaSettings, bronze_lake: Lake, tmp_path: Path
) -> None:
    produced = asyncio.run(produce_mixed(bronze_kafka, valid=1_500, per_kind=40))
    log = tmp_path / "job.log"
    port = free_port()
    job = job_process(
        bronze_lake,
        bronze_kafka,
        log,
        "--trigger_seconds",
        "0.5",
        "--max_offsets_per_trigger",
        "60",
        port=port,
    )
    metrics = ""

    def lag_reported() -> bool:
        return any(
            sample.labels.get("query") == "bronze"
            and sample.labels.get("topic") == bronze_kafka.events_topic
            for family in text_string_to_metric_families(metrics)
            if family.name == "bronze_stream_offsets_behind_latest"
            for sample in family.samples
        )

    try:
        deadline = time.monotonic() + 600  # generous: the machine may be shared
        # Mid-run: a few Bronze batches committed and the listener has reported them.
        while committed_batches(bronze_lake) < 3 or not lag_reported():
            assert job.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (
                "the job did not get going in time\n" + metrics + log.read_text()[-3000:]
            )
            time.sleep(0.5)
            if committed_batches(bronze_lake) >= 3:
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
    assert "bronze_stream_bronze_rows_total" in metrics
    interrupted = len(bronze_rows(spark, bronze_lake))
    assert 0 < interrupted < len(produced.valid), "killed mid-run"

    # Restart from the checkpoints, as the operator's restartPolicy Always would: one start
    # must drain it (Spark 4.1.1's Kafka source failed the first replayed batch with an NPE
    # in KafkaMicroBatchStream.metrics; 4.1.3 fixed it, and this holds us to that).
    restarted = job_process(bronze_lake, bronze_kafka, log, "--available_now", "true")
    try:
        code = restarted.wait(900)
    finally:
        if restarted.poll() is None:
            os.killpg(restarted.pid, signal.SIGKILL)
            restarted.wait(30)
    assert code == 0, f"exit code {code}\n" + log.read_text()[-3000:]

    keys = asyncio.run(assert_accounted(spark, bronze_lake, bronze_kafka, produced))
    duplicates = {key: n for key, n in keys.items() if n > 1}
    print(
        f"killed after {interrupted} Bronze rows; DLQ duplicates after the crash: {len(duplicates)}"
    )
