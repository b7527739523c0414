"""Reading one layer's window out of the lake: only the partitions the window touches.

Small slices become a pandas DataFrame (pyarrow reads the Parquet partitions; no JVM);
large ones a Spark DataFrame. Both keep exactly the rows with the layer's time column
in ``[start, end)``. Both read only committed files: a batch writer renames its files
into place (temporary names start with ``_`` or ``.``, which are skipped), and where a
streaming file sink writes (Bronze), only the files its ``_spark_metadata`` log lists
(:func:`iotpipe.lakefs.committed_files`): it writes in place, so the folder also holds
files being written and those of an attempt that died.
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
from iotpipe.lakefs import filesystem, fingerprints, partition_files
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
    files: tuple[str, ...]
    """The committed data files of the window's partitions, relative to ``location``."""
    file_rows: int
    """Rows in those files (from Parquet footers): an upper bound of the slice."""
    fingerprints: dict[str, str]
    """Per partition, the digest of its files (:func:`iotpipe.lakefs.fingerprints`)."""

    @classmethod
    def locate(cls, lake: Lake, spec: LayerSpec, window: Window) -> Slice:
        location = spec.location(lake)
        fs, root = filesystem(location)
        found = partition_files(fs, root, spec.partitions(window))
        files = tuple(
            entry.path.removeprefix(f"{root}/") for entries in found.values() for entry in entries
        )
        rows = _dataset(fs, root, files, spec).count_rows() if files else 0
        return cls(spec, window, location, files, rows, fingerprints(root, found))

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        fs, root = filesystem(self.location)
        by_partition: dict[str, list[str]] = {}
        for file in self.files:
            by_partition.setdefault(file.rsplit("/", 1)[0], []).append(file)
        # one dataset per partition, joined permissively: partitions written by different
        # versions may have different columns
        tables = [
            _utc(_dataset(fs, root, tuple(files), self.spec).to_table())
            for files in by_partition.values()
        ]
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

        if not self.files:
            return spark.createDataFrame([], self.spec.schema)
        frame = (
            spark.read.option("basePath", self.location)
            .option("mergeSchema", "true")
            .parquet(*(f"{self.location}/{file}" for file in self.files))
        )
        column = self.spec.time_column
        if column not in frame.columns:
            return frame
        start, end = (
            sf.lit(bound.astimezone(UTC)) for bound in (self.window.start, self.window.end)
        )
        return frame.where((sf.col(column) >= start) & (sf.col(column) < end))


def _dataset(fs: pafs.FileSystem, root: str, files: tuple[str, ...], spec: LayerSpec) -> ds.Dataset:
    partitioning = ds.partitioning(
        pa.schema([(name, _PARTITION_TYPES[name]) for name in spec.partition_columns]),
        flavor="hive",
    )
    return ds.dataset(
        [f"{root}/{file}" for file in files],
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
