"""Follow a topic from its beginning, in the background, and say when it is caught up.

The DLQ index and the replay ledger are both built this way. :meth:`TopicTail.caught_up`
gives read-your-writes: it returns once everything written to the topic before the
call has been applied, so a request never answers from a stale view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

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
        self.ready = False
        """True once the tail has caught up with the topic at least once."""

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
                for records in batches.values():
                    for record in records:
                        self._apply(record)
                for tp in self._partitions:
                    self._positions[tp] = await consumer.position(tp)
            except KafkaError as exc:  # the client reconnects by itself; keep following
                log.warning("tail of %s: %s", self.topic, exc)
                await asyncio.sleep(1)
            self._progress.set()
            self._progress = asyncio.Event()

    async def caught_up(self, wait_s: float = 30.0) -> None:
        """Wait until everything on the topic now has been applied (and drop what retention
        deleted); raise :class:`NotCaughtUp` after ``wait_s`` seconds."""
        assert self._offsets is not None, "start() the tail first"
        ends: dict[TopicPartition, int] = {}
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
        self.ready = True

    def _behind(self, ends: dict[TopicPartition, int]) -> dict[int, int]:
        return {
            tp.partition: end - self._positions.get(tp, 0)
            for tp, end in ends.items()
            if self._positions.get(tp, 0) < end
        }
