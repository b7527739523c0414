"""Silver -> Gold on hand-built data with known answers, late data and reruns (real Spark)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from spark_jobs import bronze_to_silver, silver_to_gold
from spark_jobs.medallion import MedallionSettings

from iotpipe.contract import SensorType
from iotpipe.lake import Lake
from iotpipe.windows import Window

from ._medallion import T0, assert_percentile, reading, series, table_rows, write_bronze

pytestmark = pytest.mark.integration

HOUR = Window(T0, T0 + timedelta(hours=1))
SETTINGS = MedallionSettings(
    pipeline_version="test-gold", expected_rate_hz={SensorType.VIBRATION: 2.0}
)
WINDOWS = 12  # 5-minute windows in the hour
SPIKES_AT = 10  # minute of the window with 4 out-of-range vibration readings


def uniform(count: int, seed: int, low: float, high: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(count)]


def vibration() -> list[float]:
    values = uniform(7200, 3, 1.0, 1.5)
    for i in range(4):  # 10:10:00, 10:10:30, ...: above the contract's 10 g
        values[2 * (SPIKES_AT * 60 + 30 * i)] = 12.0
    return values


def bronze() -> list[dict[str, Any]]:
    full = series("full", uniform(3600, 1, 15.0, 25.0))
    # "lossy" sends at 1/s but 3 of every 10 readings never arrive: 70 % health.
    lossy = [
        row for i, row in enumerate(series("lossy", uniform(3600, 2, 15.0, 25.0))) if i % 10 >= 3
    ]
    vib = series(
        "vib", vibration(), step_s=0.5, sensor_type=SensorType.VIBRATION, location="site-b"
    )
    return full + lossy + vib


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("gold-lake")))
    write_bronze(spark, lake, bronze())
    bronze_to_silver.run(spark, HOUR, SETTINGS, lake)
    report = silver_to_gold.run(spark, HOUR, SETTINGS, lake)
    assert report.partitions == ["window_date=2026-11-20"]
    assert report.counts == {
        "silver_rows": 3600 + 2520 + 7200,
        "windows": 3 * WINDOWS,
        "anomalies": 4,
    }
    return lake


@pytest.fixture(scope="module")
def windows(lake: Lake, spark: Any) -> dict[tuple[str, datetime], Any]:
    rows = spark.read.parquet(lake.gold_windows).collect()
    return {(row.sensor_id, row.window_start.replace(tzinfo=UTC)): row for row in rows}


def window_values(sensor: str, start: datetime) -> np.ndarray:
    """numpy's view of one window: the Silver values of ``sensor`` in [start, start + 5 min)."""
    rows = {"full": series("full", uniform(3600, 1, 15.0, 25.0))}
    rows["lossy"] = [
        r for i, r in enumerate(series("lossy", uniform(3600, 2, 15.0, 25.0))) if i % 10 >= 3
    ]
    rows["vib"] = series("vib", vibration(), step_s=0.5)
    end = start + timedelta(minutes=5)
    return np.asarray([r["value"] for r in rows[sensor] if start <= r["timestamp"] < end])


def test_window_statistics_match_numpy(windows: dict[tuple[str, datetime], Any]) -> None:
    assert len(windows) == 3 * WINDOWS
    for (sensor, start), row in windows.items():
        x = window_values(sensor, start)
        assert row.window_end.replace(tzinfo=UTC) == start + timedelta(minutes=5)
        assert row.reading_count == len(x)
        assert row.avg_value == pytest.approx(x.mean(), rel=1e-12)
        assert (row.min_value, row.max_value) == (x.min(), x.max())
        assert row.stddev_value == pytest.approx(x.std(ddof=1), rel=1e-9)
        for p, value in ((0.5, row.p50_value), (0.95, row.p95_value), (0.99, row.p99_value)):
            assert_percentile(x, p, value, SETTINGS.percentile_accuracy)
        assert row.window_date.isoformat() == "2026-11-20"
        assert row.pipeline_version == "test-gold"


def test_health_from_the_configured_rate(windows: dict[tuple[str, datetime], Any]) -> None:
    for (sensor, _), row in windows.items():
        expected = {"full": (300, 100.0), "lossy": (300, 70.0), "vib": (600, 100.0)}[sensor]
        assert (row.expected_count, row.health_pct) == expected


def test_lowest_sensor_health_per_location_of_the_newest_hour(lake: Lake, spark: Any) -> None:
    gold = spark.read.parquet(lake.gold_windows)
    health = silver_to_gold.health_by_location(gold, SETTINGS)
    assert health == {"site-a": pytest.approx(70.0), "site-b": pytest.approx(100.0)}  # lossy


