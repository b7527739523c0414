"""The gate end to end over HTTP: real Parquet in a lake folder, real Great Expectations."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from quality_gate.app import build_app

from iotpipe.gate_client import Layer, Verdict, run_gate
from iotpipe.lake import Lake
from iotpipe.windows import Window, window_params
from tests import jobs

from . import lakedata
from .conftest import AUTH, TOKEN, settings_for

pytestmark = pytest.mark.integration

HOUR = Window.parse("2026-11-20T10")
ROWS_PER_HOUR = lakedata.SENSORS * 3600 // lakedata.EVERY_S


def run(client: TestClient, layer: Layer, window: Window) -> dict:
    """A run as clients start it: a job (202 + Location), polled until it has finished."""
    job = jobs.run(client, "/runs", {"layer": layer.value, **window_params(window)}, AUTH)
    assert job["status"] == "succeeded", job["problem"]
    result: dict = job["result"]
    return result


def verdict(client: TestClient, layer: Layer, window: Window | str) -> dict:
    response = client.get(f"/gates/{layer.value}/{window}")
    assert response.status_code == 200, response.text
    return response.json()


def metric(client: TestClient, line: str) -> float:
    for text in client.get("/metrics").text.splitlines():
        if text.startswith(line + " "):
            return float(text.rsplit(" ", 1)[1])
    return 0.0


def test_clean_silver_window_passes_and_the_gate_says_so(client: TestClient, lake: Lake) -> None:
    clean = lakedata.readings(HOUR)
    # A few implausible readings are data (Silver flags them), tolerated below `mostly`.
    clean.loc[0, "value"] = 1e6  # sensor-000 is a temperature sensor: 1 of 240 readings
    lakedata.write(lake, Layer.SILVER, clean)
    before = metric(client, 'quality_checks_total{layer="silver",result="pass"}')

    result = run(client, Layer.SILVER, HOUR)

    assert result["verdict"] == "pass"
    assert result["failed_expectations"] == []
    assert result["pass_rate"] == 1.0
    assert result["row_count"] == ROWS_PER_HOUR
    assert result["engine"] == "pandas"
    bounds = next(e for e in result["expectations"] if e["name"] == "value_in_bounds:temperature")
    assert bounds["observed"]["unexpected_count"] == 1
    assert result["result"]["statistics"]["evaluated_expectations"] == len(result["expectations"])

    five_minutes = Window(HOUR.start, HOUR.start + timedelta(minutes=5))
    answer = verdict(client, Layer.SILVER, five_minutes)  # covered by the hour's run
    assert answer["verdict"] == "pass"
    assert answer["run_id"] == result["run_id"]
    assert answer["window"] == str(five_minutes)
    assert verdict(client, Layer.SILVER, "2026-11-20")["verdict"] == "unknown"  # not covered
    assert verdict(client, Layer.GOLD, HOUR)["verdict"] == "unknown"  # other layer

    assert metric(client, 'quality_checks_total{layer="silver",result="pass"}') == before + 1
    assert metric(client, 'quality_pass_ratio{layer="silver"}') == 1.0
    detail = client.get(f"/runs/{result['run_id']}").json()
    assert detail["result"]["results"] == result["result"]["results"]
    assert (lake.quality + f"/runs/silver/{result['run_id']}.result.json").startswith(lake.root)


def _violations() -> list[tuple[str, str, object]]:
    def nulls(frame):
        # One per timestamp: nulls at one instant would also be duplicate (null, timestamp) keys.
        frame.loc[frame.index[:: lakedata.SENSORS * 20][:5], "sensor_id"] = None
        return frame

    def out_of_range(frame):
        humidity = frame.index[frame["sensor_type"] == "humidity"][:12]  # 5% of 240
        frame.loc[humidity, "value"] = 140.0
        return frame

    def duplicates(frame):
        import pandas as pd

        return pd.concat([frame, frame.iloc[:3]], ignore_index=True)

    return [
        ("nulls", "not_null:sensor_id", nulls),
        ("out_of_range", "value_in_bounds:humidity", out_of_range),
        ("duplicates", "unique:sensor_id,timestamp", duplicates),
    ]


@pytest.mark.parametrize(
    ("case", "expectation", "inject"), _violations(), ids=[case for case, _, _ in _violations()]
)
def test_injected_violation_fails_naming_the_expectation(
    client: TestClient, lake: Lake, case: str, expectation: str, inject: object
) -> None:
    lakedata.write(lake, Layer.SILVER, inject(lakedata.readings(HOUR)))  # type: ignore[operator]

    result = run(client, Layer.SILVER, HOUR)

    assert result["verdict"] == "fail", case
    assert result["failed_expectations"] == [expectation]
    assert result["pass_rate"] == pytest.approx(1 - 1 / result["evaluated_expectations"])
    failed = next(e for e in result["expectations"] if e["name"] == expectation)
    assert failed["observed"]["unexpected_count"] > 0
    answer = verdict(client, Layer.SILVER, HOUR)
    assert answer["verdict"] == "fail"
    assert answer["failed_expectations"] == [expectation]
    counted = f'quality_expectations_failed_total{{expectation="{expectation}",layer="silver"}}'
    assert metric(client, counted) >= 1


def test_gate_follows_the_latest_run_and_survives_a_restart(client: TestClient, lake: Lake) -> None:
    bad = lakedata.windows(HOUR)
    bad.loc[0, "health_pct"] = 130.0
    bad.loc[1, "reading_count"] = 0
    bad.loc[1, "anomaly_count"] = 0
    lakedata.write(lake, Layer.GOLD, bad)
    failed = run(client, Layer.GOLD, HOUR)
    assert failed["verdict"] == "fail"
    assert failed["failed_expectations"] == ["reading_count_positive", "health_pct_within_0_100"]
    assert verdict(client, Layer.GOLD, HOUR)["run_id"] == failed["run_id"]

    lakedata.write(lake, Layer.GOLD, lakedata.windows(HOUR))  # the job re-ran: fixed
    day = Window.parse("2026-11-20")
    # The day's run has only the 10:00 hour: stale by the end of the day.
    stale = run(client, Layer.GOLD, day)
    assert stale["failed_expectations"] == ["fresh:window_end"]
    fixed = run(client, Layer.GOLD, HOUR)
    assert fixed["verdict"] == "pass"
    assert fixed["row_count"] == lakedata.SENSORS * 12
    assert verdict(client, Layer.GOLD, HOUR)["run_id"] == fixed["run_id"]  # newest covering run

    listed = client.get("/runs", params={"layer": "gold"}).json()["items"]
    assert [r["run_id"] for r in listed] == [fixed["run_id"], stale["run_id"], failed["run_id"]]
    assert client.get("/runs", params={"layer": "bronze"}).json()["items"] == []

    with TestClient(build_app(settings_for(lake))) as restarted:  # a new process, same lake
        assert restarted.get("/runs").json()["items"] == listed
        assert verdict(restarted, Layer.GOLD, HOUR) == verdict(client, Layer.GOLD, HOUR)
        assert restarted.get(f"/runs/{failed['run_id']}").json()["failed_expectations"] == [
            "reading_count_positive",
            "health_pct_within_0_100",
        ]


async def test_empty_window_fails_rather_than_passing(client: TestClient, lake: Lake) -> None:
    lakedata.write(lake, Layer.BRONZE, lakedata.readings(HOUR))
    empty = Window.parse("2026-11-21T10")
    # Through the shared client, as the orchestrator asks for runs.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app)) as http:
        answer = await run_gate("http://gate", TOKEN, Layer.BRONZE, empty, client=http)
    assert answer.verdict is Verdict.FAIL
    assert "rows_present" in answer.failed_expectations
    assert answer.run_id == client.get("/runs").json()["items"][0]["run_id"]
    assert client.get(f"/runs/{answer.run_id}").json()["row_count"] == 0
    assert verdict(client, Layer.BRONZE, empty)["run_id"] == answer.run_id


def test_bronze_window_not_aligned_to_hours_counts_exact_rows(
    client: TestClient, lake: Lake
) -> None:
    lakedata.write(
        lake, Layer.BRONZE, lakedata.readings(Window(HOUR.start, HOUR.end + timedelta(hours=1)))
    )
    window = Window(HOUR.start + timedelta(minutes=50), HOUR.end + timedelta(minutes=10))
    result = run(client, Layer.BRONZE, window)
    assert result["verdict"] == "pass", result["failed_expectations"]
    assert result["row_count"] == lakedata.SENSORS * 20 * 60 // lakedata.EVERY_S


def test_bronze_reads_only_the_files_the_streaming_sink_committed(
    client: TestClient, lake: Lake
) -> None:
    """The stream writes Bronze's files in place and commits them to ``_spark_metadata``
    afterwards: a file being written (empty) and one of an attempt that died (a copy) sit
    beside the committed ones, and the gate reads neither."""
    lakedata.write(lake, Layer.BRONZE, lakedata.readings(HOUR))
    root = Path(lake.bronze)
    committed = sorted(root.rglob("*.parquet"))
    log = root / "_spark_metadata"
    log.mkdir()
    lines = [json.dumps({"path": f.as_uri(), "action": "add"}) for f in committed]
    (log / "0").write_text("\n".join(["v1", *lines]))
    (committed[0].parent / "part-00001-being-written.c000.snappy.parquet").touch()
    shutil.copy(committed[0], committed[0].parent / "part-00000-died.c000.snappy.parquet")

    result = run(client, Layer.BRONZE, HOUR)
    assert result["verdict"] == "pass", result["failed_expectations"]
    assert result["row_count"] == lakedata.SENSORS * 3600 // lakedata.EVERY_S


def test_every_series_a_run_can_touch_exists_before_the_first_run(client: TestClient) -> None:
    """Dashboards show 0, not "no data", and rate() counts the first run (metrics.initialise).
    (The exposition sorts label names.)"""
    from quality_gate.suites import suite_names

    lines = set(client.get("/metrics").text.splitlines())
    expected = []
    for layer in Layer:
        expected += [
            f'quality_checks_total{{layer="{layer}",result="{v}"}}' for v in ("pass", "fail")
        ]
        expected += [
            f'quality_expectations_failed_total{{expectation="{name}",layer="{layer}"}}'
            for name in suite_names(layer)
        ]
        expected.append(f'quality_run_duration_seconds_count{{engine="pandas",layer="{layer}"}}')
    present = {line.rsplit(" ", 1)[0] for line in lines if not line.startswith("#")}
    assert [series for series in expected if series not in present] == []
