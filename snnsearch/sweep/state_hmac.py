"""HMAC signatures of a sweep's pickled state, checked before ``Tuner.restore`` unpickles it.

``Tuner.restore`` unpickles ``tuner.pkl``, the experiment state (trial records are cloudpickled
inside the JSON) and the searcher state from the sweep directory, so anyone who can write the
storage could run code on the driver at ``--resume``. The storage is therefore a trust boundary:
every top-level ``*.pkl``/``*.json`` file Ray restores from is signed with HMAC-SHA256 under a
secret key, the signatures are kept in ``sweep.json`` (``state_hmac``), and a file whose
signature does not match is refused, not unpickled. The message binds the sweep name and the
file name, so a signed file of another sweep or another role does not verify either.

When signing happens: :class:`StateSigner` is a Tune callback whose ``get_state`` runs each time
Tune snapshots the experiment, after the state files were written to the driver's staging
folder and before they are uploaded to the storage, so the storage never holds a newer state
than the signatures (a driver killed with SIGKILL resumes). The last :data:`KEEP` signatures per
file are kept, since the upload may lag behind the newest snapshot.

The key (first found): ``SNNSEARCH_STATE_KEY`` (the secret itself), the file named by
``SNNSEARCH_STATE_KEY_FILE``, the Ray token file (``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``), else a random key created once in ``~/.config/snnsearch/state_key``
(mode 0600). Re-sign a sweep you trust by hand with
``python -m snnsearch.sweep.state_hmac <sweep_dir>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from ray.tune import Callback

from snnsearch.storage import sweepdir as _storage

log = logging.getLogger(__name__)
SETTINGS_FILE = "sweep.json"
HMAC_KEY = "state_hmac"
SOURCE_KEY = "state_key_source"
KEEP = 8
GENERATED_KEY = Path("~/.config/snnsearch/state_key")


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


def _digest(key: bytes, sweep: str, name: str, data: bytes) -> str:
    return hmac.new(key, f"{sweep}\0{name}\0".encode() + data, hashlib.sha256).hexdigest()


def state_files(directory: str) -> list[str]:
    """Top-level ``*.pkl``/``*.json`` names Ray restores from (``sweep.json`` is ours: JSON)."""
    fs, fs_path = _storage.resolve(directory)
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(fs_path, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.File
                  and i.base_name.endswith((".pkl", ".json")) and i.base_name != SETTINGS_FILE
                  and not i.base_name.startswith("tmp-"))


def sign(sweep_dir: str, *, name: str, source_dir: str | None = None) -> None:
    """Adds the signatures of the state files in ``source_dir`` (default: the sweep directory)
    to ``sweep.json`` in ``sweep_dir``."""
    key, source = load_key()
    path = _storage.join(sweep_dir, SETTINGS_FILE)
    settings = json.loads(_storage.read_text(path) or "{}")
    manifest: dict[str, list[str]] = settings.get(HMAC_KEY) or {}
    directory = source_dir or sweep_dir
    for file in state_files(directory):
        data = _storage.read_bytes(_storage.join(directory, file))
        if data is None:
            continue
        digest = _digest(key, name, file, data)
        kept = [d for d in manifest.get(file, []) if d != digest]
        manifest[file] = [*kept, digest][-KEEP:]
    settings[HMAC_KEY], settings[SOURCE_KEY] = manifest, source
    _storage.write_text(path, json.dumps(settings, indent=2, default=str))


def verify(sweep_dir: str, *, name: str, files: list[str] | None = None) -> None:
    """Raises a one-line ValueError unless every state file (or those of ``files``) carries a
    known signature."""
    settings = json.loads(_storage.read_text(_storage.join(sweep_dir, SETTINGS_FILE)) or "{}")
    manifest = settings.get(HMAC_KEY)
    fix = (f"if you trust everyone who can write this storage, re-sign it with `python -m "
           f"snnsearch.sweep.state_hmac {sweep_dir}`, else start a new sweep")
    if not manifest:
        raise ValueError(f"--resume: {sweep_dir} has no state signatures in {SETTINGS_FILE}, so "
                         f"its pickled state is not loaded; {fix}")
    key, source = load_key()
    if settings.get(SOURCE_KEY) not in (None, source):
        fix = (f"it was signed with the key from {settings[SOURCE_KEY]}, this driver has the "
               f"one from {source}: use the same key; or {fix}")
    for file in state_files(sweep_dir) if files is None else files:
        data = _storage.read_bytes(_storage.join(sweep_dir, file)) or b""
        if _digest(key, name, file, data) not in manifest.get(file, []):
            raise ValueError(
                f"--resume: {_storage.join(sweep_dir, file)} does not match its HMAC signature "
                f"(changed outside this sweep's driver), so it is not unpickled; {fix}"
            )


class StateSigner(Callback):
    """Signs each experiment snapshot before Tune uploads it (see the module docstring).

    Args:
        sweep_dir: the sweep directory on the storage (where ``sweep.json`` lives).
        name: the sweep name (bound into every signature).
    """

    def __init__(self, *, sweep_dir: str, name: str) -> None:
        self.sweep_dir = sweep_dir
        self.name = name
        self._staging: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_staging": None}

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._staging is None and trials:
            storage = getattr(trials[0], "storage", None)
            self._staging = getattr(storage, "experiment_driver_staging_path", None)

    def get_state(self) -> None:
        # Called by Tune's CallbackList.save_to_dir after the experiment and searcher state were
        # written to the staging folder; returns None so no callback-state file is written.
        try:
            if self._staging:
                sign(self.sweep_dir, name=self.name, source_dir=self._staging)
        except Exception as err:  # noqa: BLE001 - signing must not stop the sweep
            log.warning("could not sign the sweep state (%s: %s); --resume will refuse the "
                        "unsigned files", type(err).__name__, err)
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m snnsearch.sweep.state_hmac <sweep_dir>``: re-sign a sweep you trust."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m snnsearch.sweep.state_hmac <sweep_dir>", file=sys.stderr)
        return 2
    sweep_dir = _storage.normalize(args[0])
    name = sweep_dir.rstrip("/").rsplit("/", 1)[-1]
    sign(sweep_dir, name=name)
    print(f"signed the state files of {sweep_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
