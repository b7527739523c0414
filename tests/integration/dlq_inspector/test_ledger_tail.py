"""The ledger's tail: this replica's own ledger writes are not read back, other writers' are,
and a replay pipelined over many small chunks still accounts for every message exactly."""

from __future__ import annotations

import time

import pytest
from dlq_inspector.app import Inspector

from iotpipe import kafka
from iotpipe.contract import ErrorType
from iotpipe.settings import KafkaSettings

from .conftest import AUTH, dlq_settings, letter, running, wrong_unit_letters

pytestmark = pytest.mark.integration


async def test_own_ledger_writes_are_skipped_and_other_writers_are_applied(
    kafka_settings: KafkaSettings, topics: dict[str, str]
) -> None:
    settings = dlq_settings(kafka_settings, topics, replay_chunk=7, replay_in_flight=2)
    async with running(settings) as first:
        now = int(time.time() * 1000)
        letters = wrong_unit_letters(30, start_ms=now)
        broken = [letter(b"{", ErrorType.MALFORMED_JSON, offset=50 + i, at_ms=now) for i in (0, 1)]
        ids = await first.write([*letters[:15], *broken, *letters[15:]])
        inspector: Inspector = first.app.state.inspector
        read_before = inspector.ledger_tail.applied

        body = {"filter": {}, "patch": {"unit": "celsius"}, "background": False}
        job = (await first.client.post("/dlq/replay", json=body, headers=AUTH)).json()
        temperature = sum(b'"temperature"' in d.value for d in letters)
        assert job["status"] == "succeeded"
        assert job["counts"]["replayed"] == temperature
        assert job["counts"]["refused"] == 32 - temperature
        refused = {r["id"] for r in job["results"] if r["result"] == "refused"}
        assert set(ids[15:17]) <= refused  # the two that are not JSON, in the middle
        assert len(await first.events()) == temperature
        stats = (await first.client.get("/dlq/stats")).json()  # the tail is at the ledger's end
        assert (stats["replayed"], stats["unresolved"]) == (temperature, 32 - temperature)
        assert inspector.ledger_tail.applied == read_before  # nothing of its own read back

        # an operator (another writer) marks one replayed message unresolved: a tombstone
        done = next(r["id"] for r in job["results"] if r["result"] == "replayed")
        source = (
            await first.client.get(f"/dlq/messages/{done.replace(':', '/')}", headers=AUTH)
        ).json()
        key = "{topic}-{partition}-{offset}".format(**source["source"])
        producer = kafka.producer(settings.kafka)
        await producer.start()
        try:
            await producer.send_and_wait(settings.ledger_topic, None, key=key.encode())
        finally:
            await producer.stop()
        stats = (await first.client.get("/dlq/stats")).json()
        assert stats["replayed"] == temperature - 1
        assert inspector.ledger_tail.applied == read_before + 1

        # a second replica replays it again; the first sees that replay through the ledger
        async with running(settings) as second:
            again = await second.replay(ids=[done], patch={"unit": "celsius"})
            assert again.json()["counts"]["replayed"] == 1
        stats = (await first.client.get("/dlq/stats")).json()
        assert stats["replayed"] == temperature
        assert inspector.ledger_tail.applied == read_before + 2
        assert len(await first.events()) == temperature + 1
