"""The demo's scenario, smaller: a simulator run with anomalies, malformed records, late
events, sensor dropouts and redelivered duplicates goes through the streaming job, the
medallion, the quality gates and the warehouse load, and every layer balances exactly.
Then the loader is killed inside its transaction, and the books still balance."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from local_pipeline.accounting import (
    DLQ_TYPE_OF,
    Accounting,
    injections,
    warehouse_counts,
    window_of,
)
from local_pipeline.html_report import silver_readings, write_report
from local_pipeline.pipeline import LocalPipeline, Scenario
from local_pipeline.report import document, page
from local_pipeline.services import Services
from pyspark.sql import SparkSession
from sensor_simulator.config import MalformedKind

from iotpipe.jobs import JobError
from iotpipe.local import Postgres, process
from iotpipe.settings import KafkaSettings
from iotpipe.windows import Window
from tests import jobs
from tests.browser.report_page import show
from tests.chromium import Chromium
from tests.cli import run_module

from ..integration.warehouse_loader.crash import LoaderConfig, loader_paused_after_delete
from .conftest import pipeline_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SCENARIO = Scenario(
    events=2_000,
    rate=400,
    sensors=20,
    anomaly_rate=0.02,
    malformed_rate=0.03,
    late_rate=0.02,
    late_max_minutes=2,
    dropout_fraction=0.1,
    dropout_seconds=2,
    dropout_interval_seconds=3,
    redeliver=50,
    seed=13,
)


@dataclass
class Ran:
    pipeline: LocalPipeline
    services: Services
    window: Window
    accounting: Accounting


@pytest.fixture(scope="module")
def ran(
    kafka_settings: KafkaSettings,
    postgres: Postgres,
    spark: SparkSession,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Ran]:
    """The scenario run once through every stage (shared by this module's tests)."""
    workdir = tmp_path_factory.mktemp("scenario")
    with pipeline_for(
        kafka_settings, postgres, spark, workdir, rate_hz=SCENARIO.sensor_rate_hz
    ) as (pipeline, services):
        pipeline.start_stream()
        asyncio.run(pipeline.simulate(SCENARIO))
        assert asyncio.run(pipeline.redeliver(SCENARIO.redeliver)) == SCENARIO.redeliver
        pipeline.drain()
        pipeline.stop_stream()
        window = window_of(spark, pipeline.lake)
        pipeline.process(window, services)
        yield Ran(pipeline, services, window, pipeline.account(window))


def test_every_layer_balances(ran: Ran) -> None:
    acc, pipeline = ran.accounting, ran.pipeline
    assert pipeline.result is not None
    assert pipeline.result.ok, pipeline.result.error
    assert acc.balanced, acc.failures()
    run = pipeline.run
    assert run is not None
    c = run.counters
    # What the simulator says it did, against what the pipeline holds.
    assert c.delivered == c.generated == SCENARIO.events
    assert acc.produced == SCENARIO.events + SCENARIO.redeliver
    malformed = sum(c.malformed.values())
    assert malformed > 0
    assert set(c.malformed) == {k.value for k in MalformedKind}, "every kind was injected"
    assert acc.dlq == Counter(
        {str(DLQ_TYPE_OF[MalformedKind(k)]): n for k, n in c.malformed.items()}
    )
    assert acc.bronze == acc.produced - malformed
    assert acc.duplicates >= SCENARIO.redeliver, "the redelivered readings are duplicates"
    assert acc.silver == acc.bronze - acc.duplicates - acc.null_rows
    assert acc.gold_readings == acc.silver
    assert acc.warehouse_rows == acc.gold_windows > 0
    # The jobs' own reports agree with the independent count.
    silver_report = pipeline.reports["bronze-to-silver"].counts
    assert silver_report["duplicates_dropped"] == acc.duplicates
    assert silver_report["null_rows_dropped"] == acc.null_rows
    assert silver_report["silver_rows"] == acc.silver
    assert pipeline.reports["silver-to-gold"].counts["windows"] == acc.gold_windows
    # Spikes of >= 6 sigma are found by the z-score (not all: a sensor's first 30 readings
    # have no history, and a spike inside another's 100-reading window widens the spread).
    assert 0 < acc.anomalies["zscore"] <= acc.anomalies["total"]
    assert acc.anomalies["total"] >= sum(c.anomalies.values()) // 2
    assert {layer: v.verdict.value for layer, v in pipeline.verdicts.items()} == {
        "silver": "pass",
        "gold": "pass",
    }
    # Dropped-out sensors sent fewer readings than the others.
    assert c.sensor_dropouts > 0
    assert c.dropped_readings > 0
    assert acc.latency_s["p50"] <= acc.latency_s["p95"]


def test_the_report_as_json_holds_the_same_numbers(ran: Ran) -> None:
    """What ``local-pipeline demo --output json`` prints for this run, parsed back."""
    acc, pipeline = ran.accounting, ran.pipeline
    assert pipeline.run is not None
    dropouts = Counter(str(e["sensor_id"]) for e in injections(pipeline.truth_dir, "dropout"))
    report = json.loads(json.dumps(document(acc, pipeline, SCENARIO.redeliver, dropouts, {})))
    assert report["balanced"] is True
    assert (report["produced"], report["bronze"]) == (acc.produced, acc.bronze)
    assert (
        report["dlq"]["total"]
        == sum(acc.dlq.values())
        == sum(pipeline.run.counters.malformed.values())
    )
    assert {k: report["dlq"][k] for k in acc.dlq} == dict(acc.dlq)
    assert report["silver"]["rows"] == acc.silver
    assert report["silver"]["duplicates_removed"] == acc.duplicates
    assert report["silver"]["anomalies"] == acc.anomalies
    assert report["gold"] == {"windows": acc.gold_windows, "readings": acc.silver}
    assert report["warehouse"]["rows"] == acc.gold_windows
    assert report["simulator"]["delivered"] == SCENARIO.events
    assert {layer: g["verdict"] for layer, g in report["gates"].items()} == {
        "silver": "pass",
        "gold": "pass",
    }
    assert [c["name"] for c in report["checks"]] == [c.name for c in acc.checks]
    assert all(c["ok"] for c in report["checks"])
    assert len(report["least_healthy"]) == 5


def test_iotpipe_query_counts_the_lake_the_jobs_wrote(ran: Ran) -> None:
    """``iotpipe query`` over the Spark-written lake (Bronze from the streaming sink, with its
    log) agrees with the run's independent accounting."""
    acc = ran.accounting
    sql = (
        "SELECT (SELECT count(*) FROM bronze) AS bronze, (SELECT count(*) FROM silver) AS silver, "
        "(SELECT count(*) FILTER (is_anomaly) FROM silver) AS anomalies, "
        "(SELECT count(*) FROM gold) AS windows, (SELECT sum(reading_count) FROM gold) AS readings"
    )
    result = run_module(["iotpipe", "query", sql, "--lake", ran.pipeline.lake.root, "-o", "json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "bronze": acc.bronze,
            "silver": acc.silver,
            "anomalies": acc.anomalies["total"],
            "windows": acc.gold_windows,
            "readings": acc.gold_readings,
        }
    ]


def test_loader_killed_inside_its_transaction_changes_nothing(ran: Ran, tmp_path: Path) -> None:
    dsn, window = ran.pipeline.warehouse_dsn, ran.window
    before = warehouse_counts(dsn, window)
    assert before == (ran.accounting.gold_windows, ran.accounting.gold_readings)
    body = {"window_start": window.start.isoformat(), "window_end": window.end.isoformat()}
    loader = LoaderConfig(
        token=ran.services.loader_token,
        dsn=dsn,
        gate_url=ran.services.gate_url,
        lake_root=ran.pipeline.lake.root,
    )

    # A loader that holds its transaction open between its DELETE and its INSERT, killed there.
    with loader_paused_after_delete(
        loader,
        body,
        tmp_path / "loader.log",
        start_timeout=120,
        pause_timeout=120,
        post_timeout=300,
        join_timeout=60,
    ) as outcome:
        assert warehouse_counts(dsn, window) == before, "an open DELETE is invisible to others"
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.TransportError | JobError), outcome
    assert warehouse_counts(dsn, window) == before, "the killed load was rolled back"

    # The next loader process marks the killed load interrupted and loads the window again.
    port, log = process.free_port(), tmp_path / "loader-2.log"
    pid = loader.spawn(log, port)
    try:
        process.wait_until(
            lambda: process.port_open(port), pid=pid, timeout=120, what="the loader", log=log
        )
        base = f"http://127.0.0.1:{port}"
        [interrupted] = httpx.get(f"{base}/loads", params={"status": "interrupted"}).json()["items"]
        assert "rolled back" in interrupted["detail"]
        with httpx.Client(base_url=base) as http:
            reload = jobs.final(http, "/loads", body, loader.auth)
        assert reload.status_code == 201, reload.text
        assert reload.json()["rows_inserted"] == before[0]
    finally:
        process.stop(pid)
    accounting = ran.pipeline.account(window)
    assert accounting.balanced, accounting.failures()
    assert (accounting.warehouse_rows, accounting.warehouse_readings) == before


