"""The series the batch jobs push, as Prometheus sees them through the Pushgateway.

The Pushgateway stores each push in its group and adds the group's labels (``job`` and the
grouping key, plus ``instance=""`` when the key has none) to every sample; Prometheus
scrapes it with ``honor_labels: true``, so those are the labels the rules select on. Each
push function returns the registry it pushes: rendering it here gives the series the
promtool tests must feed (tests/observability/test_rules.py compares them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from orchestrator import metrics as orchestrator_metrics
from orchestrator.pipeline import STEPS
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from spark_jobs.bronze_to_silver import push_alert_counts
from spark_jobs.silver_to_gold import push_health

from iotpipe.contract import SensorType

Series = tuple[str, frozenset[tuple[str, str]]]

FREE_LABELS = ("location",)
"""Labels whose values are data (a site's name), compared by name only."""


def series_of(registry: CollectorRegistry, job: str, grouping: Mapping[str, str]) -> set[Series]:
    """The series of ``registry`` once pushed to the group ``job`` + ``grouping``."""
    text = generate_latest(registry).decode()
    found = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {**sample.labels, **grouping, "job": job}
            found.add(normalise(sample.name, labels))
    return found


def normalise(name: str, labels: Mapping[str, str]) -> Series:
    kept = {k: ("*" if k in FREE_LABELS else v) for k, v in labels.items() if v != ""}
    return name, frozenset(kept.items())


def parse_series(selector: str) -> Series:
    """A promtool ``input_series`` string (``name{a="b"}``) as a :data:`Series`."""
    [family] = text_string_to_metric_families(f"{selector} 0\n")
    [sample] = family.samples
    return normalise(sample.name, sample.labels)


def pushed() -> Iterator[tuple[str, set[Series]]]:
    """Every job's pushes, for every kind of run and every label value the code uses."""
    steps = dict.fromkeys(STEPS, True)
    for kind in ("daily", "backfill", "freshness"):
        for success in (True, False):
            registry = orchestrator_metrics.run_registry(
                kind, success=success, steps_missed=steps if kind == "daily" else None
            )
            yield (
                orchestrator_metrics.JOB,
                series_of(
                    registry, orchestrator_metrics.JOB, orchestrator_metrics.grouping_key(kind)
                ),
            )
    types = [t.value for t in SensorType]
    counts = {f"{what}:{t}": 1 for what in ("readings", "alerts") for t in types}
    yield "bronze_to_silver", series_of(push_alert_counts(None, counts), "bronze_to_silver", {})
    yield "silver_to_gold", series_of(push_health(None, {"site-a": 99.0}), "silver_to_gold", {})


def pushed_names() -> dict[str, set[Series]]:
    """Metric name -> every series of that name some push produces."""
    names: dict[str, set[Series]] = {}
    for _job, series in pushed():
        for name, labels in series:
            names.setdefault(name, set()).add((name, labels))
    return names
