"""Delivery: key partitioning as Kafka's default partitioner, batching, retries, accounting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.structs import RecordMetadata
from sensor_simulator import metrics
from sensor_simulator.config import RunConfig
from sensor_simulator.delivery import Delivery, Partitioner, Record, partition_for
from sensor_simulator.generator import Generator


class FakeProducer:
    """Records what it is sent; fails the first ``failures`` batches."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: dict[int, list[tuple[bytes, bytes]]] = {}
        self.batches = 0

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(16 * 1024, 0)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        self.batches += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.failures:
            self.failures -= 1
            future.set_exception(ConnectionError("broker went away"))
            return future
        records = DefaultRecordBatch(bytearray(batch._build()))
        self.sent.setdefault(partition, []).extend((r.key, r.value) for r in records)
        future.set_result(RecordMetadata(topic, partition, None, 0, -1, 0, -1))
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}


@pytest.mark.parametrize("partitions", [1, 3, 7, 12])
def test_partition_is_the_default_partitioners(partitions):
    default = DefaultPartitioner()
    all_partitions = list(range(partitions))
    keys = [f"sensor-{i:05d}".encode() for i in range(500)] + [b"x", "ü-é".encode()]
    for key in keys:
        assert partition_for(key, partitions) == default(key, all_partitions, all_partitions)


def test_partitioner_always_places_a_key_on_the_same_partition():
    partitioner = Partitioner(3)
    first = {k: partitioner(k) for k in (b"a", b"b", b"c", b"sensor-1")}
    for _ in range(3):
        assert {k: partitioner(k) for k in first} == first
    assert set(first.values()) <= {0, 1, 2}


def counter_value(counter: Any, *labels: str) -> float:
    return float((counter.labels(*labels) if labels else counter)._value.get())


async def test_every_record_arrives_once_in_order_on_its_keys_partition():
    generator = Generator(RunConfig(sensors=30, seed=1, rate=None), Partitioner(3))
    producer = FakeProducer()
    delivery = Delivery(producer, "t", 3, max_inflight=2)
    produced_before = counter_value(metrics.EVENTS_PRODUCED, "temperature")
    made: list[tuple[bytes, bytes]] = []
    for _ in range(5):
        block = generator.block(1_000)
        await delivery.send_block(block)
        made += [(block.keys[i], block.values[i]) for _, b, e in block.ranges for i in range(b, e)]
    await delivery.flush()
    assert delivery.stats.delivered == 5_000 == sum(len(v) for v in producer.sent.values())
    assert producer.batches > 3 * 5  # 16 KiB batches: several per partition per block
    for partition, records in producer.sent.items():
        assert all(partition_for(key, 3) == partition for key, _ in records)
    for key in generator.keys:
        in_topic = [v for records in producer.sent.values() for k, v in records if k == key]
        assert in_topic == [v for k, v in made if k == key]  # per key: the order made
    temperature = sum(1 for _, v in made if b'"temperature"' in v)
    after = counter_value(metrics.EVENTS_PRODUCED, "temperature")
    assert after - produced_before == temperature


async def test_failed_batches_are_counted_and_retried_until_delivered():
    producer = FakeProducer(failures=2)
    delivery = Delivery(producer, "t", 1, attempts=3, backoff_s=0.001)
    errors_before = counter_value(metrics.PRODUCE_ERRORS)
    keys = [b"k"] * 10
    values = [str(i).encode() for i in range(10)]
    await delivery.send(0, keys, values, [[]] * 10, ["temperature"] * 10, 0)
    await delivery.flush()
    assert delivery.stats.delivered == 10
    assert (
        delivery.stats.produce_errors == 20 == counter_value(metrics.PRODUCE_ERRORS) - errors_before
    )
    assert delivery.stats.retried == 20
    assert delivery.stats.failed == 0
    assert [v for _, v in producer.sent[0]] == values


async def test_records_that_keep_failing_are_counted_failed_not_dropped():
    producer = FakeProducer(failures=100)
    delivery = Delivery(producer, "t", 1, attempts=2, backoff_s=0.001)
    failed_before = counter_value(metrics.EVENTS_FAILED)
    await delivery.send(0, [b"k"] * 4, [b"1", b"2", b"3", b"4"], [[]] * 4, ["humidity"] * 4, 0)
    await delivery.flush()
    assert delivery.stats.delivered == 0
    assert delivery.stats.failed == 4 == counter_value(metrics.EVENTS_FAILED) - failed_before
    assert delivery.stats.last_error == "ConnectionError: broker went away"
    assert delivery.inflight == 0


async def test_send_records_groups_by_key_partition():
    producer = FakeProducer()
    delivery = Delivery(producer, "t", 3)
    records: list[Record] = [
        (f"s{i % 9}".encode(), f"{i}".encode(), [], "pressure") for i in range(90)
    ]
    await delivery.send_records(records, 0)
    await delivery.flush()
    for partition, sent in producer.sent.items():
        assert {partition_for(k, 3) for k, _ in sent} == {partition}
    assert sum(len(s) for s in producer.sent.values()) == 90
