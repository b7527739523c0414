"""``bronze_stream``: Kafka ``sensor-events`` -> Bronze Parquet + the dead-letter topic.

Every record is classified once per query by :mod:`spark_jobs.classify` (the event
contract decides). Valid records land in Bronze, invalid ones in ``sensor-events-dlq``;
the split is a function of the record's bytes alone, so each input offset ends in
exactly one of the two.

The job runs up to four streaming queries, each with its own checkpoint under
``Lake.checkpoint("bronze_stream")``:

- ``bronze``: valid records -> Parquet (snappy) partitioned by event date/hour. Spark's
  file sink commits each micro-batch to ``_spark_metadata`` after its files are written,
  and readers of the folder only see committed files: exactly-once across crashes.
- ``dlq``: invalid records -> Kafka, keyed ``<topic>-<partition>-<offset>``, value the
  original bytes, the :mod:`iotpipe.dlq` headers. Kafka sinks are at-least-once: a batch
  interrupted by a crash is written again on restart, and the duplicates carry the same key.
- ``dlq_lake`` (``--dlq-to-lake``): the same dead letters as Parquet under ``Lake.dlq``.
- ``summary``: per sensor type per event-time minute (count, average) from Bronze's
  committed files, with a 10-minute watermark; a minute is written once the watermark
  passes its end, so late events within the watermark are included.

Run ``python -m spark_jobs.bronze_stream --help``. Kafka comes from ``KAFKA_*``, the lake
from ``LAKE_ROOT``, everything else from ``BRONZE_*`` or the command line.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pydantic import Field
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict
from pyspark.sql import functions as sf

from iotpipe import dlq
from iotpipe.contract import ErrorType
from iotpipe.lake import EVENT_PARTITIONS, Lake
from iotpipe.logging import configure_logging
from iotpipe.settings import KafkaSettings, LakeSettings
from spark_jobs import stream_metrics
from spark_jobs.classify import ERROR_DETAIL, ERROR_TYPE, classify
from spark_jobs.schemas import BRONZE, KAFKA_METADATA
from spark_jobs.stream_metrics import BRONZE_QUERY, DLQ_QUERY

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

log = logging.getLogger("spark_jobs.bronze_stream")

JOB: Final = "bronze_stream"
SUMMARY_TABLE: Final = ("streaming", "sensor_type_minute")
"""Where the per-minute summary lands, under the lake root."""


class BronzeSettings(BaseSettings):
    """Streaming Bronze ingestion: Kafka sensor-events -> Bronze Parquet + the DLQ topic.

    Options come from BRONZE_<OPTION> or the command line; Kafka from KAFKA_* (e.g.
    KAFKA_BOOTSTRAP_SERVERS, KAFKA_EVENTS_TOPIC, KAFKA_DLQ_TOPIC), the lake from LAKE_ROOT.
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
    trigger_seconds: float = Field(default=30.0, gt=0, description="Micro-batch interval.")
    available_now: bool = Field(
        default=False, description="Process what is in the topic now, then stop (backfills, tests)."
    )
    watermark_minutes: float = Field(default=10.0, gt=0, description="Summary's lateness bound.")
    summary: bool = Field(default=True, description="Run the per-minute summary query.")
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


def read_events(spark: SparkSession, settings: BronzeSettings, kafka: KafkaSettings) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .options(**kafka_options(kafka))
        .option("subscribe", kafka.events_topic)
        .option("startingOffsets", settings.starting_offsets)
        .option("failOnDataLoss", str(settings.fail_on_data_loss).lower())
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
    return reader.load()


def to_bronze(classified: DataFrame) -> DataFrame:
    """Valid records as :data:`spark_jobs.schemas.BRONZE` rows, with batch metrics observed."""
    event_time = sf.col("timestamp")
    columns = {
        "kafka_topic": sf.col("topic"),
        "kafka_partition": sf.col("partition"),
        "kafka_offset": sf.col("offset"),
        "kafka_timestamp": sf.col("timestamp_kafka"),
        "ingest_time": sf.current_timestamp(),
        "event_date": sf.to_date(event_time),
        "event_hour": sf.hour(event_time),
    }
    if set(columns) != set(KAFKA_METADATA.names) | set(EVENT_PARTITIONS):
        raise RuntimeError("schemas.BRONZE changed: map its new metadata columns here")
    rows = classified.where(sf.col(ERROR_TYPE).isNull()).select(
        *(
            columns.get(field.name, sf.col(field.name)).cast(field.dataType).alias(field.name)
            for field in BRONZE.fields
        )
    )
    return rows.observe(stream_metrics.BRONZE_OBSERVATION, *stream_metrics.bronze_observations())


