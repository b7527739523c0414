"""The pipeline's Grafana dashboards, as code (grafana-foundation-sdk).

    uv run --frozen python observability/dashboards/build.py          # write the JSON files
    uv run --frozen python observability/dashboards/build.py --check  # fail if they differ

The JSON files next to this script are its output, committed so that Grafana (the chart's
ConfigMaps, a file provisioner, or an import) needs nothing else. tests/observability/
checks that they equal what this script makes, and the end-to-end test runs every query
against a real Prometheus scraping the local stack.

Every dashboard has a ``datasource`` variable (a Prometheus data source); the overview
also has ``warehouse`` (a PostgreSQL/Redshift data source) for the Gold health panel.
Metric names: docs/observability.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model

HERE = Path(__file__).resolve().parent
TAGS = ["iotpipe"]
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
WAREHOUSE = model.DataSourceRef(type_val="grafana-postgresql-datasource", uid="${warehouse}")
RATE = "$__rate_interval"
SERVICES = ("sensor-simulator", "dlq-inspector", "quality-gate", "warehouse-loader")
SERVICE_JOBS = f'job=~".*({"|".join(SERVICES)})"'

Panel = cogbuilder.Builder[model.Panel]


# ------------------------------------------------------------------------------ building blocks
def query(expr: str, legend: str = "", *, instant: bool = False) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(expr).datasource(PROMETHEUS)
    target = target.legend_format(legend) if legend else target
    return target.instant() if instant else target.range()


class SqlQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """A raw SQL target of the PostgreSQL data source (the SDK has no builder for it)."""

    class _Target(cogvariants.Dataquery):
        def __init__(self, sql: str) -> None:
            self.sql = sql

        def to_json(self) -> dict[str, Any]:
            return {
                "datasource": WAREHOUSE.to_json(),
                "editorMode": "code",
                "format": "table",
                "rawQuery": True,
                "rawSql": self.sql,
                "refId": "A",
            }

    def __init__(self, sql: str) -> None:
        self.sql = " ".join(sql.split())

    def build(self) -> cogvariants.Dataquery:
        return self._Target(self.sql)


def _with_targets(panel: Any, targets: Sequence[cogbuilder.Builder[Any]]) -> Any:
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        if isinstance(target, prometheus.Dataquery):
            target = target.ref_id(ref)
        panel = panel.with_target(target)
    return panel


def graph(
    title: str,
    *targets: prometheus.Dataquery,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    right_axis: str | None = None,
) -> timeseries.Panel:
    """A time series panel; ``right_axis`` names a series drawn against a second axis."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(10)
    )
    if right_axis:
        panel = panel.override_by_name(
            right_axis,
            [
                model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                model.DynamicConfigValue(id_val="unit", value="short"),
            ],
        )
    return _with_targets(panel, targets)


def single(title: str, expr: str, *, unit: str = "short", description: str = "") -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(4)
        .height(4)
    )
    return _with_targets(panel, [query(expr, instant=True)])


def quantiles(
    metric: str, by: str = "", qs: Sequence[float] = (0.5, 0.95, 0.99), match: str = ""
) -> list[prometheus.Dataquery]:
    """``histogram_quantile`` queries of a histogram (``by``: extra labels kept)."""
    group = f"{by}, le" if by else "le"
    selector = f"{{{match}}}" if match else ""
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        query(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{selector}[{RATE}])))",
            f"{prefix}p{round(q * 100)}",
        )
        for q in qs
    ]


