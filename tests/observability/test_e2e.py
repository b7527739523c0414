"""A real Prometheus scrapes the local stack during a short pipeline run (integration).

It loads the pipeline's rules; every dashboard query and every alert expression must parse,
and return data (dashboard queries) or read series that exist (alert and recording rules,
whose results are empty while nothing is wrong). Series that the local stack cannot have
are listed in :data:`MAY_BE_EMPTY`, each with the reason. The batch jobs' metrics are
pushed to a real Pushgateway by their own push functions (the freshness check by the
orchestrator's CLI in a process of its own), and the alerts they raise must reach the
webhook receiver through Alertmanager.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from orchestrator.metrics import all_steps, push_run, push_steps
from orchestrator.pipeline import STEPS
from spark_jobs.bronze_to_silver import push_alert_counts
from spark_jobs.silver_to_gold import push_health
from warehouse_loader.sample import sample_gold, write_gold

from iotpipe.local import Postgres
from iotpipe.windows import Window, window_params
from tests import jobs
from tests.observability.conftest import RULES, TOKEN, Stack
from tests.observability.dashboards import prometheus_queries, warehouse_queries
from tests.observability.promql import grafana_to_promql, selectors

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAY_BE_EMPTY: dict[str, str] = {
    "kafka_": "Strimzi's Kafka Exporter and broker metrics: only in the cluster (the local "
    "broker has no exporter)",
    "changes(process_start_time_seconds": "deployment annotations: only after a restart",
    'http_requests_total{status=~"5.."}': "only after a server error",
}
# The alerts this run raises: (alert, the label that tells it apart, its value, the webhook
# path its severity routes to in observability/alertmanager/). The late events of the
# simulator run (up to 30 minutes behind) raise the first from the stream's own histogram,
# the gate's run on the empty Silver layer the second; the others come from the batch jobs'
# pushes.
EXPECTED_ALERTS = [
    ("EndToEndLatencyHigh", "severity", "warning", "/warning"),
    ("QualityGateFailed", "layer", "silver", "/warning"),
    ("OrchestrationRunFailed", "kind", "backfill", "/critical"),
    ("OrchestrationSLAMissed", "severity", "critical", "/critical"),
    ("OrchestrationStepLate", "step", "silver-to-gold", "/warning"),
    ("AnomalyRateSurge", "sensor_type", "vibration", "/warning"),
    ("SensorHealthLow", "location", "site-b", "/warning"),
]


def may_be_empty(expr: str) -> bool:
    return any(key in expr for key in MAY_BE_EMPTY)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> Stack:
    """A short run: readings (with anomalies, malformed records and late events) through
    bronze-stream, a gate run, a load, a DLQ replay, the batch jobs' pushes; then wait until
    Prometheus has seen all of it."""
    urls = stack.services
    run: dict[str, object] = {"rate": 100, "duration_seconds": 40, "sensors": 20, "seed": 10}
    run |= {"anomaly_rate": 0.05, "malformed_rate": 0.05, "late_rate": 0.1}
    response = httpx.post(f"{urls['sensor-simulator']}/runs", json=run, headers=AUTH, timeout=30)
    assert response.status_code == 201, response.text
    stack.wait_for("sum(bronze_stream_bronze_rows_total)", "rows committed to Bronze")
    # bronze_to_silver's push at a normal anomaly ratio, from now on: the surge pushed at the
    # end then stands against a baseline of a few minutes (AnomalyRateSurge's average counts
    # the surge too, so the longer the baseline, the longer the alert fires)
    readings = produced_readings(stack)
    push_alert_counts(stack.pushgateway, anomaly_counts(readings, vibration=0.002))
    stack.wait_for("sum(bronze_stream_dead_letters_total)", "dead letters")
    stack.wait_for("sum(dlq_messages_seen_total)", "dead letters read by the inspector")

    # Gold comes from the hourly medallion jobs, which this short run does not start:
    # one synthetic Gold window (the loader's own sample writer) stands in for them.
    now = datetime.now(UTC)
    start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    write_gold(stack.lake.gold_windows, sample_gold(start, windows=1, sensors=20))
    hour = window_params(Window.parse(now.strftime("%Y-%m-%dT%H")))
    with httpx.Client(base_url=urls["quality-gate"]) as gate:
        for layer in ("bronze", "silver", "gold"):  # Silver is empty: no medallion run
            run = jobs.run(gate, "/runs", {"layer": layer, **hour}, AUTH)  # a job, polled
            assert run["status"] == "succeeded", run["problem"]
    load: dict[str, object] = {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(minutes=5)).isoformat(),
        "override_gate": True,  # whatever the gate said: the load itself is what is watched
        "override_reason": "observability end-to-end test",
    }
    with httpx.Client(base_url=urls["warehouse-loader"]) as loader:
        loaded = jobs.run(loader, "/loads", load, AUTH)
    assert loaded["status"] == "succeeded", loaded["problem"]
    replay = {"filter": {"error_type": ["malformed_json"]}, "background": False}
    response = httpx.post(
        f"{urls['dlq-inspector']}/dlq/replay", json=replay, headers=AUTH, timeout=120
    )
    assert response.status_code == 200, response.text

    stack.wait_for("sum(quality_checks_total)", "gate runs")
    stack.wait_for("sum(loader_loads_total)", "loads")
    stack.wait_for("sum(dlq_replays_total)", "replays")
    push_batch_metrics(stack, readings)
    stack.wait_for(
        "count(iotpipe:bronze_commit_latency_seconds:p95_5m)", "the recording rules' first results"
    )
    time.sleep(3)  # a few more scrapes, so that every rate() has two samples
    return stack


def produced_readings(stack: Stack) -> dict[str, int]:
    """The readings per sensor type the simulator has really produced so far."""
    produced = stack.query("sum by (sensor_type) (simulator_events_produced_total)")
    readings = {
        r["metric"]["sensor_type"]: int(float(r["value"][1])) for r in produced["data"]["result"]
    }
    assert readings.get("vibration", 0) >= 10, readings  # 10 % of them: at least one alert
    return readings


def anomaly_counts(readings: dict[str, int], vibration: float) -> dict[str, int]:
    """bronze_to_silver's counts for ``readings``: anomaly alerts in 0.2 % of them, and in
    ``vibration`` of the vibration sensors'."""
    ratio = {t: vibration if t == "vibration" else 0.002 for t in readings}
    return {f"readings:{t}": n for t, n in readings.items()} | {
        f"alerts:{t}": round(n * ratio[t]) for t, n in readings.items()
    }


