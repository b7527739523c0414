"""What the gate knows about each lake layer: where it lives, how it is partitioned,
which columns it has (from ``spark_jobs.schemas``), and which column places a row in time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql.types import StructType
from spark_jobs import schemas

from iotpipe.gate_client import Layer
from iotpipe.lake import EVENT_PARTITIONS, WINDOW_PARTITIONS, Lake
from iotpipe.windows import Window


@dataclass(frozen=True)
class LayerSpec:
    layer: Layer
    schema: StructType
    """The table's columns, as the Spark jobs write them."""
    location: Callable[[Lake], str]
    time_column: str
    """A row belongs to a window when ``start <= time_column < end``."""
    freshness_column: str
    """Its maximum is the newest data of the slice."""
    unique_key: tuple[str, ...] | None = None

    @property
    def columns(self) -> list[str]:
        return [field.name for field in self.schema.fields]

    @property
    def non_nullable(self) -> list[str]:
        return [field.name for field in self.schema.fields if not field.nullable]

    @property
    def partition_columns(self) -> tuple[str, ...]:
        return WINDOW_PARTITIONS if self.layer is Layer.GOLD else EVENT_PARTITIONS

    def partitions(self, window: Window) -> list[str]:
        """The partition folders (relative to the table) that can hold the window's rows."""
        if self.layer is Layer.GOLD:
            return [
                f"{WINDOW_PARTITIONS[0]}={day.start.date().isoformat()}" for day in window.days()
            ]
        date_column, hour_column = EVENT_PARTITIONS
        return [
            f"{date_column}={hour.date().isoformat()}/{hour_column}={hour.hour}"
            for hour in window.hours()
        ]


LAYERS: dict[Layer, LayerSpec] = {
    Layer.BRONZE: LayerSpec(
        Layer.BRONZE, schemas.BRONZE, lambda lake: lake.bronze, "timestamp", "timestamp"
    ),
    Layer.SILVER: LayerSpec(
        Layer.SILVER,
        schemas.SILVER,
        lambda lake: lake.silver,
        "timestamp",
        "timestamp",
        unique_key=("sensor_id", "timestamp"),
    ),
    Layer.GOLD: LayerSpec(
        Layer.GOLD,
        schemas.GOLD_WINDOWS,
        lambda lake: lake.gold_windows,
        "window_start",
        "window_end",
        unique_key=("sensor_id", "window_start"),
    ),
}
