"""HMAC signatures of the files in a sweep directory: what may be trusted from storage.

Anyone who can write the storage can change a sweep directory. Two kinds of file live there:

- pickles (``tuner.pkl``, ``experiment_state-*.json`` whose trial records are cloudpickled,
  ``searcher-state-*.pkl``): unpickling runs code, so they are loaded (by ``Tuner.restore``
  at ``--resume``) only after their signature was checked (:func:`verify_state`);
- data (``sweep.json``, ``trials.parquet``): never code, but ``--resume`` acts on
  ``sweep.json`` (the data paths, the MLflow URI, the trainable it imports), so it is signed
  too, and the tables are signed so a reader can tell a table the driver wrote from one put
  there later.

Where the signatures live: the signatures of the state files and tables are the ``state_hmac``
manifest inside ``sweep.json``; the signature of ``sweep.json`` itself (which therefore covers
the manifest) is ``sweep.json.hmac`` beside it. Each holds the last :data:`KEEP` digests per
file, so a reader that sees a file one write behind its signature (an upload lagging the newest
snapshot, a driver killed between two writes) still verifies it. The signature of a new
``sweep.json`` is written before the file, so a crash between the two never strands a sweep.

Every message binds the sweep name and the file name: a signed file of another sweep or another
role does not verify. The key (first found): ``SNNSEARCH_STATE_KEY`` (the secret itself), the
file named by ``SNNSEARCH_STATE_KEY_FILE``, the Ray token file (``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``), else a random key created once in ``~/.config/snnsearch/state_key``
(mode 0600). Re-sign a sweep you trust with ``python -m snnsearch.sweep.state_hmac <dir>``.

Written by hand on ``hmac``/``hashlib`` (standard library): Ray and pyarrow sign nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from snnsearch.storage import sweepdir as _storage

SETTINGS_FILE = "sweep.json"
SETTINGS_SIGNATURE = "sweep.json.hmac"
HMAC_KEY = "state_hmac"
SOURCE_KEY = "state_key_source"
KEEP = 8
GENERATED_KEY = Path("~/.config/snnsearch/state_key")
# Tables written by the driver (signed when written; see module docstring).
TABLE_SUFFIX = ".parquet"


class UntrustedStorage(ValueError):
    """A file in a sweep directory lacks a valid signature (one line: the file and the fix)."""


def load_key() -> tuple[bytes, str]:
    """(secret, where it came from); the source is recorded, never the secret."""
    if os.environ.get("SNNSEARCH_STATE_KEY"):
        return os.environ["SNNSEARCH_STATE_KEY"].encode(), "env:SNNSEARCH_STATE_KEY"
    for var in ("SNNSEARCH_STATE_KEY_FILE", "RAY_AUTH_TOKEN_PATH"):
        path = os.environ.get(var)
        if path and Path(path).expanduser().is_file():
            return Path(path).expanduser().read_bytes().strip(), f"file:${var}"
    token = Path("~/.ray/auth_token").expanduser()
    if token.is_file():
        return token.read_bytes().strip(), "file:~/.ray/auth_token"
    path = GENERATED_KEY.expanduser()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_bytes().strip(), f"file:{GENERATED_KEY}"


def digest(key: bytes, sweep: str, name: str, data: bytes) -> str:
    """HMAC-SHA256 of ``data`` bound to the sweep name and the file name."""
    return hmac.new(key, f"{sweep}\0{name}\0".encode() + data, hashlib.sha256).hexdigest()


def _fix(sweep_dir: str) -> str:
    return (f"if you trust everyone who can write this storage, re-sign it with `python -m "
            f"snnsearch.sweep.state_hmac {sweep_dir}`, else start a new sweep")


def state_files(directory: str) -> list[str]:
    """Top-level ``*.pkl``/``*.json`` names Ray restores from (``sweep.json`` is ours)."""
    import pyarrow.fs as pafs

    fs, fs_path = _storage.resolve(directory)
    infos = fs.get_file_info(pafs.FileSelector(fs_path, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.File
                  and i.base_name.endswith((".pkl", ".json")) and i.base_name != SETTINGS_FILE
                  and not i.base_name.startswith(("tmp-", ".")) and ".tmp-" not in i.base_name)


# --- sweep.json and its own signature ---------------------------------------------------------

def write_settings(sweep_dir: str, settings: dict[str, Any], *, name: str) -> None:
    """Writes ``sweep.json`` and its signature (the signature first: see module docstring)."""
    key, source = load_key()
    text = json.dumps(settings, indent=2, default=str)
    sig_path = _storage.join(sweep_dir, SETTINGS_SIGNATURE)
    old = _read_json(sig_path) or {}
    kept = old.get("digests", []) if old.get("name") == name else []
    new = digest(key, name, SETTINGS_FILE, text.encode())
    digests = [*(d for d in kept if d != new), new][-KEEP:]
    _storage.write_text(sig_path, json.dumps({"name": name, "source": source,
                                              "digests": digests}))
    _storage.write_text(_storage.join(sweep_dir, SETTINGS_FILE), text)


def read_settings(sweep_dir: str, *, name: str | None = None,
                  required: bool = True) -> dict[str, Any] | None:
    """``sweep.json`` after checking its signature; None if there is no ``sweep.json``.

    Args:
        sweep_dir: the sweep directory (local path or URI).
        name: the sweep name it must be signed under (``--resume --name``); None: the name in
            its signature file (a reader of a copied or renamed sweep).
        required: without a signature file, raise (``--resume``, which acts on the content);
            False: return the content as plain data (readers that run nothing from it).

    Raises:
        UntrustedStorage: the signature is missing (``required``), or does not match.
    """
    text = _storage.read_text(_storage.join(sweep_dir, SETTINGS_FILE))
    if text is None:
        return None
    path = _storage.join(sweep_dir, SETTINGS_FILE)
    sig = _read_json(_storage.join(sweep_dir, SETTINGS_SIGNATURE))
    if sig is None:
        if required:
            raise UntrustedStorage(
                f"{sweep_dir} has no state signatures ({SETTINGS_SIGNATURE} is missing), so "
                f"neither its settings nor its pickled state are used; {_fix(sweep_dir)}")
        return _loads(text, path)
    key, source = load_key()
    signed_as = str(sig.get("name")) if name is None else name
    if digest(key, signed_as, SETTINGS_FILE, text.encode()) not in sig.get("digests", []):
        fix = _fix(sweep_dir)
        if sig.get("source") not in (None, source):
            fix = (f"it was signed with the key from {sig['source']}, this process has the one "
                   f"from {source}: use the same key; or {fix}")
        raise UntrustedStorage(f"{path} does not match its signature in {SETTINGS_SIGNATURE} "
                               f"(changed outside this sweep's driver); {fix}")
    return _loads(text, path)


def _loads(text: str, path: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UntrustedStorage(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise UntrustedStorage(f"{path} is not a JSON object")
    return data


def _read_json(path: str) -> dict[str, Any] | None:
    text = _storage.read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


# --- state files and tables: the manifest inside sweep.json ------------------------------------

def sign(sweep_dir: str, *, name: str, source_dir: str | None = None,
         files: list[str] | None = None) -> None:
    """Adds signatures to the manifest in ``sweep.json`` and re-signs ``sweep.json``.

    Args:
        sweep_dir: where ``sweep.json`` is.
        name: the sweep name bound into every signature.
        source_dir: where the files are read (default ``sweep_dir``; Tune's staging folder for
            a snapshot about to be uploaded).
        files: the names to sign (default: :func:`state_files`; tables are signed as the driver
            writes them, :func:`sign_written`, or by the re-signing command, never in passing:
            a table changed between two runs must not be signed by the next one).
    """
    key, source = load_key()
    settings = _read_json(_storage.join(sweep_dir, SETTINGS_FILE)) or {}
    manifest: dict[str, list[str]] = settings.get(HMAC_KEY) or {}
    directory = source_dir or sweep_dir
    for file in files if files is not None else state_files(directory):
        data = _storage.read_bytes(_storage.join(directory, file))
        if data is None:
            continue
        new = digest(key, name, file, data)
        manifest[file] = [*(d for d in manifest.get(file, []) if d != new), new][-KEEP:]
    settings[HMAC_KEY], settings[SOURCE_KEY] = manifest, source
    write_settings(sweep_dir, settings, name=name)


def tables(directory: str) -> list[str]:
    """The top-level ``*.parquet`` tables of a directory."""
    import pyarrow.fs as pafs

    fs, fs_path = _storage.resolve(directory)
    infos = fs.get_file_info(pafs.FileSelector(fs_path, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.File
                  and i.base_name.endswith(TABLE_SUFFIX) and ".tmp-" not in i.base_name)


def verify_state(sweep_dir: str, *, name: str, files: list[str] | None = None) -> None:
    """Raises :class:`UntrustedStorage` (one line) unless ``sweep.json`` and every state file
    (or those of ``files``) carry a known signature: call before anything unpickles the sweep's
    state."""
    settings = read_settings(sweep_dir, name=name, required=True) or {}
    manifest = settings.get(HMAC_KEY)
    if not manifest:
        raise UntrustedStorage(f"--resume: {sweep_dir} has no state signatures in "
                               f"{SETTINGS_FILE}, so its pickled state is not loaded; "
                               f"{_fix(sweep_dir)}")
    key, source = load_key()
    fix = _fix(sweep_dir)
    if settings.get(SOURCE_KEY) not in (None, source):
        fix = (f"it was signed with the key from {settings[SOURCE_KEY]}, this driver has the "
               f"one from {source}: use the same key; or {fix}")
    for file in state_files(sweep_dir) if files is None else files:
        data = _storage.read_bytes(_storage.join(sweep_dir, file)) or b""
        if digest(key, name, file, data) not in manifest.get(file, []):
            raise UntrustedStorage(
                f"--resume: {_storage.join(sweep_dir, file)} does not match its HMAC signature "
                f"(changed outside this sweep's driver), so it is not unpickled; {fix}")


def verify_file(sweep_dir: str, file: str, data: bytes, settings: dict[str, Any]) -> bool | None:
    """Whether ``data`` (the bytes of ``file`` in ``sweep_dir``) matches the manifest of
    ``settings`` (a :func:`read_settings` result); None when the manifest has no entry for it."""
    entries = (settings.get(HMAC_KEY) or {}).get(file)
    if not entries:
        return None
    sig = _read_json(_storage.join(sweep_dir, SETTINGS_SIGNATURE)) or {}
    key, _ = load_key()
    name = str(sig.get("name", settings.get("name", "")))
    return digest(key, name, file, data) in entries


def sign_written(sweep_dir: str, file: str) -> None:
    """Signs ``file`` (just written by the driver) if ``sweep_dir`` is a signed sweep (it has
    ``sweep.json.hmac``); a folder that is no sweep, or an unsigned old one, is left alone."""
    sig = _read_json(_storage.join(sweep_dir, SETTINGS_SIGNATURE))
    if sig and sig.get("name") and _storage.exists(_storage.join(sweep_dir, SETTINGS_FILE)):
        sign(sweep_dir, name=str(sig["name"]), files=[file])
