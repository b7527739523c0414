"""A loader process killed with SIGKILL between its DELETE and its INSERT changes nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from warehouse_loader.app import build_app
from warehouse_loader.sample import replace_gold, sample_gold
from warehouse_loader.settings import LoaderSettings

from iotpipe.jobs import JobError
from iotpipe.lake import Lake
from tests import jobs

from .conftest import AUTH, GOLD_START, SENSORS, TOKEN, WINDOW, GateServer, facts, gold_rows
from .crash import (
    LOADER_SESSIONS,
    PAUSE_S,
    LoaderConfig,
    count,
    loader_paused_after_delete,
    wait_for,
)

pytestmark = pytest.mark.integration

BODY = {"window_start": WINDOW.start.isoformat(), "window_end": WINDOW.end.isoformat()}


def test_sigkill_mid_transaction_leaves_the_previous_contents(
    settings: LoaderSettings, lake: Lake, gate: GateServer, tmp_path: Path
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()
    with TestClient(build_app(settings)) as client:
        assert jobs.final(client, "/loads", BODY, AUTH).status_code == 201
    previous = facts(dsn)
    recomputed: pa.Table = sample_gold(GOLD_START, windows=48, sensors=SENSORS, seed=5)
    replace_gold(lake.gold_windows, recomputed)

    log = tmp_path / "loader.log"
    loader = LoaderConfig(TOKEN, dsn, gate.url, lake.root)
    with loader_paused_after_delete(
        loader, BODY, log, start_timeout=60, pause_timeout=60, post_timeout=120, join_timeout=30
    ) as outcome:
        assert facts(dsn) == previous  # the DELETE is not visible to anyone else
    wait_for(
        "PostgreSQL has ended the killed loader's session",
        lambda: count(dsn, LOADER_SESSIONS) == 0,
    )

    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.TransportError | JobError), outcome  # killed: no answer
    assert f"pausing {PAUSE_S}s between DELETE and INSERT" in log.read_text()
    assert facts(dsn) == previous

    # The next loader marks the killed load interrupted; loading again then succeeds.
    with TestClient(build_app(settings)) as client:
        [interrupted] = client.get("/loads", params={"status": "interrupted"}).json()["items"]
        assert "rolled back" in interrupted["detail"]
        assert interrupted["window_start"].startswith(WINDOW.start.strftime("%Y-%m-%dT%H:%M:%S"))
        reload = jobs.final(client, "/loads", BODY, AUTH)
    assert reload.status_code == 201, reload.text
    assert (reload.json()["rows_deleted"], reload.json()["rows_inserted"]) == (960, 960)
    assert facts(dsn) == gold_rows(recomputed, WINDOW) != previous
