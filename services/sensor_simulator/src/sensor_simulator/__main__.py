"""``python -m sensor_simulator``: the HTTP control API (settings from SIMULATOR_* / KAFKA_*)."""

from __future__ import annotations

import asyncio

from iotpipe.logging import configure_logging
from iotpipe.service import serve
from iotpipe.settings import from_environment
from sensor_simulator.api import build_app
from sensor_simulator.config import SimulatorSettings


def main() -> None:
    settings = from_environment(SimulatorSettings)  # the token comes from the env
    configure_logging(settings.log_level, json=settings.log_json, service="sensor-simulator")
    asyncio.run(serve(build_app(settings), settings))


if __name__ == "__main__":
    main()
