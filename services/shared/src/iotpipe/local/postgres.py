"""A PostgreSQL server in a folder of its own, on a loopback port (the warehouse stand-in).

PostgreSQL refuses to run as root; when we are root, ``initdb`` and the server
run as the ``postgres`` system user (Debian's package creates it) and the data
folder is handed to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from iotpipe.local import process

DATABASE = "iotpipe"
USER = "iotpipe"


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found; install the server (apt-get install postgresql)"
        )
    return candidates[0]


def _as_postgres_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root needs the 'postgres' system user "
            "(apt-get install postgresql creates it)"
        ) from None
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class Postgres:
    """One server; ``home`` holds the data folder and the log across restarts."""

    home: Path
    port: int
    pid: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def running(self) -> bool:
        return process.alive(self.pid)

    def _prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        as_pg = _as_postgres_user()
        if as_pg:
            # The postgres user must be able to reach and own its folder.
            for folder in self.home.parents:
                if not os.stat(folder).st_mode & 0o001:
                    raise RuntimeError(
                        f"{folder} is not searchable by the postgres user; "
                        "put the stack's state elsewhere (IOTPIPE_STATE_DIR)"
                    )
            shutil.chown(self.home, "postgres", "postgres")
            self.log_file.touch()
            shutil.chown(self.log_file, "postgres", "postgres")
        if (self.data_dir / "PG_VERSION").exists():
            return
        command = [
            *as_pg,
            _bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def start(self, *, timeout: float = 60.0) -> None:
        if self.running():
            return
        self._prepare()
        command = [
            *_as_postgres_user(),
            _bin("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=50",
            "-c",
            "shared_buffers=128MB",
        ]
        self.pid = process.spawn(command, self.log_file)
        process.wait_until(
            self._accepts,
            pid=self.pid,
            timeout=timeout,
            what=f"PostgreSQL on port {self.port}",
            log=self.log_file,
        )
        self._create_database()

    def _psql(self, database: str, sql: str) -> subprocess.CompletedProcess[str]:
        command = [
            _bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            USER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAtc",
            sql,
        ]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def _accepts(self) -> bool:
        return process.port_open(self.port) and self._psql("postgres", "select 1").returncode == 0

    def _create_database(self) -> None:
        exists = self._psql("postgres", f"select 1 from pg_database where datname = '{DATABASE}'")
        if exists.stdout.strip() != "1":
            created = self._psql("postgres", f"create database {DATABASE}")
            if created.returncode != 0:
                raise RuntimeError(f"could not create database {DATABASE}: {created.stderr}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open sessions are rolled back, the server exits cleanly."""
        process.stop(self.pid, timeout=30, sig=signal.SIGINT)
        self.pid = None
