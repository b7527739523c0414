"""The orchestrator's metrics, pushed to a Prometheus Pushgateway after every run.

A CronJob's pod lives for one run, so nothing scrapes it: each run pushes to the group
``job="orchestrator", kind=<daily|backfill|freshness>`` with POST (``pushadd``), which
replaces only the metrics this run sets. Hence ``orchestrator_last_success_timestamp_seconds``
is only pushed by a successful run and survives a failed one, and the counters hold the
latest run's counts per group. The alert rules use these names:

- ``orchestrator_runs_total{kind,result}``: runs (result = success | failure)
- ``orchestrator_last_success_timestamp_seconds{kind}``: end of the last successful run
- ``orchestrator_sla_miss_total``: freshness checks that found Bronze stale
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, pushadd_to_gateway

log = logging.getLogger(__name__)

JOB = "orchestrator"


def push_run(
    gateway: str | None, kind: str, *, success: bool, sla_misses: int = 0
) -> CollectorRegistry:
    """Record one run and push it to ``gateway`` (when set). Returns the registry pushed."""
    registry = CollectorRegistry()
    runs = Counter("orchestrator_runs", "Orchestrator runs", ["kind", "result"], registry=registry)
    runs.labels(kind=kind, result="success" if success else "failure").inc()
    if success:
        Gauge(
            "orchestrator_last_success_timestamp_seconds",
            "Unix time the last successful run ended",
            registry=registry,
        ).set(time.time())
    if kind == "freshness":
        Counter(
            "orchestrator_sla_miss", "Freshness checks that found Bronze stale", registry=registry
        ).inc(sla_misses)
    if gateway:
        try:
            pushadd_to_gateway(gateway, job=JOB, grouping_key={"kind": kind}, registry=registry)
        except OSError as exc:
            log.error("could not push metrics to %s: %s", gateway, exc)
    return registry
