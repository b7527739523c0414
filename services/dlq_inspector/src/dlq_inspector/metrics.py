"""The inspector's Prometheus metrics (the HTTP ones come from :mod:`iotpipe.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_SEEN = Counter(
    "dlq_messages_seen_total",
    "Dead letters the inspector has read from the DLQ topic (re-read from the start on restart)",
    ["error_type"],
)
UNREADABLE = Counter(
    "dlq_unreadable_records_total", "Records on the DLQ topic without valid dead-letter headers"
)
REPLAYS = Counter(
    "dlq_replays_total",
    "Messages handled by (non dry-run) replays, by result",
    ["result"],
)
REPLAY_DURATION = Histogram(
    "dlq_replay_duration_seconds",
    "Duration of a replay request or job",
    ["dry_run"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
OLDEST_UNRESOLVED_AGE = Gauge(
    "dlq_oldest_unresolved_age_seconds",
    "Age of the oldest dead letter not replayed yet (0 when there is none)",
)
UNRESOLVED = Gauge("dlq_unresolved_messages", "Dead letters not replayed yet")
