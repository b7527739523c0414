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

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    dashboard,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model

from iotpipe.contract import SENSOR_TYPES

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


def _sql_target(sql: str, form: str, ref: str) -> dict[str, Any]:
    return {
        "datasource": WAREHOUSE.to_json(),
        "editorMode": "code",
        "format": form,
        "rawQuery": True,
        "rawSql": sql,
        "refId": ref,
    }


class SqlQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """A raw SQL target of the PostgreSQL data source (the SDK has no builder for it).

    ``form``: ``table`` or ``time_series`` (columns ``time``, ``metric``, ``value``; Grafana
    turns the long rows into one series per ``metric``)."""

    class _Target(cogvariants.Dataquery):
        def __init__(self, sql: str, form: str, ref: str) -> None:
            self.sql, self.form, self.ref = sql, form, ref

        def to_json(self) -> dict[str, Any]:
            return _sql_target(self.sql, self.form, self.ref)

    def __init__(self, sql: str, form: str = "table", ref: str = "A") -> None:
        self.sql, self.form, self.ref = " ".join(sql.split()), form, ref

    def build(self) -> cogvariants.Dataquery:
        return self._Target(self.sql, self.form, self.ref)


class SqlAnnotation(cogbuilder.Builder[model.AnnotationQuery]):
    """Annotations from a warehouse query (columns ``time``, ``timeend``, ``text``, ``tags``)."""

    class _Annotation(model.AnnotationQuery):
        def __init__(self, name: str, sql: str, colour: str) -> None:
            super().__init__(name=name, datasource=WAREHOUSE, enable=True, icon_color=colour)
            self.sql = sql

        def to_json(self) -> dict[str, Any]:
            return super().to_json() | {"target": _sql_target(self.sql, "table", "Anno")}

    def __init__(self, name: str, sql: str, colour: str) -> None:
        self.name, self.sql, self.colour = name, " ".join(sql.split()), colour

    def build(self) -> model.AnnotationQuery:
        return self._Annotation(self.name, self.sql, self.colour)


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
        header(uid, title, description)
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
        .annotation(deployments)
    )


def header(
    uid: str, title: str, description: str, since: str = "now-1h", refresh: str = "30s"
) -> dashboard.Dashboard:
    """What every dashboard has: tags, UTC, crosshair, the time range, links to the others."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time(since, "now")
        .refresh(refresh)
        .timezone("utc")
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


# The sensor analytics dashboard reads only the warehouse (fact_sensor_readings, dim_sensors,
# dim_time: docs/warehouse-loader.md). Its SQL must run on PostgreSQL and on Redshift alike:
# date_trunc, COALESCE, CAST, || and plain aggregates only (no FILTER, no :: casts, no
# generate_series). Grafana fills in $__timeFilter(column) (column BETWEEN from AND to) and
# the multi-value variables ($location, $sensor: a list of quoted values).
FACTS = "fact_sensor_readings"
PICKED = "COALESCE(f.location, '(none)') IN ($location) AND f.sensor_id IN ($sensor)"
HEALTH = "100.0 * SUM(f.reading_count) / SUM(f.expected_count)"
"""Readings received / expected over the windows that have a row."""
HOURLY_HEALTH = "100.0 * SUM(f.reading_count) / (12 * MAX(f.expected_count))"
"""Readings received / expected over the whole hour: a silent 5-minute window counts 0."""
GRAFANA_UNITS = {"celsius": "celsius", "percent": "humidity", "hPa": "pressurehpa", "g": "accG"}
"""Grafana's unit ids for the contract's units."""
HEALTH_STEPS = [
    model.Threshold(value=None, color="red"),
    model.Threshold(value=50.0, color="orange"),
    model.Threshold(value=90.0, color="yellow"),
    model.Threshold(value=99.0, color="green"),
]
"""The health bands of the overview's distribution panel: under 50, 50-90, 90-99, 99-100 %."""


