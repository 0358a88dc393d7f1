"""The shared command line of ``sweeps/mnist.py``, ``sweeps/fashion.py`` and ``sweeps/depth.py``.

Every flag defaults to None so that precedence is explicit: a flag given on the command line wins
over the space file's ``tune``/``smoke`` sections, which win over built-in defaults
(``settings.resolve_settings``). Choices for ``--sampler``/``--scheduler`` come from the
registries, so a newly registered scheduler shows up here without edits.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def build_parser(task: str, default_space: Path) -> argparse.ArgumentParser:
    """The sweep CLI for ``task`` (importing only the cheap registries)."""
    from snnsearch.search.schedulers import SCHEDULERS
    from snnsearch.search.searchers import SAMPLERS

    p = OneLineParser(
        prog=f"sweeps/{task}.py",
        description=f"Hyperparameter sweep for {task} on Ray Tune + Optuna, logged to MLflow.",
    )
    p.add_argument("--space", type=Path,
                   help=f"search-space YAML (default {_shown(default_space)}; on --resume the "
                        "sweep's stored space)")
    p.add_argument("--samples", type=int, help="number of trials")
    p.add_argument("--sampler", choices=SAMPLERS.names(), help="Optuna sampler")
    p.add_argument("--scheduler", choices=SCHEDULERS.names(), help="trial scheduler")
    p.add_argument("--objectives",
                   help="multi-objective search (Optuna study, --scheduler moasha, Pareto "
                        "report): e.g. val_acc:max,energy_mj:min")
    p.add_argument("--pareto-ref",
                   help="hypervolume reference point, one value per objective: e.g. 0.0,1.0")
    p.add_argument("--constraint", dest="constraints", action="append", metavar="METRIC<=X",
                   help="hard constraint, repeatable: e.g. --constraint energy_mj<=0.5 "
                        "--constraint val_acc>=0.98 (violators are infeasible for the sampler "
                        "and greyed off the Pareto front)")
    p.add_argument("--moasha-tiebreak", choices=("crowding", "epsnet", "hvc"),
                   help="MO-ASHA order within a front: exclusive hypervolume contribution "
                        "(hvc, default), NSGA-II crowding distance or Syne Tune's epsilon-net")
    p.add_argument("--silence", action=argparse.BooleanOptionalAction, default=None,
                   help="stop trials whose output layer is silent or saturated (default: on for "
                        "tasks whose output is spikes, classification; off for depth)")
    p.add_argument("--silence-from", type=int, help="first epoch checked for silence (default 1)")
    p.add_argument("--keep-checkpoints", type=int,
                   help="checkpoints kept per trial, the latest ones (default 1)")
    p.add_argument("--max-epochs", type=int, help="epochs per trial (ASHA max_t)")
    p.add_argument("--grace", type=int, help="ASHA grace period in epochs")
    p.add_argument("--reduction-factor", type=float, help="ASHA reduction factor (eta)")
    p.add_argument("--cheap-first", type=int, metavar="N",
                   help="cost-aware sampling: the first N trials run at the space's smallest T "
                        "(the sampler draws the rest; default 0: off)")
    p.add_argument("--budget-seconds", dest="budget_s", type=float, metavar="S",
                   help="stop the sweep once its trials have spent S compute seconds in all "
                        "(summed time_total_s; default: no budget)")
    p.add_argument("--time-attr", choices=("epoch", "cost"),
                   help="what ASHA/MO-ASHA rungs count: epochs (default; --grace, "
                        "--max-epochs) or cost, each trial's cumulative seconds "
                        "(--grace-seconds, --max-seconds)")
    p.add_argument("--grace-seconds", dest="grace_s", type=float, metavar="S",
                   help="with --time-attr cost: seconds every trial gets before a rung can "
                        "stop it")
    p.add_argument("--max-seconds", dest="max_s", type=float, metavar="S",
                   help="with --time-attr cost: seconds after which a trial is stopped (the "
                        "last rung; --max-epochs still caps its epochs)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs reserved per trial")
    p.add_argument("--gpus-per-trial", type=float, help="GPUs per trial; 0.25 packs 4 per GPU")
    p.add_argument("--concurrency", type=int, help="most trials running at once")
    p.add_argument("--storage",
                   help="sweep storage: local/NFS path or s3://... (default ~/ray_results)")
    p.add_argument("--name", help="sweep name (directory under --storage); required with --resume")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue an interrupted sweep (Tuner.restore)")
    p.add_argument("--mlflow-uri", help="tracking URI (default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    p.add_argument("--data-dir", help="dataset root passed to the trainable")
    p.add_argument("--seed", type=int, help="sampler and trial seed")
    p.add_argument("--repeats", type=int,
                   help="after the search, re-run the top configurations with this many new "
                        "seeds under the same MLflow parent (report: mean ± std)")
    p.add_argument("--repeat-top", type=int,
                   help="configurations --repeats re-runs (default 3; the Pareto front's first "
                        "ones with --objectives)")
    p.add_argument("--warm-start", metavar="SWEEP_DIR",
                   help="seed the sampler with the completed trials of an earlier sweep over "
                        "the same space keys")
    p.add_argument("--log-models", metavar="front|K|none",
                   help="at the end, export these trials to NIR and log them as MLflow models: "
                        "the accuracy-energy front or the top K (default: front for a "
                        "'deploy: nir' space, else none; docs/export.md)")
    p.add_argument("--export-test-images", type=int, metavar="N",
                   help="check the exported files on the first N test images (default: all)")
    p.add_argument("--register", metavar="NAME",
                   help="register the logged MLflow models under NAME")
    p.add_argument("--smoke", action="store_true",
                   help="tiny data, few epochs and samples: a ~1 minute check on 2 CPUs")
    return p


def main(task: str, argv: Sequence[str] | None = None, default_space: Path | None = None) -> int:
    """Parses flags, runs the sweep, prints the summary. Returns the exit code.

    Args:
        task: "mnist", "fashion" or "depth" (names the default space and sweep).
        argv: arguments (default ``sys.argv[1:]``).
        default_space: space file when ``--space`` is not given.
    """
    default = default_space or REPO / "search_spaces" / f"{task}.yaml"
    parser = build_parser(task, default)
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(given)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from snnsearch.spaces.space import SpaceError, load_space
    from snnsearch.sweep.preflight import check_inputs
    from snnsearch.sweep.settings import resolve_settings

    try:
        space = load_space(args.space or default)
        overrides = {k: v for k, v in vars(args).items() if k not in ("space", "smoke")}
        settings = resolve_settings(space, task=task, overrides=overrides, smoke=args.smoke)
        if settings.resume:
            settings, space = _stored_settings(settings, args, space)
        from snnsearch.sweep.preflight import input_warnings

        for warning in input_warnings(settings):
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        # Input checks before Ray, torch or any write: a bad input costs a second, not a sweep.
        check_inputs(settings, space)
    except (SpaceError, ValueError) as err:
        return _refuse(err)
    except KeyboardInterrupt:  # during the checks (an md5 of a large file): nothing written yet
        print("error: interrupted (SIGINT) before the sweep started, nothing was written; start "
              f"it again with: {sweep_command(task, *given)}", file=sys.stderr)
        return 130
    print(f"sweep {settings.name}: {settings.samples} trials of {space.trainable} "
          f"({settings.sampler}/{settings.scheduler}) -> {settings.sweep_dir}; MLflow "
          f"{settings.mlflow_uri}", flush=True)
    from snnsearch.sweep.interrupts import StorageFull, SweepInterrupted
    from snnsearch.sweep.run import run_sweep

    try:
        outcome = run_sweep(settings, space)
    except ValueError as err:  # SpaceError is one
        return _refuse(err)
    except KeyboardInterrupt:  # before the sweep's own handlers were in place, or a 2nd Ctrl-C
        print(f"error: interrupted (SIGINT); {interrupted_command(task, settings, given)}",
              file=sys.stderr)
        return 130
    except StorageFull as full:
        print(f"error: {full}", file=sys.stderr)
        return 1
    except SweepInterrupted as stop:
        print(stop.outcome.text)
        print(f"trial table: {stop.outcome.table_path}\nsweep interrupted ({stop}); continue it "
              f"with:\n  {stop.resume}", flush=True)
        if stop.error:  # the driver stopped it (a full storage): one error line
            print(f"error: {stop.error}", file=sys.stderr)
        return stop.exit_code
    print(outcome.text)
    print(f"trial table: {outcome.table_path}\nMLflow: {settings.mlflow_uri} "
          f"experiment {settings.experiment!r}, parent run {outcome.parent_run_id}")
    print(f"see it in MLflow: {mlflow_ui_command(settings.mlflow_uri)}")
    failed = outcome.summary["counts"]["errored"]
    return 1 if failed == outcome.summary["trials"] and failed else 0


def mlflow_ui_command(uri: str) -> str:
    """The command that shows a tracking store in the browser (a server URI is opened as is),
    shell-quoted: a store under a folder with spaces must paste as one argument."""
    if uri.startswith(("http://", "https://")):
        return shlex.join(["open", uri])
    return shlex.join(["mlflow", "ui", "--backend-store-uri", uri])


def sweep_command(task: str, *args: str) -> str:
    """``python sweeps/<task>.py ARGS``, shell-quoted (the script as it was run, when it was)."""
    script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else _shown(
        REPO / "sweeps" / f"{task}.py")
    return shlex.join(["python", script, *args])


def interrupted_command(task: str, settings, given: Sequence[str]) -> str:
    """What to run after a Ctrl-C that came before the sweep's own handler: ``--resume`` if Ray
    had saved a state (``tuner.pkl``), else the same start again, now with the sweep's name
    (nothing was saved, and a failed start leaves nothing that blocks it)."""
    from snnsearch.storage import sweepdir as _storage

    if _storage.exists(_storage.join(settings.sweep_dir, "tuner.pkl")):
        args = ["--storage", settings.storage, "--name", settings.name, "--resume"]
        return "continue it with: " + sweep_command(task, *args)
    given = list(given)
    if "--name" not in given and not any(a.startswith("--name=") for a in given):
        given += ["--name", settings.name]
    return "nothing was saved yet; start it again with: " + sweep_command(task, *given)


def _refuse(err: Exception) -> int:
    """Bad input: one ``error:`` line on stderr, exit code 2."""
    print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line (exit 2) like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# The cost-aware flags a resumed sweep keeps from sweep.json (docs/moasha.md): Ray restores the
# budget stopper with its count from the experiment snapshot and ASHA's rungs from their own, so
# a new value given with --resume would be read by nothing.
_KEPT_ON_RESUME = {"budget_s": "--budget-seconds", "time_attr": "--time-attr",
                   "grace_s": "--grace-seconds", "max_s": "--max-seconds",
                   "cheap_first": "--cheap-first"}


def _check_stored_budget(args: argparse.Namespace, stored: dict) -> None:
    for key, flag in _KEPT_ON_RESUME.items():
        # A sweep.json from before these keys ran with the defaults.
        given = getattr(args, key, None)
        kept = stored.get(key, {"time_attr": "epoch", "cheap_first": 0}.get(key))
        if given is not None and given != kept:
            shown = "none" if kept is None else f"{kept:g}" if isinstance(kept, float) else kept
            raise ValueError(f"--resume: the sweep keeps {flag} {shown} (its budget and rungs "
                             f"continue); drop {flag}, or start a new sweep with --warm-start "
                             "from it to spend another budget")


def _stored_settings(settings, args: argparse.Namespace, space):
    """On ``--resume`` the sweep continues with the settings and the space it started with
    (sweep.json). A different ``--mlflow-uri`` would split the sweep across stores and a
    different ``--space`` would be silently ignored by the restored searcher: both refused."""
    import dataclasses

    from snnsearch.spaces.checks import space_diff
    from snnsearch.spaces.space import parse_space
    from snnsearch.storage import signing
    from snnsearch.sweep.run import SETTINGS_FILE
    from snnsearch.sweep.settings import SweepSettings
    from snnsearch.sweep.tasks import check_resume_trainable

    if args.name is None:
        raise ValueError("--resume needs --name (and --storage) of the sweep to continue")
    # Signed: the data paths, MLflow URI and trainable below are acted on (storage.signing).
    stored = signing.read_settings(settings.sweep_dir, name=settings.name, required=True)
    if stored is None:
        raise ValueError(
            f"--resume: no sweep to resume at {settings.sweep_dir} (no {SETTINGS_FILE}); "
            "check --storage/--name"
        )
    if args.mlflow_uri and settings.mlflow_uri != stored["mlflow_uri"]:
        raise ValueError(
            f"--resume: sweep logs to {stored['mlflow_uri']}, not {settings.mlflow_uri}; "
            "drop --mlflow-uri or pass the original"
        )
    _check_stored_budget(args, stored)
    if "space" in stored:
        stored_space = parse_space(stored["space"], source=str(stored.get("space_path")),
                                   default_experiment=space.experiment)
        if args.space is not None:
            differ = space_diff(stored["space"], space.to_dict())
            if differ:
                raise ValueError(
                    f"--resume: --space {args.space} differs from the sweep's space "
                    f"({stored.get('space_path')}) in {', '.join(differ[:8])}; drop --space to "
                    "resume with the stored one, or start a new sweep (--name)")
        check_resume_trainable(stored_space.trainable,
                               space.trainable if args.space is not None else None)
        space = stored_space
    fields = {f.name for f in dataclasses.fields(SweepSettings)}
    kept = {k: v for k, v in stored.items() if k in fields}
    kept["objectives"] = tuple(tuple(o) for o in kept.get("objectives", ()))
    kept["constraints"] = tuple(kept.get("constraints", ()))
    if kept.get("pareto_ref") is not None:
        kept["pareto_ref"] = tuple(kept["pareto_ref"])
    return SweepSettings(**{**kept, "resume": True, "storage": settings.storage,
                            "name": settings.name}), space
