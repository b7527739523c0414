"""Anomaly scoring in Silver: trailing statistics, the continuous ``anomaly_score``, the
suppressed ``is_anomaly_alert`` and the learned detector's features.

Everything here is computed in the same per-sensor window pass as the reference z-score
(``is_zscore_anomaly``): one sort by (sensor_id, timestamp), running sums from which the
mean and spread of *any* number of previous readings follow by a lag, so a second history
length costs two lags, not a second pass.

- ``anomaly_score`` = 1 - the two-sided tail probability of the reading under a normal
  distribution with the mean and sample stddev of the sensor's previous ``history``
  readings (per sensor type): 0 at the mean, → 1 far out. Null with fewer than
  ``anomaly_min_history`` previous readings.
- ``is_anomaly_alert``: the score reached the sensor type's threshold and no reading among
  the sensor's previous ``anomaly_cooldown`` readings did: one alert per incident, not one
  per reading while it lasts.
- Features of the learned detector (see :mod:`spark_jobs.detector`): ``|z|`` over the score's
  history, ``|z|`` over the z-score's 100 readings and the first difference in units of the
  score's spread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from spark_jobs.medallion import MedallionSettings

FEATURES: Final = ("_f_abs_z", "_f_abs_z_long", "_f_abs_step")
"""The learned detector's inputs, in order (columns the Silver pass computes)."""
FEATURE_CAP: Final = 1e3
"""Features are capped here (a zero-spread history makes z infinite)."""


@dataclass(frozen=True)
class Trailing:
    """Statistics of each sensor's previous ``readings`` readings (the row itself excluded),
    named ``{prefix}_history``, ``{prefix}_mean`` and ``{prefix}_spread`` (sample stddev);
    ``by_type`` overrides ``readings`` per sensor type."""

    prefix: str
    readings: int
    by_type: Mapping[str, int] = field(default_factory=dict)


def with_trailing_stats(frame: DataFrame, *specs: Trailing) -> DataFrame:
    """Add the columns of every :class:`Trailing` spec in one window pass per sensor.

    Computed from running sums (one pass per sensor: Spark evaluates a growing frame
    incrementally) rather than a sliding ``rowsBetween(-readings, -1)`` frame, which Spark
    re-aggregates for every row (``readings`` times the work); every history length is the
    running sum minus its lag. Values are centred on the sensor's first reading first, so
    the running sums stay small and the differences accurate to far better than the 1e-6
    relative tolerance the tests hold the z-score to.
    """
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as sf

    ordered = SparkWindow.partitionBy("sensor_id").orderBy("timestamp")
    before = ordered.rowsBetween(SparkWindow.unboundedPreceding, -1)
    centred = frame.withColumn("_centre", sf.first("value").over(ordered)).withColumn(
        "_x", sf.col("value") - sf.col("_centre")
    )
    running = (
        centred.withColumn("_n", sf.row_number().over(ordered) - 1)
        .withColumn("_s1", sf.coalesce(sf.sum("_x").over(before), sf.lit(0.0)))
        .withColumn(
            "_s2", sf.coalesce(sf.sum(sf.col("_x") * sf.col("_x")).over(before), sf.lit(0.0))
        )
    )

    def over(readings: int) -> tuple[Column, Column, Column]:
        n = sf.least(sf.col("_n"), sf.lit(readings))
        s1 = sf.col("_s1") - sf.coalesce(sf.lag("_s1", readings).over(ordered), sf.lit(0.0))
        s2 = sf.col("_s2") - sf.coalesce(sf.lag("_s2", readings).over(ordered), sf.lit(0.0))
        return n, s1, s2

    for spec in specs:
        n, s1, s2 = over(spec.readings)
        for kind, readings in sorted(spec.by_type.items()):
            if readings != spec.readings:
                n_t, s1_t, s2_t = over(readings)
                is_kind = sf.col("sensor_type") == kind
                n = sf.when(is_kind, n_t).otherwise(n)
                s1 = sf.when(is_kind, s1_t).otherwise(s1)
                s2 = sf.when(is_kind, s2_t).otherwise(s2)
        variance = sf.try_divide(s2 - sf.try_divide(s1 * s1, n), n - 1)
        running = (
            running.withColumn(f"{spec.prefix}_history", n)
            .withColumn(
                f"{spec.prefix}_mean", sf.when(n > 0, sf.col("_centre") + sf.try_divide(s1, n))
            )
            .withColumn(
                f"{spec.prefix}_spread",
                sf.when(n > 1, sf.sqrt(sf.greatest(variance, sf.lit(0.0)))),
            )
        )
    return running.drop("_centre", "_x", "_n", "_s1", "_s2")


# ---------------------------------------------------------------- the score


ERFC_COEFFICIENTS: Final = (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
    0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277,
)  # fmt: skip
"""Chebyshev fit of erfc (W. H. Press et al., Numerical Recipes, §6.2): relative error
below 1.2e-7 for every x >= 0, so tail probabilities far out keep their digits."""


