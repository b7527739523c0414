"""``iotpipe local up | down | status``: the local stack's processes, remembered in a state file.

``up`` twice is harmless (what runs is left alone); ``down`` stops only the
processes that ``up`` started, by the pids in the state file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from iotpipe.jars import project_root
from iotpipe.local import process
from iotpipe.local.kafka import KafkaBroker
from iotpipe.local.postgres import Postgres

PREFERRED_PORTS = {"kafka": 9092, "kafka_controller": 9093, "postgres": 54329}


def state_dir() -> Path:
    """``IOTPIPE_STATE_DIR``, or a folder per checkout under /tmp (reachable by the postgres user)."""
    if env := os.environ.get("IOTPIPE_STATE_DIR"):
        return Path(env)
    key = hashlib.sha256(str(project_root()).encode()).hexdigest()[:10]
    return Path("/tmp") / f"iotpipe-{os.getuid()}" / key


def _port(preferred: int, recorded: int | None) -> int:
    for candidate in (recorded, preferred):
        if candidate and not process.port_open(candidate):
            return candidate
    return process.free_port()


@dataclass
class LocalStack:
    home: Path
    kafka: KafkaBroker
    postgres: Postgres

    @classmethod
    def load(cls, home: Path | None = None) -> LocalStack:
        home = home or state_dir()
        state = (
            json.loads((home / "state.json").read_text()) if (home / "state.json").exists() else {}
        )
        k, p = state.get("kafka", {}), state.get("postgres", {})
        kafka = KafkaBroker(
            home / "kafka",
            port=k.get("port", 0),
            controller_port=k.get("controller_port", 0),
            pid=k.get("pid"),
        )
        postgres = Postgres(home / "postgres", port=p.get("port", 0), pid=p.get("pid"))
        return cls(home, kafka, postgres)

    def save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        state = {
            "kafka": {
                "port": self.kafka.port,
                "controller_port": self.kafka.controller_port,
                "pid": self.kafka.pid,
            },
            "postgres": {"port": self.postgres.port, "pid": self.postgres.pid},
        }
        (self.home / "state.json").write_text(json.dumps(state, indent=2))

    def up(self) -> list[str]:
        """Start what is not running; return what was started."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o755)
        os.chmod(self.home.parent, 0o755)
        started = []
        if not self.kafka.running():
            self.kafka.port = _port(PREFERRED_PORTS["kafka"], self.kafka.port)
            self.kafka.controller_port = _port(
                PREFERRED_PORTS["kafka_controller"], self.kafka.controller_port
            )
            self.kafka.start()
            started.append("kafka")
            self.save()
        if not self.postgres.running():
            self.postgres.port = _port(PREFERRED_PORTS["postgres"], self.postgres.port)
            self.postgres.start()
            started.append("postgres")
        self.save()
        return started

    def down(self) -> list[str]:
        stopped = []
        if self.kafka.running():
            self.kafka.stop()
            stopped.append("kafka")
        if self.postgres.running():
            self.postgres.stop()
            stopped.append("postgres")
        self.kafka.pid = self.postgres.pid = None
        self.save()
        return stopped

    def env(self) -> dict[str, str]:
        """Environment variables that point services and jobs at this stack."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "WAREHOUSE_DSN": self.postgres.dsn,
            "IOTPIPE_STATE_DIR": str(self.home),
        }

    def status(self) -> list[tuple[str, str, str, str]]:
        """(component, state, address, pid) rows."""
        return [
            (
                "kafka",
                "running" if self.kafka.running() else "stopped",
                self.kafka.bootstrap_servers,
                str(self.kafka.pid or "-"),
            ),
            (
                "postgres",
                "running" if self.postgres.running() else "stopped",
                self.postgres.dsn,
                str(self.postgres.pid or "-"),
            ),
        ]
