"""Bronze -> Silver on hand-built Bronze with known answers (real Spark, real Parquet)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from spark_jobs import bronze_to_silver
from spark_jobs.medallion import MedallionSettings

from iotpipe.contract import SensorType
from iotpipe.lake import Lake
from iotpipe.windows import Window

from ._medallion import T0, reading, series, table_rows, write_bronze

pytestmark = pytest.mark.integration

WINDOW = Window(T0, T0 + timedelta(hours=1))
SPIKE = 15.0
"""Added to a reading of 20 ± 1 (noise std 0.58): a z-score of about 25."""


def noise(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [20.0 + rng.uniform(-1.0, 1.0) for _ in range(count)]


def spiked(count: int, seed: int, at: set[int]) -> list[float]:
    return [v + SPIKE if i in at else v for i, v in enumerate(noise(count, seed))]


# "spiky" starts 60 s before the window, so its first spike (10:00:05) is judged
# against 65 previous readings, 60 of them from the hour before (read as history).
SPIKY_START = T0 - timedelta(seconds=60)
SPIKY_AT = {65, 250, 400}
# "young": spikes with 5 and 29 previous readings (too little history) and with 30.
YOUNG_AT = {5, 29, 30}


def reference_flags(values: list[float], window: int = 100, minimum: int = 30) -> set[int]:
    """numpy: |x - mean| > 3 std over the previous ``window`` readings (itself excluded)."""
    x = np.asarray(values)
    flagged = set()
    for i in range(len(x)):
        history = x[max(0, i - window) : i]
        if len(history) >= minimum and abs(x[i] - history.mean()) > 3 * history.std(ddof=1):
            flagged.add(i)
    return flagged


def build_bronze() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Bronze rows (current schema) and rows of an older writer lacking some columns."""
    rows = series("clean", noise(400, 1))
    rows += series("clean", noise(5, 2), start=T0 + timedelta(hours=1))  # next hour: not in scope
    rows += series("spiky", spiked(460, 3, SPIKY_AT), start=SPIKY_START)
    rows += series("young", spiked(60, 4, YOUNG_AT))
    rows += series("hot", [20.0, 90.0, -50.0], start=T0 + timedelta(minutes=20))
    dup = series("dup", noise(50, 5), sensor_type=SensorType.HUMIDITY)
    # Re-sent later with other ids and values: duplicates on (sensor_id, timestamp).
    resent = [
        reading(
            "dup",
            row["timestamp"],
            row["value"] + 5,
            sensor_type=SensorType.HUMIDITY,
            ingest_time=row["ingest_time"] + timedelta(minutes=2),
        )
        for row in dup[10:20]
    ]
    rows += dup + resent + [dict(row) for row in dup[40:43]]  # and 3 exact copies
    at = T0 + timedelta(minutes=40)
    broken = [reading("nulls", at + timedelta(seconds=i), 20.0) for i in range(5)]
    broken[0]["value"] = None
    broken[1]["value"] = math.nan
    broken[2]["sensor_type"] = None
    broken[3]["sensor_id"] = None
    rows += broken  # the fifth one is fine
    legacy = series("legacy", [21.0, 22.0, 23.0], start=T0 + timedelta(minutes=30))
    return rows, legacy


BRONZE_IN_SCOPE = 400 + 400 + 60 + 3 + 50 + 10 + 3 + 5 + 3
NULL_ROWS = 4
DUPLICATES = 13
SILVER_ROWS = BRONZE_IN_SCOPE - NULL_ROWS - DUPLICATES


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("silver-lake")))
    rows, legacy = build_bronze()
    write_bronze(spark, lake, rows)
    old_writer = spark.createDataFrame(
        [
            (
                r["event_id"],
                r["sensor_id"],
                r["sensor_type"],
                r["timestamp"],
                r["value"],
                r["unit"],
                "sensor-events",
                0,
                r["kafka_offset"],
                r["ingest_time"],
                r["event_date"],
                r["event_hour"],
            )
            for r in legacy
        ],
        "event_id string, sensor_id string, sensor_type string, timestamp timestamp, value double, "
        "unit string, kafka_topic string, kafka_partition int, kafka_offset long, "
        "ingest_time timestamp, event_date date, event_hour int",
    )
    old_writer.write.mode("append").partitionBy("event_date", "event_hour").parquet(lake.bronze)
    return lake


