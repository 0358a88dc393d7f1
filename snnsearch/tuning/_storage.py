"""Small file helpers that work for local paths and pyarrow-fs URIs (s3://, gs://, NFS paths).

Ray keeps the sweep directory on ``storage_path``; our own files (settings, MLflow parent run id,
Parquet table) live next to Ray's there so one directory holds the whole sweep wherever it is.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import pyarrow.fs as pafs


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` storage (everything pyarrow.fs resolves remotely)."""
    return "://" in path


def normalize(path: str) -> str:
    """Absolute local path (Ray refuses relative storage paths) or the URI unchanged."""
    return path if is_uri(path) else os.path.abspath(os.path.expanduser(path))


def join(base: str, *parts: str) -> str:
    """Joins path parts without mangling the ``scheme://`` of a URI."""
    if is_uri(base):
        return "/".join([base.rstrip("/"), *parts])
    return os.path.join(base, *parts)


def resolve(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path for a local path or URI."""
    if is_uri(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), normalize(path)


def exists(path: str) -> bool:
    """Whether a file or directory exists at ``path``."""
    fs, fs_path = resolve(path)
    return fs.get_file_info(fs_path).type != pafs.FileType.NotFound


def write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path``, creating parent directories."""
    fs, fs_path = resolve(path)
    fs.create_dir(str(PurePosixPath(fs_path).parent), recursive=True)
    with fs.open_output_stream(fs_path) as out:
        out.write(text.encode())


def read_text(path: str) -> str | None:
    """The file's text, or None if it does not exist."""
    if not exists(path):
        return None
    fs, fs_path = resolve(path)
    with fs.open_input_stream(fs_path) as src:
        return src.readall().decode()
