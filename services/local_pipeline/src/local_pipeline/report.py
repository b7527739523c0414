"""The demo's report: what each stage holds, and whether the books balance."""

from __future__ import annotations

from collections import Counter
from typing import Any

from numpy.random import default_rng
from rich.console import Group
from rich.table import Table
from sensor_simulator.profiles import Fleet

from local_pipeline.accounting import Accounting
from local_pipeline.html_report import ReportData, facts_of
from local_pipeline.pipeline import LocalPipeline


def _n(value: int) -> str:
    return f"{value:,}"


def counts_table(acc: Accounting, pipeline: LocalPipeline, redelivered: int) -> Table:
    table = Table(title=f"iotpipe demo: {acc.window}", header_style="bold", show_lines=False)
    table.add_column("stage")
    table.add_column("what", style="dim")
    table.add_column("count", justify="right")
    run = pipeline.run
    if run is not None:
        c = run.counters
        table.add_row(
            "simulator",
            f"{c.generated:,} made, {c.delivered:,} acknowledged (acks=all); injected: "
            f"{sum(c.anomalies.values()):,} spikes, {sum(c.malformed.values()):,} malformed, "
            f"{c.late:,} late, {c.sensor_dropouts:,} sensor dropouts "
            f"({c.dropped_readings:,} readings not sent)",
            _n(c.delivered),
        )
    table.add_row(
        "redelivered", "valid readings sent twice (at-least-once upstream)", _n(redelivered)
    )
    table.add_row("produced", "committed records on the events topic", _n(acc.produced))
    if acc.aborted:
        table.add_row(
            "aborted", "records of aborted transactions (read by no one)", _n(acc.aborted)
        )
    table.add_row("Bronze", "valid records in the lake", _n(acc.bronze))
    dlq_total = sum(acc.dlq.values())
    copies = acc.dlq_records - dlq_total
    table.add_row(
        "DLQ",
        "dead letters (one per source offset)" + (f"; {copies:,} sink re-writes" if copies else ""),
        _n(dlq_total),
    )
    for kind, count in sorted(acc.dlq.items()):
        table.add_row("", f"  {kind}", _n(count))
    table.add_row("Silver", "clean, deduplicated readings", _n(acc.silver))
    table.add_row("", "  duplicates removed", _n(acc.duplicates))
    table.add_row("", "  rows with nulls dropped", _n(acc.null_rows))
    table.add_row("", "  anomalies: out of range", _n(acc.anomalies["out_of_range"]))
    table.add_row("", "  anomalies: |z| > 3", _n(acc.anomalies["zscore"]))
    table.add_row("", "  anomalies: either", _n(acc.anomalies["total"]))
    table.add_row("Gold", "sensor x 5-minute windows", _n(acc.gold_windows))
    table.add_row("", "  readings in those windows", _n(acc.gold_readings))
    table.add_row("warehouse", "fact_sensor_readings rows loaded", _n(acc.warehouse_rows))
    if acc.latency_s:
        table.add_row(
            "latency",
            "event time -> Bronze commit, p50 / p95 (late events left out)",
            f"{acc.latency_s['p50']:.1f} s / {acc.latency_s['p95']:.1f} s",
        )
    for layer, verdict in pipeline.verdicts.items():
        failed = ", ".join(verdict.failed_expectations)
        rate = f"{verdict.pass_rate:.0%} of expectations" if verdict.pass_rate is not None else ""
        colour = "green" if verdict.passed else "red"
        table.add_row(
            f"gate: {layer}",
            rate + (f"; failed: {failed}" if failed else ""),
            f"[{colour}]{verdict.verdict.value}[/{colour}]",
        )
    return table


def least_healthy(
    acc: Accounting, fleet: set[str], expected: float, count: int = 5
) -> list[tuple[str, int, float, float | None]]:
    """(sensor, readings, health over the run %, Gold health %) of the ``count`` sensors that
    sent the smallest share of the ``expected`` readings (``fleet`` sensors missing from Gold
    sent none)."""
    rows = []
    for sensor in fleet | set(acc.sensors):
        found = acc.sensors.get(sensor)
        readings = found.readings if found else 0
        gold = found.gold_health_pct if found else None
        rows.append((sensor, readings, 100.0 * readings / expected, gold))
    return sorted(rows, key=lambda row: (row[2], row[0]))[:count]


def health_table(
    acc: Accounting, dropouts: Counter[str], fleet: set[str], expected: float
) -> Table:
    table = Table(
        title=f"five least healthy sensors (readings / {expected:,.0f} expected over the run)"
    )
    for column in ("sensor", "readings", "health over the run", "Gold health_pct", "dropouts"):
        table.add_column(column, justify="left" if column == "sensor" else "right")
    for sensor, readings, health, gold in least_healthy(acc, fleet, expected):
        table.add_row(
            sensor,
            _n(readings),
            f"{health:.1f} %",
            "-" if gold is None else f"{gold:.1f} %",
            _n(dropouts[sensor]),
        )
    return table


def checks_table(acc: Accounting) -> Table:
    table = Table(title="accounting", header_style="bold")
    for column in ("check", "expected", "actual", ""):
        table.add_column(column, justify="left" if column == "check" else "right")
    for check in acc.checks:
        mark = "[green]ok[/green]" if check.ok else "[red]DOES NOT BALANCE[/red]"
        table.add_row(check.name, _fmt(check.expected), _fmt(check.actual), mark)
    return table


