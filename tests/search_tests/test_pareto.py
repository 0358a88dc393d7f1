"""Non-dominated sorting, crowding distance and hypervolume on hand-made vectors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from snnsearch.search.pareto import (
    as_minimization,
    crowding_distance,
    hypervolume,
    non_dominated_sort,
    non_domination_rank,
    pareto_mask,
    parse_objectives,
    rank_order,
)

# (error %, energy mJ), both minimised. Fronts drawn by hand:
# front 0: A(1,5) B(2,3) D(4,1) F(2,3, duplicate of B); front 1: C(3,4); front 2: E(5,5).
POINTS = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [5, 5], [2, 3]], dtype=float)


def test_parse_objectives_cli_form() -> None:
    assert parse_objectives("val_acc:max, energy_mj:min") == [
        ("val_acc", "max"),
        ("energy_mj", "min"),
    ]
    assert parse_objectives([("abs_rel", "min")]) == [("abs_rel", "min")]
    # Metric names may contain '/', only the last ':' separates the mode.
    assert parse_objectives("de/abs_rel:min") == [("de/abs_rel", "min")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no objectives"),
        ("val_acc", "lacks a mode"),
        ("val_acc:maximize", "use 'min' or 'max'"),
        ("val_acc:max,val_acc:min", "listed twice"),
    ],
)
def test_parse_objectives_rejects(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_objectives(spec)


def test_as_minimization_negates_max_and_sends_nan_to_worst() -> None:
    out = as_minimization([[0.9, 2.0], [np.nan, 1.0]], ["max", "min"])
    # A NaN anywhere in a row ranks it last on every objective (not only on its NaN column).
    np.testing.assert_array_equal(out, [[-0.9, 2.0], [np.inf, np.inf]])
    assert not pareto_mask(out)[1]
    with pytest.raises(ValueError, match="2 columns but 1 modes"):
        as_minimization([[1.0, 2.0]], ["min"])


def test_non_dominated_sort_hand_made_fronts() -> None:
    np.testing.assert_array_equal(non_domination_rank(POINTS), [0, 0, 1, 0, 2, 0])
    fronts = non_dominated_sort(POINTS)
    assert [f.tolist() for f in fronts] == [[0, 1, 3, 5], [2], [4]]
    np.testing.assert_array_equal(pareto_mask(POINTS), [1, 1, 0, 1, 0, 1])


def test_non_dominated_sort_three_objectives() -> None:
    pts = np.array([[1, 2, 3], [3, 2, 1], [2, 2, 2], [2, 3, 3], [3, 3, 3], [1, 2, 3]])
    # [2,3,3] is dominated by [1,2,3]; [3,3,3] by [2,3,3] (and others).
    np.testing.assert_array_equal(non_domination_rank(pts), [0, 0, 0, 1, 2, 0])


def test_empty_and_single() -> None:
    assert non_dominated_sort(np.zeros((0, 2))) == []
    assert non_domination_rank([[3.0, 1.0]]).tolist() == [0]


def test_crowding_distance_hand_computed() -> None:
    front = np.array([[1, 5], [2, 3], [4, 1]], dtype=float)
    # Middle point: (4-1)/(4-1) + (5-1)/(5-1) = 2; extremes are infinite.
    np.testing.assert_allclose(crowding_distance(front), [np.inf, 2.0, np.inf])
    # Duplicates share one distance instead of being split by sort order.
    dup = np.array([[1, 5], [2, 3], [4, 1], [2, 3]], dtype=float)
    np.testing.assert_allclose(crowding_distance(dup), [np.inf, 2.0, np.inf, 2.0])
    # A flat objective cannot separate points and adds nothing.
    flat = np.array([[1, 7], [2, 7], [3, 7], [5, 7]], dtype=float)
    np.testing.assert_allclose(crowding_distance(flat), [np.inf, 0.5, 0.75, np.inf])


def test_rank_order_front_then_crowding_then_seeded_ties() -> None:
    pts = np.array([[1, 5], [2, 3], [4, 1], [2.5, 2.5], [5, 5]], dtype=float)
    # front 0 = all but the last; crowding: extremes 0,2 inf; 1: (2.5-1)/3+(5-2.5)/4=1.125,
    # 3: (4-2)/3+(3-1)/4=1.1667 -> 3 before 1; last is front 1.
    order = rank_order(pts)
    assert order[:2].tolist() == [0, 2]  # ties between the two extremes keep index order
    assert order[2:].tolist() == [3, 1, 4]
    seen = {tuple(rank_order(pts, rng=np.random.default_rng(s))[:2]) for s in range(20)}
    assert seen == {(0, 2), (2, 0)}  # random tie-break, both ways
    a = rank_order(pts, rng=np.random.default_rng(7))
    b = rank_order(pts, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_hypervolume_2d_hand_made() -> None:
    # Non-dominated (1,5),(2,3),(4,1) w.r.t. (6,6): 5*1 + 4*2 + 2*2 = 17; dominated points add 0.
    assert hypervolume(POINTS, [6, 6]) == pytest.approx(17.0)
    assert hypervolume([[1, 1]], [3, 3]) == pytest.approx(4.0)
    # A point not strictly better than the reference in every objective adds nothing.
    assert hypervolume([[1, 6], [7, 0]], [6, 6]) == 0.0
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def test_hypervolume_with_modes() -> None:
    # accuracy 0.9 (max) at 0.2 mJ (min), reference (0.0 acc, 1.0 mJ): 0.9 * 0.8.
    hv = hypervolume([[0.9, 0.2]], [0.0, 1.0], modes=["max", "min"])
    assert hv == pytest.approx(0.72)


def test_hypervolume_3d_hand_made() -> None:
    # Two 2x1x1 boxes overlapping in a unit cube: 2 + 2 - 1.
    assert hypervolume([[0, 1, 1], [1, 0, 1]], [2, 2, 2]) == pytest.approx(3.0)
    assert hypervolume([[1, 1, 1]], [2, 2, 2]) == pytest.approx(1.0)


def _inclusion_exclusion(pts: np.ndarray, ref: np.ndarray) -> float:
    """Independent exact hypervolume: sum over subsets of the joint-dominated box volume."""
    total = 0.0
    for r in range(1, len(pts) + 1):
        for subset in itertools.combinations(range(len(pts)), r):
            corner = pts[list(subset)].max(axis=0)
            total += (-1) ** (r + 1) * float(np.prod(np.clip(ref - corner, 0, None)))
    return total


@pytest.mark.parametrize(("n", "k", "seed"), [(9, 2, 0), (9, 3, 1), (8, 4, 2)])
def test_hypervolume_matches_inclusion_exclusion(n: int, k: int, seed: int) -> None:
    pts = np.random.default_rng(seed).random((n, k))
    ref = np.ones(k)
    assert hypervolume(pts, ref) == pytest.approx(_inclusion_exclusion(pts, ref), rel=1e-12)


def test_hypervolume_rejects_bad_reference() -> None:
    with pytest.raises(ValueError, match="reference has 3"):
        hypervolume([[1.0, 2.0]], [3.0, 3.0, 3.0])
    with pytest.raises(ValueError, match="must be finite"):
        hypervolume([[1.0, 2.0]], [np.inf, 3.0])


def test_hv_contribution_order_puts_the_point_covering_most_volume_first() -> None:
    """One front (minimisation) of five points: (0.5, 0.5) alone fills the gap between the
    two crowded pairs, so removing it loses the most volume; of each crowded pair the inner
    point adds least. Crowding would put both extremes first instead."""
    import numpy as np

    from snnsearch.search.pareto import hv_contribution_order, rank_order

    front = np.array([[0.0, 1.0], [0.05, 0.95], [0.5, 0.5], [0.95, 0.05], [1.0, 0.0]])
    order = hv_contribution_order(front)
    assert order[0] == 2
    assert set(order[-2:]) == {1, 3}
    # within rank_order the front's order is the contribution order; a dominated point is last.
    pts = np.vstack([front, [[0.9, 0.9]]])
    ranked = rank_order(pts, tiebreak="hvc")
    assert ranked[0] == 2 and ranked[-1] == 5
    assert rank_order(pts, tiebreak="crowding")[0] in (0, 4)
