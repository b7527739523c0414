"""The inspector starting before its broker: it comes up, says it is waiting, and starts by
itself once Kafka is reachable (in a cluster its pod waits instead of crash-looping)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
from dlq_inspector.app import build_app

from iotpipe.local.process import free_port
from iotpipe.settings import KafkaSettings

from .conftest import AUTH, dlq_settings, topic_names


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def forwarder(port: int, target: str) -> AsyncIterator[None]:
    """A bootstrap address that appears late: ``port`` forwards to the real broker."""
    host, target_port = target.rsplit(":", 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def test_the_inspector_waits_for_kafka_instead_of_failing(
    kafka_settings: KafkaSettings,
) -> None:
    port = free_port()
    late = kafka_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{port}"})
    settings = dlq_settings(late, topic_names())
    app = build_app(settings)
    async with app.router.lifespan_context(app):  # no broker: it must not raise
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dlq") as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["started"].startswith(
                "NotStarted: retrying after 1 failed attempt(s): KafkaConnectionError"
            )
            waiting = await client.get("/dlq/messages", headers=AUTH)
            assert waiting.status_code == 503
            assert "dlq-inspector is starting, retrying" in waiting.json()["detail"]
            assert waiting.headers["retry-after"] == "5"

            async with forwarder(port, kafka_settings.bootstrap_servers.split(",")[0]):
                deadline = time.monotonic() + 60
                while (await client.get("/readyz")).status_code != 200:
                    assert time.monotonic() < deadline, (await client.get("/readyz")).json()
                    await asyncio.sleep(0.5)
                listed = await client.get("/dlq/messages", headers=AUTH)
                assert listed.status_code == 200, listed.text
                assert listed.json()["items"] == []