def http_panels(service: str | None = None) -> list[Panel]:
    """Request rate, latency and server errors of every service, or of one by route."""
    by, match = ("route", f'service_name="{service}"') if service else ("service_name", "")
    five = ",".join(filter(None, [match, 'status=~"5.."']))
    return [
        graph(
            "Requests per second",
            query(
                f"sum by ({by}, status) (rate(http_requests_total{{{match}}}[{RATE}]))",
                f"{{{{{by}}}}} {{{{status}}}}",
            ),
            unit="reqps",
            width=8,
        ),
        graph(
            "Request latency",
            *quantiles("http_request_duration_seconds", by, (0.5, 0.95), match),
            unit="s",
            width=8,
        ),
        graph(
            "Server errors (5xx) per second",
            query(
                f"sum by ({by}) (rate(http_requests_total{{{five}}}[{RATE}]))"
                f" or sum by ({by}) (rate(http_requests_total{{{match}}}[{RATE}])) * 0",
                f"{{{{{by}}}}}",
            ),
            unit="reqps",
            width=8,
            description="Zero-filled: a line at 0 means requests but no server error.",
        ),
    ]


def base(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """A dashboard with the data source variable, links to the others and deployments."""
    deployments = (
        dashboard.AnnotationQuery()
        .name("Deployments")
        .datasource(PROMETHEUS)
        .enable(True)
        .icon_color("blue")
        .expr(f"changes(process_start_time_seconds{{{SERVICE_JOBS}}}[2m]) > 0")
    )
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("utc")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
        .annotation(deployments)
        .link(
            dashboard.DashboardLink("iotpipe")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(True)
        )
    )


def row(board: dashboard.Dashboard, title: str, panels: Sequence[Panel]) -> dashboard.Dashboard:
    board = board.with_row(dashboard.Row(title))
    for panel in panels:
        board = board.with_panel(panel)
    return board


