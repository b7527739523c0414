"""A real Prometheus scrapes the local stack during a short pipeline run (integration).

It loads the pipeline's rules; every dashboard query and every alert expression must parse,
and return data (dashboard queries) or read series that exist (alert and recording rules,
whose results are empty while nothing is wrong). Series that the local stack cannot have
are listed in :data:`MAY_BE_EMPTY`, each with the reason.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from warehouse_loader.sample import sample_gold, write_gold

from iotpipe.local import Postgres
from tests.observability.conftest import RULES, TOKEN, Stack
from tests.observability.dashboards import prometheus_queries, sql_queries
from tests.observability.promql import grafana_to_promql, selectors

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAY_BE_EMPTY: dict[str, str] = {
    "kafka_": "Strimzi's Kafka Exporter and broker metrics: only in the cluster (the local "
    "broker has no exporter)",
    "orchestrator_": "pushed by the orchestrator CronJob (Pushgateway), which the local "
    "stack does not run",
    "silver_": "pushed by the bronze_to_silver job (Pushgateway), which the local "
    "stack does not run",
    "iotpipe:anomaly_ratio": "recorded from silver_*",
    "gold_": "pushed by the silver_to_gold job (Pushgateway), which the local stack does not run",
    "ALERTS": "only while an alert is pending or firing",
    "changes(process_start_time_seconds": "deployment annotations: only after a restart",
    'http_requests_total{status=~"5.."}': "only after a server error",
}


def may_be_empty(expr: str) -> bool:
    return any(key in expr for key in MAY_BE_EMPTY)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> Stack:
    """A short run: readings (with anomalies and malformed records) through bronze-stream,
    a gate run, a load, a DLQ replay; then wait until Prometheus has seen all of it."""
    urls = stack.services
    run: dict[str, object] = {"rate": 100, "duration_seconds": 40, "sensors": 20, "seed": 10}
    run |= {"anomaly_rate": 0.05, "malformed_rate": 0.05}
    response = httpx.post(f"{urls['sensor-simulator']}/runs", json=run, headers=AUTH, timeout=30)
    assert response.status_code == 201, response.text
    stack.wait_for("sum(bronze_stream_bronze_rows_total)", "rows committed to Bronze")
    stack.wait_for("sum(bronze_stream_dead_letters_total)", "dead letters")
    stack.wait_for("sum(dlq_messages_seen_total)", "dead letters read by the inspector")

    # Gold comes from the hourly medallion jobs, which this short run does not start:
    # one synthetic Gold window (the loader's own sample writer) stands in for them.
    now = datetime.now(UTC)
    start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    write_gold(stack.lake.gold_windows, sample_gold(start, windows=1, sensors=20))
    for layer in ("bronze", "silver", "gold"):  # Silver is empty: no medallion run
        body = {"layer": layer, "window": now.strftime("%Y-%m-%dT%H")}
        response = httpx.post(f"{urls['quality-gate']}/runs", json=body, headers=AUTH, timeout=300)
        assert response.status_code == 201, response.text
    load: dict[str, object] = {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(minutes=5)).isoformat(),
        "override_gate": True,  # whatever the gate said: the load itself is what is watched
        "override_reason": "observability end-to-end test",
    }
    response = httpx.post(f"{urls['warehouse-loader']}/loads", json=load, headers=AUTH, timeout=120)
    assert response.status_code == 201, response.text
    replay = {"filter": {"error_type": ["malformed_json"]}, "background": False}
    response = httpx.post(
        f"{urls['dlq-inspector']}/dlq/replay", json=replay, headers=AUTH, timeout=120
    )
    assert response.status_code == 200, response.text

    stack.wait_for("sum(quality_checks_total)", "gate runs")
    stack.wait_for("sum(loader_loads_total)", "loads")
    stack.wait_for("sum(dlq_replays_total)", "replays")
    stack.wait_for(
        "count(iotpipe:bronze_commit_latency_seconds:p95_5m)", "the recording rules' first results"
    )
    time.sleep(3)  # a few more scrapes, so that every rate() has two samples
    return stack


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
    queries = list(sql_queries())
    assert queries
    with psycopg.connect(postgres.dsn) as connection:  # the loader has created the schema
        for _dashboard, _panel, sql in queries:
            connection.execute(sql).fetchall()
