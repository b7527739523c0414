"""Acceptance against the real broker: exact delivery, rate control, clean stop, auth, 422s."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
from sensor_simulator.delivery import partition_for
from sensor_simulator.generator import INJECTED_HEADER

from iotpipe.settings import KafkaSettings
from tests.integration.sensor_simulator.conftest import AUTH, metric_samples, read_topic, wait_for

pytestmark = pytest.mark.integration

EVENT_ID = re.compile(rb'"event_id":"([0-9a-f-]{36})"')


def event_id(value: bytes) -> str:
    """The event id of any record the simulator sends (even a broken one keeps it)."""
    found = EVENT_ID.search(value)
    assert found is not None, value
    return found.group(1).decode()


def injected_counts(samples: dict[tuple[str, tuple], float]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (name, labels), value in samples.items():
        if name == "simulator_anomalies_injected_total":
            counts["anomaly"] += int(value)
        elif name == "simulator_malformed_injected_total":
            counts[f"malformed:{dict(labels)['kind']}"] += int(value)
        elif name == "simulator_late_injected_total":
            counts["late"] += int(value)
    return counts


async def test_a_bounded_run_of_50000_events_arrives_exactly(
    client: httpx.AsyncClient, topic: str, kafka_settings: KafkaSettings
):
    before = injected_counts(await metric_samples(client))
    config = {
        "rate": 200_000,
        "max_events": 50_000,
        "sensors": 500,
        "anomaly_rate": 0.01,
        "malformed_rate": 0.01,
        "late_rate": 0.01,
        "seed": 42,
        "topic": topic,
    }
    created = await client.post("/runs", json=config, headers=AUTH)
    assert created.status_code == 201, created.text
    status = await wait_for(client, created.json()["id"])
    assert status["state"] == "completed", status
    counters = status["counters"]
    assert counters["generated"] == counters["delivered"] == 50_000
    assert counters["failed"] == 0

    records = await read_topic(kafka_settings, topic)
    assert len(records) == 50_000
    ids = {event_id(r.value) for r in records}
    assert len(ids) == 50_000
    placed: dict[bytes, set[int]] = {}
    for record in records:
        placed.setdefault(record.key, set()).add(record.partition)
    assert len(placed) == 500
    assert all(len(p) == 1 for p in placed.values())
    assert all(p == {partition_for(key, 3)} for key, p in placed.items())

    marked = Counter(dict(r.headers)[INJECTED_HEADER].decode() for r in records if r.headers)
    after = injected_counts(await metric_samples(client))
    assert marked == after - before
    assert marked["anomaly"] == sum(counters["anomalies"].values()) > 300
    assert marked["late"] == counters["late"] > 300
    malformed = {k.removeprefix("malformed:"): n for k, n in marked.items() if ":" in k}
    assert malformed == counters["malformed"]
    assert sum(malformed.values()) > 300

    lines = await asyncio.to_thread(Path(status["ground_truth"]).read_bytes)
    truth = [orjson.loads(line) for line in lines.splitlines()]
    assert Counter(t["kind"] for t in truth) == marked
    injected_ids = {event_id(r.value) for r in records if r.headers}
    assert {t["event_id"] for t in truth} == injected_ids


async def delivered(client: httpx.AsyncClient, run_id: str) -> tuple[float, int]:
    status = (await client.get(f"/runs/{run_id}")).json()
    return time.monotonic(), status["counters"]["delivered"]


async def rate_over(client: httpx.AsyncClient, run_id: str, seconds: float) -> float:
    t0, n0 = await delivered(client, run_id)
    await asyncio.sleep(seconds)
    t1, n1 = await delivered(client, run_id)
    return (n1 - n0) / (t1 - t0)


async def test_a_paced_run_holds_its_rate_a_patch_changes_it_and_stop_is_clean(
    client: httpx.AsyncClient, topic: str, kafka_settings: KafkaSettings
):
    created = await client.post(
        "/runs", json={"rate": 1000, "sensors": 50, "topic": topic}, headers=AUTH
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    await asyncio.sleep(1)
    steady = await rate_over(client, run_id, 10)
    assert steady == pytest.approx(1000, rel=0.05)
    achieved = (await client.get(f"/runs/{run_id}")).json()["achieved_rate"]
    assert achieved == pytest.approx(1000, rel=0.05)

    patched = await client.patch(f"/runs/{run_id}", json={"rate": 3000}, headers=AUTH)
    assert patched.status_code == 200, patched.text
    assert patched.json()["target_rate"] == 3000
    await asyncio.sleep(0.5)
    faster = await rate_over(client, run_id, 3)
    assert faster == pytest.approx(3000, rel=0.1)

    stopped = await client.post(f"/runs/{run_id}/stop", headers=AUTH)
    assert stopped.status_code == 200
    status = stopped.json()
    counters = status["counters"]
    assert status["state"] == "stopped"
    assert counters["delivered"] == counters["generated"] > 10_000
    assert counters["failed"] == counters["inflight_batches"] == 0
    assert len(await read_topic(kafka_settings, topic)) == counters["generated"]
    await asyncio.sleep(0.3)
    assert (await client.get(f"/runs/{run_id}")).json()["counters"] == counters
    again = await client.patch(f"/runs/{run_id}", json={"rate": 10}, headers=AUTH)
    assert again.status_code == 409


async def test_shutdown_what_sigterm_triggers_flushes_every_active_run(
    simulator_settings, topic: str, kafka_settings: KafkaSettings
):
    from sensor_simulator.api import build_app

    app = build_app(simulator_settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://s") as http,
    ):
        created = await http.post(
            "/runs", json={"rate": 20_000, "sensors": 100, "topic": topic}, headers=AUTH
        )
        assert created.status_code == 201
        await asyncio.sleep(1.5)
    run = app.state.runs.get(created.json()["id"])
    status = run.status()
    assert status.state == "stopped"
    assert status.counters.delivered == status.counters.generated > 0
    assert len(await read_topic(kafka_settings, topic)) == status.counters.generated


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/runs"),
        ("PATCH", "/runs/run-x"),
        ("POST", "/runs/run-x/stop"),
        ("POST", "/replays"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-of-16-chars"}])
async def test_mutating_requests_without_the_token_are_refused(
    client: httpx.AsyncClient, method, path, headers
):
    response = await client.request(method, path, json={"rate": 10}, headers=headers)
    assert response.status_code == 401
    assert "bearer token" in response.json()["detail"]
    assert (await client.get("/runs")).status_code == 200  # reading needs no token


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        ({"rate": -5}, "rate: Input should be greater than or equal to 0.001"),
        ({"rate": 5e-324}, "rate: Input should be greater than or equal to 0.001"),
        ({"sensor_types": ["temperature", "plasma"]}, "sensor_types.1: Input should be"),
        ({"rate": 500_000, "sensors": 1000}, "above the configured maximum of 200000"),
        ({"rate": None}, "rate: a target rate (events/s) is required"),
        ({"anomaly_rate": 0.7, "late_rate": 0.7}, "must be at most 1"),
        ({"rate": 50_000, "sensors": 5}, "more than 1000 readings per sensor per second"),
        ({"topic": "no-such-topic"}, "topic: topic 'no-such-topic' does not exist"),
    ],
)
async def test_bad_configs_get_422_with_a_readable_message(
    client: httpx.AsyncClient, config, detail
):
    response = await client.post("/runs", json=config, headers=AUTH)
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]
    assert not [r for r in (await client.get("/runs")).json()["items"] if r["state"] == "running"]


async def test_bad_patches_get_422_and_unknown_runs_404(client: httpx.AsyncClient, topic: str):
    created = await client.post("/runs", json={"rate": 100, "topic": topic}, headers=AUTH)
    run_id = created.json()["id"]
    too_fast = await client.patch(f"/runs/{run_id}", json={"rate": 10**7}, headers=AUTH)
    assert too_fast.status_code == 422
    assert "above the configured maximum" in too_fast.json()["detail"]
    # found by tests/fuzz: the smallest positive float made the pacing NaN, a 500
    tiny = await client.patch(f"/runs/{run_id}", json={"rate": 5e-324}, headers=AUTH)
    assert tiny.status_code == 422, tiny.text
    assert "greater than or equal to 0.001" in tiny.json()["detail"]
    negative = await client.patch(f"/runs/{run_id}", json={"anomaly_rate": -1}, headers=AUTH)
    assert negative.status_code == 422
    assert "anomaly_rate" in negative.json()["detail"]
    patched = await client.patch(f"/runs/{run_id}", json={"anomaly_rate": 0.2}, headers=AUTH)
    assert patched.json()["config"]["anomaly_rate"] == 0.2
    assert (await client.get("/runs/run-nope")).status_code == 404
    assert (await client.post("/runs/run-nope/stop", headers=AUTH)).status_code == 404
    assert (await client.post(f"/runs/{run_id}/stop", headers=AUTH)).json()["state"] == "stopped"
