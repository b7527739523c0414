"""``bronze_stream``: Kafka ``sensor-events`` -> Bronze Parquet + the dead-letter topic.

Every record is classified by :mod:`spark_jobs.classify` (the event contract decides).
Valid records land in Bronze, invalid ones in ``sensor-events-dlq``; the split is a
function of the record's bytes alone, so each input offset ends in exactly one of the two.

The job runs up to three streaming queries, each with its own checkpoint under
``Lake.checkpoint("bronze_stream")``:

- ``bronze`` (the ingest query, :meth:`BronzeStream.ingest`): Bronze is Parquet (snappy)
  partitioned by event date/hour, written through Spark's own file sink (the class behind
  ``writeStream.format("parquet")``). The sink commits a write to ``_spark_metadata``
  under a batch id after its files are written and skips an id it has already committed,
  and readers of the folder only see committed files: exactly-once across crashes, as
  with a file sink query. Micro-batch ``N`` makes two commits:

  1. ``2N``, one Spark job over the batch: the records the fast path accepts
     (:func:`spark_jobs.classify.prepare`, JVM only), written while the job observes their
     metrics and the Kafka coordinates of the other records;
  2. ``2N+1``: only if there are other records, a second job re-reads just those, the
     contract judges them (:func:`spark_jobs.classify.judge`, Python), the valid ones are
     written, then the invalid ones go to the DLQ topic, keyed
     ``<topic>-<partition>-<offset>``, value the original bytes, the :mod:`iotpipe.dlq`
     headers. With none (the usual case) the commit is empty and Python never runs.

  A restart resumes a batch where it stopped: after ``2N`` it judges the rest, after
  ``2N+1`` it sends the batch's dead letters again. The DLQ is at-least-once, and a
  duplicate carries the same key. Each commit's metrics are recorded once it is done
  (:func:`spark_jobs.stream_metrics.record_batch`). The ids count from the checkpoint's
  base (:func:`sink_base`), so a deleted checkpoint cannot collide with what Bronze holds.
- ``dlq_lake`` (``--dlq-to-lake``): the dead-letter topic -> Parquet under ``Lake.dlq``
  (one row per dead letter, its headers as columns), a file sink of its own.
- ``summary``: per sensor type per event-time minute (count, average) from Bronze's
  committed files, with a 10-minute watermark; a minute is written once the watermark
  passes its end, so late events within the watermark are included.

Run ``python -m spark_jobs.bronze_stream --help``. Kafka comes from ``KAFKA_*``, the lake
from ``LAKE_ROOT``, everything else from ``BRONZE_*`` or the command line.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import Field
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict
from pyspark.sql import Column
from pyspark.sql import functions as sf

from iotpipe import dlq
from iotpipe.contract import ErrorType, EventTimeBounds
from iotpipe.lake import DLQ_PARTITIONS, EVENT_PARTITIONS, Lake
from iotpipe.logging import configure_logging
from iotpipe.settings import ContractSettings, KafkaSettings, LakeSettings, from_environment
from spark_jobs import stream_metrics
from spark_jobs.classify import ERROR_DETAIL, ERROR_TYPE, judge, prepare
from spark_jobs.schemas import BRONZE, KAFKA_METADATA
from spark_jobs.stream_metrics import BRONZE_QUERY

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

log = logging.getLogger("spark_jobs.bronze_stream")

JOB: Final = "bronze_stream"
OBSERVATION: Final = "ingest_batch"
"""Name of the metrics the ingest query observes while it writes a batch's certain records
to Bronze."""
JUDGED_OBSERVATION: Final = "ingest_judged"
"""Name of those it observes while it writes the records the contract judged."""
SUMMARY_TABLE: Final = ("streaming", "sensor_type_minute")
"""Where the per-minute summary lands, under the lake root."""


class BronzeSettings(BaseSettings):
    """Streaming Bronze ingestion: Kafka sensor-events -> Bronze Parquet + the DLQ topic.

    Options come from BRONZE_<OPTION> or the command line; Kafka from KAFKA_* (e.g.
    KAFKA_BOOTSTRAP_SERVERS, KAFKA_EVENTS_TOPIC, KAFKA_DLQ_TOPIC), the lake from LAKE_ROOT,
    the event-time bounds from CONTRACT_MAX_AHEAD_SECONDS and CONTRACT_MAX_BEHIND_SECONDS.
    """

    model_config = SettingsConfigDict(
        env_prefix="BRONZE_", extra="ignore", cli_prog_name="python -m spark_jobs.bronze_stream"
    )

    starting_offsets: str = Field(
        default="earliest",
        description="Where a query without a checkpoint starts: earliest, latest or Spark's "
        "per-partition JSON. A checkpoint always wins.",
    )
    max_offsets_per_trigger: int | None = Field(
        default=500_000, ge=1, description="Cap on records per micro-batch (all partitions)."
    )
    min_partitions: int | None = Field(
        default=None,
        ge=1,
        description="Kafka offset ranges per micro-batch at least: Spark splits each topic "
        "partition's range by its share of this, rounded (3 equal partitions stay 3 ranges "
        "up to 5; 6 gives 6). With tasks, many even ranges make even tasks. "
        "Default: one range per topic partition.",
    )
    tasks: int | None = Field(
        default=None,
        ge=1,
        description="Spark tasks per micro-batch: its Kafka offset ranges (see min_partitions) "
        "are coalesced into this many. Every task has a fixed cost (a Python worker for the "
        "contract's UDF, a Parquet file per event hour), so one task per core the job has is "
        "fastest; with min_partitions a few times larger, the tasks get even shares. "
        "Default: one task per offset range.",
    )
    trigger_seconds: float = Field(default=30.0, gt=0, description="Micro-batch interval.")
    available_now: bool = Field(
        default=False, description="Process what is in the topic now, then stop (backfills, tests)."
    )
    watermark_minutes: float = Field(default=10.0, gt=0, description="Summary's lateness bound.")
    summary: bool = Field(default=True, description="Run the per-minute summary query.")
    dlq_max_value_bytes: int = Field(
        default=900_000,
        ge=1_024,
        description="Longest source value a dead letter carries whole; a longer one keeps its "
        "first part and a source_size header (the whole stays at its source coordinates). "
        "Below the broker's 1 MiB default less the headers, so a DLQ write always fits.",
    )
    dlq_to_lake: bool = Field(
        default=False, description="Also keep dead letters as Parquet under the lake's dlq folder."
    )
    fail_on_data_loss: bool = Field(
        default=True, description="Stop if offsets were deleted (retention) before they were read."
    )
    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="Prometheus metrics port of the driver (0: off)."
    )
    master: str | None = Field(
        default=None,
        description="Spark master for local runs (default: SPARK_MASTER or local[2]); "
        "ignored under spark-submit.",
    )
    log_level: str = Field(default="INFO", description="Log level of the driver.")


def kafka_options(settings: KafkaSettings) -> dict[str, str]:
    """Spark Kafka connector options (``kafka.*``) for :class:`KafkaSettings`."""
    options = {
        "kafka.bootstrap.servers": settings.bootstrap_servers,
        "kafka.security.protocol": settings.security_protocol,
        "kafka.client.id": settings.client_id,
    }
    if settings.sasl_mechanism:
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if settings.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""

        def quoted(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

        options["kafka.sasl.mechanism"] = settings.sasl_mechanism
        options["kafka.sasl.jaas.config"] = (
            f"{module} required username={quoted(settings.sasl_username or '')} "
            f"password={quoted(password)};"
        )
    if settings.ssl_cafile:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(settings.ssl_cafile)
    return options


READ_COMMITTED: Final = {"kafka.isolation.level": "read_committed"}
"""How every Spark read of Kafka reads: a transaction's records once it commits, an aborted
one's never (as :func:`iotpipe.kafka.consumer` does)."""


