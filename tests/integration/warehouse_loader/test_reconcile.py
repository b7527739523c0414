"""The orchestrator's reconcile (scheduled reloads, issue 21 item 7) against the real
warehouse loader and the real quality gate, both served over HTTP, on real PostgreSQL and
Gold files in a lake folder: late data rewrites a loaded window's Gold; the reconcile finds
it, gates it and reloads it, leaves unchanged windows alone, and does not load a window
whose new Gold fails the gate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import uvicorn
from orchestrator.pipeline import Orchestrator
from orchestrator.settings import OrchestratorSettings
from warehouse_loader.app import build_app
from warehouse_loader.sample import replace_gold, sample_gold
from warehouse_loader.settings import LoaderSettings

from iotpipe.lake import Lake
from iotpipe.local.process import free_port
from iotpipe.windows import Window
from tests import jobs

from .conftest import AUTH, GOLD_START, SENSORS, TOKEN, facts, gold_rows
from .test_real_gate import GATE_TOKEN, gate_run, located, quality_gate

pytestmark = pytest.mark.integration

__all__ = ["quality_gate"]  # the fixture, used by name

DAY_A = Window(GOLD_START, GOLD_START + timedelta(hours=2))
"""22:00-24:00 on 2026-11-26: partition window_date=2026-11-26 only."""
DAY_B = Window(GOLD_START + timedelta(hours=2), GOLD_START + timedelta(hours=4))
"""00:00-02:00 on 2026-11-27: partition window_date=2026-11-27 only."""
LOOKBACK = Window(GOLD_START - timedelta(days=3), GOLD_START + timedelta(days=3))


@pytest.fixture
def loader(settings: LoaderSettings) -> Iterator[Any]:
    """The loader app on a free port; yields a function that makes it ask ``gate_url``."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(gate_url: str) -> str:
        port = free_port()
        app = build_app(settings.model_copy(update={"quality_gate_url": gate_url}))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive(), "the loader exited during start-up"
            assert time.monotonic() < deadline, "the loader did not start in 60s"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=30)


def of_day(table: pa.Table, window: Window) -> pa.Table:
    day = pa.scalar(window.start.date(), pa.date32())
    return table.filter(pc.equal(table["window_date"], day))


def loads_of(loader_url: str, window: Window) -> list[dict[str, Any]]:
    """The loader's history of loads of exactly ``window``."""
    history = httpx.get(f"{loader_url}/loads", params={"limit": 1000}, timeout=30).json()["items"]
    return [
        r
        for r in history
        if Window(_instant(r["window_start"]), _instant(r["window_end"])) == window
    ]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_reconcile_reloads_exactly_the_windows_late_data_changed(
    quality_gate: str, loader: Any, settings: LoaderSettings, lake: Lake, gold: pa.Table
) -> None:
    gold, settings = located(gold, lake, settings, quality_gate)
    dsn = settings.warehouse_dsn.get_secret_value()
    loader_url = loader(quality_gate)
    orch = Orchestrator(
        OrchestratorSettings(
            quality_gate_url=quality_gate,
            quality_gate_token=GATE_TOKEN,
            loader_url=loader_url,
            loader_token=TOKEN,
            lake={"root": lake.root},
            loader_timeout_seconds=120,
        ),
        None,
    )
    # Both windows gated and loaded, as the daily run leaves them.
    for window in (DAY_A, DAY_B):
        assert gate_run(quality_gate, str(window))["verdict"] == "pass"
        body = {"window_start": window.start.isoformat(), "window_end": window.end.isoformat()}
        with httpx.Client(base_url=loader_url) as http:
            assert jobs.run(http, "/loads", body, AUTH)["status"] == "succeeded"
    assert facts(dsn) == sorted(
        gold_rows(gold, DAY_A) + gold_rows(gold, DAY_B), key=lambda r: (r[0], r[3])
    )

    # Nothing changed: nothing is reloaded.
    quiet = orch.reconcile(LOOKBACK)
    assert quiet.counts() == {"checked": 2, "changed": 0, "reloaded": 0, "refused": 0}

    # Late data: the medallion recomputes 2026-11-27 with one more sensor and other values.
    late = sample_gold(GOLD_START, windows=48, sensors=SENSORS + 1, seed=8, version="late-1")
    late = of_day(late, DAY_B)
    late = late.set_column(
        late.schema.get_field_index("location"),
        "location",
        pc.fill_null(late["location"], "site-x"),
    )
    replace_gold(lake.gold_windows, late)
    first = orch.reconcile(LOOKBACK)
    assert first.counts() == {"checked": 2, "changed": 1, "reloaded": 1, "refused": 0}
    assert [str(r.window) for r in first.reloaded] == [str(DAY_B)]
    assert first.reloaded[0].load is not None
    assert first.reloaded[0].load["rows_inserted"] == 24 * (SENSORS + 1)
    expected = sorted(gold_rows(gold, DAY_A) + gold_rows(late, DAY_B), key=lambda r: (r[0], r[3]))
    assert len(expected) == 24 * SENSORS + 24 * (SENSORS + 1)
    assert facts(dsn) == expected, "the warehouse holds exactly Gold as it is now"
    assert len(loads_of(loader_url, DAY_A)) == 1, "the unchanged window was not reloaded"
    assert len(loads_of(loader_url, DAY_B)) == 2

    # A second pass finds nothing more to do.
    assert orch.reconcile(LOOKBACK).counts()["changed"] == 0

    # Late data again, this time recomputed wrongly (health above 100 %) on 2026-11-26:
    # the gate fails the window, it is not loaded and the run reports it.
    day_a = of_day(gold, DAY_A)
    broken = day_a.set_column(
        day_a.schema.get_field_index("health_pct"),
        "health_pct",
        pc.add(day_a["health_pct"], 200.0),
    )
    replace_gold(lake.gold_windows, broken)
    bad = orch.reconcile(LOOKBACK)
    assert bad.counts() == {"checked": 2, "changed": 1, "reloaded": 0, "refused": 1}
    assert not bad.ok
    refused = bad.refused[0]
    assert str(refused.window) == str(DAY_A)
    assert refused.error is not None
    assert refused.error.step == "quality gate (gold)"
    assert "verdict fail" in refused.error.detail
    assert facts(dsn) == expected, "the old rows of the failed window stay"
    assert len(loads_of(loader_url, DAY_A)) == 1, "the loader was not even asked"
    assert len(loads_of(loader_url, DAY_B)) == 2
