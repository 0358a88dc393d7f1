"""Syne Tune's MOASHA as a peer arm of the replay simulator (``replay_sim.simulate``).

Every other arm of the replay benchmark is our own code; this one is somebody else's: Syne
Tune 0.16's ``MOASHA`` (``syne_tune.optimizer.schedulers.multiobjective.moasha``; Schmucker et
al. 2021, "Multi-objective multi-fidelity hyperparameter optimization with application to
fairness"; Salinas et al. 2021 for the epsilon-net), driven through its own scheduler API the
way Syne Tune's ``Tuner._update_running_trials`` drives it:

* ``suggest()`` -> ``TrialSuggestion`` with a configuration MOASHA sampled itself (uniform
  random, its only sampler), then ``on_trial_add(trial)``;
* each result -> ``on_trial_result`` -> ``SchedulerDecision``; on ``STOP`` the Tuner calls
  ``on_trial_remove`` (never ``on_trial_complete``), including MOASHA's own STOP at ``max_t``;
* a trial that ends without a STOP -> ``on_trial_complete`` with its last result; a failed
  trial -> ``on_trial_error``.

The simulator maps each configuration to a recorded curve with ``ReplayTable.nearest``, as it
does for our arms.

Adaptations, each forced by MOASHA 0.16's interface:

* **Mixed directions.** MOASHA takes one ``do_minimize`` for all metrics; we keep
  ``do_minimize=True`` and hand it ``-value`` under ``neg_<name>`` for each maximised objective.
  A translation leaves dominance and the epsilon-net's Euclidean distances unchanged.
* **Seeding.** ``MOASHA.suggest`` calls ``Domain.sample()`` and ``on_trial_add`` calls
  ``np.random.choice`` on the global ``np.random`` (its ``random_seed`` seeds nothing); Syne
  Tune's benchmarks call ``np.random.seed``. We give the scheduler its own
  ``RandomState(seed)`` by swapping it into the global slot for the duration of each call and
  restoring the caller's state afterwards, so a run is reproducible and leaves no trace.
* **Conditional dimensions.** Syne Tune has no conditional spaces, so MOASHA samples every
  dimension of the space file on every trial (``when:`` cannot be expressed), which is what a
  Syne Tune user gets. Before the configuration reaches the simulator we drop the dimensions
  whose ``when:`` does not hold, in file order as ``DefineByRun`` does, so it has exactly the
  keys our Optuna arms produce and ``ReplayTable.nearest`` maps it the same way. Keeping them
  would be harmless in exact arithmetic (an inactive dimension holds one placeholder across a
  (model, neuron) family, so it adds the same distance to every candidate), but ``nearest``
  sums float level distances and a constant added to two exactly tied candidates can flip the
  tie (seen on the MNIST table: 2.1666666666666665 against 2.166666666666667). Dropping
  inactive values from independent uniform draws gives the conditional-uniform distribution of
  Optuna's RandomSampler on the same space.

``priority="documented"`` swaps in :class:`DocumentedNonDominatedPriority` (see its docstring
and docs/moasha.md "Peer: Syne Tune MOASHA"): 0.16's default ``NonDominatedPriority`` returns
an order where ``Bracket.on_result`` expects per-item priorities, so its rung decisions do not
follow its documented rule.
"""

from __future__ import annotations

import contextlib
import datetime
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from snnsearch.search.pareto import parse_objectives
from snnsearch.spaces.params import ParamSpec

if TYPE_CHECKING:
    from snnsearch.spaces.space import SearchSpace
    from snnsearch.testing.replay_sim import SimTrial

__all__ = ["PRIORITIES", "DocumentedNonDominatedPriority", "SyneTuneMOASHA",
           "synetune_config_space"]

PRIORITIES = ("shipped", "documented")
_INSTALL_HINT = 'the Syne Tune peer needs syne-tune: pip install -e ".[bench]"'


def _syne_tune() -> Any:
    try:
        import syne_tune.config_space as cs
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(_INSTALL_HINT) from exc
    return cs


def _domain(p: ParamSpec) -> Any:
    """One parameter as a Syne Tune domain (``when`` dropped: see the module docstring)."""
    cs = _syne_tune()
    if p.kind == "categorical":
        return cs.choice(list(p.choices))
    low, high = float(p.low or 0.0), float(p.high or 0.0)
    if p.kind == "int":
        if p.step and p.step != 1:
            return cs.choice(list(range(int(low), int(high) + 1, int(p.step))))
        return (cs.lograndint if p.log else cs.randint)(int(low), int(high))
    if p.step:
        return cs.finrange(low, high, math.floor((high - low) / p.step) + 1)
    return (cs.loguniform if p.log else cs.uniform)(low, high)


def synetune_config_space(space: SearchSpace) -> dict[str, Any]:
    """Syne Tune config space of a space file: fixed keys as constants, every searched
    parameter as a domain (categorical levels -> ``choice``)."""
    return {**dict(space.fixed), **{p.name: _domain(p) for p in space.params}}


