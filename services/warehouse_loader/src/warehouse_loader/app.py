"""The warehouse-loader FastAPI app: the shared service shape plus the load routes."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from iotpipe.jobs import JobRunner, job_routes
from iotpipe.service import create_app
from warehouse_loader.api import TAGS, LoadJob, router
from warehouse_loader.dialects import dialect_for
from warehouse_loader.loads import LoadService
from warehouse_loader.settings import LoaderSettings
from warehouse_loader.warehouse import Warehouse

NAME = "warehouse-loader"
DESCRIPTION = """Loads Gold 5-minute windows from the lake into the warehouse star schema
(`fact_sensor_readings`, `dim_sensors`, `dim_time`): Redshift in production, PostgreSQL
locally. A load runs only if the quality gate passed the window's Gold (or with an
override and a reason), and replaces the window by delete-then-insert in one transaction,
so reloading is idempotent and a failed load changes nothing."""


def build_app(settings: LoaderSettings | None = None) -> FastAPI:
    settings = settings or LoaderSettings()
    warehouse = Warehouse(dialect_for(settings))
    loads = LoadService(settings, warehouse)
    jobs = JobRunner(LoadJob, name="load")

    async def warehouse_reachable() -> None:
        await asyncio.to_thread(warehouse.ping)

    app = create_app(
        name=NAME,
        settings=settings,
        description=DESCRIPTION,
        readiness={"warehouse": warehouse_reachable},
        start=loads.start,
        stop=jobs.cancel_all,
        tags=TAGS,
    )
    app.state.loads = loads
    app.state.jobs = jobs
    app.include_router(router)
    app.include_router(job_routes(LoadJob, what="load"))
    return app