def read_events(spark: SparkSession, settings: BronzeSettings, kafka: KafkaSettings) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .options(**kafka_options(kafka), **READ_COMMITTED)
        .option("subscribe", kafka.events_topic)
        .option("includeHeaders", "true")  # for replay_id (classify.replay_id)
        .option("startingOffsets", settings.starting_offsets)
        .option("failOnDataLoss", str(settings.fail_on_data_loss).lower())
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
    if settings.min_partitions:
        reader = reader.option("minPartitions", str(settings.min_partitions))
    return reader.load()


def to_bronze(classified: DataFrame) -> DataFrame:
    """Valid records as :data:`spark_jobs.schemas.BRONZE` rows."""
    return classified.where(sf.col(ERROR_TYPE).isNull()).select(*_bronze_columns())


@functools.cache
def _bronze_columns() -> list[Column]:
    """:func:`to_bronze`'s projection (built once per process: the job needs it every
    micro-batch)."""
    event_time = sf.col("timestamp")
    columns = {
        "kafka_topic": sf.col("topic"),
        "kafka_partition": sf.col("partition"),
        "kafka_offset": sf.col("offset"),
        "kafka_timestamp": sf.col("timestamp_kafka"),
        "ingest_time": sf.current_timestamp(),
        "replay_id": sf.col("replay_id"),
        "event_date": sf.to_date(event_time),
        "event_hour": sf.hour(event_time),
    }
    if set(columns) != set(KAFKA_METADATA.names) | set(EVENT_PARTITIONS):
        raise RuntimeError("schemas.BRONZE changed: map its new metadata columns here")
    return [
        columns.get(field.name, sf.col(field.name)).cast(field.dataType).alias(field.name)
        for field in BRONZE.fields
    ]


