"""The lake as an Arrow filesystem, for services that read or write it without Spark.

``LAKE_ROOT`` is a local path or an ``s3a://`` URI (Spark's scheme); Arrow speaks
``s3://``. :func:`filesystem` maps one onto the other, once, for every reader.
"""

from __future__ import annotations

import os

import pyarrow.fs as pafs


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """An Arrow filesystem and the path inside it for a lake location."""
    if uri.startswith("s3a://"):
        uri = "s3://" + uri.removeprefix("s3a://")
    if "://" in uri:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, str(path).rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(uri)
