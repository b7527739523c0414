"""End-to-end fixtures: a run's own topics, lake and warehouse database on the session's
real Kafka, PostgreSQL and Spark, and the quality gate and loader serving that lake."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from local_pipeline.pipeline import LocalPipeline
from local_pipeline.services import Services, gate_and_loader
from pyspark.sql import SparkSession

from iotpipe.lake import Lake
from iotpipe.local import Postgres
from iotpipe.settings import KafkaSettings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: the whole pipeline end to end (tests/e2e; slow, real everything)"
    )


@contextmanager
def new_database(postgres: Postgres) -> Iterator[str]:
    """The DSN of a new, empty database in the session's server (dropped afterwards)."""
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(postgres.dsn)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def pipeline_for(
    kafka_settings: KafkaSettings,
    postgres: Postgres,
    spark: SparkSession,
    workdir: Path,
    *,
    rate_hz: float,
) -> Iterator[tuple[LocalPipeline, Services]]:
    """A pipeline with fresh topics, lake and database, and its gate and loader serving;
    its streaming job (if started) is stopped afterwards."""
    import asyncio

    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kafka = kafka_settings.model_copy(update={"events_topic": name, "dlq_topic": f"{name}-dlq"})
    with new_database(postgres) as dsn:
        pipeline = LocalPipeline(
            kafka=kafka,
            lake=Lake(str(workdir / "lake")),
            warehouse_dsn=dsn,
            workdir=workdir,
            spark=spark,
            rate_hz=rate_hz,
        )
        asyncio.run(pipeline.create_topics())
        try:
            with gate_and_loader(pipeline.lake, dsn) as services:
                yield pipeline, services
        finally:
            pipeline.stop_stream()
