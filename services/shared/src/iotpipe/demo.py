"""Sample readings for tests and benchmarks: a deterministic batch, and a keyed producer.

``make demo`` itself (the whole pipeline end to end, with a report) needs every service,
which this shared package must not import: it is ``local-pipeline demo``
(``services/local_pipeline``, docs/demo.md).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta

from iotpipe import kafka
from iotpipe.contract import SENSOR_TYPES, SensorEvent, SensorType, now_utc
from iotpipe.settings import KafkaSettings


def sample_events(count: int, *, sensors: int = 20, seed: int = 7) -> list[SensorEvent]:
    """A deterministic batch of valid readings spread over ``sensors`` sensors."""
    rng = random.Random(seed)
    types = list(SensorType)
    start = now_utc() - timedelta(seconds=count)
    events = []
    for i in range(count):
        sensor = i % sensors
        sensor_type = types[sensor % len(types)]
        spec = SENSOR_TYPES[sensor_type]
        events.append(
            SensorEvent(
                event_id=uuid.UUID(int=rng.getrandbits(128)),
                sensor_id=f"sensor-{sensor:04d}",
                sensor_type=sensor_type,
                timestamp=start + timedelta(seconds=i),
                value=round(rng.uniform(spec.min_value, spec.max_value), 3),
                unit=spec.unit,
                location=f"site-{sensor % 3}",
            )
        )
    return events


async def produce(
    settings: KafkaSettings, topic: str, events: list[SensorEvent]
) -> dict[str, set[int]]:
    """Send keyed events (acks=all, idempotent); return the partitions each key landed on."""
    producer = kafka.producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, e.to_json(), key=e.sensor_id.encode()) for e in events
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    placed: dict[str, set[int]] = {}
    for event, record in zip(events, metadata, strict=True):
        placed.setdefault(event.sensor_id, set()).add(record.partition)
    return placed
