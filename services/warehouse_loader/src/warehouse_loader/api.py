"""HTTP routes: start a load (token), read the load history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime

from iotpipe.jobs import JOBS_TAG, JobFailed, JobRunner, JobView, Prefer, answer, long_work
from iotpipe.pagination import Page, PageQuery, encode_cursor, paginate
from iotpipe.service import Authorized, problems
from iotpipe.windows import window_of
from warehouse_loader.history import LoadRecord, LoadStatus
from warehouse_loader.loads import (
    GateUnavailable,
    LoadedWindow,
    LoadFailed,
    LoadRefused,
    LoadRequest,
    LoadService,
)

router = APIRouter(tags=["loads"])
T = TypeVar("T")


def _service(request: Request) -> LoadService:
    service: LoadService = request.app.state.loads
    return service


Service = Annotated[LoadService, Depends(_service)]


TAGS = [
    {
        "name": "loads",
        "description": "Loads of Gold windows into the warehouse (token) and their history.",
    },
    JOBS_TAG,
]


class LoadJob(JobView[LoadRecord]):
    """A load started by ``POST /loads``: its ``result`` is the load record (as
    ``GET /loads/{id}``), also when the load was refused or rolled back."""


UNAVAILABLE: dict[int | str, dict[str, Any]] = problems(**{"503": "The warehouse is not reachable"})


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"the warehouse is not available: {type(exc).__name__}: {exc}",
    )


async def _read(service: LoadService, call: Callable[[], T]) -> T:
    """Run a history read in a worker thread; a warehouse outage is a 503, not a 500."""
    try:
        return await asyncio.to_thread(call)
    except service.warehouse.dialect.errors as exc:
        raise _unavailable(exc) from None


@router.post(
    "/loads",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LoadJob,
    summary="Load Gold for a window into the warehouse (a job; delete-then-insert, one "
    "transaction)",
    description="With `Prefer: respond-async`: `202`, `Location: /jobs/{id}` and the job: "
    "`running`, then `succeeded` with the load record as its `result`, or `failed` with its "
    "`problem` (the status says which: 409 refused, 503 gate or warehouse unreachable, 500 "
    "rolled back) and, when the load was recorded, its record. The same request while its "
    "job has not finished gets that job. Without the header (deprecated, one release): the "
    "record with `201` once the load is done, or the problem.",
    responses={
        **long_work(LoadRecord),
        **problems(
            **{
                "409": "Refused: the Gold gate did not pass, or Gold has no rows for the window",
                "503": "The quality gate or the warehouse could not be reached; try again later",
                "500": "The load failed and was rolled back; the window's contents are unchanged",
            }
        ),
    },
)
async def create_load(
    body: LoadRequest,
    service: Service,
    request: Request,
    response: Response,
    _: Authorized,
    prefer: Prefer = None,
) -> Any:
    too_long = body.too_long(service.settings.max_window_days)
    if too_long:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, too_long)
    runner: JobRunner[LoadRecord] = request.app.state.jobs
    key = (body.window, body.override_gate, body.override_reason)
    job = runner.submit(lambda: _load(service, body), key=key)
    return await answer(runner, job, prefer, response)


async def _load(service: LoadService, body: LoadRequest) -> LoadRecord:
    """The load; its refusals and failures as the problems the API answers."""
    try:
        return await service.load(body)
    except GateUnavailable as exc:
        raise JobFailed(503, f"load {exc.record.id} refused: {exc}", exc.record) from None
    except LoadRefused as exc:
        raise JobFailed(409, f"load {exc.record.id} refused: {exc}", exc.record) from None
    except LoadFailed as exc:
        raise JobFailed(500, f"load {exc.record.id} failed: {exc}", exc.record) from None
    except service.warehouse.dialect.errors as exc:  # the load history could not be written
        raise _unavailable(exc) from None


@router.get(
    "/loads",
    summary="The load history, newest first (a page)",
    responses={**problems(**{"400": "The cursor is not one this service issued"}), **UNAVAILABLE},
)
async def list_loads(
    service: Service,
    page: PageQuery,
    status: Annotated[LoadStatus | None, Query(description="Only loads with this status")] = None,
) -> Page[LoadRecord]:
    after = page.after()
    try:
        last = (datetime.fromisoformat(str(after[0])), str(after[1])) if after else None
    except (ValueError, IndexError):
        raise HTTPException(400, "cursor: not one of this list") from None
    records = await _read(
        service,
        lambda: service.history.list(limit=page.limit + 1, status=status, after=last),
    )
    chosen, more = records[: page.limit], len(records) > page.limit
    return Page(
        items=chosen,
        next_cursor=encode_cursor((chosen[-1].requested_at.isoformat(), chosen[-1].id))
        if more
        else None,
        has_more=more,
    )


@router.get(
    "/loaded-windows",
    summary="Loaded windows and whether Gold changed since their load (what to reload; a page)",
    responses={**problems(**{"400": "The cursor is not one this service issued"}), **UNAVAILABLE},
)
async def loaded_windows(
    service: Service,
    page: PageQuery,
    window_start: Annotated[AwareDatetime, Query(description="Windows starting at or after")],
    window_end: Annotated[AwareDatetime, Query(description="... and before this")],
) -> Page[LoadedWindow]:
    try:
        window = window_of(window_start, window_end)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    found = await _read(service, lambda: service.loaded_windows(window.start, window.end))
    return paginate(found, page, key=lambda w: (w.window_start.isoformat(), w.load_id))


@router.get(
    "/loads/{load_id}",
    summary="One load",
    responses={**problems(**{"404": "No load has this id"}), **UNAVAILABLE},
)
async def get_load(load_id: str, service: Service) -> LoadRecord:
    record = await _read(service, lambda: service.history.get(load_id))
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no load has the id {load_id!r}")
    return record
