"""Silver -> Gold: per-sensor 5-minute windows, hourly rollups per location, daily
summaries per sensor type, for a time range.

Gold tables are partitioned by ``window_date``, so the job recomputes whole UTC
days: the days the time range touches, plus every earlier day (within
``MEDALLION_LATE_LOOKBACK_HOURS``) whose Silver was rewritten after its Gold (late
data). Each day is rebuilt from its Silver and written with dynamic partition
overwrite; a rerun replaces the same partitions with the same rows.

- ``sensor_windows_5m``: count, avg, min, max, stddev, p50/p95/p99
  (``percentile_approx``: the returned value is a reading of the window whose rank
  is within ``n / MEDALLION_PERCENTILE_ACCURACY`` of the exact rank), anomaly_count,
  expected_count (configured rate x window length), health_pct and alert_count
  (Silver's ``is_anomaly_alert``: one per incident, docs/anomaly.md).
- ``location_hourly`` (per location and sensor type) and ``sensor_type_daily``:
  rollups of those windows; expected readings = the rate of every sensor seen in
  the period x the period's length, so a sensor silent for whole windows lowers health.

Run: ``python -m spark_jobs.silver_to_gold --window 2026-11-26``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from iotpipe.lake import WINDOW_PARTITIONS, Lake
from iotpipe.windows import Window
from spark_jobs import schemas
from spark_jobs.medallion import (
    GOLD_WINDOW_SECONDS,
    MedallionSettings,
    Report,
    Step,
    conform,
    expected_count,
    health_pct,
    overwrite_partitions,
    push_metrics,
    read_table,
    run_cli,
    stale_partitions,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

PERCENTILES = (0.5, 0.95, 0.99)


def _lineage(frame: DataFrame, settings: MedallionSettings, start: str) -> DataFrame:
    from pyspark.sql import functions as sf

    return (
        frame.withColumn("processing_timestamp", sf.current_timestamp())
        .withColumn("pipeline_version", sf.lit(settings.pipeline_version))
        .withColumn("window_date", sf.to_date(start))
    )


def gold_windows(silver: DataFrame, settings: MedallionSettings) -> DataFrame:
    """One row per sensor per 5-minute window, plus ``value_sum`` for the rollups."""
    from pyspark.sql import functions as sf

    bucket = sf.window("timestamp", f"{GOLD_WINDOW_SECONDS} seconds")
    quantiles = sf.percentile_approx("value", list(PERCENTILES), settings.percentile_accuracy)
    alerts = (  # Silver read from the lake always has it; a hand-made frame may not
        sf.count_if("is_anomaly_alert")
        if "is_anomaly_alert" in silver.columns
        else sf.lit(None).cast("long")
    )
    frame = silver.groupBy("sensor_id", bucket.alias("bucket")).agg(
        sf.max("sensor_type").alias("sensor_type"),
        sf.max_by("location", "timestamp").alias("location"),
        sf.count("value").alias("reading_count"),
        sf.avg("value").alias("avg_value"),
        sf.min("value").alias("min_value"),
        sf.max("value").alias("max_value"),
        sf.stddev_samp("value").alias("stddev_value"),
        quantiles.alias("quantiles"),
        sf.count_if("is_anomaly").alias("anomaly_count"),
        alerts.alias("alert_count"),
        sf.sum("value").alias("value_sum"),
    )
    frame = (
        frame.withColumn("window_start", sf.col("bucket.start"))
        .withColumn("window_end", sf.col("bucket.end"))
        .withColumn("p50_value", sf.col("quantiles")[0])
        .withColumn("p95_value", sf.col("quantiles")[1])
        .withColumn("p99_value", sf.col("quantiles")[2])
        .withColumn(
            "expected_count",
            expected_count(
                settings, sf.col("sensor_type"), sf.col("window_start"), sf.col("window_end")
            ),
        )
        .withColumn("health_pct", health_pct(sf.col("reading_count"), sf.col("expected_count")))
    )
    return _lineage(frame, settings, "window_start")


def rollup(
    windows: DataFrame,
    settings: MedallionSettings,
    keys: Sequence[str],
    unit: str,
    schema: StructType,
) -> DataFrame:
    """Windows rolled up per ``keys`` (which include ``sensor_type``) per ``unit`` (hour/day)."""
    from pyspark.sql import functions as sf

    start: Column = sf.date_trunc(unit, "window_start")
    per_sensor = (
        windows.groupBy(*keys, start.alias("period_start"), "sensor_id")
        .agg(
            sf.sum("reading_count").alias("reading_count"),
            sf.sum("value_sum").alias("value_sum"),
            sf.min("min_value").alias("min_value"),
            sf.max("max_value").alias("max_value"),
            sf.sum("anomaly_count").alias("anomaly_count"),
        )
        .withColumn("period_end", sf.col("period_start") + sf.expr(f"INTERVAL 1 {unit}"))
    )
    per_sensor = per_sensor.withColumn(
        "expected_count",
        expected_count(
            settings, sf.col("sensor_type"), sf.col("period_start"), sf.col("period_end")
        ),
    )
    frame = per_sensor.groupBy(*keys, "period_start", "period_end").agg(
        sf.count("sensor_id").alias("sensor_count"),
        sf.sum("reading_count").alias("reading_count"),
        (sf.sum("value_sum") / sf.sum("reading_count")).alias("avg_value"),
        sf.min("min_value").alias("min_value"),
        sf.max("max_value").alias("max_value"),
        sf.sum("anomaly_count").alias("anomaly_count"),
        sf.sum("expected_count").alias("expected_count"),
    )
    frame = frame.withColumn(
        "health_pct", health_pct(sf.col("reading_count"), sf.col("expected_count"))
    )
    return conform(_lineage(frame, settings, "period_start"), schema)


def health_by_location(windows: DataFrame, settings: MedallionSettings) -> dict[str, float]:
    """Per location, the lowest sensor health over the newest hour of ``windows``.

    A sensor's health there is its readings in that hour over those it should have sent
    from the hour's start to the newest window end in the data (so an hour still in
    progress, or data that reaches Silver late, is not counted as missing). Every sensor
    of the run's data counts, so one silent for the whole hour has health 0.
    """
    from pyspark.sql import functions as sf

    hour = sf.date_trunc("hour", "window_start")
    bounds = windows.agg(sf.max(hour).alias("hour"), sf.max("window_end").alias("horizon")).first()
    if bounds is None or bounds["hour"] is None:
        return {}
    start = sf.lit(bounds["hour"]).cast("timestamp")
    end = sf.least(start + sf.expr("INTERVAL 1 HOUR"), sf.lit(bounds["horizon"]).cast("timestamp"))
    sensors = windows.groupBy("sensor_id").agg(
        sf.max("sensor_type").alias("sensor_type"),
        sf.max_by("location", "window_start").alias("location"),
    )
    received = (
        windows.where(hour == start)
        .groupBy("sensor_id")
        .agg(sf.sum("reading_count").alias("received"))
    )
    health = (
        sensors.join(received, "sensor_id", "left")
        .withColumn(
            "health_pct",
            health_pct(
                sf.coalesce(sf.col("received"), sf.lit(0)),
                expected_count(settings, sf.col("sensor_type"), start, end),
            ),
        )
        .groupBy("location")
        .agg(sf.min("health_pct").alias("health_pct"))
    )
    return {row["location"]: float(row["health_pct"]) for row in health.collect()}


def push_health(gateway: str | None, by_location: Mapping[str, float]) -> CollectorRegistry:
    """Push the lowest sensor health per location as ``gold_sensor_health_min_pct``.

    ``push`` (PUT) replaces the job's group, so a location the latest run did not see
    drops out instead of keeping an old value.
    """
    registry = CollectorRegistry()
    gauge = Gauge(
        "gold_sensor_health_min_pct",
        "Lowest sensor health (readings received / expected x 100) of the location over the "
        "newest hour the latest silver_to_gold run wrote",
        ["location"],
        registry=registry,
    )
    for location, pct in by_location.items():
        gauge.labels(location=location).set(pct)
    push_metrics(gateway, "silver_to_gold", registry)
    return registry


def run(
    spark: SparkSession,
    window: Window,
    settings: MedallionSettings,
    lake: Lake,
    step: Step = lambda _: None,
) -> Report:
    """Recompute the Gold days of ``window`` (and those whose Silver changed since)."""
    from pyspark.sql import functions as sf

    silver = read_table(spark, lake.silver, schemas.SILVER)
    days = {day.start.date() for day in window.days()}
    late: set[date] = set()
    if settings.late_lookback_hours:
        step("finding Silver days rewritten after their Gold")
        first = window.start.replace(hour=0, minute=0, second=0, microsecond=0)
        lookback = Window(first - timedelta(hours=settings.late_lookback_hours), first)
        lookback_days = sorted({day.start.date() for day in lookback.days()})
        late = {
            day
            for (day,) in stale_partitions(
                silver.where(sf.col("event_date").isin(lookback_days)).select(
                    sf.col("event_date").alias("window_date"),
                    sf.col("processing_timestamp").alias("changed_at"),
                ),
                read_table(spark, lake.gold_windows, schemas.GOLD_WINDOWS).where(
                    sf.col("window_date").isin(lookback_days)
                ),
                WINDOW_PARTITIONS,
                settings.late_margin_seconds,
            )
        }
    affected = sorted(days | late)
    step(f"aggregating Silver of {len(affected)} day(s)")
    windows = gold_windows(silver.where(sf.col("event_date").isin(affected)), settings).persist()
    totals = windows.agg(
        sf.count("*").alias("windows"),
        sf.coalesce(sf.sum("reading_count"), sf.lit(0)).alias("silver_rows"),
        sf.coalesce(sf.sum("anomaly_count"), sf.lit(0)).alias("anomalies"),
        sf.collect_set("window_date").alias("days"),
    ).first()
    assert totals is not None
    health = health_by_location(windows, settings)
    try:
        step("writing Gold 5-minute windows")
        overwrite_partitions(
            conform(windows, schemas.GOLD_WINDOWS), lake.gold_windows, WINDOW_PARTITIONS
        )
        for what, path, keys, unit, schema in (
            ("hourly location rollups", lake.gold_location_hourly, ("location", "sensor_type"), "hour", schemas.GOLD_LOCATION_HOURLY),
            ("daily sensor-type summaries", lake.gold_daily, ("sensor_type",), "day", schemas.GOLD_DAILY),
        ):  # fmt: skip
            step(f"writing Gold {what}")
            overwrite_partitions(
                rollup(windows, settings, keys, unit, schema), path, WINDOW_PARTITIONS
            )
    finally:
        windows.unpersist()
    push_health(settings.pushgateway_url, health)
    written = sorted(totals["days"])
    return Report(
        job="silver_to_gold",
        window=window,
        partitions=[f"window_date={day.isoformat()}" for day in written],
        late_partitions=[f"window_date={day.isoformat()}" for day in written if day in late],
        counts={name: int(totals[name]) for name in ("silver_rows", "windows", "anomalies")},
        health_min_pct=health,
    )


def main(argv: Sequence[str] | None = None) -> int:
    assert __doc__ is not None
    return run_cli(argv, name="silver_to_gold", help=__doc__, job=run)


if __name__ == "__main__":
    sys.exit(main())
