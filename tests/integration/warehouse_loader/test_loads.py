"""Loads through the HTTP API into a real PostgreSQL: idempotent, exact, all-or-nothing, gated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient
from warehouse_loader.sample import replace_gold, sample_gold
from warehouse_loader.settings import LoaderSettings
from warehouse_loader.warehouse import Warehouse

from iotpipe.gate_client import Verdict
from iotpipe.lake import Lake
from iotpipe.windows import Window
from tests import jobs

from .conftest import AUTH, GOLD_START, SENSORS, WINDOW, GateServer, facts, gold_rows

pytestmark = pytest.mark.integration

WINDOWS_IN_LOAD = 24


def body(window: Window = WINDOW, **extra: object) -> dict[str, object]:
    return {
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        **extra,
    }


def metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return 0.0


def test_load_then_reload_gives_identical_contents_equal_to_gold(
    client: TestClient, settings: LoaderSettings, gold: pa.Table
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()
    loaded_before = metric(client, 'loader_rows_loaded_total{dialect="postgresql"}')

    first = jobs.final(client, "/loads", body(), AUTH)
    assert first.status_code == 201, first.text
    after_first = facts(dsn)
    second = jobs.final(client, "/loads", body(), AUTH)
    assert second.status_code == 201, second.text
    after_second = facts(dsn)

    expected = gold_rows(gold, WINDOW)
    assert len(expected) == WINDOWS_IN_LOAD * SENSORS == 960
    assert after_first == expected  # every row and value, exactly; nothing outside the window
    assert after_second == after_first
    one, two = first.json(), second.json()
    assert (one["status"], one["gold_rows"], one["rows_deleted"], one["rows_inserted"]) == (
        "succeeded",
        960,
        0,
        960,
    )
    assert (two["rows_deleted"], two["rows_inserted"]) == (960, 960)
    assert one["gate_verdict"] == "pass"
    assert client.get(f"/loads/{one['id']}").json() == one
    assert [r["id"] for r in client.get("/loads").json()["items"]] == [two["id"], one["id"]]
    first = client.get("/loads", params={"limit": 1}).json()
    assert ([r["id"] for r in first["items"]], first["has_more"]) == ([two["id"]], True)
    second = client.get("/loads", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in second["items"]] == [one["id"]]
    assert client.get("/loads", params={"cursor": "bm90LWEta2V5"}).status_code == 400
    assert metric(client, 'loader_rows_loaded_total{dialect="postgresql"}') == loaded_before + 1920
    assert metric(client, 'loader_last_success_timestamp_seconds{dialect="postgresql"}') > 0

    with psycopg.connect(dsn) as conn:
        dims = conn.execute(
            "SELECT COUNT(*), MIN(first_window_start), MAX(last_window_start), "
            "COUNT(*) FILTER (WHERE unit IS NULL) FROM dim_sensors"
        ).fetchone()
        times = conn.execute(
            "SELECT COUNT(*), MIN(window_start), SUM(CASE WHEN is_weekend THEN 1 ELSE 0 END) "
            "FROM dim_time"
        ).fetchone()
        orphans = conn.execute(
            "SELECT COUNT(*) FROM fact_sensor_readings f LEFT JOIN dim_sensors s USING (sensor_id) "
            "LEFT JOIN dim_time t USING (window_start) "
            "WHERE s.sensor_id IS NULL OR t.window_start IS NULL"
        ).fetchone()
    start, last = WINDOW.start.replace(tzinfo=None), WINDOW.end.replace(tzinfo=None)
    assert dims == (SENSORS, start, last - timedelta(minutes=5), 0)
    assert times == (WINDOWS_IN_LOAD, start, 0)  # 2026-11-26 is a Thursday
    assert orphans == (0,)


def test_reload_after_gold_was_recomputed_replaces_the_window_only(
    client: TestClient, settings: LoaderSettings, lake: Lake, gold: pa.Table
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()
    before = Window(GOLD_START, WINDOW.start)
    assert jobs.final(client, "/loads", body(before), AUTH).status_code == 201
    assert jobs.final(client, "/loads", body(), AUTH).status_code == 201

    # Gold is recomputed for the 27th (its partition overwritten): fewer sensors, other values.
    midnight = datetime(2026, 11, 27, tzinfo=UTC)
    recomputed = sample_gold(midnight, windows=12, sensors=25, seed=99, version="rerun-2")
    replace_gold(lake.gold_windows, recomputed)
    response = jobs.final(client, "/loads", body(), AUTH)

    assert response.status_code == 201, response.text
    assert (response.json()["rows_deleted"], response.json()["rows_inserted"]) == (960, 480 + 300)
    expected = (
        gold_rows(gold, before)
        + gold_rows(gold, Window(WINDOW.start, midnight))
        + gold_rows(recomputed, WINDOW)
    )
    assert facts(dsn) == sorted(expected, key=lambda r: (r[0], r[3]))


def test_an_error_inside_the_transaction_leaves_the_previous_contents(
    client: TestClient, settings: LoaderSettings, lake: Lake
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()
    assert jobs.final(client, "/loads", body(), AUTH).status_code == 201
    previous = facts(dsn)
    replace_gold(lake.gold_windows, sample_gold(GOLD_START, windows=48, sensors=SENSORS, seed=5))
    seen_by_others: list[tuple[int, ...] | None] = []

    def fail_after_delete() -> None:
        with psycopg.connect(dsn) as other:  # another session still sees every row
            seen_by_others.append(
                other.execute("SELECT COUNT(*) FROM fact_sensor_readings").fetchone()
            )
        raise RuntimeError("injected failure between DELETE and INSERT")

    client.app.state.loads.after_delete = fail_after_delete  # type: ignore[attr-defined]
    failed_before = metric(client, 'loader_loads_total{dialect="postgresql",status="failed"}')
    response = jobs.final(client, "/loads", body(), AUTH)

    assert response.status_code == 500
    assert "injected failure between DELETE and INSERT" in response.json()["detail"]
    assert "previous contents are unchanged" in response.json()["detail"]
    assert seen_by_others == [(len(previous),)]
    assert facts(dsn) == previous
    record = client.get("/loads", params={"status": "failed"}).json()["items"]
    assert len(record) == 1
    assert record[0]["rows_inserted"] is None
    assert "RuntimeError: injected failure" in record[0]["detail"]
    assert (
        metric(client, 'loader_loads_total{dialect="postgresql",status="failed"}')
        == failed_before + 1
    )


def test_gold_with_a_key_twice_is_rolled_back_and_leaves_the_previous_contents(
    client: TestClient, settings: LoaderSettings, lake: Lake, gold: pa.Table
) -> None:
    # PostgreSQL enforces the fact table's key, so the loader does not count duplicates in
    # the stage itself: the INSERT fails on the second row of the key, before the dimensions
    # are touched, and the whole load rolls back.
    dsn = settings.warehouse_dsn.get_secret_value()
    assert jobs.final(client, "/loads", body(), AUTH).status_code == 201
    previous = facts(dsn)
    with psycopg.connect(dsn) as conn:
        dims_before = conn.execute("SELECT * FROM dim_sensors ORDER BY sensor_id").fetchall()
    newest = WINDOW.end - timedelta(minutes=5)  # also the sensor's newest window in the load
    key = pc.and_(
        pc.equal(gold["sensor_id"], "sensor-00003"),
        pc.equal(gold["window_start"], pa.scalar(newest, gold.schema.field("window_start").type)),
    )
    twice = gold.filter(key)
    assert twice.num_rows == 1
    twice = twice.set_column(
        twice.schema.get_field_index("location"), "location", pa.array(["moved"], pa.string())
    )
    replace_gold(lake.gold_windows, pa.concat_tables([gold, twice]))

    response = jobs.final(client, "/loads", body(), AUTH)

    assert response.status_code == 500, response.text
    detail = response.json()["detail"]
    assert "(sensor_id, window_start) key more than once" in detail
    assert "sensor-00003" in detail
    assert "previous contents are unchanged" in detail
    assert facts(dsn) == previous
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT * FROM dim_sensors ORDER BY sensor_id").fetchall() == (
            dims_before
        )
    failed = client.get("/loads", params={"status": "failed"}).json()["items"]
    assert [r["gold_rows"] for r in failed] == [len(previous) + 1]


@pytest.mark.parametrize(
    ("verdict", "failed", "reason"),
    [
        (
            Verdict.FAIL,
            ["expect_column_values_to_be_between(health_pct)"],
            "failed expectations: expect_column_values_to_be_between(health_pct)",
        ),
        (Verdict.UNKNOWN, [], "no quality run covers this window yet"),
    ],
)
def test_a_gate_that_did_not_pass_refuses_with_409_and_the_reason(
    client: TestClient,
    settings: LoaderSettings,
    gate: GateServer,
    verdict: Verdict,
    failed: list[str],
    reason: str,
) -> None:
    gate.set(WINDOW, verdict, failed)
    response = jobs.final(client, "/loads", body(), AUTH)

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert f"Gold gate verdict for {WINDOW} is {verdict.value}" in detail
    assert reason in detail
    assert gate.asked == [str(WINDOW)]
    assert facts(settings.warehouse_dsn.get_secret_value()) == []
    [refused] = client.get("/loads", params={"status": "refused"}).json()["items"]
    assert (refused["gate_verdict"], refused["rows_inserted"]) == (verdict.value, None)
    assert reason in refused["detail"]


def test_an_override_with_a_reason_loads_and_is_recorded(
    client: TestClient, settings: LoaderSettings, gate: GateServer, gold: pa.Table
) -> None:
    gate.set(WINDOW, Verdict.FAIL, ["expect_column_values_to_not_be_null(location)"])
    reason = "null locations are expected for unplaced sensors (ticket OPS-12)"
    overrides_before = metric(client, 'loader_gate_overrides_total{dialect="postgresql"}')

    response = jobs.final(client, "/loads", body(override_gate=True, override_reason=reason), AUTH)

    assert response.status_code == 201, response.text
    record = response.json()
    assert (record["gate_verdict"], record["override_reason"]) == ("fail", reason)
    assert client.get(f"/loads/{record['id']}").json()["override_reason"] == reason
    assert facts(settings.warehouse_dsn.get_secret_value()) == gold_rows(gold, WINDOW)
    assert (
        metric(client, 'loader_gate_overrides_total{dialect="postgresql"}') == overrides_before + 1
    )


def test_an_unreachable_gate_gives_503_and_no_load(settings: LoaderSettings) -> None:
    from warehouse_loader.app import build_app

    down = settings.model_copy(
        update={"quality_gate_url": "http://127.0.0.1:9", "gate_timeout_s": 0.5}
    )
    with TestClient(build_app(down), raise_server_exceptions=False) as client:
        response = jobs.final(client, "/loads", body(), AUTH)
    assert response.status_code == 503
    assert "quality gate at http://127.0.0.1:9 unavailable" in response.json()["detail"]
    assert facts(settings.warehouse_dsn.get_secret_value()) == []


def test_a_window_without_gold_is_refused_and_the_warehouse_is_unchanged(
    client: TestClient, settings: LoaderSettings
) -> None:
    assert jobs.final(client, "/loads", body(), AUTH).status_code == 201
    before = facts(settings.warehouse_dsn.get_secret_value())
    empty = Window.parse("2026-12-01")

    response = jobs.final(client, "/loads", body(empty), AUTH)

    assert response.status_code == 409
    assert f"has no rows for {empty}" in response.json()["detail"]
    assert facts(settings.warehouse_dsn.get_secret_value()) == before


def test_unknown_load_ids_are_404(client: TestClient) -> None:
    response = client.get("/loads/no-such-load")
    assert response.status_code == 404
    assert "no-such-load" in response.json()["detail"]


def test_migrations_are_applied_once_and_readiness_sees_the_warehouse(
    client: TestClient, settings: LoaderSettings
) -> None:
    from warehouse_loader.dialects import dialect_for

    assert client.get("/readyz").json() == {
        "status": "ready",
        "checks": {"started": "ok", "warehouse": "ok"},
    }
    assert Warehouse(dialect_for(settings)).migrate() == []  # the app applied them at start
    with psycopg.connect(settings.warehouse_dsn.get_secret_value()) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    # 3: alert_count, 4: load_history.gold_fingerprints, 5: the fact table partitioned by day
    assert versions == [(1,), (2,), (3,), (4,), (5,)]


def test_every_series_a_load_can_touch_exists_before_the_first_load(client: TestClient) -> None:
    """Dashboards show 0, not "no data", and rate() counts the first load (metrics.initialise)."""
    present = {
        line.rsplit(" ", 1)[0]
        for line in client.get("/metrics").text.splitlines()
        if not line.startswith("#")
    }
    expected = [
        f'{name}{{dialect="postgresql"}}'
        for name in (
            "loader_rows_loaded_total",
            "loader_rows_deleted_total",
            "loader_load_duration_seconds_count",
            "loader_last_success_timestamp_seconds",
            "loader_gate_overrides_total",
        )
    ] + [
        f'loader_loads_total{{dialect="postgresql",status="{status}"}}'
        for status in ("succeeded", "failed", "refused", "interrupted")
    ]
    assert [series for series in expected if series not in present] == []
