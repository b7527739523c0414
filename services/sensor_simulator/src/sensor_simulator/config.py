"""Settings (environment) and run configurations (requests).

:class:`EngineSettings` is what the producing engine needs (Kafka, producer tuning,
ground truth) and is all the CLI reads; :class:`SimulatorSettings` adds the HTTP
service's settings. Both read ``SIMULATOR_*`` (Kafka itself: ``KAFKA_*``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from iotpipe.contract import SensorType
from iotpipe.settings import KafkaSettings, ServiceSettings

MAX_READINGS_PER_SENSOR_PER_S = 1000
"""Event times have millisecond precision and Silver deduplicates on (sensor_id,
timestamp), so one sensor cannot report more than once per millisecond."""
MIN_RATE = 0.001
"""Lowest target rate (events/s). Far below it the pacing arithmetic overflows (a rate of
5e-324 made a run fail and a PATCH answer 500; found by tests/fuzz)."""


class EngineSettings(BaseSettings):
    """How the simulator produces (env ``SIMULATOR_*``)."""

    model_config = SettingsConfigDict(env_prefix="SIMULATOR_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="zstd",
        description="Kafka compression codec. Default zstd (level 3): aiokafka compresses "
        "lz4 at level 9, ~5x the CPU of zstd per record, with a worse ratio.",
    )
    batch_bytes: int = Field(
        default=256 * 1024, ge=16 * 1024, description="Uncompressed size of one record batch."
    )
    linger_ms: int = Field(
        default=10, ge=1, le=1000, description="How often a paced run generates and sends."
    )
    delivery_attempts: int = Field(
        default=5,
        ge=1,
        description="Attempts per batch (each after aiokafka's own retries) before its "
        "records count as failed.",
    )
    max_inflight_batches: int = Field(
        default=32, ge=1, description="Unacknowledged batches before generation waits."
    )
    ground_truth_dir: Path | None = Field(
        default=None,
        description="If set, each run writes <dir>/<run id>.jsonl: one line per injection.",
    )
    transactional_id_prefix: str = Field(
        default="sensor-simulator",
        min_length=1,
        description="A transactional run's producer has transactional id <prefix>-<run id> "
        "(the chart's KafkaUser may write ids with this prefix).",
    )

    def producer_options(self, *, transactional_id: str | None = None) -> dict[str, object]:
        options: dict[str, object] = {
            "compression_type": None if self.compression == "none" else self.compression,
            "max_batch_size": self.batch_bytes,
            "linger_ms": self.linger_ms,
        }
        if transactional_id is not None:
            options["transactional_id"] = transactional_id
        return options


class SimulatorSettings(ServiceSettings, EngineSettings):
    """The HTTP service's settings (env ``SIMULATOR_*``)."""

    model_config = SettingsConfigDict(env_prefix="SIMULATOR_", extra="ignore")

    max_rate: float = Field(
        default=200_000, gt=0, description="Highest target rate (events/s) a run may ask for."
    )
    replay_dir: Path | None = Field(
        default=None,
        description="Folder that `POST /replays` may read CSV files from by path; "
        "unset: path replays are refused (uploads still work).",
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="Largest CSV upload to POST /replays (the request body may be this plus "
        "its multipart framing); keep it well under the pod's /tmp, where uploads spool.",
    )


class MalformedKind(StrEnum):
    """The kinds of broken record the simulator injects, and what the DLQ calls them."""

    BROKEN_JSON = "broken_json"
    """Truncated JSON (the event id survives): ``malformed_json``."""
    WRONG_TYPE = "wrong_type"
    """``value`` is a string: ``schema_mismatch``."""
    MISSING_FIELD = "missing_field"
    """A required field is absent: ``missing_required``."""
    OUT_OF_CONTRACT = "out_of_contract"
    """A wrong unit or an unknown sensor type: ``out_of_contract``."""


