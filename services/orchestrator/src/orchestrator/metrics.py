"""The orchestrator's metrics, pushed to a Prometheus Pushgateway.

A CronJob's pod lives for one run, so nothing scrapes it: each run pushes to the group
``job="orchestrator", kind=<daily|backfill|freshness>`` with POST (``pushadd``), which
replaces the metric families this push carries and keeps the others. A group holds its
values until the next push of that kind, so every metric is a **gauge of the latest run**
(a counter pushed fresh by each run would restart at 1 and never increase):

- ``orchestrator_last_run_timestamp_seconds{kind}``: when the latest run ended
- ``orchestrator_last_run_success{kind}``: 1 when it succeeded, 0 when it failed (for
  ``freshness``: 0 is an SLA miss, Bronze stale)
- ``orchestrator_last_success_timestamp_seconds{kind}``: when the last successful run
  ended; only a successful run pushes it, so a failed run leaves the previous value
- ``orchestrator_step_deadline_missed{kind="daily",step}``: 1 when that step of the latest
  daily run passed its deadline (pushed the moment it does, and again at the end of the run)
- ``orchestrator_reconcile_windows{kind="reconcile",outcome}``: windows of the latest
  reconcile that were ``checked``, ``changed`` (Gold rewritten since their load), ``reloaded``
  and ``refused`` (changed, but the gate failed or the loader refused: not reloaded)

Prometheus scrapes the Pushgateway with ``honor_labels: true``, so ``job`` and ``kind``
are the group's. The alert rules (observability/rules/iotpipe.rules.yaml) read exactly
these names; tests/observability/ checks that the promtool tests feed what is pushed here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

log = logging.getLogger(__name__)

JOB = "orchestrator"


def grouping_key(kind: str) -> dict[str, str]:
    return {"kind": kind}


def run_registry(
    kind: str,
    *,
    success: bool,
    steps_missed: Mapping[str, bool] | None = None,
    windows: Mapping[str, int] | None = None,
) -> CollectorRegistry:
    """The metrics one run of ``kind`` pushes when it ends."""
    registry = CollectorRegistry()
    now = time.time()
    Gauge(
        "orchestrator_last_run_timestamp_seconds",
        "Unix time the latest run of this kind ended",
        registry=registry,
    ).set(now)
    Gauge(
        "orchestrator_last_run_success",
        "1 when the latest run of this kind succeeded, 0 when it failed",
        registry=registry,
    ).set(1 if success else 0)
    if success:
        Gauge(
            "orchestrator_last_success_timestamp_seconds",
            "Unix time the last successful run of this kind ended",
            registry=registry,
        ).set(now)
    if steps_missed is not None:
        _steps_gauge(registry, steps_missed)
    if windows is not None:
        gauge = Gauge(
            "orchestrator_reconcile_windows",
            "Windows of the latest reconcile by outcome: checked, changed, reloaded, refused",
            ["outcome"],
            registry=registry,
        )
        for outcome, count in windows.items():
            gauge.labels(outcome=outcome).set(count)
    return registry


def steps_registry(steps_missed: Mapping[str, bool]) -> CollectorRegistry:
    """The step-deadline family alone: what a run pushes the moment a step is late."""
    registry = CollectorRegistry()
    _steps_gauge(registry, steps_missed)
    return registry


def _steps_gauge(registry: CollectorRegistry, steps_missed: Mapping[str, bool]) -> None:
    gauge = Gauge(
        "orchestrator_step_deadline_missed",
        "1 when this step of the latest run passed its deadline (even if it then succeeded)",
        ["step"],
        registry=registry,
    )
    for step, missed in steps_missed.items():
        gauge.labels(step=step).set(1 if missed else 0)


def push(gateway: str | None, kind: str, registry: CollectorRegistry) -> None:
    """``pushadd`` ``registry`` to the group of ``kind`` (when a gateway is set); a failed
    push is logged, never raised: it must not change the run's outcome."""
    if not gateway:
        return
    try:
        pushadd_to_gateway(gateway, job=JOB, grouping_key=grouping_key(kind), registry=registry)
    except OSError as exc:
        log.error("could not push metrics to %s: %s", gateway, exc)


def push_run(
    gateway: str | None,
    kind: str,
    *,
    success: bool,
    steps_missed: Mapping[str, bool] | None = None,
    windows: Mapping[str, int] | None = None,
) -> CollectorRegistry:
    """Record the end of one run and push it. Returns the registry pushed."""
    registry = run_registry(kind, success=success, steps_missed=steps_missed, windows=windows)
    push(gateway, kind, registry)
    return registry


def push_steps(gateway: str | None, kind: str, steps_missed: Mapping[str, bool]) -> None:
    push(gateway, kind, steps_registry(steps_missed))


def all_steps(steps: Iterable[str], missed: Iterable[str]) -> dict[str, bool]:
    """``{step: missed?}`` for every step, so a push also clears the steps that are on time."""
    late = set(missed)
    return {step: step in late for step in steps}