def to_dead_letters(classified: DataFrame) -> DataFrame:
    """Invalid records in the :mod:`iotpipe.dlq` format: key, original value, headers."""
    text = {
        dlq.HEADER_ERROR_TYPE: sf.col(ERROR_TYPE),
        dlq.HEADER_ERROR_DETAIL: sf.col(ERROR_DETAIL),
        dlq.HEADER_SOURCE_TOPIC: sf.col("topic"),
        dlq.HEADER_SOURCE_PARTITION: sf.col("partition").cast("string"),
        dlq.HEADER_SOURCE_OFFSET: sf.col("offset").cast("string"),
        dlq.HEADER_SOURCE_TIMESTAMP_MS: sf.unix_millis(sf.col("timestamp_kafka")).cast("string"),
        dlq.HEADER_DEAD_LETTERED_AT_MS: sf.unix_millis(sf.current_timestamp()).cast("string"),
    }
    headers = sf.array(
        *(
            sf.struct(sf.lit(name).alias("key"), sf.encode(text[name], "UTF-8").alias("value"))
            for name in dlq.HEADERS
        )
    )
    key = sf.concat_ws("-", "topic", "partition", "offset")  # == iotpipe.dlq.source_key
    rows = classified.where(sf.col(ERROR_TYPE).isNotNull()).select(
        key.alias("key"),
        sf.col("value_bytes").alias("value"),
        headers.alias("headers"),
        sf.col(ERROR_TYPE).alias(ERROR_TYPE),
        sf.col(ERROR_DETAIL).alias(ERROR_DETAIL),
        sf.col("topic").alias("source_topic"),
        sf.col("partition").alias("source_partition"),
        sf.col("offset").alias("source_offset"),
        sf.col("timestamp_kafka").alias("source_timestamp"),
        sf.current_timestamp().alias("dead_lettered_at"),
        sf.to_date(sf.current_timestamp()).alias("dead_lettered_date"),
    )
    return rows.observe(
        stream_metrics.DLQ_OBSERVATION,
        *(sf.count_if(sf.col(ERROR_TYPE) == kind.value).alias(kind.value) for kind in ErrorType),
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


class BronzeStream:
    """The job's streaming queries, started together and stopped together."""

    def __init__(
        self,
        spark: SparkSession,
        settings: BronzeSettings,
        kafka: KafkaSettings | None = None,
        lake: Lake | None = None,
    ) -> None:
        self.spark = spark
        self.settings = settings
        self.kafka = kafka or KafkaSettings()
        self.lake = lake or Lake.from_settings(LakeSettings())
        self.queries: list[StreamingQuery] = []
        spark.conf.set("spark.sql.session.timeZone", "UTC")

    def _writer(self, frame: DataFrame, name: str) -> DataStreamWriter:
        trigger = (
            {"availableNow": True}
            if self.settings.available_now
            else {"processingTime": f"{self.settings.trigger_seconds} seconds"}
        )
        writer = (
            frame.writeStream.queryName(name)
            .option("checkpointLocation", f"{self.lake.checkpoint(JOB)}/{name}")
            .trigger(**trigger)
        )
        return writer

    def start_ingest(self) -> list[StreamingQuery]:
        """Start ``bronze``, ``dlq`` and (if configured) ``dlq_lake``."""
        classified = classify(read_events(self.spark, self.settings, self.kafka))
        started = [
            self._writer(to_bronze(classified), BRONZE_QUERY)
            .format("parquet")
            .option("compression", "snappy")
            .partitionBy(*EVENT_PARTITIONS)
            .start(self.lake.bronze)
        ]
        dead = to_dead_letters(classified)
        started.append(
            self._writer(dead.select("key", "value", "headers"), DLQ_QUERY)
            .format("kafka")
            .options(**kafka_options(self.kafka))
            .option("topic", self.kafka.dlq_topic)
            .option("kafka.compression.type", "lz4")
            .start()
        )
        if self.settings.dlq_to_lake:
            started.append(
                self._writer(dead.drop("headers"), "dlq_lake")
                .format("parquet")
                .option("compression", "snappy")
                .partitionBy("dead_lettered_date")
                .start(self.lake.dlq)
            )
        self.queries += started
        return started

    def start_summary(self) -> StreamingQuery:
        """Start ``summary``: it reads the files that ``bronze`` has committed."""
        bronze = self.spark.readStream.schema(BRONZE).parquet(self.lake.bronze)
        query = (
            self._writer(minute_summary(bronze, self.settings.watermark_minutes), "summary")
            .outputMode("append")
            .format("parquet")
            .partitionBy("minute_date")
            .start(self.lake.path(*SUMMARY_TABLE))
        )
        self.queries.append(query)
        return query

    def run(self) -> None:
        """Run until stopped or (``available_now``) drained; raise if a query fails."""
        if not self.lake.root.startswith(("s3a://", "s3://", "hdfs://")):
            # The summary's file source wants Bronze's folder to exist from the start.
            Path(self.lake.bronze).mkdir(parents=True, exist_ok=True)
        try:
            ingest = self.start_ingest()
            if self.settings.available_now:
                for query in ingest:
                    query.awaitTermination()
                if self.settings.summary:  # drained: now summarise what Bronze got
                    self.start_summary().awaitTermination()
                return
            if self.settings.summary:
                self.start_summary()
            log.info("running %s", ", ".join(f"{q.name} ({q.id})" for q in self.queries))
            self.spark.streams.resetTerminated()
            self.spark.streams.awaitAnyTermination()  # one stopped or failed: the job ends
        finally:
            self.stop()

    def stop(self) -> None:
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
        log.error("streaming query failed: %s", exc)
        return 1
    finally:
        spark.streams.removeListener(listener)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    settings = CliApp.run(BronzeSettings, cli_args=list(sys.argv[1:] if argv is None else argv))
    configure_logging(settings.log_level, json=False, service=JOB)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
