"""Each image, run: the four services answer /healthz, /readyz (with their real dependencies:
the session's Kafka broker and PostgreSQL) and /metrics; the orchestrator and the Spark image
run their commands, and the stream's own jar is on Spark's classpath."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from iotpipe.local import Postgres
from iotpipe.local.process import free_port
from iotpipe.settings import KafkaSettings

pytestmark = pytest.mark.cluster

TOKEN = "image-test-token-0123456789abcdef"
LOCKED_DOWN = ["--read-only", "--tmpfs", "/tmp:rw,size=256m", "--cap-drop", "ALL"]
"""As the chart runs every pod: no capabilities, a read-only root, /tmp an emptyDir."""


def docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def container(image: str, env: dict[str, str], *mounts: str) -> Iterator[str]:
    name = f"iotpipe-image-test-{uuid.uuid4().hex[:8]}"
    volumes = [arg for mount in mounts for arg in ("-v", mount)]
    flags = [f"--env={k}={v}" for k, v in env.items()]
    started = docker("run", "-d", "--name", name, "--network", "host", *LOCKED_DOWN, *volumes,
                     *flags, image)  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        yield name
    finally:
        logs = docker("logs", name)
        docker("rm", "-f", name)
        print(f"--- {image} logs ---\n{logs.stdout}{logs.stderr}")


def wait_ready(base: str, name: str, timeout: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = "no answer"
    while time.monotonic() < deadline:
        running = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
        assert running == "true", f"{name} exited: {docker('logs', name).stderr[-2000:]}"
        try:
            response = httpx.get(f"{base}/readyz", timeout=5)
            if response.status_code == 200:
                return response
            last = response.json()
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"{name} not ready after {timeout:.0f}s: {last}")


def service_env(
    prefix: str, port: int, kafka: KafkaSettings, postgres: Postgres, lake: Path
) -> dict[str, str]:
    return {
        f"{prefix}API_TOKEN": TOKEN,
        f"{prefix}PORT": str(port),
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "LAKE_ROOT": str(lake),
        "LOADER_DIALECT": "postgresql",
        "LOADER_WAREHOUSE_DSN": postgres.dsn,
    }


SERVICES = {
    "sensor-simulator": ("SIMULATOR_", {"kafka"}),
    "dlq-inspector": ("DLQ_", {"started", "kafka", "index"}),
    "quality-gate": ("QUALITY_", {"started", "lake"}),
    "warehouse-loader": ("LOADER_", {"started", "warehouse"}),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_image_serves_health_readiness_and_metrics(
    images: None,
    service: str,
    kafka_settings: KafkaSettings,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    prefix, checks = SERVICES[service]
    lake = tmp_path / "lake"
    lake.mkdir(mode=0o777)
    lake.chmod(0o777)  # the image's own user writes it
    port = free_port()
    env = service_env(prefix, port, kafka_settings, postgres, lake)
    with container(f"iotpipe/{service}:dev", env, f"{lake}:{lake}") as name:
        base = f"http://127.0.0.1:{port}"
        ready = wait_ready(base, name)
        assert ready.json() == {"status": "ready", "checks": dict.fromkeys(checks, "ok")}
        health = httpx.get(f"{base}/healthz", timeout=5).json()
        assert health["status"] == "ok"
        assert health["service"] == service
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert f'iotpipe_build_info{{service_name="{service}"' in metrics
        assert 'route="/readyz"' in metrics
        assert httpx.get(f"{base}/openapi.json", timeout=5).json()["info"]["title"] == service
        user = docker("exec", name, "id", "-u").stdout.strip()
        assert user != "0", "the service runs as root"


def test_the_services_run_as_their_own_users_without_root(images: None) -> None:
    for service in SERVICES:
        config = json.loads(docker("inspect", f"iotpipe/{service}:dev").stdout)[0]["Config"]
        assert config["User"] not in ("", "0", "root", "0:0"), service


def test_the_orchestrator_image_runs_its_cli(images: None) -> None:
    done = docker("run", "--rm", *LOCKED_DOWN, "iotpipe/orchestrator:dev", "--help")
    assert done.returncode == 0, done.stderr
    assert "daily" in done.stdout


def test_the_spark_image_has_spark_and_the_streams_jar(images: None) -> None:
    version = docker("run", "--rm", *LOCKED_DOWN, "--entrypoint", "spark-submit",
                     "iotpipe/spark:dev", "--version")  # fmt: skip
    assert version.returncode == 0, version.stderr
    import pyspark

    assert f"version {pyspark.__version__}" in version.stdout + version.stderr
    # The stream's fast path, loaded by a real SparkSession inside the image.
    probe = (
        "from pyspark.sql import SparkSession\n"
        "from spark_jobs.classify import SCANNER_CLASS\n"
        "spark = SparkSession.builder.master('local[1]').getOrCreate()\n"
        "jvm = spark.sparkContext._jvm\n"
        "print(jvm.java.lang.Class.forName(SCANNER_CLASS).getName())\n"
        "jvm.java.lang.Class.forName("
        "'org.apache.spark.sql.kafka010.KafkaSourceProvider').getName()\n"
        "print('kafka connector ok')\n"
        "spark.stop()\n"
    )
    loaded = docker("run", "--rm", *LOCKED_DOWN, "--entrypoint", "python", "iotpipe/spark:dev",
                    "-c", probe, timeout=600)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "io.iotpipe.spark.FlatJsonScanner" in loaded.stdout
    assert "kafka connector ok" in loaded.stdout
