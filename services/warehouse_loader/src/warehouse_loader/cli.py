"""``warehouse-loader``: serve the loader, or load one window from the shell.

``warehouse-loader load WINDOW`` goes through the service's own code path (the
``LoadService`` behind ``POST /loads``): the same request checks, Gold gate, refusal
messages and load history. Exit status 0 when the window was loaded, 1 when the load was
refused or failed (the warehouse is unchanged), 2 for bad arguments or settings.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from iotpipe.logging import configure_logging
from iotpipe.output import Output, OutputOption, fields_table, print_json, stderr
from iotpipe.settings import from_environment

if TYPE_CHECKING:
    from warehouse_loader.history import LoadRecord
    from warehouse_loader.loads import LoadRequest, LoadService

cli = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="The warehouse loader: Gold windows from the lake into the warehouse star schema. "
    "Configuration comes from the environment: LOADER_API_TOKEN, LOADER_WAREHOUSE_DSN, "
    "LOADER_DIALECT, LOADER_QUALITY_GATE_URL, LAKE_ROOT, ... (see docs/warehouse-loader.md).",
)


@cli.callback()
def main(
    context: typer.Context,
    migrate_only: Annotated[
        bool, typer.Option("--migrate-only", help="Apply pending schema migrations and exit.")
    ] = False,
) -> None:
    """Without a command: serve the loader (like `warehouse-loader serve`)."""
    if context.invoked_subcommand is None:
        serve(migrate_only)


@cli.command()
def serve(
    migrate_only: Annotated[
        bool, typer.Option("--migrate-only", help="Apply pending schema migrations and exit.")
    ] = False,
) -> None:
    """Serve the HTTP API (FastAPI; OpenAPI at /docs).

    Pending schema migrations are applied at start."""
    from iotpipe.service import serve as serve_app
    from warehouse_loader.app import NAME, build_app
    from warehouse_loader.dialects import dialect_for
    from warehouse_loader.settings import LoaderSettings
    from warehouse_loader.warehouse import Warehouse

    settings = from_environment(LoaderSettings)
    configure_logging(settings.log_level, json=settings.log_json, service=NAME)
    if migrate_only:
        applied = Warehouse(dialect_for(settings)).migrate()
        typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")
        return
    asyncio.run(serve_app(build_app(settings), settings))


@cli.command()
def load(
    window: Annotated[
        str,
        typer.Argument(
            help="UTC window of Gold 5-minute windows to load: START--END (ISO-8601 with Z, "
            "as the gate names windows; START and END are the request's window_start and "
            "window_end), a day YYYY-MM-DD or an hour YYYY-MM-DDTHH.",
            show_default=False,
        ),
    ],
    override_reason: Annotated[
        str | None,
        typer.Option(
            help="Load although the Gold gate did not pass (override_gate); the reason "
            "(10+ characters) is logged and kept in the load history.",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Load a window of Gold into the warehouse, as POST /loads does.

    The Gold gate must pass, the window is replaced by delete-then-insert in one transaction, the load is
    recorded in the load history. Exits 0 when loaded, 1 when refused or failed (the
    warehouse is unchanged), 2 for bad arguments or settings.

    Example: warehouse-loader load 2026-11-26 --output json
    """
    from warehouse_loader.app import NAME
    from warehouse_loader.dialects import dialect_for
    from warehouse_loader.loads import LoadFailed, LoadRefused, LoadService
    from warehouse_loader.settings import LoaderSettings
    from warehouse_loader.warehouse import Warehouse

    request = _request(window, override_reason)
    settings = from_environment(LoaderSettings)
    too_long = request.too_long(settings.max_window_days)
    if too_long:
        raise typer.BadParameter(too_long, param_hint="WINDOW")
    configure_logging(settings.log_level, json=settings.log_json, service=NAME)
    service = LoadService(settings, Warehouse(dialect_for(settings)))
    record: LoadRecord | None = None
    problem = None
    try:
        with _spinner(f"loading {request.window}"):
            record = asyncio.run(_migrate_and_load(service, request))
    except LoadRefused as exc:
        record, problem = exc.record, f"load {exc.record.id} refused: {exc}"
    except LoadFailed as exc:
        record, problem = exc.record, f"load {exc.record.id} failed: {exc}"
    except service.warehouse.dialect.errors as exc:
        problem = f"the warehouse is not available: {type(exc).__name__}: {exc}"
    if record is not None:
        if output is Output.JSON:
            print_json(record.model_dump(mode="json"))
        else:
            Console().print(fields_table(f"load {record.id}: {record.status}", dict(record)))
    if problem:
        stderr.print(problem, style="red", markup=False, highlight=False)
        raise typer.Exit(1)


def _request(window: str, override_reason: str | None) -> LoadRequest:
    """The POST /loads body for ``window``, checked by the same model (exit 2 if invalid)."""
    from iotpipe.windows import Window
    from warehouse_loader.loads import LoadRequest

    try:
        parsed = Window.parse(window)
        return LoadRequest(
            window_start=parsed.start,
            window_end=parsed.end,
            override_gate=override_reason is not None,
            override_reason=override_reason,
        )
    except ValidationError as exc:
        reasons = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        raise typer.BadParameter(reasons, param_hint="WINDOW / --override-reason") from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="WINDOW") from None


async def _migrate_and_load(service: LoadService, request: LoadRequest) -> LoadRecord:
    # what the service does at start, but without closing out loads that a running
    # service may hold open: those are its own
    await asyncio.to_thread(service.warehouse.migrate)
    return await service.load(request)


def _spinner(text: str) -> Progress:
    """A spinner with the elapsed time on stderr while a load runs (gone when it ends)."""
    progress = Progress(
        SpinnerColumn(), TextColumn(text), TimeElapsedColumn(), console=stderr, transient=True
    )
    progress.add_task(text, total=None)
    return progress