# ------------------------------------------------------------------------------ dashboards
def overview() -> dashboard.Dashboard:
    bronze_rate = f"sum(rate(bronze_stream_bronze_rows_total[{RATE}]))"
    board = base(
        "iotpipe-overview",
        "iotpipe / Pipeline overview",
        "From sensor to warehouse: throughput, lag, latency, anomalies, dead letters, lake "
        "writes, quality, sensor health and the services. Runbook: docs/runbook.md.",
    ).with_variable(
        dashboard.DatasourceVariable("warehouse")
        .label("Warehouse")
        .type("grafana-postgresql-datasource")
    )
    board = row(
        board,
        "Now",
        [
            single("Events produced / s", f"sum(rate(simulator_events_produced_total[{RATE}]))"),
            single("Consumer lag (records)", "sum(iotpipe:consumer_lag_records:sum)"),
            single(
                "p95 end-to-end latency", "iotpipe:bronze_commit_latency_seconds:p95_5m", unit="s"
            ),
            single("Dead letters / s", f"sum(rate(bronze_stream_dead_letters_total[{RATE}]))"),
            single("Lowest quality pass rate", "min(quality_pass_ratio)", unit="percentunit"),
            single("Firing alerts", 'count(ALERTS{alertstate="firing"}) or vector(0)'),
        ],
    )
    board = row(
        board,
        "Flow",
        [
            graph(
                "Throughput by sensor type",
                query(
                    f"sum by (sensor_type) (rate(simulator_events_produced_total[{RATE}]))",
                    "produced {{sensor_type}}",
                ),
                query(bronze_rate, "committed to Bronze (all types)"),
                unit="short",
                description="Records per second acknowledged by Kafka, per type, "
                "and rows per second committed to Bronze.",
            ),
            graph(
                "Consumer lag",
                query(
                    'sum by (topic) (bronze_stream_offsets_behind_latest{query="bronze"})',
                    "bronze-stream {{topic}}",
                ),
                description="Records on the events topic the stream has not read yet. Spark "
                "keeps its offsets in its checkpoint and commits none to a consumer group, so the "
                "stream reports its own lag (latest offset - its end offset, per partition).",
            ),
            graph(
                "End-to-end latency (event time to Bronze commit)",
                *quantiles("bronze_stream_commit_latency_seconds"),
                unit="s",
            ),
            graph(
                "Throughput vs lag",
                query(
                    f'sum(rate(bronze_stream_input_rows_total{{query="bronze"}}[{RATE}]))',
                    "read / s",
                ),
                query('sum(bronze_stream_offsets_behind_latest{query="bronze"})', "lag (records)"),
                right_axis="lag (records)",
                description="Lag that grows while the read rate is flat: the stream is saturated.",
            ),
            graph(
                "Anomaly rate",
                query(
                    "sum by (sensor_type) (silver_anomaly_alerts) "
                    "/ sum by (sensor_type) (silver_readings)",
                    "alerts per reading {{sensor_type}}",
                ),
                query("iotpipe:anomaly_ratio:avg_1d", "1-day baseline {{sensor_type}}"),
                query("sum(silver_anomaly_alerts)", "alerts (all types)"),
                unit="percentunit",
                right_axis="alerts (all types)",
                description="Anomaly alerts (Silver's is_anomaly_alert: one per incident, "
                "docs/anomaly.md) in the hours the latest bronze_to_silver run wrote, per "
                "reading and in total; not raw per-reading flags. The baseline is the "
                "AnomalyRateSurge alert's (over 3x it and 1 %). Per sensor and 5-minute "
                "window: Gold's alert_count.",
            ),
            graph(
                "Dead letters by error type",
                query(
                    f"sum by (error_type) (rate(bronze_stream_dead_letters_total[{RATE}]))",
                    "{{error_type}} / s",
                ),
                query("sum by (error_type) (dlq_unresolved_messages)", "unresolved (all types)"),
                right_axis="unresolved (all types)",
                description="Rate of records dead-lettered by bronze-stream, and the DLQ's size "
                "not yet replayed (dlq-inspector).",
            ),
        ],
    )
    board = row(
        board,
        "Lake, quality, sensors",
        [
            graph(
                "Lake write status",
                query(bronze_rate, "Bronze rows / s"),
                query(
                    f"sum by (query) (rate(bronze_stream_batches_total[{RATE}])) * 60",
                    "{{query}} batches / min",
                ),
                query("time() - max(bronze_stream_max_event_time_seconds)", "newest event age (s)"),
                right_axis="newest event age (s)",
                width=8,
                description="Rows committed to Bronze, micro-batches completed per query, and the "
                "age of the newest event in Bronze.",
            ),
            graph(
                "Quality pass rate by layer",
                query("quality_pass_ratio", "{{layer}}"),
                unit="percentunit",
                width=8,
                description="Share of expectations passed in each layer's latest gate run.",
            ),
            bargauge.Panel()
            .title("Sensor health distribution (Gold windows)")
            .description(
                "5-minute windows by health_pct (readings received / expected), "
                "from the warehouse's fact_sensor_readings."
            )
            .datasource(WAREHOUSE)
            .span(8)
            .height(8)
            .unit("short")
            .with_target(
                SqlQuery("""
            SELECT CASE WHEN health_pct >= 99 THEN '99-100 %' WHEN health_pct >= 90 THEN '90-99 %'
                        WHEN health_pct >= 50 THEN '50-90 %' ELSE 'under 50 %' END AS band,
                   count(*) AS windows
            FROM fact_sensor_readings WHERE $__timeFilter(window_start)
            GROUP BY 1 ORDER BY 1""")
            ),
            graph(
                "Fleet delivery (readings sent / expected)",
                query(
                    f"sum(rate(simulator_events_produced_total[{RATE}])) / "
                    f"(sum(rate(simulator_events_produced_total[{RATE}])) + "
                    f"sum(rate(simulator_dropped_readings_total[{RATE}])))",
                    "delivered",
                ),
                unit="percentunit",
                width=8,
                description="Live counterpart of health_pct: readings sent over readings due "
                "(sent + silenced by sensor dropouts).",
            ),
            table.Panel()
            .title("Deployed versions")
            .datasource(PROMETHEUS)
            .span(8)
            .height(8)
            .with_target(
                query("count by (service_name, version) (iotpipe_build_info)", instant=True)
                .format(prometheus_model.PromQueryFormat.TABLE)
                .ref_id("A")
            ),
        ],
    )
    return row(board, "Services", http_panels())


