"""The Syne Tune peer arm (``snnsearch.testing.peer_synetune``): its rung decisions checked
against Syne Tune's own documented MOASHA rule on hand-made cases, and a replayed sweep.

The documented rule (MOASHA/Bracket/MOPriority/nondominated_sort docstrings in Syne Tune
0.16): at a rung, order the vectors recorded there (the newcomer included) by non-dominated
sorting, front 0 first, and within a front by the epsilon-net (seed: best value of objective
0, then repeatedly the point farthest from those taken); the first trial at a rung continues;
a later one with 0-based position p among n continues iff p / n <= 1 / eta.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

from snnsearch.spaces.space import load_space
from snnsearch.testing.peer_synetune import SyneTuneMOASHA, synetune_config_space
from snnsearch.testing.replay import ReplayTable
from snnsearch.testing.replay_sim import Budget, SimTrial, simulate

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "bench" / "replay_mnist.parquet"
SPACE = load_space(REPO / "snnsearch" / "testing" / "replay_mnist.yaml")
C, S = "CONTINUE", "STOP"


def _decisions(policy: SyneTuneMOASHA, vectors: list[tuple[float, float]]) -> list[str]:
    """(val_acc, energy_mj) results of fresh trials arriving one by one at the epoch-1 rung."""
    out = []
    for i, (acc, mj) in enumerate(vectors):
        trial = SimTrial(f"t{i}", policy.suggest(f"t{i}") or {}, curve=[])
        policy.on_add(trial)
        keep = policy.on_result(trial, {"training_iteration": 1, "time_total_s": 1.0,
                                        "val_acc": acc, "energy_mj": mj})
        out.append(C if keep else S)
    return out


def _policy(priority: str, seed: int = 0) -> SyneTuneMOASHA:
    return SyneTuneMOASHA(space=SPACE, seed=seed, priority=priority, grace_period=1, max_t=5,
                          reduction_factor=3)


# Hand-made arrivals at the epoch-1 rung (eta = 3), as (val_acc, energy_mj).
CASES = {
    # best newcomer last: t3 dominates every vector, so p = 0 of 4 and it must continue;
    # t2 is dominated by all (p = 2 of 3 > 1/3): stop.
    "best_last": ([(0.50, 0.50), (0.90, 0.10), (0.10, 0.90), (0.95, 0.05)],
                  [C, C, S, C],     # the documented rule
                  [C, C, S, S]),    # what 0.16 does: the best vector at the rung is stopped
    # worst vector first: t2 is 2nd of 3 (1/3 <= 1/3: continue, the boundary); t3 is 3rd of 4
    # (2/4 > 1/3) and must stop.
    "worst_first": ([(0.10, 0.90), (0.90, 0.10), (0.50, 0.50), (0.30, 0.70)],
                    [C, C, C, S],
                    [C, C, C, C]),  # 0.16 continues t3 (and every non-worst newcomer)
    # one front (more accuracy costs more energy): the epsilon-net starts at the best accuracy,
    # so each newcomer here is 1st of n and continues. 0.16 also continues them, by two errors
    # that cancel here (see test_shipped_sort_uses_epsilon_net_ranks_as_an_order); reading the
    # epsilon-net's ranks as an order alone would stop t3 (3rd of 4).
    "one_front": ([(0.10, 0.10), (0.30, 0.30), (0.50, 0.50), (0.70, 0.70)],
                  [C, C, C, C],
                  [C, C, C, C]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rung_decisions_follow_the_documented_rule_only_with_the_documented_priority(
        case: str) -> None:
    vectors, documented, shipped = CASES[case]
    assert _decisions(_policy("documented"), vectors) == documented
    # 0.16's NonDominatedPriority hands Bracket.on_result the *order* (indices, best first)
    # where it expects per-item priorities, so the "newcomer's rank" it reads is the arrival
    # index of the worst-ranked vector divided by n: a newcomer that is worst is stopped,
    # otherwise it continues iff the worst vector arrived among the first n/eta.
    assert _decisions(_policy("shipped"), vectors) == shipped


def test_shipped_sort_uses_epsilon_net_ranks_as_an_order() -> None:
    """The second deviation, inside one front: ``compute_epsilon_net`` returns ranks
    (item -> position) and ``nondominated_sort`` indexes the front with them as if they were
    an order (position -> item)."""
    from syne_tune.optimizer.schedulers.multiobjective.non_dominated_priority import (
        compute_epsilon_net,
        nondominated_sort,
    )

    front = np.array([(-0.10, 0.10), (-0.50, 0.50), (-0.90, 0.90)])  # (-val_acc, energy_mj)
    ranks = compute_epsilon_net(front, dim=0)
    assert ranks.tolist() == [1, 2, 0]  # t2 (best accuracy) first, then t0, then t1
    assert np.argsort(ranks).tolist() == [2, 0, 1]  # the epsilon-net order
    assert nondominated_sort(front, dim=0) == [1, 2, 0]  # what 0.16 returns as the order


def _documented_rule(vectors: np.ndarray, eta: float) -> str:
    """Independent brute-force oracle of the documented rule for the last vector (minimised)."""
    n = len(vectors)
    if n == 1:
        return C
    left, order = list(range(n)), []
    while left:
        front = [i for i in left if not any(
            np.all(vectors[j] <= vectors[i]) and np.any(vectors[j] < vectors[i]) for j in left)]
        taken = [min(front, key=lambda i: (vectors[i][0], front.index(i)))]
        while len(taken) < len(front):
            rest = [i for i in front if i not in taken]
            dist = [min(np.linalg.norm(vectors[i] - vectors[t]) for t in taken) for i in rest]
            taken.append(rest[int(np.argmax(dist))])
        order += taken
        left = [i for i in left if i not in front]
    return S if order.index(n - 1) / n > 1 / eta else C


def test_documented_priority_matches_a_brute_force_oracle_and_shipped_does_not() -> None:
    rng = np.random.default_rng(7)
    vectors = [(float(a), float(e)) for a, e in rng.uniform(0, 1, size=(40, 2))]
    minimised = np.array([(-a, e) for a, e in vectors])
    expected = [_documented_rule(minimised[: i + 1], 3) for i in range(len(vectors))]
    assert _decisions(_policy("documented"), vectors) == expected
    shipped = _decisions(_policy("shipped"), vectors)
    assert sum(a != b for a, b in zip(shipped, expected)) >= 5


def test_mixed_directions_need_the_negation_moasha_lacks() -> None:
    # Same accuracy, 5x the energy: dominated, so the second trial must stop (p = 1 of 2).
    vectors = [(0.9, 0.1), (0.9, 0.5)]
    assert _decisions(_policy("documented"), vectors) == [C, S]
    # MOASHA's one do_minimize flag: do_minimize=False maximises energy too.
    raw = MOASHA(config_space={}, metrics=["val_acc", "energy_mj"], do_minimize=False,
                 max_t=5, grace_period=1, reduction_factor=3)
    got = []
    for i, (acc, mj) in enumerate(vectors):
        trial = Trial(trial_id=i, config={}, creation_time=datetime.datetime.now())
        raw.on_trial_add(trial)
        got.append(raw.on_trial_result(trial, {"training_iteration": 1, "val_acc": acc,
                                               "energy_mj": mj}))
    assert got == [C, C]


def test_config_space_is_the_space_files_levels() -> None:
    cs = synetune_config_space(SPACE)
    assert cs["seed"] == 0  # fixed keys stay constants
    for p in SPACE.params:
        assert cs[p.name].categories == list(p.choices)


def test_configs_keep_only_active_dimensions_as_our_arms_do() -> None:
    """MOASHA samples every dim; the simulator gets the keys DefineByRun would produce."""
    policy = _policy("shipped", seed=1)
    families = set()
    for i in range(60):
        config = policy.suggest(f"t{i}") or {}
        sampled = policy._trials[f"t{i}"].config  # what MOASHA drew: every dimension
        assert set(sampled) == {"seed"} | {p.name for p in SPACE.params}
        expected: dict = {"seed": 0}
        for p in SPACE.params:
            if p.active(expected):
                expected[p.name] = sampled[p.name]
        assert config == expected
        families.add((config["model"], config["neuron"]))
    assert len(families) == 8


def _run(seed: int, priority: str = "shipped", **kw: object) -> list[dict]:
    policy = SyneTuneMOASHA(space=SPACE, seed=seed, priority=priority, **kw)  # type: ignore
    return simulate(ReplayTable.load(TABLE), policy, budget=Budget(epochs=120), max_t=5)


@pytest.mark.parametrize("priority", ["shipped", "documented"])
def test_replayed_sweep_completes_stops_at_rungs_and_is_reproducible(priority: str) -> None:
    before = np.random.get_state()[1].copy()
    trace = _run(3, priority)
    assert len(trace) == 120
    last: dict[str, int] = {}
    for row in trace:
        last[row["trial_id"]] = row["epoch"]
    ended = list(last.values())[:-1]  # the last trial may be cut by the budget
    assert set(ended) <= {1, 3, 5}  # MOASHA stops at rungs 1 and 3 or at max_t
    assert ended.count(1) > 5 and ended.count(5) >= 1
    assert _run(3, priority) == trace
    assert _run(4, priority) != trace
    # Syne Tune's draws went to the policy's own RandomState, not the caller's np.random.
    assert np.array_equal(np.random.get_state()[1], before)


def test_cost_time_attribute_judges_at_cumulative_seconds() -> None:
    grace = 2.0
    trace = _run(5, time_attr="time_total_s", grace_period=grace, max_t=200.0)
    spent: dict[str, float] = {}
    last: dict[str, int] = {}
    for row in trace:
        spent[row["trial_id"]] = spent.get(row["trial_id"], 0.0) + row["cost_s"]
        last[row["trial_id"]] = row["epoch"]
    cut = trace[-1]["trial_id"]  # may have been cut by the budget
    early = [tid for tid, epoch in last.items() if epoch < 5 and tid != cut]
    assert len(early) > 5
    # Never judged before its first rung in seconds; cheap trials run past epoch 1.
    assert all(spent[tid] >= grace for tid in early)
    assert any(last[tid] > 1 for tid in early)
