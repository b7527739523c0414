"""The lake's layout: one place that names every dataset's path and partitioning.

Every writer and reader (Spark jobs, quality gate, warehouse loader, DLQ) takes
its paths from here, so that moving a dataset is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass

from iotpipe.settings import LakeSettings

EVENT_PARTITIONS = ("event_date", "event_hour")
"""Bronze and Silver are partitioned by the event time's UTC date (yyyy-MM-dd) and hour (0-23)."""
WINDOW_PARTITIONS = ("window_date",)
"""Gold tables are partitioned by the UTC date of their window start."""
DLQ_PARTITIONS = ("dead_lettered_date",)
"""The DLQ's lake copy is partitioned by the UTC date a record was dead-lettered."""


@dataclass(frozen=True)
class Lake:
    root: str

    @classmethod
    def from_settings(cls, settings: LakeSettings | None = None) -> Lake:
        return cls((settings or LakeSettings()).root.rstrip("/"))

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    @property
    def bronze(self) -> str:
        return self.path("bronze", "sensor_readings")

    @property
    def silver(self) -> str:
        return self.path("silver", "sensor_readings")

    @property
    def gold_windows(self) -> str:
        """Per sensor per 5-minute window."""
        return self.path("gold", "sensor_windows_5m")

    @property
    def gold_location_hourly(self) -> str:
        return self.path("gold", "location_hourly")

    @property
    def gold_daily(self) -> str:
        """Per sensor type per day."""
        return self.path("gold", "sensor_type_daily")

    @property
    def dlq(self) -> str:
        """Optional copy of dead-lettered records (the DLQ topic is the primary)."""
        return self.path("dlq", "sensor_events")

    @property
    def quality(self) -> str:
        """Quality-gate results (JSON)."""
        return self.path("_quality")

    @property
    def models(self) -> str:
        """Versioned anomaly models."""
        return self.path("_models")

    def checkpoint(self, job: str) -> str:
        return self.path("_checkpoints", job)
