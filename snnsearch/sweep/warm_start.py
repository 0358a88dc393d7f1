"""``--warm-start <sweep dir>``: an earlier sweep's completed trials seed this sweep's sampler.

The earlier trials are added to the new Optuna study as COMPLETE trials
(``optuna.trial.create_trial`` + ``Study.add_trial``) with the distributions this sweep's space
defines, so TPE (or any Optuna sampler) models them exactly like trials it ran itself and
proposes its first configurations from what is already known. This is Optuna's own warm-start
path; Ray's ``OptunaSearch(points_to_evaluate=, evaluated_rewards=)`` refuses define-by-run spaces.

Only trials that ran their full budget are used (an early-stopped trial's value is a truncated
one), with the value each objective had at their last epoch, which is what Ray reports to Optuna.
The two spaces must search the same keys; a mismatch is a one-line error before Ray starts.
Only ``sweep.json``, ``space.yaml`` and ``trials.parquet`` are read (data, never pickles). A
value outside this sweep's (narrower) range cannot be told to Optuna: such trials are skipped
and counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from snnsearch.storage import signing
from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    import optuna

    from snnsearch.spaces.space import ParamSpec, SearchSpace


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """Trials to add to the study, and how many of the source's trials were left out.

    Args:
        source: the earlier sweep directory.
        trials: ``optuna.trial.FrozenTrial`` objects (COMPLETE).
        skipped: completed trials with a value outside this space or a missing objective.
    """

    source: str
    trials: list[Any]
    skipped: int


def distribution(param: ParamSpec) -> optuna.distributions.BaseDistribution:
    """The distribution ``param.suggest`` creates, so added and sampled trials share it."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if param.kind == "categorical":
        return CategoricalDistribution(list(param.choices))
    if param.kind == "int":
        return IntDistribution(int(param.low), int(param.high),
                               step=int(param.step) if param.step else 1, log=param.log)
    return FloatDistribution(float(param.low), float(param.high), step=param.step,
                             log=param.log)


def load_warm_start(source: str, space: SearchSpace, objectives: Sequence[tuple[str, str]]
                    ) -> WarmStart:
    """Reads the earlier sweep's table and turns its completed trials into Optuna trials.

    Raises:
        ValueError: (one line) no sweep there, no table, or the spaces search different keys.
    """
    from snnsearch.reporting.results import load_table

    source = _storage.normalize(source)
    try:  # JSON and Parquet only; never Ray's pickled state (reporting.results.load_table)
        if signing.read_settings(source, required=False) is None:
            raise ValueError(f"{source}: not a sweep directory (no sweep.json); pass "
                             "<storage>/<name> of a finished sweep")
        table = load_table(source)
    except (FileNotFoundError, ValueError) as err:  # missing, unreadable or tampered
        raise ValueError(f"--warm-start {err}") from None
    searched = {p.name for p in space.params}
    theirs = _searched_keys(source, table)
    if theirs != searched:
        only_new, only_old = sorted(searched - theirs), sorted(theirs - searched)
        raise ValueError(
            f"--warm-start {source}: its space searches different keys (only here: "
            f"{', '.join(only_new) or '-'}; only there: {', '.join(only_old) or '-'}); warm start "
            "needs the same space keys")
    done = table[table["status"] == "completed"] if "status" in table else table.iloc[:0]
    trials, skipped = [], 0
    for _, row in done.iterrows():
        trial = _frozen_trial(row, space, objectives)
        if trial is None:
            skipped += 1
        else:
            trials.append(trial)
    return WarmStart(source=source, trials=trials, skipped=skipped)


def add_to_study(study: optuna.Study, warm: WarmStart) -> None:
    """Adds the warm-start trials to ``study`` (before the first ``ask``)."""
    for trial in warm.trials:
        study.add_trial(trial)


def _searched_keys(source: str, table: Any) -> set[str]:
    import yaml

    from snnsearch.reporting.params import SPACE_FILE

    text = _storage.read_text(_storage.join(source, SPACE_FILE))
    if text:
        return set((yaml.safe_load(text) or {}).get("space", {}))
    from snnsearch.reporting.params import infer

    return {p.name for p in infer(table)}


def _frozen_trial(row: Any, space: SearchSpace, objectives: Sequence[tuple[str, str]]) -> Any:
    import optuna

    values = [row.get(f"last/{m}") for m, _ in objectives]
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return None
    params, dists = {}, {}
    for param in space.params:
        value = row.get(f"config/{param.name}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # inactive conditional parameter
        params[param.name], dists[param.name] = _typed(param, value), distribution(param)
    try:  # create_trial validates every value against its distribution
        return optuna.trial.create_trial(
            params=params, distributions=dists,
            values=[float(v) for v in values] if len(values) > 1 else None,
            value=float(values[0]) if len(values) == 1 else None,
            user_attrs={"warm_start": str(row.get("trial_id"))})
    except ValueError:
        return None


def _typed(param: ParamSpec, value: Any) -> Any:
    if param.kind == "int":
        return int(value)
    if param.kind == "float":
        return float(value)
    for choice in param.choices:  # Parquet may hand back 32.0 for the choice 32
        if str(choice) == str(value) or (isinstance(value, float) and value == choice):
            return choice
    return value
