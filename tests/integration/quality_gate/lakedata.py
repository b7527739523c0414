"""Real lake data for the gate's tests: Parquet partitions laid out as the Spark jobs write them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from quality_gate.layers import LAYERS

from iotpipe.contract import SENSOR_TYPES, SensorType
from iotpipe.gate_client import Layer
from iotpipe.lake import Lake
from iotpipe.windows import Window

SENSORS = 8
"""Two sensors per sensor type."""
EVERY_S = 30
"""One reading per sensor every 30 s: 120 per sensor per hour, 960 rows per hour."""


def readings(window: Window, *, sensors: int = SENSORS, every_s: int = EVERY_S) -> pd.DataFrame:
    """Clean Silver rows (Bronze is a subset of the columns): every reading within bounds."""
    types = list(SensorType)
    rows = []
    steps = int((window.end - window.start).total_seconds()) // every_s
    ingested = datetime(2026, 11, 26, tzinfo=UTC)
    for step in range(steps):
        at = window.start + timedelta(seconds=step * every_s)
        for sensor in range(sensors):
            kind = types[sensor % len(types)]
            spec = SENSOR_TYPES[kind]
            middle = (spec.min_value + spec.max_value) / 2
            rows.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "sensor_id": f"sensor-{sensor:03d}",
                    "sensor_type": kind.value,
                    "timestamp": at,
                    "value": middle + (step % 7) - 3,
                    "unit": spec.unit,
                    "location": f"site-{sensor % 3}",
                    "schema_version": 1,
                    "kafka_topic": "sensor-events",
                    "kafka_partition": sensor % 3,
                    "kafka_offset": step * sensors + sensor,
                    "kafka_timestamp": at,
                    "ingest_time": ingested,
                    "event_date": at.date(),
                    "event_hour": at.hour,
                    "is_out_of_range": False,
                    "is_zscore_anomaly": False,
                    "is_anomaly": False,
                    "source_file": "part-0.parquet",
                    "processing_timestamp": ingested,
                    "pipeline_version": "test",
                    "zscore": 0.0,
                }
            )
    return pd.DataFrame(rows)


def windows(window: Window, *, sensors: int = SENSORS) -> pd.DataFrame:
    """Clean Gold rows: one per sensor per 5-minute window."""
    types = list(SensorType)
    rows = []
    at = window.start
    while at < window.end:
        for sensor in range(sensors):
            kind = types[sensor % len(types)]
            spec = SENSOR_TYPES[kind]
            middle = (spec.min_value + spec.max_value) / 2
            rows.append(
                {
                    "sensor_id": f"sensor-{sensor:03d}",
                    "sensor_type": kind.value,
                    "location": f"site-{sensor % 3}",
                    "window_start": at,
                    "window_end": at + timedelta(minutes=5),
                    "reading_count": 290,
                    "avg_value": middle,
                    "min_value": middle - 3,
                    "max_value": middle + 3,
                    "stddev_value": 1.5,
                    "p50_value": middle,
                    "p95_value": middle + 2,
                    "p99_value": middle + 3,
                    "anomaly_count": 1,
                    "expected_count": 300,
                    "health_pct": 290 / 300 * 100,
                    "processing_timestamp": datetime(2026, 11, 26, tzinfo=UTC),
                    "pipeline_version": "test",
                    "window_date": at.date(),
                }
            )
        at += timedelta(minutes=5)
    return pd.DataFrame(rows)


def write(lake: Lake, layer: Layer, frame: pd.DataFrame) -> None:
    """Write ``frame`` into the layer's table, replacing the partitions it touches."""
    spec = LAYERS[layer]
    columns = [name for name in spec.columns if name in frame.columns]
    table = pa.Table.from_pandas(frame[columns], preserve_index=False)
    pq.write_to_dataset(
        table,
        spec.location(lake),
        partition_cols=list(spec.partition_columns),
        existing_data_behavior="delete_matching",
    )
