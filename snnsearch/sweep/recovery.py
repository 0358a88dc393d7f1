"""A sweep start that died (``kill -9``, a crash, a full disk) before any trial reported leaves
nothing that blocks its name, and never a second MLflow parent.

A driver can die at any point of its life. Once a trial has reported, Ray's experiment snapshot
and the trial checkpoints make ``--resume`` the way forward (``Tuner.restore``). Before that
there is nothing to keep, but what the start had written used to strand the name: a
``tuner.pkl`` made a plain rerun refuse ("already holds a sweep"), and ``--resume`` of it had
Ray restart the experiment without the sweep's fixed values (Ray does not pickle
``param_space`` into ``tuner.pkl``). Here such a sweep is recognised as *not started*
(:func:`nothing_ran`) and started afresh by ``--resume`` (with the stored settings, once its
``tuner.pkl`` verifies); a start that fails before any trial reported clears what it wrote
(:func:`clear_leftovers`), so a plain rerun is not refused.

MLflow: the parent run of a killed driver stays RUNNING. The next start of the same sweep
directory reuses it when it was opened with the same parameters, else closes it as KILLED
(:func:`reusable_parent`); its children (trials that never reported) are deleted, since the
restarted trials get new ids.

:func:`kill_point` is a test hook: it SIGKILLs the driver at a named stage when
``SNNSEARCH_KILL_AT`` names it, so the fault tests hit each stage deterministically
(tests/faults_tests/test_kill_points.py). Unset, it does nothing.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
KILL_ENV = "SNNSEARCH_KILL_AT"
KILL_STAGES = ("before-sweep-json", "after-tuner", "before-report")
TABLE_FILE = "trials.parquet"
# What a start writes at the top of the sweep directory, by name: Ray's state files
# (tune_controller, searcher, search_generator, basic_variant, its storage probe) and ours. Only
# these are ever removed, so a --name pointed at a folder of the user's own loses nothing.
_STARTED_BY = ("tuner.pkl", "sweep.json", "sweep.json.hmac", "space.yaml",
               "scheduler-state.json", ".validate_storage_marker")
_STATE_PREFIXES = ("experiment_state-", "searcher-state-", "search_gen_state-",
                   "basic-variant-state-")


def kill_point(stage: str) -> None:
    """SIGKILLs this process if ``SNNSEARCH_KILL_AT`` is ``stage`` (fault tests only)."""
    if os.environ.get(KILL_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def nothing_ran(sweep_dir: str) -> bool:
    """True when ``sweep_dir`` holds a start but no trial ever reported a result and no table
    was written: a start killed or failed early, safe to start again from scratch."""
    import pyarrow.fs as pafs

    fs, root = _storage.resolve(sweep_dir)
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    if any(i.base_name == TABLE_FILE for i in infos):
        return False
    for info in infos:
        if info.type == pafs.FileType.Directory:
            result = fs.get_file_info(f"{info.path}/result.json")
            if result.type == pafs.FileType.File and result.size:
                return False
    return True


def start_files(sweep_dir: str) -> list[str]:
    """The state files a start that never ran must still show signed: its ``tuner.pkl`` (a
    forged one would otherwise pass as a killed start); its experiment snapshot may predate the
    signer and is deleted, never read."""
    return ["tuner.pkl"] if _storage.exists(_storage.join(sweep_dir, "tuner.pkl")) else []


def clear_leftovers(sweep_dir: str) -> None:
    """Removes what a start that never ran wrote: Ray's and our state files at the top level,
    the parent-run id and trial folders without a result. Only call when :func:`nothing_ran`
    holds (and after :func:`reusable_parent` read the parent-run id)."""
    import pyarrow.fs as pafs

    from snnsearch.tracking.mlflow_client import PARENT_ID_FILE

    fs, root = _storage.resolve(sweep_dir)
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    if not {i.base_name for i in infos} & {"tuner.pkl", "sweep.json", PARENT_ID_FILE}:
        return  # no start of a sweep was here
    for info in infos:
        name = info.base_name
        try:
            if info.type == pafs.FileType.File and (
                    name in (*_STARTED_BY, PARENT_ID_FILE) or name.startswith(_STATE_PREFIXES)):
                fs.delete_file(info.path)
            elif info.type == pafs.FileType.Directory and fs.get_file_info(
                    f"{info.path}/params.json").type == pafs.FileType.File:
                fs.delete_dir(info.path)  # a trial folder that never reported
        except (OSError, FileNotFoundError) as err:
            log.warning("could not remove %s (%s)", info.path, err)


def reusable_parent(client: MlflowClient, *, experiment_id: str, sweep_dir: str,
                    name: str, storage: str, params: Mapping[str, Any]) -> str | None:
    """The parent run of a start of this sweep directory that never finished, if it can carry
    this start (same parameters): its children are deleted and its id returned. Any other
    unfinished parent of this directory is closed as KILLED."""
    from snnsearch.tracking import mlflow_logging as M

    stored = M.read_parent_id(sweep_dir)
    candidates = client.search_runs(
        [experiment_id], max_results=100,
        filter_string=(f"tags.`{M.SWEEP_TAG}` = '{name}' and attributes.status = 'RUNNING'"),
    )
    runs = {r.info.run_id: r for r in candidates
            if r.data.params.get("storage") == str(storage) and M.PARENT_TAG not in r.data.tags}
    if stored and stored not in runs:
        try:
            found = client.get_run(stored)
            if found.info.status in ("RUNNING", "KILLED"):
                runs[stored] = found
        except Exception as err:  # noqa: BLE001 - deleted or from another store: a new parent
            log.info("stored parent run %s not found (%s); starting a new one", stored, err)
    chosen = None
    if stored in runs and _same_params(runs[stored].data.params, params):
        chosen = stored
        children = client.search_runs(
            [experiment_id], max_results=10000,
            filter_string=f"tags.`{M.PARENT_TAG}` = '{stored}'")
        for child in children:  # trials that never reported; the restart makes new ones
            client.delete_run(child.info.run_id)
    for run_id, run in runs.items():
        if run_id != chosen and run.info.status == "RUNNING":
            client.set_tag(run_id, M.STATUS_TAG, "not started")
            client.set_terminated(run_id, status="KILLED")
    return chosen


def _same_params(logged: Mapping[str, str], params: Mapping[str, Any]) -> bool:
    from snnsearch.tracking.mlflow_client import _MAX_PARAM_LEN

    def shown(value: Any) -> str:
        return str(value)[:_MAX_PARAM_LEN]

    keys = set(params) - {"resume"}
    return all(logged.get(k) == shown(params[k]) for k in keys if k in logged) and bool(
        keys & set(logged))
