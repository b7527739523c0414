"""Replaying dead letters: select, fix (merge patch), validate against the contract, send,
and record in the ledger so that each message is replayed once.

A replay is a :class:`Job`. Small ones run inline; large ones run in the background and
report progress. Non dry-run jobs run one at a time (a lock), so two identical requests
cannot both pass the ledger check: the second finds the first one's ledger entries.

Each chunk is one Kafka transaction: its events on ``sensor-events`` and their ledger
records commit together or not at all. Every consumer of the pipeline reads committed
records only (the stream too), so a chunk whose sending fails, or is cancelled, or whose
ledger write fails, is aborted and seen by no one; its messages are not in the ledger and a
retry sends them once. This process applies a chunk's ledger entries only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord

from dlq_inspector import metrics
from dlq_inspector.index import DlqIndex, Entry, parse_message_id
from dlq_inspector.kafka_io import BatchSender, read_offsets
from dlq_inspector.ledger import LedgerEntry, ReplayLedger
from dlq_inspector.models import (
    JobStatus,
    MessageResult,
    Outcome,
    Replayed,
    ReplayJob,
    ReplayRequest,
    Target,
)
from dlq_inspector.patch import merge_patch
from dlq_inspector.tail import TopicTail
from iotpipe import dlq
from iotpipe.contract import (
    DEFAULT_TIME_BOUNDS,
    ContractViolation,
    ErrorType,
    EventTimeBounds,
    SensorEvent,
    event_from_document,
    now_utc,
    parse_event,
)
from iotpipe.dlq import HEADER_REPLAY_ID, HEADER_REPLAY_OF
from iotpipe.settings import KafkaSettings

log = logging.getLogger(__name__)


def validated(
    raw: bytes,
    patch: dict[str, Any] | None,
    bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS,
) -> tuple[SensorEvent, bytes]:
    """The event and the exact bytes to send: the original, or the original with a merge
    patch applied, validated against the contract as if it arrived now, as it is about to
    (raises :class:`ContractViolation`)."""
    if not patch:
        return parse_event(raw, now_utc(), bounds), raw
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ContractViolation(
            ErrorType.MALFORMED_JSON,
            "the original bytes are not JSON, so a merge patch cannot be applied",
        ) from None
    if not isinstance(document, dict):
        raise ContractViolation(
            ErrorType.SCHEMA_MISMATCH,
            f"the original is a JSON {type(document).__name__}, not an object; "
            "a merge patch cannot fix it",
        )
    fixed = merge_patch(document, patch)
    try:
        value = orjson.dumps(fixed)  # the bytes sent encode exactly the document validated
    except orjson.JSONEncodeError as exc:
        raise ContractViolation(ErrorType.SCHEMA_MISMATCH, f"the patched event: {exc}") from None
    return event_from_document(fixed, now_utc(), bounds), value


_SUCCESSES = (Outcome.REPLAYED, Outcome.WOULD_REPLAY)


@dataclass(slots=True)
class Ready:
    """A message that passed validation: what is sent is exactly the bytes validated."""

    entry: Entry
    key: str
    """The source key (ledger key)."""
    event: SensorEvent
    value: bytes
    patched: bool


_GC_YOUNG_THRESHOLD = 100_000
"""Allocations between young-generation collections during jobs (CPython's default: 700)."""
_jobs_running = 0
_thresholds = gc.get_threshold()


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep the cyclic GC off the long-lived heap (the index, the ledger) while jobs run.

    A replay allocates fast; each GC pass would otherwise walk every indexed message again
    (measured: ~35% of a large replay's time). A job freezes again after every chunk, so
    that the ledger entries it adds are not walked by every full collection either, and
    the young generation is collected every 100,000 allocations instead of every 700: a
    replay makes almost no cyclic garbage (~400 objects per 100,000 messages), and the
    frequent passes cost ~10 us per message. Frozen objects are still freed by reference
    counting; when the last job ends, the collector gets them back and its thresholds.
    """
    global _jobs_running, _thresholds
    if not _jobs_running:
        _thresholds = gc.get_threshold()
        gc.set_threshold(_GC_YOUNG_THRESHOLD, *_thresholds[1:])
    _jobs_running += 1
    gc.freeze()
    try:
        yield
    finally:
        _jobs_running -= 1
        if not _jobs_running:
            gc.set_threshold(*_thresholds)
            gc.unfreeze()


@dataclass
class Job:
    """A replay's live state (the API shows it as a :class:`ReplayJob`)."""

    request: ReplayRequest
    keep_results: int | None
    """Cap on kept per-message results (``None``: keep all)."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: JobStatus = JobStatus.PENDING
    total: int = 0
    processed: int = 0
    counts: Counter[Outcome] = field(default_factory=Counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    results: list[MessageResult] = field(default_factory=list)
    """Kept per-message results, in processing order."""
    kept_successes: int = 0
    dropped: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, result: MessageResult) -> None:
        self.counts[result.result] += 1
        self.processed += 1
        ok = result.result in _SUCCESSES
        if self.keep_results is not None and len(self.results) >= self.keep_results:
            self.dropped += 1
            if ok or not self.kept_successes:
                return
            # a refusal is worth more than a success: make room for it
            last = max(i for i, r in enumerate(self.results) if r.result in _SUCCESSES)
            del self.results[last]
            self.kept_successes -= 1
        self.results.append(result)
        self.kept_successes += ok

    def room(self) -> int | None:
        """How many more results can be kept (``None``: no cap)."""
        if self.keep_results is None:
            return None
        return max(0, self.keep_results - len(self.results))

    def count_unkept(self, outcome: Outcome, count: int) -> None:
        self.counts[outcome] += count
        self.processed += count
        self.dropped += count

    def view(self, *, results: bool = True) -> ReplayJob:
        duration = None
        if self.started_at is not None:
            end = self.finished_at or datetime.now(UTC)
            duration = round((end - self.started_at).total_seconds(), 3)
        return ReplayJob(
            id=self.id,
            status=self.status,
            dry_run=self.request.dry_run,
            force=self.request.force,
            total=self.total,
            processed=self.processed,
            counts={outcome: self.counts[outcome] for outcome in Outcome},
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            duration_s=duration,
            error=self.error,
            results=list(self.results) if results else [],
            results_truncated=self.dropped > 0,
        )


class JobRegistry:
    """Running jobs and the most recent finished ones (in memory; the ledger is durable)."""

    def __init__(self, keep: int) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._keep = keep
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, job: Job) -> None:
        self._jobs[job.id] = job
        finished = [j.id for j in self._jobs.values() if j.done.is_set()]
        for job_id in finished[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[job_id]

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def recent(self) -> list[Job]:
        return list(reversed(self._jobs.values()))

    def spawn(self, job: Job, work: Any) -> None:
        task = asyncio.create_task(work, name=f"replay-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Replayer:
    """Runs replay jobs against Kafka, with the DLQ index and the ledger as its view.

    A job is a pipeline over chunks of DLQ records: while one chunk is being sent and
    recorded, the next is read back and validated (at most ``in_flight`` chunks are in
    the air), so that this process and the broker work at the same time.
    """

    def __init__(
        self,
        kafka_settings: KafkaSettings,
        index: DlqIndex,
        ledger: ReplayLedger,
        producer: AIOKafkaProducer,
        *,
        ledger_topic: str,
        ledger_tail: TopicTail,
        chunk: int = 2_000,
        in_flight: int = 4,
        time_bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS,
    ) -> None:
        self._kafka = kafka_settings
        self._index = index
        self._ledger = ledger
        self._ledger_tail = ledger_tail
        self._producer = producer
        self._events = BatchSender(producer, kafka_settings.events_topic)
        self._ledger_out = BatchSender(producer, ledger_topic)
        self._transaction = asyncio.Lock()
        """A producer has one transaction at a time: chunks take turns (the next one is read
        and validated meanwhile)."""
        self._chunk = chunk
        self._in_flight = in_flight
        self._time_bounds = time_bounds
        self._lock = asyncio.Lock()

    def select(self, request: ReplayRequest) -> tuple[list[Entry], list[str]]:
        """The indexed messages a request selects, and the requested ids not in the DLQ."""
        if request.filter is not None:
            return self._index.select(request.filter.to_filter(), self._ledger.__contains__), []
        found: dict[str, Entry] = {}
        missing: list[str] = []
        for text in dict.fromkeys(request.ids or []):
            entry = self._index.get(*parse_message_id(text))
            if entry is None:
                missing.append(text)
            else:
                found[text] = entry
        return list(found.values()), missing

    async def run(self, job: Job, selected: list[Entry], missing: list[str]) -> None:
        """Carry out a job; its state says how it went (it does not raise)."""
        request = job.request
        started = time.perf_counter()
        try:
            with _frozen_heap():
                if request.dry_run:
                    await self._run(job, selected, missing)
                else:
                    async with self._lock:
                        await self._run(job, selected, missing)
            job.status = JobStatus.SUCCEEDED
        except Exception as exc:
            log.exception("replay %s failed", job.id)
            job.status = JobStatus.FAILED
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = datetime.now(UTC)
            job.done.set()
            metrics.REPLAY_DURATION.labels(str(request.dry_run).lower()).observe(
                time.perf_counter() - started
            )
            if not request.dry_run:
                for outcome, count in job.counts.items():
                    metrics.REPLAYS.labels(outcome.value).inc(count)
            log.info(
                "replay %s %s: %s",
                job.id,
                job.status.value,
                dict(job.counts),
                extra={"job": job.id},
            )

    async def _run(self, job: Job, selected: list[Entry], missing: list[str]) -> None:
        job.status = JobStatus.RUNNING
        job.started_at = datetime.now(UTC)
        job.total = len(selected) + len(missing)
        for text in missing:
            job.add(MessageResult(id=text, result=Outcome.NOT_FOUND, reason="no such DLQ message"))
        entries = {(e.partition, e.offset): e for e in selected}
        wanted: dict[int, list[int]] = {}
        for entry in selected:
            wanted.setdefault(entry.partition, []).append(entry.offset)
        for offsets in wanted.values():
            offsets.sort()
        seen: set[str] = set()
        sending: deque[asyncio.Task[None]] = deque()
        try:
            async for records in read_offsets(
                self._kafka, self._kafka.dlq_topic, wanted, max_records=self._chunk
            ):
                ready: list[Ready] = []
                for record in records:
                    entry = entries.pop((record.partition, record.offset))
                    outcome = self._check(job, entry, record, seen)
                    if isinstance(outcome, MessageResult):
                        job.add(outcome)
                    else:
                        ready.append(outcome)
                if ready:
                    sending.append(asyncio.create_task(self._send(job, ready)))
                gc.freeze()  # what the job keeps (the ledger's new entries) joins the frozen heap
                while len(sending) >= self._in_flight or (sending and sending[0].done()):
                    await sending.popleft()  # (raises what the chunk's sending raised)
                await asyncio.sleep(0)  # let the sends go out while the next chunk is checked
            while sending:
                await sending.popleft()
        finally:
            for task in sending:
                task.cancel()
            await asyncio.gather(*sending, return_exceptions=True)
        for entry in entries.values():  # indexed, but deleted by retention meanwhile
            job.add(
                MessageResult(
                    id=entry.id, result=Outcome.NOT_FOUND, reason="no longer in the DLQ topic"
                )
            )

    def _check(
        self, job: Job, entry: Entry, record: ConsumerRecord[bytes, bytes], seen: set[str]
    ) -> MessageResult | Ready:
        """A message's fate before sending: skipped, refused, would-replay, or ready to send."""
        request = job.request
        key = entry.source_key
        previous = self._ledger.get(key)
        if previous is not None and not request.force:
            done = Replayed.of(previous)
            return MessageResult(
                id=entry.id,
                result=Outcome.ALREADY_REPLAYED,
                reason=f"replayed by {done.replay_id} at {done.replayed_at.isoformat()} to "
                f"{done.topic}:{done.partition}:{done.offset}; send force=true to replay again",
            )
        if key in seen:
            return MessageResult(
                id=entry.id,
                result=Outcome.ALREADY_REPLAYED,
                reason=f"another DLQ message of the same source record ({key}) is in this replay",
            )
        seen.add(key)
        size = dict(record.headers or ()).get(dlq.HEADER_SOURCE_SIZE)
        if size is not None:
            return MessageResult(
                id=entry.id,
                result=Outcome.REFUSED,
                reason=f"the dead letter keeps only the first {len(record.value or b'')} of the "
                f"source record's {size.decode(errors='replace')} bytes; the whole is at "
                f"{entry.source_topic}:{entry.source_partition}:{entry.source_offset} while "
                "that topic retains it",
                error_type=entry.error_type,
            )
        patch = request.patch
        if request.patches:
            extra = request.patches.get(entry.id)
            if extra is not None:
                patch = merge_patch(patch or {}, extra)
        try:
            event, value = validated(record.value or b"", patch, self._time_bounds)
        except ContractViolation as violation:
            return MessageResult(
                id=entry.id,
                result=Outcome.REFUSED,
                reason=violation.detail,
                error_type=violation.error_type,
            )
        if request.dry_run:
            return MessageResult(
                id=entry.id, result=Outcome.WOULD_REPLAY, event=event.model_dump(mode="json")
            )
        return Ready(entry, key, event, value, bool(patch))

    async def _send(self, job: Job, ready: list[Ready]) -> None:
        """Send validated messages and their ledger records in one transaction, then apply
        the ledger records here."""
        async with self._transaction, self._ledger_tail.holding():
            await self._producer.begin_transaction()
            try:
                ledger_entries = await self._send_events(job, ready)
                placed = await self._send_ledger(ready, ledger_entries)
                await self._producer.commit_transaction()
            except BaseException:
                # Cancelled or failed: nothing of the chunk becomes visible (read_committed).
                await asyncio.shield(self._abort())
                raise
            self._apply(ready, ledger_entries, placed)
        room = job.room()
        kept = len(ready) if room is None else min(room, len(ready))
        for r, ledger_entry in zip(ready[:kept], ledger_entries, strict=False):
            job.add(
                MessageResult(
                    id=r.entry.id,
                    result=Outcome.REPLAYED,
                    event=r.event.model_dump(mode="json"),
                    target=Target(
                        topic=ledger_entry.target_topic,
                        partition=ledger_entry.target_partition,
                        offset=ledger_entry.target_offset,
                    ),
                )
            )
        job.count_unkept(Outcome.REPLAYED, len(ready) - kept)

    async def _send_events(self, job: Job, ready: list[Ready]) -> list[LedgerEntry]:
        """Send the chunk's events (in the open transaction); their ledger entries."""
        replay_id = (HEADER_REPLAY_ID, job.id.encode())
        placed = await self._events.send(
            [
                (
                    r.event.sensor_id.encode(),
                    r.value,
                    [replay_id, (HEADER_REPLAY_OF, r.key.encode())],
                )
                for r in ready
            ]
        )
        now_ms = int(time.time() * 1000)
        topic = self._events.topic
        return [
            LedgerEntry(
                job.id,
                now_ms,
                topic,
                partition,
                offset,
                r.entry.partition,
                r.entry.offset,
                r.patched,
            )
            for r, (partition, offset) in zip(ready, placed, strict=True)
        ]

    async def _send_ledger(
        self, ready: list[Ready], entries: list[LedgerEntry]
    ) -> list[tuple[int, int]]:
        """Send the ledger records (in the open transaction); where they were placed."""
        return await self._ledger_out.send(
            [(r.key.encode(), e.to_json(), []) for r, e in zip(ready, entries, strict=True)]
        )

    async def _abort(self) -> None:
        try:
            await self._producer.abort_transaction()
        except Exception:  # the broker decides: an open transaction times out and aborts
            log.exception("could not abort the replay transaction")

    def _apply(
        self, ready: list[Ready], entries: list[LedgerEntry], placed: list[tuple[int, int]]
    ) -> None:
        """Apply a committed chunk's ledger records here at their offsets; the ledger's tail
        skips them rather than reading them back."""
        for r, entry, (_, offset) in zip(ready, entries, placed, strict=True):
            self._ledger.record(r.key, entry, offset)
        # The commit marker takes the next offset of each partition the transaction wrote.
        ends: dict[int, int] = {}
        for partition, offset in placed:
            ends[partition] = max(offset, ends.get(partition, -1))
        self._ledger_tail.skip([*placed, *((p, end + 1) for p, end in ends.items())])
