"""Runs: a paced (or bounded) synthetic stream, or a CSV replay, each with its own producer.

A paced run works in ticks of ``SIMULATOR_LINGER_MS``: each tick it makes the
slots that are due since the run's rate anchor (``rate x elapsed``), hands them to
:class:`~sensor_simulator.delivery.Delivery` and sends the open batches. A PATCH
re-anchors, so the new rate holds from that moment. Stopping (the API, the
CLI's Ctrl-C, SIGTERM through the service's shutdown) ends the loop and flushes:
every record made is acknowledged or counted failed before the run says stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, Field
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from iotpipe import kafka
from sensor_simulator import metrics
from sensor_simulator.config import EngineSettings, RunConfig, RunState, RunUpdate
from sensor_simulator.delivery import Delivery, Partitioner
from sensor_simulator.generator import NO_HEADERS, Block, Generator, event_id_prefix
from sensor_simulator.replay import ReplayRow, encode

log = logging.getLogger(__name__)

UNPACED_BLOCK = 4096
"""Slots per step when a run goes as fast as it can."""
MAX_BLOCK = 16_384
"""Most slots made in one step of a paced run that fell behind (keeps the API responsive)."""
RATE_WINDOW_S = 10.0
KEEP_FINISHED = 100
"""Finished runs that ``GET /runs`` still shows (the oldest go first)."""
TOPIC_WAIT_S = 5.0
"""How long a run waits for its topic's metadata before saying it does not exist."""


class TopicNotFound(LookupError):
    pass


class Counters(BaseModel):
    generated: int = Field(description="Records made and handed to the producer.")
    delivered: int = Field(description="Records acknowledged by Kafka (acks=all).")
    aborted: int = Field(
        default=0,
        description="Of those, records in transactions the run aborted (transactions."
        "abort_rate): on the topic and read by no one. Committed records = delivered - aborted.",
    )
    aborted_transactions: int = 0
    committed_transactions: int = 0
    failed: int = Field(description="Records given up on after every delivery attempt.")
    produce_errors: int = Field(description="Records in failed delivery attempts.")
    retried: int = Field(description="Records re-sent after a failed attempt.")
    anomalies: dict[str, int] = Field(description="Spikes injected, per sensor type.")
    malformed: dict[str, int] = Field(description="Malformed records injected, per kind.")
    late: int
    dropped_readings: int = Field(description="Readings skipped because the sensor was silent.")
    sensor_dropouts: int
    inflight_batches: int


class ReplayInfo(BaseModel):
    source: str
    rows: int
    speed: float | None = Field(
        description="Speed factor of real time; null = as fast as possible."
    )


class RunStatus(BaseModel):
    id: str
    kind: Literal["synthetic", "replay"]
    state: RunState
    topic: str
    config: RunConfig | None = None
    replay: ReplayInfo | None = None
    target_rate: float | None = Field(description="events/s; null = as fast as possible.")
    achieved_rate: float = Field(
        description=f"Acknowledged events/s over the last {RATE_WINDOW_S:g} s."
    )
    counters: Counters
    created_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    ground_truth: str | None = Field(default=None, description="The run's injection log (JSONL).")


ProducerFactory = Callable[[EngineSettings, str | None], AIOKafkaProducer]
"""Makes a run's producer: (settings, transactional id or None)."""


def default_producer(settings: EngineSettings, transactional_id: str | None) -> AIOKafkaProducer:
    return kafka.producer(
        settings.kafka, **settings.producer_options(transactional_id=transactional_id)
    )