def erfc(x: Column) -> Column:
    """The complementary error function of ``x >= 0`` as a Spark expression."""
    from pyspark.sql import functions as sf

    t = 1.0 / (1.0 + 0.5 * x)
    poly: Column = sf.lit(ERFC_COEFFICIENTS[-1])
    for coefficient in reversed(ERFC_COEFFICIENTS[:-1]):
        poly = coefficient + t * poly
    return t * sf.exp(-x * x + poly)


def erfc_numpy(x: np.ndarray) -> np.ndarray:
    """:func:`erfc` in numpy (the same formula: for tests and the benchmark)."""
    t = 1.0 / (1.0 + 0.5 * x)
    poly = np.full_like(t, ERFC_COEFFICIENTS[-1])
    for coefficient in reversed(ERFC_COEFFICIENTS[:-1]):
        poly = coefficient + t * poly
    return np.asarray(t * np.exp(-x * x + poly))


def tail_score(deviation: Column, spread: Column) -> Column:
    """1 - P(|X - mean| >= |deviation|) for X normal with stddev ``spread``.

    A zero spread (a constant history) gives 1 for any other value and 0 for the same one.
    """
    from pyspark.sql import functions as sf

    z = sf.abs(deviation) / spread
    return (
        sf.when(spread > 0, 1.0 - erfc(z / math.sqrt(2.0)))
        .when(deviation != 0, sf.lit(1.0))
        .otherwise(sf.lit(0.0))
    )


def per_type(default: float, overrides: Mapping[str, float]) -> Column:
    """A per sensor type constant as a column (``default`` for types not overridden)."""
    from pyspark.sql import functions as sf

    value: Column = sf.lit(default)
    for kind, override in sorted(overrides.items()):
        value = sf.when(sf.col("sensor_type") == kind, sf.lit(override)).otherwise(value)
    return value


def statistics(settings: MedallionSettings) -> tuple[Trailing, Trailing]:
    """The reference z-score's history (``""``) and the anomaly score's (``"_a"``)."""
    return (
        Trailing("", settings.zscore_window),
        Trailing(
            "_a",
            settings.anomaly_default_history,
            {kind.value: n for kind, n in settings.anomaly_history.items()},
        ),
    )


def with_scores(frame: DataFrame, settings: MedallionSettings) -> DataFrame:
    """Add ``anomaly_score``, ``is_anomaly_alert`` and the detector's features to a frame
    that has :func:`statistics`' trailing columns (before any row is filtered out: the
    suppression looks at each sensor's previous readings)."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as sf

    ordered = SparkWindow.partitionBy("sensor_id").orderBy("timestamp")
    recent = ordered.rowsBetween(-settings.anomaly_cooldown, -1)
    enough = sf.col("_a_history") >= settings.anomaly_min_history
    deviation = sf.col("value") - sf.col("_a_mean")
    spread = sf.col("_a_spread")
    threshold = per_type(
        settings.anomaly_default_threshold,
        {kind.value: t for kind, t in settings.anomaly_threshold.items()},
    )

    def scaled(numerator: Column, denominator: Column) -> Column:
        return sf.least(
            sf.abs(numerator) / sf.when(denominator > 0, denominator).otherwise(1e-300),
            sf.lit(FEATURE_CAP),
        )

    return (
        frame.withColumn("anomaly_score", sf.when(enough, tail_score(deviation, spread)))
        .withColumn("_above", sf.coalesce(sf.col("anomaly_score") >= threshold, sf.lit(False)))
        .withColumn(
            "is_anomaly_alert",
            sf.col("_above")
            & (sf.coalesce(sf.max(sf.col("_above").cast("int")).over(recent), sf.lit(0)) == 0),
        )
        .withColumn(FEATURES[0], sf.when(enough, scaled(deviation, spread)))
        .withColumn(
            FEATURES[1],
            sf.when(
                sf.col("_history") >= settings.zscore_min_history,
                scaled(sf.col("value") - sf.col("_mean"), sf.col("_spread")),
            ),
        )
        .withColumn(
            FEATURES[2],
            sf.when(enough, scaled(sf.col("value") - sf.lag("value").over(ordered), spread)),
        )
    )


# ---------------------------------------------------------------- suppression in numpy


def suppress(above: np.ndarray, sensor: np.ndarray, cooldown: int) -> np.ndarray:
    """``is_anomaly_alert``'s rule for rows sorted by (sensor, time): an alert where
    ``above`` holds and none of the sensor's previous ``cooldown`` readings was above.

    The same rule as the Silver column, for detectors scored outside Spark (the learned
    detector in the benchmark); the tests hold the two to the same answers.
    """
    above = np.asarray(above, dtype=bool)
    n = len(above)
    index = np.arange(n)
    first = np.r_[True, sensor[1:] != sensor[:-1]] if n else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first, index, 0))
    # the index of the sensor's last reading above the threshold before each row
    last = np.where(above, index, -1)
    last_before = np.r_[-1, np.maximum.accumulate(last)[:-1]] if n else last
    recent = (last_before >= start) & (index - last_before <= cooldown)
    return above & ~recent
