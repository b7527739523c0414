"""Getting records to Kafka fast, in key order, without losing any.

aiokafka's per-message ``send()`` costs a coroutine and a future per record; at
100k events/s that is the limit. So records go into one ``BatchBuilder`` per
partition (aiokafka's batch API) and whole batches are handed over with
``send_batch()``. The partition of a key is computed as Kafka's default
partitioner does (murmur2 of the key bytes, positive, modulo the partition
count), so a sensor's readings land where any Kafka client would put them.

Every batch keeps its records until the broker acknowledges it (``acks=all``,
idempotent producer). A failed batch is counted (``produce_errors_total``) and
re-sent after a backoff, up to ``delivery_attempts``; what still fails is
counted as failed, never dropped silently.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka.partitioner import murmur2

from sensor_simulator import metrics
from sensor_simulator.generator import Block, Header

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0

Record = tuple[bytes, bytes, Sequence[Header], str]
"""(key, value, headers, label)."""


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed record (Java ``Utils.toPositive(murmur2)``)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Partitioner:
    """``partition_for`` with a cache: a run has few distinct keys."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._cache: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = partition_for(key, self.partitions)
        return found


class BatchProducer(Protocol):
    """What :class:`Delivery` needs of ``AIOKafkaProducer`` (a fake in unit tests)."""

    def create_batch(self) -> Any: ...

    async def send_batch(
        self, batch: Any, topic: str, *, partition: int
    ) -> asyncio.Future[Any]: ...

    async def partitions_for(self, topic: str) -> set[int]: ...


