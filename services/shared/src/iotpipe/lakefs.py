"""The lake as an Arrow filesystem, for services that read or write it without Spark.

``LAKE_ROOT`` is a local path or an ``s3a://`` URI (Spark's scheme); Arrow speaks
``s3://``. :func:`filesystem` maps one onto the other, once, for every reader.
"""

from __future__ import annotations

import json
import os

import pyarrow.fs as pafs

SINK_LOG = "_spark_metadata"
"""The log a Spark streaming file sink keeps beside its files."""


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """An Arrow filesystem and the path inside it for a lake location."""
    if uri.startswith("s3a://"):
        uri = "s3://" + uri.removeprefix("s3a://")
    if "://" in uri:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, str(path).rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def committed_files(fs: pafs.FileSystem, root: str) -> dict[str, float] | None:
    """The data files a Spark streaming file sink has committed under ``root``: file name
    -> commit time (Unix s, the mtime of the first log entry that lists it; a compacted
    entry repeats older ones). None when ``root`` has no sink log: then every visible file
    is committed (batch writers rename files into place).

    A streaming sink writes its files in place and commits them afterwards, so the folder
    also holds files being written and files of an attempt that died; readers that list
    the folder themselves must keep to these."""
    log = f"{root}/{SINK_LOG}"
    if fs.get_file_info(log).type != pafs.FileType.Directory:
        return None

    def batch(entry: pafs.FileInfo) -> int:
        return int(entry.base_name.split(".")[0])

    entries = [
        entry
        for entry in fs.get_file_info(pafs.FileSelector(log))
        if entry.base_name.split(".")[0].isdigit()
    ]
    committed: dict[str, float] = {}
    for entry in sorted(entries, key=batch):
        with fs.open_input_stream(entry.path) as stream:
            lines = stream.read().decode().splitlines()[1:]  # after the version line
        at = entry.mtime.timestamp() if entry.mtime else 0.0
        for line in lines:
            record = json.loads(line)
            if record.get("action", "add") == "add":
                committed.setdefault(record["path"].rsplit("/", 1)[-1], at)
    return committed