def push_batch_metrics(stack: Stack, readings: dict[str, int]) -> None:
    """What the batch jobs push after their runs, through their own push functions, to the
    stack's Pushgateway: an orchestrator history with a failed backfill, a late step and a
    stale-Bronze freshness check; Silver's anomaly alerts surging over the normal ratio
    pushed since the stream's first rows; a location whose lowest sensor health is under
    90 %."""
    gateway = stack.pushgateway
    # the orchestrator: a daily run that succeeded on time, then a failed backfill, then a
    # daily run whose silver-to-gold passes its deadline (pushed while it runs)
    push_run(gateway, "daily", success=True, steps_missed=all_steps(STEPS, []))
    push_run(gateway, "backfill", success=False)
    push_steps(gateway, "daily", all_steps(STEPS, ["silver-to-gold"]))
    # the freshness check itself, on a lake with no Bronze: an SLA miss
    env = {
        "LAKE_ROOT": str(stack.logs.parent / "lake-without-bronze"),
        "ORCHESTRATOR_PUSHGATEWAY_URL": gateway,
        "ORCHESTRATOR_QUALITY_GATE_TOKEN": TOKEN,
        "ORCHESTRATOR_LOADER_TOKEN": TOKEN,
    }
    check = subprocess.run(
        [sys.executable, "-m", "orchestrator", "check-freshness"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 1, check.stdout + check.stderr  # 1: the SLA is missed

    # bronze_to_silver: the surge, over the baseline pushed since the stream's first rows
    stack.wait_for(
        'count_over_time(iotpipe:anomaly_ratio:latest_run{sensor_type="vibration"}[1h]) >= 15',
        "a baseline of Silver's anomaly ratio",
        timeout=120,
    )
    push_alert_counts(gateway, anomaly_counts(readings, vibration=0.10))
    # silver_to_gold: one sensor at site-b sent 80 % of its readings in the newest hour
    push_health(gateway, {"site-a": 100.0, "site-b": 80.0})
    stack.wait_for("count(gold_sensor_health_min_pct)", "the pushed sensor health", timeout=60)


def changes(stack: Stack, selector: str) -> list[tuple[float, str]]:
    """(time, value) where the series of a range selector changes value."""
    found: list[tuple[float, str]] = []
    for result in stack.query(selector)["data"]["result"]:
        for at, value in result["values"]:
            if not found or found[-1][1] != value:
                found.append((at, value))
    return found


def test_each_expected_alert_fires_and_reaches_the_webhook_through_alertmanager(
    pipeline: Stack,
) -> None:
    deadline = time.monotonic() + 120
    missing = EXPECTED_ALERTS
    while missing and time.monotonic() < deadline:
        firing = pipeline.alerts.firing()
        missing = [
            (name, label, value, path)
            for name, label, value, path in EXPECTED_ALERTS
            if not any(
                p == path and labels.get("alertname") == name and labels.get(label) == value
                for p, labels in firing
            )
        ]
        time.sleep(1)
    state = pipeline.query("ALERTS")["data"]["result"]
    ratios = {  # what AnomalyRateSurge compared, should it be the one missing: each value
        # and when it began
        name: changes(pipeline, f'{name}{{sensor_type="vibration"}}[15m]')
        for name in (
            "iotpipe:anomaly_ratio:latest_run",
            "silver_anomaly_alerts",
            "silver_readings",
        )
    }
    assert not missing, (
        f"not delivered: {missing}\nPrometheus ALERTS: {[r['metric'] for r in state]}\n"
        f"delivered: {pipeline.alerts.firing()}\nanomaly ratios: {ratios}"
    )
    # the rules' own labels and annotations came through Alertmanager unchanged
    delivered = {labels["alertname"]: labels for _, labels in pipeline.alerts.firing()}
    assert delivered["OrchestrationRunFailed"]["severity"] == "critical"
    assert delivered["SensorHealthLow"]["severity"] == "warning"


def test_prometheus_loaded_every_rule_without_error(pipeline: Stack) -> None:
    response = httpx.get(f"{pipeline.prometheus}/api/v1/rules", timeout=30).json()
    assert response["status"] == "success"
    loaded = {rule["name"]: rule for group in response["data"]["groups"] for rule in group["rules"]}
    expected = {rule.get("alert") or rule["record"] for rule in rules()}
    assert set(loaded) == expected
    unhealthy = {name: r.get("lastError") for name, r in loaded.items() if r["health"] != "ok"}
    assert not unhealthy


def test_every_rule_expression_parses_and_reads_existing_series(pipeline: Stack) -> None:
    problems = []
    for rule in rules():
        name, expr = rule.get("alert") or rule["record"], rule["expr"]
        answer = pipeline.query(expr)
        if answer["status"] != "success":
            problems.append(f"{name}: {answer.get('error')}")
            continue
        for selector in selectors(expr):
            if (
                not may_be_empty(selector)
                and not pipeline.query(f"count({selector})")["data"]["result"]
            ):
                problems.append(f"{name}: no series for {selector}")
    assert not problems, "\n".join(problems)


def test_every_dashboard_query_parses_and_returns_data(pipeline: Stack) -> None:
    problems, checked = [], 0
    for dashboard, panel, expr in prometheus_queries():
        checked += 1
        answer = pipeline.query(grafana_to_promql(expr))
        if answer["status"] != "success":
            problems.append(f"{dashboard} / {panel}: {answer.get('error')}\n  {expr}")
        elif not answer["data"]["result"] and not may_be_empty(expr):
            problems.append(f"{dashboard} / {panel}: no data\n  {expr}")
    assert checked > 50
    assert not problems, "\n".join(problems)


def test_warehouse_panels_run_on_the_warehouse(pipeline: Stack, postgres: Postgres) -> None:
    with psycopg.connect(postgres.dsn) as connection:  # the loader has created the schema
        queries = list(warehouse_queries(connection))
        assert queries
        for _dashboard, _panel, sql in queries:
            connection.execute(sql).fetchall()
