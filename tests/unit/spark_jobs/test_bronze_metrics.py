"""Driver metrics of bronze_stream, fed from recorded StreamingQueryProgress documents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from spark_jobs import stream_metrics
from spark_jobs.stream_metrics import CommitLatency

from iotpipe.contract import ErrorType


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def progress(name: str, **changes: object) -> dict:
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
    }
    document.update(changes)
    return document


COMMITTED_AT = datetime(2099, 11, 26, 10, 0, 2, tzinfo=UTC).timestamp()
"""When the test batches' Bronze files were committed: their events are later than any
event another test in this process records (the newest-event-time gauge never goes back)."""


def bronze_batch(latencies: list[float], dead: dict[str, int] | None = None) -> dict:
    """A batch_observation row for valid rows with these commit latencies (seconds)."""
    commit_us = int(COMMITTED_AT * 1_000_000)
    return {
        "rows": len(latencies),
        "event_us": ",".join(str(commit_us - round(x * 1_000_000)) for x in latencies),
        **{kind.value: 0 for kind in ErrorType},
        **(dead or {}),
    }


def test_rates_duration_and_lag_per_query() -> None:
    stream_metrics.record(progress("bronze"))

    assert sample("bronze_stream_input_rows_per_second", query="bronze") == 50.0
    assert sample("bronze_stream_processed_rows_per_second", query="bronze") == 40.0
    assert sample("bronze_stream_batch_duration_seconds", query="bronze") == 2.0
    lag = "bronze_stream_offsets_behind_latest"
    assert sample(lag, query="bronze", topic="sensor-events", partition="0") == 15
    assert sample(lag, query="bronze", topic="sensor-events", partition="1") == 0


def test_dead_letters_are_counted_by_error_type() -> None:
    before = {
        kind: sample("bronze_stream_dead_letters_total", error_type=kind.value)
        for kind in ErrorType
    }
    counts = {kind.value: i + 1 for i, kind in enumerate(ErrorType)}

    stream_metrics.record_batch(bronze_batch([], counts), COMMITTED_AT)

    for kind in ErrorType:
        after = sample("bronze_stream_dead_letters_total", error_type=kind.value)
        assert after - before[kind] == counts[kind.value]


def test_freshness_and_commit_latency_from_the_batch() -> None:
    latency = "bronze_stream_commit_latency_seconds"
    before_rows = sample("bronze_stream_bronze_rows_total")
    before_count = sample(f"{latency}_count")
    before_le3 = sample(f"{latency}_bucket", le="3.0")
    before_sum = sample(f"{latency}_sum")
    latencies = [3.0, 2.2, 4.0, 9.0]

    stream_metrics.record_batch(bronze_batch(latencies), COMMITTED_AT)

    assert sample("bronze_stream_bronze_rows_total") - before_rows == 4
    assert sample("bronze_stream_event_freshness_seconds") == pytest.approx(2.2)
    newest = COMMITTED_AT - 2.2
    assert sample("bronze_stream_max_event_time_seconds") == pytest.approx(newest)
    assert sample(f"{latency}_count") - before_count == 4
    assert sample(f"{latency}_sum") - before_sum == pytest.approx(sum(latencies))
    assert sample(f"{latency}_bucket", le="3.0") - before_le3 == 2


def test_histogram_buckets_are_the_counts_it_is_given() -> None:
    histogram = CommitLatency(buckets=(1.0, 2.0, 5.0))

    histogram.add(5, latency_sum=10.0, within={1.0: 0, 2.0: 3, 5.0: 4})
    histogram.add(1, latency_sum=0.5, within={1.0: 1, 2.0: 1, 5.0: 1})

    (family,) = histogram.collect()
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets == {"1.0": 1, "2.0": 4, "5.0": 5, "+Inf": 6}


def test_empty_batches_change_no_event_time_metric() -> None:
    stream_metrics.record_batch(bronze_batch([1.0] * 4), COMMITTED_AT)
    fresh = sample("bronze_stream_event_freshness_seconds")

    stream_metrics.record_batch(bronze_batch([]), COMMITTED_AT + 3600)

    assert sample("bronze_stream_event_freshness_seconds") == fresh
