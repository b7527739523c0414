"""Every service's app, live on uvicorn, against the session's real infrastructure.

Each service runs in-process on a free loopback port (its own thread and event loop, its
lifespan started once), exactly as `serve()` runs it in a pod, and schemathesis talks to
it over real HTTP. A service starts the first time a test asks for it and stops at the end
of the session. What the services share:

- Kafka: the session broker, with topics of this folder's own (``fuzz-*``);
- the lake: one temporary folder with synthetic Gold (the quality gate validates it, the
  warehouse loader loads it);
- PostgreSQL: a fresh database in the session server for the loader;
- the warehouse loader asks the live quality gate for its verdicts.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from dlq_inspector.app import build_app as build_dlq_inspector
from dlq_inspector.settings import DlqSettings
from fastapi import FastAPI
from quality_gate.app import build_app as build_quality_gate
from quality_gate.settings import GateSettings
from sensor_simulator.api import build_app as build_simulator
from sensor_simulator.config import SimulatorSettings
from warehouse_loader.app import build_app as build_loader
from warehouse_loader.sample import sample_gold, write_gold
from warehouse_loader.settings import LoaderSettings

from iotpipe import kafka
from iotpipe.contract import ErrorType
from iotpipe.demo import sample_events
from iotpipe.dlq import DeadLetter
from iotpipe.lake import Lake
from iotpipe.local import Postgres
from iotpipe.local.process import free_port
from iotpipe.settings import KafkaSettings, LakeSettings

TOKEN = "fuzz-test-token-0123456789"
"""Every service's API token in this folder."""
SIMULATOR_MAX_RATE = 20.0
"""A fuzzed run the simulator accepts produces at most this many events/s (until shutdown)."""
GOLD_START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
"""Synthetic Gold in the lake: 24 five-minute windows (10:00 to 12:00) of 10 sensors."""
STARTUP_TIMEOUT_S = 60.0
RESPONSES: Counter[tuple[str, str, int]] = Counter()
"""(service, operation, status code) of every response the fuzz tests saw."""


class LiveServer:
    """An app served by uvicorn on a free port, in a thread and event loop of its own.

    The app is built inside that loop: a service may make its async clients when built.
    """

    def __init__(self, build: Callable[[], FastAPI]) -> None:
        self.build = build
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self._serve()), name=f"uvicorn-{self.port}"
        )

    async def _serve(self) -> None:
        config = uvicorn.Config(
            self.build(), host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        await self.server.serve()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while self.server is None or not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"the app on port {self.port} failed to start (see the log)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the app on port {self.port} did not start in time")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True  # lifespan shutdown runs: runs flush, clients close
        self.thread.join(timeout=60)


class Services:
    """Starts each service on first use; stops them all at the end of the session."""

    def __init__(
        self,
        builders: dict[str, Callable[[], FastAPI]],
        prepare: dict[str, Callable[[str], None]],
    ) -> None:
        self.builders = builders
        self.prepare = prepare
        self.running: dict[str, LiveServer] = {}

    def url(self, name: str) -> str:
        if name not in self.running:
            server = LiveServer(self.builders[name])
            server.start()
            self.running[name] = server
            if name in self.prepare:
                self.prepare[name](server.url)
        return self.running[name].url

    def stop(self) -> None:
        for server in reversed(self.running.values()):
            server.stop()


def _dead_letters() -> list[DeadLetter]:
    """A few dead letters of every error type, so that reads find something."""
    kinds = list(ErrorType)
    return [
        DeadLetter(
            error_type=kinds[i % len(kinds)],
            error_detail="seeded by tests/fuzz",
            source_topic="sensor-events",
            source_partition=i % 3,
            source_offset=i,
            source_timestamp_ms=1_790_000_000_000 + i,
            dead_lettered_at_ms=1_790_000_001_000 + i,
            value=event.to_json() if i % 2 else b"{not json",
        )
        for i, event in enumerate(sample_events(8, sensors=4, seed=13))
    ]


