"""Reading one layer's window out of the lake: only the partitions the window touches.

Small slices become a pandas DataFrame (pyarrow reads the Parquet partitions; no JVM);
large ones a Spark DataFrame. Both keep exactly the rows with the layer's time column
in ``[start, end)``. Files Spark is still writing are not visible to either: Spark
writes to temporary names (``_``/``.`` prefixes), which both readers skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from iotpipe.lake import Lake
from iotpipe.lakefs import filesystem
from iotpipe.windows import Window
from quality_gate.layers import LayerSpec

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

UTC_MICROS = pa.timestamp("us", tz="UTC")
_PARQUET = ds.ParquetFileFormat(
    # Spark may write timestamps as INT96; read them at Spark's precision.
    read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us")
)
_PARTITION_TYPES: dict[str, pa.DataType] = {
    "event_date": pa.date32(),
    "event_hour": pa.int32(),
    "window_date": pa.date32(),
}


@dataclass(frozen=True)
class Slice:
    """The partitions of one layer that hold a window's rows."""

    spec: LayerSpec
    window: Window
    location: str
    """The table's location in the lake (as configured: local path or s3a:// URI)."""
    partitions: tuple[str, ...]
    """Partition folders under ``location`` that exist."""
    file_rows: int
    """Rows in those partitions' files (from Parquet footers): an upper bound of the slice."""

    @classmethod
    def locate(cls, lake: Lake, spec: LayerSpec, window: Window) -> Slice:
        location = spec.location(lake)
        fs, root = filesystem(location)
        existing = tuple(
            part
            for part in spec.partitions(window)
            if fs.get_file_info(f"{root}/{part}").type == pafs.FileType.Directory
        )
        rows = sum(_dataset(fs, root, part, spec).count_rows() for part in existing)
        return cls(spec, window, location, existing, rows)

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        fs, root = filesystem(self.location)
        tables = [_utc(_dataset(fs, root, part, self.spec).to_table()) for part in self.partitions]
        tables = [table for table in tables if table.num_rows]
        if not tables:
            return pd.DataFrame({name: pd.Series(dtype=object) for name in self.spec.columns})
        table = pa.concat_tables(tables, promote_options="permissive")
        column = self.spec.time_column
        if column in table.column_names:
            start = pa.scalar(self.window.start, UTC_MICROS)
            end = pa.scalar(self.window.end, UTC_MICROS)
            table = table.filter(
                pc.and_(pc.greater_equal(table[column], start), pc.less(table[column], end))
            )
        return table.to_pandas()

    def to_spark(self, spark: SparkSession) -> DataFrame:
        from pyspark.sql import functions as sf

        if not self.partitions:
            return spark.createDataFrame([], self.spec.schema)
        frame = (
            spark.read.option("basePath", self.location)
            .option("mergeSchema", "true")
            .parquet(*(f"{self.location}/{part}" for part in self.partitions))
        )
        column = self.spec.time_column
        if column not in frame.columns:
            return frame
        start, end = (
            sf.lit(bound.astimezone(UTC)) for bound in (self.window.start, self.window.end)
        )
        return frame.where((sf.col(column) >= start) & (sf.col(column) < end))


def _dataset(fs: pafs.FileSystem, root: str, part: str, spec: LayerSpec) -> ds.Dataset:
    partitioning = ds.partitioning(
        pa.schema([(name, _PARTITION_TYPES[name]) for name in spec.partition_columns]),
        flavor="hive",
    )
    return ds.dataset(
        f"{root}/{part}",
        filesystem=fs,
        format=_PARQUET,
        partitioning=partitioning,
        partition_base_dir=root,
    )


def _utc(table: pa.Table) -> pa.Table:
    """Zone-less timestamps are UTC instants (Spark's TimestampType): say so."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            column = table.column(index).cast(pa.timestamp("us")).cast(UTC_MICROS)
            table = table.set_column(index, field.name, column)
    return table
