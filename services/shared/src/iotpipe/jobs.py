"""Long work as a job: ``202 Accepted``, ``Location: /jobs/{id}``, a job resource to poll.

A POST whose work can take minutes (a quality gate run, a warehouse load) hands the work to
a :class:`JobRunner` and answers at once with the job: ``queued``, ``running``, then
``succeeded`` (with its ``result``) or ``failed`` (with its ``problem``: the RFC 9457
problem the request would have been answered with, e.g. a 409 refusal or a 503). The
client polls ``GET /jobs/{id}`` (:func:`job_routes`) until the job has finished::

    runner = JobRunner(RunJob, name="quality-run", concurrency=1)

    @router.post("/runs", status_code=202, response_model=RunJob, responses=long_work(RunDetail))
    async def create_run(body: RunRequest, response: Response, prefer: Prefer = None) -> Any:
        job = runner.submit(lambda: gate.run(body.layer, body.window), key=(body.layer, ...))
        return await answer(runner, job, prefer, response)

**The synchronous form, for one release.** A client asks for the job with the header
``Prefer: respond-async`` (RFC 7240), and the project's clients do. A request without it
is answered as before the jobs: when the work is done, with ``201`` and the result, or
with the job's problem. That keeps an older client (an orchestrator image from before)
working against a newer service during a rolling upgrade; both forms run the same job.

A job with a ``key`` equal to an unfinished job's is that job: a second identical request
while the first still runs (a retry after a lost connection) gets the same job.

Jobs are kept in memory (the results they produce are persisted by the services: the
gate's runs in the lake, the loads in the load history); a restart forgets them, and
polling a forgotten job gets 404 (:class:`JobLost` on the client).

The client side, :func:`submit`, POSTs with ``Prefer: respond-async`` and polls the
``Location`` until the job has finished, within one deadline, and returns what the
synchronous form would have answered, so the callers' status handling stays as it was.
It takes an older service's final ``200``/``201`` answer just as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import httpx
from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from iotpipe.service import PROBLEM_MEDIA_TYPE, Problem, accepted, problem_of, problems

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

RESPOND_ASYNC = "respond-async"
JOB_PATH = "/jobs/{id}"
JOBS_TAG = {
    "name": "jobs",
    "description": "Long work started by a POST (`202` + `Location`): poll the job until it "
    "has finished.",
}
KEEP = 1000
"""Finished jobs kept for polling (the oldest are forgotten first)."""


class JobStatus(StrEnum):
    QUEUED = "queued"
    """Waiting for its turn (a service that runs one job at a time)."""
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


class JobView(BaseModel, Generic[T]):
    """A job: what ``202`` answers and ``GET /jobs/{id}`` returns until, and after, it ends."""

    id: str
    status: JobStatus
    location: str = Field(description="This job's URL (the `Location` of the `202`).")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: T | None = Field(
        default=None,
        description="What the work produced: set when it succeeded, and on some failures "
        "(a refused or rolled-back load's record).",
    )
    problem: Problem | None = Field(
        default=None,
        description="Why it failed: the problem the synchronous form answers (its `status` "
        "is the HTTP status it stands for, e.g. 409 or 503).",
    )


class JobFailed(HTTPException):
    """Raised by a job's work: it failed with ``status_code`` and ``detail``; ``result`` is
    what it produced all the same (shown in the job)."""

    def __init__(self, status_code: int, detail: str, result: BaseModel | None = None) -> None:
        super().__init__(status_code, detail)
        self.result = result


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Job(Generic[T]):
    """A job's live state (the API shows it as the runner's :class:`JobView`)."""

    id: str
    key: Hashable | None
    location: str
    status: JobStatus = JobStatus.QUEUED
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: T | None = None
    problem: Problem | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, status_code: int, detail: str) -> None:
        self.problem = problem_of(status_code, detail, instance=self.location)
        self.status = JobStatus.FAILED


class JobRunner(Generic[T]):
    """Runs work in background tasks, ``concurrency`` at a time (``None``: no limit), and
    keeps the jobs, the unfinished ones and the :data:`KEEP` most recent finished ones."""

    def __init__(
        self,
        model: type[JobView[T]],
        *,
        name: str,
        concurrency: int | None = None,
        keep: int = KEEP,
    ) -> None:
        self.model = model
        self.name = name
        self.keep = keep
        self._slots = asyncio.Semaphore(concurrency) if concurrency else None
        self._jobs: OrderedDict[str, Job[T]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, work: Callable[[], Awaitable[T]], *, key: Hashable | None = None) -> Job[T]:
        """Start ``work`` as a job, or return the unfinished job with the same ``key``."""
        if key is not None:
            for running in self._jobs.values():
                if running.key == key and not running.done.is_set():
                    return running
        job_id = uuid.uuid4().hex
        job: Job[T] = Job(id=job_id, key=key, location=JOB_PATH.format(id=job_id))
        self._jobs[job.id] = job
        finished = [j.id for j in self._jobs.values() if j.done.is_set()]
        for old in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[old]
        task = asyncio.create_task(self._run(job, work), name=f"{self.name}-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: Job[T], work: Callable[[], Awaitable[T]]) -> None:
        try:
            async with self._slots or contextlib.nullcontext():
                job.status, job.started_at = JobStatus.RUNNING, _now()
                job.result = await work()
            job.status = JobStatus.SUCCEEDED
        except HTTPException as exc:
            job.result = getattr(exc, "result", None)
            job.fail(exc.status_code, str(exc.detail))
        except asyncio.CancelledError:
            job.fail(503, "the service stopped while the job ran; submit it again")
            raise
        except Exception as exc:
            log.exception("%s job %s failed", self.name, job.id)
            job.fail(500, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            job.finished_at = _now()
            job.done.set()
            log.info("%s job %s: %s", self.name, job.id, job.status.value)

    def get(self, job_id: str) -> Job[T] | None:
        return self._jobs.get(job_id)

    def view(self, job: Job[T]) -> JobView[T]:
        return self.model(
            id=job.id,
            status=job.status,
            location=job.location,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            result=job.result,
            problem=job.problem,
        )

    async def cancel_all(self) -> None:
        """At shutdown: cancel the unfinished jobs (each fails with a 503)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


