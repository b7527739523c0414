"""A loader process killed with SIGKILL between its DELETE and its INSERT changes nothing."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from warehouse_loader.app import build_app
from warehouse_loader.sample import replace_gold, sample_gold
from warehouse_loader.settings import LoaderSettings

from iotpipe.lake import Lake
from iotpipe.local import process

from .conftest import AUTH, GOLD_START, SENSORS, TOKEN, WINDOW, GateServer, facts, gold_rows

pytestmark = pytest.mark.integration

BODY = {"window_start": WINDOW.start.isoformat(), "window_end": WINDOW.end.isoformat()}
PAUSED_AFTER_DELETE = """
    SELECT COUNT(*) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'warehouse-loader'
      AND state = 'idle in transaction' AND query LIKE 'DELETE FROM fact_sensor_readings%%'
"""
LOADER_SESSIONS = """
    SELECT COUNT(*) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'warehouse-loader'
"""


def count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def wait_for(condition: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting until {condition}")


def test_sigkill_mid_transaction_leaves_the_previous_contents(
    settings: LoaderSettings, lake: Lake, gate: GateServer, tmp_path: Path
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()
    with TestClient(build_app(settings)) as client:
        assert client.post("/loads", json=BODY, headers=AUTH).status_code == 201
    previous = facts(dsn)
    recomputed: pa.Table = sample_gold(GOLD_START, windows=48, sensors=SENSORS, seed=5)
    replace_gold(lake.gold_windows, recomputed)

    port = process.free_port()
    log = tmp_path / "loader.log"
    pid = process.spawn(
        [sys.executable, "-m", "warehouse_loader"],
        log,
        env={
            "LOADER_API_TOKEN": TOKEN,
            "LOADER_WAREHOUSE_DSN": dsn,
            "LOADER_QUALITY_GATE_URL": gate.url,
            "LAKE_ROOT": lake.root,
            "LOADER_HOST": "127.0.0.1",
            "LOADER_PORT": str(port),
            "LOADER_LOG_JSON": "false",
            "LOADER_TEST_PAUSE_AFTER_DELETE_S": "600",
        },
    )
    outcome: list[object] = []

    def post() -> None:
        try:
            outcome.append(
                httpx.post(f"http://127.0.0.1:{port}/loads", json=BODY, headers=AUTH, timeout=120)
            )
        except httpx.TransportError as exc:
            outcome.append(exc)

    poster = threading.Thread(target=post)
    try:
        process.wait_until(
            lambda: process.port_open(port), pid=pid, timeout=60, what="the loader", log=log
        )
        poster.start()
        wait_for(
            "the loader has deleted and holds its transaction open",
            lambda: count(dsn, PAUSED_AFTER_DELETE) == 1,
        )
        assert facts(dsn) == previous  # the DELETE is not visible to anyone else
        process.stop(pid, sig=signal.SIGKILL)
        wait_for(
            "PostgreSQL has ended the killed loader's session",
            lambda: count(dsn, LOADER_SESSIONS) == 0,
        )
    finally:
        process.stop(pid, sig=signal.SIGKILL)
        poster.join(timeout=30)

    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.TransportError), outcome  # no answer: it was killed
    assert "pausing 600s between DELETE and INSERT" in log.read_text()
    assert facts(dsn) == previous

    # The next loader marks the killed load interrupted; loading again then succeeds.
    with TestClient(build_app(settings)) as client:
        [interrupted] = client.get("/loads", params={"status": "interrupted"}).json()
        assert "rolled back" in interrupted["detail"]
        assert interrupted["window_start"].startswith(WINDOW.start.strftime("%Y-%m-%dT%H:%M:%S"))
        reload = client.post("/loads", json=BODY, headers=AUTH)
    assert reload.status_code == 201, reload.text
    assert (reload.json()["rows_deleted"], reload.json()["rows_inserted"]) == (960, 960)
    assert facts(dsn) == gold_rows(recomputed, WINDOW) != previous
