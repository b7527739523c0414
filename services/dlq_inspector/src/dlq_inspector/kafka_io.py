"""Kafka I/O: read given offsets back (in bulk for replays, one at a time for requests), send
keyed records in batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from tenacity import AsyncRetrying, stop_after_delay, wait_fixed

from iotpipe import kafka
from iotpipe.settings import KafkaSettings

Headers = list[tuple[str, bytes]]
OutRecord = tuple[bytes, bytes, Headers]
"""key, value, headers"""

SEEK_GAP = 1_000
"""Seek over gaps wider than this many offsets instead of reading through them."""


async def partitions_of(settings: KafkaSettings, topic: str, *, wait_s: float = 15.0) -> list[int]:
    """A topic's partitions (retried for a while: a just-created topic takes a moment)."""
    client = kafka.admin(settings)
    await client.start()
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(wait_s), wait=wait_fixed(0.25), reraise=True
        ):
            with attempt:
                (described,) = await client.describe_topics([topic])
                found = sorted(p["partition"] for p in described["partitions"])
                if described["error_code"] or not found:
                    raise LookupError(f"topic {topic!r} does not exist")
    finally:
        await client.close()
    return found


async def read_offsets(
    settings: KafkaSettings,
    topic: str,
    wanted: Mapping[int, Sequence[int]],
    *,
    max_records: int = 10_000,
    idle_timeout_s: float = 10.0,
) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
    """Yield the records at the ``wanted`` offsets (sorted, per partition), chunk by chunk.

    Offsets that no longer exist (deleted by retention) are simply not yielded.
    """
    todo = {p: list(offsets) for p, offsets in wanted.items() if offsets}
    if not todo:
        return
    consumer = kafka.consumer(settings, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        tps = {p: TopicPartition(topic, p) for p in todo}
        consumer.assign(list(tps.values()))
        ends = await consumer.end_offsets(list(tps.values()))
        pointer = dict.fromkeys(todo, 0)
        for p, offsets in todo.items():
            consumer.seek(tps[p], offsets[0])
        active = {p for p in todo if todo[p][0] < ends[tps[p]]}
        idle_since = time.monotonic()
        while active:
            batches = await consumer.getmany(
                *(tps[p] for p in active), timeout_ms=500, max_records=max_records
            )
            if batches:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_timeout_s:
                raise TimeoutError(
                    f"no records from {topic} partitions {sorted(active)} for {idle_timeout_s:.0f}s"
                )
            chunk: list[ConsumerRecord[bytes, bytes]] = []
            for tp, records in batches.items():
                p = tp.partition
                offsets, at = todo[p], pointer[p]
                for record in records:
                    while at < len(offsets) and offsets[at] < record.offset:
                        at += 1  # gone (retention) or compacted away
                    if at == len(offsets):
                        break
                    if offsets[at] == record.offset:
                        chunk.append(record)
                        at += 1
                pointer[p] = at
                position = await consumer.position(tp)
                if at == len(offsets) or position >= ends[tp]:
                    active.discard(p)
                elif offsets[at] - position > SEEK_GAP:
                    consumer.seek(tp, offsets[at])
            if chunk:
                yield chunk
    finally:
        await consumer.stop()


class BatchSender:
    """Sends keyed records with aiokafka's batch API, partitioned like every Kafka client
    (murmur2 of the key), with the producer's guarantees (acks=all, idempotence).

    One ``send()`` per record costs a coroutine and a future each; whole batches are
    several times faster, which is what makes a large replay fast.
    """

    CACHED_KEYS = 100_000

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic
        self._partitioner = DefaultPartitioner()
        self._placed: dict[bytes, int] = {}
        """key -> partition: murmur2 in pure Python costs ~20 us, and keys (sensor ids) repeat."""
        self._count = 0

    def _partition(self, key: bytes, partitions: list[int]) -> int:
        if len(partitions) == 1:
            return partitions[0]
        if len(partitions) != self._count:  # partitions were added: placements changed
            self._placed.clear()
            self._count = len(partitions)
        found = self._placed.get(key)
        if found is None:
            found = self._partitioner(key, partitions, partitions)
            if len(self._placed) < self.CACHED_KEYS:
                self._placed[key] = found
        return found

    async def send(self, records: Sequence[OutRecord]) -> list[tuple[int, int]]:
        """Send and wait for acknowledgement; return (partition, offset) per record."""
        partitions = sorted(await self._producer.partitions_for(self.topic))
        members: dict[int, list[int]] = {}
        for i, (key, _, _) in enumerate(records):
            members.setdefault(self._partition(key, partitions), []).append(i)
        pending: list[tuple[asyncio.Future[object], int, list[int]]] = []
        for partition, indices in members.items():
            batch, held = self._producer.create_batch(), list[int]()
            for i in indices:
                key, value, headers = records[i]
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    pending.append((await self._submit(batch, partition), partition, held))
                    batch, held = self._producer.create_batch(), []
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        raise ValueError(f"record {i} is larger than a whole batch")
                held.append(i)
            pending.append((await self._submit(batch, partition), partition, held))
        placed: list[tuple[int, int]] = [(-1, -1)] * len(records)
        for future, partition, held in pending:
            base = (await future).offset  # type: ignore[attr-defined]
            for relative, i in enumerate(held):
                placed[i] = (partition, base + relative)
        return placed

    async def _submit(self, batch: object, partition: int) -> asyncio.Future[object]:
        return await self._producer.send_batch(batch, self.topic, partition=partition)


class PointReader:
    """Single records by offset (``GET /dlq/messages/{p}/{o}``) through one consumer, started
    with the inspector and shared by requests one at a time: a request costs a seek and a
    fetch, not a new client (its bootstrap, authentication and shutdown)."""

    def __init__(self, settings: KafkaSettings, topic: str, *, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._topic = topic
        self._timeout_s = timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        consumer = kafka.consumer(self._settings, max_partition_fetch_bytes=4 * 1024 * 1024)
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def read(self, partition: int, offset: int) -> ConsumerRecord[bytes, bytes] | None:
        """The record at ``offset``, or None when the topic no longer (or not yet) has it."""
        assert self._consumer is not None, "start() the reader first"
        consumer = self._consumer
        tp = TopicPartition(self._topic, partition)
        async with self._lock, asyncio.timeout(self._timeout_s):
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            if offset >= end:
                return None
            consumer.seek(tp, offset)
            while True:
                batches = await consumer.getmany(tp, timeout_ms=500, max_records=1)
                for record in batches.get(tp, []):
                    return record if record.offset == offset else None  # gone: retention
                if await consumer.position(tp) >= end:
                    return None