def kafka_spark() -> dashboard.Dashboard:
    board = base(
        "iotpipe-kafka-spark",
        "iotpipe / Kafka and Spark",
        "The Kafka cluster (broker metrics) and the Spark "
        "bronze-stream driver and executors (the stream's own metrics and Spark's, through "
        "the JMX exporter; observability/spark/jmx-exporter.yaml).",
    )
    # Broker metrics, the same names on both Kafka providers: Strimzi's metrics reporter and
    # the StatefulSet's JMX exporter (charts/iotpipe/templates/kafka/). No panel reads the
    # Kafka Exporter's consumer-group metrics: no consumer of the pipeline commits offsets to
    # a group (Spark keeps them in its checkpoint, the DLQ inspector assigns partitions).
    board = row(
        board,
        "Kafka (brokers)",
        [
            graph(
                "Messages in per topic",
                query(
                    "sum by (topic) "
                    f'(rate(kafka_server_brokertopicmetrics_messagesin_total{{topic!=""}}[{RATE}]))',
                    "{{topic}}",
                ),
                width=8,
            ),
            graph(
                "Under-replicated and offline partitions",
                query(
                    "sum(kafka_server_replicamanager_underreplicatedpartitions)", "under-replicated"
                ),
                query("max(kafka_controller_kafkacontroller_offlinepartitionscount)", "offline"),
                width=8,
            ),
            graph(
                "Active brokers",
                query("max(kafka_controller_kafkacontroller_activebrokercount)", "brokers"),
                width=8,
            ),
            graph(
                "Broker bytes in / out",
                query(f"sum(rate(kafka_server_brokertopicmetrics_bytesin_total[{RATE}]))", "in"),
                query(f"sum(rate(kafka_server_brokertopicmetrics_bytesout_total[{RATE}]))", "out"),
                unit="Bps",
                width=8,
            ),
            graph(
                "bronze-stream lag per partition",
                query(
                    'bronze_stream_offsets_behind_latest{query="bronze"}', "{{topic}}/{{partition}}"
                ),
                width=8,
            ),
        ],
    )
    board = row(
        board,
        "Spark streaming (bronze-stream)",
        [
            graph(
                "Input and processing rate",
                query("sum by (query) (bronze_stream_input_rows_per_second)", "{{query}} input"),
                query(
                    "sum by (query) (bronze_stream_processed_rows_per_second)",
                    "{{query}} processed",
                ),
                width=8,
            ),
            graph(
                "Micro-batch duration",
                query("max by (query) (bronze_stream_batch_duration_seconds)", "{{query}}"),
                unit="s",
                width=8,
            ),
            graph(
                "Spark streaming metrics (JMX)",
                query("max by (query) (spark_streaming_latency)", "{{query}} batch latency (ms)"),
                query("max by (query) (spark_streaming_processingrate)", "{{query}} processed / s"),
                width=8,
            ),
        ],
    )
    return row(
        board,
        "Spark driver and executors",
        [
            graph(
                "Driver jobs and stages",
                query("sum(spark_driver_dagscheduler_job_activejobs)", "active jobs"),
                query("sum(spark_driver_dagscheduler_stage_runningstages)", "running stages"),
                query(
                    f"sum(increase(spark_driver_appstatus_stages_failedstages_total[{RATE}]))",
                    "failed stages",
                ),
                width=8,
            ),
            graph(
                "JVM heap used",
                query('sum by (job) (jvm_memory_used_bytes{area="heap"})', "{{job}}"),
                unit="bytes",
                width=8,
            ),
            graph(
                "JVM GC time",
                query(f"sum by (job) (rate(jvm_gc_collection_seconds_sum[{RATE}]))", "{{job}}"),
                unit="percentunit",
                width=8,
            ),
            graph(
                "Executor active tasks",
                query(
                    "sum by (executor_id) (spark_executor_threadpool_activetasks)",
                    "executor {{executor_id}}",
                ),
                width=8,
            ),
            graph(
                "Executor completed tasks / s",
                query(
                    f"sum by (executor_id) (rate(spark_executor_succeededtasks_total[{RATE}]))",
                    "executor {{executor_id}}",
                ),
                width=8,
            ),
            graph(
                "Block manager memory used",
                query("sum(spark_driver_blockmanager_memory_memused_mb)", "used (MB)"),
                width=8,
            ),
        ],
    )


