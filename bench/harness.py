"""What every benchmark shares: the result record, its JSON file, and the summary table.

A benchmark is a module ``bench/<name>.py`` with ``def run() -> Result``. It
measures the project and a reference (Kafka's ProducerPerformance, DuckDB, ...)
back to back in the same run, because these machines are noisy: the ratio is
the number to trust, not the absolute one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iotpipe.local import KafkaBroker
from iotpipe.local.process import free_port

RESULTS = Path(__file__).parent / "results"


@dataclass
class Result:
    name: str
    metric: str
    value: float
    unit: str
    reference: str
    reference_value: float
    target: str
    met: bool
    ratio: float | None = None
    """value ÷ reference_value unless the benchmark defines it otherwise (and says so)."""
    extra: dict[str, Any] = field(default_factory=dict)
    measured_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )
    cores: int = field(default_factory=lambda: os.cpu_count() or 0)

    def __post_init__(self) -> None:
        if self.ratio is None:
            self.ratio = self.value / self.reference_value if self.reference_value else float("nan")

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data, **extra}

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps(self.record(), indent=2) + "\n")
        return path

    def summary(self) -> str:
        verdict = "met" if self.met else "NOT met"
        return (
            f"{self.name}: {self.metric} = {self.value:,.2f} {self.unit}; {self.reference} = "
            f"{self.reference_value:,.2f}; ratio {self.ratio:.2f}; target {self.target} ({verdict})"
        )


@contextmanager
def fresh_broker(name: str) -> Iterator[KafkaBroker]:
    """A new single-node broker in a temp folder (no topics), stopped and removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix=f"iotpipe-bench-{name}-"))
    broker = KafkaBroker(home / "kafka", port=free_port(), controller_port=free_port())
    try:
        broker.start(create_topics=False)
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)
