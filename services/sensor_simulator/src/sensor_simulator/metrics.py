"""The simulator's Prometheus metrics (namespace ``simulator_``, default registry).

The names are the issue's, namespaced so that they cannot collide with another
service's metrics in one process (the tests import every service).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NAMESPACE = "simulator"

EVENTS_PRODUCED = Counter(
    "events_produced",
    "Records acknowledged by Kafka (acks=all), by sensor type",
    ["sensor_type"],
    namespace=NAMESPACE,
)
ANOMALIES_INJECTED = Counter(
    "anomalies_injected", "Spikes injected, by sensor type", ["sensor_type"], namespace=NAMESPACE
)
MALFORMED_INJECTED = Counter(
    "malformed_injected", "Malformed records injected, by kind", ["kind"], namespace=NAMESPACE
)
LATE_INJECTED = Counter(
    "late_injected", "Records sent with an event time in the past", namespace=NAMESPACE
)
SENSOR_DROPOUTS = Counter(
    "sensor_dropouts", "Times a sensor was silenced (dropout injection)", namespace=NAMESPACE
)
DROPPED_READINGS = Counter(
    "dropped_readings", "Readings not sent because their sensor was silenced", namespace=NAMESPACE
)
PRODUCE_ERRORS = Counter(
    "produce_errors",
    "Records in a failed delivery attempt (retried up to SIMULATOR_DELIVERY_ATTEMPTS)",
    namespace=NAMESPACE,
)
EVENTS_FAILED = Counter(
    "events_failed", "Records given up on after every delivery attempt", namespace=NAMESPACE
)
EVENTS_ABORTED = Counter(
    "events_aborted",
    "Acknowledged records of transactions a run aborted (read by no consumer)",
    namespace=NAMESPACE,
)
ACK_LATENCY = Histogram(
    "send_to_ack_seconds",
    "Time from handing a batch to the producer to its acknowledgement (acks=all)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    namespace=NAMESPACE,
)
TARGET_RATE = Gauge(
    "target_rate_events_per_second",
    "Sum of the target rates of the active paced runs",
    namespace=NAMESPACE,
)
ACTIVE_RUNS = Gauge("active_runs", "Runs producing now", namespace=NAMESPACE)
