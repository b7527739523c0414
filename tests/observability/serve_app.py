"""Serve one service's app with uvicorn: ``python -m tests.observability.serve_app <service>``.

The app is built inside the running event loop (what ``iotpipe.service.serve`` expects;
the DLQ inspector's Kafka clients need a running loop when they are created).
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from iotpipe.logging import configure_logging
from iotpipe.service import serve

APPS = {  # service -> (module of build_app, settings class)
    "sensor-simulator": ("sensor_simulator.api", "sensor_simulator.config:SimulatorSettings"),
    "dlq-inspector": ("dlq_inspector.app", "dlq_inspector.settings:DlqSettings"),
    "quality-gate": ("quality_gate.app", "quality_gate.settings:GateSettings"),
    "warehouse-loader": ("warehouse_loader.app", "warehouse_loader.settings:LoaderSettings"),
}


async def main(service: str) -> None:
    app_module, settings_path = APPS[service]
    module, name = settings_path.split(":")
    settings = getattr(importlib.import_module(module), name)()  # from the environment
    configure_logging(settings.log_level, json=False, service=service)
    await serve(importlib.import_module(app_module).build_app(settings), settings)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