def test_a_sensor_silent_for_the_newest_hour_has_health_zero(spark: Any) -> None:
    def window(sensor: str, start: datetime, count: int) -> dict[str, Any]:
        end = start + timedelta(minutes=5)
        return {"sensor_id": sensor, "sensor_type": "temperature", "location": "site-c"} | {
            "window_start": start,
            "window_end": end,
            "reading_count": count,
        }

    rows = [window("s1", T0 + timedelta(minutes=m), 300) for m in range(0, 120, 5)]
    rows += [window("s2", T0 + timedelta(minutes=m), 300) for m in range(0, 60, 5)]  # then silent
    rows += [window("s3", T0 + timedelta(minutes=60 + m), 150) for m in range(0, 30, 5)]
    frame = spark.createDataFrame(rows)
    # the newest hour is 11:00-12:00, and s1's windows reach 12:00: s2 sent none of it
    assert silver_to_gold.health_by_location(frame, SETTINGS) == {"site-c": 0.0}
    # the data reaching only 11:30, readings after it are not yet due: s3 at half rate
    early = frame.where(f"sensor_id != 's2' AND window_end <= '{T0 + timedelta(minutes=90)}'")
    assert silver_to_gold.health_by_location(early, SETTINGS) == {"site-c": 50.0}
    assert silver_to_gold.health_by_location(frame.limit(0), SETTINGS) == {}


def test_anomaly_count_per_window(windows: dict[tuple[str, datetime], Any]) -> None:
    spiked = T0 + timedelta(minutes=SPIKES_AT)
    counts = {key: row.anomaly_count for key, row in windows.items() if row.anomaly_count}
    assert counts == {("vib", spiked): 4}


def test_hourly_rollup_per_location(lake: Lake, spark: Any) -> None:
    rows = {
        (r.location, r.sensor_type): r
        for r in spark.read.parquet(lake.gold_location_hourly).collect()
    }
    assert set(rows) == {("site-a", "temperature"), ("site-b", "vibration")}
    site_a = rows["site-a", "temperature"]
    assert site_a.period_start.replace(tzinfo=UTC) == T0
    assert (site_a.sensor_count, site_a.reading_count, site_a.expected_count) == (2, 6120, 7200)
    assert site_a.health_pct == pytest.approx(85.0)
    values = np.concatenate(
        [
            window_values(s, T0 + timedelta(minutes=m))
            for s in ("full", "lossy")
            for m in range(0, 60, 5)
        ]
    )
    assert site_a.avg_value == pytest.approx(values.mean(), rel=1e-12)
    assert (site_a.min_value, site_a.max_value) == (values.min(), values.max())
    site_b = rows["site-b", "vibration"]
    assert (site_b.reading_count, site_b.anomaly_count, site_b.health_pct) == (7200, 4, 100.0)


def test_daily_summary_per_sensor_type(lake: Lake, spark: Any) -> None:
    rows = {r.sensor_type: r for r in spark.read.parquet(lake.gold_daily).collect()}
    temperature, vib = rows["temperature"], rows["vibration"]
    assert (temperature.sensor_count, temperature.reading_count) == (2, 6120)
    assert temperature.expected_count == 2 * 86400
    assert temperature.health_pct == pytest.approx(6120 / (2 * 86400) * 100)
    assert (vib.sensor_count, vib.reading_count, vib.expected_count) == (1, 7200, 2 * 86400)
    assert (vib.max_value, vib.anomaly_count) == (12.0, 4)


def test_rerun_gives_the_same_rows(lake: Lake, spark: Any) -> None:
    tables = (lake.gold_windows, lake.gold_location_hourly, lake.gold_daily)
    before = [table_rows(spark, path) for path in tables]
    silver_to_gold.run(spark, HOUR, SETTINGS, lake)
    assert [table_rows(spark, path) for path in tables] == before


def test_late_event_is_merged_on_the_next_run(
    lake: Lake, spark: Any, windows: dict[tuple[str, datetime], Any]
) -> None:
    """An event for 10:07 arrives after hour 10 was processed: the next runs pick it up."""
    late_at = T0 + timedelta(minutes=7, seconds=30, milliseconds=500)
    window = T0 + timedelta(minutes=5)
    before = windows["full", window]
    write_bronze(spark, lake, [reading("full", late_at, 30.0, ingest_time=datetime.now(UTC))])

    next_hour = Window(HOUR.end, HOUR.end + timedelta(hours=1))
    silver = bronze_to_silver.run(spark, next_hour, SETTINGS, lake)
    assert silver.late_partitions == ["event_date=2026-11-20/event_hour=10"]
    assert silver.counts["silver_rows"] == 3600 + 2520 + 7200 + 1
    next_day = Window.parse("2026-11-21")
    gold = silver_to_gold.run(spark, next_day, SETTINGS, lake)
    assert gold.late_partitions == ["window_date=2026-11-20"]

    after = {
        (r.sensor_id, r.window_start.replace(tzinfo=UTC)): r
        for r in spark.read.parquet(lake.gold_windows).collect()
    }
    changed = {
        key
        for key in after
        if after[key].asDict()
        != windows[key].asDict() | {"processing_timestamp": after[key].processing_timestamp}
    }
    assert changed == {("full", window)}
    row = after["full", window]
    assert (row.reading_count, row.max_value, row.health_pct) == (301, 30.0, pytest.approx(301 / 3))
    assert row.avg_value == pytest.approx((before.avg_value * 300 + 30.0) / 301)
