"""The streaming job as a local process, supervised like ``restartPolicy: Always``.

``bronze_stream`` runs as its own process (``python -m spark_jobs.bronze_stream``, its
own JVM), exactly as the SparkApplication's driver does. A supervisor thread starts it
again whenever it exits without being asked to (a crash, a SIGKILL, a failed query):
it resumes from its checkpoints. How far it got is read from those checkpoints: a
micro-batch counts once its commit file exists, and the offsets it had read up to are
in the batch's offset file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from spark_jobs.bronze_stream import JOB
from spark_jobs.stream_metrics import BRONZE_QUERY

from iotpipe.lake import Lake
from iotpipe.local.process import tail
from iotpipe.settings import KafkaSettings

INGEST_QUERIES = (BRONZE_QUERY,)
"""The queries that read the events topic: each must have committed an offset to be there."""


def committed_offsets(checkpoint: Path, topic: str) -> dict[int, int] | None:
    """Next offset per partition of ``topic`` after the newest committed micro-batch of the
    query whose checkpoint is ``checkpoint`` (None before its first commit)."""
    commits = [int(p.name) for p in (checkpoint / "commits").glob("[0-9]*") if p.name.isdigit()]
    if not commits:
        return None
    lines = (checkpoint / "offsets" / str(max(commits))).read_text().splitlines()
    for line in lines[2:]:  # "v1", the batch metadata, then one line per source
        offsets = json.loads(line)
        if topic in offsets:
            return {int(p): int(o) for p, o in offsets[topic].items()}
    return None


@dataclass
class StreamJob:
    """``bronze_stream`` as a supervised local process."""

    lake: Lake
    kafka: KafkaSettings
    log: Path
    trigger_seconds: float = 1.0
    max_offsets_per_trigger: int = 20_000
    restart_delay_s: float = 1.0
    max_failures: int = 10
    """Unasked exits in a row after which waiting for the job gives up (a crash loop, not
    a crash)."""
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    """Exit codes of the runs that ended unasked (each was followed by a restart)."""
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _supervisor: threading.Thread | None = None

    @property
    def checkpoint(self) -> Path:
        return Path(self.lake.checkpoint(JOB))

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LAKE_ROOT": self.lake.root,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "KAFKA_EVENTS_TOPIC": self.kafka.events_topic,
            "KAFKA_DLQ_TOPIC": self.kafka.dlq_topic,
            "BRONZE_TRIGGER_SECONDS": str(self.trigger_seconds),
            "BRONZE_MAX_OFFSETS_PER_TRIGGER": str(self.max_offsets_per_trigger),
            "BRONZE_METRICS_PORT": "0",
            "BRONZE_SUMMARY": "false",
        }

    def _spawn(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "spark_jobs.bronze_stream"],
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: the JVM goes with it
            )
        self.starts += 1

    def start(self) -> None:
        """Start the job and its supervisor."""
        self._stopping.clear()
        with self._lock:
            self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="stream-supervisor")
        self._supervisor.daemon = True
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(0.25):
            with self._lock:
                if self.process is None or self.process.poll() is None:
                    continue
                self.exits.append(self.process.returncode)
            if self._stopping.wait(self.restart_delay_s):
                return
            with self._lock:
                if not self._stopping.is_set():
                    self._spawn()

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)

    def kill(self) -> None:
        """SIGKILL the job's whole process group, as a node failure would (it is restarted)."""
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop for good: SIGTERM (the job stops its queries), SIGKILL if it takes too long."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
        with self._lock:
            process = self.process
            if process is None or process.poll() is not None:
                return
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)

    def committed(self) -> dict[str, dict[int, int] | None]:
        """Per ingest query, the next offset per partition it has committed."""
        return {
            query: committed_offsets(self.checkpoint / query, self.kafka.events_topic)
            for query in INGEST_QUERIES
        }

    def caught_up(self, ends: dict[int, int]) -> bool:
        """The ingest queries have committed everything up to ``ends`` (partition -> offset)."""
        for offsets in self.committed().values():
            if offsets is None:  # no batch committed yet: only an empty topic is read
                return not any(ends.values())
            if any(offsets.get(p, 0) < end for p, end in ends.items()):
                return False
        return True

    def _check_not_crash_looping(self) -> None:
        if len(self.exits) >= self.max_failures:
            raise RuntimeError(
                f"the streaming job exited {len(self.exits)} times (exit codes {self.exits}); "
                f"last lines of {self.log}:\n{tail(self.log)}"
            )

    def wait_started(self, timeout: float = 600.0) -> None:
        """Block until the ingest queries have started (each has written its checkpoint's
        ``metadata``); a job that exits meanwhile is restarted and waited for."""
        deadline = time.monotonic() + timeout
        while not all((self.checkpoint / q / "metadata").exists() for q in INGEST_QUERIES):
            self._check_not_crash_looping()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the streaming job did not start in {timeout:.0f}s; log: {self.log}"
                )
            time.sleep(0.25)

    def batches(self) -> int:
        """Micro-batches the Bronze query has committed."""
        commits = self.checkpoint / BRONZE_QUERY / "commits"
        return len([p for p in commits.glob("[0-9]*") if p.name.isdigit()])

    def wait_caught_up(self, ends: dict[int, int], timeout: float, poll: float = 0.5) -> float:
        """Block until :meth:`caught_up`; return the seconds it took. The job may be
        restarted meanwhile (that is the point); it only has to get there in time."""
        started = time.monotonic()
        while not self.caught_up(ends):
            self._check_not_crash_looping()
            if time.monotonic() - started > timeout:
                raise TimeoutError(
                    f"the streaming job did not drain {self.kafka.events_topic} in {timeout:.0f}s "
                    f"(committed {self.committed()}, end offsets {ends}; "
                    f"{self.restarts} restart(s)); log: {self.log}"
                )
            time.sleep(poll)
        return time.monotonic() - started
