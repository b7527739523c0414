"""The lake as an Arrow filesystem, for services that read or write it without Spark.

``LAKE_ROOT`` is a local path or an ``s3a://`` URI (Spark's scheme); Arrow speaks
``s3://``. :func:`filesystem` maps one onto the other, once, for every reader.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

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


def partition_files(
    fs: pafs.FileSystem, root: str, partitions: Iterable[str]
) -> dict[str, list[pafs.FileInfo]]:
    """The committed data files of each of these partition folders (relative to ``root``)
    that exists: visible names only (a batch writer's temporary files start with ``_`` or
    ``.``), and where a streaming sink writes, only what its log lists."""
    committed = committed_files(fs, root)
    found: dict[str, list[pafs.FileInfo]] = {}
    for part in partitions:
        folder = f"{root}/{part}"
        if fs.get_file_info(folder).type != pafs.FileType.Directory:
            continue
        found[part] = sorted(
            (
                entry
                for entry in fs.get_file_info(pafs.FileSelector(folder, recursive=True))
                if entry.type == pafs.FileType.File
                and not entry.base_name.startswith(("_", "."))
                and (committed is None or entry.base_name in committed)
            ),
            key=lambda entry: entry.path,
        )
    return found


def fingerprints(root: str, files: dict[str, list[pafs.FileInfo]]) -> dict[str, str]:
    """Per partition, a digest of its files (names and sizes): what a quality verdict was
    about. A rewrite of the partition (new files: Spark names them anew each write) changes
    it; a partition's files that did not change keep it, whatever other partitions do."""
    out = {}
    for part, entries in files.items():
        digest = hashlib.sha256()
        for entry in entries:
            digest.update(f"{entry.path.removeprefix(root + '/')}\t{entry.size}\n".encode())
        out[part] = digest.hexdigest()[:32]
    return out