async def _prepare_kafka(settings: KafkaSettings) -> None:
    """Create this folder's topics and seed its DLQ."""
    await kafka.ensure_topics(
        settings,
        [kafka.TopicSpec(settings.events_topic, 3), kafka.TopicSpec(settings.dlq_topic, 3)],
    )
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for letter in _dead_letters():
            await producer.send_and_wait(
                settings.dlq_topic,
                letter.value,
                key=letter.key.encode(),
                headers=letter.headers(),
                partition=letter.source_partition,
            )
    finally:
        await producer.stop()


def openapi_documents() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, as its ``/openapi.json`` serves it.

    Built from the apps without starting them (no infrastructure needed), so that
    schemathesis can make one test per operation at collection time.
    """
    common: dict[str, Any] = {"api_token": TOKEN}

    def documents() -> dict[str, dict[str, Any]]:
        apps = {
            "sensor_simulator": build_simulator(SimulatorSettings(**common)),
            "dlq_inspector": build_dlq_inspector(DlqSettings(**common)),
            "quality_gate": build_quality_gate(GateSettings(**common)),
            "warehouse_loader": build_loader(
                LoaderSettings(**common, warehouse_dsn="postgresql://unused@localhost/unused")
            ),
        }
        return {name: app.openapi() for name, app in apps.items()}

    return documents()


@pytest.fixture(scope="session")
async def fuzz_kafka(kafka_settings: KafkaSettings) -> KafkaSettings:
    suffix = uuid.uuid4().hex[:8]
    settings = kafka_settings.model_copy(
        update={"events_topic": f"fuzz-events-{suffix}", "dlq_topic": f"fuzz-dlq-{suffix}"}
    )
    await _prepare_kafka(settings)
    return settings


@pytest.fixture(scope="session")
def fuzz_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("fuzz") / "lake"))
    write_gold(lake.gold_windows, sample_gold(GOLD_START, windows=24, sensors=10))
    return lake


@pytest.fixture(scope="session")
def fuzz_database(postgres: Postgres) -> Iterator[str]:
    """The DSN of a fresh database for the loader (dropped afterwards)."""
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def services(
    fuzz_kafka: KafkaSettings,
    fuzz_lake: Lake,
    fuzz_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Services]:
    """The four services, each started the first time a test asks for its URL."""
    home = tmp_path_factory.mktemp("fuzz-simulator")
    lake = LakeSettings(root=fuzz_lake.root)
    common: dict[str, Any] = {"api_token": TOKEN, "log_json": False}

    def simulator() -> FastAPI:
        settings = SimulatorSettings(
            **common, kafka=fuzz_kafka, max_rate=SIMULATOR_MAX_RATE, replay_dir=home
        )
        return build_simulator(settings)

    def dlq_inspector() -> FastAPI:
        return build_dlq_inspector(
            DlqSettings(**common, kafka=fuzz_kafka, ledger_topic=f"{fuzz_kafka.dlq_topic}-replays")
        )

    def quality_gate() -> FastAPI:
        return build_quality_gate(GateSettings(**common, lake=lake))

    def warehouse_loader() -> FastAPI:
        settings = LoaderSettings(
            **common,
            warehouse_dsn=fuzz_database,
            quality_gate_url=registry.url("quality_gate"),
            gate_timeout_s=5,
            lake=lake,
        )
        return build_loader(settings)

    def start_a_run(url: str) -> None:
        """A live run (1 event/s) for the fuzzing to find, read, change and stop."""
        response = httpx.post(
            f"{url}/runs",
            json={"rate": 1, "sensors": 10},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text

    registry = Services(
        {
            "sensor_simulator": simulator,
            "dlq_inspector": dlq_inspector,
            "quality_gate": quality_gate,
            "warehouse_loader": warehouse_loader,
        },
        prepare={"sensor_simulator": start_a_run},
    )
    yield registry
    registry.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the fuzzing got back: responses per operation and status code."""
    if not RESPONSES:
        return
    by_operation: dict[tuple[str, str], Counter[int]] = {}
    for (service, operation, code), count in sorted(RESPONSES.items()):
        by_operation.setdefault((service, operation), Counter())[code] += count
    terminalreporter.section("fuzzed responses by status code")
    for (service, operation), codes in by_operation.items():
        shown = ", ".join(f"{code}: {count}" for code, count in sorted(codes.items()))
        terminalreporter.write_line(f"{service:17} {operation:32} {shown}")
