"""Shared package of the IoT pipeline: contract, settings, logging, metrics,
service wiring, Kafka and Spark factories, and the local stack."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("iotpipe")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
