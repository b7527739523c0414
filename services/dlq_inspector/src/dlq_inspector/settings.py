"""The inspector's configuration (env ``DLQ_*``; Kafka from ``KAFKA_*``, the contract's
event-time bounds from ``CONTRACT_*``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from iotpipe.settings import ContractSettings, ServiceSettings


class DlqSettings(ServiceSettings):
    """Settings of the DLQ inspector service."""

    model_config = SettingsConfigDict(env_prefix="DLQ_", extra="ignore")

    contract: ContractSettings = Field(
        default_factory=ContractSettings,
        description="The event-time bounds a replayed event must keep, as the stream does.",
    )
    ledger_topic: str = Field(
        default="sensor-events-dlq-replays",
        description="Compacted topic that records every replayed message (key = source coordinates).",
    )
    create_topics: bool = Field(
        default=True,
        description="Create the DLQ and ledger topics at startup if they are missing "
        "(turn off where Strimzi KafkaTopics own them).",
    )
    topic_partitions: int = Field(default=3, ge=1, description="Partitions of created topics.")
    sync_replay_limit: int = Field(
        default=1_000,
        ge=1,
        description="Replays selecting more messages than this run as background jobs (202).",
    )
    max_page_size: int = Field(default=500, ge=1, le=10_000)
    replay_chunk: int = Field(
        default=2_000, ge=1, description="Messages sent (then recorded in the ledger) per step."
    )
    replay_in_flight: int = Field(
        default=4,
        ge=1,
        description="Chunks being sent and recorded while the next one is read and validated.",
    )
    replay_transactional_id: str = Field(
        default="dlq-inspector-replay",
        min_length=1,
        description="Kafka transactional id of the replay producer: each chunk's events and "
        "its ledger records commit in one transaction (one inspector per id: a second one "
        "fences the first).",
    )
    replay_compression: Literal["zstd", "lz4", "gzip", "snappy", "none"] = Field(
        default="zstd",
        description="Compression of replayed events and ledger records. zstd: aiokafka's lz4 "
        "is level 9 (LZ4-HC), ~6 us of CPU per event against ~1.4 us for zstd level 3.",
    )
    results_kept: int = Field(
        default=1_000,
        ge=0,
        description="Per-message results a background job keeps (refusals first); counts are exact.",
    )
    jobs_kept: int = Field(default=100, ge=1, description="Finished replay jobs kept in memory.")
    recent_window_s: int = Field(
        default=300, ge=1, description="Window of the 'recent rate' in /dlq/stats."
    )
    sync_timeout_s: float = Field(
        default=30.0, gt=0, description="How long a request waits for the index to catch up."
    )

    def producer_overrides(self) -> dict[str, Any]:
        """The replay producer's options on top of :data:`iotpipe.kafka.PRODUCER_DEFAULTS`."""
        compression = None if self.replay_compression == "none" else self.replay_compression
        return {"compression_type": compression, "transactional_id": self.replay_transactional_id}
