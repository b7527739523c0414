"""The dashboards: committed JSON is the generator's output; the panels the issue asks for
are there; every panel queries through the dashboard's data source variable."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType

import pytest

from tests.observability.dashboards import DASHBOARDS, committed, panels, sql_queries, sql_variables

OVERVIEW_PANELS = [  # the issue's list, by the overview's panel titles
    "Throughput by sensor type",
    "Consumer lag",
    "End-to-end latency (event time to Bronze commit)",
    "Anomaly rate",
    "Dead letters by error type",
    "Lake write status",
    "Quality pass rate by layer",
    "Throughput vs lag",
    "Sensor health distribution (Gold windows)",
    "Requests per second",
    "Request latency",
    "Server errors (5xx) per second",
]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("iotpipe_dashboards", DASHBOARDS / "build.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_committed_json_is_the_generators_output(generator: ModuleType) -> None:
    assert set(committed()) == set(generator.DASHBOARDS)
    for name, make in generator.DASHBOARDS.items():
        assert (DASHBOARDS / name).read_text() == generator.render(make), (
            f"{name} is stale: run `uv run --frozen python observability/dashboards/build.py`"
        )
    assert generator.main(["--check"]) == 0


def test_overview_has_the_issues_panels() -> None:
    overview = committed()["iotpipe-overview.json"]
    titles = [p["title"] for p in panels(overview) if p["type"] != "row"]
    assert len(titles) >= 11
    assert [t for t in OVERVIEW_PANELS if t not in titles] == []
    annotations = [a["name"] for a in overview["annotations"]["list"]]
    assert "Deployments" in annotations


def test_a_dashboard_for_kafka_and_spark_and_one_per_service() -> None:
    uids = {board["uid"] for board in committed().values()}
    services = ["sensor-simulator", "dlq-inspector", "quality-gate", "warehouse-loader"]
    assert uids == {"iotpipe-overview", "iotpipe-kafka-spark", "iotpipe-analytics"} | {
        f"iotpipe-{s}" for s in services
    }
    kafka_spark = committed()["iotpipe-kafka-spark.json"]
    exprs = " ".join(t["expr"] for p in panels(kafka_spark) for t in p.get("targets", []))
    for metric in (
        "kafka_server_brokertopicmetrics_messagesin_total",
        "kafka_controller_kafkacontroller_activebrokercount",
        "spark_executor_",
        "spark_driver_",
        "jvm_memory_used_bytes",
    ):
        assert metric in exprs
    # No consumer of the pipeline commits offsets to a group: no panel may wait for one.
    every = " ".join(
        t.get("expr", "")
        for board in committed().values()
        for p in panels(board)
        for t in p.get("targets", [])
    )
    assert "kafka_consumergroup_" not in every


@pytest.mark.parametrize("name", sorted(committed()))
def test_every_panel_queries_through_a_datasource_variable(name: str) -> None:
    board = committed()[name]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in board["templating"]["list"] if v["type"] == "datasource"}
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"].strip("${}") in variables
            assert target.get("expr") or target.get("rawSql")


ANALYTICS_PANELS = [  # issue 22 item 4: the seed's dashboard, on the warehouse
    "Temperature per sensor (5-minute average; anomalies in red)",
    "Humidity per sensor (5-minute average; anomalies in red)",
    "Pressure per sensor (5-minute average; anomalies in red)",
    "Vibration per sensor (5-minute average; anomalies in red)",
    "Health per sensor (least healthy first)",
    "Health per location",
    "Health per sensor and hour",
    "Readings per hour by location",
    "Anomalous readings per hour by location",
    "Daily summary by sensor type",
]
NOT_ON_REDSHIFT = {  # PostgreSQL-only SQL that Redshift rejects (or runs only on the leader)
    r"::": "the :: cast (write CAST(x AS type))",
    r"\bFILTER\s*\(": "aggregate FILTER clauses",
    r"\bgenerate_series\b": "generate_series (leader node only)",
    r"\bDISTINCT\s+ON\b": "DISTINCT ON",
    r"\$__time(Group|From|To|Epoch)": "Grafana macros the tests do not expand",
}


def test_the_analytics_dashboard_reads_the_warehouse_only() -> None:
    board = committed()["iotpipe-analytics.json"]
    titles = [p["title"] for p in panels(board) if p["type"] != "row"]
    assert titles == ANALYTICS_PANELS
    sources = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert [v["query"] for v in sources] == ["grafana-postgresql-datasource"]
    assert [name for name, _ in sql_variables(board)] == ["location", "sensor"]
    assert [a["name"] for a in board["annotations"]["list"]] == ["Anomaly alerts"]
    kinds = {p["type"] for p in panels(board)}
    assert {"timeseries", "state-timeline", "table", "bargauge"} <= kinds


def test_warehouse_sql_is_portable_to_redshift() -> None:
    queries = list(sql_queries())
    assert len(queries) > 10
    variables = [sql for board in committed().values() for _, sql in sql_variables(board)]
    for where, sql in [(f"{b} / {p}", q) for b, p, q in queries] + [
        ("variable", v) for v in variables
    ]:
        for pattern, why in NOT_ON_REDSHIFT.items():
            assert not re.search(pattern, sql, re.IGNORECASE), f"{where}: {why}\n  {sql}"
