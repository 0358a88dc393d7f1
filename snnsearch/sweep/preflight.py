"""Checks run before a sweep starts Ray or opens its MLflow parent run.

A fault found here costs seconds and one ``error:`` line; found by the trials it costs the sweep,
and some are never found at all: ``ray.init`` retries an address where nothing listens for
minutes, and MLflow's client retries a dead server with exponential backoff. See
docs/reliability.md for the fault table and the tests.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from snnsearch.storage import sweepdir as _storage
from snnsearch.spaces.checks import check_space
from snnsearch.spaces.deploy import check_deploy
from snnsearch.spaces.space import SearchSpace
from snnsearch.sweep.settings import SweepSettings, trial_fixed
from snnsearch.sweep.tasks import TASKS, reported, task_gates

log = logging.getLogger(__name__)

PROBE_FILE = ".snnsearch_write_probe"
TOKEN_HINT = ("with token authentication (RAY_AUTH_MODE=token) give it the cluster's token in "
              "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token")


def check_inputs(settings: SweepSettings, space: SearchSpace) -> None:
    """Every check of the user's input that needs no Ray and no running service: flags, the
    space with the run's fixed values, datasets, and whether a trial fits this machine.

    Runs in the CLI before the heavy imports (Ray, torch) and before anything is written, so a
    bad input costs about a second and leaves no trace. Raises a one-line ValueError.
    """
    check_trainable_name(space)
    check_flags(settings)
    check_metrics(settings, space)
    check_tracking_store(settings.mlflow_uri)
    fixed = trial_fixed(space, settings)
    run_space = space.with_fixed(fixed)
    if settings.cheap_first:
        if settings.sampler == "grid":
            raise ValueError("--cheap-first enqueues trials for the sampler; a grid space runs "
                             "every cell as given: drop --cheap-first")
        from snnsearch.search.searchers import cheapest_value

        cheapest_value(run_space.params)  # the space must search T
    # --smoke fixes small widths for every model family: not the user's choice to judge.
    smoke_defaults = (frozenset(space.smoke.get("fixed", {})) - set(space.fixed)
                      if settings.smoke else frozenset())
    check_space(run_space, task_gates(space.trainable), defaults=smoke_defaults)
    check_deploy(run_space)  # fixed: {deploy: nir} (snnsearch/spaces/deploy.py)
    check_data(run_space)
    check_local_resources(settings)


def check_flags(settings: SweepSettings) -> None:
    """Numeric flags Ray or the schedulers would only reject (or hang on) after starting."""
    for flag in ("--reduction-factor", "--cpus-per-trial", "--gpus-per-trial"):
        value = getattr(settings, flag[2:].replace("-", "_"))
        if not math.isfinite(value):
            raise ValueError(f"{flag} {value}: must be a finite number")
    rules = [
        (settings.cpus_per_trial >= 0, "--cpus-per-trial", "must be >= 0"),
        (settings.gpus_per_trial >= 0, "--gpus-per-trial", "must be >= 0"),
        (settings.gpus_per_trial <= 1 or settings.gpus_per_trial.is_integer(),
         "--gpus-per-trial", "above 1 must be a whole number (Ray packs only fractions below 1)"),
        (settings.cpus_per_trial + settings.gpus_per_trial > 0, "--cpus-per-trial",
         "and --gpus-per-trial are both 0; give a trial at least one resource"),
        (settings.reduction_factor > 1, "--reduction-factor", "must be > 1 (ASHA keeps 1/eta)"),
        (settings.max_failures >= -1, "--max-failures", "must be >= 0 (or -1: retry forever)"),
        (settings.silence_from >= 1, "--silence-from", "must be >= 1 (an epoch number)"),
        (settings.grace <= settings.max_epochs, "--grace",
         f"must be <= --max-epochs ({settings.max_epochs})"),
    ]
    for ok, flag, problem in rules:
        if not ok:
            value = getattr(settings, flag[2:].replace("-", "_"))
            raise ValueError(f"{flag} {value}: {problem}")
    check_cost_flags(settings)
    check_data_dir(settings.data_dir)


def check_cost_flags(settings: SweepSettings) -> None:
    """``--budget-seconds``, ``--time-attr cost`` with ``--grace-seconds``/``--max-seconds``
    (docs/moasha.md "Cost-aware budgets"): Ray's ASHA only asserts ``max_t > 0`` once Ray is
    up, and a seconds flag without ``--time-attr cost`` would be silently ignored."""
    seconds = {"--budget-seconds": settings.budget_s, "--grace-seconds": settings.grace_s,
               "--max-seconds": settings.max_s}
    for flag, value in seconds.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{flag} {value:g}: must be a finite number of seconds > 0")
    if settings.time_attr != "cost":
        for flag in ("--grace-seconds", "--max-seconds"):
            if seconds[flag] is not None:
                raise ValueError(f"{flag} {seconds[flag]:g} is only read with --time-attr cost "
                                 f"(rungs in compute seconds); pass --time-attr cost or drop "
                                 f"{flag} (--grace and --max-epochs count epochs)")
        return
    for flag in ("--grace-seconds", "--max-seconds"):
        if seconds[flag] is None:
            raise ValueError(f"--time-attr cost needs {flag} (ASHA/MO-ASHA rungs are then in "
                             "compute seconds, from --grace-seconds to --max-seconds); give "
                             "both, e.g. --grace-seconds 60 --max-seconds 1800")
    if settings.grace_s > settings.max_s:  # type: ignore[operator]
        raise ValueError(f"--grace-seconds {settings.grace_s:g}: must be <= --max-seconds "
                         f"({settings.max_s:g})")


def check_trainable_name(space: SearchSpace) -> None:
    """The space's ``trainable`` is a registered task or an importable ``module:function``
    (the module is located, not run: importing it is the trainable's business, in run.py)."""
    import importlib.util

    name = space.trainable
    if ":" not in name:
        if name not in TASKS:
            raise ValueError(f"{space.source}: trainable {name!r} is not a task; use one of "
                             f"{', '.join(TASKS.names())} or 'package.module:function'")
        return
    module, _, function = name.partition(":")
    try:
        found = bool(module) and importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found or not function.isidentifier():
        raise ValueError(f"{space.source}: trainable {name!r}: no importable module {module!r} "
                         "with a function after ':'; use a task name or 'package.module:function'")


def check_metrics(settings: SweepSettings, space: SearchSpace) -> None:
    """The metric, objectives and constraints must name keys the task reports (``register_task
    (reports=...)``): a typo made every trial "violated" (constraints) or left the scheduler and
    the report without a value, with no word until the sweep had run."""
    if space.trainable not in TASKS or TASKS.get(space.trainable).reports is None:
        return
    reports = TASKS.get(space.trainable).reports
    from snnsearch.search.constraints import parse_constraint

    named = [(f"{space.source}: tune.metric {settings.metric}", settings.metric)]
    named += [(f"--objectives {m}:{d}", m) for m, d in settings.objectives]
    named += [(f"--constraint {c}", parse_constraint(c).metric) for c in settings.constraints]
    for shown, metric in named:
        if not reported(metric, reports):
            plain = sorted(k for k in reports if not k.endswith("/"))
            groups = sorted(f"{k}<name>" for k in reports if k.endswith("/"))
            raise ValueError(
                f"{shown}: the {space.trainable} task never reports {metric}, so no trial could "
                f"ever be ranked or judged by it; use one of {', '.join(plain + groups)}")


def check_tracking_store(uri: str) -> None:
    """A local sqlite store must be creatable and writable. MLflow creates the file and its
    folders on first use, so the nearest existing folder must take a new file (sqlite also
    writes its journal beside the database). Probed with a temporary file that is removed at
    once (``os.access`` says yes to root even on /proc), so a refused start leaves nothing."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return
    path = uri[len(prefix):].split("?", 1)[0]
    folder = os.path.dirname(path) or "."
    while not os.path.exists(folder) and folder not in ("/", ""):
        folder = os.path.dirname(folder)
    problem = None
    if os.path.exists(path) and not os.path.isfile(path):
        problem = "is not a file"
    elif not os.path.isdir(folder):
        problem = f"cannot be created ({folder} is a file, not a folder)"
    else:
        try:
            if os.path.exists(path):
                with open(path, "r+b"):
                    pass
            fd, probe = tempfile.mkstemp(prefix=".snnsearch_probe_", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            problem = (f"cannot be written: creating a file in {folder} failed "
                       f"({err.strerror or err})")
    if problem:
        raise ValueError(f"--mlflow-uri {uri}: the sqlite file {path} {problem}; pass a "
                         "sqlite:////path/mlflow.db in a writable folder or "
                         "http://<mlflow server>")


def input_warnings(settings: SweepSettings) -> list[str]:
    """Legal but surprising combinations, one line each (printed as ``warning:``; the sweep
    runs)."""
    out = []
    if len(settings.objectives) >= 2 and settings.scheduler == "asha":
        objs = ",".join(f"{m}:{d}" for m, d in settings.objectives)
        out.append(f"--scheduler asha with --objectives {objs}: ASHA prunes on "
                   f"{settings.metric} alone (the sampler and the Pareto report still use every "
                   "objective); pass --scheduler moasha to prune on all of them")
    if settings.time_attr == "cost" and settings.scheduler not in ("asha", "moasha"):
        out.append(f"--time-attr cost has no effect with --scheduler {settings.scheduler}; it "
                   "sets the rungs of asha and moasha (--budget-seconds works with any)")
    from snnsearch.sweep.settings import DEFAULTS

    if (settings.moasha_tiebreak != DEFAULTS["moasha_tiebreak"]
            and settings.scheduler != "moasha"):
        out.append(f"--moasha-tiebreak {settings.moasha_tiebreak} has no effect with "
                   f"--scheduler {settings.scheduler}; it orders MO-ASHA's fronts only")
    return out


def check_data(space: SearchSpace) -> None:
    """The dataset files every trial of ``space`` will open: the task's ``check_data``
    (``snnsearch.sweep.tasks``), given the values each key can take."""
    from snnsearch.sweep.tasks import task_checks

    fixed = space.fixed
    root = fixed.get("data_dir")
    check_data_dir(str(root) if root else None, "data_dir")
    check, _ = task_checks(space.trainable)
    if check is not None:
        check(fixed, lambda key: possible(key, fixed, space.params))


def possible(key: str, fixed: Mapping[str, Any], params: Iterable[Any]) -> list[Any] | None:
    """Values ``key`` can take in a trial: the fixed value, a categorical's choices, or None
    (not set, or a numeric range)."""
    if key in fixed:
        return [fixed[key]]
    for param in params:
        if param.name == key:
            return list(param.choices) if param.kind == "categorical" else None
    return None


def check_data_dir(data_dir: str | None, flag: str = "--data-dir") -> None:
    """``data_dir`` (if given) must be a directory."""
    if data_dir and os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise ValueError(f"{flag} {data_dir} is a file, not a directory; pass the folder that "
                         "holds the dataset")


def check_local_resources(settings: SweepSettings) -> None:
    """A trial that asks for more than this machine has would stay PENDING forever: refused.

    Only for the private local Ray (no ``RAY_ADDRESS``); a cluster is checked once joined
    (``check_cluster_fits``). Ray's own accelerator detection counts the GPUs, without
    starting Ray.
    """
    if os.environ.get("RAY_ADDRESS") or _ray_running():
        return
    cpus = len(os.sched_getaffinity(0))
    if settings.cpus_per_trial > cpus:
        raise ValueError(f"--cpus-per-trial {settings.cpus_per_trial:g}: this machine has {cpus} "
                         "CPUs, so no trial could ever start; lower it or run on a cluster "
                         "(RAY_ADDRESS)")
    if settings.gpus_per_trial > 0:
        gpus = local_gpus()
        if settings.gpus_per_trial > gpus:
            raise ValueError(
                f"--gpus-per-trial {settings.gpus_per_trial:g}: this machine has {gpus} GPUs "
                "visible to Ray, so no trial could ever start (they would wait as PENDING); "
                "pass --gpus-per-trial 0 or run on a GPU node/cluster (RAY_ADDRESS)")


def check_cluster_fits(settings: SweepSettings) -> None:
    """Once Ray is joined: some alive node must hold a whole trial's CPUs and GPUs.

    ``SNNSEARCH_SKIP_RESOURCE_CHECK=1`` skips it for autoscaling clusters, whose nodes appear
    only when trials ask for them.
    """
    import ray

    if os.environ.get("SNNSEARCH_SKIP_RESOURCE_CHECK") == "1":
        return
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    need_cpu, need_gpu = settings.cpus_per_trial, settings.gpus_per_trial
    if any(n.get("CPU", 0) >= need_cpu and n.get("GPU", 0) >= need_gpu for n in nodes):
        return
    most = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
    raise ValueError(
        f"a trial needs {need_cpu:g} CPUs and {need_gpu:g} GPUs on one node, but the largest of "
        f"the cluster's {len(nodes)} nodes has {most.get('CPU', 0):g} CPUs and "
        f"{most.get('GPU', 0):g} GPUs; lower --cpus-per-trial/--gpus-per-trial (autoscaling "
        "cluster: set SNNSEARCH_SKIP_RESOURCE_CHECK=1)")


def local_gpus() -> int:
    """GPUs a local ``ray.init`` would register (CUDA_VISIBLE_DEVICES respected)."""
    from ray._private.accelerators import get_accelerator_manager_for_resource

    manager = get_accelerator_manager_for_resource("GPU")
    visible = manager.get_current_process_visible_accelerator_ids()
    detected = manager.get_current_node_num_accelerators()
    return min(detected, len(visible)) if visible is not None else detected


def _ray_running() -> bool:
    import sys

    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def preflight(settings: SweepSettings) -> None:
    """Raises a one-line ValueError if the sweep directory is not writable or an HTTP tracking
    server does not answer."""
    check_writable(settings.sweep_dir, settings.storage)
    check_mlflow(settings.mlflow_uri)


def check_trial_inputs(trainable: str, fixed: Mapping[str, Any]) -> None:
    """Checks of the fixed trial config: a known ``energy_model`` and ``sram_kb`` > 0, then the
    task's ``check_trial`` (depth on KITTI: explicit train/val split files that share no frame,
    a ValueError; warnings for shared drives, logged)."""
    if "energy_model" in fixed or "sram_kb" in fixed:
        from snnsearch.energy.models import DEFAULT_MODEL, DEFAULT_SRAM_KB, check_choice

        check_choice(str(fixed.get("energy_model", DEFAULT_MODEL)),
                     float(fixed.get("sram_kb", DEFAULT_SRAM_KB)))
    from snnsearch.sweep.tasks import task_checks

    _, check = task_checks(trainable)
    for warning in (check(fixed) if check is not None else []):
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