def _health_colours(panel: Any) -> Any:
    return (
        panel.unit("percent")
        .min(0)
        .max(100)
        .thresholds(
            dashboard.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(HEALTH_STEPS)
        )
        .color_scheme(dashboard.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
    )


def sql_variable(name: str, sql: str) -> dashboard.QueryVariable:
    """A multi-value variable listing what ``sql`` returns from the warehouse, "All" picked."""
    return (
        dashboard.QueryVariable(name)
        .label(name.capitalize())
        .datasource(WAREHOUSE)
        .query(sql)
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def sensor_series(sensor_type: str, unit: str) -> timeseries.Panel:
    """The 5-minute averages of each picked sensor of one type, anomalous windows as points."""
    where = f"WHERE $__timeFilter(f.window_start) AND f.sensor_type = '{sensor_type}' AND {PICKED}"
    anomaly = [
        model.DynamicConfigValue(id_val="custom.drawStyle", value="points"),
        model.DynamicConfigValue(id_val="custom.pointSize", value=10),
        model.DynamicConfigValue(id_val="custom.showPoints", value="always"),
        model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"}),
    ]
    return (
        timeseries.Panel()
        .title(f"{sensor_type.capitalize()} per sensor (5-minute average; anomalies in red)")
        .description(
            f"avg_value of each {sensor_type} sensor's 5-minute windows; a red point marks a "
            "window with anomalous readings (anomaly_count > 0, at the window's max_value). "
            "Anomaly alerts (one per incident) are the dashboard's annotations."
        )
        .datasource(WAREHOUSE)
        .unit(GRAFANA_UNITS.get(unit, "short"))
        .span(12)
        .height(8)
        .override_by_regexp("/ anomaly$/", anomaly)
        .with_target(
            SqlQuery(
                f"""SELECT f.window_start AS "time", f.sensor_id AS metric, f.avg_value AS value
                FROM {FACTS} f {where} ORDER BY 1""",
                "time_series",
            )
        )
        .with_target(
            SqlQuery(
                f"""SELECT f.window_start AS "time", f.sensor_id || ' anomaly' AS metric,
                       f.max_value AS value
                FROM {FACTS} f {where} AND f.anomaly_count > 0 ORDER BY 1""",
                "time_series",
                "B",
            )
        )
    )


def sensor_analytics() -> dashboard.Dashboard:
    board = (
        header(
            "iotpipe-analytics",
            "iotpipe / Sensor analytics (warehouse)",
            "The data, not the pipeline: each sensor's readings with anomalies marked, sensor "
            "health per sensor and location, hourly and daily rollups. Reads the warehouse's "
            "star schema (Redshift, or PostgreSQL locally) only.",
            since="now-24h",
            refresh="5m",
        )
        .with_variable(
            dashboard.DatasourceVariable("warehouse")
            .label("Warehouse")
            .type("grafana-postgresql-datasource")
        )
        .with_variable(
            sql_variable(
                "location",
                "SELECT DISTINCT COALESCE(location, '(none)') FROM dim_sensors ORDER BY 1",
            )
        )
        .with_variable(
            sql_variable(
                "sensor",
                "SELECT sensor_id FROM dim_sensors "
                "WHERE COALESCE(location, '(none)') IN ($location) ORDER BY 1",
            )
        )
        .annotation(
            SqlAnnotation(
                "Anomaly alerts",
                f"""SELECT f.window_start AS "time", f.window_end AS timeend,
                       f.sensor_id || ': ' || CAST(f.alert_count AS VARCHAR) || ' alert(s), '
                       || CAST(f.anomaly_count AS VARCHAR) || ' anomalous reading(s)' AS text,
                       f.sensor_type AS tags
                FROM {FACTS} f
                WHERE $__timeFilter(f.window_start) AND f.alert_count > 0 AND {PICKED}
                ORDER BY 1""",
                "red",
            )
        )
    )
    board = row(
        board,
        "Readings per sensor",
        [sensor_series(kind.value, spec.unit) for kind, spec in SENSOR_TYPES.items()],
    )
    by_sensor = (
        table.Panel()
        .title("Health per sensor (least healthy first)")
        .description(
            "Readings received / expected (health_pct) over the sensor's windows in the time "
            "range, with its anomalies and alerts."
        )
        .datasource(WAREHOUSE)
        .span(12)
        .height(10)
        .override_by_name(
            "health_pct",
            [
                model.DynamicConfigValue(id_val="unit", value="percent"),
                model.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
            ],
        )
        .thresholds(
            dashboard.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(HEALTH_STEPS)
        )
        .with_target(
            SqlQuery(f"""
            SELECT f.sensor_id, s.sensor_type, COALESCE(s.location, '(none)') AS location,
                   {HEALTH} AS health_pct, SUM(f.reading_count) AS readings,
                   SUM(f.anomaly_count) AS anomalies, SUM(COALESCE(f.alert_count, 0)) AS alerts,
                   COUNT(*) AS windows
            FROM {FACTS} f JOIN dim_sensors s ON s.sensor_id = f.sensor_id
            WHERE $__timeFilter(f.window_start) AND {PICKED}
            GROUP BY f.sensor_id, s.sensor_type, s.location
            ORDER BY health_pct, f.sensor_id""")
        )
    )
    by_location = _health_colours(
        bargauge.Panel()
        .title("Health per location")
        .description("Readings received / expected over every sensor's windows, per location.")
        .datasource(WAREHOUSE)
        .span(12)
        .height(10)
        .reduce_options(common.ReduceDataOptions().values(True).calcs([]))
        .with_target(
            SqlQuery(f"""
            SELECT COALESCE(f.location, '(none)') AS location, {HEALTH} AS health_pct
            FROM {FACTS} f WHERE $__timeFilter(f.window_start) AND {PICKED}
            GROUP BY 1 ORDER BY 1""")
        )
    )
    heatmap = _health_colours(
        statetimeline.Panel()
        .title("Health per sensor and hour")
        .description(
            "A heatmap: one row per sensor, one cell per hour, coloured by the readings it "
            "sent over those it should have sent in the whole hour (a 5-minute window without "
            "a row counts 0, so the current hour fills up as it goes)."
        )
        .datasource(WAREHOUSE)
        .span(24)
        .height(14)
        .show_value(common_model.VisibilityMode.NEVER)
        .merge_values(False)
        .with_target(
            SqlQuery(
                f"""SELECT date_trunc('hour', f.window_start) AS "time", f.sensor_id AS metric,
                       {HOURLY_HEALTH} AS value
                FROM {FACTS} f WHERE $__timeFilter(f.window_start) AND {PICKED}
                GROUP BY 1, 2 ORDER BY 1, 2""",
                "time_series",
            )
        )
    )
    board = row(board, "Sensor health", [by_sensor, by_location, heatmap])
    hourly = [
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(WAREHOUSE)
        .span(12)
        .height(8)
        .draw_style(common_model.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .with_target(
            SqlQuery(
                f"""SELECT date_trunc('hour', f.window_start) AS "time",
                       COALESCE(f.location, '(none)') AS metric, {measure} AS value
                FROM {FACTS} f WHERE $__timeFilter(f.window_start) AND {PICKED}
                GROUP BY 1, 2 ORDER BY 1, 2""",
                "time_series",
            )
        )
        for title, description, measure in (
            (
                "Readings per hour by location",
                "Hourly rollup: sum of reading_count.",
                "SUM(f.reading_count)",
            ),
            (
                "Anomalous readings per hour by location",
                "Hourly rollup: sum of anomaly_count.",
                "SUM(f.anomaly_count)",
            ),
        )
    ]
    daily = (
        table.Panel()
        .title("Daily summary by sensor type")
        .description(
            "Per UTC day (dim_time.calendar_date) and sensor type: sensors, readings, "
            "anomalous readings, alerts, the range and mean of the readings, and health."
        )
        .datasource(WAREHOUSE)
        .span(24)
        .height(8)
        .override_by_name("health_pct", [model.DynamicConfigValue(id_val="unit", value="percent")])
        .with_target(
            SqlQuery(f"""
            SELECT t.calendar_date AS day, f.sensor_type, COUNT(DISTINCT f.sensor_id) AS sensors,
                   SUM(f.reading_count) AS readings, SUM(f.anomaly_count) AS anomalies,
                   SUM(COALESCE(f.alert_count, 0)) AS alerts, MIN(f.min_value) AS min_value,
                   SUM(f.avg_value * f.reading_count) / SUM(f.reading_count) AS mean_value,
                   MAX(f.max_value) AS max_value, {HEALTH} AS health_pct
            FROM {FACTS} f JOIN dim_time t ON t.window_start = f.window_start
            WHERE $__timeFilter(f.window_start) AND {PICKED}
            GROUP BY t.calendar_date, f.sensor_type ORDER BY 1, 2""")
        )
    )
    return row(board, "Rollups", [*hourly, daily])


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
    "iotpipe-analytics.json": sensor_analytics,
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
