"""The local stack under a real Prometheus, for the observability end-to-end test.

:func:`stack` starts, on free loopback ports and against the session's Kafka broker and
PostgreSQL: the four services (uvicorn, through :mod:`tests.observability.serve_app`), the ``bronze_stream``
job as a subprocess (its own ``/metrics`` plus Spark's JMX metrics through the Prometheus
JMX exporter agent, configured by ``observability/spark/jmx-exporter.yaml``), a Pushgateway
for the batch jobs' pushes, an Alertmanager routing with ``observability/alertmanager/``'s
config to a webhook receiver in the test, and a Prometheus server (Debian's ``prometheus``)
scraping all of them every 2 s with the pipeline's rules loaded, their ``for:`` durations
cut to :data:`FAST_FOR` so that alerts fire within the test. Every process is stopped at
the end.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from iotpipe import kafka
from iotpipe.jars import cache_root, project_root
from iotpipe.lake import Lake
from iotpipe.local import KafkaBroker, Postgres
from iotpipe.local.process import alive, free_port, port_open, spawn, stop, tail, wait_until

REPO = project_root()
OBSERVABILITY = REPO / "observability"
RULES = OBSERVABILITY / "rules" / "iotpipe.rules.yaml"
RULE_TESTS = OBSERVABILITY / "rules" / "tests"
JMX_CONFIG = OBSERVABILITY / "spark" / "jmx-exporter.yaml"
ALERTMANAGER = OBSERVABILITY / "alertmanager" / "alertmanager.yml"
FAST_FOR = "4s"
"""Every alert's ``for:`` in the end-to-end test (the expressions stay the file's)."""
TOKEN = "observability-e2e-token"
# Job names as the chart's ServiceMonitors make them (`<release>-<service>`).
SERVICES = {  # name -> env prefix
    "sensor-simulator": "SIMULATOR_",
    "dlq-inspector": "DLQ_",
    "quality-gate": "QUALITY_",
    "warehouse-loader": "LOADER_",
}


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(cache_root() / "bin"))
    if found is None:
        pytest.fail(f"{name} is not installed: run `scripts/tools.sh prometheus`", pytrace=False)
    return found


def jmx_agent() -> Path:
    """The JMX exporter agent jar, the version the Spark image ships, fetched once by Maven."""
    pom = (REPO / "spark-operator" / "image" / "pom.xml").read_text()
    version = re.search(r"<jmx-exporter.version>([^<]+)<", pom)
    assert version, "spark-operator/image/pom.xml names no jmx-exporter.version"
    target = cache_root() / "jars" / f"jmx-exporter-{version.group(1)}"
    jar = target / f"jmx_prometheus_javaagent-{version.group(1)}.jar"
    if not jar.exists():
        artifact = f"io.prometheus.jmx:jmx_prometheus_javaagent:{version.group(1)}"
        result = subprocess.run(
            [
                tool("mvn"),
                "-B",
                "-q",
                "-s",
                str(REPO / "jvm" / "settings.xml"),
                "dependency:copy",
                f"-Dartifact={artifact}",
                f"-DoutputDirectory={target}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"Maven could not fetch {artifact}:\n{result.stdout}"
    return jar


@dataclass
class Notification:
    path: str
    body: dict[str, Any]


@dataclass
class AlertReceiver:
    """A webhook receiver: records what Alertmanager posts (its webhook JSON, version 4)."""

    url: str = ""
    notifications: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def firing(self) -> list[tuple[str, dict[str, str]]]:
        """(path, labels) of every alert that arrived with status ``firing``."""
        with self.lock:
            return [
                (n.path, alert["labels"])
                for n in self.notifications
                for alert in n.body.get("alerts", [])
                if alert.get("status") == "firing"
            ]

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with receiver.lock:
                    receiver.notifications.append(Notification(self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        port = free_port()
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@dataclass
class Stack:
    """What the test talks to: Prometheus, the services' base URLs, the lake, the
    Pushgateway and the webhook receiver behind Alertmanager."""

    prometheus: str
    services: dict[str, str]
    lake: Lake
    logs: Path
    pushgateway: str
    alerts: AlertReceiver
    pids: dict[str, int] = field(default_factory=dict)

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query; the API's JSON (``status``, ``data`` or ``error``)."""
        response = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=30)
        return dict(response.json())

    def value(self, expr: str) -> float:
        result = self.query(expr)["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def wait_for(self, expr: str, what: str, timeout: float = 480) -> None:
        deadline = time.monotonic() + timeout
        while self.value(expr) <= 0:
            dead = [name for name, pid in self.pids.items() if not alive(pid)]
            assert not dead, f"{dead} exited:\n{tail(self.logs / f'{dead[0]}.log', 40)}"
            assert time.monotonic() < deadline, f"no {what} in {timeout:.0f}s ({expr})\n" + tail(
                self.logs / "bronze-stream.log", 40
            )
            time.sleep(1)


def _spark_conf_dir(root: Path, jmx_port: int) -> Path:
    """spark-defaults.conf for the job: JMX sink, streaming metrics, the exporter agent.

    ``spark.driver.defaultJavaOptions`` leaves the job's own ``extraJavaOptions`` alone.
    """
    conf = root / "spark-conf"
    conf.mkdir()
    agent = f"-javaagent:{jmx_agent()}=127.0.0.1:{jmx_port}:{JMX_CONFIG}"
    (conf / "spark-defaults.conf").write_text(
        "spark.metrics.conf.*.sink.jmx.class org.apache.spark.metrics.sink.JmxSink\n"
        "spark.metrics.namespace ${spark.app.name}\n"
        "spark.sql.streaming.metricsEnabled true\n"
        f"spark.driver.defaultJavaOptions {agent}\n"
    )
    return conf


def fast_rules(path: Path) -> Path:
    """The rules file with every alert's ``for:`` cut to :data:`FAST_FOR`, written to
    ``path``: the same expressions, labels and annotations, read from the real file."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = FAST_FOR
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def alertmanager_config(path: Path, receiver: str) -> Path:
    """``observability/alertmanager/alertmanager.yml`` with its webhook URLs on ``receiver``
    (same paths) and its waits cut to seconds, written to ``path``."""
    config = yaml.safe_load(ALERTMANAGER.read_text())
    for hook in (h for r in config["receivers"] for h in r.get("webhook_configs", [])):
        hook["url"] = receiver + urlparse(hook["url"]).path
    for route in [config["route"], *config["route"].get("routes", [])]:
        route.update({"group_wait": "1s", "group_interval": "2s"})
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _prometheus_config(
    root: Path, targets: dict[str, int], pushgateway: int, alertmanager: int
) -> Path:
    rules = fast_rules(root / "iotpipe.rules.yaml")
    local = [f"127.0.0.1:{alertmanager}"]
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": local}]}]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            | ({"scrape_interval": "5s", "scrape_timeout": "5s"} if job.endswith("jmx") else {})
            for job, port in targets.items()
        ]
        + [  # the pushing jobs' own job and grouping labels win (as a ServiceMonitor with
            # honorLabels: true does in the cluster)
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{pushgateway}"]}],
            }
        ],
    }
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stack(
    kafka_broker: KafkaBroker, postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("observability")
    suffix = uuid.uuid4().hex[:8]
    events, dlq = f"obs-events-{suffix}", f"obs-dlq-{suffix}"
    settings = kafka_broker.settings()
    asyncio.run(
        kafka.ensure_topics(settings, [kafka.TopicSpec(events, 3), kafka.TopicSpec(dlq, 3)])
    )
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "KAFKA_EVENTS_TOPIC": events,
        "KAFKA_DLQ_TOPIC": dlq,
        "LAKE_ROOT": str(root / "lake"),
    }
    ports = {name: free_port() for name in SERVICES}
    stream_port, jmx_port, prom_port = free_port(), free_port(), free_port()
    push_port, am_port = free_port(), free_port()
    pids: dict[str, int] = {}
    logs = root / "logs"
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    receiver = AlertReceiver()
    server = receiver.serve()
    try:
        stream_env = {
            **common,
            "SPARK_CONF_DIR": str(_spark_conf_dir(root, jmx_port)),
            "BRONZE_METRICS_PORT": str(stream_port),
            "BRONZE_SUMMARY": "false",
        }
        pids["bronze-stream"] = spawn(
            [sys.executable, "-m", "spark_jobs.bronze_stream", "--trigger_seconds", "1"],
            logs / "bronze-stream.log",
            stream_env,
        )
        for name, prefix in SERVICES.items():
            env = {
                **common,
                f"{prefix}API_TOKEN": TOKEN,
                f"{prefix}HOST": "127.0.0.1",
                f"{prefix}PORT": str(ports[name]),
                f"{prefix}LOG_JSON": "false",
                "DLQ_LEDGER_TOPIC": f"obs-ledger-{suffix}",
                "LOADER_WAREHOUSE_DSN": postgres.dsn,
                "LOADER_QUALITY_GATE_URL": urls["quality-gate"],
            }
            command = [sys.executable, "-m", "tests.observability.serve_app", name]
            pids[name] = spawn(command, logs / f"{name}.log", {**env, "PYTHONPATH": str(REPO)})
        pids["pushgateway"] = spawn(
            [
                tool("prometheus-pushgateway"),
                f"--web.listen-address=127.0.0.1:{push_port}",
                # in memory only: Debian's build persists to /var/lib/prometheus by default,
                # which would hand one run's pushes to the next
                "--persistence.file=",
            ],
            logs / "pushgateway.log",
        )
        pids["alertmanager"] = spawn(
            [
                tool("prometheus-alertmanager"),
                f"--config.file={alertmanager_config(root / 'alertmanager.yml', receiver.url)}",
                f"--storage.path={root / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # one instance, no gossip port
                "--log.level=warn",
            ],
            logs / "alertmanager.log",
        )
        targets = {f"iotpipe-{name}": port for name, port in ports.items()}
        targets |= {"bronze-stream": stream_port, "bronze-stream-jmx": jmx_port}
        config = _prometheus_config(root, targets, push_port, am_port)
        pids["prometheus"] = spawn(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            logs / "prometheus.log",
        )
        waits = {**ports, "pushgateway": push_port, "alertmanager": am_port}
        waits |= {"prometheus": prom_port, "bronze-stream": stream_port}
        for name, port in waits.items():
            log = logs / f"{name}.log"
            wait_until(partial(port_open, port), pid=pids[name], timeout=480, what=name, log=log)
        yield Stack(
            f"http://127.0.0.1:{prom_port}",
            urls,
            Lake(common["LAKE_ROOT"]),
            logs,
            f"http://127.0.0.1:{push_port}",
            receiver,
            pids,
        )
    finally:
        for pid in reversed(pids.values()):
            stop(pid)
        server.shutdown()
        server.server_close()