class Run:
    """One run: its producer, its loop task and its counters."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        kind: Literal["synthetic", "replay"],
        topic: str,
        config: RunConfig | None = None,
        replay: ReplayInfo | None = None,
        rows: list[ReplayRow] | None = None,
    ) -> None:
        self.id = f"run-{uuid.uuid4().hex[:12]}"
        self.settings = settings
        self.kind = kind
        self.topic = topic
        self.config = config
        self.replay = replay
        self.rows = rows or []
        self.state = RunState.RUNNING
        self.rate: float | None = config.rate if config else None
        self.created_at = datetime.now(UTC)
        self.finished_at: datetime | None = None
        self.error: str | None = None
        self.generated = 0
        self.anomalies: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.late = 0
        self.dropped = 0
        self.generator: Generator | None = None
        self.producer: AIOKafkaProducer | None = None
        self.delivery: Delivery | None = None
        self.task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._samples: deque[tuple[float, int]] = deque()
        self._anchor_t = 0.0
        self._anchor_slot = 0
        self._truth: IO[bytes] | None = None
        self.truth_path: Path | None = None
        self.transactions = config.transactions if config else None
        self._abort_draw = np.random.default_rng(config.seed if config else None)
        self._in_transaction = False
        self._transaction_started = 0.0
        self._delivered_at_begin = 0
        self.aborted = 0
        self.aborted_transactions = 0
        self.committed_transactions = 0

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, factory: ProducerFactory = default_producer) -> None:
        """Connect, check the topic, and start producing in the background."""
        transactional_id = (
            f"{self.settings.transactional_id_prefix}-{self.id}" if self.transactions else None
        )
        producer = factory(self.settings, transactional_id)
        await producer.start()
        try:
            partitions = await self._partitions(producer)
        except BaseException:
            await producer.stop()
            raise
        self.producer = producer
        self.delivery = Delivery(
            producer,
            self.topic,
            len(partitions),
            # In a transaction a failed batch fails the transaction: it aborts, no re-send.
            attempts=1 if self.transactions else self.settings.delivery_attempts,
            max_inflight=self.settings.max_inflight_batches,
        )
        if self.config is not None:
            self.generator = Generator(self.config, Partitioner(len(partitions)))
            self.generator.set_rate(self.rate, int(time.time() * 1000))
        if self.settings.ground_truth_dir is not None:
            self.settings.ground_truth_dir.mkdir(parents=True, exist_ok=True)
            self.truth_path = self.settings.ground_truth_dir / f"{self.id}.jsonl"
            self._truth = self.truth_path.open("ab")
        metrics.ACTIVE_RUNS.inc()
        self._anchor()
        self.task = asyncio.get_running_loop().create_task(self._main(), name=self.id)

    async def _partitions(self, producer: AIOKafkaProducer) -> set[int]:
        """The topic's partitions; a topic created a moment ago may need a few tries."""
        retrying = AsyncRetrying(
            stop=stop_after_delay(TOPIC_WAIT_S),
            wait=wait_fixed(0.25),
            retry=retry_if_exception_type(TopicNotFound),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                metadata = await producer.client.fetch_all_metadata()
                partitions = metadata.partitions_for_topic(self.topic)
                if not partitions:
                    raise TopicNotFound(f"topic {self.topic!r} does not exist")
        return set(partitions)

    async def _main(self) -> None:
        try:
            if self.generator is not None:
                await self._synthetic(self.generator)
            else:
                await self._replay()
        except Exception as exc:
            log.exception("run %s failed", self.id)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            await self._close()

    async def _close(self) -> None:
        """Flush, disconnect, and only then say how the run ended."""
        try:
            if self.delivery is not None:
                await self.delivery.flush()
                if self._in_transaction:
                    await self._end_transaction(abort=self.error is not None)
                if self.delivery.stats.failed and self.error is None:
                    self.error = (
                        f"{self.delivery.stats.failed} records could not be delivered: "
                        f"{self.delivery.stats.last_error}"
                    )
        finally:
            if self.producer is not None:
                await self.producer.stop()
            if self._truth is not None:
                self._truth.close()
            self.rows = []  # a finished replay need not hold its file
            self._sample(force=True)
            self.finished_at = datetime.now(UTC)
            metrics.ACTIVE_RUNS.dec()
            if self.error is not None:
                self.state = RunState.FAILED
            elif self._stop.is_set():
                self.state = RunState.STOPPED
            else:
                self.state = RunState.COMPLETED

    def request_stop(self) -> None:
        if self.active:
            self.state = RunState.STOPPING
        self._stop.set()

    async def stop(self) -> None:
        """Stop producing and wait until everything made is acknowledged (or failed)."""
        self.request_stop()
        if self.task is not None:
            await asyncio.shield(self.task)

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.shield(self.task)

    @property
    def active(self) -> bool:
        return self.state in (RunState.RUNNING, RunState.STOPPING)

    def update(self, change: RunUpdate) -> None:
        """Apply a PATCH (validated by the caller against the service's limits)."""
        if change.anomaly_rate is not None and self.config is not None:
            self.config = RunConfig.model_validate(
                {**self.config.model_dump(), "anomaly_rate": change.anomaly_rate}
            )
            if self.generator is not None:
                self.generator.injections = self.config
        if change.rate is not None:
            if self.config is not None:
                self.config = self.config.model_copy(update={"rate": change.rate})
            self.rate = change.rate
            if self.generator is not None:
                self.generator.set_rate(change.rate, int(time.time() * 1000))
            self._anchor()

    # -- producing --------------------------------------------------------------------------

    def _anchor(self) -> None:
        self._anchor_t = time.monotonic()
        self._anchor_slot = self.generator.slot if self.generator else self.generated

    async def _pause(self, started: float, tick: float) -> None:
        remaining = tick - (time.monotonic() - started)
        await asyncio.sleep(remaining if self.rate is not None and remaining > 0 else 0)

    async def _synthetic(self, generator: Generator) -> None:
        assert self.config is not None
        assert self.delivery is not None
        config = self.config
        tick = self.settings.linger_ms / 1000
        deadline = time.monotonic() + config.duration_seconds if config.duration_seconds else None
        last_submit = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            if self.transactions is not None:
                await self._transaction_tick(started)
            remaining = config.max_events - self.generated if config.max_events else None
            if remaining == 0 or (deadline is not None and started >= deadline):
                break
            if self.rate is None:
                slots = UNPACED_BLOCK
            else:
                due = int((started - self._anchor_t) * self.rate)
                slots = min(due - (generator.slot - self._anchor_slot), MAX_BLOCK)
            if slots > 0:
                await self._emit(generator.block(slots, remaining))
            if started - last_submit >= tick:
                await self.delivery.submit_open()
                last_submit = started
            self._sample()
            await self._pause(started, tick)

    async def _emit(self, block: Block) -> None:
        assert self.delivery is not None
        self.generated += len(block)
        self.late += block.late
        self.dropped += block.dropped
        self.anomalies.update(block.anomalies)
        self.malformed.update(block.malformed)
        for sensor_type, n in block.anomalies.items():
            metrics.ANOMALIES_INJECTED.labels(sensor_type).inc(n)
        for kind, n in block.malformed.items():
            metrics.MALFORMED_INJECTED.labels(kind).inc(n)
        if block.late:
            metrics.LATE_INJECTED.inc(block.late)
        if block.dropped:
            metrics.DROPPED_READINGS.inc(block.dropped)
        dropouts = sum(1 for t in block.truth if t["kind"] == "dropout")
        if dropouts:
            metrics.SENSOR_DROPOUTS.inc(dropouts)
        if self._truth is not None and block.truth:
            self._truth.write(b"".join(orjson.dumps(t) + b"\n" for t in block.truth))
        await self.delivery.send_block(block)

    async def _replay(self) -> None:
        assert self.replay is not None
        assert self.delivery is not None
        speed = self.replay.speed
        rows = self.rows
        tick = self.settings.linger_ms / 1000
        prefix = event_id_prefix(np.random.default_rng())
        start = time.monotonic()
        done = 0
        while done < len(rows) and not self._stop.is_set():
            now = time.monotonic()
            end = min(len(rows), done + UNPACED_BLOCK)
            if speed is not None:
                elapsed = (now - start) * speed
                end = next((i for i in range(done, end) if rows[i].offset_s > elapsed), end)
            if end > done:
                chunk = rows[done:end]
                await self.delivery.send_records(
                    (
                        (row.key, encode(row, f"{prefix}{done + i:012x}"), NO_HEADERS, row.label)
                        for i, row in enumerate(chunk)
                    ),
                    int(time.time() * 1000),
                )
                self.generated += len(chunk)
                done = end
            await self.delivery.submit_open()
            self._sample()
            if speed is not None:
                await asyncio.sleep(tick)
            else:
                await asyncio.sleep(0)

    # -- transactions -----------------------------------------------------------------------

    async def _transaction_tick(self, now: float) -> None:
        """Open a transaction, or end the open one after its interval (and open the next)."""
        assert self.transactions is not None
        assert self.producer is not None
        if self._in_transaction:
            if now - self._transaction_started < self.transactions.interval_ms / 1000:
                return
            await self._end_transaction()
        await self.producer.begin_transaction()
        self._in_transaction = True
        self._transaction_started = now
        self._delivered_at_begin = self.delivery.stats.delivered if self.delivery else 0

    async def _end_transaction(self, *, abort: bool = False) -> None:
        """Wait for every record of the open transaction, then commit it, or abort it: when
        asked, when a record of it failed, or as ``abort_rate`` draws."""
        assert self.transactions is not None
        assert self.producer is not None
        assert self.delivery is not None
        failed_before = self.delivery.stats.failed
        await self.delivery.flush()
        records = self.delivery.stats.delivered - self._delivered_at_begin
        abort = (
            abort
            or self.delivery.stats.failed > failed_before
            or self._abort_draw.random() < self.transactions.abort_rate
        )
        self._in_transaction = False
        if abort:
            await self.producer.abort_transaction()
            self.aborted += records
            self.aborted_transactions += 1
            metrics.EVENTS_ABORTED.inc(records)
        else:
            await self.producer.commit_transaction()
            self.committed_transactions += 1

    # -- reporting --------------------------------------------------------------------------

    def _sample(self, *, force: bool = False) -> None:
        now = time.monotonic()
        delivered = self.delivery.stats.delivered if self.delivery else 0
        if force or not self._samples or now - self._samples[-1][0] >= 0.1:
            self._samples.append((now, delivered))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()

    def achieved_rate(self) -> float:
        if not self.active:
            return self._rate_between(0, len(self._samples) - 1)
        self._sample()
        return self._rate_between(0, len(self._samples) - 1)

    def _rate_between(self, first: int, last: int) -> float:
        if last <= first:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[first], self._samples[last]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def status(self) -> RunStatus:
        stats = self.delivery.stats if self.delivery else None
        return RunStatus(
            id=self.id,
            kind=self.kind,
            state=self.state,
            topic=self.topic,
            config=self.config,
            replay=self.replay,
            target_rate=self.rate,
            achieved_rate=round(self.achieved_rate(), 1),
            counters=Counters(
                generated=self.generated,
                delivered=stats.delivered if stats else 0,
                aborted=self.aborted,
                aborted_transactions=self.aborted_transactions,
                committed_transactions=self.committed_transactions,
                failed=stats.failed if stats else 0,
                produce_errors=stats.produce_errors if stats else 0,
                retried=stats.retried if stats else 0,
                anomalies=dict(self.anomalies),
                malformed=dict(self.malformed),
                late=self.late,
                dropped_readings=self.dropped,
                sensor_dropouts=self.generator.dropouts if self.generator else 0,
                inflight_batches=self.delivery.inflight if self.delivery else 0,
            ),
            created_at=self.created_at,
            finished_at=self.finished_at,
            error=self.error,
            ground_truth=str(self.truth_path) if self.truth_path else None,
        )


class RunManager:
    """The runs of one process."""

    def __init__(self, settings: EngineSettings, factory: ProducerFactory = default_producer):
        self.settings = settings
        self.factory = factory
        self.runs: dict[str, Run] = {}

    async def start_synthetic(self, config: RunConfig) -> Run:
        topic = config.topic or self.settings.kafka.events_topic
        return await self._start(Run(self.settings, kind="synthetic", topic=topic, config=config))

    async def start_replay(
        self, rows: list[ReplayRow], *, source: str, speed: float | None, topic: str | None
    ) -> Run:
        info = ReplayInfo(source=source, rows=len(rows), speed=speed)
        run = Run(
            self.settings,
            kind="replay",
            topic=topic or self.settings.kafka.events_topic,
            replay=info,
            rows=rows,
        )
        return await self._start(run)

    async def _start(self, run: Run) -> Run:
        await run.start(self.factory)
        self.runs[run.id] = run
        finished = [r.id for r in self.runs.values() if not r.active]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.runs[old]
        if run.task is not None:
            run.task.add_done_callback(lambda _: self._gauge())
        self._gauge()
        return run

    def _gauge(self) -> None:
        metrics.TARGET_RATE.set(sum(r.rate or 0 for r in self.runs.values() if r.active))

    def get(self, run_id: str) -> Run:
        return self.runs[run_id]

    def update(self, run: Run, change: RunUpdate) -> None:
        run.update(change)
        self._gauge()

    async def shutdown(self) -> None:
        """Stop every active run, flushing what is in flight (SIGTERM lands here)."""
        active = [r for r in self.runs.values() if r.active]
        for run in active:
            run.request_stop()
        await asyncio.gather(*(r.wait() for r in active), return_exceptions=True)
        self._gauge()

    def statuses(self) -> list[RunStatus]:
        return [r.status() for r in self.runs.values()]
