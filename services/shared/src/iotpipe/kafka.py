"""Kafka client factory (aiokafka): one place that knows how the pipeline talks to Kafka.

Producers default to what the pipeline needs for correctness: ``acks=all`` and
idempotence (no duplicates from retries), LZ4 compression and a short linger
so that records batch; consumers read committed records only. Security (TLS, SCRAM)
comes from :class:`KafkaSettings`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from iotpipe.settings import KafkaSettings

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "compression_type": "lz4",
    "linger_ms": 5,
    "max_batch_size": 256 * 1024,
    "request_timeout_ms": 30_000,
    "retry_backoff_ms": 100,
}


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    """The options every aiokafka client takes: servers and security."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
        "client_id": settings.client_id,
    }
    context = settings.ssl_context()
    if context is not None:
        options["ssl_context"] = context
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


def producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """A producer with the pipeline's delivery guarantees; call ``await p.start()``."""
    return AIOKafkaProducer(**connection_options(settings), **{**PRODUCER_DEFAULTS, **overrides})


def consumer(settings: KafkaSettings, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer (manual offsets unless a ``group_id`` is given); call ``await c.start()``.

    It reads committed records only (``read_committed``): a transaction's records appear
    when it commits, an aborted one's never, and ``end_offsets`` is the last stable offset.
    Every consumer of the pipeline reads this way (Spark's too: ``kafka.isolation.level``),
    so a transactional writer's abort leaves nothing behind anywhere."""
    options: dict[str, Any] = {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    return AIOKafkaConsumer(*topics, **connection_options(settings), **{**options, **overrides})


def admin(settings: KafkaSettings, **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(settings), **overrides)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


def pipeline_topics(settings: KafkaSettings, *, partitions: int = 3) -> list[TopicSpec]:
    """The topics the pipeline needs (the Helm chart declares the same as KafkaTopics)."""
    return [
        TopicSpec(settings.events_topic, partitions),
        TopicSpec(settings.dlq_topic, partitions),
    ]


async def ensure_topics(settings: KafkaSettings, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    client = admin(settings)
    await client.start()
    try:
        existing = set(await client.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config)
            for s in wanted
        ]
        response = await client.create_topics(new, timeout_ms=30_000)
        for name, code, *rest in response.topic_errors:
            # 0: created; TOPIC_ALREADY_EXISTS: created concurrently, which is what we wanted.
            if code not in (0, TopicAlreadyExistsError.errno):
                message = rest[0] if rest else ""
                raise RuntimeError(f"could not create topic {name}: error {code} {message}")
        log.info("created topics %s", [s.name for s in wanted])
        return [s.name for s in wanted]
    finally:
        await client.close()


async def ping(settings: KafkaSettings) -> None:
    """Raise unless the cluster answers a metadata request (a readiness check)."""
    client = admin(settings, request_timeout_ms=5_000)
    await client.start()
    try:
        await client.list_topics()
    finally:
        await client.close()
