"""Synthetic Gold for tests, the benchmark and trying the loader without the Spark jobs.

:func:`write_gold` lays files out as the Spark job does: ``window_date=YYYY-MM-DD/``
folders of ``part-*.parquet`` files and a ``_SUCCESS`` marker.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from iotpipe.contract import SENSOR_TYPES
from iotpipe.lakefs import filesystem
from warehouse_loader.gold import GOLD_SCHEMA, partition_path

WINDOW = timedelta(minutes=5)
EXPECTED_PER_WINDOW = 300
"""Readings a sensor sends in 5 minutes at 1/s."""


def sample_gold(
    start: datetime, *, windows: int, sensors: int, seed: int = 7, version: str = "sample-1"
) -> pa.Table:
    """``windows`` consecutive 5-minute windows from ``start`` for ``sensors`` sensors.

    Built column by column (a million rows take a few seconds and little memory).
    Another ``seed`` gives other values for the same keys (a recomputed Gold).
    """
    rng = random.Random(seed)
    n = windows * sensors
    kinds = list(SENSOR_TYPES)
    sensor_kinds = [kinds[s % len(kinds)] for s in range(sensors)]
    sensor_of = [i % sensors for i in range(n)]
    starts = [start + (i // sensors) * WINDOW for i in range(n)]
    spans = [SENSOR_TYPES[sensor_kinds[s]] for s in sensor_of]
    lows, highs = [], []
    for spec in spans:
        a, b = (
            rng.uniform(spec.min_value, spec.max_value),
            rng.uniform(spec.min_value, spec.max_value),
        )
        lows.append(min(a, b))
        highs.append(max(a, b))
    counts = [rng.randint(250, EXPECTED_PER_WINDOW) for _ in range(n)]

    def between(share: float) -> list[float]:
        return [lo + (hi - lo) * share for lo, hi in zip(lows, highs, strict=True)]

    columns: dict[str, object] = {
        "sensor_id": [f"sensor-{s:05d}" for s in sensor_of],
        "sensor_type": [sensor_kinds[s].value for s in sensor_of],
        "location": [None if s % 11 == 10 else f"site-{s % 7}" for s in sensor_of],
        "window_start": starts,
        "window_end": [w + WINDOW for w in starts],
        "reading_count": counts,
        "avg_value": between(0.5),
        "min_value": lows,
        "max_value": highs,
        "stddev_value": [(hi - lo) / 4 for lo, hi in zip(lows, highs, strict=True)],
        "p50_value": between(0.5),
        "p95_value": between(0.95),
        "p99_value": between(0.99),
        "anomaly_count": [rng.randint(0, 3) for _ in range(n)],
        "expected_count": [EXPECTED_PER_WINDOW] * n,
        "health_pct": [c / EXPECTED_PER_WINDOW * 100 for c in counts],
        "processing_timestamp": [start + windows * WINDOW + timedelta(minutes=7)] * n,
        "pipeline_version": [version] * n,
        "window_date": [w.date() for w in starts],
        "alert_count": [rng.randint(0, 1) for _ in range(n)],
    }
    return pa.table(
        {f.name: pa.array(columns.pop(f.name), f.type) for f in GOLD_SCHEMA}, schema=GOLD_SCHEMA
    )


def write_gold(location: str, table: pa.Table) -> None:
    """Write Gold rows under ``location``, one ``window_date`` folder each, Spark-style."""
    fs, root = filesystem(location)
    for day in pc.unique(table["window_date"]).to_pylist():
        part = table.filter(pc.equal(table["window_date"], day)).drop_columns(["window_date"])
        folder = partition_path(root, day)
        fs.create_dir(folder, recursive=True)
        pq.write_table(
            part, f"{folder}/part-00000-{uuid.uuid4()}.c000.snappy.parquet", filesystem=fs
        )
        with fs.open_output_stream(f"{folder}/_SUCCESS"):
            pass


def replace_gold(location: str, table: pa.Table) -> None:
    """Overwrite the ``window_date`` partitions ``table`` covers (as a Gold rerun does)."""
    fs, root = filesystem(location)
    for day in pc.unique(table["window_date"]).to_pylist():
        fs.delete_dir_contents(partition_path(root, day), missing_dir_ok=True)
    write_gold(location, table)
