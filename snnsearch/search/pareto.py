"""Pareto utilities: objective parsing, non-dominated sorting, crowding distance, hypervolume
and anytime hypervolume (hard constraints: :mod:`snnsearch.search.constraints`).

Pure NumPy so that schedulers, searchers and reports share one definition of "better".
Every function works in *minimisation* space; :func:`as_minimization` turns raw metric columns
with their ``min``/``max`` modes into that space (maximised columns are negated, NaN becomes
``+inf`` so a broken trial is never preferred).

References:
    Deb et al. 2002, "A fast and elitist multiobjective genetic algorithm: NSGA-II" (fast
    non-dominated sort, crowding distance). While et al. 2006, "A faster algorithm for
    calculating hypervolume" (HSO slicing, used for N-D hypervolume below).

Why by hand: Optuna 5 has non-domination ranks and hypervolume only in private modules
(``optuna.study._multi_objective``, ``optuna._hypervolume``) that may change without notice;
Ray Tune has neither. The algorithms are short, and the tests check them on hand-made vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Mode = Literal["min", "max"]
Objective = tuple[str, Mode]

__all__ = [
    "Objective",
    "as_minimization",
    "TIEBREAKS",
    "crowding_distance",
    "epsilon_net_order",
    "hv_contribution_order",
    "hypervolume",
    "hypervolume_curve",
    "non_dominated_sort",
    "non_domination_rank",
    "pareto_mask",
    "parse_objectives",
    "rank_order",
]


def parse_objectives(spec: str | Sequence[Sequence[str]]) -> list[Objective]:
    """Parse ``"val_acc:max,energy_mj:min"`` (the CLI form) or pairs into objectives.

    Args:
        spec: Comma-separated ``name:mode`` items, or an iterable of ``(name, mode)`` pairs.

    Returns:
        List of ``(metric, mode)`` with mode ``"min"`` or ``"max"``; order is preserved.

    Raises:
        ValueError: on an empty spec, a missing or unknown mode, or a repeated metric.
    """
    if isinstance(spec, str):
        items = [s.strip() for s in spec.split(",") if s.strip()]
        pairs = []
        for item in items:
            name, sep, mode = item.rpartition(":")
            if not sep or not name:
                raise ValueError(
                    f"objective {item!r} lacks a mode: write it as 'metric:min' or 'metric:max'"
                )
            pairs.append((name.strip(), mode.strip()))
    else:
        pairs = [tuple(p) for p in spec]  # type: ignore[misc]
    if not pairs:
        raise ValueError("no objectives given: pass e.g. 'val_acc:max,energy_mj:min'")
    out: list[Objective] = []
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"objective {pair!r} must be a (metric, mode) pair")
        name, mode = pair
        if mode not in ("min", "max"):
            raise ValueError(f"objective {name!r} has mode {mode!r}: use 'min' or 'max'")
        if any(name == seen for seen, _ in out):
            raise ValueError(f"objective {name!r} is listed twice: list each metric once")
        out.append((str(name), mode))  # type: ignore[arg-type]
    return out


def as_minimization(values: ArrayLike, modes: Sequence[str]) -> np.ndarray:
    """Return a float copy of ``values`` (n, k) with ``max`` columns negated, and every row
    that holds a NaN set to +inf on *every* objective.

    A NaN in one column only (a diverged accuracy) must not leave the row's other values in play:
    with the lowest energy such a row would be non-dominated and MO-ASHA would promote it, so a
    point with any missing objective ranks last on all of them.

    Args:
        values: Raw objective values, one row per point, one column per objective.
        modes: ``"min"``/``"max"`` per column.
    """
    arr = np.array(values, dtype=float, ndmin=2, copy=True)
    if arr.shape[1] != len(modes):
        raise ValueError(f"values have {arr.shape[1]} columns but {len(modes)} modes were given")
    for j, mode in enumerate(modes):
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode!r} for column {j}: use 'min' or 'max'")
        if mode == "max":
            arr[:, j] = -arr[:, j]
    arr[np.isnan(arr).any(axis=1)] = np.inf
    return arr


def _as_points(points: ArrayLike) -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    if arr.ndim != 2:
        raise ValueError(
            f"points must be a 2-D array (n_points, n_objectives), got shape {arr.shape}"
        )
    return arr


def _domination_matrix(pts: np.ndarray) -> np.ndarray:
    """``D[i, j]`` is True when point i dominates point j (<= everywhere, < somewhere)."""
    le = np.all(pts[:, None, :] <= pts[None, :, :], axis=2)
    lt = np.any(pts[:, None, :] < pts[None, :, :], axis=2)
    return le & lt


def non_domination_rank(points: ArrayLike) -> np.ndarray:
    """Front index of every point (0 = non-dominated), by Deb's peeling on a domination matrix.

    Args:
        points: (n, k) array in minimisation space.

    Returns:
        Integer array of length n. Identical points share a front.
    """
    pts = _as_points(points)
    n = pts.shape[0]
    ranks = np.full(n, -1, dtype=int)
    if n == 0:
        return ranks
    dom = _domination_matrix(pts)
    dominated_by = dom.sum(axis=0)
    front = 0
    current = np.flatnonzero(dominated_by == 0)
    while current.size:
        ranks[current] = front
        # Removing the current front lowers the count of every point it dominated.
        dominated_by = dominated_by - dom[current].sum(axis=0)
        dominated_by[ranks >= 0] = -1
        current = np.flatnonzero(dominated_by == 0)
        front += 1
    return ranks


def non_dominated_sort(points: ArrayLike) -> list[np.ndarray]:
    """Split point indices into Pareto fronts, best front first.

    Args:
        points: (n, k) array in minimisation space.

    Returns:
        List of index arrays; ``fronts[0]`` is the non-dominated set.
    """
    ranks = non_domination_rank(points)
    return [np.flatnonzero(ranks == r) for r in range(int(ranks.max(initial=-1)) + 1)]


def pareto_mask(points: ArrayLike) -> np.ndarray:
    """Boolean mask of the non-dominated points (minimisation space)."""
    return non_domination_rank(points) == 0


def crowding_distance(points: ArrayLike) -> np.ndarray:
    """NSGA-II crowding distance of the points of one front.

    Each objective adds the normalised gap between a point's two neighbours; the extreme points of
    every objective get ``inf`` so the ends of the front are always kept. Objectives with zero or
    non-finite range add nothing (they cannot separate the points). Identical points share
    one distance.

    Args:
        points: (n, k) array in minimisation space, normally a single front.
    """
    pts = _as_points(points)
    if pts.shape[0] == 0:
        return np.zeros(0)
    # Duplicates get one shared distance; otherwise their sort order would split them.
    uniq, inverse = np.unique(pts, axis=0, return_inverse=True)
    return _crowding_unique(uniq)[inverse.reshape(-1)]


def _crowding_unique(pts: np.ndarray) -> np.ndarray:
    n, k = pts.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(pts[:, j], kind="stable")
        col = pts[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if not np.isfinite(span) or span <= 0:
            continue
        gaps = (col[2:] - col[:-2]) / span
        gaps[~np.isfinite(gaps)] = 0.0
        dist[order[1:-1]] += gaps
    return dist


TIEBREAKS = ("crowding", "epsnet", "hvc")


def hv_contribution_order(points: ArrayLike) -> np.ndarray:
    """Order of the points of one front by exclusive hypervolume contribution, largest first.

    Promotion by hypervolume contribution (SMS-EMOA's selection, Beume et al. 2007): the point
    whose removal loses the most dominated volume goes first. Objectives are scaled to [0, 1]
    over the given points and the reference sits at 2.0 in each (one range beyond the worst
    point: a reference close to the front, 1.1, gives its extremes almost no volume and would
    stop the most accurate trial of a rung), so the extremes get a finite contribution that
    grows with the gap to their neighbour, not crowding's infinite distance that always keeps
    both extremes first.
    """
    pts = _as_points(points)
    n = pts.shape[0]
    if n <= 1:
        return np.arange(n, dtype=int)
    finite = np.where(np.isfinite(pts), pts, np.nan)
    lo, hi = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
    span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)
    scaled = np.nan_to_num((finite - np.nan_to_num(lo)) / span, nan=2.0)
    ref = np.full(pts.shape[1], 2.0)
    if pts.shape[1] == 2 and np.all(scaled < ref):
        # Two objectives: sorted by the first, a front point's exclusive box spans to its
        # right neighbour in x and up to its left neighbour in y (O(n log n) instead of n
        # hypervolumes; rungs of a long sweep hold thousands of vectors).
        order = np.lexsort((scaled[:, 1], scaled[:, 0]))
        xs, ys = scaled[order, 0], scaled[order, 1]
        right = np.append(xs[1:], ref[0])
        up = np.insert(ys[:-1], 0, ref[1])
        contribution = np.empty(n)
        contribution[order] = np.maximum(right - xs, 0.0) * np.maximum(up - ys, 0.0)
        return np.argsort(-contribution, kind="stable")
    total = _hv_slices(scaled[np.all(scaled < ref, axis=1)], ref)
    contribution = np.empty(n)
    for i in range(n):
        rest = np.delete(scaled, i, axis=0)
        contribution[i] = total - _hv_slices(rest[np.all(rest < ref, axis=1)], ref)
    return np.argsort(-contribution, kind="stable")


def epsilon_net_order(points: ArrayLike, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """Greedy epsilon-net (farthest-point) order of the points of one front, best first.

    Syne Tune's MOASHA tie-break (``compute_epsilon_net``, after Clarkson 2005): start at a
    random point, then repeatedly take the point whose distance to the nearest already-taken
    point is largest, so any prefix of the order covers the front evenly. Distances are taken
    after scaling every objective to [0, 1] over the given points (Syne Tune uses raw values,
    which lets the objective with the largest units, here mJ vs accuracy, decide alone).

    Args:
        points: (n, k) array in minimisation space, normally one front.
        rng: picks the seed point; None starts at index 0.

    Returns:
        Permutation of ``range(n)``.
    """
    pts = _as_points(points)
    n = pts.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    finite = np.where(np.isfinite(pts), pts, np.nan)
    lo, hi = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
    span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)
    scaled = np.nan_to_num((finite - np.nan_to_num(lo)) / span, nan=2.0)
    first = int(rng.integers(n)) if rng is not None else 0
    order = [first]
    nearest = np.linalg.norm(scaled - scaled[first], axis=1)
    nearest[first] = -1.0
    for _ in range(n - 1):
        nxt = int(np.argmax(nearest))
        order.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(scaled - scaled[nxt], axis=1))
        nearest[order] = -1.0
    return np.asarray(order, dtype=int)


def rank_order(
    points: ArrayLike, *, rng: np.random.Generator | None = None, tiebreak: str = "crowding"
) -> np.ndarray:
    """Total order of points, best first: front index, then a within-front order, then random.

    This is the MO-ASHA ranking. Within a front, ``tiebreak="crowding"`` puts larger NSGA-II
    crowding distance first (extremes kept, crowded middles thinned); ``"epsnet"`` uses
    :func:`epsilon_net_order` (Syne Tune's MOASHA), ``"hvc"`` larger exclusive hypervolume
    contribution first (:func:`hv_contribution_order`). The last key breaks exact ties (duplicates,
    two extreme points with infinite crowding) with ``rng`` so no trial is favoured by arrival
    order; without ``rng`` ties keep index order.

    Args:
        points: (n, k) array in minimisation space.
        rng: Generator owned by the caller (seeded), or None for a deterministic index order.
        tiebreak: ``"crowding"``, ``"epsnet"`` or ``"hvc"``.

    Returns:
        Permutation of ``range(n)``.
    """
    if tiebreak not in TIEBREAKS:
        raise ValueError(f"tiebreak {tiebreak!r}: use one of {', '.join(TIEBREAKS)}")
    pts = _as_points(points)
    n = pts.shape[0]
    ranks = non_domination_rank(pts)
    within = np.zeros(n)
    for front in range(int(ranks.max(initial=-1)) + 1):
        idx = np.flatnonzero(ranks == front)
        if tiebreak == "crowding":
            within[idx] = -crowding_distance(pts[idx])
        elif tiebreak == "hvc":
            within[idx[hv_contribution_order(pts[idx])]] = np.arange(idx.size)
        else:
            within[idx[epsilon_net_order(pts[idx], rng=rng)]] = np.arange(idx.size)
    noise = np.asarray(rng.random(n)) if rng is not None else np.arange(n, dtype=float)
    # np.lexsort sorts by the last key first.
    return np.lexsort((noise, within, ranks))


def _hv2d(pts: np.ndarray, ref: np.ndarray) -> float:
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    best_y = ref[1]
    area = 0.0
    for x, y in pts[order]:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def _hv_slices(pts: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume by slicing along the last objective (HSO)."""
    k = pts.shape[1]
    if pts.shape[0] == 0:
        return 0.0
    if k == 1:
        return float(ref[0] - pts[:, 0].min())
    if k == 2:
        return _hv2d(pts, ref)
    pts = pts[pareto_mask(pts)]
    order = np.argsort(pts[:, -1], kind="stable")
    pts = pts[order]
    volume = 0.0
    for i in range(pts.shape[0]):
        upper = pts[i + 1, -1] if i + 1 < pts.shape[0] else ref[-1]
        depth = upper - pts[i, -1]
        if depth > 0:
            volume += depth * _hv_slices(pts[: i + 1, :-1], ref[:-1])
    return float(volume)


def hypervolume(
    points: ArrayLike, reference: ArrayLike, *, modes: Sequence[str] | None = None
) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (exact, any dimension).

    Points that do not strictly improve on the reference in every objective add nothing. 2-D
    uses an O(n log n) sweep; higher dimensions slice along the last objective, which is
    exponential in k but exact and fast for the fronts of a sweep (tens of points, k <= 4).

    Args:
        points: (n, k) objective values.
        reference: k values; a point must be better than it in every objective to count.
        modes: If given, ``points`` and ``reference`` are raw metrics in these directions and
            are converted with :func:`as_minimization`; if None they are already minimised.
    """
    pts = _as_points(points) if np.size(points) else np.zeros((0, np.size(reference)))
    ref = np.asarray(reference, dtype=float).reshape(1, -1)
    if modes is not None:
        pts = as_minimization(pts, modes) if pts.size else pts
        ref = as_minimization(ref, modes)
    ref = ref[0]
    if pts.shape[1] != ref.size:
        raise ValueError(f"points have {pts.shape[1]} objectives but the reference has {ref.size}")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference point {ref.tolist()} must be finite")
    pts = pts[np.all(pts < ref, axis=1)]
    return _hv_slices(pts, ref)


# --- Constraints (``--constraint energy_mj<=0.5``) -------------------------------------------


def hypervolume_curve(
    points: ArrayLike,
    reference: ArrayLike,
    *,
    modes: Sequence[str] | None = None,
    at: Sequence[int] | None = None,
) -> np.ndarray:
    """Anytime hypervolume: the hypervolume of the first ``i`` points for every ``i`` in ``at``.

    ``points`` are in the order they were observed (trial results, trials); the curve is
    non-decreasing. Used by the replay benchmark (hypervolume against trial-epochs) and suitable
    for a report's "hypervolume over trials" plot.

    Args:
        points: (n, k) objective values in observation order.
        reference: as for :func:`hypervolume`.
        modes: as for :func:`hypervolume` (None: already minimised).
        at: prefix lengths (default ``1..n``); values above n use all points.

    Returns:
        Float array, one hypervolume per entry of ``at``.
    """
    pts = _as_points(points) if np.size(points) else np.zeros((0, np.size(reference)))
    ref = np.asarray(reference, dtype=float).reshape(1, -1)
    if modes is not None:
        pts = as_minimization(pts, modes) if pts.size else pts
        ref = as_minimization(ref, modes)
    steps = list(range(1, pts.shape[0] + 1)) if at is None else [int(i) for i in at]
    # One pass keeping the running front: a point dominated by (or equal to) a point of the
    # front leaves the hypervolume as it was, so it is recomputed only when the front changes
    # (a long sweep's 3,000 results change it a few dozen times; per-prefix recomputation was
    # quadratic and took minutes).
    wanted = sorted({min(max(i, 0), pts.shape[0]) for i in steps})
    by_prefix: dict[int, float] = {0: 0.0}
    front = np.zeros((0, pts.shape[1]))
    value = 0.0
    for n in range(1, (wanted[-1] if wanted else 0) + 1):
        point = pts[n - 1]
        if not np.any(np.all(front <= point, axis=1)):
            front = np.vstack([front[~np.all(point <= front, axis=1)], point])
            value = hypervolume(front, ref[0])
        by_prefix[n] = value
    return np.array([by_prefix[min(max(i, 0), pts.shape[0])] for i in steps], dtype=float)