@functools.cache
def _observed() -> list[Column]:
    """What :meth:`BronzeStream.ingest` observes while it writes a batch's certain records
    to Bronze: their metrics and the Kafka coordinates of the others
    (``partition:offset,...``)."""
    certain = sf.col("_fast")
    coordinates = sf.when(~certain, sf.concat_ws(":", "partition", "offset"))
    return [
        *stream_metrics.batch_observation(certain, errors=False),
        sf.array_join(sf.collect_list(coordinates), ",").alias("unsure"),
    ]


@functools.cache
def _judged_observed() -> list[Column]:
    """What :meth:`BronzeStream.ingest` observes while it writes the judged records."""
    return stream_metrics.batch_observation(sf.col(ERROR_TYPE).isNull(), errors=True)


def _observation(written: Any, name: str) -> dict[str, Any]:
    """The metrics observed as ``name`` while the JVM frame ``written`` was written."""
    row = written.queryExecution().observedMetrics().get(name).get()
    return dict(zip(row.schema().fieldNames(), _row_values(row), strict=True))


def to_dead_letters(classified: DataFrame, max_value_bytes: int) -> DataFrame:
    """Invalid records as Kafka records in the :mod:`iotpipe.dlq` format: key, original
    value, headers. A value longer than ``max_value_bytes`` keeps its first part and gets
    the ``source_size`` header, and the detail is cut to :data:`iotpipe.dlq.MAX_DETAIL_CHARS`:
    a dead letter is a source record plus headers, so one near the broker's size limit
    would fail the DLQ write, and the batch with it on every restart."""
    size = sf.length("value_bytes")
    cut = size > sf.lit(max_value_bytes)
    detail = sf.col(ERROR_DETAIL)
    text = {
        dlq.HEADER_ERROR_TYPE: sf.col(ERROR_TYPE),
        dlq.HEADER_ERROR_DETAIL: sf.when(
            sf.length(detail) > sf.lit(dlq.MAX_DETAIL_CHARS),
            sf.concat(sf.substring(detail, 1, dlq.MAX_DETAIL_CHARS - 1), sf.lit("\u2026")),
        ).otherwise(detail),
        dlq.HEADER_SOURCE_TOPIC: sf.col("topic"),
        dlq.HEADER_SOURCE_PARTITION: sf.col("partition").cast("string"),
        dlq.HEADER_SOURCE_OFFSET: sf.col("offset").cast("string"),
        dlq.HEADER_SOURCE_TIMESTAMP_MS: sf.unix_millis(sf.col("timestamp_kafka")).cast("string"),
        dlq.HEADER_DEAD_LETTERED_AT_MS: sf.unix_millis(sf.current_timestamp()).cast("string"),
        dlq.HEADER_SOURCE_SIZE: sf.when(cut, size.cast("string")),
    }
    headers = sf.array(
        *(
            sf.struct(sf.lit(name).alias("key"), sf.encode(text[name], "UTF-8").alias("value"))
            for name in (*dlq.HEADERS, dlq.HEADER_SOURCE_SIZE)
        )
    )
    headers = sf.filter(headers, lambda header: header["value"].isNotNull())
    value = sf.when(cut, sf.substring("value_bytes", 1, max_value_bytes)).otherwise(
        sf.col("value_bytes")
    )
    key = sf.concat_ws("-", "topic", "partition", "offset")  # == iotpipe.dlq.source_key
    return classified.where(sf.col(ERROR_TYPE).isNotNull()).select(
        key.alias("key"), value.alias("value"), headers.alias("headers")
    )


