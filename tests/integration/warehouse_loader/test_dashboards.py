"""Every warehouse query of the Grafana dashboards runs on a real PostgreSQL holding Gold
loaded by the real loader, and returns rows; a few are checked against Gold itself.

Grafana's macros and variables are filled in the way its PostgreSQL data source does
(``tests.observability.dashboards.expand``): ``$__timeFilter(col)`` becomes
``col BETWEEN '<from>' AND '<to>'`` over the loaded window, and each variable the list of
every value its own query returns ("All" selected).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tests.observability.dashboards import sql_queries, warehouse_queries

from .conftest import AUTH, SENSORS, WINDOW

pytestmark = pytest.mark.integration

ANALYTICS = "iotpipe / Sensor analytics (warehouse)"


@pytest.fixture
def loaded(client: TestClient, database: str) -> str:
    """The test database with the Gold of WINDOW loaded through POST /loads."""
    response = client.post(
        "/loads",
        json={"window_start": WINDOW.start.isoformat(), "window_end": WINDOW.end.isoformat()},
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    return database


def run_all(dsn: str) -> dict[tuple[str, str], list[list[tuple[Any, ...]]]]:
    """(dashboard, panel) -> the rows of each of its queries."""
    results: dict[tuple[str, str], list[list[tuple[Any, ...]]]] = defaultdict(list)
    with psycopg.connect(dsn) as connection:
        for board, panel, sql in warehouse_queries(connection, WINDOW.start, WINDOW.end):
            results[board, panel].append(connection.execute(sql).fetchall())
    return results


def in_window(gold: pa.Table) -> list[dict[str, Any]]:
    rows = gold.to_pylist()
    return [r for r in rows if WINDOW.start <= r["window_start"] < WINDOW.end]


def test_every_warehouse_query_returns_rows(loaded: str) -> None:
    results = run_all(loaded)
    assert len(results) == len({(b, p) for b, p, _ in sql_queries()})
    assert {board for board, _ in results} >= {ANALYTICS}  # and the overview's health panel
    empty = [
        f"{b} / {p} (query {i})" for (b, p), r in results.items() for i, q in enumerate(r) if not q
    ]
    assert not empty, f"no rows: {empty}"


def test_the_analytics_panels_agree_with_gold(loaded: str, gold: pa.Table) -> None:
    results = run_all(loaded)
    rows = in_window(gold)

    def panel(title: str) -> list[list[tuple[Any, ...]]]:
        return results[ANALYTICS, title]

    # Per-sensor series: one point per sensor and window, the anomalous windows marked.
    series: list[tuple[Any, ...]] = []
    marked: list[tuple[Any, ...]] = []
    for kind in ("temperature", "humidity", "pressure", "vibration"):
        points, anomalies = panel(
            f"{kind.capitalize()} per sensor (5-minute average; anomalies in red)"
        )
        series += points
        marked += anomalies
        assert {metric for _, metric, _ in anomalies} <= {f"{m} anomaly" for _, m, _ in points}
    assert len(series) == len(rows) == 24 * SENSORS
    assert len(marked) == sum(1 for r in rows if r["anomaly_count"] > 0) > 0
    alerts = results[ANALYTICS, "annotation Anomaly alerts"][0]
    assert len(alerts) == sum(1 for r in rows if r["alert_count"] > 0) > 0

    # Health per location = readings / expected of its windows (null locations as "(none)").
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        place = r["location"] or "(none)"
        sums[place][0] += r["reading_count"]
        sums[place][1] += r["expected_count"]
    (by_location,) = panel("Health per location")
    assert {loc: round(float(h), 6) for loc, h in by_location} == {
        loc: round(100.0 * got / due, 6) for loc, (got, due) in sums.items()
    }

    # The heatmap: a cell per sensor and hour (the window spans two hours), least healthy first.
    (cells,) = panel("Health per sensor and hour")
    assert len(cells) == SENSORS * 2
    assert all(0 <= float(value) <= 100 for _, _, value in cells)
    (by_sensor,) = panel("Health per sensor (least healthy first)")
    assert len(by_sensor) == SENSORS
    assert [float(r[3]) for r in by_sensor] == sorted(float(r[3]) for r in by_sensor)

    # Daily rollup: the window crosses midnight, so two days for each of the four types.
    (daily,) = panel("Daily summary by sensor type")
    assert len(daily) == 2 * 4
    assert sum(r[3] for r in daily) == sum(r["reading_count"] for r in rows)
