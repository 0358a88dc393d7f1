"""Small file helpers that work for local paths and pyarrow-fs URIs (s3://, gs://, NFS paths).

Ray keeps the sweep directory on ``storage_path``; our own files (settings, MLflow parent run id,
Parquet table) live next to Ray's there so one directory holds the whole sweep wherever it is.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the CLI's input checks run before pyarrow is needed
    import pyarrow.fs as pafs

NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")


def check_name(name: str) -> str:
    """Returns ``name`` if it is one safe path component, else raises a one-line ValueError.

    ``--name`` is joined under ``--storage``: ``../x`` or an absolute path would put the sweep
    (and the files Ray and we write into it) outside the storage the user chose.
    """
    if not NAME_PATTERN.fullmatch(name) or set(name) == {"."} or len(name) > 200:
        raise ValueError(
            f"--name {name!r} is not a single folder name; use letters, digits and ._- only "
            "(not '.' or '..', at most 200 characters)"
        )
    return name


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
    import pyarrow.fs as pafs

    if is_uri(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), normalize(path)


def exists(path: str) -> bool:
    """Whether a file or directory exists at ``path``."""
    import pyarrow.fs as pafs

    fs, fs_path = resolve(path)
    return fs.get_file_info(fs_path).type != pafs.FileType.NotFound


def write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` atomically, creating parent directories."""
    write_bytes(path, text.encode())


def write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically: readers see the old file or the new one.

    Local paths: a temporary file in the same directory, fsync, ``os.replace``. Object stores
    (s3://, gs://) publish an object only when its upload completes, so a direct write is
    already all-or-nothing there.
    """
    fs, fs_path = resolve(path)
    fs.create_dir(str(PurePosixPath(fs_path).parent), recursive=True)
    if is_uri(path):
        with fs.open_output_stream(fs_path) as out:
            out.write(data)
        return
    tmp = f"{fs_path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, fs_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_bytes(path: str) -> bytes | None:
    """The file's bytes, or None if it does not exist."""
    if not exists(path):
        return None
    fs, fs_path = resolve(path)
    with fs.open_input_stream(fs_path) as src:
        return src.readall()


def read_text(path: str) -> str | None:
    """The file's text, or None if it does not exist."""
    if not exists(path):
        return None
    fs, fs_path = resolve(path)
    with fs.open_input_stream(fs_path) as src:
        return src.readall().decode()