def _fmt(value: object) -> str:
    if isinstance(value, int):
        return _n(value)
    if isinstance(value, set) and not value:
        return "none"
    return str(value)


def stage_table(seconds: dict[str, float]) -> Table:
    table = Table(title="wall time per stage")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, value in seconds.items():
        table.add_row(stage, f"{value:.1f}")
    table.add_row("[bold]total[/bold]", f"[bold]{sum(seconds.values()):.1f}[/bold]")
    return table


def _fleet(pipeline: LocalPipeline, dropouts: Counter[str]) -> tuple[set[str], float]:
    """The run's sensors and the readings each was expected to send over the run."""
    run = pipeline.run
    fleet, expected = set(dropouts), 1.0
    if run is not None and run.config is not None and run.finished_at is not None:
        c = run.config
        fleet |= set(
            Fleet.build(c.sensors, c.sensor_types, c.locations, default_rng(0), c.sensor_prefix).ids
        )
        duration = (run.finished_at - run.created_at).total_seconds()
        expected = max(1.0, pipeline.rate_hz * duration)
    return fleet, expected


def render(
    acc: Accounting,
    pipeline: LocalPipeline,
    redelivered: int,
    dropouts: Counter[str],
    seconds: dict[str, float],
) -> Group:
    fleet, expected = _fleet(pipeline, dropouts)
    return Group(
        counts_table(acc, pipeline, redelivered),
        health_table(acc, dropouts, fleet, expected),
        checks_table(acc),
        stage_table(seconds),
    )


def _plain(value: object) -> object:
    """A check's expected/actual value as JSON has it (sets become sorted lists)."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return value


def document(
    acc: Accounting,
    pipeline: LocalPipeline,
    redelivered: int,
    dropouts: Counter[str],
    seconds: dict[str, float],
) -> dict[str, object]:
    """The report as one JSON document (``local-pipeline demo --output json``): the same
    numbers as :func:`render`'s tables."""
    fleet, expected = _fleet(pipeline, dropouts)
    run = pipeline.run
    return {
        "window": str(acc.window),
        "balanced": acc.balanced,
        "simulator": run.counters.model_dump(mode="json") if run is not None else None,
        "redelivered": redelivered,
        "produced": acc.produced,
        "bronze": acc.bronze,
        "dlq": {"total": sum(acc.dlq.values()), "records": acc.dlq_records, **acc.dlq},
        "silver": {
            "rows": acc.silver,
            "duplicates_removed": acc.duplicates,
            "null_rows_dropped": acc.null_rows,
            "anomalies": dict(acc.anomalies),
        },
        "gold": {"windows": acc.gold_windows, "readings": acc.gold_readings},
        "warehouse": {"rows": acc.warehouse_rows, "readings": acc.warehouse_readings},
        "latency_s": dict(acc.latency_s),
        "gates": {
            layer: verdict.model_dump(mode="json") for layer, verdict in pipeline.verdicts.items()
        },
        "least_healthy": [
            {
                "sensor_id": sensor,
                "readings": readings,
                "health_over_run_pct": health,
                "gold_health_pct": gold,
                "dropouts": dropouts[sensor],
            }
            for sensor, readings, health, gold in least_healthy(acc, fleet, expected)
        ],
        "expected_readings_per_sensor": expected,
        "checks": [
            {
                "name": check.name,
                "expected": _plain(check.expected),
                "actual": _plain(check.actual),
                "ok": check.ok,
            }
            for check in acc.checks
        ],
        "stage_seconds": dict(seconds),
    }


def page(
    acc: Accounting,
    pipeline: LocalPipeline,
    dropouts: Counter[str],
    readings: list[dict[str, Any]],
    title: str,
) -> ReportData:
    """What the HTML report shows (:mod:`local_pipeline.html_report`): the run's Silver
    readings, its fleet and span, and the report's main counts."""
    fleet, _ = _fleet(pipeline, dropouts)
    run = pipeline.run
    times = [row["timestamp"] for row in readings]
    start, end = (min(times), max(times)) if times else (acc.window.start, acc.window.end)
    if run is not None and run.finished_at is not None:
        # The run as its readings date it: from the first reading sent after the run was
        # created to the last one before it finished (late events are dated earlier).
        inside = [t for t in times if run.created_at <= t <= run.finished_at]
        start, end = (min(inside), max(inside)) if inside else (run.created_at, run.finished_at)
    latency = acc.latency_s
    return ReportData(
        title=title,
        readings=readings,
        start=start,
        end=end,
        rate_hz=pipeline.rate_hz,
        fleet=sorted(fleet),
        ok=acc.balanced and (pipeline.result is None or pipeline.result.ok),
        facts=facts_of(
            [
                ("window", acc.window),
                ("produced (events topic)", acc.produced),
                ("Bronze rows", acc.bronze),
                ("dead letters", sum(acc.dlq.values())),
                ("Silver rows", acc.silver),
                ("anomalies (Silver)", acc.anomalies["total"]),
                ("Gold windows", acc.gold_windows),
                ("warehouse rows", acc.warehouse_rows),
                ("sensors", len(fleet)),
                (
                    "latency p50 / p95",
                    f"{latency['p50']:.1f} s / {latency['p95']:.1f} s" if latency else "-",
                ),
            ]
        ),
    )
