"""Bronze -> Silver: clean, deduplicate, flag and add lineage, for a time range.

The job recomputes whole event-hour partitions of Silver from Bronze:

1. the hours the time range touches, plus every earlier hour (within
   ``MEDALLION_LATE_LOOKBACK_HOURS``) that Bronze received rows for after Silver
   processed it: late data is re-merged by recomputing its partition;
2. Bronze rows of those hours, and of ``history`` hours before each of them so
   that the first readings of an hour have their previous readings for the z-score;
3. rows with a null key or value dropped; duplicates on (sensor_id, timestamp)
   removed, keeping the latest copy a DLQ replay sent (``replay_id``: a corrected
   re-replay supersedes), else the first to arrive (ingest time, Kafka partition/offset);
4. ``is_out_of_range`` (contract bounds), ``is_zscore_anomaly``, ``is_anomaly``,
   ``anomaly_score`` and ``is_anomaly_alert`` (:mod:`spark_jobs.anomaly`, in the same
   window pass), ``ml_anomaly_score`` from the newest learned model of each sensor type
   (:mod:`spark_jobs.detector`; null before the first training), lineage; written with
   dynamic partition overwrite, so a rerun replaces the same partitions with the same rows.

Run: ``python -m spark_jobs.bronze_to_silver --window 2026-11-26T10``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from iotpipe.contract import SensorType
from iotpipe.lake import EVENT_PARTITIONS, Lake
from iotpipe.windows import Window
from spark_jobs import anomaly, detector, schemas
from spark_jobs.medallion import (
    MedallionSettings,
    Report,
    Step,
    conform,
    hours_filter,
    out_of_range,
    overwrite_partitions,
    push_metrics,
    read_table,
    run_cli,
    stale_partitions,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Observation, SparkSession

log = logging.getLogger(__name__)

REQUIRED = ("sensor_id", "sensor_type", "timestamp", "value")
"""A Bronze row without one of these cannot become Silver."""

ARRIVAL_ORDER = ("ingest_time", "kafka_partition", "kafka_offset", "event_id", "source_file")
"""Among duplicates that no replay sent, the first in this order is kept (the first to
arrive)."""


def hour_start(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def partition_name(hour: datetime) -> str:
    return f"event_date={hour.date().isoformat()}/event_hour={hour.hour}"


def to_silver(
    bronze: DataFrame,
    settings: MedallionSettings,
    keep: Sequence[datetime] | None = None,
    observation: Observation | None = None,
    detectors: Mapping[str, detector.Detector] | None = None,
) -> DataFrame:
    """Silver rows from Bronze rows (with ``source_file``); only ``keep`` hours returned.

    Rows outside ``keep`` only serve as deduplication, z-score and anomaly-score history.
    With an ``observation`` the kept hours' ``bronze_rows``, ``valid_rows``,
    ``silver_rows`` and anomaly counts are recorded as the result is written. With
    ``detectors`` (per sensor type) the learned detector scores the kept rows.
    """
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as sf

    in_scope = hours_filter(keep) if keep is not None else sf.lit(True)
    frame = bronze.withColumn("_in_scope", in_scope)
    valid = sf.lit(True)
    for name in REQUIRED:
        valid = valid & sf.col(name).isNotNull()
    valid = valid & ~sf.isnan("value")
    frame = frame.withColumn("_valid", valid)

    by_sensor = SparkWindow.partitionBy("sensor_id")
    # An operator's replay (a dead letter fixed and sent again, maybe re-sent later with a
    # corrected patch) is the newest word on its reading: the latest replay wins; among
    # copies no replay sent, the first to arrive.
    # (ingest time, then the Kafka record's: two replays can reach Bronze in one batch; a
    # reading's copies share its key, hence its partition, where the offset orders them)
    replayed = sf.when(
        sf.col("replay_id").isNotNull(), sf.struct("ingest_time", "kafka_timestamp", "kafka_offset")
    )
    arrival = by_sensor.orderBy(
        "timestamp",
        replayed.desc_nulls_last(),
        *[sf.col(name).asc_nulls_last() for name in ARRIVAL_ORDER],
    )
    clean = (
        frame.where("_valid")
        .withColumn("_previous", sf.lag("timestamp").over(arrival))
        .withColumn(
            "_first",
            sf.col("_previous").isNull() | (sf.col("_previous") != sf.col("timestamp")),
        )
    )
    if observation is not None:
        clean = clean.observe(
            observation,
            sf.count_if("_in_scope").alias("valid_rows"),
            sf.count_if(sf.col("_in_scope") & sf.col("_first")).alias("silver_rows"),
        )
    deviation = sf.col("value") - sf.col("_mean")
    trailing = anomaly.with_trailing_stats(clean.where("_first"), *anomaly.statistics(settings))
    silver = (
        anomaly.with_scores(trailing, settings)
        .withColumn("_enough", sf.col("_history") >= settings.zscore_min_history)
        .where("_in_scope")
        .withColumn("is_out_of_range", out_of_range(sf.col("sensor_type"), sf.col("value")))
        .withColumn(
            "is_zscore_anomaly",
            sf.col("_enough") & (sf.abs(deviation) > settings.zscore_threshold * sf.col("_spread")),
        )
        .withColumn("is_anomaly", sf.col("is_out_of_range") | sf.col("is_zscore_anomaly"))
        .withColumn(
            "zscore",
            sf.when(sf.col("_enough") & (sf.col("_spread") > 0), deviation / sf.col("_spread")),
        )
        .withColumn("processing_timestamp", sf.current_timestamp())
        .withColumn("pipeline_version", sf.lit(settings.pipeline_version))
    )
    silver = detector.with_ml_scores(silver.sparkSession, silver, detectors or {})
    return conform(silver, schemas.SILVER)


def run(
    spark: SparkSession,
    window: Window,
    settings: MedallionSettings,
    lake: Lake,
    step: Step = lambda _: None,
) -> Report:
    """Recompute the Silver partitions of ``window`` (and those late data made stale)."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as sf

    bronze = read_table(spark, lake.bronze, schemas.BRONZE)
    hours = set(window.hours())
    late: set[datetime] = set()
    if settings.late_lookback_hours:
        step("finding Bronze hours that received late data")
        first = window.start.replace(minute=0, second=0, microsecond=0)
        lookback = Window(first - timedelta(hours=settings.late_lookback_hours), first)
        late = {
            hour_start(day, hour)
            for day, hour in stale_partitions(
                bronze.where(hours_filter(lookback.hours())).select(
                    *EVENT_PARTITIONS, sf.col("ingest_time").alias("changed_at")
                ),
                read_table(spark, lake.silver, schemas.SILVER).where(
                    hours_filter(lookback.hours())
                ),
                EVENT_PARTITIONS,
                settings.late_margin_seconds,
            )
        }
    affected = sorted(hours | late)
    needed = {
        hour - timedelta(hours=back)
        for hour in affected
        for back in range(int(settings.history / timedelta(hours=1)) + 1)
    }
    step(f"writing Silver for {len(affected)} hour partition(s)")
    observed = Observation("bronze_to_silver")
    source = bronze.where(hours_filter(needed)).withColumn("source_file", sf.input_file_name())
    source = source.observe(
        observed_input := Observation("bronze_input"),
        sf.count_if(hours_filter(affected)).alias("bronze_rows"),
    )
    detectors: dict[str, detector.Detector] = {}
    if settings.detector_enabled:
        detectors = detector.ModelStore(lake.models).detectors([t.value for t in SensorType])
    per_type = [
        sf.count_if(sf.col("sensor_type") == kind.value).alias(f"readings:{kind.value}")
        for kind in SensorType
    ] + [
        sf.count_if(sf.col("is_anomaly_alert") & (sf.col("sensor_type") == kind.value)).alias(
            f"alerts:{kind.value}"
        )
        for kind in SensorType
    ]
    silver = to_silver(source, settings, affected, observed, detectors).observe(
        written := Observation("silver_output"),
        sf.count_if("is_out_of_range").alias("out_of_range"),
        sf.count_if("is_zscore_anomaly").alias("zscore_anomalies"),
        sf.count_if("is_anomaly").alias("anomalies"),
        sf.count_if("is_anomaly_alert").alias("anomaly_alerts"),
        sf.count("ml_anomaly_score").alias("ml_scored"),
        *per_type,
        sf.collect_set(sf.struct(*EVENT_PARTITIONS)).alias("hours"),
    )
    overwrite_partitions(silver, lake.silver, EVENT_PARTITIONS)
    counts = {**observed_input.get, **observed.get, **written.get}
    written_hours = {hour_start(day, hour) for day, hour in counts.pop("hours")}
    by_type = {name: int(counts.pop(name)) for name in list(counts) if ":" in name}
    push_alert_counts(settings.pushgateway_url, by_type)
    anomalies = {name: int(counts.pop(name)) for name in ("anomaly_alerts", "ml_scored")}
    counts["null_rows_dropped"] = counts["bronze_rows"] - counts["valid_rows"]
    counts["duplicates_dropped"] = counts["valid_rows"] - counts["silver_rows"]
    return Report(
        job="bronze_to_silver",
        window=window,
        partitions=[partition_name(hour) for hour in sorted(written_hours)],
        late_partitions=[partition_name(hour) for hour in sorted(late & written_hours)],
        counts={name: int(value) for name, value in counts.items()},
        anomalies=anomalies,
    )


