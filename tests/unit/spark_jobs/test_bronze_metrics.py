"""Driver metrics of bronze_stream, fed from recorded StreamingQueryProgress documents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from spark_jobs import stream_metrics
from spark_jobs.stream_metrics import AGE_GRID, CommitLatency

from iotpipe.contract import ErrorType


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def progress(name: str, observed: dict, **changes: object) -> dict:
    document = {
        "id": "a6b1",
        "name": name,
        "timestamp": "2026-11-26T10:00:00.000Z",
        "batchId": 3,
        "batchDuration": 2000,
        "numInputRows": 100,
        "inputRowsPerSecond": 50.0,
        "processedRowsPerSecond": 40.0,
        "sources": [
            {
                "description": "KafkaV2[Subscribe[sensor-events]]",
                "startOffset": {"sensor-events": {"0": 0, "1": 0}},
                "endOffset": {"sensor-events": {"0": 60, "1": 40}},
                "latestOffset": {"sensor-events": {"0": 75, "1": 40}},
                "numInputRows": 100,
                "metrics": {"maxOffsetsBehindLatest": "15"},
            }
        ],
        "observedMetrics": observed,
    }
    document.update(changes)
    return document


NEWEST = datetime(2026, 11, 26, 9, 59, 59, tzinfo=UTC)  # 1 s before the batch starts


def bronze_batch(rows: int, ages: list[float]) -> dict:
    batch = {
        "rows": rows,
        "max_event_us": int(NEWEST.timestamp() * 1_000_000),
        "age_sum": sum(ages),
    }
    for bound in AGE_GRID:
        batch[stream_metrics._age_column(bound)] = sum(1 for age in ages if age <= bound)
    return {stream_metrics.BRONZE_OBSERVATION: batch}


def test_rates_duration_and_lag_per_query() -> None:
    stream_metrics.record(progress("bronze", {}))

    assert sample("bronze_stream_input_rows_per_second", query="bronze") == 50.0
    assert sample("bronze_stream_processed_rows_per_second", query="bronze") == 40.0
    assert sample("bronze_stream_batch_duration_seconds", query="bronze") == 2.0
    lag = "bronze_stream_offsets_behind_latest"
    assert sample(lag, query="bronze", topic="sensor-events", partition="0") == 15
    assert sample(lag, query="bronze", topic="sensor-events", partition="1") == 0


def test_dead_letters_are_counted_by_error_type_from_the_dlq_query_only() -> None:
    before = {
        kind: sample("bronze_stream_dead_letters_total", error_type=kind.value)
        for kind in ErrorType
    }
    counts = {kind.value: i + 1 for i, kind in enumerate(ErrorType)}

    stream_metrics.record(progress("dlq", {stream_metrics.DLQ_OBSERVATION: counts}))
    stream_metrics.record(progress("dlq_lake", {stream_metrics.DLQ_OBSERVATION: counts}))

    for kind in ErrorType:
        after = sample("bronze_stream_dead_letters_total", error_type=kind.value)
        assert after - before[kind] == counts[kind.value]


def test_freshness_and_commit_latency_from_the_bronze_batch() -> None:
    latency = "bronze_stream_commit_latency_seconds"
    before_count = sample(f"{latency}_count")
    before_le3 = sample(f"{latency}_bucket", le="3.0")
    before_sum = sample(f"{latency}_sum")
    ages = [0.2, 0.9, 1.1, 4.0]  # seconds old at batch start; the batch takes 2 s

    stream_metrics.record(progress("bronze", bronze_batch(4, ages)))

    # committed at 10:00:02, newest event 09:59:59 -> 3 s fresh
    assert sample("bronze_stream_event_freshness_seconds") == pytest.approx(3.0)
    assert sample("bronze_stream_max_event_time_seconds") == pytest.approx(NEWEST.timestamp())
    assert sample(f"{latency}_count") - before_count == 4
    assert sample(f"{latency}_sum") - before_sum == pytest.approx(sum(ages) + 4 * 2.0)
    # latency <= 3 s  <=>  age <= 1 s: 0.2 and 0.9
    assert sample(f"{latency}_bucket", le="3.0") - before_le3 == 2


def test_latency_buckets_are_lower_bounds_on_the_age_grid() -> None:
    histogram = CommitLatency(buckets=(1.0, 2.0, 5.0))
    grid = {0.5: 1, 1.0: 3, 2.0: 3, 4.0: 5}  # cumulative counts of rows by age

    histogram.add(5, age_sum=10.0, age_counts=grid, duration=0.6)

    (family,) = histogram.collect()
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    # le=1: age <= 0.4 -> no grid point -> 0; le=2: age <= 1.4 -> grid 1.0 -> 3;
    # le=5: age <= 4.4 -> grid 4.0 -> 5; +Inf: every row
    assert buckets == {"1.0": 0, "2.0": 3, "5.0": 5, "+Inf": 5}


def test_empty_batches_change_no_event_time_metric() -> None:
    stream_metrics.record(progress("bronze", bronze_batch(4, [1.0] * 4)))
    fresh = sample("bronze_stream_event_freshness_seconds")

    stream_metrics.record(
        progress("bronze", bronze_batch(0, []), numInputRows=0, timestamp="2026-11-26T11:00:00Z")
    )

    assert sample("bronze_stream_event_freshness_seconds") == fresh
