"""Anomaly detection quality over 1,000,000 simulated readings, against the simulator's
ground truth: (a) the reference rule |z| > 3 over the previous 100 readings
(``is_zscore_anomaly``), (b) ``anomaly_score`` with suppression (``is_anomaly_alert``),
(c) the learned detector (``ml_anomaly_score`` at its model's threshold, same suppression).

Data: the sensor simulator's own generator (``sensor_simulator.generator.Generator``, the
code the service runs) with 100 sensors at 1 Hz each for 10,000 s: spikes on 0.1 % of
readings (the anomalies), every sensor's level drifting (an AR(1) wander of 3 noise sigmas
with a 1,000-reading time constant) and 5 % of the sensors silent for 60 s every 10 minutes
(dropouts). The labels are the event ids the generator injected as anomalies (what the
run's ground-truth JSONL lists). The records go straight to Bronze Parquet (Kafka ->
Bronze is not what this measures); Silver is written by the real ``bronze_to_silver`` job
(Spark local[2]), the detector is trained by the real ``train_detector`` job on the first
hour, and Silver is recomputed with it.

Scoring (incident level, the same matching for all three):
- an incident is a run of injected readings of one sensor no more than ``COOLDOWN``
  readings apart (with single spikes: one reading);
- an alert is a flagged reading (the reference rule: every flagged reading; (b) and (c):
  the suppressed alerts); it is a true positive if it falls inside an incident;
- precision = true-positive alerts / alerts; recall = incidents with an alert / incidents.

value = best F1 of (b) and (c); ratio = best F1 / the reference rule's F1.
Target: F1 >= 0.8 and ratio >= 3.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from spark_jobs.detector import ModelStore

from bench.harness import Result

READINGS = int(os.environ.get("ANOMALY_BENCH_READINGS", "1000000"))
SENSORS = 100
RATE_HZ = 1.0
"""Readings per second per sensor."""
SENSOR_TYPES = ["temperature", "humidity", "pressure", "vibration"]
START = datetime(2026, 11, 20, tzinfo=UTC)
SEED = 14
INJECTIONS: dict[str, Any] = {
    "anomaly_rate": 0.001,
    "drift_sigma": 3.0,
    "drift_readings": 1000,
    "dropout_fraction": 0.05,
    "dropout_seconds": 60,
    "dropout_interval_seconds": 600,
}
TRAINING = timedelta(hours=1)
"""The detector is trained on the run's first hour of Silver."""
BLOCK = 100_000
ROOT = Path(os.environ.get("ANOMALY_BENCH_DIR", "/tmp/iotpipe-bench-anomaly"))
TARGET_F1 = 0.8
TARGET_RATIO = 3.0


def generate(bronze: Path) -> tuple[set[str], dict[str, int]]:
    """Write the run's readings to Bronze Parquet; return the injected anomalies' event ids."""
    import orjson
    import pyarrow.parquet as pq
    from sensor_simulator.config import RunConfig
    from sensor_simulator.generator import ANOMALY, Generator

    start_ms = int(START.timestamp() * 1000)
    config = RunConfig(sensors=SENSORS, seed=SEED, rate=None, **INJECTIONS)

    def event_time() -> float:  # dropouts follow event time, not the (faster) wall clock
        return START.timestamp() + generator.slot / (SENSORS * RATE_HZ)

    generator = Generator(config, now_ms=start_ms, clock=event_time)
    generator.set_rate(SENSORS * RATE_HZ, start_ms)
    injected: set[str] = set()
    produced = dropped = 0
    while produced < READINGS:
        block = generator.block(BLOCK, limit=READINGS - produced, now_ms=start_ms)
        events = [orjson.loads(value) for value in block.values]
        injected.update(str(t["event_id"]) for t in block.truth if t["kind"] == ANOMALY)
        produced += len(events)
        dropped += block.dropped
        table = _bronze_table(events, produced - len(events))
        pq.write_to_dataset(
            table,
            str(bronze),
            partition_cols=["event_date", "event_hour"],
            basename_template=f"part-{produced:09d}-{{i}}.parquet",
        )
    return injected, {"readings": produced, "dropped_by_dropouts": dropped}


