"""DLQ replay throughput: the inspector's replay against a plain aiokafka copy.

One fresh single-node broker (in a temp folder). 100,000 dead letters are written to the
DLQ topic exactly as the streaming job writes them (original bytes, dead-letter headers):
readings sent with an unsupported ``schema_version`` (99), all fixable by one merge patch.
The inspector indexes them once; then, in each of :data:`ROUNDS` rounds, back to back:

- reference: a plain aiokafka consume -> produce copy of the same 100,000 DLQ records to
  another topic (one ``send()`` per record, the same producer settings: acks=all,
  idempotent, the inspector's compression), timed until the last acknowledgement;
- the inspector: ``POST /dlq/replay`` (filter: all unresolved) on
  the real app (patch ``{"schema_version": 1}``), run as a background job and polled until it has finished. That is: select
  from the index, read the records back from Kafka, patch, validate every one against the
  contract, send them (acks=all, idempotent, keyed by sensor id) and record each in the
  replay ledger (a second write per message).

Both run on uvloop, the event loop the service runs on (``python -m dlq_inspector``).

value = median over rounds of replayed messages/s (POST to job finished); reference = the
median of the copies; ratio = the median of each round's replay / reference (the machine's
speed drifts between rounds, and a round's two measurements share its drift).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import orjson
import uvloop
from aiokafka import TopicPartition
from dlq_inspector.app import build_app
from dlq_inspector.kafka_io import BatchSender
from dlq_inspector.settings import DlqSettings

from bench.harness import Result, fresh_broker
from iotpipe import kafka
from iotpipe.contract import ErrorType
from iotpipe.demo import sample_events
from iotpipe.dlq import DeadLetter
from iotpipe.settings import KafkaSettings

MESSAGES = 100_000
ROUNDS = 5
"""Reference and replay alternate this many times; the medians are reported (the same
configuration has measured anywhere from 17k to 30k messages/s on this machine, idle)."""
TARGET = 20_000
TOKEN = "bench-token-bench-token"


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


async def fill_dlq(settings: KafkaSettings) -> int:
    """Write the dead letters; return the mean value size."""
    now = int(time.time() * 1000)
    producer = kafka.producer(settings)
    await producer.start()
    try:
        sender = BatchSender(producer, settings.dlq_topic)
        events = sample_events(MESSAGES, sensors=100)
        size = 0
        for start in range(0, MESSAGES, 20_000):
            chunk = []
            for i, event in enumerate(events[start : start + 20_000], start):
                value = orjson.dumps(event.model_dump(mode="json") | {"schema_version": 99})
                size += len(value)
                letter = DeadLetter(
                    error_type=ErrorType.OUT_OF_CONTRACT,
                    error_detail="schema_version: Input should be less than or equal to 1",
                    source_topic=settings.events_topic,
                    source_partition=i % 3,
                    source_offset=i,
                    source_timestamp_ms=now - 1_000,
                    dead_lettered_at_ms=now,
                    value=value,
                )
                chunk.append((letter.key.encode(), value, letter.headers()))
            await sender.send(chunk)
    finally:
        await producer.stop()
    return round(size / MESSAGES)


async def plain_copy(
    settings: KafkaSettings, target: str, producer_options: dict[str, Any]
) -> tuple[float, float]:
    """Reference: consume the DLQ and produce every record to ``target``; messages/s and
    CPU microseconds per message (this process)."""
    consumer = kafka.consumer(settings, max_partition_fetch_bytes=4 * 1024 * 1024)
    producer = kafka.producer(settings, **producer_options)
    await consumer.start()
    await producer.start()
    try:
        tps = [TopicPartition(settings.dlq_topic, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started, cpu = time.perf_counter(), time.process_time()
        futures: list[asyncio.Future[object]] = []
        while len(futures) < MESSAGES:
            for records in (await consumer.getmany(timeout_ms=1_000, max_records=10_000)).values():
                for record in records:
                    futures.append(await producer.send(target, record.value, key=record.key))
        await asyncio.gather(*futures)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await consumer.stop()
        await producer.stop()
    return MESSAGES / elapsed, cpu / MESSAGES * 1e6


async def replay_once(client: httpx.AsyncClient, *, force: bool) -> tuple[float, float]:
    """One replay job over every message, through the HTTP API; messages/s and CPU
    microseconds per message (this process, which also serves the API)."""
    body = {
        "filter": {"status": "any" if force else "unresolved"},
        "patch": {"schema_version": 1},
        "background": True,
        "force": force,
    }
    started, cpu = time.perf_counter(), time.process_time()
    response = await client.post(
        "/dlq/replay", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    if response.status_code != 202:
        raise RuntimeError(f"replay not started: {response.status_code} {response.text}")
    location = response.headers["Location"]
    while True:  # poll like the CLI's progress bar does
        job = (await client.get(location, params={"results": "false"})).json()
        if job["status"] not in ("pending", "running"):
            break
        await asyncio.sleep(0.2)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if job["status"] != "succeeded" or job["counts"]["replayed"] != MESSAGES:
        raise RuntimeError(f"the replay did not replay every message: {job}")
    return MESSAGES / elapsed, cpu / MESSAGES * 1e6


async def measure(settings: DlqSettings) -> dict[str, Any]:
    """Index the DLQ once, then alternate reference copy and replay for :data:`ROUNDS`
    rounds. The first replay selects the unresolved messages (all of them); later ones
    select ``any`` with ``force`` (the same work: the ledger is consulted, then every
    message is sent and recorded again)."""
    app = build_app(settings)
    before = rss_bytes()
    rounds: list[dict[str, float]] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            loading = time.perf_counter()
            stats = (await client.get("/dlq/stats")).json()  # waits until the index caught up
            index_s = time.perf_counter() - loading
            if stats["total"] != MESSAGES:
                raise RuntimeError(f"the index holds {stats['total']} of {MESSAGES} messages")
            index_bytes = (rss_bytes() - before) / MESSAGES
            for n in range(ROUNDS):
                reference, reference_cpu = await plain_copy(
                    settings.kafka, "bench-copy", settings.producer_overrides()
                )
                rate, cpu = await replay_once(client, force=n > 0)
                rounds.append(
                    {
                        "reference": round(reference, 1),
                        "replay": round(rate, 1),
                        "reference_cpu_us": round(reference_cpu, 1),
                        "replay_cpu_us": round(cpu, 1),
                    }
                )
    return {
        "rounds": rounds,
        "index_load_seconds": round(index_s, 2),
        "index_rss_bytes_per_message": round(index_bytes),
    }


def run() -> Result:
    with fresh_broker("dlq") as broker:
        base = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        settings = DlqSettings(
            api_token=TOKEN,
            kafka=base.model_copy(
                update={"events_topic": "bench-replayed", "dlq_topic": "bench-dlq"}
            ),
            ledger_topic="bench-dlq-replays",
        )
        specs = [kafka.TopicSpec(t) for t in ("bench-replayed", "bench-dlq", "bench-copy")]
        asyncio.run(kafka.ensure_topics(base, specs))
        size = asyncio.run(fill_dlq(settings.kafka))
        measured = uvloop.run(measure(settings))  # the service's event loop (__main__)
    rounds = measured.pop("rounds")
    rate = median(r["replay"] for r in rounds)
    reference = median(r["reference"] for r in rounds)
    return Result(
        name="dlq_replay",
        metric=f"DLQ replay throughput, median of {ROUNDS} rounds (select, read back, patch, "
        "validate, send acks=all idempotent, ledger write; via POST /dlq/replay as a job)",
        value=rate,
        unit="messages/s",
        reference="plain aiokafka consume -> produce copy of the same DLQ records "
        "(one send() per record, same producer settings, no validation, no ledger), "
        "median of the same rounds",
        reference_value=reference,
        target=f">= {TARGET:,} messages/s",
        met=rate >= TARGET,
        ratio=median(r["replay"] / r["reference"] for r in rounds),
        extra={
            "ratio_is": "median over rounds of replay / reference in the same round",
            "messages": MESSAGES,
            "value_bytes": size,
            "partitions": 3,
            "load_average_1m": os.getloadavg()[0],
            "replay_min": min(r["replay"] for r in rounds),
            "replay_max": max(r["replay"] for r in rounds),
            "replay_cpu_us_per_message": median(r["replay_cpu_us"] for r in rounds),
            "reference_cpu_us_per_message": median(r["reference_cpu_us"] for r in rounds),
            "rounds": rounds,
            **measured,
        },
    )
