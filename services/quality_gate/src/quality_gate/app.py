"""The HTTP API of the quality gate."""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, Response, status
from pydantic import AwareDatetime

from iotpipe.gate_client import GateVerdict, Layer
from iotpipe.jobs import JOBS_TAG, JobRunner, Prefer, answer, job_routes, long_work
from iotpipe.lakefs import filesystem
from iotpipe.pagination import Page, PageQuery, paginate
from iotpipe.service import Authorized, create_app, problems
from iotpipe.windows import END_DOC, START_DOC, Window, window_of
from quality_gate.gate import QualityGate
from quality_gate.models import RunDetail, RunJob, RunRequest, RunSummary
from quality_gate.settings import GateSettings
from quality_gate.store import RunNotFound

DESCRIPTION = """Runs Great Expectations suites on a layer's window of the lake and answers,
per layer and window, whether it may be loaded: `pass`, `fail` or `unknown` (no run yet)."""

router = APIRouter()

TAGS = [
    {"name": "runs", "description": "Validation runs: start one (token), list them, read one."},
    {
        "name": "gates",
        "description": "Verdicts: may a layer's window be loaded (`pass`, `fail`, `unknown`)?",
    },
    JOBS_TAG,
]

WindowText = Annotated[
    str,
    Path(
        description="UTC window `START--END` (ISO-8601 with Z), `YYYY-MM-DD` or `YYYY-MM-DDTHH`",
        examples=["2026-11-26T10:00:00Z--2026-11-26T11:00:00Z"],
    ),
]


def _gate(request: Request) -> QualityGate:
    gate: QualityGate = request.app.state.gate
    return gate


def _window(text: str) -> Window:
    try:
        return Window.parse(text)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.post(
    "/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunJob,
    tags=["runs"],
    summary="Validate a layer's window (a job; needs the bearer token)",
    description="With `Prefer: respond-async`: `202`, `Location: /jobs/{id}` and the job, "
    "which is `queued` (runs go one at a time), `running`, then `succeeded` with the run as "
    "its `result` or `failed` with its `problem`. The same request while its job has not "
    "finished gets that job. Without the header (deprecated, one release): the run with "
    "`201` once it is done.",
    responses={**long_work(RunDetail), **problems(**{"503": "The lake cannot be read or written"})},
)
async def create_run(
    body: RunRequest, request: Request, response: Response, _: Authorized, prefer: Prefer = None
) -> Any:
    gate = _gate(request)
    window = body.parsed_window
    longest = gate.settings.max_window
    if window.end - window.start > longest:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"window {window} spans {window.end - window.start}; one run validates at most "
            f"{longest} (QUALITY_MAX_WINDOW): run it in parts",
        )
    runner: JobRunner[RunDetail] = request.app.state.jobs
    job = runner.submit(lambda: _validate(gate, body.layer, window), key=(body.layer, window))
    return await answer(runner, job, prefer, response)


async def _validate(gate: QualityGate, layer: Layer, window: Window) -> RunDetail:
    try:
        return await gate.run(layer, window)
    except (OSError, pa.ArrowException) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"cannot read or write the lake: {exc}"
        ) from None


@router.get("/runs", tags=["runs"], summary="Runs, newest first (a page)")
async def list_runs(
    request: Request,
    page: PageQuery,
    layer: Annotated[Layer | None, Query(description="Only this layer's runs")] = None,
) -> Page[RunSummary]:
    runs = _gate(request).store.runs(layer, limit=None)
    return paginate(
        runs, page, key=lambda r: (r.finished_at.timestamp(), r.run_id), descending=True
    )


@router.get(
    "/runs/{run_id}",
    tags=["runs"],
    summary="One run with every expectation and the full GX result",
    responses=problems(**{"404": "No such run"}),
)
async def get_run(run_id: str, request: Request) -> RunDetail:
    try:
        return _gate(request).store.detail(run_id)
    except RunNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r}") from None


@router.get(
    "/gates/{layer}",
    tags=["gates"],
    summary="Verdict for a layer's window: from the latest run whose window covers it",
)
async def get_verdict(
    layer: Layer,
    request: Request,
    window_start: Annotated[AwareDatetime, Query(description=START_DOC)],
    window_end: Annotated[AwareDatetime, Query(description=END_DOC)],
) -> GateVerdict:
    try:
        window = window_of(window_start, window_end)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _gate(request).verdict(layer, window)


@router.get(
    "/gates/{layer}/{window}",
    tags=["gates"],
    deprecated=True,
    summary="Deprecated (one release): the verdict, the window as text in the path",
    description="Use `GET /gates/{layer}?window_start=&window_end=`.",
)
async def get_verdict_by_path(layer: Layer, window: WindowText, request: Request) -> GateVerdict:
    return _gate(request).verdict(layer, _window(window))


def build_app(settings: GateSettings | None = None, gate: QualityGate | None = None) -> FastAPI:
    settings = settings or GateSettings()  # api_token from the env
    gate = gate or QualityGate(settings)
    jobs = JobRunner(RunJob, name="quality-run", concurrency=1)

    async def lake_reachable() -> None:
        fs, root = filesystem(gate.lake.root)
        fs.get_file_info(root)

    app = create_app(
        name="quality-gate",
        settings=settings,
        description=DESCRIPTION,
        readiness={"lake": lake_reachable},
        start=gate.start,
        stop=jobs.cancel_all,
        tags=TAGS,
    )
    app.state.gate = gate
    app.state.jobs = jobs
    app.include_router(router)
    app.include_router(job_routes(RunJob, what="validation run"))
    return app
