"""Producer throughput: the sensor simulator against Kafka's own ProducerPerformance.

One fresh single-node broker (in a temp folder) serves both, back to back: first
the simulator produces a bounded, unpaced run (one process, ``acks=all``,
idempotent, keyed by sensor, ~215-byte events), then
``org.apache.kafka.tools.ProducerPerformance`` sends the same number of records
of the same size with the same acks, idempotence, compression, batch size and
linger. Both are timed until the last acknowledgement.

value = simulator events/s; ratio = simulator ÷ ProducerPerformance.
"""

from __future__ import annotations

import asyncio
import re
import resource
import subprocess
import time

from sensor_simulator.config import EngineSettings, RunConfig
from sensor_simulator.generator import Generator
from sensor_simulator.runs import RunManager

from bench.harness import Result, fresh_broker
from iotpipe import jars
from iotpipe.kafka import TopicSpec, ensure_topics
from iotpipe.settings import KafkaSettings

EVENTS = 1_000_000
SENSORS = 1_000
TARGET_RATE = 100_000
TARGET_RATIO = 0.5
_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec")


def record_size(config: RunConfig) -> int:
    """Mean value size of the simulator's events (what ProducerPerformance then sends)."""
    block = Generator(config).block(2_000)
    return round(sum(map(len, block.values)) / len(block))


async def simulator(settings: EngineSettings, topic: str) -> tuple[float, dict[str, object]]:
    manager = RunManager(settings)
    warm_up = RunConfig(rate=None, max_events=20_000, sensors=SENSORS, topic=topic, seed=2)
    await (await manager.start_synthetic(warm_up)).wait()  # leaders elected, connections open
    config = RunConfig(rate=None, max_events=EVENTS, sensors=SENSORS, topic=topic, seed=1)
    started, cpu = time.perf_counter(), time.process_time()
    run = await manager.start_synthetic(config)
    await run.wait()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    status = run.status()
    if status.counters.delivered != EVENTS or status.counters.failed:
        raise RuntimeError(f"the simulator run did not deliver every event: {status.counters}")
    return EVENTS / elapsed, {
        "simulator_seconds": round(elapsed, 2),
        "simulator_cpu_seconds": round(cpu, 2),
        # CPU cost, less sensitive than wall time to other work on the machine:
        "simulator_events_per_cpu_second": round(EVENTS / cpu),
    }


def producer_performance(
    settings: EngineSettings, topic: str, size: int
) -> tuple[float, dict[str, object]]:
    props = {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "acks": "all",
        "enable.idempotence": "true",
        "compression.type": settings.compression,
        "batch.size": str(settings.batch_bytes),
        "linger.ms": str(settings.linger_ms),
    }
    command = [
        "java",
        "-Xmx512m",
        "-cp",
        jars.classpath("kafka"),
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(EVENTS),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--producer-props",
        *(f"{k}={v}" for k, v in props.items()),
    ]
    cpu = _children_cpu()
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    cpu = _children_cpu() - cpu
    found = _SUMMARY.findall(result.stdout)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"ProducerPerformance failed:\n{result.stdout[-2000:]}{result.stderr}")
    sent, rate = found[-1]
    if int(sent) != EVENTS:
        raise RuntimeError(f"ProducerPerformance sent {sent} of {EVENTS} records")
    return float(rate), {
        "producer_performance_cpu_seconds": round(cpu, 2),
        "producer_performance_events_per_cpu_second": round(EVENTS / cpu),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run() -> Result:
    with fresh_broker("producer") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        settings = EngineSettings(kafka=kafka)
        topics = [TopicSpec("bench-simulator"), TopicSpec("bench-producer-performance")]
        asyncio.run(ensure_topics(kafka, topics))
        size = record_size(RunConfig(sensors=SENSORS, seed=1))
        rate, extra = asyncio.run(simulator(settings, "bench-simulator"))
        reference, reference_extra = producer_performance(
            settings, "bench-producer-performance", size
        )
    ratio = rate / reference
    return Result(
        name="producer",
        metric="sensor simulator throughput (one process, acks=all, idempotent, keyed)",
        value=round(rate, 1),
        unit="events/s",
        reference="Kafka ProducerPerformance (same broker and producer settings)",
        reference_value=round(reference, 1),
        ratio=round(ratio, 3),
        target=f">= {TARGET_RATE:,} events/s and ratio >= {TARGET_RATIO}",
        met=rate >= TARGET_RATE and ratio >= TARGET_RATIO,
        extra={
            "events": EVENTS,
            "record_bytes": size,
            "sensors": SENSORS,
            "partitions": 3,
            "compression": settings.compression,
            "batch_bytes": settings.batch_bytes,
            "linger_ms": settings.linger_ms,
            **extra,
            **reference_extra,
        },
    )
