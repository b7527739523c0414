"""``iotpipe``: the developer's command line (local stack, jars, contract).

``make demo`` is ``local-pipeline demo`` (services/local_pipeline): it needs every service.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from iotpipe.output import (
    Output,
    OutputOption,
    TabularOutput,
    TabularOutputOption,
    print_csv,
    print_json,
    stderr,
)
from iotpipe.query import help_text

if TYPE_CHECKING:
    from iotpipe.query import Result

app = typer.Typer(help="IoT pipeline developer tools.", no_args_is_help=True)
local = typer.Typer(
    help="The local stack: a real single-node Kafka and a PostgreSQL.", no_args_is_help=True
)
app.add_typer(local, name="local")
console = Console()


@local.command()
def up(output: OutputOption = Output.TABLE) -> None:
    """Start Kafka (KRaft, topics created) and PostgreSQL; harmless when already up
    (--output json: {started, components})."""
    from iotpipe.local.stack import LocalStack

    stack = LocalStack.load()
    with stderr.status("starting..."):
        started = stack.up()
    if output is Output.JSON:
        print_json({"started": started, "components": _status_rows(stack)})
        return
    console.print(f"started: {', '.join(started)}" if started else "already running")
    _status_table(stack)


@local.command()
def down() -> None:
    """Stop the processes that `up` started (by pid)."""
    from iotpipe.local.stack import LocalStack

    stopped = LocalStack.load().down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@local.command()
def status(output: OutputOption = Output.TABLE) -> None:
    """Say what runs where (--output json: a list of {component, state, address, pid})."""
    from iotpipe.local.stack import LocalStack

    stack = LocalStack.load()
    if output is Output.JSON:
        print_json(_status_rows(stack))
        return
    _status_table(stack)


@local.command()
def env(output: OutputOption = Output.TABLE) -> None:
    """Print `export` lines that point a service at the local stack (--output json: an
    object of the variables)."""
    from iotpipe.local.stack import LocalStack

    variables = LocalStack.load().env()
    if output is Output.JSON:
        print_json(variables)
        return
    for key, value in variables.items():
        print(f"export {key}={value}")


def _status_rows(stack: object) -> list[dict[str, str]]:
    from iotpipe.local.stack import LocalStack

    assert isinstance(stack, LocalStack)
    keys = ("component", "state", "address", "pid")
    return [dict(zip(keys, row, strict=True)) for row in stack.status()]


def _status_table(stack: object) -> None:
    from iotpipe.local.stack import LocalStack

    assert isinstance(stack, LocalStack)
    table = Table("component", "state", "address", "pid", title=f"state: {stack.home}")
    for row in stack.status():
        table.add_row(*row)
    console.print(table)


@app.command()
def jars() -> None:
    """Fetch the JVM dependencies (Kafka broker, Spark's Kafka connector) and build the
    Spark jobs' jar, into the cache."""
    from iotpipe import jars as jvm

    console.print(f"kafka: {jvm.ensure('kafka')}")
    console.print(f"spark-kafka: {jvm.ensure('spark-kafka')}")
    console.print(f"spark-jobs: {jvm.spark_jobs_jar()}")


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    check: Annotated[bool, typer.Option(help="Fail if OUTPUT differs from the contract.")] = False,
) -> None:
    """Print (or write, or check) the JSON Schema derived from the event contract."""
    from iotpipe.contract import json_schema_text

    text = json_schema_text()
    if output is None:
        print(text, end="")
    elif check:
        if not output.exists() or output.read_text() != text:
            console.print(f"[red]{output} is out of date: run `iotpipe schema --output {output}`")
            raise typer.Exit(1)
    else:
        output.write_text(text)


@app.command(epilog=help_text())
def query(
    sql: Annotated[str, typer.Argument(help="A DuckDB SQL query over the views below.")],
    lake: Annotated[
        str | None,
        typer.Option(
            help="The lake's root: a folder or s3a://bucket/prefix (default: LAKE_ROOT).",
            show_default=False,
        ),
    ] = None,
    output: TabularOutputOption = TabularOutput.TABLE,
    max_rows: Annotated[
        int, typer.Option(min=1, help="Rows the table shows at most (json and csv: all).")
    ] = 100,
) -> None:
    """Ad-hoc SQL over the lake's Bronze, Silver, Gold and DLQ Parquet with DuckDB.

    Each view reads its table's committed Parquet files, partition columns included (event_date and event_hour; window_date; dead_lettered_date); times are UTC. Exits 1 when the query fails, 2 for bad arguments. Needs the query extra: iotpipe\\[query].
    """
    from iotpipe.lake import Lake
    from iotpipe.query import QueryError, run
    from iotpipe.settings import LakeSettings, from_environment

    root = Lake(lake.rstrip("/")) if lake else Lake.from_settings(from_environment(LakeSettings))
    try:
        result = run(root, sql)
    except QueryError as exc:
        stderr.print(f"query failed: {exc}", style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None
    for name in result.missing:
        stderr.print(f"note: the lake at {root.root} has no {name} data", markup=False)
    try:
        _print_rows(result, output, max_rows)
    except QueryError as exc:
        stderr.print(f"query failed: {exc}", style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _print_rows(result: Result, output: TabularOutput, max_rows: int) -> None:
    from iotpipe.query import plain

    if output is TabularOutput.JSON:
        print_json([dict(zip(result.columns, map(plain, row), strict=True)) for row in result.rows])
    elif output is TabularOutput.CSV:
        print_csv(result.columns, ([plain(v) for v in row] for row in result.rows))
    else:
        table = Table(*result.columns, show_lines=False)
        for shown, row in enumerate(result.rows):
            if shown == max_rows:
                rest = 1 + sum(1 for _ in result.rows)
                stderr.print(f"({rest:,} more rows: --max-rows, or --output csv for all)")
                break
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        console.print(table)


if __name__ == "__main__":
    app()
