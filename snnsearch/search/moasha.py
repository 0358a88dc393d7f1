"""Multi-objective asynchronous successive halving (MO-ASHA) as a Ray Tune scheduler.

Ray's ASHA ranks one scalar; accuracy-energy searches need two or more. After Schmucker et al.
2021 ("Multi-objective asynchronous successive halving", arXiv:2106.12639; Syne Tune's
``MOASHA``): rungs sit at ``grace_period * eta**k`` epochs as in ASHA. When a trial first
reaches a rung (progress counted in epochs, see ``time_attr``) its objective vector is
recorded at the highest rung it has reached, all vectors recorded at that rung are
put in one total order and the trial continues only if it lies in the top ``1/eta``:

1. non-dominated sorting (front 0 first),
2. within a front, larger NSGA-II crowding distance first (the extremes of a front are kept,
   crowded middles are thinned, so the survivors stay spread along the accuracy-energy trade-off),
   or, with ``tiebreak="epsnet"`` (``--moasha-tiebreak epsnet``), Syne Tune's epsilon-net order
   (greedy farthest point first),
3. exact ties (duplicates, several extremes) by a random key from the scheduler's own seeded
   generator, so arrival order never decides.

A trial with n vectors recorded at its rung (itself included) continues when its 0-based
position p satisfies ``p < n / eta``. With one objective this is ASHA's rule. Trials that a
:class:`~snnsearch.search.silence.SilenceStopper` ended (``result["stop_reason"]`` set) are never
recorded: a silent net has near-zero energy and would otherwise sit on the front and push
working ones out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

from snnsearch.constants import STOP_REASON
from snnsearch.search.pareto import (
    TIEBREAKS,
    Objective,
    as_minimization,
    parse_objectives,
    rank_order,
)
from snnsearch.search.silence import progress_of

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


logger = logging.getLogger(__name__)

__all__ = ["MultiObjectiveASHA"]


class _Bracket:
    """Rungs of one bracket: ``milestone -> {trial_id: objective vector (minimisation)}``."""

    def __init__(
        self, milestones: list[float], reduction_factor: float, tiebreak: str = "crowding"
    ) -> None:
        self.milestones = sorted(milestones, reverse=True)  # highest first, as in Ray's ASHA
        self.recorded: dict[float, dict[str, np.ndarray]] = {m: {} for m in self.milestones}
        self.rf = reduction_factor
        self.tiebreak = tiebreak

    def on_result(
        self, trial_id: str, progress: float, vector: np.ndarray, rng: np.random.Generator | None
    ) -> str:
        """Record ``vector`` at the highest rung ``progress`` has reached, and decide there.

        Only that rung is considered, as in Ray's ASHA: a trial already recorded there continues
        (the decision was made), and a trial that skipped lower rungs (restored from a later
        checkpoint) is never judged at a rung below the one it reached. With ``rng=None`` the
        vector is only recorded (used for completed trials).
        """
        reached = [m for m in self.milestones if progress >= m]
        if not reached:
            return TrialScheduler.CONTINUE
        milestone = reached[0]
        recorded = self.recorded[milestone]
        if trial_id in recorded:
            return TrialScheduler.CONTINUE
        recorded[trial_id] = vector
        if rng is None:
            return TrialScheduler.CONTINUE
        ids = list(recorded)
        order = rank_order(np.stack([recorded[i] for i in ids]), rng=rng, tiebreak=self.tiebreak)
        position = int(np.flatnonzero(order == ids.index(trial_id))[0])
        if position >= len(ids) / self.rf:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_str(self) -> str:
        return " | ".join(f"rung {m:g}: {len(self.recorded[m])} recorded" for m in self.milestones)


class MultiObjectiveASHA(FIFOScheduler):
    """ASHA whose rungs rank objective vectors by Pareto dominance (see module docstring).

    Ray passes schedulers a single ``metric``/``mode`` from ``TuneConfig``, so this scheduler
    takes its objectives itself. ``TuneConfig`` may still name one of them (for
    ``get_best_result``); any other metric is refused with a one-line error.

    Args:
        objectives: ``[(metric, "min"|"max"), ...]`` or ``"val_acc:max,energy_mj:min"``.
        time_attr: progress key. With the default ``training_iteration`` the result's ``epoch``
            is used when present (:func:`~snnsearch.search.silence.progress_of`): it continues
            from a checkpoint, while ``training_iteration`` restarts after ``Tuner.restore``.
        max_t: full budget in ``time_attr`` units; trials are stopped when they reach it.
        grace_period: first rung; no trial is stopped before it.
        reduction_factor: eta: the top ``1/eta`` of each rung continue.
        brackets: number of ASHA brackets (bracket s starts at ``grace_period * eta**s``).
        seed: seed of the generator used for bracket choice and exact ties.
        reason_key: result key whose non-empty value keeps a trial out of the rungs.
        tiebreak: order within a front: ``"crowding"`` (NSGA-II crowding distance) or
            ``"epsnet"`` (Syne Tune's epsilon-net); see :func:`~snnsearch.search.pareto.rank_order`.
    """

    def __init__(
        self,
        *,
        objectives: Sequence[Sequence[str]] | str,
        time_attr: str = "training_iteration",
        max_t: int = 100,
        grace_period: int = 1,
        reduction_factor: float = 3,
        brackets: int = 1,
        seed: int | None = None,
        reason_key: str = STOP_REASON,
        tiebreak: str = "crowding",
    ) -> None:
        if max_t <= 0 or grace_period <= 0:
            raise ValueError(f"max_t={max_t} and grace_period={grace_period} must be positive")
        if grace_period > max_t:
            raise ValueError(f"grace_period={grace_period} exceeds max_t={max_t}; lower it")
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor={reduction_factor} must be > 1")
        if brackets < 1:
            raise ValueError(f"brackets={brackets} must be >= 1")
        if tiebreak not in TIEBREAKS:
            raise ValueError(
                f"MO-ASHA tiebreak {tiebreak!r}: use one of {', '.join(TIEBREAKS)} "
                "(--moasha-tiebreak)"
            )
        super().__init__()
        self._objectives: list[Objective] = parse_objectives(objectives)
        self._time_attr = time_attr
        self._max_t = max_t
        self._rf = float(reduction_factor)
        self._reason_key = reason_key
        self._tiebreak = tiebreak
        self._rng = np.random.default_rng(seed)
        self._brackets = [
            _Bracket(self._milestones(grace_period, s), self._rf, tiebreak)
            for s in range(brackets)
        ]
        self._trial_info: dict[str, _Bracket] = {}
        self._num_stopped = 0
        # Ray reads scheduler.metric to validate results; the first objective stands in.
        self._metric, self._mode = self._objectives[0]

    def _milestones(self, grace_period: int, s: int) -> list[float]:
        out, k = [], s
        while grace_period * self._rf**k <= self._max_t * (1 + 1e-9):
            out.append(grace_period * self._rf**k)
            k += 1
        return out

    @property
    def objectives(self) -> list[Objective]:
        """The ``(metric, mode)`` pairs ranked at every rung."""
        return list(self._objectives)

    def set_search_properties(
        self, metric: str | None, mode: str | None, **spec: Any
    ) -> bool:
        """Accept ``TuneConfig``'s metric/mode only if they name one of the objectives."""
        if metric is None and mode is None:
            return True
        modes = dict(self._objectives)
        if metric not in modes or (mode is not None and mode != modes[metric]):
            raise ValueError(
                f"TuneConfig metric={metric!r} mode={mode!r} is not one of the MO-ASHA "
                f"objectives {self._objectives}: pass one of them or leave metric/mode unset"
            )
        return True

    def _vector(self, result: dict) -> np.ndarray | None:
        if any(name not in result for name, _ in self._objectives):
            return None
        raw = [[result[name] for name, _ in self._objectives]]
        try:
            return as_minimization(raw, [m for _, m in self._objectives])[0]
        except (TypeError, ValueError):
            logger.warning("MO-ASHA: non-numeric objective in result %s; ignored", raw)
            return None

    def _bracket_of(self, trial_id: str) -> _Bracket:
        if trial_id not in self._trial_info and len(self._brackets) == 1:
            # No draw: the generator then only serves rung decisions, so decisions depend on
            # the order of results, not on when Ray happened to create the next trial.
            self._trial_info[trial_id] = self._brackets[0]
        elif trial_id not in self._trial_info:
            # Same softmax over rung counts as Ray's ASHA, but from our own generator.
            sizes = np.array([len(b.milestones) for b in self._brackets], dtype=float)
            probs = np.exp(sizes - sizes.max())
            idx = int(self._rng.choice(len(self._brackets), p=probs / probs.sum()))
            self._trial_info[trial_id] = self._brackets[idx]
        return self._trial_info[trial_id]

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        """Assign the new trial to a bracket."""
        self._bracket_of(trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        """CONTINUE or STOP ``trial`` given its latest result (see module docstring)."""
        vector = self._vector(result)
        progress = progress_of(result, self._time_attr)
        if progress is None or vector is None or result.get(self._reason_key):
            return TrialScheduler.CONTINUE
        if progress >= self._max_t:
            action = TrialScheduler.STOP
        else:
            bracket = self._bracket_of(trial.trial_id)
            action = bracket.on_result(trial.trial_id, progress, vector, self._rng)
        if action == TrialScheduler.STOP:
            self._num_stopped += 1
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        """Record the final vector (unless silenced) so later trials are ranked against it."""
        vector = self._vector(result) if result else None
        progress = progress_of(result, self._time_attr) if result else None
        if vector is not None and progress is not None and not result.get(self._reason_key):
            self._bracket_of(trial.trial_id).on_result(trial.trial_id, progress, vector, None)
        self._trial_info.pop(trial.trial_id, None)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        """Forget a trial removed before it finished."""
        self._trial_info.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        """One line per bracket with the number of vectors per rung."""
        lines = [f"Using MO-ASHA {self._objectives}: num_stopped={self._num_stopped}"]
        lines += [f"Bracket: {b.debug_str()}" for b in self._brackets]
        return "\n".join(lines)

    def state_dict(self) -> dict[str, Any]:
        """The rung state as JSON-ready data (what ``scheduler_state`` snapshots on resume)."""
        brackets = self._brackets
        return {
            "kind": "moasha", "num_stopped": self._num_stopped,
            "rng": self._rng.bit_generator.state,
            "trial_info": {t: brackets.index(b) for t, b in self._trial_info.items()},
            "brackets": [[[m, {t: [float(x) for x in v] for t, v in b.recorded[m].items()}]
                          for m in b.milestones] for b in brackets],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put a :meth:`state_dict` state back into a scheduler built with the same settings."""
        brackets = self._brackets
        if len(state["brackets"]) != len(brackets):
            raise ValueError("saved scheduler state has another number of brackets")
        for b, rungs in zip(brackets, state["brackets"], strict=True):
            b.recorded = {float(m): {t: np.asarray(v, dtype=float) for t, v in rec.items()}
                          for m, rec in rungs}
            b.milestones = [float(m) for m, _ in rungs]
        self._rng.bit_generator.state = state["rng"]
        self._trial_info = {t: brackets[i] for t, i in state["trial_info"].items()}
        self._num_stopped = state["num_stopped"]

    def save(self, checkpoint_path: str) -> None:
        """Write the rung state as JSON (Ray's ASHA pickles; JSON keeps ``restore`` from running
        code out of a file in the sweep storage)."""
        with open(checkpoint_path, "w") as fh:
            json.dump(self.state_dict(), fh)

    def restore(self, checkpoint_path: str) -> None:
        """Load a state written by :meth:`save` into a scheduler built with the same settings."""
        with open(checkpoint_path) as fh:
            self.load_state_dict(json.load(fh))