def push_alert_counts(gateway: str | None, by_type: Mapping[str, int]) -> CollectorRegistry:
    """Push the run's readings and alerts per sensor type (``readings:<type>``,
    ``alerts:<type>``) as ``silver_readings`` and ``silver_anomaly_alerts`` gauges.

    The gauges hold the counts of the hour partitions the latest run rewrote (an hourly
    run: the last hour); Gold's ``alert_count`` has them per sensor per 5-minute window.
    """
    registry = CollectorRegistry()
    gauges = {
        "readings": Gauge(
            "silver_readings",
            "Silver readings in the hours the latest bronze_to_silver run rewrote",
            ["sensor_type"],
            registry=registry,
        ),
        "alerts": Gauge(
            "silver_anomaly_alerts",
            "Anomaly alerts (is_anomaly_alert) in the hours the latest bronze_to_silver run "
            "rewrote",
            ["sensor_type"],
            registry=registry,
        ),
    }
    for name, count in by_type.items():
        what, kind = name.split(":", 1)
        gauges[what].labels(sensor_type=kind).set(count)
    push_metrics(gateway, "bronze_to_silver", registry)
    return registry


def main(argv: Sequence[str] | None = None) -> int:
    assert __doc__ is not None
    return run_cli(argv, name="bronze_to_silver", help=__doc__, job=run)


if __name__ == "__main__":
    sys.exit(main())
