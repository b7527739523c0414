"""The control API: start, watch, change and stop runs; replay CSV files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from pydantic import ValidationError

from iotpipe.contract import SENSOR_TYPES
from iotpipe.kafka import ping
from iotpipe.pagination import Page, PageQuery, paginate
from iotpipe.service import Authorized, create_app, problems
from sensor_simulator import __version__
from sensor_simulator.config import RunConfig, RunUpdate, SimulatorSettings
from sensor_simulator.replay import ReplayError, rows_from_bytes, rows_from_path
from sensor_simulator.runs import (
    ProducerFactory,
    Run,
    RunManager,
    RunStatus,
    TopicNotFound,
    default_producer,
)

MULTIPART_FRAMING = 64 * 1024
"""What a CSV upload's request may carry beyond the file: boundaries, part headers, fields."""

DESCRIPTION = f"""
Produces synthetic sensor readings ({", ".join(t.value for t in SENSOR_TYPES)}) to Kafka,
with counted injections (anomalies, malformed records, late events, sensor dropout),
or replays a CSV file. Mutating endpoints need `Authorization: Bearer <SIMULATOR_API_TOKEN>`.
Injected records carry the Kafka header `iotpipe-injected`.
"""

router = APIRouter()

TAGS = [
    {
        "name": "runs",
        "description": "Synthetic runs: start (token), watch, change the rate of, stop.",
    },
    {"name": "replays", "description": "Replay a CSV file to Kafka as a run (token)."},
]
NOT_FOUND = problems(**{"404": "No such run"})
KAFKA_DOWN = problems(**{"503": "Kafka is not reachable"})


def _manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.runs
    return manager


def _settings(request: Request) -> SimulatorSettings:
    settings: SimulatorSettings = request.app.state.settings
    return settings


Manager = Annotated[RunManager, Depends(_manager)]
Settings = Annotated[SimulatorSettings, Depends(_settings)]


def _invalid(message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=message)


def _check_rate(rate: float | None, settings: SimulatorSettings) -> None:
    if rate is None:
        raise _invalid("rate: a target rate (events/s) is required")
    if rate > settings.max_rate:
        raise _invalid(
            f"rate: {rate:g} events/s is above the configured maximum of "
            f"{settings.max_rate:g} (SIMULATOR_MAX_RATE)"
        )


def _run(manager: RunManager, run_id: str) -> Run:
    try:
        return manager.get(run_id)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no run {run_id!r}") from None


async def _start(starting: Awaitable[Run]) -> RunStatus:
    """Await a run's start, mapping Kafka trouble onto clear 422/503 errors."""
    try:
        run = await starting
    except TopicNotFound as exc:
        raise _invalid(f"topic: {exc}") from None
    except (KafkaError, OSError) as exc:
        raise HTTPException(
            status_code=503, detail=f"Kafka is not reachable: {type(exc).__name__}: {exc}"
        ) from None
    return run.status()


@router.post(
    "/runs", status_code=201, tags=["runs"], summary="Start a synthetic run", responses=KAFKA_DOWN
)
async def create_run(
    config: RunConfig, _: Authorized, manager: Manager, settings: Settings
) -> RunStatus:
    _check_rate(config.rate, settings)
    return await _start(manager.start_synthetic(config))


@router.get("/runs", tags=["runs"], summary="The runs of this process, newest last (a page)")
async def list_runs(manager: Manager, page: PageQuery) -> Page[RunStatus]:
    return paginate(manager.statuses(), page, key=lambda r: (r.created_at.timestamp(), r.id))


@router.get(
    "/runs/{run_id}",
    tags=["runs"],
    summary="A run: config, live counters, achieved rate",
    responses=NOT_FOUND,
)
async def get_run(run_id: str, manager: Manager) -> RunStatus:
    return _run(manager, run_id).status()


@router.patch(
    "/runs/{run_id}",
    tags=["runs"],
    summary="Change a live run's rate or anomaly rate",
    responses={**NOT_FOUND, **problems(**{"409": "The run has ended"})},
)
async def update_run(
    run_id: str, change: RunUpdate, _: Authorized, manager: Manager, settings: Settings
) -> RunStatus:
    run = _run(manager, run_id)
    if not run.active:
        raise HTTPException(status_code=409, detail=f"run {run_id} is {run.state.value}")
    if run.config is None:
        raise _invalid("a replay cannot be changed (its pace is its speed); stop it, start another")
    if change.rate is not None:
        _check_rate(change.rate, settings)
    try:
        manager.update(run, change)
    except ValidationError as exc:
        raise _invalid("; ".join(e["msg"] for e in exc.errors(include_url=False))) from None
    return run.status()


@router.post(
    "/runs/{run_id}/stop",
    tags=["runs"],
    summary="Stop a run; returns once everything is flushed",
    responses=NOT_FOUND,
)
async def stop_run(run_id: str, _: Authorized, manager: Manager) -> RunStatus:
    run = _run(manager, run_id)
    await run.stop()
    return run.status()


@router.post(
    "/replays",
    status_code=201,
    tags=["replays"],
    summary="Replay a CSV file (upload it, or name a path)",
    responses=KAFKA_DOWN,
)
async def create_replay(
    _: Authorized,
    manager: Manager,
    settings: Settings,
    file: Annotated[UploadFile | None, File(description="The CSV to replay.")] = None,
    path: Annotated[
        str | None, Form(description="A CSV under SIMULATOR_REPLAY_DIR, instead of an upload.")
    ] = None,
    speed: Annotated[
        float | None,
        Form(gt=0, description="Speed factor of real time (2 = twice as fast); none = ASAP."),
    ] = None,
    topic: Annotated[str | None, Form(description="Default: KAFKA_EVENTS_TOPIC.")] = None,
) -> RunStatus:
    if (file is None) == (path is None):
        raise _invalid("give either a CSV upload (file) or a path, not both or neither")
    try:
        if file is not None:
            data = await file.read(settings.max_upload_bytes + 1)
            if len(data) > settings.max_upload_bytes:
                raise HTTPException(
                    status_code=413,
                    detail=f"the upload is larger than {settings.max_upload_bytes} bytes "
                    "(SIMULATOR_MAX_UPLOAD_BYTES)",
                )
            rows, source = rows_from_bytes(data), f"upload:{file.filename or 'file'}"
        else:
            assert path is not None
            resolved, rows = rows_from_path(path, settings.replay_dir)
            source = str(resolved)
    except ReplayError as exc:
        raise _invalid(f"csv: {exc}") from None
    return await _start(manager.start_replay(rows, source=source, speed=speed, topic=topic))


def build_app(
    settings: SimulatorSettings | None = None, factory: ProducerFactory = default_producer
) -> FastAPI:
    """The service's app; ``factory`` makes each run's producer."""
    settings = settings or SimulatorSettings()  # token from env
    manager = RunManager(settings, factory)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await manager.shutdown()  # SIGTERM: every run flushes what is in flight

    async def kafka_ready() -> None:
        await ping(settings.kafka)

    app = create_app(
        name="sensor-simulator",
        settings=settings,
        description=DESCRIPTION,
        readiness={"kafka": kafka_ready},
        lifespan=lifespan,
        version=__version__,
        body_limits={"/replays": settings.max_upload_bytes + MULTIPART_FRAMING},
        tags=TAGS,
    )
    app.state.runs = manager
    app.include_router(router)
    return app
