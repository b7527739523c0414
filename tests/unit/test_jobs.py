"""iotpipe.jobs: the runner (dedup, failures as problems, one at a time, cancel) and the
client (202 + Location polled to the end, an older service's 201, lost jobs, deadlines)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import HTTPException
from pydantic import BaseModel

from iotpipe.jobs import (
    JobFailed,
    JobLost,
    JobRunner,
    JobStatus,
    JobTimeout,
    JobView,
    submit,
    wants_async,
)


class Thing(BaseModel):
    n: int


class ThingJob(JobView[Thing]):
    pass


async def test_a_job_succeeds_with_its_result_and_a_duplicate_gets_the_same_job() -> None:
    runner = JobRunner(ThingJob, name="test")
    gate = asyncio.Event()

    async def work() -> Thing:
        await gate.wait()
        return Thing(n=7)

    first = runner.submit(work, key="same")
    assert runner.submit(work, key="same") is first
    other = runner.submit(work, key="other")
    assert other is not first
    await asyncio.sleep(0)
    assert runner.view(first).status is JobStatus.RUNNING
    gate.set()
    await asyncio.wait_for(first.done.wait(), 5)
    view = runner.view(first)
    assert (view.status, view.result, view.problem) == (JobStatus.SUCCEEDED, Thing(n=7), None)
    assert view.location == f"/jobs/{first.id}"
    assert runner.submit(work, key="same") is not first  # finished: a new request, a new job


async def test_failures_become_problems_and_one_at_a_time_queues() -> None:
    runner = JobRunner(ThingJob, name="test", concurrency=1)
    release = asyncio.Event()

    async def slow() -> Thing:
        await release.wait()
        raise JobFailed(409, "refused: no rows", Thing(n=1))

    async def broken() -> Thing:
        raise ValueError("a bug")

    async def unavailable() -> Thing:
        raise HTTPException(503, "lake unreachable")

    refused, bug, down = runner.submit(slow), runner.submit(broken), runner.submit(unavailable)
    await asyncio.sleep(0.01)
    assert [runner.view(j).status for j in (refused, bug, down)] == [
        JobStatus.RUNNING,
        JobStatus.QUEUED,
        JobStatus.QUEUED,
    ]
    release.set()
    await asyncio.wait_for(down.done.wait(), 5)
    views = [runner.view(j) for j in (refused, bug, down)]
    assert all(v.status is JobStatus.FAILED for v in views)
    problems = [v.problem for v in views]
    assert [(p.status, p.detail) for p in problems if p] == [
        (409, "refused: no rows"),
        (500, "internal error: ValueError: a bug"),
        (503, "lake unreachable"),
    ]
    assert views[0].result == Thing(n=1)
    assert problems[0] is not None
    assert problems[0].instance == f"/jobs/{refused.id}"


async def test_cancel_all_fails_unfinished_jobs() -> None:
    runner = JobRunner(ThingJob, name="test")

    async def forever() -> Thing:
        await asyncio.Event().wait()
        raise AssertionError

    job = runner.submit(forever)
    await asyncio.sleep(0)
    await runner.cancel_all()
    problem = runner.view(job).problem
    assert problem is not None
    assert problem.status == 503
    assert "stopped" in problem.detail


def test_prefer_respond_async_is_recognised() -> None:
    assert wants_async("respond-async")
    assert wants_async("wait=10, Respond-Async")
    assert not wants_async(None)
    assert not wants_async("return=minimal")


def service(script: list[httpx.Response], seen: list[httpx.Request]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return script.pop(0)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://svc/p")


def job(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "j1", "status": status, "location": "/jobs/j1", **extra}


async def test_submit_follows_the_location_to_the_result() -> None:
    seen: list[httpx.Request] = []
    script = [
        httpx.Response(202, json=job("queued"), headers={"Location": "jobs/j1"}),
        httpx.Response(503, json={"detail": "starting"}),
        httpx.Response(200, json=job("running")),
        httpx.Response(200, json=job("succeeded", result={"n": 3})),
    ]
    async with service(script, seen) as http:
        answer = await submit(
            "http://svc/p/work", json={"a": 1}, headers={}, timeout_s=10, client=http
        )
    assert (answer.status_code, answer.json()) == (201, {"n": 3})
    assert seen[0].headers["Prefer"] == "respond-async"
    assert [str(r.url) for r in seen[1:]] == ["http://svc/p/jobs/j1"] * 3


async def test_submit_answers_a_failed_job_as_its_problem_and_takes_an_old_201() -> None:
    problem = {"title": "Conflict", "status": 409, "detail": "refused: gate failed"}
    seen: list[httpx.Request] = []
    script = [
        httpx.Response(202, json=job("running"), headers={"Location": "/p/jobs/j1"}),
        httpx.Response(200, json=job("failed", problem=problem)),
        httpx.Response(201, json={"n": 1}),  # an older service: the result at once
    ]
    async with service(script, seen) as http:
        failed = await submit("http://svc/p/w", json={}, headers={}, timeout_s=10, client=http)
        old = await submit("http://svc/p/w", json={}, headers={}, timeout_s=10, client=http)
    assert failed.status_code == 409
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["detail"] == "refused: gate failed"
    with pytest.raises(httpx.HTTPStatusError):
        failed.raise_for_status()
    assert (old.status_code, old.json()) == (201, {"n": 1})


async def test_submit_reports_a_lost_job_and_a_deadline() -> None:
    seen: list[httpx.Request] = []
    lost = [
        httpx.Response(202, json=job("running"), headers={"Location": "/jobs/j1"}),
        httpx.Response(404, json={"detail": "no job"}),
    ]
    async with service(lost, seen) as http:
        with pytest.raises(JobLost, match="restarted"):
            await submit("http://svc/w", json={}, headers={}, timeout_s=10, client=http)
    slow = [httpx.Response(202, json=job("running"), headers={"Location": "/jobs/j1"})]
    slow += [httpx.Response(200, json=job("running")) for _ in range(50)]
    async with service(slow, seen) as http:
        with pytest.raises(JobTimeout, match="not finished after 1s"):
            await submit("http://svc/w", json={}, headers={}, timeout_s=1, client=http)
