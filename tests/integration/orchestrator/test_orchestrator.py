"""The orchestrator against a real API server, with the test playing the Spark operator."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from orchestrator.cli import app
from orchestrator.sparkapps import GROUP, PLURAL, VERSION
from typer.testing import CliRunner

from .conftest import NAMESPACE, Receiver

pytestmark = pytest.mark.integration

STREAM = "iotpipe-bronze-stream"


def invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def sparkapp(kube: client.ApiClient, name: str) -> Any:
    """The SparkApplication ``name`` (a dict), or None."""
    try:
        return client.CustomObjectsApi(kube).get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name
        )
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def batch_policy(*fail: str) -> Any:
    """The stream RUNNING, every batch job COMPLETED except the names in ``fail``."""

    def policy(app: dict[str, Any]) -> str:
        name = app["metadata"]["name"]
        if name == STREAM:
            return "RUNNING"
        return "FAILED" if name in fail else "COMPLETED"

    return policy


def test_daily_recreates_a_failed_stream_runs_the_day_gates_and_loads(
    kube: client.ApiClient,
    operator: Any,
    receiver: Receiver,
    orchestrator_env: dict[str, str],
    cleanup_apps: None,
) -> None:
    before = sparkapp(kube, STREAM)
    assert before is not None, "the chart installs the streaming SparkApplication"
    op = operator(batch_policy())
    op.set_state(STREAM, "FAILED", "driver OOMKilled")  # before the operator thread starts
    with op:
        result = invoke(orchestrator_env, "daily", "--day", "2026-11-20")
    assert result.exit_code == 0, result.output

    # The stream was recreated from its own spec, still owned by the Helm release.
    after = sparkapp(kube, STREAM)
    assert after is not None
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"] == before["spec"]
    assert after["metadata"]["annotations"]["meta.helm.sh/release-name"] == "iotpipe"
    assert after["status"]["applicationState"]["state"] == "RUNNING"

    # The two medallion jobs, from the chart's ScheduledSparkApplication templates.
    window = "2026-11-20T00:00:00Z--2026-11-21T00:00:00Z"
    for job, module in [
        ("bronze-to-silver", "bronze_to_silver"),
        ("silver-to-gold", "silver_to_gold"),
    ]:
        created = sparkapp(kube, f"iotpipe-{job}-20261120")
        assert created is not None, job
        scheduled: Any = client.CustomObjectsApi(kube).get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "scheduledsparkapplications", f"iotpipe-{job}"
        )
        template = scheduled["spec"]["template"]
        assert created["spec"]["arguments"] == [module, "--window", window]
        assert created["spec"]["image"] == template["image"]
        assert created["spec"]["driver"] == template["driver"]
        assert created["status"]["applicationState"]["state"] == "COMPLETED"
    assert [s.split("=")[0] for s in op.seen] == [
        STREAM,
        "iotpipe-bronze-to-silver-20261120",
        "iotpipe-silver-to-gold-20261120",
    ]

    # Then the gate (Silver, Gold) and then the loader, in that order, with their tokens.
    calls = [
        (r.path, r.json())
        for r in receiver.requests
        if r.path.startswith(("/gate", "/loader")) and r.method == "POST"
    ]
    day = {"window_start": "2026-11-20T00:00:00Z", "window_end": "2026-11-21T00:00:00Z"}
    assert calls == [  # one window shape for the gate and the loader alike
        ("/gate/runs", {"layer": "silver", **day}),
        ("/gate/runs", {"layer": "gold", **day}),
        ("/loader/loads", day),
    ]
    assert receiver.texts() == []  # nothing to report
    pushes = receiver.to("/metrics/job/orchestrator/kind/daily")
    assert len(pushes) == 1
    body = pushes[0].body.decode()
    assert "orchestrator_last_run_success 1.0" in body
    assert "orchestrator_last_success_timestamp_seconds" in body
    for step in ("bronze-to-silver", "silver-to-gold", "quality-gate", "warehouse-load"):
        assert f'orchestrator_step_deadline_missed{{step="{step}"}} 0.0' in body


def test_backfill_stops_at_the_first_failed_day_and_notifies(
    kube: client.ApiClient,
    operator: Any,
    receiver: Receiver,
    orchestrator_env: dict[str, str],
    cleanup_apps: None,
) -> None:
    failing = "iotpipe-silver-to-gold-20261102"
    with operator(batch_policy(failing)):
        result = invoke(
            orchestrator_env, "backfill", "--start", "2026-11-01", "--end", "2026-11-04"
        )
    assert result.exit_code == 1, result.output
    assert "1/4 days" in result.output
    assert "2 not attempted" in result.output

    assert sparkapp(kube, "iotpipe-bronze-to-silver-20261101") is not None
    assert sparkapp(kube, "iotpipe-silver-to-gold-20261101") is not None
    assert sparkapp(kube, "iotpipe-bronze-to-silver-20261102") is not None
    assert sparkapp(kube, failing)["status"]["applicationState"]["state"] == "FAILED"
    for day in ("20261103", "20261104"):  # never submitted
        assert sparkapp(kube, f"iotpipe-bronze-to-silver-{day}") is None

    loads = [r.json() for r in receiver.to("/loader/loads")]
    assert loads == [{"window_start": "2026-11-01T00:00:00Z", "window_end": "2026-11-02T00:00:00Z"}]
    [text] = receiver.texts()
    assert "backfill failed" in text
    assert "2026-11-02" in text
    assert "silver-to-gold" in text
    assert "test operator: FAILED" in text  # the operator's error message is passed on
    push = receiver.to("/metrics/job/orchestrator/kind/backfill")[0].body.decode()
    assert "orchestrator_last_run_success 0.0" in push
    assert "orchestrator_last_success_timestamp_seconds" not in push


def test_a_failed_gate_stops_the_day_before_the_load(
    operator: Any, receiver: Receiver, orchestrator_env: dict[str, str], cleanup_apps: None
) -> None:
    window = "2026-11-10T00:00:00Z--2026-11-11T00:00:00Z"
    receiver.failing_gates.add(("gold", window))
    with operator(batch_policy()):
        result = invoke(orchestrator_env, "daily", "--day", "2026-11-10", "--no-stream")
    assert result.exit_code == 1, result.output
    assert receiver.to("/loader/loads") == []
    [text] = receiver.texts()
    assert "quality gate (gold)" in text
    assert "expect_column_values_to_not_be_null" in text


def test_a_rerun_reuses_completed_jobs_and_replaces_failed_ones(
    kube: client.ApiClient,
    operator: Any,
    receiver: Receiver,
    orchestrator_env: dict[str, str],
    cleanup_apps: None,
) -> None:
    with operator(batch_policy("iotpipe-silver-to-gold-20261115")):
        assert (
            invoke(orchestrator_env, "daily", "--day", "2026-11-15", "--no-stream").exit_code == 1
        )
    first = sparkapp(kube, "iotpipe-bronze-to-silver-20261115")
    with operator(batch_policy()) as op:
        result = invoke(orchestrator_env, "daily", "--day", "2026-11-15", "--no-stream")
    assert result.exit_code == 0, result.output
    # bronze-to-silver was not run again; the failed silver-to-gold was replaced and completed.
    assert (
        sparkapp(kube, "iotpipe-bronze-to-silver-20261115")["metadata"]["uid"]
        == first["metadata"]["uid"]
    )
    assert op.seen == ["iotpipe-silver-to-gold-20261115=COMPLETED"]
    assert len(receiver.to("/loader/loads")) == 1


def test_a_step_past_its_deadline_is_notified_and_pushed_though_the_run_succeeds(
    operator: Any, receiver: Receiver, orchestrator_env: dict[str, str], cleanup_apps: None
) -> None:
    first_seen: dict[str, float] = {}

    def slow_gold(app: dict[str, Any]) -> str | None:
        """silver-to-gold completes 4 s after it was submitted; the rest at once."""
        name = app["metadata"]["name"]
        if "-silver-to-gold-" not in name:
            return "COMPLETED"
        first_seen.setdefault(name, time.monotonic())
        return "COMPLETED" if time.monotonic() - first_seen[name] > 4 else None

    env = {**orchestrator_env, "ORCHESTRATOR_DEADLINE_SILVER_TO_GOLD_MINUTES": "0.03"}  # 1.8 s
    with operator(slow_gold):
        result = invoke(env, "daily", "--day", "2026-11-05", "--no-stream")
    assert result.exit_code == 0, result.output  # late, not failed
    assert "late: silver-to-gold" in result.output
    [text] = receiver.texts()
    assert "2026-11-05" in text
    assert "silver-to-gold is not done" in text
    mid, end = (p.body.decode() for p in receiver.to("/metrics/job/orchestrator/kind/daily"))
    # pushed the moment the deadline passed, while silver-to-gold was still running ...
    assert 'orchestrator_step_deadline_missed{step="silver-to-gold"} 1.0' in mid
    assert "orchestrator_last_run_success" not in mid
    # ... and again at the end: the run succeeded, the step stays late
    assert 'orchestrator_step_deadline_missed{step="silver-to-gold"} 1.0' in end
    assert 'orchestrator_step_deadline_missed{step="bronze-to-silver"} 0.0' in end
    assert 'orchestrator_step_deadline_missed{step="warehouse-load"} 0.0' in end
    assert "orchestrator_last_run_success 1.0" in end
