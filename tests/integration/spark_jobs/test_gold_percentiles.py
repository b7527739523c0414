"""percentile_approx against numpy at the stated accuracy (rank error ≤ n / accuracy)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from spark_jobs.medallion import MedallionSettings
from spark_jobs.silver_to_gold import gold_windows

from ._medallion import T0, assert_percentile

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("accuracy", [50, 10_000])
def test_percentiles_within_stated_accuracy(spark: Any, accuracy: int) -> None:
    rng = np.random.default_rng(11)
    x = rng.lognormal(mean=3.0, sigma=0.8, size=6000)  # skewed: a long upper tail
    rows = [
        ("s", "temperature", "site", T0 + timedelta(milliseconds=50 * i), float(v), False)
        for i, v in enumerate(x)
    ]
    silver = spark.createDataFrame(
        rows,
        "sensor_id string, sensor_type string, location string, timestamp timestamp, "
        "value double, is_anomaly boolean",
    )
    settings = MedallionSettings(percentile_accuracy=accuracy)
    (row,) = gold_windows(silver, settings).collect()
    assert row.reading_count == len(x)
    for p, value in ((0.5, row.p50_value), (0.95, row.p95_value), (0.99, row.p99_value)):
        assert_percentile(x, p, value, accuracy)
