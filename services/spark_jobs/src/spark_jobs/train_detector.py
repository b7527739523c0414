"""Train the learned anomaly detector on Silver history: one isolation forest per sensor
type, written under ``Lake.models`` with a version derived from the training window and
the model's content, and made the one ``bronze_to_silver`` scores with (``LATEST``).

The features (``|z|`` over the anomaly score's history, ``|z|`` over the z-score's
history, the first difference in units of the recent spread) are computed from Silver's
values by the same code as in the Silver job, with the hours before the window as
history. At most ``MEDALLION_DETECTOR_MAX_ROWS`` rows per type are used: those whose
hash of (sensor_id, timestamp) falls in the right fraction, in (sensor_id, timestamp)
order, so the same window always gives the same rows, model bytes and version.

Run: ``python -m spark_jobs.train_detector --window 2026-11-25`` (default: the previous
complete UTC hour; a day or more of history is what you want).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np

from iotpipe.contract import SensorType
from iotpipe.lake import Lake
from iotpipe.windows import Window
from spark_jobs import anomaly, detector, schemas
from spark_jobs.medallion import (
    MedallionSettings,
    Report,
    Step,
    hours_filter,
    read_table,
    run_cli,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def training_features(silver: DataFrame, window: Window, settings: MedallionSettings) -> DataFrame:
    """Per reading of ``window``: ``sensor_type``, ``sensor_id``, ``timestamp`` and the
    detector's features (rows without every feature dropped)."""
    from pyspark.sql import functions as sf

    trailing = anomaly.with_trailing_stats(silver, *anomaly.statistics(settings))
    scored = anomaly.with_scores(trailing, settings)
    in_window = (sf.col("timestamp") >= sf.lit(window.start)) & (
        sf.col("timestamp") < sf.lit(window.end)
    )
    complete = sf.lit(True)
    for name in anomaly.FEATURES:
        complete = complete & sf.col(name).isNotNull()
    return scored.where(in_window & complete).select(
        "sensor_type", "sensor_id", "timestamp", *anomaly.FEATURES
    )


def sample(features: DataFrame, kind: str, rows: int, limit: int) -> np.ndarray:
    """At most about ``limit`` of a type's ``rows`` rows, the same ones on every run."""
    from pyspark.sql import functions as sf

    keep = max(1, math.ceil(rows / limit))
    chosen = features.where(sf.col("sensor_type") == kind)
    if keep > 1:
        chosen = chosen.where(sf.pmod(sf.xxhash64("sensor_id", "timestamp"), sf.lit(keep)) == 0)
    ordered = chosen.orderBy("sensor_id", "timestamp").select(*anomaly.FEATURES)
    table = ordered.toArrow()
    return np.column_stack([table[name].to_numpy() for name in anomaly.FEATURES]).astype(float)


def run(
    spark: SparkSession,
    window: Window,
    settings: MedallionSettings,
    lake: Lake,
    step: Step = lambda _: None,
) -> Report:
    """Train and save one model per sensor type that has Silver rows in ``window``."""
    from pyspark.sql import functions as sf

    silver = read_table(spark, lake.silver, schemas.SILVER)
    first = window.start.replace(minute=0, second=0, microsecond=0)
    hours = set(Window(first - settings.history, window.end).hours())
    step("computing features of the training window")
    features = training_features(
        silver.where(hours_filter(hours)).select("sensor_id", "sensor_type", "timestamp", "value"),
        window,
        settings,
    ).persist()
    store = detector.ModelStore(lake.models)
    counts: dict[str, int] = {}
    written: list[str] = []
    try:
        per_type = {
            row["sensor_type"]: int(row["count"])
            for row in features.groupBy("sensor_type").agg(sf.count("*").alias("count")).collect()
        }
        for kind in sorted(per_type.keys() & {t.value for t in SensorType}):
            step(f"training the {kind} detector on {per_type[kind]:,} readings")
            rows = sample(features, kind, per_type[kind], settings.detector_max_rows)
            info = detector.ModelInfo(
                sensor_type=kind,
                window_start=window.start.isoformat(),
                window_end=window.end.isoformat(),
                features=list(anomaly.FEATURES),
                trees=settings.detector_trees,
                max_samples=settings.detector_max_samples,
                threshold=settings.detector_threshold,
                training_rows=len(rows),
                sklearn_version=version("scikit-learn"),
            )
            model, blob = detector.fit(rows, info)
            written.append(store.save(model, blob))
            counts[f"{kind} rows"] = len(rows)
    finally:
        features.unpersist()
    return Report(
        job="train_detector",
        window=window,
        partitions=[path.removeprefix(lake.root + "/") for path in written],
        counts=counts,
    )


def main(argv: Sequence[str] | None = None) -> int:
    assert __doc__ is not None
    return run_cli(argv, name="train_detector", help=__doc__, job=run)


if __name__ == "__main__":
    sys.exit(main())
