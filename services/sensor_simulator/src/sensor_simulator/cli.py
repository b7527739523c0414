"""``sensor-simulator``: serve the API, or produce a run / replay straight from the shell."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from iotpipe.contract import SensorType
from iotpipe.output import Output, OutputOption, print_json
from iotpipe.settings import from_environment
from sensor_simulator.config import EngineSettings, MalformedKind, RunConfig, RunState
from sensor_simulator.replay import ReplayError, rows_from_bytes
from sensor_simulator.runs import Run, RunManager, RunStatus

app = typer.Typer(
    help="Synthetic IoT sensor readings into Kafka (KAFKA_* and SIMULATOR_* from the environment).",
    no_args_is_help=True,
)
console = Console(stderr=True)


@app.command()
def serve() -> None:
    """Run the HTTP control API (the same as `python -m sensor_simulator`)."""
    from sensor_simulator.__main__ import main

    main()


@app.command()
def run(
    rate: Annotated[float, typer.Option(help="Target events/s; 0 = as fast as possible.")] = 1000,
    max_events: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    sensors: Annotated[int, typer.Option(help="Number of sensors (round-robin).")] = 100,
    sensor_type: Annotated[
        list[SensorType] | None, typer.Option(help="Sensor types (repeat); default: all.")
    ] = None,
    anomaly_rate: Annotated[float, typer.Option(help="Fraction of spikes.")] = 0.0,
    malformed_rate: Annotated[float, typer.Option(help="Fraction of malformed records.")] = 0.0,
    malformed_kind: Annotated[
        list[MalformedKind] | None, typer.Option(help="Malformed kinds (repeat); default: all.")
    ] = None,
    late_rate: Annotated[float, typer.Option(help="Fraction of late events.")] = 0.0,
    late_max_minutes: Annotated[float, typer.Option(help="How late, at most.")] = 30,
    dropout_fraction: Annotated[float, typer.Option(help="Fraction of sensors silenced.")] = 0.0,
    dropout_seconds: Annotated[float, typer.Option(help="How long a dropout lasts.")] = 30,
    drift_sigma: Annotated[
        float, typer.Option(help="Slow wander of each sensor's level, in noise sigmas (0: off).")
    ] = 0.0,
    drift_readings: Annotated[
        float, typer.Option(help="Time constant of the wander, in readings.")
    ] = 1000,
    seed: Annotated[int | None, typer.Option(help="Same seed, same readings.")] = None,
    topic: Annotated[str | None, typer.Option(help="Default: KAFKA_EVENTS_TOPIC.")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Produce a synthetic run until --max-events / --duration / Ctrl-C (SIGTERM flushes);
    prints the run's counters (--output json: the run as GET /runs/{id} returns it)."""
    fields: dict[str, object] = {
        "rate": rate or None,
        "max_events": max_events,
        "duration_seconds": duration,
        "sensors": sensors,
        "anomaly_rate": anomaly_rate,
        "malformed_rate": malformed_rate,
        "late_rate": late_rate,
        "late_max_minutes": late_max_minutes,
        "dropout_fraction": dropout_fraction,
        "dropout_seconds": dropout_seconds,
        "dropout_interval_seconds": max(60.0, dropout_seconds),
        "drift_sigma": drift_sigma,
        "drift_readings": drift_readings,
        "seed": seed,
        "topic": topic,
    }
    if sensor_type:
        fields["sensor_types"] = sensor_type
    if malformed_kind:
        fields["malformed_kinds"] = malformed_kind
    try:
        config = RunConfig.model_validate(fields)
    except ValidationError as exc:
        raise typer.BadParameter(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None
    status = asyncio.run(
        _drive(lambda manager: manager.start_synthetic(config), total=config.max_events)
    )
    _finish(status, output)


@app.command()
def replay(
    csv_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The CSV file.")],
    speed: Annotated[
        float, typer.Option(help="Speed factor of real time (2 = twice as fast); 0 = ASAP.")
    ] = 0,
    topic: Annotated[str | None, typer.Option(help="Default: KAFKA_EVENTS_TOPIC.")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Replay a CSV (sensor_id,sensor_type,timestamp,value,unit,location) with a progress bar
    (--output json: the run's status document)."""
    if speed < 0:
        raise typer.BadParameter("speed must be 0 (as fast as possible) or positive")
    try:
        rows = rows_from_bytes(csv_file.read_bytes())
    except ReplayError as exc:
        raise typer.BadParameter(str(exc)) from None
    status = asyncio.run(
        _drive(
            lambda manager: manager.start_replay(
                rows, source=str(csv_file), speed=speed or None, topic=topic
            ),
            total=len(rows),
        )
    )
    _finish(status, output)


async def _drive(start: Callable[[RunManager], Awaitable[Run]], total: int | None) -> RunStatus:
    """Start a run, show its progress until it ends; SIGINT/SIGTERM stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    current = await start(RunManager(from_environment(EngineSettings)))
    loop.create_task(stop.wait()).add_done_callback(lambda _: current.request_stop())
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(current.id, total=total, rate="")
        while current.task is not None and not current.task.done():
            await asyncio.wait({current.task}, timeout=0.25)
            status = current.status()
            progress.update(
                task,
                completed=status.counters.delivered,
                rate=f"{status.achieved_rate:,.0f} ev/s",
            )
    return current.status()


def _finish(status: RunStatus, output: Output = Output.TABLE) -> None:
    if output is Output.JSON:
        print_json(status.model_dump(mode="json"))
    else:
        _counters(status)
    if status.state is RunState.FAILED:
        console.print(f"[red]failed:[/red] {status.error}")
        raise typer.Exit(1)


def _counters(status: RunStatus) -> None:
    table = Table("counter", "value", title=f"{status.id} ({status.state.value})")
    counters = status.counters.model_dump()
    for name, value in counters.items():
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    table.add_row("achieved rate (last 10 s)", f"{status.achieved_rate:,.1f} events/s")
    if status.ground_truth:
        table.add_row("ground truth", status.ground_truth)
    Console().print(table)


if __name__ == "__main__":
    app()
