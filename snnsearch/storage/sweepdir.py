"""Small file helpers that work for local paths and pyarrow-fs URIs (s3://, gs://, NFS paths).

Ray keeps the sweep directory on ``storage_path``; our own files (settings, MLflow parent run id,
Parquet table) live next to Ray's there so one directory holds the whole sweep wherever it is.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

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
    """Writes ``data`` to ``path`` atomically: readers see the old file or the new one."""
    with atomic_output(path) as out:
        out.write(data)


# Object stores publish an object only when its upload completes: a direct write there is
# already all-or-nothing, and their "rename" is a copy.
_OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces ``path`` only when the block ends without error.

    Every result file goes through here (tables, history, CSVs, reports, split files), so a
    crash, a full disk or a kill mid-write leaves the previous file whole, never half of a new
    one. Local paths: a temporary file in the same directory, fsync, ``os.replace``. Other
    pyarrow filesystems (``file://``, HDFS, mounted URIs): a temporary name and
    ``FileSystem.move``. Object stores (s3, gcs, abfs): the upload itself is atomic.
    """
    fs, fs_path = resolve(path)
    parent = str(PurePosixPath(fs_path).parent)
    fs.create_dir(parent, recursive=True)
    tmp = f"{fs_path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    if not is_uri(path):
        try:
            with open(tmp, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, fs_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    if fs.type_name in _OBJECT_STORES:
        buf = io.BytesIO()  # nothing is uploaded unless the block completes
        yield buf
        with fs.open_output_stream(fs_path) as out:
            out.write(buf.getvalue())
        return
    try:
        with fs.open_output_stream(tmp) as stream:
            yield stream
        fs.move(tmp, fs_path)
    finally:
        import pyarrow.fs as pafs

        if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
            fs.delete_file(tmp)


def write_path(path: str, write: Callable[[str], Any]) -> None:
    """Atomically writes ``path`` with a writer that only takes a local file name (matplotlib,
    ``numpy.savez``, ``DataFrame.to_csv``): ``write`` fills a temporary local file, whose bytes
    then replace ``path`` through :func:`atomic_output`."""
    suffix = PurePosixPath(path).suffix
    if not is_uri(path):  # the temporary file beside the target: a rename, no copy
        target = normalize(path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}"
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix=".write-")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as src, atomic_output(path) as out:
            shutil.copyfileobj(src, out)
    finally:
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