def service_dashboard(
    service: str, title: str, description: str, panels: Sequence[Panel]
) -> Callable[[], dashboard.Dashboard]:
    def build() -> dashboard.Dashboard:
        board = base(f"iotpipe-{service}", f"iotpipe / {title}", description)
        job = f'{{job=~".*{service}"}}'
        process = [
            graph(
                "CPU",
                query(f"rate(process_cpu_seconds_total{job}[{RATE}])", "{{instance}}"),
                unit="percentunit",
                width=8,
            ),
            graph(
                "Resident memory",
                query(f"process_resident_memory_bytes{job}", "{{instance}}"),
                unit="bytes",
                width=8,
            ),
            graph("Up", query(f"up{job}", "{{instance}}"), width=8),
        ]
        board = row(board, "HTTP", http_panels(service))
        board = row(board, title, panels)
        return row(board, "Process", process)

    return build


simulator = service_dashboard(
    "sensor-simulator",
    "Sensor simulator",
    "The producer: events acknowledged by Kafka, delivery latency and errors, injected faults.",
    [
        graph(
            "Events acknowledged by sensor type",
            query(
                f"sum by (sensor_type) (rate(simulator_events_produced_total[{RATE}]))",
                "{{sensor_type}}",
            ),
            width=8,
        ),
        graph(
            "Send-to-ack latency", *quantiles("simulator_send_to_ack_seconds"), unit="s", width=8
        ),
        graph(
            "Delivery errors",
            query(
                f"sum(rate(simulator_produce_errors_total[{RATE}]))", "records in failed attempts"
            ),
            query(f"sum(rate(simulator_events_failed_total[{RATE}]))", "records given up"),
            width=8,
        ),
        graph(
            "Active runs and target rate",
            query("sum(simulator_active_runs)", "active runs"),
            query("sum(simulator_target_rate_events_per_second)", "target events / s"),
            right_axis="target events / s",
            width=8,
        ),
        graph(
            "Injected faults",
            query(
                f"sum by (sensor_type) (rate(simulator_anomalies_injected_total[{RATE}]))",
                "anomalies {{sensor_type}}",
            ),
            query(
                f"sum by (kind) (rate(simulator_malformed_injected_total[{RATE}]))",
                "malformed {{kind}}",
            ),
            query(f"sum(rate(simulator_late_injected_total[{RATE}]))", "late"),
            width=8,
        ),
        graph(
            "Sensor dropouts",
            query(f"sum(rate(simulator_dropped_readings_total[{RATE}]))", "readings dropped / s"),
            query(f"sum(increase(simulator_sensor_dropouts_total[{RATE}]))", "dropouts"),
            width=8,
        ),
    ],
)

