"""Checks run before a sweep starts Ray or opens its MLflow parent run.

A fault found here costs seconds and one ``error:`` line; found by the trials it costs the sweep,
and some are never found at all: ``ray.init`` retries an address where nothing listens for
minutes, and MLflow's client retries a dead server with exponential backoff. See
docs/reliability.md for the fault table and the tests.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from snnsearch.tuning import _storage
from snnsearch.tuning.settings import SweepSettings

log = logging.getLogger(__name__)

PROBE_FILE = ".snnsearch_write_probe"
TOKEN_HINT = ("with token authentication (RAY_AUTH_MODE=token) give it the cluster's token in "
              "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token")


def preflight(settings: SweepSettings) -> None:
    """Raises a one-line ValueError if the sweep directory is not writable or an HTTP tracking
    server does not answer."""
    check_writable(settings.sweep_dir, settings.storage)
    check_mlflow(settings.mlflow_uri)


def check_trial_inputs(trainable: str, fixed: Mapping[str, Any]) -> None:
    """Task checks of the fixed trial config: a known ``energy_model`` and ``sram_kb`` > 0;
    depth on KITTI: explicit train/val split files that share no frame (a ValueError), warnings
    for shared drives (``snnsearch.depth.splits``)."""
    if "energy_model" in fixed or "sram_kb" in fixed:
        from snnsearch.energy.models import DEFAULT_MODEL, DEFAULT_SRAM_KB, check_choice

        check_choice(str(fixed.get("energy_model", DEFAULT_MODEL)),
                     float(fixed.get("sram_kb", DEFAULT_SRAM_KB)))
    if trainable == "depth":
        from snnsearch.depth.splits import check_config_splits

        for warning in check_config_splits(fixed):
            log.warning(warning)


def check_writable(sweep_dir: str, storage: str) -> None:
    """Writes and deletes a probe file in ``sweep_dir`` (local path or pyarrow-fs URI), and the
    local directories the probe had to create: a refused sweep leaves nothing behind."""
    import pyarrow as pa

    probe = _storage.join(sweep_dir, PROBE_FILE)
    missing: list[str] = []
    if not _storage.is_uri(sweep_dir):
        directory = sweep_dir
        while directory and not os.path.exists(directory) and directory != "/":
            missing.append(directory)
            directory = os.path.dirname(directory)
    try:
        _storage.write_text(probe, "ok")
        fs, fs_path = _storage.resolve(probe)
        fs.delete_file(fs_path)
        for directory in missing:  # deepest first
            os.rmdir(directory)
    except (OSError, pa.ArrowException) as err:
        raise ValueError(
            f"storage {storage} is not writable ({type(err).__name__}: {err}); pass --storage "
            "with a writable directory every node mounts (NFS) or an s3:// URI"
        ) from None


def check_mlflow(uri: str) -> None:
    """``GET <uri>/health`` for http(s) tracking URIs; any HTTP answer counts as reachable."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10):
            pass
    except urllib.error.HTTPError:
        return  # it answers; auth or proxy errors surface with MLflow's own message
    except (OSError, ValueError) as err:
        parts = urllib.parse.urlsplit(uri)
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        raise ValueError(
            f"MLflow tracking server {shown} is unreachable ({getattr(err, 'reason', err)}); "
            "start it or pass --mlflow-uri (e.g. sqlite:///mlflow.db)"
        ) from None


def check_listening(address: str) -> None:
    """Raises a one-line ValueError if nothing accepts connections at ``RAY_ADDRESS``."""
    host, _, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    if not port.isdigit():  # "auto" and other forms are left to ray.init
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise ValueError(
            f"no Ray cluster answers at RAY_ADDRESS={address} ({err.strerror or err}); check "
            "the head's address and port (`ray status` on the head) or unset RAY_ADDRESS to run "
            "locally"
        ) from None
