"""The FastAPI app: list, filter, inspect, stats, replay and replay jobs."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime
from typing import Annotated, Literal

import orjson
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, Response, status

from dlq_inspector import cursor, metrics
from dlq_inspector.index import DlqIndex, Entry, MessageFilter
from dlq_inspector.kafka_io import PointReader
from dlq_inspector.ledger import ReplayLedger
from dlq_inspector.models import (
    ErrorTypeStats,
    MessageDetail,
    MessagePage,
    MessageSummary,
    Occurrence,
    ReplayJob,
    ReplayRequest,
    Stats,
    to_datetime,
    to_ms,
)
from dlq_inspector.replay import Job, JobRegistry, Replayer
from dlq_inspector.settings import DlqSettings
from dlq_inspector.tail import NotCaughtUp, TopicTail
from iotpipe import kafka
from iotpipe.contract import ErrorType
from iotpipe.pagination import Page, PageQuery, paginate
from iotpipe.service import Authorized, ReadAuthorized, accepted, create_app, problems

NAME = "dlq-inspector"
DESCRIPTION = (
    "Inspect, explain and replay the pipeline's dead-lettered events (topic `sensor-events-dlq`)."
)


class Inspector:
    """Everything the routes need: the index, the ledger, their tails, the replayer."""

    def __init__(self, settings: DlqSettings) -> None:
        self.settings = settings
        self.index = DlqIndex(self.replayed, settings.recent_window_s)
        self.ledger = ReplayLedger(on_change=self.index.replay_changed)
        self.dlq_tail = TopicTail(
            settings.kafka,
            settings.kafka.dlq_topic,
            lambda r: self.index.add(r.partition, r.offset, r.value, r.headers),
            prune=self.index.prune,
        )
        self.ledger_tail = TopicTail(settings.kafka, settings.ledger_topic, self.ledger.apply)
        self.reader = PointReader(settings.kafka, settings.kafka.dlq_topic)
        self.producer: AIOKafkaProducer
        self.replayer: Replayer
        self.jobs = JobRegistry(settings.jobs_kept)

    async def start(self) -> None:
        if self.settings.create_topics:
            parts = self.settings.topic_partitions
            await kafka.ensure_topics(
                self.settings.kafka,
                [
                    kafka.TopicSpec(self.settings.kafka.dlq_topic, parts),
                    kafka.TopicSpec(
                        self.settings.ledger_topic,
                        1,
                        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
                    ),
                ],
            )
        # A fresh producer each attempt: a client that failed to start cannot start again.
        self.producer = kafka.producer(self.settings.kafka, **self.settings.producer_overrides())
        self.replayer = Replayer(
            self.settings.kafka,
            self.index,
            self.ledger,
            self.producer,
            ledger_topic=self.settings.ledger_topic,
            ledger_tail=self.ledger_tail,
            chunk=self.settings.replay_chunk,
            in_flight=self.settings.replay_in_flight,
            time_bounds=self.settings.contract.time_bounds,
        )
        try:
            await self.producer.start()
            await self.dlq_tail.start()
            await self.ledger_tail.start()
            await self.reader.start()
        except BaseException:
            await self.stop()  # leave no client behind
            raise
        metrics.OLDEST_UNRESOLVED_AGE.set_function(self.oldest_unresolved_age)
        metrics.UNRESOLVED.set_function(self.unresolved_count)

    async def stop(self) -> None:
        await self.jobs.cancel_all()
        await self.dlq_tail.stop()
        await self.ledger_tail.stop()
        await self.reader.stop()
        await self.producer.stop()

    async def caught_up(self) -> None:
        """Bring the index and the ledger up to date with Kafka (read-your-writes)."""
        timeout = self.settings.sync_timeout_s
        try:
            await asyncio.gather(
                self.dlq_tail.caught_up(timeout), self.ledger_tail.caught_up(timeout)
            )
        except NotCaughtUp as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None

    async def ready(self) -> None:
        """Readiness: the index and the ledger have caught up with Kafka once."""
        for tail in (self.dlq_tail, self.ledger_tail):
            if not tail.ready:
                await tail.caught_up(wait_s=2.0)

    def replayed(self, key: str) -> bool:
        return key in self.ledger

    def summary(self, entry: Entry) -> MessageSummary:
        return MessageSummary.of(entry, self.ledger.get(entry.source_key))

    def oldest_unresolved_age(self) -> float:
        entry = self.index.oldest_unresolved()
        return 0.0 if entry is None else max(0.0, time.time() - entry.dead_lettered_at_ms / 1000)

    def unresolved_count(self) -> int:
        return sum(self.index.unresolved.values())


def _occurrence(entry: Entry | None) -> Occurrence | None:
    if entry is None:
        return None
    return Occurrence(id=entry.id, dead_lettered_at=to_datetime(entry.dead_lettered_at_ms))


MAX_JSON_DEPTH = 64
"""Deeper JSON is shown as text only: a response cannot carry arbitrarily deep documents
(and an event is flat)."""


def _depth(document: object) -> int:
    deepest, todo = 0, [(document, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                todo.extend((child, depth + 1) for child in _children(node))
    return deepest


def _children(node: dict[str, object] | list[object]) -> list[object]:
    return list(node.values()) if isinstance(node, dict) else node


def _decoded(value: bytes) -> tuple[str | None, object | None]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None, None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return text, None
    return text, (document if _depth(document) <= MAX_JSON_DEPTH else None)


router = APIRouter(prefix="/dlq")

TAGS = [
    {"name": "messages", "description": "Dead letters: list and filter them, read one, stats."},
    {
        "name": "replays",
        "description": "Replay dead letters to the events topic (token); replay jobs' progress.",
    },
]


def inspector_of(request: Request) -> Inspector:
    inspector: Inspector = request.app.state.inspector
    return inspector


@router.get(
    "/messages",
    tags=["messages"],
    summary="List dead letters (filtered, cursor-paginated)",
    responses=problems(**{"400": "The cursor is not one this service issued"}),
)
async def list_messages(
    request: Request,
    error_type: Annotated[list[ErrorType] | None, Query(description="Any of these.")] = None,
    sensor_id: Annotated[str | None, Query(max_length=128)] = None,
    window_start: Annotated[
        datetime | None, Query(description="Dead-lettered at or after (ISO-8601 with a zone).")
    ] = None,
    window_end: Annotated[
        datetime | None, Query(description="Dead-lettered before (ISO-8601 with a zone).")
    ] = None,
    since: Annotated[
        datetime | None,
        Query(deprecated=True, description="Deprecated (one release): `window_start`."),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(deprecated=True, description="Deprecated (one release): `window_end`."),
    ] = None,
    replayed: Annotated[
        bool | None, Query(description="Only replayed (true) or unresolved (false).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    cursor_: Annotated[
        str | None, Query(alias="cursor", description="`next_cursor` of the previous page.")
    ] = None,
) -> MessagePage:
    inspector = inspector_of(request)
    if limit > inspector.settings.max_page_size:
        raise HTTPException(422, f"limit: at most {inspector.settings.max_page_size} per page")
    since, until = window_start or since, window_end or until
    for name, moment in (("window_start", since), ("window_end", until)):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(422, f"{name}: give a time zone (e.g. 2026-01-01T00:00:00Z)")
    try:
        positions = cursor.decode(cursor_) if cursor_ else {}
    except cursor.InvalidCursor as exc:
        raise HTTPException(400, f"cursor: {exc}") from None
    await inspector.caught_up()
    flt = MessageFilter(
        error_types=frozenset(error_type or ()),
        sensor_id=sensor_id,
        since_ms=to_ms(since),
        until_ms=to_ms(until),
        replayed=replayed,
    )
    page = inspector.index.page(flt, positions, limit, inspector.replayed)
    return MessagePage(
        items=[inspector.summary(e) for e in page.entries],
        next_cursor=cursor.encode(page.positions),
        has_more=page.has_more,
    )


@router.get(
    "/messages/{partition}/{offset}",
    tags=["messages"],
    summary="One dead letter: bytes, decoded text, error and source",
    responses=problems(**{"404": "No such DLQ message"}),
)
async def get_message(
    request: Request,
    partition: Annotated[int, Path(ge=0)],
    offset: Annotated[int, Path(ge=0)],
    _: ReadAuthorized,
) -> MessageDetail:
    inspector = inspector_of(request)
    await inspector.caught_up()
    entry = inspector.index.get(partition, offset)
    if entry is None:
        raise HTTPException(404, f"no DLQ message at partition {partition}, offset {offset}")
    record = await inspector.reader.read(partition, offset)
    if record is None:
        raise HTTPException(404, f"DLQ message {entry.id} is no longer in the topic (retention)")
    value = record.value or b""
    text, document = _decoded(value)
    return MessageDetail(
        **inspector.summary(entry).model_dump(),
        value_base64=base64.b64encode(value).decode(),
        value_text=text,
        value_json=document,
        headers={name: raw.decode("utf-8", errors="replace") for name, raw in record.headers},
    )


@router.get(
    "/stats", tags=["messages"], summary="Counts by error type, oldest and newest, recent rate"
)
async def stats(request: Request) -> Stats:
    inspector = inspector_of(request)
    await inspector.caught_up()
    window = inspector.settings.recent_window_s
    index = inspector.index  # its tallies: no scan, however large the DLQ
    total, unresolved = index.counts, index.unresolved
    recent = index.recent()
    return Stats(
        total=total.total(),
        unresolved=unresolved.total(),
        replayed=total.total() - unresolved.total(),
        unreadable=index.unreadable,
        by_error_type={
            t: ErrorTypeStats(total=total[t], unresolved=unresolved[t]) for t in ErrorType
        },
        oldest=_occurrence(index.oldest()),
        newest=_occurrence(index.newest()),
        oldest_unresolved=_occurrence(index.oldest_unresolved()),
        recent_window_s=window,
        recent_count=recent,
        recent_rate_per_s=round(recent / window, 3),
    )


@router.post(
    "/replay",
    tags=["replays"],
    summary="Replay dead letters to the events topic (optionally patched)",
    responses={
        200: {"description": "Done inline: the job with a result per message"},
        **accepted("Started as a background job: poll its `Location`"),
    },
)
async def replay(
    body: ReplayRequest, request: Request, response: Response, _: Authorized
) -> ReplayJob:
    inspector = inspector_of(request)
    await inspector.caught_up()
    selected, missing = inspector.replayer.select(body)
    large = len(selected) + len(missing) > inspector.settings.sync_replay_limit
    background = large if body.background is None else body.background
    job = Job(body, keep_results=inspector.settings.results_kept if background else None)
    inspector.jobs.add(job)
    work = inspector.replayer.run(job, selected, missing)
    if not background:
        await work
        return job.view()
    inspector.jobs.spawn(job, work)
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/dlq/replays/{job.id}"
    return job.view()


@router.get(
    "/replays",
    tags=["replays"],
    summary="Recent replay jobs (newest first, without per-message results; a page)",
    responses=problems(**{"400": "The cursor is not one this service issued"}),
)
async def list_replays(
    request: Request, page: PageQuery, state: Literal["all", "running"] = "all"
) -> Page[ReplayJob]:
    jobs = inspector_of(request).jobs.recent()
    views = [job.view(results=False) for job in jobs]
    chosen = [v for v in views if state == "all" or v.status in ("pending", "running")]
    return paginate(chosen, page, key=lambda v: (v.created_at.timestamp(), v.id), descending=True)


@router.get(
    "/replays/{job_id}",
    tags=["replays"],
    summary="A replay job's progress and results",
    responses=problems(**{"404": "No such job (finished jobs are kept for a while)"}),
)
async def get_replay(
    request: Request,
    job_id: str,
    _: ReadAuthorized,
    results: Annotated[bool, Query(description="Include per-message results.")] = True,
) -> ReplayJob:
    job = inspector_of(request).jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no replay job {job_id!r} (jobs are kept in memory only)")
    return job.view(results=results)


def build_app(settings: DlqSettings) -> FastAPI:
    inspector = Inspector(settings)
    app = create_app(
        name=NAME,
        settings=settings,
        description=DESCRIPTION,
        readiness={"kafka": lambda: kafka.ping(settings.kafka), "index": inspector.ready},
        start=inspector.start,
        stop=inspector.stop,
        tags=TAGS,
    )
    app.state.inspector = inspector
    app.include_router(router)
    return app
