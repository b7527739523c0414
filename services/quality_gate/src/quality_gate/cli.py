"""``quality-gate``: serve the API, or run a suite once from the command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from iotpipe.gate_client import Layer
from iotpipe.output import Output, OutputOption, print_json, stderr
from iotpipe.settings import from_environment

app = typer.Typer(
    help="Quality gate of the IoT pipeline: Great Expectations suites per lake layer and window.",
    no_args_is_help=False,
    invoke_without_command=True,
)
console = Console()


@app.callback()
def main(context: typer.Context) -> None:
    """Without a command: serve the API (like `quality-gate serve`)."""
    if context.invoked_subcommand is None:
        serve()


@app.command()
def serve() -> None:
    """Serve the HTTP API (configuration from QUALITY_* and LAKE_* variables)."""
    from iotpipe.logging import configure_logging
    from iotpipe.service import serve as serve_app
    from quality_gate.app import build_app
    from quality_gate.settings import GateSettings

    settings = from_environment(GateSettings)  # api_token from the env
    configure_logging(settings.log_level, json=settings.log_json, service="quality-gate")
    asyncio.run(serve_app(build_app(settings), settings))


@app.command()
def suites(
    layer: Annotated[Layer, typer.Argument(help="bronze, silver or gold")],
    output: OutputOption = Output.TABLE,
) -> None:
    """List the expectations of a layer's suite by name (--output json: a list of names)."""
    from quality_gate.suites import suite_names

    names = suite_names(layer)
    if output is Output.JSON:
        print_json(names)
        return
    for name in names:
        console.print(name)


@app.command()
def run(
    layer: Annotated[Layer, typer.Argument(help="bronze, silver or gold")],
    window: Annotated[str, typer.Argument(help="START--END, YYYY-MM-DD or YYYY-MM-DDTHH (UTC)")],
    output: OutputOption = Output.TABLE,
) -> None:
    """Validate a layer's window once, persist the result in the lake, print the outcome.

    Exits 1 when the verdict is fail. Needs QUALITY_API_TOKEN like the service (one config). With --output json: the run as GET /runs/{id} returns it.
    """
    from iotpipe.windows import Window
    from quality_gate.gate import QualityGate
    from quality_gate.settings import GateSettings

    try:
        parsed = Window.parse(window)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="WINDOW") from None
    gate = QualityGate(from_environment(GateSettings))
    with stderr.status(f"validating {layer.value} {parsed} ..."):
        result = asyncio.run(gate.run(layer, parsed))
    passed = result.verdict.value == "pass"
    if output is Output.JSON:
        print_json(result.model_dump(mode="json"))
        raise typer.Exit(0 if passed else 1)
    table = Table(title=f"{result.layer.value} {result.window}: {result.verdict.value.upper()}")
    for column in ("expectation", "ok", "observed"):
        table.add_column(column)
    for line in result.expectations:
        table.add_row(line.name, "yes" if line.success else "[red]NO[/red]", str(line.observed))
    console.print(table)
    console.print(
        f"run {result.run_id}: pass rate {result.pass_rate:.1%} (threshold "
        f"{result.threshold:.0%}), {result.row_count} rows, engine {result.engine}; "
        f"result at {result.result_location}"
    )
    raise typer.Exit(0 if passed else 1)