@pytest.fixture(scope="module")
def first_run(lake: Lake, spark: Any) -> list[tuple[Any, ...]]:
    """The job run through its command line, as the SparkApplication runs it."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MEDALLION_PIPELINE_VERSION", "test-version")
    printed = io.StringIO()
    try:
        argv = ["--window", str(WINDOW), "--lake-root", lake.root, "--output", "json"]
        with contextlib.redirect_stdout(printed):
            assert bronze_to_silver.main(argv) == 0
    finally:
        mp.undo()
    rows = table_rows(spark, lake.silver)
    report = json.loads(printed.getvalue())  # the job's report, as --output json prints it
    assert (report["job"], report["window"]) == ("bronze_to_silver", str(WINDOW))
    assert report["counts"]["silver_rows"] == len(rows)
    assert report["partitions"] == sorted(
        p.relative_to(lake.silver).as_posix() for p in Path(lake.silver).glob("*/*")
    )
    return rows


@pytest.fixture(scope="module")
def silver(first_run: list[tuple[Any, ...]], lake: Lake, spark: Any) -> dict[str, list[Any]]:
    frame = spark.read.parquet(lake.silver).orderBy("sensor_id", "timestamp")
    by_sensor: dict[str, list[Any]] = {}
    for row in frame.collect():
        by_sensor.setdefault(row.sensor_id, []).append(row)
    return by_sensor


def test_only_the_window_hour_is_written(lake: Lake, first_run: list[Any]) -> None:
    partitions = sorted(
        p.relative_to(lake.silver).as_posix() for p in Path(lake.silver).glob("*/*")
    )
    assert partitions == ["event_date=2026-11-20/event_hour=10"]
    assert len(first_run) == SILVER_ROWS


def test_nulls_dropped_and_duplicates_removed_exactly(silver: dict[str, list[Any]]) -> None:
    assert len(silver["nulls"]) == 1
    assert None not in silver
    dup = silver["dup"]
    assert len(dup) == 50
    assert len({row.timestamp for row in dup}) == 50
    # The first to arrive is kept: the original values, not the re-sent ones.
    originals = noise(50, 5)
    assert [row.value for row in dup] == pytest.approx(originals)


def test_zscore_flags_exactly_the_injected_spikes(silver: dict[str, list[Any]]) -> None:
    assert not any(row.is_zscore_anomaly for row in silver["clean"])
    assert len(silver["clean"]) == 400
    spiky = silver["spiky"]
    assert len(spiky) == 400  # the 60 history readings of the hour before are not written
    flagged = {i + 60 for i, row in enumerate(spiky) if row.is_zscore_anomaly}
    assert flagged == SPIKY_AT == reference_flags(spiked(460, 3, SPIKY_AT))
    young = silver["young"]
    assert {i for i, row in enumerate(young) if row.is_zscore_anomaly} == {30}
    assert reference_flags(spiked(60, 4, YOUNG_AT)) == {30}
    assert [row.zscore is None for row in young[:31]] == [True] * 30 + [False]
    # z itself agrees with numpy for a reading with a full 100-reading history.
    x = np.asarray(spiked(460, 3, SPIKY_AT))
    history = x[150:250]
    assert spiky[190].zscore == pytest.approx((x[250] - history.mean()) / history.std(ddof=1))


def test_out_of_range_uses_the_contract_bounds(silver: dict[str, list[Any]]) -> None:
    hot = silver["hot"]
    assert [row.is_out_of_range for row in hot] == [False, True, True]
    assert [row.is_anomaly for row in hot] == [False, True, True]
    for rows in silver.values():
        for row in rows:
            assert row.is_anomaly == (row.is_out_of_range or row.is_zscore_anomaly)


def test_missing_columns_are_tolerated(silver: dict[str, list[Any]]) -> None:
    legacy = silver["legacy"]
    assert [row.value for row in legacy] == [21.0, 22.0, 23.0]
    assert {row.location for row in legacy} == {None}
    assert {row.schema_version for row in legacy} == {None}


def test_lineage(silver: dict[str, list[Any]], lake: Lake) -> None:
    rows = [row for rows in silver.values() for row in rows]
    assert {row.pipeline_version for row in rows} == {"test-version"}
    assert len({row.processing_timestamp for row in rows}) == 1
    bronze = Path(lake.bronze).resolve().as_uri()
    assert all(row.source_file.startswith(bronze) for row in rows)
    assert all(row.source_file.endswith(".parquet") for row in rows)


def test_rerun_gives_the_same_rows_and_exact_accounting(
    lake: Lake, spark: Any, first_run: list[tuple[Any, ...]]
) -> None:
    settings = MedallionSettings(pipeline_version="test-version")
    report = bronze_to_silver.run(spark, WINDOW, settings, lake)
    assert table_rows(spark, lake.silver) == first_run
    assert report.partitions == ["event_date=2026-11-20/event_hour=10"]
    assert report.late_partitions == []
    assert report.counts == {
        "bronze_rows": BRONZE_IN_SCOPE,
        "valid_rows": BRONZE_IN_SCOPE - NULL_ROWS,
        "silver_rows": SILVER_ROWS,
        "null_rows_dropped": NULL_ROWS,
        "duplicates_dropped": DUPLICATES,
        "out_of_range": 2,
        "zscore_anomalies": len(SPIKY_AT) + 1,
        "anomalies": len(SPIKY_AT) + 1 + 2,
    }