def dead_letter_rows(letters: DataFrame) -> DataFrame:
    """Records of the dead-letter topic (read with ``includeHeaders``) as lake rows: the
    key, the original bytes and every :mod:`iotpipe.dlq` header as a column."""

    def header(name: str) -> Column:
        found = sf.filter("headers", lambda h: h["key"] == sf.lit(name))
        # (try_: an optional header, source_size, is absent from most letters)
        return sf.decode(sf.try_element_at(found, sf.lit(1))["value"], "UTF-8")

    def millis(name: str) -> Column:
        return sf.timestamp_millis(header(name).cast("long"))

    dead_lettered_at = millis(dlq.HEADER_DEAD_LETTERED_AT_MS)
    return letters.select(
        sf.col("key").cast("string").alias("key"),
        sf.col("value"),
        header(dlq.HEADER_ERROR_TYPE).alias(ERROR_TYPE),
        header(dlq.HEADER_ERROR_DETAIL).alias(ERROR_DETAIL),
        header(dlq.HEADER_SOURCE_TOPIC).alias("source_topic"),
        header(dlq.HEADER_SOURCE_PARTITION).cast("int").alias("source_partition"),
        header(dlq.HEADER_SOURCE_OFFSET).cast("long").alias("source_offset"),
        millis(dlq.HEADER_SOURCE_TIMESTAMP_MS).alias("source_timestamp"),
        header(dlq.HEADER_SOURCE_SIZE).cast("long").alias("source_size"),
        dead_lettered_at.alias("dead_lettered_at"),
        sf.col("partition").alias("dlq_partition"),
        sf.col("offset").alias("dlq_offset"),
        sf.to_date(dead_lettered_at).alias("dead_lettered_date"),
    )


def minute_summary(bronze: DataFrame, watermark_minutes: float) -> DataFrame:
    """Count and average per sensor type per event-time minute (append after the watermark)."""
    return (
        bronze.withWatermark("timestamp", f"{int(watermark_minutes * 60)} seconds")
        .groupBy(sf.window("timestamp", "1 minute"), "sensor_type")
        .agg(sf.count(sf.lit(1)).alias("event_count"), sf.avg("value").alias("avg_value"))
        .select(
            sf.col("window.start").alias("minute_start"),
            sf.col("window.end").alias("minute_end"),
            "sensor_type",
            "event_count",
            "avg_value",
            sf.to_date("window.start").alias("minute_date"),
        )
    )


def _only(batch: DataFrame, coordinates: str) -> DataFrame:
    """The records of ``batch`` at these Kafka coordinates (``partition:offset,...``)."""
    spark = batch.sparkSession
    wanted = spark.createDataFrame([(coordinates,)], "c string").select(
        sf.explode(sf.split("c", ",")).alias("c")
    )
    parts = sf.split("c", ":")
    wanted = wanted.select(
        parts[0].cast("int").alias("partition"), parts[1].cast("long").alias("offset")
    )
    return batch.join(sf.broadcast(wanted), ["partition", "offset"], "left_semi")


def _row_values(row: Any) -> list[Any]:
    """The values of a JVM ``Row`` (py4j) as Python values."""
    return [row.get(i) for i in range(row.length())]


BASE_FILE: Final = "sink-base"
"""Beside a query's checkpoint files: the sink batch id its batch 0 commits as
(:func:`sink_base`)."""


