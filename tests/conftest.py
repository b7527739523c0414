"""Session-wide real infrastructure: one Kafka broker, one PostgreSQL, one SparkSession.

Each is started on free loopback ports in a folder of its own, for the whole test
session, and stopped at the end. If one cannot start, every test that needs it
fails with the reason (no silent skip).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from iotpipe.local import KafkaBroker, Postgres
from iotpipe.local.process import free_port
from iotpipe.settings import KafkaSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tests.chromium import Chromium


@pytest.fixture(scope="session")
def infra_dir() -> Iterator[Path]:
    # Under /tmp and world-searchable: PostgreSQL runs as its own user when we are root.
    path = Path(tempfile.mkdtemp(prefix="iotpipe-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start(what: str, start: object) -> None:
    try:
        start()  # type: ignore[operator]
    except Exception as exc:
        pytest.fail(f"{what} could not start, so this test cannot run: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_broker(infra_dir: Path) -> Iterator[KafkaBroker]:
    """A real single-node KRaft broker with the pipeline's topics."""
    broker = KafkaBroker(
        infra_dir / "kafka", port=free_port(), controller_port=free_port(), log_level="WARN"
    )
    _start("the Kafka broker", broker.start)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_settings(kafka_broker: KafkaBroker) -> KafkaSettings:
    return kafka_broker.settings()


@pytest.fixture(scope="session")
def postgres(infra_dir: Path) -> Iterator[Postgres]:
    """A real PostgreSQL server with an empty ``iotpipe`` database."""
    server = Postgres(infra_dir / "postgres", port=free_port())
    _start("PostgreSQL", server.start)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local SparkSession (local[2]) with Spark's Kafka connector on the classpath."""
    from iotpipe.spark import session

    created: list[SparkSession] = []
    _start("Spark", lambda: created.append(session("iotpipe-tests")))
    yield created[0]
    created[0].stop()


@pytest.fixture(scope="session")
def browser(infra_dir: Path) -> Iterator[Chromium]:
    """A real headless Chromium (Debian's), driven over the DevTools protocol."""
    from tests.chromium import Chromium

    created: list[Chromium] = []
    _start("Chromium", lambda: created.append(Chromium(infra_dir / "chromium")))
    yield created[0]
    created[0].close()
