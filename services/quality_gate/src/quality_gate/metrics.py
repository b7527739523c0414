"""The gate's Prometheus metrics (module-level, updated by :mod:`quality_gate.gate`)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from iotpipe.gate_client import Layer, Verdict

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


def initialise(engines: Iterable[str]) -> None:
    """Create every counter and histogram series the gate can have, at 0, before its first run.

    Label values are known in advance (layers, verdicts, each suite's expectation names, the
    engines), so a dashboard shows 0 instead of "no data" and ``rate()`` starts from 0 when the
    first run increments them (Prometheus' advice for labelled metrics). The gauges are left
    unset: a pass ratio or a last-run time of 0 would be a lie.
    """
    from quality_gate.suites import suite_names

    for layer in Layer:
        for verdict in (Verdict.PASS, Verdict.FAIL):
            CHECKS.labels(layer.value, verdict.value)
        for name in suite_names(layer):
            EXPECTATIONS_FAILED.labels(layer.value, name)
        for engine in engines:
            RUN_SECONDS.labels(layer.value, engine)