def sink_base(spark: SparkSession, checkpoint: str, sink: Any) -> int:
    """The sink batch id that batch 0 of the query checkpointed at ``checkpoint`` commits as.

    A file sink skips a batch id it has already committed: that is what makes a restart
    exactly once. A new checkpoint numbers its batches from 0 again, so after an operator
    deletes one (docs/runbook.md) the sink would take every new batch for one it holds and
    drop it: data in neither Bronze nor the DLQ. So a checkpoint records, when it is new,
    the id after the sink's latest as its base, and its batch ``n`` commits as ``base + n``
    (the ingest query's two commits as ``base + 2n`` and ``base + 2n + 1``). A checkpoint
    older than this (it has batches but no base) keeps base 0, its ids unchanged."""
    jvm: Any = spark._jvm
    hadoop = jvm.org.apache.hadoop.fs
    root = hadoop.Path(checkpoint)
    fs = root.getFileSystem(spark._jsc.hadoopConfiguration())
    marker, offsets = hadoop.Path(root, BASE_FILE), hadoop.Path(root, "offsets")
    if fs.exists(marker):
        stream = fs.open(marker)
        try:
            return int(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()
    if fs.exists(offsets) and any(
        status.getPath().getName().isdigit() for status in fs.listStatus(offsets)
    ):
        return 0
    latest = sink.fileLog().getLatestBatchId()  # a Scala Option
    base = latest.get() + 1 if latest.isDefined() else 0
    out = fs.create(marker, True)
    try:
        out.write(bytearray(str(base).encode()))
    finally:
        out.close()
    if base:
        log.warning(
            "%s is a new checkpoint for a sink that has commits up to %d: its batches "
            "commit from id %d on (records the topic still holds are read again)",
            checkpoint,
            base - 1,
            base,
        )
    return base


def file_sink(
    spark: SparkSession, path: str, partition_columns: Sequence[str], options: dict[str, str]
) -> Any:
    """Spark's Parquet file sink (the JVM object ``writeStream.format("parquet")`` writes
    through) for :meth:`BronzeStream.ingest` to call ``addBatch(batch_id, frame)`` on:
    exactly-once by batch id, committed to ``<path>/_spark_metadata``. An internal class
    (pinned Spark version; the stream's integration tests exercise it)."""
    jvm: Any = spark._jvm
    utils = jvm.org.apache.spark.api.python.PythonUtils
    return jvm.org.apache.spark.sql.execution.streaming.sinks.FileStreamSink(
        spark._jsparkSession,
        path,
        jvm.org.apache.spark.sql.execution.datasources.parquet.ParquetFileFormat(),
        utils.toSeq(list(partition_columns)),
        utils.toScalaMap({"path": path, **options}),
    )


class BronzeStream:
    """The job's streaming queries, started together and stopped together."""

    def __init__(
        self,
        spark: SparkSession,
        settings: BronzeSettings,
        kafka: KafkaSettings | None = None,
        lake: Lake | None = None,
        bounds: EventTimeBounds | None = None,
    ) -> None:
        self.spark = spark
        self.settings = settings
        self.kafka = kafka or KafkaSettings()
        self.lake = lake or Lake.from_settings(LakeSettings())
        self.bounds = bounds or ContractSettings().time_bounds
        self.queries: list[StreamingQuery] = []
        self.stopping = False
        self.bronze_base = 0
        """The Bronze commit id of batch 0's first commit (:func:`sink_base`), set when the
        ingest query starts."""
        spark.conf.set("spark.sql.session.timeZone", "UTC")

    @functools.cached_property
    def bronze_sink(self) -> Any:
        """Bronze's file sink (:func:`file_sink`), which :meth:`ingest` writes through."""
        return file_sink(self.spark, self.lake.bronze, EVENT_PARTITIONS, {"compression": "snappy"})

    def checkpoint(self, name: str) -> str:
        """Where query ``name`` keeps its checkpoint."""
        return f"{self.lake.checkpoint(JOB)}/{name}"

    def _writer(self, frame: DataFrame, name: str) -> DataStreamWriter:
        trigger = (
            {"availableNow": True}
            if self.settings.available_now
            else {"processingTime": f"{self.settings.trigger_seconds} seconds"}
        )
        writer = (
            frame.writeStream.queryName(name)
            .option("checkpointLocation", self.checkpoint(name))
            .trigger(**trigger)
        )
        return writer

    def _sink_query(
        self, frame: DataFrame, name: str, path: str, partition_columns: Sequence[str]
    ) -> StreamingQuery:
        """Query ``name``: ``frame`` appended to Parquet at ``path`` through a
        :func:`file_sink` whose batch ids start at the checkpoint's :func:`sink_base`."""
        sink = file_sink(self.spark, path, partition_columns, {"compression": "snappy"})
        base = sink_base(self.spark, self.checkpoint(name), sink)

        def write(batch: DataFrame, batch_id: int) -> None:
            sink.addBatch(base + batch_id, batch._jdf)

        query = self._writer(frame, name).outputMode("append").foreachBatch(write).start()
        self.queries.append(query)
        return query

    def ingest(self, batch: DataFrame, batch_id: int) -> None:
        """One micro-batch of the ingest query: two Bronze commits, the DLQ, the metrics.

        Commit ``2 * batch_id`` holds the records the fast path accepted, written in one
        pass over the batch that also observes the metrics and the Kafka coordinates of
        the other records. Commit ``2 * batch_id + 1`` holds those others that the contract
        judges valid, from a second pass over just them that also sends the invalid ones
        to the DLQ; a batch without such records (the usual case) commits it empty, so the
        Python contract never runs and the batch is read once."""
        started = time.perf_counter()
        if self.settings.tasks:
            batch = batch.coalesce(self.settings.tasks)
        certain_id = self.bronze_base + 2 * batch_id
        judged_id = certain_id + 1
        latest = self.bronze_sink.fileLog().getLatestBatchId()  # a Scala Option
        committed = latest.get() if latest.isDefined() else -1
        if committed >= judged_id:
            # Bronze has all of this batch from before a restart; its dead letters may not
            # have been sent: send them all again (same keys), and count nothing twice.
            log.info("batch %d: already in Bronze; sending its dead letters again", batch_id)
            self._send_dead_letters(judge(self._unsure(batch), self.bounds))
            return
        if committed == certain_id:
            log.info("batch %d: its certain records are in Bronze; judging the rest", batch_id)
            self._commit_judged(self._unsure(batch), judged_id)
            return
        prepared = prepare(batch, self.bounds).observe(OBSERVATION, *_observed())
        certain = prepared.where(sf.col("_fast")).select(*_bronze_columns())._jdf
        self.bronze_sink.addBatch(certain_id, certain)
        committed_at = time.time()
        stats = _observation(certain, OBSERVATION)
        stream_metrics.record_batch(stats, committed_at)
        certain_s = time.perf_counter() - started
        unsure = stats.pop("unsure")
        judged = self._commit_judged(
            self._unsure(_only(batch, unsure)) if unsure else None, judged_id
        )
        log.info(
            "batch %d: %d certain rows to Bronze in %.2fs; %d judged: %d to Bronze, "
            "%d dead letters; %.2fs in all",
            batch_id,
            stats["rows"],
            certain_s,
            unsure.count(",") + 1 if unsure else 0,
            judged.get("rows", 0),
            sum(judged.get(kind.value, 0) for kind in ErrorType),
            time.perf_counter() - started,
        )

    def _unsure(self, batch: DataFrame) -> DataFrame:
        """:func:`prepare`'s rows of the records the fast path does not accept."""
        return prepare(batch, self.bounds).where(~sf.col("_fast"))

    def _commit_judged(self, unsure: DataFrame | None, judged_id: int) -> dict[str, Any]:
        """Bronze commit ``judged_id``: the valid ones of these records the fast path did
        not accept (empty for None); then their dead letters and metrics. Returns the
        :func:`stream_metrics.batch_observation` of them."""
        if unsure is None:
            # Nothing to judge: an empty commit keeps the log's batch ids consecutive.
            gateway: Any = self.spark.sparkContext._gateway
            status = gateway.jvm.org.apache.spark.sql.execution.streaming.sinks.SinkFileStatus
            self.bronze_sink.fileLog().add(judged_id, gateway.new_array(status, 0))
            return {}
        judged = judge(
            unsure, self.bounds
        ).persist()  # small; read by the Bronze write and the DLQ write
        try:
            observed = judged.observe(JUDGED_OBSERVATION, *_judged_observed())
            bronze = to_bronze(observed)._jdf
            self.bronze_sink.addBatch(judged_id, bronze)
            committed_at = time.time()
            stats = _observation(bronze, JUDGED_OBSERVATION)
            self._send_dead_letters(judged)
        finally:
            judged.unpersist()
        stream_metrics.record_batch(stats, committed_at)
        return stats

    def _send_dead_letters(self, classified: DataFrame) -> None:
        (
            to_dead_letters(classified, self.settings.dlq_max_value_bytes)
            .write.format("kafka")
            .options(**kafka_options(self.kafka))
            .option("topic", self.kafka.dlq_topic)
            .option("kafka.compression.type", "lz4")
            .save()
        )

    def start_ingest(self) -> StreamingQuery:
        """Start ``bronze``, the ingest query (see the module doc)."""
        self.bronze_base = sink_base(self.spark, self.checkpoint(BRONZE_QUERY), self.bronze_sink)
        query = (
            self._writer(read_events(self.spark, self.settings, self.kafka), BRONZE_QUERY)
            .foreachBatch(self.ingest)
            .start()
        )
        self.queries.append(query)
        return query

    def start_dlq_lake(self) -> StreamingQuery:
        """Start ``dlq_lake``: the dead-letter topic as Parquet under the lake."""
        letters = (
            self.spark.readStream.format("kafka")
            .options(**kafka_options(self.kafka), **READ_COMMITTED)
            .option("subscribe", self.kafka.dlq_topic)
            .option("startingOffsets", "earliest")
            .option("includeHeaders", "true")
            .option("failOnDataLoss", str(self.settings.fail_on_data_loss).lower())
            .load()
        )
        return self._sink_query(
            dead_letter_rows(letters), "dlq_lake", self.lake.dlq, list(DLQ_PARTITIONS)
        )

    def start_summary(self) -> StreamingQuery:
        """Start ``summary``: it reads the files that ``bronze`` has committed."""
        bronze = self.spark.readStream.schema(BRONZE).parquet(self.lake.bronze)
        summary = minute_summary(bronze, self.settings.watermark_minutes)
        return self._sink_query(summary, "summary", self.lake.path(*SUMMARY_TABLE), ["minute_date"])

    def _followers(self) -> list[Callable[[], StreamingQuery]]:
        """The queries that read what the ingest query wrote."""
        followers: list[Callable[[], StreamingQuery]] = []
        if self.settings.dlq_to_lake:
            followers.append(self.start_dlq_lake)
        if self.settings.summary:
            followers.append(self.start_summary)
        return followers

    def run(self) -> None:
        """Run until stopped or (``available_now``) drained; raise if a query fails."""
        if not self.lake.root.startswith(("s3a://", "s3://", "hdfs://")):
            # The summary's file source wants Bronze's folder to exist from the start.
            Path(self.lake.bronze).mkdir(parents=True, exist_ok=True)
        try:
            ingest = self.start_ingest()
            if self.settings.available_now:
                ingest.awaitTermination()
                for start in self._followers():  # drained: now follow what it wrote
                    start().awaitTermination()
                return
            for start in self._followers():
                start()
            log.info("running %s", ", ".join(f"{q.name} ({q.id})" for q in self.queries))
            self.spark.streams.resetTerminated()
            self.spark.streams.awaitAnyTermination()  # one stopped or failed: the job ends
        finally:
            self.stop()

    def stop(self) -> None:
        self.stopping = True
        for query in self.queries:
            if query.isActive:
                query.stop()


def run(settings: BronzeSettings, spark: SparkSession | None = None) -> int:
    """Run the job with its metrics; 0 when it stopped cleanly, 1 when a query failed."""
    from iotpipe.spark import session

    spark = spark or session("bronze-stream", master=settings.master)
    listener = stream_metrics.install(spark, settings.metrics_port)
    job = BronzeStream(spark, settings)
    signal.signal(signal.SIGTERM, lambda signum, _frame: job.stop())
    try:
        job.run()
    except Exception as exc:
        if job.stopping:  # a batch interrupted by the stop we were asked for
            log.info(
                "stopped during a micro-batch (%s); the restart replays it", type(exc).__name__
            )
            return 0
        log.error("streaming query failed: %s", exc)
        return 1
    finally:
        spark.streams.removeListener(listener)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    settings = from_environment(BronzeSettings, lambda: CliApp.run(BronzeSettings, cli_args=args))
    for environment in (KafkaSettings, LakeSettings, ContractSettings):
        from_environment(environment)  # what BronzeStream reads: a bad one exits before Spark
    configure_logging(settings.log_level, json=False, service=JOB)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
