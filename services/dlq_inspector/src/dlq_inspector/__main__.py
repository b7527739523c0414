"""``python -m dlq_inspector``: serve the API (settings from the environment)."""

from __future__ import annotations

import asyncio

from dlq_inspector.app import NAME, build_app
from dlq_inspector.settings import DlqSettings
from iotpipe.logging import configure_logging
from iotpipe.service import serve


def main() -> None:
    settings = DlqSettings()  # api_token comes from the environment
    configure_logging(settings.log_level, json=settings.log_json, service=NAME)
    asyncio.run(serve(build_app(settings), settings))


if __name__ == "__main__":
    main()