Prefer = Annotated[
    str | None,
    Header(
        alias="Prefer",
        description="`respond-async`: answer `202` with the job at once (what clients should "
        "send). Without it the request waits for the result (deprecated, one release).",
        examples=[RESPOND_ASYNC],
    ),
]


def wants_async(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header asks for ``respond-async`` (RFC 7240)."""
    tokens = (part.split(";", 1)[0].strip().lower() for part in (prefer or "").split(","))
    return RESPOND_ASYNC in tokens


def long_work(result: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """A long-running POST's responses in OpenAPI: the ``202`` with the job and its
    ``Location``, and the deprecated synchronous ``201`` with ``result``."""
    return {
        **accepted("Accepted (`Prefer: respond-async`): the job; poll its `Location`"),
        201: {
            "model": result,
            "description": "Deprecated (one release): without `Prefer: respond-async`, the "
            "request waits and answers the result (or the job's problem).",
        },
    }


async def answer(
    runner: JobRunner[T], job: Job[T], prefer: str | None, response: Response
) -> JobView[T] | JSONResponse:
    """The POST's answer: ``202`` + ``Location`` + the job when ``prefer`` asks for it,
    else (deprecated) the result with ``201`` once the job has finished, or its problem."""
    if wants_async(prefer):
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = job.location
        response.headers["Preference-Applied"] = RESPOND_ASYNC
        return runner.view(job)
    await job.done.wait()
    if job.problem is not None:
        raise HTTPException(job.problem.status, job.problem.detail)
    return JSONResponse(jsonable_encoder(job.result), status_code=status.HTTP_201_CREATED)


def job_routes(model: type[JobView[Any]], *, what: str) -> APIRouter:
    """``GET /jobs/{job_id}`` of the app's runner (``app.state.jobs``), answering ``model``."""
    router = APIRouter(tags=[JOBS_TAG["name"]])

    @router.get(
        "/jobs/{job_id}",
        response_model=model,
        summary=f"A {what} job: its status, then its result or problem",
        responses=problems(
            **{"404": "No such job (jobs are kept in memory: a restart forgets them)"}
        ),
    )
    async def get_job(job_id: str, request: Request) -> Any:
        runner: JobRunner[Any] = request.app.state.jobs
        job = runner.get(job_id)
        if job is None:
            raise HTTPException(
                404,
                f"no job {job_id!r}: jobs are kept in memory (the last {runner.keep} finished), "
                "so a restart forgets them",
            )
        return runner.view(job)

    return router


# -- the client side -----------------------------------------------------------------------


class JobError(RuntimeError):
    """A job could not be followed to its end."""


class JobTimeout(JobError):
    """The job had not finished by the deadline."""


class JobLost(JobError):
    """The service no longer knows the job (it restarted): submit the work again."""


POLL_FIRST_S = 0.25
POLL_MAX_S = 5.0
POLL_FAILURES = 5
"""Polls in a row that may fail (a transport error, a 5xx) before :func:`submit` gives up."""


async def submit(
    url: str,
    *,
    json: Any,
    headers: Mapping[str, str],
    timeout_s: float,
    client: httpx.AsyncClient | None = None,
    poll_max_s: float = POLL_MAX_S,
) -> httpx.Response:
    """POST ``json`` to ``url`` as long work and wait for its end, ``timeout_s`` in all.

    Returns what the synchronous form answers: ``201`` with the result, or the job's
    problem with its status (returned, not raised, like any response). An older service's
    final answer (``200``/``201`` or a problem) is returned as it is. The POST's transport
    errors are raised as they are; :class:`JobTimeout` past the deadline, :class:`JobLost`
    when the service forgot the job, :class:`JobError` when a poll is refused or keeps
    failing."""
    deadline = time.monotonic() + timeout_s
    http = client or httpx.AsyncClient()
    try:
        response = await http.post(
            url, json=json, headers={**headers, "Prefer": RESPOND_ASYNC}, timeout=timeout_s
        )
        if response.status_code != status.HTTP_202_ACCEPTED:
            return response
        return await _follow(http, response, deadline, timeout_s, poll_max_s)
    finally:
        if client is None:
            await http.aclose()


async def _follow(
    http: httpx.AsyncClient,
    accepted: httpx.Response,
    deadline: float,
    timeout_s: float,
    poll_max_s: float,
) -> httpx.Response:
    location = accepted.headers.get("Location")
    if not location:
        raise JobError(f"POST {accepted.url} answered 202 without a Location")
    url = accepted.url.join(location)
    view: dict[str, Any] = accepted.json()
    wait, failures = POLL_FIRST_S, 0
    while view.get("status") not in TERMINAL:
        left = deadline - time.monotonic()
        if left <= 0:
            raise JobTimeout(
                f"job {url} not finished after {timeout_s:.0f}s (still {view.get('status')})"
            )
        await asyncio.sleep(min(wait, left))
        wait = min(wait * 2, poll_max_s)
        polled = await _poll(http, url, deadline)
        if isinstance(polled, str):
            failures += 1
            if failures >= POLL_FAILURES:
                raise JobError(f"polling job {url} failed {failures} times in a row: {polled}")
            continue
        view, failures = polled, 0
    return final_answer(view, accepted.request)


async def _poll(http: httpx.AsyncClient, url: httpx.URL, deadline: float) -> dict[str, Any] | str:
    """The job's view, or why this poll failed and may be tried again."""
    try:
        polled = await http.get(url, timeout=max(1.0, min(30.0, deadline - time.monotonic())))
    except httpx.TransportError as exc:
        return f"{type(exc).__name__}: {exc}"
    if polled.status_code == status.HTTP_404_NOT_FOUND:
        raise JobLost(f"job {url} is gone (the service restarted?): submit the work again")
    if polled.status_code >= 500:
        return f"{polled.status_code} {polled.text[:200]}"
    if polled.status_code != status.HTTP_200_OK:
        raise JobError(f"polling job {url} refused: {polled.status_code} {polled.text[:200]}")
    view: dict[str, Any] = polled.json()
    return view


def final_answer(view: Mapping[str, Any], request: httpx.Request | None = None) -> httpx.Response:
    """What the synchronous form answers for a finished job ``view`` (the JSON of a
    :class:`JobView`): ``201`` with the result, or the problem with its status."""
    if view["status"] == JobStatus.SUCCEEDED:
        return httpx.Response(status.HTTP_201_CREATED, json=view.get("result"), request=request)
    problem = view.get("problem") or {"status": 500, "detail": "the job failed (no problem)"}
    return httpx.Response(
        int(problem.get("status") or 500),
        json=problem,
        headers={"Content-Type": PROBLEM_MEDIA_TYPE},
        request=request,
    )
