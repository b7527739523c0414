"""``python -m warehouse_loader``: serve the loader (configuration from ``LOADER_*``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from iotpipe.logging import configure_logging
from iotpipe.service import serve
from iotpipe.settings import from_environment

cli = typer.Typer(add_completion=False)


@cli.command(
    help="Serve the warehouse loader (FastAPI; OpenAPI at /docs). Configuration comes from "
    "the environment: LOADER_API_TOKEN, LOADER_WAREHOUSE_DSN, LOADER_DIALECT, "
    "LOADER_QUALITY_GATE_URL, LAKE_ROOT, ... (see docs/warehouse-loader.md). "
    "Pending schema migrations are applied at start."
)
def run(
    migrate_only: Annotated[
        bool, typer.Option("--migrate-only", help="Apply pending schema migrations and exit.")
    ] = False,
) -> None:
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
    asyncio.run(serve(build_app(settings), settings))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
