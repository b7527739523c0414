"""Anomaly scoring in the real jobs (Spark, Parquet): known answers for the score and its
alerts, the learned detector trained and used, Gold's alert counts."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from spark_jobs import bronze_to_silver, silver_to_gold, train_detector
from spark_jobs.anomaly import suppress
from spark_jobs.detector import ModelStore
from spark_jobs.medallion import MedallionSettings

from iotpipe.lake import Lake
from iotpipe.windows import Window

from ._medallion import T0, series, write_bronze

pytestmark = pytest.mark.integration

HOUR = Window(T0, T0 + timedelta(hours=1))
READINGS = 400
NOISE = 0.5
SPIKE_AT = 200
INCIDENT = range(200, 215)
"""A sustained incident: for 15 readings the sensor runs away (8 sigmas, x1.5 per reading)."""
SETTINGS = MedallionSettings(late_lookback_hours=0, detector_trees=20, detector_max_samples=256)


def values(seed: int) -> np.ndarray:
    return 20.0 + NOISE * np.random.default_rng(seed).standard_normal(READINGS)


@pytest.fixture(scope="module")
def silver(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, pd.DataFrame]:
    """Three sensors through bronze_to_silver (no model yet): clean, one spike, an incident."""
    lake = Lake(str(tmp_path_factory.mktemp("anomaly") / "lake"))
    spike, incident = values(2), values(3)
    spike[SPIKE_AT] += 15 * NOISE
    incident[list(INCIDENT)] += 8 * NOISE * 1.5 ** np.arange(len(INCIDENT))
    rows = series("clean", list(values(1)))
    rows += series("spike", list(spike)) + series("incident", list(incident))
    write_bronze(spark, lake, rows)
    report = bronze_to_silver.run(spark, HOUR, SETTINGS, lake)
    assert report.counts["silver_rows"] == 3 * READINGS
    return lake, _silver(spark, lake)


def _silver(spark: Any, lake: Lake) -> pd.DataFrame:
    frame = spark.read.parquet(lake.silver).orderBy("sensor_id", "timestamp").toPandas()
    frame["i"] = frame.groupby("sensor_id").cumcount()
    return frame


def alerts(frame: pd.DataFrame, sensor: str) -> list[int]:
    return frame[(frame.sensor_id == sensor) & frame.is_anomaly_alert.astype(bool)].i.tolist()


def test_a_clean_series_raises_no_alert(silver: tuple[Lake, pd.DataFrame]) -> None:
    assert alerts(silver[1], "clean") == []


def test_a_single_spike_raises_exactly_one_alert(silver: tuple[Lake, pd.DataFrame]) -> None:
    assert alerts(silver[1], "spike") == [SPIKE_AT]


def test_a_sustained_incident_raises_one_alert_not_one_per_reading(
    silver: tuple[Lake, pd.DataFrame],
) -> None:
    frame = silver[1]
    assert alerts(frame, "incident") == [INCIDENT.start]
    threshold = SETTINGS.anomaly_default_threshold
    incident = frame[frame.sensor_id == "incident"]
    above = incident[incident.anomaly_score >= threshold].i.tolist()
    assert above == list(INCIDENT)  # above the threshold for every reading of the incident
    assert incident.is_zscore_anomaly.sum() > 1  # the reference rule: one flag per reading


def test_score_is_the_two_sided_normal_tail_over_the_recent_history(
    silver: tuple[Lake, pd.DataFrame],
) -> None:
    frame = silver[1]
    history, minimum = SETTINGS.anomaly_default_history, SETTINGS.anomaly_min_history
    for sensor, group in frame.groupby("sensor_id"):
        x = group.value.to_numpy()
        for i in range(len(x)):
            past = x[max(0, i - history) : i]
            got = group.anomaly_score.iloc[i]
            if len(past) < minimum:
                assert pd.isna(got), (sensor, i)
                continue
            z = abs(x[i] - past.mean()) / past.std(ddof=1)
            assert got == pytest.approx(1 - math.erfc(z / math.sqrt(2)), abs=1e-6), (sensor, i)
    assert frame.anomaly_score.between(0, 1).all() or frame.anomaly_score.isna().any()


def test_spark_alerts_follow_the_same_rule_as_numpy(silver: tuple[Lake, pd.DataFrame]) -> None:
    frame = silver[1]
    above = frame.anomaly_score.fillna(0).to_numpy() >= SETTINGS.anomaly_default_threshold
    sensor = frame.sensor_id.astype("category").cat.codes.to_numpy()
    expected = suppress(above, sensor, SETTINGS.anomaly_cooldown)
    assert (frame.is_anomaly_alert.astype(bool).to_numpy() == expected).all()


def test_without_a_model_the_ml_columns_are_null(silver: tuple[Lake, pd.DataFrame]) -> None:
    frame = silver[1]
    assert frame.ml_anomaly_score.isna().all()
    assert frame.ml_model_version.isna().all()


def test_detector_is_trained_versioned_and_used_by_silver(
    spark: Any, silver: tuple[Lake, pd.DataFrame], tmp_path: Path
) -> None:
    lake, _ = silver
    first = train_detector.run(spark, HOUR, SETTINGS, lake)
    store = ModelStore(lake.models)
    model = store.latest("temperature")
    assert model is not None
    assert first.partitions == [f"_models/temperature/{model.version}"]
    assert model.info.training_rows == first.counts["temperature rows"] > 3 * 300
    blob = store.blob("temperature", model.version)

    again = train_detector.run(spark, HOUR, SETTINGS, lake)  # retraining: same window
    assert again.partitions == first.partitions
    assert store.blob("temperature", model.version) == blob

    bronze_to_silver.run(spark, HOUR, SETTINGS, lake)
    frame = _silver(spark, lake)
    scored = frame.dropna(subset=["ml_anomaly_score"])
    assert set(frame.ml_model_version) == {model.version}
    assert len(scored) > 3 * 300
    assert scored.ml_anomaly_score.between(0, 1).all()
    spike = scored[scored.sensor_id == "spike"]
    assert spike.loc[spike.ml_anomaly_score.idxmax(), "i"] == SPIKE_AT
    assert alerts(frame, "spike") == [SPIKE_AT]  # the score's alerts are unchanged


def test_gold_counts_alerts_per_sensor_and_window(
    spark: Any, silver: tuple[Lake, pd.DataFrame]
) -> None:
    lake, frame = silver
    silver_to_gold.run(spark, HOUR, SETTINGS, lake)
    gold = spark.read.parquet(lake.gold_windows).toPandas()
    counted = gold.groupby("sensor_id").alert_count.sum().to_dict()
    assert counted == {"clean": 0, "spike": 1, "incident": 1}
    window = gold[(gold.sensor_id == "spike") & (gold.alert_count == 1)].window_start.iloc[0]
    spike_time = frame[(frame.sensor_id == "spike") & (frame.i == SPIKE_AT)].timestamp.iloc[0]
    assert window <= spike_time < window + timedelta(minutes=5)