@dataclass
class _Batch:
    partition: int
    builder: Any
    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    headers: list[Sequence[Header]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    attempt: int = 1
    sent_at: float = 0.0

    def keep(
        self,
        keys: Sequence[bytes],
        values: Sequence[bytes],
        headers: Sequence[Sequence[Header]],
        labels: Sequence[str],
    ) -> None:
        """Remember records appended to the builder (for a retry and for the counters)."""
        self.keys.extend(keys)
        self.values.extend(values)
        self.headers.extend(headers)
        self.labels.extend(labels)


@dataclass
class DeliveryStats:
    delivered: int = 0
    failed: int = 0
    produce_errors: int = 0
    """Records in failed delivery attempts (each retried until ``delivery_attempts``)."""
    retried: int = 0
    batches: int = 0
    last_error: str | None = None


class Delivery:
    """Batches records per partition and sees each batch acknowledged (or counted failed)."""

    def __init__(
        self,
        producer: BatchProducer,
        topic: str,
        partitions: int,
        *,
        attempts: int = 5,
        max_inflight: int = 32,
        backoff_s: float = 0.2,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.attempts = attempts
        self.stats = DeliveryStats()
        self._backoff_s = backoff_s
        self._open: dict[int, _Batch] = {}
        self._slots = asyncio.Semaphore(max_inflight)
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._retries: set[asyncio.Task[None]] = set()

    def _new(self, partition: int) -> _Batch:
        batch = _Batch(partition, self.producer.create_batch())
        self._open[partition] = batch
        return batch

    async def send(
        self,
        partition: int,
        keys: Sequence[bytes],
        values: Sequence[bytes],
        headers: Sequence[Sequence[Header]],
        labels: Sequence[str],
        timestamp_ms: int,
    ) -> None:
        """Append one partition's records to its open batch, sending each batch that fills."""
        batch = self._open.get(partition) or self._new(partition)
        append = batch.builder.append
        first = 0
        for i, (key, value, header) in enumerate(zip(keys, values, headers, strict=True)):
            if append(timestamp=timestamp_ms, key=key, value=value, headers=header) is not None:
                continue
            batch.keep(keys[first:i], values[first:i], headers[first:i], labels[first:i])
            await self._submit(batch)
            batch = self._new(partition)
            append = batch.builder.append
            if append(timestamp=timestamp_ms, key=key, value=value, headers=header) is None:
                raise ValueError(f"a record of {len(value)} bytes does not fit in a batch")
            first = i
        batch.keep(keys[first:], values[first:], headers[first:], labels[first:])

    async def send_block(self, block: Block) -> None:
        """Send a generator block (already grouped by partition)."""
        for partition, begin, end in block.ranges:
            await self.send(
                partition,
                block.keys[begin:end],
                block.values[begin:end],
                block.headers[begin:end],
                block.labels[begin:end],
                block.timestamp_ms,
            )

    async def send_records(self, records: Iterable[Record], timestamp_ms: int) -> None:
        """Send (key, value, headers, label) tuples, each to its key's partition."""
        partitioner = Partitioner(self.partitions)
        grouped: dict[int, list[Record]] = {}
        for record in records:
            grouped.setdefault(partitioner(record[0]), []).append(record)
        for partition, items in grouped.items():
            keys, values, headers, labels = (list(column) for column in zip(*items, strict=True))
            await self.send(partition, keys, values, headers, labels, timestamp_ms)

    async def submit_open(self) -> None:
        """Send every partly filled batch now (the end of a linger interval)."""
        for batch in list(self._open.values()):
            if batch.keys:
                del self._open[batch.partition]
                await self._submit(batch)

    async def flush(self) -> None:
        """Send what is open and wait until every batch is acknowledged or failed."""
        await self.submit_open()
        await self._idle.wait()  # a batch being retried still counts as in flight

    @property
    def inflight(self) -> int:
        return self._inflight

    async def _submit(self, batch: _Batch) -> None:
        if self._open.get(batch.partition) is batch:
            del self._open[batch.partition]
        await self._slots.acquire()
        self._inflight += 1
        self._idle.clear()
        await self._hand_over(batch)

    async def _hand_over(self, batch: _Batch) -> None:
        batch.sent_at = time.perf_counter()
        try:
            future = await self.producer.send_batch(
                batch.builder, self.topic, partition=batch.partition
            )
        except Exception as exc:  # could not even queue it: same path as a failed ack
            self._failed(batch, exc)
            return
        self.stats.batches += 1
        future.add_done_callback(functools.partial(self._acked, batch))

    def _acked(self, batch: _Batch, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled():
            error = asyncio.CancelledError("delivery cancelled")
        if error is not None:
            self._failed(batch, error)
            return
        metrics.ACK_LATENCY.observe(time.perf_counter() - batch.sent_at)
        self.stats.delivered += len(batch.keys)
        for label, n in Counter(batch.labels).items():
            metrics.EVENTS_PRODUCED.labels(label).inc(n)
        self._release()

    def _failed(self, batch: _Batch, error: BaseException) -> None:
        count = len(batch.keys)
        self.stats.produce_errors += count
        self.stats.last_error = f"{type(error).__name__}: {error}"
        metrics.PRODUCE_ERRORS.inc(count)
        if batch.attempt >= self.attempts:
            log.error(
                "giving up on %d records for %s[%d] after %d attempts: %s",
                count,
                self.topic,
                batch.partition,
                batch.attempt,
                self.stats.last_error,
            )
            self.stats.failed += count
            metrics.EVENTS_FAILED.inc(count)
            self._release()
            return
        log.warning(
            "delivery of %d records to %s[%d] failed (attempt %d/%d), retrying: %s",
            count,
            self.topic,
            batch.partition,
            batch.attempt,
            self.attempts,
            self.stats.last_error,
        )
        task = asyncio.get_running_loop().create_task(self._retry(batch))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry(self, batch: _Batch) -> None:
        await asyncio.sleep(min(MAX_BACKOFF_S, self._backoff_s * 2 ** (batch.attempt - 1)))
        again = _Batch(batch.partition, self.producer.create_batch(), attempt=batch.attempt + 1)
        for key, value, headers in zip(batch.keys, batch.values, batch.headers, strict=True):
            again.builder.append(timestamp=None, key=key, value=value, headers=headers)
        again.keep(batch.keys, batch.values, batch.headers, batch.labels)
        self.stats.retried += len(again.keys)
        await self._hand_over(again)

    def _release(self) -> None:
        self._inflight -= 1
        self._slots.release()
        if self._inflight == 0:
            self._idle.set()