def _bronze_table(events: list[dict[str, Any]], first_offset: int) -> Any:
    import pyarrow as pa

    stamps = pa.array([e["timestamp"] for e in events]).cast(pa.timestamp("ms", tz="UTC"))
    columns: dict[str, Any] = {
        name: pa.array([e[name] for e in events])
        for name in ("event_id", "sensor_id", "sensor_type", "unit", "location")
    }
    columns["timestamp"] = stamps
    columns["value"] = pa.array([float(e["value"]) for e in events], pa.float64())
    columns["schema_version"] = pa.array([e["schema_version"] for e in events], pa.int64())
    columns["kafka_topic"] = pa.array(["sensor-events"] * len(events))
    columns["kafka_partition"] = pa.array([0] * len(events), pa.int32())
    columns["kafka_offset"] = pa.array(range(first_offset, first_offset + len(events)), pa.int64())
    columns["kafka_timestamp"] = stamps
    columns["ingest_time"] = stamps
    moments = stamps.to_pylist()
    columns["event_date"] = pa.array([m.date() for m in moments])
    columns["event_hour"] = pa.array([m.hour for m in moments], pa.int32())
    return pa.table(columns)


@dataclass
class Score:
    alerts: int
    true_alerts: int
    incidents: int
    detected: int

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 0.0

    @property
    def recall(self) -> float:
        return self.detected / self.incidents if self.incidents else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def record(self) -> dict[str, float]:
        return {
            "alerts": self.alerts,
            "true_alerts": self.true_alerts,
            "incidents": self.incidents,
            "detected": self.detected,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


def incidents(label: np.ndarray, sensor: np.ndarray, gap: int) -> np.ndarray:
    """Incident number per reading (-1 outside incidents), rows sorted by (sensor, time):
    injected readings of a sensor at most ``gap`` readings apart form one incident, which
    spans its first to its last injected reading."""
    index = np.flatnonzero(label)
    out = np.full(len(label), -1)
    if not len(index):
        return out
    new = np.r_[True, (np.diff(index) > gap) | (sensor[index[1:]] != sensor[index[:-1]])]
    starts, lasts = index[new], index[np.r_[new[1:], True]]
    for number, (first, last) in enumerate(zip(starts.tolist(), lasts.tolist(), strict=True)):
        out[first : last + 1] = number
    return out


def score(alert: np.ndarray, incident: np.ndarray) -> Score:
    inside = incident >= 0
    total = int(incident.max()) + 1 if inside.any() else 0
    return Score(
        alerts=int(alert.sum()),
        true_alerts=int((alert & inside).sum()),
        incidents=total,
        detected=len(np.unique(incident[alert & inside])),
    )


def evaluate(silver: Path, models: ModelStore, injected: set[str], cooldown: int) -> dict[str, Any]:
    import pyarrow.dataset as ds
    from spark_jobs.anomaly import suppress

    frame = (
        ds.dataset(str(silver), format="parquet", partitioning="hive")
        .to_table(
            columns=[
                "sensor_id",
                "timestamp",
                "event_id",
                "is_zscore_anomaly",
                "anomaly_score",
                "is_anomaly_alert",
                "ml_anomaly_score",
                "ml_model_version",
            ]
        )
        .to_pandas()
        .sort_values(["sensor_id", "timestamp"], kind="stable")
        .reset_index(drop=True)
    )
    sensor = frame["sensor_id"].astype("category").cat.codes.to_numpy()
    label = frame["event_id"].isin(injected).to_numpy()
    incident = incidents(label, sensor, cooldown)
    ml = frame["ml_anomaly_score"].to_numpy(dtype=float)
    versions = sorted(set(frame["ml_model_version"].dropna()))
    thresholds = {d.version: d.info.threshold for d in models.detectors(SENSOR_TYPES).values()}
    threshold = np.array([thresholds.get(v, np.inf) for v in frame["ml_model_version"]])
    ml_alert = suppress(np.nan_to_num(ml, nan=-1.0) >= threshold, sensor, cooldown)
    detectors = {
        "reference_zscore": frame["is_zscore_anomaly"].to_numpy(dtype=bool),
        "score_suppressed": frame["is_anomaly_alert"].fillna(False).to_numpy(dtype=bool),
        "learned_detector": ml_alert,
    }
    per_reading = {
        name: {
            "flagged_share": round(float(alert.mean()), 5),
            "reading_precision": round(float((alert & label).sum() / max(alert.sum(), 1)), 4),
            "reading_recall": round(float((alert & label).sum() / max(label.sum(), 1)), 4),
        }
        for name, alert in detectors.items()
    }
    return {
        "rows": len(frame),
        "injected_readings": int(label.sum()),
        "scores": {name: score(alert, incident) for name, alert in detectors.items()},
        "per_reading": per_reading,
        "ml_scored_rows": int(np.isfinite(ml).sum()),
        "model_versions": versions,
    }


def run() -> Result:
    from rich.console import Console
    from spark_jobs import bronze_to_silver, train_detector
    from spark_jobs.detector import ModelStore
    from spark_jobs.medallion import MedallionSettings

    from iotpipe.lake import Lake
    from iotpipe.spark import session
    from iotpipe.windows import Window

    console = Console()
    shutil.rmtree(ROOT, ignore_errors=True)
    lake = Lake(str(ROOT / "lake"))
    timings: dict[str, float] = {}

    def timed(name: str, what: Any) -> Any:
        began = time.perf_counter()
        with console.status(name):
            out = what()
        timings[name] = round(time.perf_counter() - began, 1)
        console.print(f"{name}: {timings[name]} s")
        return out

    injected, generated = timed("generate", lambda: generate(Path(lake.bronze)))
    end = START + timedelta(seconds=READINGS / SENSORS / RATE_HZ + 60)
    window = Window(START, end.replace(minute=0, second=0) + timedelta(hours=1))
    settings = MedallionSettings(default_rate_hz=RATE_HZ, late_lookback_hours=0)
    spark = timed("start Spark", lambda: session("iotpipe-bench-anomaly", master="local[2]"))
    timed("silver", lambda: bronze_to_silver.run(spark, window, settings, lake))
    trained = timed(
        "train",
        lambda: train_detector.run(spark, Window(START, START + TRAINING), settings, lake),
    )
    silver = timed("silver+model", lambda: bronze_to_silver.run(spark, window, settings, lake))
    result = timed(
        "evaluate",
        lambda: evaluate(
            Path(lake.silver), ModelStore(lake.models), injected, settings.anomaly_cooldown
        ),
    )
    scores: dict[str, Score] = result.pop("scores")
    for name, s in scores.items():
        console.print(f"{name}: {s.record()}")
    reference = scores["reference_zscore"].f1
    best_name = max(("score_suppressed", "learned_detector"), key=lambda n: scores[n].f1)
    best = scores[best_name].f1
    ratio = best / reference if reference else float("inf")
    return Result(
        name="anomaly",
        metric=f"best F1 ({best_name})",
        value=round(best, 4),
        unit="F1",
        reference="reference rule |z| > 3 over the previous 100 readings",
        reference_value=round(reference, 4),
        target=f"F1 >= {TARGET_F1} and ratio >= {TARGET_RATIO:g}",
        met=best >= TARGET_F1 and ratio >= TARGET_RATIO,
        ratio=round(ratio, 3),
        extra={
            "best": best_name,
            **{name: s.record() for name, s in scores.items()},
            **result,
            **generated,
            "silver_counts": silver.counts | silver.anomalies,
            "trained": trained.counts,
            "sensors": SENSORS,
            "rate_hz_per_sensor": RATE_HZ,
            "injections": INJECTIONS,
            "seed": SEED,
            "bronze": "generator events written straight to Bronze Parquet (no Kafka)",
            "labels": "event ids the generator injected as anomalies (its ground truth)",
            "silver_job": "spark_jobs.bronze_to_silver, Spark local[2]",
            "training_window": f"first {TRAINING} of the run",
            "seconds": timings,
        },
    )