dlq_inspector = service_dashboard(
    "dlq-inspector",
    "DLQ inspector",
    "Dead letters: what arrives, what is still unresolved, replays.",
    [
        graph(
            "Dead letters read by error type",
            query(f"sum by (error_type) (rate(dlq_messages_seen_total[{RATE}]))", "{{error_type}}"),
            width=8,
        ),
        graph(
            "Unresolved dead letters",
            query("sum(dlq_unresolved_messages)", "unresolved"),
            query("max(dlq_oldest_unresolved_age_seconds)", "oldest (s)"),
            right_axis="oldest (s)",
            width=8,
        ),
        graph(
            "Records without dead-letter headers",
            query("sum(dlq_unreadable_records_total)", "unreadable"),
            width=8,
        ),
        graph(
            "Replayed messages by result",
            query(f"sum by (result) (increase(dlq_replays_total[{RATE}]))", "{{result}}"),
            width=12,
        ),
        graph(
            "Replay duration",
            *quantiles("dlq_replay_duration_seconds", "dry_run", (0.5, 0.95)),
            unit="s",
            width=12,
        ),
    ],
)

quality_gate = service_dashboard(
    "quality-gate",
    "Quality gate",
    "Great Expectations verdicts per layer, failing expectations, run times.",
    [
        graph(
            "Verdicts by layer",
            query(
                f"sum by (layer, result) (increase(quality_checks_total[{RATE}]))",
                "{{layer}} {{result}}",
            ),
            width=8,
        ),
        graph(
            "Pass rate by layer",
            query("quality_pass_ratio", "{{layer}}"),
            unit="percentunit",
            width=8,
        ),
        graph(
            "Time since last run",
            query("time() - quality_last_run_timestamp_seconds", "{{layer}}"),
            unit="s",
            width=8,
        ),
        graph(
            "Failed expectations",
            query(
                "sum by (layer, expectation) (quality_expectations_failed_total)",
                "{{layer}} {{expectation}}",
            ),
            width=12,
        ),
        graph(
            "Run duration p95",
            query(
                f"histogram_quantile(0.95, sum by (layer, engine, le) "
                f"(rate(quality_run_duration_seconds_bucket[{RATE}])))",
                "{{layer}} {{engine}}",
            ),
            unit="s",
            width=12,
        ),
    ],
)

warehouse_loader = service_dashboard(
    "warehouse-loader",
    "Warehouse loader",
    "Loads of Gold windows into the warehouse: outcomes, rows, durations, freshness.",
    [
        graph(
            "Loads by outcome",
            query("sum by (dialect, status) (loader_loads_total)", "{{dialect}} {{status}}"),
            width=8,
        ),
        graph(
            "Rows loaded and replaced / s",
            query(
                f"sum by (dialect) (rate(loader_rows_loaded_total[{RATE}]))", "loaded {{dialect}}"
            ),
            query(
                f"sum by (dialect) (rate(loader_rows_deleted_total[{RATE}]))",
                "replaced {{dialect}}",
            ),
            width=8,
        ),
        graph(
            "Load duration",
            *quantiles("loader_load_duration_seconds", "dialect", (0.5, 0.95)),
            unit="s",
            width=8,
        ),
        graph(
            "Time since last successful load",
            query(
                "time() - max by (dialect) (loader_last_success_timestamp_seconds > 0)",
                "{{dialect}}",
            ),
            unit="s",
            width=12,
        ),
        graph(
            "Loads without a passing gate (overrides)",
            query("sum by (dialect) (loader_gate_overrides_total)", "{{dialect}}"),
            width=12,
        ),
    ],
)

DASHBOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "iotpipe-overview.json": overview,
    "iotpipe-kafka-spark.json": kafka_spark,
    "iotpipe-sensor-simulator.json": simulator,
    "iotpipe-dlq-inspector.json": dlq_inspector,
    "iotpipe-quality-gate.json": quality_gate,
    "iotpipe-warehouse-loader.json": warehouse_loader,
}


def render(make: Callable[[], dashboard.Dashboard]) -> str:
    """The dashboard's JSON as committed (stable key order, trailing newline)."""
    board = make().build()
    for number, panel in enumerate(board.panels or [], start=1):
        panel.id_val = number  # stable ids: links and alerts refer to panels by id
    return json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stale = []
    for name, make in DASHBOARDS.items():
        path, text = HERE / name, render(make)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run {Path(__file__).name}): {', '.join(stale)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
