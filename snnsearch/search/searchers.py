"""Optuna samplers by name, wrapped in Ray Tune's OptunaSearch (``PrunedOptunaSearch`` in sweeps).

Each sampler is a registered factory ``(seed, **options) -> optuna.samplers.BaseSampler`` so the
CLI's ``--sampler`` choices come from ``SAMPLERS.names()``. The seed goes to the sampler itself
(OptunaSearch ignores its own ``seed`` when given a sampler). Samplers that model numeric spaces
jointly (CMA-ES, GP, QMC) fall back to independent sampling for categorical or conditional
parameters; their "independent sampling" warnings are silenced because conditional spaces make
that fallback the expected case, not a surprise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from snnsearch.registry import Registry

if TYPE_CHECKING:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

SamplerFactory = Callable[..., "optuna.samplers.BaseSampler"]
SAMPLERS: Registry[SamplerFactory] = Registry("sampler")


@SAMPLERS.register("tpe")
def _tpe(seed: int, **options: Any) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, **options)


@SAMPLERS.register("random")
def _random(seed: int, **options: Any) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed, **options)


@SAMPLERS.register("cmaes")
def _cmaes(seed: int, **options: Any) -> optuna.samplers.BaseSampler:
    import optuna

    options.setdefault("warn_independent_sampling", False)
    return optuna.samplers.CmaEsSampler(seed=seed, **options)


@SAMPLERS.register("gp")
def _gp(seed: int, **options: Any) -> optuna.samplers.BaseSampler:
    import optuna

    options.setdefault("warn_independent_sampling", False)
    return optuna.samplers.GPSampler(seed=seed, **options)


@SAMPLERS.register("nsga2")
def _nsga2(seed: int, **options: Any) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, **options)


@SAMPLERS.register("qmc")
def _qmc(seed: int, **options: Any) -> optuna.samplers.BaseSampler:
    import optuna

    options.setdefault("warn_independent_sampling", False)
    # Each sweep builds one sampler in one driver, so Optuna's multi-process seeding caveat
    # does not apply.
    options.setdefault("warn_asynchronous_seeding", False)
    options.setdefault("scramble", True)
    with warnings.catch_warnings():  # chosen by name on purpose; "experimental" is no news here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, **options)


def _grid(seed: int, **options: Any) -> optuna.samplers.BaseSampler:
    """Optuna's GridSampler over a grid space's ``{cell: [...], seed: [...]}``."""
    if "search_space" not in options:
        raise ValueError("--sampler grid needs a grid space (search_spaces/report/*.yaml)")
    from snnsearch.search.pruned_optuna import AskTellGridSampler

    return AskTellGridSampler(seed=seed, **options)


def build_searcher(
    *,
    space: Callable[[Any], Any],
    sampler: str,
    seed: int,
    metric: str | list[str],
    mode: str | list[str],
    options: Mapping[str, Any] | None = None,
    max_t: int | None = None,
    constraints: Sequence[str] = (),
    searcher_options: Mapping[str, Any] | None = None,
) -> OptunaSearch:
    """PrunedOptunaSearch (plain OptunaSearch without ``max_t``) over a define-by-run space.

    With ``max_t`` the searcher tells Optuna PRUNED for trials that a scheduler or the silence
    stopper ended before ``max_t`` epochs (docs/moasha.md), so TPE does not model a truncated
    one-epoch accuracy as the configuration's quality. Without it a stopped trial cannot be told
    from a finished one; only callers that never stop trials (tests of the sampler) leave it out.

    Args:
        space: define-by-run function (``SearchSpace.define_by_run()``).
        sampler: a name in ``SAMPLERS``.
        seed: sampler seed; the same seed and space give the same first suggestions.
        metric: objective reported by the trainable, or a list (multi-objective study).
        mode: "min"/"max", or a list matching ``metric``.
        options: extra keyword arguments for the sampler constructor.
        max_t: epochs of a trial that nothing stopped (``settings.max_epochs``); a trial whose
            own ``epochs`` are fewer (a grid cell) is complete after those.
        constraints: hard constraints (``"energy_mj<=0.5"``) told to Optuna as trial
            constraints (needs ``max_t``): violators are infeasible for TPE and NSGA-II.
        searcher_options: PrunedOptunaSearch keywords (``tell_epoch``: BOHB-style feedback).
    """
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from snnsearch.search.pruned_optuna import PrunedOptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # "grid" is not a searchable choice: a grid space imposes it with its own search_space
    # (settings.resolve_settings), so it stays out of SAMPLERS and the --sampler choices.
    factory = _grid if sampler == "grid" else SAMPLERS.get(sampler)
    made = factory(seed, **dict(options or {}))
    # metric/mode must be given here: with a define-by-run space OptunaSearch creates the study
    # (and its direction) in the constructor.
    if max_t is None:
        if searcher_options:
            raise ValueError("searcher_options need max_t (they are PrunedOptunaSearch's)")
        if constraints:
            raise ValueError("constraints need max_t (PrunedOptunaSearch tells them to Optuna)")
        return OptunaSearch(space=space, metric=metric, mode=mode, sampler=made)
    return PrunedOptunaSearch(
        space, metric=metric, mode=mode, max_t=max_t, sampler=made, constraints=constraints,
        **dict(searcher_options or {}),
    )


CHEAP_KNOB = "T"  # timesteps: the factor an SNN's compute grows with, epoch for epoch


def cheapest_value(params: Sequence[Any], knob: str = CHEAP_KNOB) -> Any:
    """The smallest value the space can give ``knob`` (a categorical's least choice or a
    numeric range's low end); ValueError when the space does not search ``knob``."""
    spec = next((p for p in params if p.name == knob), None)
    if spec is None:
        raise ValueError(f"--cheap-first needs a space that searches {knob!r} (the trials run "
                         f"at its smallest value); this space fixes or lacks it: drop "
                         "--cheap-first or search it")
    return min(spec.choices) if spec.kind == "categorical" else (
        int(spec.low) if spec.kind == "int" else spec.low)


def enqueue_cheap_first(searcher: Any, params: Sequence[Any], n: int,
                        knob: str = CHEAP_KNOB) -> None:
    """Cost-aware sampling (issue 22, docs/moasha.md): the searcher's first ``n`` trials run at
    the smallest ``knob`` (Optuna's ``enqueue_trial`` with that one parameter fixed; the sampler
    draws the others), so a sweep's first compute goes to the cheap end of its cost."""
    if n <= 0:
        return
    value = cheapest_value(params, knob)
    for _ in range(n):
        # Ray's OptunaSearch asks this study for every trial, enqueued ones first.
        searcher._ot_study.enqueue_trial({knob: value}, skip_if_exists=False)
