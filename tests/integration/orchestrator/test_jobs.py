"""The orchestrator's gate and load steps over HTTP as jobs: POST with
``Prefer: respond-async``, 202 + Location, polled to the end; an older (synchronous)
gate and loader answered at once; failed jobs as StepFailed naming the step.

The gate and the loader are the receiver (conftest.py): no Kubernetes API is needed."""

from __future__ import annotations

import pytest
from orchestrator.pipeline import Orchestrator, StepFailed
from orchestrator.settings import OrchestratorSettings

from iotpipe.windows import Window

from .conftest import GATE_TOKEN, LOADER_TOKEN, Receiver

pytestmark = pytest.mark.integration

DAY = Window.parse("2026-11-20")
BODY = {"window_start": "2026-11-20T00:00:00Z", "window_end": "2026-11-21T00:00:00Z"}


def orchestrator(receiver: Receiver) -> Orchestrator:
    settings = OrchestratorSettings(
        quality_gate_url=f"{receiver.url}/gate",
        quality_gate_token=GATE_TOKEN,
        loader_url=f"{receiver.url}/loader",
        loader_token=LOADER_TOKEN,
        gate_timeout_seconds=30,
        loader_timeout_seconds=30,
    )
    return Orchestrator(settings, None)


@pytest.mark.parametrize("synchronous", [False, True], ids=["jobs", "older-services"])
def test_gate_and_load_follow_their_jobs_or_take_the_old_answer(
    receiver: Receiver, synchronous: bool
) -> None:
    receiver.synchronous = synchronous
    orch = orchestrator(receiver)

    orch.gate(DAY)
    load = orch.load(DAY)

    assert (load["status"], load["window_start"]) == ("succeeded", BODY["window_start"])
    posts = [r for r in receiver.requests if r.method == "POST"]
    assert [r.path for r in posts] == ["/gate/runs", "/gate/runs", "/loader/loads"]
    assert all(r.headers["Prefer"] == "respond-async" for r in posts)
    polled = [r.path for r in receiver.requests if r.method == "GET"]
    if synchronous:
        assert polled == []
    else:  # each job polled until finished: once running, once done
        assert polled == [p for p in receiver.jobs for _ in range(2)]
        assert list(receiver.jobs) == [
            "/gate/jobs/job-1",
            "/gate/jobs/job-2",
            "/loader/jobs/job-3",
        ]


@pytest.mark.parametrize("synchronous", [False, True], ids=["jobs", "older-services"])
def test_a_failed_load_job_is_a_step_failure_with_its_reason(
    receiver: Receiver, synchronous: bool
) -> None:
    receiver.synchronous = synchronous
    receiver.load_problem = {
        "title": "Conflict",
        "status": 409,
        "detail": "load l-1 refused: Gold gate verdict is fail",
    }
    with pytest.raises(StepFailed) as failed:
        orchestrator(receiver).load(DAY)
    assert failed.value.step == "warehouse load"
    assert failed.value.detail == "409 load l-1 refused: Gold gate verdict is fail"
    assert len([r for r in receiver.requests if r.method == "POST"]) == 1  # a 409: no retry


def test_a_failing_gate_run_stops_with_the_gates_step_name(receiver: Receiver) -> None:
    receiver.failing_gates.add(("silver", str(DAY)))
    with pytest.raises(StepFailed) as failed:
        orchestrator(receiver).gate(DAY)
    assert failed.value.step == "quality gate (silver)"
    assert "expect_column_values_to_not_be_null" in failed.value.detail


def test_a_job_the_loader_forgot_is_submitted_again(receiver: Receiver) -> None:
    receiver.forgotten.add("/loader/jobs/job-1")  # the loader restarted after accepting it
    load = orchestrator(receiver).load(DAY)
    assert load["status"] == "succeeded"
    posts = [r.path for r in receiver.requests if r.method == "POST"]
    assert posts == ["/loader/loads", "/loader/loads"]  # JobLost: retried, as a lost answer was
