"""Inputs on a cluster's shared storage: fsspec URLs (s3://, gs://, ...) opened,
listed and decompressed as local paths are."""
from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from ..files import (
    Bounded,
    Inflation,
    NoData,
    compressed,
    file_format,
    hidden,
    is_pattern,
    open_decompressed,
)


def open_bytes(path: str) -> Any:
    """A local path or an fsspec URL (s3://, gs://, ...) on the cluster's shared storage."""
    if remote(path):
        # lazy: start-up time (only fsspec URLs need it)
        import fsspec
        return fsspec.open(path, "rb").open()
    return open(path, "rb")


def remote(path: str | Path) -> bool:
    return "://" in str(path)


def open_input(path: str, bound: Inflation | None = None) -> pa.NativeFile:
    """The bytes of a local file or an fsspec URL, decompressed when it ends in .gz (within
    `bound`: at most so many times its size, and max_decompressed_mb)."""
    if not compressed(path):
        return pa.input_stream(path) if not remote(path) else \
            pa.PythonFile(open_bytes(path), mode="r")
    if not remote(path):
        return pa.PythonFile(open_decompressed(Path(path), bound), mode="r")
    bound = bound or Inflation()
    # lazy: start-up time (only fsspec URLs need it)
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    limit = bound.limit(int(fs.size(inner)))
    stream = pa.CompressedInputStream(pa.PythonFile(open_bytes(path), mode="r"), "gzip")
    return pa.PythonFile(io.BufferedReader(Bounded(stream, limit, path, bound), 1 << 20),
                         mode="r")


def discover_remote(url: str) -> list[str]:
    """The files an fsspec URL names (a file, a folder, a glob), as URLs."""
    # lazy: start-up time (only fsspec URLs need it)
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    if is_pattern(root):
        found = [f for f in fs.glob(root) if fs.isfile(f)]
        if not found:
            raise NoData(f"no file matches {url}")
    elif fs.isdir(root):
        found = [f for f in fs.find(root) if file_format(PurePosixPath(f))
                 and not hidden(PurePosixPath(f).relative_to(root.rstrip("/")))]
        if not found:
            raise NoData(f"{url} holds no .csv, .csv.gz or .parquet file")
    elif fs.isfile(root):
        found = [root]
    else:
        raise NoData(f"{url} does not exist")
    return sorted(fs.unstrip_protocol(f) for f in found)


def remote_header(url: str) -> list[str]:
    with open_input(url) as stream:
        first = io.TextIOWrapper(io.BufferedReader(stream), encoding="utf-8-sig",
                                 errors="replace", newline="")
        return next(csv.reader(first), [])
