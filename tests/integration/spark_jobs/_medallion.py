"""Hand-built Bronze for the medallion job tests: rows with known answers, written
to a throwaway lake with Spark (as the streaming job would write them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from spark_jobs import schemas

from iotpipe.contract import SENSOR_TYPES, SensorType
from iotpipe.lake import EVENT_PARTITIONS, Lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
"""Start of the hand-built series (a past day, so every window is complete)."""

_offsets: dict[str, int] = {}


def reading(
    sensor_id: str,
    timestamp: datetime,
    value: float | None,
    *,
    sensor_type: SensorType | None = SensorType.TEMPERATURE,
    location: str = "site-a",
    ingest_time: datetime | None = None,
) -> dict[str, Any]:
    """One Bronze row; Kafka offsets increase per sensor in creation order."""
    offset = _offsets[sensor_id] = _offsets.get(sensor_id, -1) + 1
    return {
        "event_id": str(uuid.uuid4()),
        "sensor_id": sensor_id,
        "sensor_type": sensor_type.value if sensor_type else None,
        "timestamp": timestamp,
        "value": None if value is None else float(value),
        "unit": SENSOR_TYPES[sensor_type].unit if sensor_type else None,
        "location": location,
        "schema_version": 1,
        "kafka_topic": "sensor-events",
        "kafka_partition": 0,
        "kafka_offset": offset,
        "kafka_timestamp": timestamp,
        "ingest_time": ingest_time or timestamp + timedelta(seconds=1),
        "event_date": timestamp.date(),  # the streaming job partitions by event time
        "event_hour": timestamp.hour,
    }


def series(
    sensor_id: str, values: list[float], *, start: datetime = T0, step_s: float = 1.0, **kw: Any
) -> list[dict[str, Any]]:
    """A reading every ``step_s`` seconds from ``start``."""
    return [
        reading(sensor_id, start + timedelta(seconds=i * step_s), value, **kw)
        for i, value in enumerate(values)
    ]


def write_bronze(spark: SparkSession, lake: Lake, rows: list[dict[str, Any]]) -> None:
    """Append rows to Bronze, partitioned like the streaming job's output."""
    names = schemas.BRONZE.fieldNames()
    frame = spark.createDataFrame(
        [tuple(row.get(n) for n in names) for row in rows], schemas.BRONZE
    )
    frame.write.mode("append").partitionBy(*EVENT_PARTITIONS).parquet(lake.bronze)


def table_rows(spark: SparkSession, path: str) -> list[tuple[Any, ...]]:
    """Every row of a lake table, sorted, without the run's ``processing_timestamp``."""
    frame = spark.read.parquet(path).drop("processing_timestamp")
    return sorted((tuple(row) for row in frame.collect()), key=repr)


def assert_percentile(x: np.ndarray, p: float, value: float, accuracy: int) -> None:
    """The stated accuracy: ``value`` is a reading whose rank is within n/accuracy of p·n."""
    ordered = np.sort(x)
    n = len(ordered)
    slack = n / accuracy + 1  # + 1: numpy interpolates between two neighbouring ranks
    low = np.quantile(ordered, max(0.0, p - slack / n), method="lower")
    high = np.quantile(ordered, min(1.0, p + slack / n), method="higher")
    assert value in ordered
    assert low <= value <= high, (p, value, low, high, np.quantile(ordered, p))
