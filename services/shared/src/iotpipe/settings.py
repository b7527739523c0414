"""Configuration shared by every service and job (pydantic-settings).

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix``
(``SIMULATOR_``, ``DLQ_``, ...). Kafka connection settings are common to all
and read from ``KAFKA_*``. Secrets (API token, SASL password) come from the
environment, which Kubernetes fills from Secrets; they are never defaulted.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from iotpipe.contract import EventTimeBounds


class KafkaSettings(BaseSettings):
    """How to reach Kafka and which topics the pipeline uses (env ``KAFKA_*``)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(
        default=None, description="CA bundle of the cluster (Strimzi's cluster CA)."
    )
    events_topic: str = "sensor-events"
    dlq_topic: str = "sensor-events-dlq"
    client_id: str = "iotpipe"

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


class ServiceSettings(BaseSettings):
    """What every FastAPI service has. Subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore")

    api_token: SecretStr = Field(
        min_length=16,
        description="Bearer token that mutating endpoints require (from a Kubernetes Secret).",
    )
    read_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Optional read-only bearer token: accepted (besides api_token) by routes "
        "that return sensitive data without changing anything, e.g. dead-letter payloads.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body a mutating route reads (413 beyond); an upload "
        "route may have its own limit.",
    )
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)


class ContractSettings(BaseSettings):
    """The event contract's tunable rule (env ``CONTRACT_*``): how far an event's time may
    lie from its arrival in Kafka. The stream judges by it and the DLQ inspector checks a
    replay against it, so both read the same variables. ``none`` turns a bound off."""

    model_config = SettingsConfigDict(
        env_prefix="CONTRACT_", extra="ignore", env_parse_none_str="none"
    )

    max_ahead_seconds: float | None = Field(
        default=3600.0,
        gt=0,
        description="How far ahead of its Kafka record's time an event may be dated.",
    )
    max_behind_seconds: float | None = Field(
        default=None,
        gt=0,
        description="How far behind it an event may be dated (default: no bound, so that "
        "backfills and replays of old readings land).",
    )

    @property
    def time_bounds(self) -> EventTimeBounds:
        def span(seconds: float | None) -> timedelta | None:
            return None if seconds is None else timedelta(seconds=seconds)

        return EventTimeBounds(span(self.max_ahead_seconds), span(self.max_behind_seconds))


class LakeSettings(BaseSettings):
    """Where the medallion lake lives (env ``LAKE_*``): a local folder or ``s3a://bucket/prefix``."""

    model_config = SettingsConfigDict(env_prefix="LAKE_", extra="ignore")

    root: str = Field(default="lake", description="Local path or s3a:// URI of the lake's root.")


S = TypeVar("S", bound=BaseSettings)


def from_environment(cls: type[S], build: Callable[[], S] | None = None) -> S:
    """``cls()`` for a program's entry point: settings from the environment, or, when one is
    missing or invalid, a message naming each environment variable and exit status 2 (not a
    traceback). ``build`` makes the settings another way (e.g. from the command line too)."""
    try:
        return build() if build is not None else cls()
    except ValidationError as exc:
        failed = _settings_class(cls, exc.title)  # a nested one's default factory may fail
        lines = [f"  {_variable(failed, error['loc'])}: {error['msg']}" for error in exc.errors()]
        print(
            f"{cls.__name__}: the configuration is incomplete or invalid "
            "(set these environment variables):\n" + "\n".join(lines),
            file=sys.stderr,
        )
        raise SystemExit(2) from None


def _settings_class(cls: type[BaseSettings], title: str) -> type[BaseSettings]:
    """``cls`` or the nested settings class (a field's type) called ``title``."""
    if cls.__name__ == title:
        return cls
    for info in cls.model_fields.values():
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseSettings):
            found = _settings_class(nested, title)
            if found.__name__ == title:
                return found
    return cls


def _variable(cls: type[BaseSettings], where: tuple[int | str, ...]) -> str:
    """The environment variable a validation error's location stands for."""
    prefix, field = str(cls.model_config.get("env_prefix", "")), str(where[0])
    info = cls.model_fields.get(field)
    if info is None:  # an alias (validation_alias) is the variable's whole name
        return field.upper()
    nested = info.annotation
    if isinstance(nested, type) and issubclass(nested, BaseSettings) and len(where) > 1:
        return _variable(nested, where[1:])
    return (prefix + field).upper()
