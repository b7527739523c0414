"""A single-node KRaft Kafka broker (combined broker + controller) from the project's jars."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from iotpipe import jars
from iotpipe.kafka import ensure_topics, ping, pipeline_topics
from iotpipe.local import process
from iotpipe.settings import KafkaSettings

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def _cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64. Like Kafka's own
    ``Uuid.randomUuid`` it never starts with ``-`` (the storage tool would read it as an
    option: one start in 64 failed that way)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class KafkaBroker:
    """One broker process; ``home`` keeps its config, data and log across restarts."""

    home: Path
    port: int
    controller_port: int
    pid: int | None = None
    heap: str = "768m"
    log_level: str = "INFO"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers)

    def running(self) -> bool:
        return process.alive(self.pid)

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("Java 17+ is needed for the Kafka broker; install a JDK first")
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            jars.classpath("kafka"),
        ]

    def _configure(self) -> Path:
        config = self.home / "server.properties"
        data = self.home / "data"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "3",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        self.home.mkdir(parents=True, exist_ok=True)
        config.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        (self.home / "log4j2.properties").write_text(_LOG4J2.format(level=self.log_level))
        if not (data / "meta.properties").exists():
            cluster_id = _cluster_id()
            format_cmd = [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
            ]
            result = subprocess.run(format_cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(
                    f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}"
                )
        return config

    def start(self, *, timeout: float = 120.0, create_topics: bool = True) -> None:
        """Start (or restart) the broker and wait until it answers metadata requests."""
        if self.running():
            return
        config = self._configure()
        self.pid = process.spawn([*self._java(), "kafka.Kafka", str(config)], self.log_file)
        process.wait_until(
            self._answers,
            pid=self.pid,
            timeout=timeout,
            what=f"Kafka broker on port {self.port}",
            log=self.log_file,
        )
        if create_topics:
            settings = self.settings()
            asyncio.run(ensure_topics(settings, pipeline_topics(settings)))

    def _answers(self) -> bool:
        if not process.port_open(self.port):
            return False
        try:
            asyncio.run(ping(self.settings()))
        except Exception:
            return False
        return True

    def stop(self) -> None:
        """Stop gracefully (SIGTERM: controlled shutdown, logs flushed)."""
        process.stop(self.pid, timeout=30)
        self.pid = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        import signal

        process.stop(self.pid, timeout=0, sig=signal.SIGKILL)
        self.pid = None
