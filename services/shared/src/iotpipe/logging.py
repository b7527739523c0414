"""JSON logging for services and jobs: one line per record, machine-readable."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(
    level: str = "INFO", *, json: bool = True, service: str | None = None
) -> None:
    """Route the root logger to stderr, as JSON (default) or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    if json:
        static = {"service": service} if service else None
        handler.setFormatter(
            JsonFormatter(
                _FORMAT, rename_fields={"levelname": "level", "asctime": "ts"}, static_fields=static
            )
        )
    else:
        handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "py4j"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
