"""The loader's Prometheus metrics (served at /metrics with the shared HTTP metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from warehouse_loader.history import LoadStatus

ROWS_LOADED = Counter(
    "loader_rows_loaded_total", "Fact rows inserted by successful loads", ["dialect"]
)
ROWS_DELETED = Counter(
    "loader_rows_deleted_total", "Fact rows replaced by successful loads", ["dialect"]
)
LOADS = Counter(
    "loader_loads_total",
    "Loads by outcome (succeeded, failed, refused, interrupted)",
    ["dialect", "status"],
)
LOAD_DURATION = Histogram(
    "loader_load_duration_seconds",
    "Wall time of loads that ran (succeeded or failed)",
    ["dialect"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
LAST_SUCCESS = Gauge(
    "loader_last_success_timestamp_seconds",
    "Unix time of the last successful load (0: none since start)",
    ["dialect"],
)
GATE_OVERRIDES = Counter(
    "loader_gate_overrides_total", "Loads that went ahead without a passing Gold gate", ["dialect"]
)


def initialise(dialect: str) -> None:
    """Create the dialect's series at 0 before its first load, so the dashboards show 0 rather
    than "no data" and ``rate()`` counts the first load (Prometheus' advice for labelled metrics).
    """
    for metric in (ROWS_LOADED, ROWS_DELETED, LOAD_DURATION, LAST_SUCCESS, GATE_OVERRIDES):
        metric.labels(dialect)
    for status in LoadStatus:
        if status is not LoadStatus.RUNNING:
            LOADS.labels(dialect, status.value)
