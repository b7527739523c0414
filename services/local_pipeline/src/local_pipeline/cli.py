"""``local-pipeline demo`` (what ``make demo`` runs): the whole pipeline locally, with a report.

Exit status: 0 when every stage ran and the accounting balances, 1 when it does not
balance or a stage failed, 2 for bad arguments.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from iotpipe.output import Output, OutputOption, print_json, stderr

if TYPE_CHECKING:
    from local_pipeline.pipeline import Scenario

app = typer.Typer(
    help="The whole IoT pipeline on this machine: local Kafka and PostgreSQL, the streaming "
    "job, a simulator run, the medallion, the quality gates and the warehouse load.",
    no_args_is_help=True,
)
console = Console()


@app.callback()
def main() -> None:
    """The whole IoT pipeline on this machine (``make demo`` runs ``local-pipeline demo``)."""


@dataclass
class Stages:
    """One progress display: a line per stage, ticked off when the next one starts."""

    progress: Progress
    current: TaskID | None = None
    name: str = ""
    began: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per stage, by the stage's short name."""

    def start(self, name: str, description: str, total: int | None = None) -> TaskID:
        self.done()
        self.name, self.began = name, time.perf_counter()
        self.current = self.progress.add_task(description, total=total)
        return self.current

    def note(self, text: str) -> None:
        if self.current is not None:
            self.progress.update(self.current, description=text)

    def done(self) -> None:
        if self.current is not None:
            task = self.progress.tasks[self.current]
            total = task.total or 1
            self.progress.update(self.current, total=total, completed=total)
            self.seconds[self.name] = time.perf_counter() - self.began
            self.current = None


@contextmanager
def stages(out: Console) -> Iterator[Stages]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
    ) as progress:
        shown = Stages(progress)
        yield shown
        shown.done()


@app.command()
def demo(
    events: Annotated[int, typer.Option(min=100, help="Readings the simulator sends.")] = 15_000,
    rate: Annotated[float, typer.Option(min=1, help="Events per second, all sensors.")] = 250.0,
    sensors: Annotated[int, typer.Option(min=1, help="Sensors in the fleet.")] = 50,
    seed: Annotated[int, typer.Option(help="Same seed, same readings.")] = 7,
    keep_up: Annotated[
        bool, typer.Option(help="Leave Kafka and PostgreSQL running afterwards.")
    ] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Stack up -> bronze_stream -> a simulator run with anomalies, malformed, late events and
    sensor dropouts -> Bronze/DLQ drained -> bronze_to_silver, silver_to_gold -> quality gates
    -> warehouse load -> report. Exits 1 when the accounting does not balance.

    With --output json the report is one JSON document on stdout (progress on stderr)."""
    from local_pipeline.pipeline import Scenario

    try:
        scenario = Scenario(events=events, rate=rate, sensors=sensors, seed=seed)
        scenario.run_config("check")  # validate the combination (e.g. rate per sensor)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not run_demo(scenario, keep_up=keep_up, output=output):
        raise typer.Exit(1)


def run_demo(scenario: Scenario, *, keep_up: bool = False, output: Output = Output.TABLE) -> bool:
    """The demo; True when everything ran and balanced."""
    from iotpipe.lake import Lake
    from iotpipe.local.stack import LocalStack
    from iotpipe.spark import session
    from local_pipeline.accounting import injections, window_of
    from local_pipeline.html_report import silver_readings, write_report
    from local_pipeline.pipeline import LocalPipeline
    from local_pipeline.report import document, page, render
    from local_pipeline.services import gate_and_loader

    started_at = time.perf_counter()
    stack = LocalStack.load()
    run_id = f"demo-{uuid.uuid4().hex[:8]}"
    workdir = stack.home / "demo" / run_id
    started: list[str] = []
    out = stderr if output is Output.JSON else console  # stdout holds the document only
    with ExitStack() as cleanup, stages(out) as show:
        show.start("stack up", "starting the local stack (Kafka, PostgreSQL)")
        started = stack.up()
        if started and not keep_up:
            cleanup.callback(stack.down)
        topic = f"sensor-events-{run_id}"
        kafka = stack.kafka.settings().model_copy(
            update={"events_topic": topic, "dlq_topic": f"{topic}-dlq"}
        )
        show.start(
            "start Spark, stream, gate, loader",
            f"starting Spark, the streaming job, the quality gate and the loader ({run_id})",
        )
        pipeline = LocalPipeline(
            kafka=kafka,
            lake=Lake(str(workdir / "lake")),
            warehouse_dsn=stack.postgres.dsn,
            workdir=workdir,
            spark=session("iotpipe-demo"),
            rate_hz=scenario.sensor_rate_hz,
            progress=show.note,
        )
        cleanup.callback(pipeline.spark.stop)
        asyncio.run(pipeline.create_topics())
        stream = pipeline.start_stream()
        cleanup.callback(pipeline.stop_stream)
        services = cleanup.enter_context(gate_and_loader(pipeline.lake, stack.postgres.dsn))

        bar = show.start("simulator run", "simulator: producing", total=scenario.events)
        asyncio.run(pipeline.simulate(scenario, lambda n: show.progress.update(bar, completed=n)))
        show.start("redeliver", f"redelivering {scenario.redeliver} readings (duplicates)")
        redelivered = asyncio.run(pipeline.redeliver(scenario.redeliver))
        show.start(
            "drain to Bronze + DLQ", "streaming job: draining the topic into Bronze and the DLQ"
        )
        pipeline.drain()
        pipeline.stop_stream()
        window = window_of(pipeline.spark, pipeline.lake)
        show.start("medallion, gates, load", f"medallion, gates and load for {window}")
        result = pipeline.process(window, services)
        show.start("accounting", "accounting")
        accounting = pipeline.account(window)
        dropouts = Counter(str(e["sensor_id"]) for e in injections(pipeline.truth_dir, "dropout"))
        show.start("HTML report", "writing the HTML report (plots)")
        readings = silver_readings(pipeline.spark, pipeline.lake, window)
        html = write_report(
            workdir / "report.html",
            page(accounting, pipeline, dropouts, readings, f"iotpipe demo {run_id}"),
        )
        show.done()
    report = (accounting, pipeline, redelivered, dropouts, show.seconds)
    if output is Output.JSON:
        error = str(result.error) if result.error else None
        print_json(
            document(*report)
            | {
                "ok": result.ok and accounting.balanced,
                "window_error": error,
                "html_report": str(html),
            }
        )
    else:
        console.print(render(*report))
        console.print(f"plots (sensor series, health heatmap): [bold]{html.as_uri()}[/bold]")
    ok = result.ok and accounting.balanced
    if not result.ok:
        out.print(f"[red]the window failed at {result.error}[/red]")
    for failure in accounting.failures():
        out.print(f"[red]does not balance:[/red] {failure}")
    out.print(
        f"{'[green]balanced[/green]' if ok else '[red]FAILED[/red]'} in "
        f"{time.perf_counter() - started_at:.0f} s; streaming job restarts: {stream.restarts}; "
        f"lake, logs and report.html in {workdir}; stack "
        f"{'left running' if keep_up or not started else 'stopped'}"
    )
    return ok


if __name__ == "__main__":
    app()
