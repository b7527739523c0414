"""CSV replay through the API against the real broker: upload, path, pacing, refusals."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from iotpipe.contract import parse_event
from iotpipe.settings import KafkaSettings
from tests.integration.sensor_simulator.conftest import AUTH, read_topic, wait_for

pytestmark = pytest.mark.integration

HEADER = "sensor_id,sensor_type,timestamp,value,unit,location\n"


def csv(rows: int, step_s: float = 0.0) -> str:
    lines = [HEADER]
    for i in range(rows):
        seconds = i * step_s
        stamp = f"2026-03-01T10:{int(seconds) // 60:02d}:{seconds % 60:06.3f}Z"
        lines.append(f"dev-{i % 4},humidity,{stamp},{40 + i % 7},percent,plant-z\n")
    return "".join(lines)


async def test_an_uploaded_csv_is_replayed_row_for_row(
    client: httpx.AsyncClient, topic: str, kafka_settings: KafkaSettings
):
    body = csv(500) + "dev-9,humidity,2026-03-01T11:00:00Z,oops,percent,plant-z\n"
    response = await client.post(
        "/replays",
        files={"file": ("readings.csv", body.encode(), "text/csv")},
        data={"topic": topic},
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    assert response.json()["replay"] == {
        "source": "upload:readings.csv",
        "rows": 501,
        "speed": None,
    }
    status = await wait_for(client, response.json()["id"])
    assert status["state"] == "completed"
    assert status["counters"]["delivered"] == 501
    records = await read_topic(kafka_settings, topic)
    assert len(records) == 501
    by_key: dict[bytes, set[int]] = {}
    for record in records:
        by_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in by_key.values())
    valid = [parse_event(r.value) for r in records if b"oops" not in r.value]
    assert len(valid) == 500
    assert {e.sensor_id for e in valid} == {"dev-0", "dev-1", "dev-2", "dev-3"}
    dev0 = [e.value for e in sorted(valid, key=lambda e: e.timestamp) if e.sensor_id == "dev-0"]
    in_topic = [parse_event(r.value).value for r in records if r.key == b"dev-0"]
    assert in_topic == dev0  # a sensor's rows keep their order
    (broken,) = [r for r in records if b"oops" in r.value]
    assert orjson.loads(broken.value)["value"] == "oops"  # for the DLQ to classify


async def test_a_path_replay_at_a_speed_factor_takes_the_scaled_time(
    client: httpx.AsyncClient, topic: str, kafka_settings: KafkaSettings, replay_dir: Path
):
    (replay_dir / "day.csv").write_text(csv(41, step_s=0.1))  # 4 s of readings
    started = time.monotonic()
    response = await client.post(
        "/replays", data={"path": "day.csv", "speed": "2", "topic": topic}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    status = await wait_for(client, response.json()["id"])
    elapsed = time.monotonic() - started
    assert status["state"] == "completed"
    assert 1.9 <= elapsed < 6  # 4 s of event time at twice real time
    assert len(await read_topic(kafka_settings, topic)) == 41


@pytest.mark.parametrize(
    ("form", "files", "detail"),
    [
        ({"path": "../../etc/passwd"}, None, "outside the replay folder"),
        ({"path": "missing.csv"}, None, "no file 'missing.csv'"),
        ({}, None, "either a CSV upload (file) or a path"),
        ({"path": "x.csv"}, {"file": ("x.csv", HEADER.encode())}, "not both"),
        ({}, {"file": ("x.csv", b"a,b\n1,2\n")}, "lacks column(s) sensor_id"),
        ({"speed": "-1"}, {"file": ("x.csv", csv(1).encode())}, "speed: Input should be greater"),
    ],
)
async def test_bad_replays_get_422_with_a_reason(client: httpx.AsyncClient, form, files, detail):
    response = await client.post("/replays", data=form, files=files, headers=AUTH)
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]


async def test_a_running_replay_can_be_stopped_but_not_patched(
    client: httpx.AsyncClient, topic: str, kafka_settings: KafkaSettings
):
    body = csv(100, step_s=1.0)  # 99 s of readings at real time
    response = await client.post(
        "/replays",
        files={"file": ("slow.csv", body.encode(), "text/csv")},
        data={"topic": topic, "speed": "1"},
        headers=AUTH,
    )
    run_id = response.json()["id"]
    patched = await client.patch(f"/runs/{run_id}", json={"rate": 10}, headers=AUTH)
    assert patched.status_code == 422
    assert "a replay cannot be changed" in patched.json()["detail"]
    stopped = (await client.post(f"/runs/{run_id}/stop", headers=AUTH)).json()
    assert stopped["state"] == "stopped"
    assert 1 <= stopped["counters"]["delivered"] == stopped["counters"]["generated"] < 100
    assert len(await read_topic(kafka_settings, topic)) == stopped["counters"]["generated"]