class DocumentedNonDominatedPriority:
    """The rung order 0.16's docstrings describe, from Syne Tune's own pieces.

    ``MOPriority.__call__`` is documented to return "a vector ... that gives priority for the
    different elements (lower elements are picked first)", and ``Bracket.on_result`` turns it
    into the newcomer's rank. ``NonDominatedPriority`` instead returns ``nondominated_sort``'s
    list of indices in sorted order, and inside ``nondominated_sort`` the epsilon-net's ranks
    are used as an order (``pareto_front[pareto_order]``). This class returns, for each item,
    its position in the order "Pareto fronts with ``pareto_efficient``, front 0 first; within a
    front the epsilon-net order of ``compute_epsilon_net`` seeded at the best value of
    objective ``dim``", which is the rule the docstrings state.
    """

    def __init__(self, *, dim: int = 0) -> None:
        self.dim = dim

    def __call__(self, objectives: np.ndarray) -> np.ndarray:
        from syne_tune.optimizer.schedulers.multiobjective.non_dominated_priority import (
            compute_epsilon_net,
            pareto_efficient,
        )

        remaining = np.arange(objectives.shape[0])
        order: list[int] = []
        while remaining.size:
            mask = pareto_efficient(objectives[remaining])
            front = remaining[mask]
            ranks = compute_epsilon_net(objectives[front], dim=self.dim)
            order.extend(front[np.argsort(ranks)].tolist())  # ranks -> order
            remaining = remaining[~mask]
        priority = np.empty(len(order), dtype=float)
        priority[order] = np.arange(len(order))
        return priority


class SyneTuneMOASHA:
    """A replay-simulator ``Policy`` around Syne Tune's ``MOASHA``.

    Args:
        space: the replay space file (``load_space``); its levels become the config space.
        objectives: ``(metric, mode)`` pairs or ``"val_acc:max,energy_mj:min"``.
        time_attr: result key MOASHA measures progress in: ``training_iteration`` (epochs,
            its default) or ``time_total_s`` (the simulator's cumulative recorded cost).
        grace_period, max_t, reduction_factor, brackets: MOASHA's, in ``time_attr`` units.
        seed: seeds MOASHA's sampling and bracket draws (see the module docstring).
        priority: ``"shipped"`` (MOASHA's default ``NonDominatedPriority``) or
            ``"documented"`` (:class:`DocumentedNonDominatedPriority`).
        max_trials: stop suggesting after this many trials (None: until the budget ends).
    """

    def __init__(self, *, space: SearchSpace,
                 objectives: str | Sequence[Sequence[str]] = "val_acc:max,energy_mj:min",
                 time_attr: str = "training_iteration", grace_period: float = 1,
                 max_t: float = 5, reduction_factor: float = 3, brackets: int = 1,
                 seed: int = 0, priority: str = "shipped",
                 max_trials: int | None = None) -> None:
        _syne_tune()
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

        if priority not in PRIORITIES:
            raise ValueError(f"priority={priority!r}; choose one of {PRIORITIES}")
        self.objectives = parse_objectives(objectives)
        # MOASHA has one direction for all metrics: minimise, maximised ones negated.
        self.metrics = [name if mode == "min" else f"neg_{name}"
                        for name, mode in self.objectives]
        self._fixed = dict(space.fixed)
        self._params = tuple(space.params)
        self._state = np.random.RandomState(seed).get_state()
        self._trials: dict[str, Any] = {}
        self._removed: set[str] = set()
        self.max_trials = max_trials
        with self._own_rng():
            self.scheduler = MOASHA(
                config_space=synetune_config_space(space), metrics=self.metrics,
                do_minimize=True, time_attr=time_attr, max_t=max_t,
                grace_period=grace_period, reduction_factor=reduction_factor,
                brackets=brackets, random_seed=seed,
                multiobjective_priority=(DocumentedNonDominatedPriority()
                                         if priority == "documented" else None))

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        # MOASHA draws from the global np.random (see the module docstring); lend it our state.
        saved = np.random.get_state()
        np.random.set_state(self._state)
        try:
            yield
        finally:
            self._state = np.random.get_state()
            np.random.set_state(saved)

    def _st_result(self, result: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(result)
        for (name, mode), key in zip(self.objectives, self.metrics):
            if mode == "max":
                out[key] = -float(result[name])
        return out

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        from syne_tune.backend.trial_status import Trial

        if self.max_trials is not None and len(self._trials) >= self.max_trials:
            return None
        with self._own_rng():
            suggestion = self.scheduler.suggest()
        if suggestion is None:
            return None
        config = dict(suggestion.config)
        # Syne Tune's back-ends number trials 0, 1, 2, ... in start order.
        self._trials[trial_id] = Trial(trial_id=len(self._trials), config=config,
                                       creation_time=datetime.datetime.now())
        return self._active(config)

    def _active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` without the dimensions whose ``when:`` fails (module docstring)."""
        out = dict(self._fixed)
        for p in self._params:
            if p.active(out):
                out[p.name] = config[p.name]
        return out

    def on_add(self, trial: SimTrial) -> None:
        with self._own_rng():
            self.scheduler.on_trial_add(self._trials[trial.trial_id])

    def on_result(self, trial: SimTrial, result: dict[str, Any]) -> bool:
        from syne_tune.optimizer.scheduler import SchedulerDecision

        st_trial = self._trials[trial.trial_id]
        with self._own_rng():
            decision = self.scheduler.on_trial_result(st_trial, self._st_result(result))
            if decision == SchedulerDecision.CONTINUE:
                return True
            if decision != SchedulerDecision.STOP:  # MOASHA never pauses
                raise RuntimeError(f"unexpected MOASHA decision {decision!r}")
            self.scheduler.on_trial_remove(st_trial)  # as Tuner._update_running_trials
        self._removed.add(trial.trial_id)
        return False

    def on_complete(self, trial: SimTrial, result: dict[str, Any]) -> None:
        if trial.trial_id in self._removed:
            return  # the Tuner skips on_trial_complete after a STOP decision
        with self._own_rng():
            self.scheduler.on_trial_complete(self._trials[trial.trial_id],
                                             self._st_result(result))

    def on_error(self, trial: SimTrial) -> None:
        with self._own_rng():
            self.scheduler.on_trial_error(self._trials[trial.trial_id])
