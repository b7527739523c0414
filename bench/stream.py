"""Streaming Bronze ingestion: sustained rate and event-time -> Bronze commit latency.

One fresh single-node broker and one local[2] SparkSession, three phases:

1. **Reference** — Spark's plain Kafka -> Parquet copy (no parsing, no classification,
   no DLQ) over a pre-loaded topic of real events.
2. **Sustained rate** — ``bronze_stream``'s ingest query (classification, Bronze and the
   DLQ, as deployed; the summary query off; ``TASKS`` tasks) over the same topic.

   Both rates are the steady state: ``rows / (end of last batch - start of second
   batch)`` over the batches after the first, from the query progress, so start-up and
   the first batch's warm-up are not counted; ratio = bronze_stream / plain copy. The two
   alternate for ``ROUNDS`` rounds in one JVM and the last round is reported (the first
   warms the JVM's compiler up for both).
3. **Latency** — the job runs with a 1 s trigger while the sensor simulator sends fresh
   events (event time = now) at a fixed 10,000 events/s, for ``WARM_UP_SECONDS`` and
   then ``LATENCY_SECONDS`` more. The latency of a row is its commit time (the mtime of
   the first entry of the file sink's ``_spark_metadata`` log that lists its file,
   written after the files) minus its event time; p50/p95/p99 over the rows of the measured
   seconds (every row must be committed, warm-up included). If the job cannot keep up,
   the rows not committed ``DRAIN_SECONDS`` after the producer stopped are reported
   (``latency_rows_committed`` < ``latency_events``) and the target is not met. The
   median batch duration and where it goes (Spark's ``durationMs`` parts) are recorded,
   because at a 1 s trigger the per-batch overhead decides the latency.

The pre-load uses Kafka's ProducerPerformance with a payload file of real events (ids
repeat, which Bronze does not care about).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from rich.progress import Progress

from bench.harness import Result
from iotpipe import jars, kafka
from iotpipe.demo import sample_events
from iotpipe.lake import Lake
from iotpipe.local import KafkaBroker
from iotpipe.local.process import free_port
from iotpipe.settings import KafkaSettings

PRELOAD = 1_000_000
ROUNDS = 2
"""Reference and job alternate over the same topic, each from scratch; the last round is
reported. The first warms the JVM up (JIT compilation of Kafka's and Parquet's code
paths, which a running job has behind it): measured cold, the plain copy ran at half its
warm rate."""
MAX_PER_TRIGGER = 200_000
TASKS = 2
"""Tasks per micro-batch: one per core (each task has a fixed cost)."""
MIN_PARTITIONS = 6
"""Kafka offset ranges per micro-batch, coalesced into ``TASKS`` tasks of even shares (the
topic's 3 partitions alone would give one task 2 of them). Spark rounds a partition's
share of ``minPartitions`` to whole ranges, so 4 or 5 would still give 3."""
FIXED_RATE = 10_000
WARM_UP_SECONDS = 20
"""At the fixed rate before latencies count: a job's first batches pay for JVM code
compilation and Python worker start-up, which a running job has behind it."""
LATENCY_SECONDS = 30
DRAIN_SECONDS = 120
TARGET_RATE = 50_000
TARGET_P95 = 5.0


def preload(settings: KafkaSettings, topic: str, folder: Path) -> None:
    payloads = folder / "payloads.txt"
    payloads.write_bytes(b"\n".join(e.to_json() for e in sample_events(5_000)))
    java = shutil.which("java") or "java"
    subprocess.run(
        [
            java, "-Xmx512m", "-cp", jars.classpath("kafka"),
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic", topic, "--num-records", str(PRELOAD), "--throughput", "-1",
            "--payload-file", str(payloads),
            "--producer-props", f"bootstrap.servers={settings.bootstrap_servers}",
            "acks=all", "compression.type=lz4", "linger.ms=20", "batch.size=262144",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def sustained_rate(progress: list[dict[str, Any]]) -> float:
    """Rows per second over the batches after the first (the first one warms the JVM up)."""
    batches = [p for p in progress if p.get("numInputRows")][1:]
    if not batches:
        raise RuntimeError("fewer than two batches: preload more than maxOffsetsPerTrigger")
    rows = sum(int(p["numInputRows"]) for p in batches)
    start = _seconds(batches[0]["timestamp"])
    end = _seconds(batches[-1]["timestamp"]) + int(batches[-1]["batchDuration"]) / 1000
    return rows / (end - start)


def plain_copy(spark: Any, settings: KafkaSettings, lake: Lake) -> float:
    from spark_jobs.bronze_stream import READ_COMMITTED, kafka_options

    query = (
        spark.readStream.format("kafka")
        .options(**kafka_options(settings), **READ_COMMITTED)
        .option("subscribe", settings.events_topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", str(MAX_PER_TRIGGER))
        .load()
        .select("value", "topic", "partition", "offset", "timestamp")
        .writeStream.format("parquet")
        .option("checkpointLocation", lake.checkpoint("plain_copy"))
        .trigger(availableNow=True)
        .start(lake.path("plain_copy"))
    )
    query.awaitTermination()
    return sustained_rate([orjson.loads(p.json) for p in query.recentProgress])


def bronze_rate(spark: Any, settings: KafkaSettings, lake: Lake) -> tuple[float, int]:
    from spark_jobs.bronze_stream import BronzeSettings, BronzeStream

    job = BronzeStream(
        spark,
        BronzeSettings(
            available_now=True,
            summary=False,
            metrics_port=0,
            max_offsets_per_trigger=MAX_PER_TRIGGER,
            min_partitions=MIN_PARTITIONS,
            tasks=TASKS,
        ),
        settings,
        lake,
    )
    job.run()
    bronze = next(q for q in job.queries if q.name == "bronze")
    rows = spark.read.parquet(lake.bronze).count()
    return sustained_rate([orjson.loads(p.json) for p in bronze.recentProgress]), rows


async def paced_producer(settings: KafkaSettings, seconds: float, rate: int) -> tuple[int, float]:
    """The project's sensor simulator at a fixed ``rate`` for ``seconds`` (event time = send
    time); return (delivered, achieved rate). Its batch path costs ~7 us of CPU per event,
    so the producer takes little of the machine the job runs on."""
    from sensor_simulator.config import EngineSettings, RunConfig
    from sensor_simulator.runs import RunManager

    manager = RunManager(EngineSettings(kafka=settings))
    config = RunConfig(
        rate=rate, duration_seconds=seconds, sensors=1_000, topic=settings.events_topic, seed=7
    )
    started = time.perf_counter()
    run = await manager.start_synthetic(config)
    await run.wait()
    elapsed = time.perf_counter() - started
    await manager.shutdown()
    counters = run.status().counters
    if counters.failed:
        raise RuntimeError(f"the simulator could not deliver every event: {counters}")
    return counters.delivered, counters.delivered / elapsed


def commit_latencies(spark: Any, lake: Lake, since: float) -> dict[str, float]:
    """p50/p95/p99 of (batch commit time - event time) over the Bronze rows whose event
    time is ``since`` (Unix seconds) or later."""
    from local_pipeline.accounting import commit_times
    from pyspark.sql import functions as sf

    files = spark.createDataFrame(
        list(commit_times(lake.bronze).items()), "file string, committed double"
    )
    rows = spark.read.parquet(lake.bronze).select(
        sf.element_at(sf.split(sf.input_file_name(), "/"), -1).alias("file"),
        sf.unix_micros("timestamp").alias("event_us"),
    )
    latency = (
        rows.where(sf.col("event_us") >= int(since * 1_000_000))
        .join(files, "file")
        .select((sf.col("committed") - sf.col("event_us") / 1e6).alias("latency"))
    )
    p50, p95, p99 = latency.select(
        sf.percentile("latency", sf.array(sf.lit(0.5), sf.lit(0.95), sf.lit(0.99)))
    ).first()[0]
    return {"p50_latency_s": p50, "p95_latency_s": p95, "p99_latency_s": p99}


def batch_profile(progress: list[dict[str, Any]]) -> dict[str, float]:
    """Median batch duration and its parts (ms) over the batches that read rows."""
    from statistics import median

    batches = [p for p in progress if p.get("numInputRows")]
    parts = ("triggerExecution", "latestOffset", "queryPlanning", "addBatch", "walCommit")
    profile = {
        f"latency_batch_{part}_ms_p50": median(p["durationMs"].get(part, 0) for p in batches)
        for part in parts
    }
    profile["latency_batch_rows_p50"] = median(int(p["numInputRows"]) for p in batches)
    profile["latency_batches"] = len(batches)
    return profile


def latency(spark: Any, settings: KafkaSettings, lake: Lake) -> dict[str, Any]:
    from spark_jobs.bronze_stream import BronzeSettings, BronzeStream
    from spark_jobs.schemas import BRONZE

    job = BronzeStream(
        spark,
        BronzeSettings(
            trigger_seconds=1.0,
            starting_offsets="latest",
            summary=False,
            metrics_port=0,
            min_partitions=MIN_PARTITIONS,
            tasks=TASKS,
        ),
        settings,
        lake,
    )
    runner = threading.Thread(target=job.run, daemon=True)
    runner.start()
    while not job.queries or any(q.lastProgress is None for q in job.queries):
        time.sleep(0.5)  # the query has run a first (empty) batch: offsets are pinned
    measured_from = time.time() + WARM_UP_SECONDS
    sent, achieved = asyncio.run(
        paced_producer(settings, WARM_UP_SECONDS + LATENCY_SECONDS, FIXED_RATE)
    )
    deadline = time.monotonic() + DRAIN_SECONDS
    while (committed := spark.read.schema(BRONZE).parquet(lake.bronze).count()) < sent:
        if time.monotonic() > deadline:
            break  # reported: latencies then cover the committed rows only
        time.sleep(1)
    bronze = next(q for q in job.queries if q.name == "bronze")
    profile = batch_profile([orjson.loads(p.json) for p in bronze.recentProgress])
    job.stop()
    runner.join(60)
    return (
        {
            "latency_events": sent,
            "latency_input_rate": round(achieved, 1),
            "latency_rows_committed": committed,
        }
        | {
            name: round(value, 3)
            for name, value in commit_latencies(spark, lake, measured_from).items()
        }
        | profile
    )


def run() -> Result:
    from iotpipe.spark import session

    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="iotpipe-bench-stream-"))
    broker = KafkaBroker(
        folder / "kafka", port=free_port(), controller_port=free_port(), log_level="WARN"
    )
    broker.start()
    spark = None
    try:
        with Progress(transient=True) as bar:
            step = bar.add_task("stream bench", total=ROUNDS + 2)
            events = broker.settings()
            preload(events, events.events_topic, folder)
            bar.advance(step)
            spark = session("bench-stream")
            rounds = []
            for n in range(ROUNDS):
                reference = plain_copy(spark, events, Lake(str(folder / f"lake-plain-{n}")))
                rate, rows = bronze_rate(spark, events, Lake(str(folder / f"lake-bronze-{n}")))
                if rows != PRELOAD:
                    raise RuntimeError(f"Bronze has {rows} rows, expected {PRELOAD}")
                rounds.append({"reference": round(reference, 1), "bronze_stream": round(rate, 1)})
                bar.console.print(
                    f"round {n + 1}: plain Kafka->Parquet copy {reference:,.0f} events/s, "
                    f"bronze_stream {rate:,.0f} events/s"
                )
                bar.advance(step)
            fresh = events.model_copy(
                update={"events_topic": "latency-events", "dlq_topic": "latency-dlq"}
            )
            asyncio.run(kafka.ensure_topics(fresh, kafka.pipeline_topics(fresh)))
            timing = latency(spark, fresh, Lake(str(folder / "lake-latency")))
            bar.advance(step)
    finally:
        if spark is not None:
            spark.stop()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
    complete = timing["latency_rows_committed"] == timing["latency_events"]
    met = rate >= TARGET_RATE and timing["p95_latency_s"] <= TARGET_P95 and complete
    return Result(
        name="stream",
        metric="sustained ingest rate into Bronze (local[2])",
        value=round(rate, 1),
        unit="events/s",
        reference="Spark plain Kafka->Parquet copy (no classification), same run",
        reference_value=round(reference, 1),
        target=f">= {TARGET_RATE:,} events/s; p95 event->commit <= {TARGET_P95:g} s "
        f"at {FIXED_RATE:,} events/s, 1 s trigger",
        met=met,
        extra={
            "preloaded_events": PRELOAD,
            "rounds": rounds,
            "max_offsets_per_trigger": MAX_PER_TRIGGER,
            "min_partitions": MIN_PARTITIONS,
            "tasks": TASKS,
            "latency_warm_up_seconds": WARM_UP_SECONDS,
            "latency_measured_seconds": LATENCY_SECONDS,
            "load_average_1m_before": load_before,
            "load_average_1m_after": os.getloadavg()[0],
            **timing,
        },
    )
