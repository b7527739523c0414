"""The demo's HTML report in a real headless Chromium: the page renders, every reading is a
vertex of its sensor's line, every anomaly and alert has its marker, the heatmap has a cell
per sensor and bucket coloured by health, nothing is fetched and nothing is logged.

The data is a small run made here with known counts (the end-to-end scenario,
tests/e2e/test_scenario.py, opens the report of a real pipeline run the same way). The
last tests prove the checks can fail: a page with a console error, a failed load and a
script exception is caught, and so is a report whose line is missing readings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from local_pipeline.html_report import ReportData, health_colour, render_html, write_report

from tests.browser.report_page import show
from tests.chromium import Chromium

pytestmark = pytest.mark.browser

START = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
RATE_HZ = 5.0
SECONDS = 60
KINDS = {"temperature": "celsius", "humidity": "percent", "pressure": "hPa", "vibration": "g"}
SILENT = "sensor-0007"
"""In the fleet, sent nothing: a heatmap row of red cells, no series."""
HALF = "sensor-0002"
"""Silenced for the second half of the run."""
LATE = {40, 41, 42}
"""Readings of sensor-0001 dated before the run: drawn left of the run, in no heatmap cell."""


def readings(seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for s in range(6):
        sensor, kind = f"sensor-{s:04d}", list(KINDS)[s % 4]
        for i in range(int(SECONDS * RATE_HZ)):
            at = START + timedelta(seconds=i / RATE_HZ)
            if sensor == HALF and i >= SECONDS * RATE_HZ / 2:
                break
            spike = rng.random() < 0.02
            if s == 1 and i in LATE:  # sent in the run, dated 90 s before it (a late event)
                at = START - timedelta(seconds=90 - i)
            rows.append(
                {
                    "sensor_id": sensor,
                    "sensor_type": kind,
                    "unit": KINDS[kind],
                    "location": f"site-{s % 3}",
                    "timestamp": at,
                    "value": 20 + rng.gauss(0, 1) + (40 if spike else 0),
                    "is_anomaly": spike,
                    "is_anomaly_alert": spike and rng.random() < 0.5,
                }
            )
    return rows


def data(rows: list[dict[str, Any]]) -> ReportData:
    fleet = sorted({r["sensor_id"] for r in rows} | {SILENT})
    return ReportData(
        title="iotpipe demo test-run",
        readings=rows,
        start=START,
        end=START + timedelta(seconds=SECONDS),
        rate_hz=RATE_HZ,
        fleet=fleet,
        facts=[("Silver rows", f"{len(rows):,}")],
    )


def test_the_report_renders_every_reading_anomaly_alert_and_health_cell(
    browser: Chromium, tmp_path: Path
) -> None:
    rows = readings()
    report = write_report(tmp_path / "report.html", data(rows))
    shown = show(browser, report, tmp_path / "report.png")

    assert shown.problems == []
    assert {url.split(":", 1)[0] for url in shown.requests} == {"file"}, shown.requests
    assert shown.scripts == 0
    assert shown.title == shown.heading == "iotpipe demo test-run"

    per_sensor = {
        s: [r for r in rows if r["sensor_id"] == s] for s in {r["sensor_id"] for r in rows}
    }
    series = shown.by_sensor()
    assert set(series) == set(per_sensor)  # the silent sensor has no series
    for sensor, mine in per_sensor.items():
        drawn = series[sensor]
        assert drawn["points"] == drawn["readings"] == drawn["inside"] == len(mine)
        assert drawn["anomalies"] == sum(r["is_anomaly"] for r in mine)
        assert drawn["alerts"] == sum(r["is_anomaly_alert"] for r in mine)
        assert drawn["width"] > 300
        assert drawn["height"] > 100
        assert drawn["length"] > 100
    assert sum(s["anomalies"] for s in shown.series) == sum(r["is_anomaly"] for r in rows) > 0
    assert sum(s["alerts"] for s in shown.series) == sum(r["is_anomaly_alert"] for r in rows) > 0

    # 60 s in 10-second buckets: 6 columns for each of the 7 sensors of the fleet.
    assert (shown.columns, shown.heatmap_sensors) == (6, 7)
    assert len(shown.cells) == 7 * 6
    assert shown.heatmap_width > 200
    assert all(c["width"] > 10 for c in shown.cells)
    assert sum(c["readings"] for c in shown.cells) == len(rows) - len(LATE)
    silent = [c for c in shown.cells if c["sensor"] == SILENT]
    assert [c["health"] for c in silent] == [0.0] * 6
    assert {c["fill"] for c in silent} == {"rgb(198, 40, 40)"}  # health_colour(0)
    half = [c["health"] for c in shown.cells if c["sensor"] == HALF]
    assert half == [100.0] * 3 + [0.0] * 3
    assert {c["health"] for c in shown.cells if c["sensor"] == "sensor-0000"} == {100.0}
    assert health_colour(100) == "#2e8c3c"


def test_the_checks_catch_console_errors_failed_loads_and_exceptions(
    browser: Chromium, tmp_path: Path
) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body>"
        '<img src="missing.png"><script>console.error("boom"); undefinedFunction();</script>'
        "</body></html>"
    )
    shown = show(browser, page)
    problems = "\n".join(shown.problems)
    assert "console.error: boom" in problems
    assert "undefinedFunction" in problems
    assert "request failed" in problems or "missing.png" in problems


def test_the_checks_catch_a_line_that_lost_readings(browser: Chromium, tmp_path: Path) -> None:
    rows = readings()
    html = render_html(data(rows))
    # Drop the last vertex of the first line: the page still renders, the count is off.
    head, tail = html.split('<polyline class="line" points="', 1)
    points, rest = tail.split('"', 1)
    broken = f'{head}<polyline class="line" points="{points.rsplit(" ", 1)[0]}"{rest}'
    report = tmp_path / "lossy.html"
    report.write_text(broken)
    shown = show(browser, report)
    assert shown.problems == []
    short = [s for s in shown.series if s["points"] != s["readings"]]
    assert len(short) == 1
    assert short[0]["points"] == short[0]["readings"] - 1
