"""Follow a topic from its beginning, in the background, and say when it is caught up.

The DLQ index and the replay ledger are both built this way. :meth:`TopicTail.caught_up`
gives read-your-writes: it returns once everything written to the topic before the
call has been applied, so a request never answers from a stale view.

A process that writes to the topic it tails and applies its writes itself (the replayer
and the ledger) wraps each write in :meth:`TopicTail.holding` and reports the acknowledged
offsets with :meth:`TopicTail.skip`: the tail then seeks past them instead of fetching,
decoding and applying every record a second time (it was a third of a large replay's CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from dlq_inspector.kafka_io import partitions_of
from iotpipe import kafka
from iotpipe.settings import KafkaSettings

log = logging.getLogger(__name__)

Apply = Callable[[ConsumerRecord[bytes, bytes]], object]
Prune = Callable[[int, int], object]


class NotCaughtUp(TimeoutError):
    """The tail did not reach the topic's end in time."""


class TopicTail:
    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        apply: Apply,
        *,
        prune: Prune | None = None,
        max_records: int = 5_000,
    ) -> None:
        self.topic = topic
        self._settings = settings
        self._apply = apply
        self._prune = prune
        self._max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets: AIOKafkaConsumer | None = None
        """A second client for offset look-ups: the follower's connection is often busy in a
        long-poll fetch, which would delay them by up to ``fetch_max_wait_ms``."""
        self._partitions: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._holds = 0
        self._paused = False
        self._waiting = 0
        """Requests waiting in :meth:`caught_up` (no pause for own writes meanwhile)."""
        self._skips: dict[TopicPartition, list[tuple[int, int]]] = {}
        """Runs of offsets ``[start, end)`` written and applied by this process, not read yet."""
        self._floors: dict[TopicPartition, int] = {}
        """Per partition, the offset of the last seek over own writes (all below is applied)."""
        self.ready = False
        """True once the tail has caught up with the topic at least once."""
        self.applied = 0
        """Records read and applied so far (own writes that were skipped are not)."""

    async def start(self) -> None:
        found = await partitions_of(self._settings, self.topic)
        self._partitions = [TopicPartition(self.topic, p) for p in found]
        self._consumer = kafka.consumer(self._settings, max_partition_fetch_bytes=4 * 1024 * 1024)
        await self._consumer.start()  # (stop() closes whatever started, also after a failure)
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._offsets = kafka.consumer(self._settings)
        await self._offsets.start()
        self._task = asyncio.create_task(self._follow(), name=f"tail-{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in (self._consumer, self._offsets):
            if client is not None:
                await client.stop()  # harmless on a client that never started

    async def _follow(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=self._max_records)
                for tp, records in batches.items():
                    # A fetch issued before a seek over own writes can still deliver what it
                    # read: records below the seek's target are applied already.
                    floor = self._floors.get(tp, 0)
                    fresh = [r for r in records if r.offset >= floor]
                    for record in fresh:
                        self._apply(record)
                    self.applied += len(fresh)
                for tp in self._partitions:
                    self._positions[tp] = await consumer.position(tp)  # (no suspension)
                self._skip_ahead()
            except KafkaError as exc:  # the client reconnects by itself; keep following
                log.warning("tail of %s: %s", self.topic, exc)
                await asyncio.sleep(1)
            self._advanced()

    def _advanced(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """Around a write of this process to the topic: the tail does not fetch meanwhile, so
        that it seeks past the written records (reported with :meth:`skip`) instead of
        fetching them. Holds nest and may overlap for a whole replay, so a request waiting
        in :meth:`caught_up` lifts the pause (the tail then skips what it can)."""
        assert self._consumer is not None, "start() the tail first"
        if not self._holds and not self._waiting:
            self._consumer.pause(*self._partitions)
            self._paused = True
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                self._resume()

    def _resume(self) -> None:
        if self._paused:
            assert self._consumer is not None
            self._consumer.resume(*self._partitions)
            self._paused = False

    def skip(self, placed: Iterable[tuple[int, int]]) -> None:
        """Records at these (partition, offset) were written and applied by this process: do
        not read them back. (Records the tail reads anyway must be harmless to re-apply.)"""
        by_partition: dict[int, list[int]] = {}
        for partition, offset in placed:
            by_partition.setdefault(partition, []).append(offset)
        for partition, offsets in by_partition.items():
            runs = self._skips.setdefault(TopicPartition(self.topic, partition), [])
            offsets.sort()
            for offset in offsets:
                if runs and runs[-1][1] == offset:
                    runs[-1] = (runs[-1][0], offset + 1)
                else:
                    runs.append((offset, offset + 1))
            runs.sort()
        self._skip_ahead()

    def _skip_ahead(self) -> None:
        """Seek over own runs that start where the tail stands (runs behind it are done)."""
        assert self._consumer is not None
        moved = False
        for tp, runs in self._skips.items():
            position = self._positions.get(tp, 0)
            while runs and runs[0][0] <= position:
                end = runs.pop(0)[1]
                if end > position:
                    self._consumer.seek(tp, end)
                    self._floors[tp] = end
                    position = self._positions[tp] = end
                    moved = True
        if moved:
            self._advanced()

    async def caught_up(self, wait_s: float = 30.0) -> None:
        """Wait until everything on the topic now has been applied (and drop what retention
        deleted); raise :class:`NotCaughtUp` after ``wait_s`` seconds."""
        assert self._offsets is not None, "start() the tail first"
        ends: dict[TopicPartition, int] = {}
        self._waiting += 1
        self._resume()
        try:
            async with asyncio.timeout(wait_s):
                ends = await self._offsets.end_offsets(self._partitions)
                if self._prune is not None:
                    starts = await self._offsets.beginning_offsets(self._partitions)
                    for tp, start in starts.items():
                        self._prune(tp.partition, start)
                while self._behind(ends):
                    await self._progress.wait()
        except TimeoutError:
            raise NotCaughtUp(
                f"{self.topic}: not caught up after {wait_s:.0f}s "
                f"(records behind per partition: {self._behind(ends) or 'unknown'})"
            ) from None
        finally:
            self._waiting -= 1
        self.ready = True

    def _behind(self, ends: dict[TopicPartition, int]) -> dict[int, int]:
        return {
            tp.partition: end - self._positions.get(tp, 0)
            for tp, end in ends.items()
            if self._positions.get(tp, 0) < end
        }
