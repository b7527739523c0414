"""A large DLQ under a flood of stats and metrics reads: the inspector, a real process on
the session's broker, keeps its event loop free, so the liveness probe answers in time
(issue 21 item 3: stats and metrics read the index's tallies instead of scanning it)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from iotpipe.contract import ErrorType
from iotpipe.local.process import free_port, port_open, spawn, wait_until
from iotpipe.settings import KafkaSettings

from .conftest import TOKEN, dlq_settings, letter, running, topic_names

pytestmark = pytest.mark.integration

LETTERS = 100_000
READERS = 32
PROBE_TIMEOUT_S = 3.0  # the chart's livenessProbe.timeoutSeconds


@pytest.mark.timeout(900)
async def test_healthz_answers_in_time_while_stats_are_hammered(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    topics = topic_names()
    now = int(time.time() * 1000)
    letters = [
        letter(b'{"sensor_id": "s-1", "val', ErrorType.MALFORMED_JSON, offset=n, at_ms=now + n)
        for n in range(LETTERS)
    ]
    async with running(dlq_settings(kafka_settings, topics)) as writer:  # makes the topics
        await writer.write(letters)
    port, log = free_port(), tmp_path / "inspector.log"
    pid = spawn(
        [sys.executable, "-m", "dlq_inspector"],
        log,
        env={
            "DLQ_API_TOKEN": TOKEN,
            "DLQ_HOST": "127.0.0.1",
            "DLQ_PORT": str(port),
            "DLQ_LEDGER_TOPIC": topics["ledger_topic"],
            "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "KAFKA_EVENTS_TOPIC": topics["events_topic"],
            "KAFKA_DLQ_TOPIC": topics["dlq_topic"],
        },
    )
    try:
        wait_until(lambda: port_open(port), pid=pid, timeout=120, what="the inspector", log=log)
        limits = httpx.Limits(max_connections=READERS + 4)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=300, limits=limits
        ) as client:
            deadline = time.monotonic() + 300
            while (await client.get("/dlq/stats")).json().get("total", 0) < LETTERS:
                assert time.monotonic() < deadline, "the inspector did not index every letter"
                await asyncio.sleep(0.5)
            stop = asyncio.Event()
            answered: list[dict] = []

            async def reader(path: str) -> None:
                while not stop.is_set():
                    response = await client.get(path)
                    assert response.status_code == 200
                    if path == "/dlq/stats":
                        answered.append(response.json())

            paths = ("/dlq/stats", "/metrics") * (READERS // 2)
            flood = [asyncio.create_task(reader(path)) for path in paths]
            waits = []
            try:
                await asyncio.sleep(1.0)  # the flood in full swing
                for _ in range(5):
                    started = time.monotonic()
                    assert (await client.get("/healthz")).status_code == 200
                    waits.append(time.monotonic() - started)
                    await asyncio.sleep(0.2)
            finally:
                stop.set()
                await asyncio.gather(*flood)
    finally:
        os.kill(pid, signal.SIGTERM)

    assert max(waits) < PROBE_TIMEOUT_S, f"/healthz took {max(waits):.1f}s under the flood"
    assert len(answered) >= READERS, "the flood was served"
    assert {(s["total"], s["unresolved"]) for s in answered} == {(LETTERS, LETTERS)}
