"""The gate's Prometheus metrics (module-level, updated by :mod:`quality_gate.gate`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHECKS = Counter(
    "quality_checks_total", "Suite runs by layer and verdict (pass/fail)", ["layer", "result"]
)
EXPECTATIONS_FAILED = Counter(
    "quality_expectations_failed_total",
    "Failed expectations by layer and expectation name",
    ["layer", "expectation"],
)
PASS_RATE = Gauge(
    "quality_pass_ratio", "Share of expectations that passed in the layer's latest run", ["layer"]
)
LAST_RUN = Gauge(
    "quality_last_run_timestamp_seconds",
    "When the layer's latest run finished (Unix seconds)",
    ["layer"],
)
RUN_SECONDS = Histogram(
    "quality_run_duration_seconds",
    "Time to read a slice and validate it",
    ["layer", "engine"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
