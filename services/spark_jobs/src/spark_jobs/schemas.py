"""The lake's table schemas: the contract between the Spark jobs and their readers
(quality gate, warehouse loader). Event fields come from the event contract; this
module adds what each layer adds. New columns are appended as nullable.
"""

from __future__ import annotations

from pyspark.sql import types as t

from iotpipe.contract import SensorEvent

KAFKA_METADATA = t.StructType(
    [
        t.StructField("kafka_topic", t.StringType(), False),
        t.StructField("kafka_partition", t.IntegerType(), False),
        t.StructField("kafka_offset", t.LongType(), False),
        t.StructField("kafka_timestamp", t.TimestampType(), True),
        t.StructField("ingest_time", t.TimestampType(), False),
        # The DLQ inspector's replay job that sent the record (header dlq_replay_id), null
        # for a producer's record: the latest replay of a reading supersedes its other copies.
        t.StructField("replay_id", t.StringType(), True),
    ]
)

EVENT_PARTITION_COLUMNS = t.StructType(
    [
        t.StructField("event_date", t.DateType(), False),
        t.StructField("event_hour", t.IntegerType(), False),
    ]
)


def _event_fields() -> list[t.StructField]:
    """Contract fields with their lake types (``timestamp`` is a real timestamp here)."""
    types: dict[str, t.DataType] = {
        "timestamp": t.TimestampType(),
        "value": t.DoubleType(),
        "schema_version": t.LongType(),
    }
    return [
        t.StructField(name, types.get(name, t.StringType()), True)
        for name in SensorEvent.model_fields
    ]


BRONZE = t.StructType(_event_fields() + KAFKA_METADATA.fields + EVENT_PARTITION_COLUMNS.fields)
"""Bronze: every valid record as received, plus where it came from in Kafka."""

SILVER = t.StructType(
    [
        *BRONZE.fields,
        t.StructField("is_out_of_range", t.BooleanType(), False),
        t.StructField("is_zscore_anomaly", t.BooleanType(), False),
        t.StructField("is_anomaly", t.BooleanType(), False),
        t.StructField("source_file", t.StringType(), True),
        t.StructField("processing_timestamp", t.TimestampType(), False),
        t.StructField("pipeline_version", t.StringType(), False),
        t.StructField("zscore", t.DoubleType(), True),
        t.StructField("anomaly_score", t.DoubleType(), True),
        t.StructField("is_anomaly_alert", t.BooleanType(), True),
        t.StructField("ml_anomaly_score", t.DoubleType(), True),
        t.StructField("ml_model_version", t.StringType(), True),
    ]
)
"""Silver: cleaned, deduplicated on (sensor_id, timestamp), flagged, with lineage.

``zscore`` is the reading's z-score against the previous readings of its sensor
(null while the sensor has too little history or its history has no spread).
``anomaly_score`` (0..1, null with too little history), ``is_anomaly_alert`` (one per
incident), ``ml_anomaly_score`` and ``ml_model_version`` (the learned detector and the
model it used; null before a model exists): see docs/anomaly.md."""

GOLD_LINEAGE = t.StructType(
    [
        t.StructField("processing_timestamp", t.TimestampType(), False),
        t.StructField("pipeline_version", t.StringType(), False),
    ]
)
"""Which run of which pipeline version wrote a Gold row."""

GOLD_WINDOWS = t.StructType(
    [
        t.StructField("sensor_id", t.StringType(), False),
        t.StructField("sensor_type", t.StringType(), False),
        t.StructField("location", t.StringType(), True),
        t.StructField("window_start", t.TimestampType(), False),
        t.StructField("window_end", t.TimestampType(), False),
        t.StructField("reading_count", t.LongType(), False),
        t.StructField("avg_value", t.DoubleType(), True),
        t.StructField("min_value", t.DoubleType(), True),
        t.StructField("max_value", t.DoubleType(), True),
        t.StructField("stddev_value", t.DoubleType(), True),
        t.StructField("p50_value", t.DoubleType(), True),
        t.StructField("p95_value", t.DoubleType(), True),
        t.StructField("p99_value", t.DoubleType(), True),
        t.StructField("anomaly_count", t.LongType(), False),
        t.StructField("expected_count", t.LongType(), False),
        t.StructField("health_pct", t.DoubleType(), False),
        *GOLD_LINEAGE.fields,
        t.StructField("window_date", t.DateType(), False),
        t.StructField("alert_count", t.LongType(), True),
    ]
)
"""Gold: one row per sensor per 5-minute window (the warehouse's fact grain).
``alert_count``: Silver's ``is_anomaly_alert`` in the window (appended, nullable: Gold
written before it existed reads null)."""


def _rollup(*keys: t.StructField) -> t.StructType:
    """A Gold rollup of the 5-minute windows over a longer period, grouped by ``keys``."""
    return t.StructType(
        [
            *keys,
            t.StructField("period_start", t.TimestampType(), False),
            t.StructField("period_end", t.TimestampType(), False),
            t.StructField("sensor_count", t.LongType(), False),
            t.StructField("reading_count", t.LongType(), False),
            t.StructField("avg_value", t.DoubleType(), True),
            t.StructField("min_value", t.DoubleType(), True),
            t.StructField("max_value", t.DoubleType(), True),
            t.StructField("anomaly_count", t.LongType(), False),
            t.StructField("expected_count", t.LongType(), False),
            t.StructField("health_pct", t.DoubleType(), False),
            *GOLD_LINEAGE.fields,
            t.StructField("window_date", t.DateType(), False),
        ]
    )


GOLD_LOCATION_HOURLY = _rollup(
    t.StructField("location", t.StringType(), True),
    t.StructField("sensor_type", t.StringType(), False),
)
"""Gold: per location and sensor type per UTC hour (values of different types are not mixed)."""

GOLD_DAILY = _rollup(t.StructField("sensor_type", t.StringType(), False))
"""Gold: per sensor type per UTC day."""
