"""The CLI against the real broker: a bounded run, and SIGTERM flushing a paced one."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from iotpipe.settings import KafkaSettings
from tests.integration.sensor_simulator.conftest import read_topic
from tests.integration.sensor_simulator.test_replays import csv

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "sensor-simulator")


def counter(output: str, name: str) -> int:
    found = re.search(rf"{name}\s*│\s*([\d,]+)", output)
    assert found, output
    return int(found.group(1).replace(",", ""))


async def cli(kafka_settings: KafkaSettings, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers}
    return await asyncio.create_subprocess_exec(
        CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def test_a_bounded_cli_run_delivers_every_event(kafka_settings: KafkaSettings, topic: str):
    process = await cli(
        kafka_settings, "run", "--rate", "0", "--max-events", "3000", "--topic", topic
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert counter(out.decode(), "delivered") == 3000
    assert "3000/3000" in err.decode()  # the progress bar
    assert len(await read_topic(kafka_settings, topic)) == 3000


async def test_a_run_as_json(kafka_settings: KafkaSettings, topic: str):
    process = await cli(
        kafka_settings,
        "run",
        "--rate",
        "0",
        "--max-events",
        "1000",
        "--malformed-rate",
        "0.05",
        "--seed",
        "3",
        "--topic",
        topic,
        "--output",
        "json",
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    run = json.loads(out)
    assert (run["state"], run["topic"]) == ("completed", topic)
    counters = run["counters"]
    assert counters["delivered"] == counters["generated"] == 1000
    assert counters["failed"] == 0
    assert 0 < sum(counters["malformed"].values()) < 1000
    assert len(await read_topic(kafka_settings, topic)) == 1000


async def test_a_csv_replay_as_json(kafka_settings: KafkaSettings, topic: str, tmp_path: Path):
    readings = tmp_path / "readings.csv"
    readings.write_text(csv(300))
    process = await cli(kafka_settings, "replay", str(readings), "--topic", topic, "-o", "json")
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    run = json.loads(out)
    assert (run["kind"], run["state"]) == ("replay", "completed")
    assert run["replay"]["rows"] == run["counters"]["delivered"] == 300
    assert len(await read_topic(kafka_settings, topic)) == 300


async def test_sigterm_flushes_everything_in_flight(kafka_settings: KafkaSettings, topic: str):
    process = await cli(kafka_settings, "run", "--rate", "5000", "--topic", topic)
    for _ in range(180):  # until it is well under way: then stop it mid-flight
        if len(await read_topic(kafka_settings, topic)) > 1000:
            break
        await asyncio.sleep(0.5)
    assert process.returncode is None
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    output = out.decode()
    assert "(stopped)" in output
    generated = counter(output, "generated")
    assert counter(output, "delivered") == generated > 1000
    assert counter(output, "failed") == 0
    assert len(await read_topic(kafka_settings, topic)) == generated