class Injections(BaseModel):
    """What fraction of readings to corrupt, and how. Each reading gets at most one."""

    model_config = ConfigDict(extra="forbid")

    anomaly_rate: float = Field(default=0.0, ge=0, le=1, description="Fraction of spikes.")
    anomaly_sigma: float = Field(
        default=6.0, ge=3, le=100, description="Spike size in the sensor's noise sigmas (min)."
    )
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_kinds: list[MalformedKind] = Field(
        default_factory=lambda: list(MalformedKind), min_length=1
    )
    late_rate: float = Field(default=0.0, ge=0, le=1)
    late_max_minutes: float = Field(
        default=30, gt=0, le=7 * 24 * 60, description="Late events are up to this far behind."
    )
    drift_sigma: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="Slow wander of each sensor's level (a mean-reverting random walk), its "
        "stddev in the sensor's noise sigmas; 0: off.",
    )
    drift_readings: float = Field(
        default=1000,
        ge=2,
        description="Time constant of the wander, in readings of one sensor.",
    )
    dropout_fraction: float = Field(
        default=0.0, ge=0, le=1, description="Fraction of sensors silenced per interval."
    )
    dropout_seconds: float = Field(default=30, gt=0, description="How long a dropout lasts.")
    dropout_interval_seconds: float = Field(
        default=60, gt=0, description="A new set of sensors drops out this often."
    )

    @model_validator(mode="after")
    def _fractions(self) -> Self:
        total = self.anomaly_rate + self.malformed_rate + self.late_rate
        if total > 1:
            raise ValueError(
                f"anomaly_rate + malformed_rate + late_rate is {total:g}; it must be at most 1"
            )
        if self.dropout_seconds > self.dropout_interval_seconds:
            raise ValueError("dropout_seconds must not exceed dropout_interval_seconds")
        return self


class Transactions(BaseModel):
    """Produce in Kafka transactions: what a transactional producer upstream looks like to
    the pipeline, aborts included (every consumer of the pipeline reads ``read_committed``)."""

    model_config = ConfigDict(extra="forbid")

    interval_ms: int = Field(
        default=500, ge=10, le=60_000, description="How long each transaction stays open."
    )
    abort_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Fraction of transactions aborted instead of committed (their records "
        "are on the topic, acknowledged, and read by no one).",
    )


class RunConfig(Injections):
    """A synthetic run: who reports, how fast, for how long, with which injections."""

    rate: float | None = Field(
        default=1000,
        ge=MIN_RATE,
        description="Target events/s; null (CLI and benchmarks only) = as fast as possible.",
    )
    max_events: int | None = Field(
        default=None, gt=0, description="Stop after this many events (bounded mode)."
    )
    duration_seconds: float | None = Field(default=None, gt=0, description="Stop after this long.")
    sensors: int = Field(default=100, ge=1, le=1_000_000)
    sensor_types: list[SensorType] = Field(
        default_factory=lambda: list(SensorType), min_length=1, description="Round-robin."
    )
    locations: list[str] = Field(
        default_factory=lambda: ["plant-a", "plant-b", "plant-c"], min_length=1
    )
    sensor_prefix: str = Field(default="sensor", min_length=1, max_length=64)
    seed: int | None = Field(default=None, description="Same seed, same readings.")
    topic: str | None = Field(default=None, description="Default: KAFKA_EVENTS_TOPIC.")
    transactions: Transactions | None = Field(
        default=None,
        description="Produce in Kafka transactions (null: idempotent, no transactions).",
    )

    @model_validator(mode="after")
    def _per_sensor(self) -> Self:
        if self.rate is not None and self.rate / self.sensors > MAX_READINGS_PER_SENSOR_PER_S:
            raise ValueError(
                f"rate {self.rate:g}/s over {self.sensors} sensors is more than "
                f"{MAX_READINGS_PER_SENSOR_PER_S} readings per sensor per second "
                "(event times have millisecond precision); add sensors or lower the rate"
            )
        return self


class RunUpdate(BaseModel):
    """``PATCH /runs/{id}``: change a live run."""

    model_config = ConfigDict(extra="forbid")

    rate: float | None = Field(default=None, ge=MIN_RATE, description="New target events/s.")
    anomaly_rate: float | None = Field(default=None, ge=0, le=1)


class RunState(StrEnum):
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
