"""The pipeline on the cluster, driven as a user would: REST through the Services, the stream as
a SparkApplication run by the Spark operator, the day's medallion run by the orchestrator's
CronJob template; then the exact accounting of `make demo`, counted from where the data lives
(the events topic's offsets, the DLQ, the lake's Parquet, the warehouse's rows).

The tests of this module share one run and go in order: produce (losing the stream's driver pod
on the way), drain, replay dead letters, run the day, account.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from local_pipeline.accounting import (
    Accounting,
    account,
    bronze_frame,
    dead_letters,
    produced_offsets,
)
from pyspark.sql import SparkSession

from iotpipe.contract import SENSOR_TYPES, ErrorType, SensorType
from iotpipe.lake import Lake
from iotpipe.settings import KafkaSettings
from iotpipe.windows import Window

from .conftest import LAKE, token
from .kube import Kube, wait_until

# The session fixture brings the cluster up and deploys (minutes): a generous timeout.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2400)]

SERVICES = ["sensor-simulator", "dlq-inspector", "quality-gate", "warehouse-loader"]
NAMESPACES = ["kube-system", "spark-operator", "monitoring", "iotpipe"]
STREAM = "iotpipe-bronze-stream"
EVENTS = 6_000
REPLAYED = 5


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_every_pod_is_ready(kube: Kube) -> None:
    seen = 0
    for namespace in NAMESPACES:
        for pod in kube.pods(namespace=namespace):
            if pod["status"]["phase"] == "Succeeded":  # the chart's hook Jobs, done
                continue
            seen += 1
            name = f"{namespace}/{pod['metadata']['name']}"
            assert ready(pod), f"{name} is not Ready: {json.dumps(pod['status'])[:2000]}"
    assert seen >= 10, f"only {seen} pods run: the release is not installed"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_answers_through_its_service(kube: Kube, service: str) -> None:
    url = kube.service_url(f"iotpipe-{service}")
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    readyz = httpx.get(f"{url}/readyz", timeout=30)
    assert readyz.status_code == 200, readyz.text
    metrics = httpx.get(f"{url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "# TYPE" in metrics.text
    assert httpx.get(f"{url}/openapi.json", timeout=10).json()["info"]["title"]


def test_helm_test_passes(kube: Kube) -> None:
    """The chart's own test hooks (templates/tests/): each service's /readyz through its
    Service, and a TLS handshake with the Kafka listener, as `helm test` runs them."""
    import subprocess

    from .conftest import CACHE

    done = subprocess.run(
        [
            str(CACHE / "bin" / "helm"),
            "test",
            "iotpipe",
            "--namespace",
            kube.namespace,
            "--kubeconfig",
            str(kube.kubeconfig),
            "--timeout",
            "5m",
            "--logs",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    phases = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("Phase:")]
    assert len(phases) >= len(SERVICES) + 1, done.stdout  # a hook per service, one for Kafka
    assert set(phases) == {"Succeeded"}, done.stdout


def driver_pods(kube: Kube) -> list[dict[str, Any]]:
    return kube.pods("-l", f"spark-role=driver,sparkoperator.k8s.io/app-name={STREAM}")


def running_driver(kube: Kube) -> dict[str, Any] | None:
    pods = [p for p in driver_pods(kube) if p["status"]["phase"] == "Running" and ready(p)]
    return pods[0] if pods else None


class Run:
    """What the module's tests share: the run's id, and what was replayed."""

    id: str = ""
    lost_driver: str = ""
    replayed: list[str] = []


@pytest.fixture(scope="module")
def lake() -> Lake:
    return Lake(str(LAKE))


@dataclass(frozen=True)
class Readers:
    """Who counts at the source: each topic is read by a user allowed to read it."""

    events: KafkaSettings
    dlq: KafkaSettings


@pytest.fixture(scope="module")
def readers(kafka_as_stream: KafkaSettings, kafka_as_inspector: KafkaSettings) -> Readers:
    return Readers(events=kafka_as_stream, dlq=kafka_as_inspector)


def ingested(
    spark: SparkSession, lake: Lake, kafka: Readers
) -> tuple[set[tuple[int, int]], set[tuple[int, int]], set[tuple[int, int]]]:
    """(produced, in Bronze, in the DLQ) offsets of the events topic, counted at the source."""
    produced, _aborted = asyncio.run(produced_offsets(kafka.events))
    letters = asyncio.run(dead_letters(kafka.dlq))
    in_dlq = {(d.source_partition, d.source_offset) for d in letters}
    everything = Window(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    try:
        rows = bronze_frame(spark, lake, everything).select("kafka_partition", "kafka_offset")
        in_bronze = {(r.kafka_partition, r.kafka_offset) for r in rows.collect()}
    except Exception as exc:  # no Bronze yet (the path does not exist before the first commit)
        if "PATH_NOT_FOUND" not in str(exc) and "does not exist" not in str(exc):
            raise
        in_bronze = set()
    return produced, in_bronze, in_dlq


def wait_drained(spark: SparkSession, lake: Lake, kafka: Readers, timeout: float) -> None:
    def drained() -> bool:
        produced, bronze, dlq = ingested(spark, lake, kafka)
        return bool(produced) and produced <= bronze | dlq

    wait_until("every produced event in Bronze or the DLQ", drained, timeout, every=10)


def test_simulator_run_survives_losing_the_stream_driver(kube: Kube) -> None:
    wait_until("the bronze stream's driver Running", lambda: running_driver(kube) is not None, 600)
    sim = kube.service_url("iotpipe-sensor-simulator")
    config = {
        "rate": 100,
        "max_events": EVENTS,
        "sensors": 40,
        "malformed_rate": 0.05,
        "anomaly_rate": 0.01,
        "late_rate": 0.0,
        "seed": 20,
    }
    created = httpx.post(
        f"{sim}/runs", json=config, headers=token(kube, "sensor-simulator"), timeout=30
    )
    assert created.status_code == 201, created.text
    Run.id = created.json()["id"]

    def sent() -> int:
        status = httpx.get(f"{sim}/runs/{Run.id}", timeout=10).json()
        return int(status["counters"]["delivered"])

    # A third of the way in, the driver pod goes; the operator starts another.
    wait_until("a third of the run sent", lambda: sent() >= EVENTS // 3, 300)
    driver = running_driver(kube)
    assert driver is not None
    Run.lost_driver = driver["metadata"]["uid"]
    kube.run("delete", "pod", driver["metadata"]["name"], "--wait=false")

    def finished() -> bool:
        state = httpx.get(f"{sim}/runs/{Run.id}", timeout=10).json()["state"]
        return state not in ("running", "stopping")

    wait_until("the run finished", finished, 600)
    status = httpx.get(f"{sim}/runs/{Run.id}", timeout=10).json()
    assert status["state"] == "completed", status
    assert status["counters"]["delivered"] == EVENTS, status
    assert status["counters"]["failed"] == 0, status

    def new_driver() -> bool:
        pod = running_driver(kube)
        return pod is not None and pod["metadata"]["uid"] != Run.lost_driver

    wait_until("a new driver Running", new_driver, 600)


def test_every_event_reaches_bronze_or_the_dlq(
    spark: SparkSession, lake: Lake, readers: Readers
) -> None:
    wait_drained(spark, lake, readers, timeout=900)
    produced, bronze, dlq = ingested(spark, lake, readers)
    assert len(produced) == EVENTS
    assert bronze & dlq == set()
    assert bronze | dlq == produced
    assert 0 < len(dlq) < EVENTS // 5


def test_dead_letters_replay_through_the_inspector(
    kube: Kube, spark: SparkSession, lake: Lake, readers: Readers
) -> None:
    inspector = kube.service_url("iotpipe-dlq-inspector")
    page = httpx.get(
        f"{inspector}/dlq/messages",
        params={"error_type": ErrorType.OUT_OF_CONTRACT.value, "limit": 200},
        timeout=60,
    ).json()
    headers = token(kube, "dlq-inspector")
    patches: dict[str, dict[str, str]] = {}
    for item in page["items"]:
        detail = httpx.get(
            f"{inspector}/dlq/messages/{item['partition']}/{item['offset']}",
            headers=headers,
            timeout=30,
        ).json()
        event = detail.get("value_json") or {}
        kind = event.get("sensor_type")
        if kind in {t.value for t in SensorType}:
            patches[item["id"]] = {"unit": SENSOR_TYPES[SensorType(kind)].unit}
            if len(patches) == REPLAYED:
                break
    assert len(patches) == REPLAYED, f"too few wrong-unit dead letters: {page['items'][:3]}"

    body = {"ids": list(patches), "patches": patches, "background": False}
    job = httpx.post(f"{inspector}/dlq/replay", json=body, headers=headers, timeout=120)
    assert job.status_code == 200, job.text
    assert nonzero(job.json()["counts"]) == {"replayed": REPLAYED}, job.json()
    Run.replayed = list(patches)
    # The same replay again is refused by the ledger: nothing is sent twice.
    again = httpx.post(f"{inspector}/dlq/replay", json=body, headers=headers, timeout=120)
    assert again.status_code == 200, again.text
    assert nonzero(again.json()["counts"]) == {"already_replayed": REPLAYED}, again.json()

    wait_drained(spark, lake, readers, timeout=600)
    produced, bronze, dlq = ingested(spark, lake, readers)
    assert len(produced) == EVENTS + REPLAYED
    assert bronze | dlq == produced


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {outcome: n for outcome, n in counts.items() if n}


def run_daily(kube: Kube, day: str) -> str:
    """A Job from the daily CronJob's template, for ``day``; its name once it succeeded."""
    cronjob = kube.get("cronjob", "iotpipe-orchestrator-daily")
    template = cronjob["spec"]["jobTemplate"]
    container = template["spec"]["template"]["spec"]["containers"][0]
    container["args"] = ["daily", "--day", day]
    name = f"daily-{int(time.time())}"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": template.get("metadata", {}).get("labels", {})},
        "spec": template["spec"],
    }
    kube.run("apply", "-f", "-", input=json.dumps(job))

    def finished() -> bool:
        status = kube.get("job", name)["status"]
        return bool(status.get("succeeded") or status.get("failed"))

    wait_until(f"job {name}", finished, 1800, every=10)
    status = kube.get("job", name)["status"]
    logs = kube.run("logs", f"job/{name}", "--tail", "60")
    assert status.get("succeeded") == 1, f"the daily run failed:\n{logs}"
    return name


def test_the_orchestrator_runs_the_day_and_everything_balances(
    kube: Kube,
    spark: SparkSession,
    lake: Lake,
    readers: Readers,
    warehouse_dsn: str,
) -> None:
    today = datetime.now(UTC).date()
    run_daily(kube, today.isoformat())
    window = Window.day(today)
    result: Accounting = account(
        spark, lake, readers.dlq, warehouse_dsn, window, events_kafka=readers.events
    )
    assert result.failures() == []
    assert result.produced == EVENTS + REPLAYED
    assert result.bronze + sum(result.dlq.values()) == result.produced
    assert result.warehouse_rows > 0
    assert result.warehouse_rows == result.gold_windows