@pytest.mark.browser
def test_the_html_report_plots_the_runs_data_in_chromium(
    ran: Ran, spark: SparkSession, browser: Chromium, tmp_path: Path
) -> None:
    """The demo's HTML report of this run, as `local-pipeline demo` writes it, opened in a
    real headless Chromium: a vertex per Silver reading, a marker per anomaly, a heatmap row
    per sensor of the fleet; no console error, nothing fetched."""
    acc, pipeline = ran.accounting, ran.pipeline
    dropouts = Counter(str(e["sensor_id"]) for e in injections(pipeline.truth_dir, "dropout"))
    readings = silver_readings(spark, pipeline.lake, ran.window)
    report = write_report(
        tmp_path / "report.html", page(acc, pipeline, dropouts, readings, "iotpipe e2e")
    )
    shown = show(browser, report, tmp_path / "report.png")
    assert shown.problems == []
    assert {url.split(":", 1)[0] for url in shown.requests} == {"file"}
    assert len(readings) == acc.silver
    assert sum(s["points"] for s in shown.series) == acc.silver
    assert all(s["points"] == s["readings"] == s["inside"] for s in shown.series)
    assert sum(s["anomalies"] for s in shown.series) == acc.anomalies["total"] > 0
    alerts = sum(1 for r in readings if r["is_anomaly_alert"])
    assert sum(s["alerts"] for s in shown.series) == alerts
    assert shown.heatmap_sensors == SCENARIO.sensors
    assert len(shown.cells) == SCENARIO.sensors * shown.columns >= SCENARIO.sensors * 4
    assert any(c["health"] < 100 for c in shown.cells), "the dropouts show"
