"""``--repeats k``: confirm the search's answer over seeds.

A search ranks configurations by one seed's validation value, and the maximum of many noisy
values is biased upwards (the winner's curse). After the search, the top ``repeat_top``
configurations (single objective: best validation value among trials that ran their full budget;
several objectives: the first ones of the Pareto front of those trials) are trained again with
``k`` new seeds (``seed + 1 .. seed + k``, never the search's own seed, so the confirmation is
independent of the selection). The repeats are a second Tuner in ``<sweep>/repeats`` whose
searcher hands out exactly these configurations (:class:`FixedConfigs`; Ray's
``BasicVariantGenerator(points_to_evaluate=...)`` insists that every key of a point is in the
param space, which conditional configurations are not), no scheduler and no stopper (every
repeat runs its full budget), logged as further children of the same MLflow parent run (role tag
``repeat``). Their rows, with ``config_rank`` (1 = the search's best) and ``seed``, are written to
``repeats.parquet``; the report shows mean ± std per configuration and the test metric measured
once per seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

if TYPE_CHECKING:
    from ray.tune import ResultGrid

    from snnsearch.sweep.settings import SweepSettings

log = logging.getLogger(__name__)
REPEATS_DIR = "repeats"
RANK_KEY = "config_rank"  # not a config key: it travels in the rows only


def select_configs(rows: Sequence[Mapping[str, Any]], *, metric: str, mode: str,
                   objectives: Sequence[tuple[str, str]], top: int) -> list[dict[str, Any]]:
    """The configurations to re-run, best first, as flat trial configs.

    Args:
        rows: the search's trial-table rows.
        metric, mode: the objective that ranks single-objective sweeps.
        objectives: with two or more, the Pareto front (sorted on the first) is used.
        top: at most this many.
    """
    done = [r for r in rows if r.get("status") == "completed"]
    if len(objectives) >= 2:
        import pandas as pd

        from snnsearch.reporting.pareto_report import pareto_front

        frame = pd.DataFrame(done)
        if frame.empty:
            return []
        front, _ = pareto_front(frame, [list(o) for o in objectives])
        chosen = front.to_dict("records")
    else:
        key = f"best_{metric}"
        scored = [r for r in done if _finite(r.get(key))]
        chosen = sorted(scored, key=lambda r: float(r[key]), reverse=mode == "max")
    return [_config(r) for r in chosen[:top]]


def run_repeats(settings: SweepSettings, results: ResultGrid,
                fit: Callable[[Sequence[dict[str, Any]]], ResultGrid]) -> list[dict[str, Any]]:
    """Selects the configurations from the search's results, runs them through ``fit`` (which
    builds and fits the repeat Tuner: ``sweep/tuner.py``) and writes ``repeats.parquet``.

    Returns:
        The repeat runs' rows with ``config_rank`` (empty if no trial ran its full budget).
    """
    from snnsearch.reporting.repeats import REPEATS_FILE
    from snnsearch.reporting.results import rows_from_results, write_table

    rows = rows_from_results(results, metric=settings.metric, mode=settings.mode)
    configs = select_configs(rows, metric=settings.metric, mode=settings.mode,
                             objectives=settings.objectives, top=settings.repeat_top)
    if not configs:
        log.warning("--repeats: no trial ran its full budget; nothing to confirm")
        return []
    points = repeat_points(configs, seed=settings.seed, repeats=settings.repeats)
    print(f"repeats: {len(configs)} configurations x {settings.repeats} seeds", flush=True)
    out = tag_rows(rows_from_results(fit(points), metric=settings.metric, mode=settings.mode),
                   configs)
    write_table(out, settings.sweep_dir, file=REPEATS_FILE)
    return out


def summary_line(settings: SweepSettings, rows: Sequence[dict[str, Any]]) -> str:
    """One console line: the best re-run configuration's mean ± std over its seeds."""
    import pandas as pd

    from snnsearch.reporting.repeats import aggregate

    agg = aggregate(pd.DataFrame(list(rows)), settings.metric, settings.mode)
    if agg.empty:
        return "  repeats: no result"
    top = agg.iloc[0]
    std = top.get(f"{settings.metric}_std")
    spread = f" ± {std:.3g}" if std is not None and not pd.isna(std) else ""
    return (f"  repeats: {len(agg)} configurations x {settings.repeats} seeds; best mean "
            f"{settings.metric} = {top[f'{settings.metric}_mean']:.4f}{spread} (search rank "
            f"{int(top['config_rank'])})")


def repeat_points(configs: Sequence[Mapping[str, Any]], *, seed: int, repeats: int
                  ) -> list[dict[str, Any]]:
    """One trial config per (configuration, new seed), configuration-major."""
    return [{**cfg, "seed": seed + j} for cfg in configs for j in range(1, repeats + 1)]


def tag_rows(rows: Sequence[dict[str, Any]], configs: Sequence[Mapping[str, Any]]
             ) -> list[dict[str, Any]]:
    """Adds ``config_rank`` (position in ``configs``, from 1) to the repeat runs' rows."""
    keys = [_identity(c) for c in configs]
    out = []
    for row in rows:
        cfg = {k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")}
        ident = _identity(cfg)
        rank = keys.index(ident) + 1 if ident in keys else None
        out.append({**row, RANK_KEY: rank})
    return out


class FixedConfigs(Searcher):
    """A Tune searcher that suggests the given configurations once each, in order.

    Args:
        points: full trial configs.
    """

    def __init__(self, points: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        self.points = [dict(p) for p in points]
        self.next = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        return True  # nothing to set: the configurations are fixed

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.next >= len(self.points):
            return Searcher.FINISHED
        self.next += 1
        return dict(self.points[self.next - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        return None

    def save(self, checkpoint_path: str) -> None:
        import json

        with open(checkpoint_path, "w") as fh:
            json.dump({"points": self.points, "next": self.next}, fh, default=str)

    def restore(self, checkpoint_path: str) -> None:
        import json

        with open(checkpoint_path) as fh:
            state = json.load(fh)
        self.points, self.next = state["points"], int(state["next"])


def _identity(cfg: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in cfg.items() if k != "seed"))


def _config(row: Mapping[str, Any]) -> dict[str, Any]:
    cfg = {}
    for key, value in row.items():
        if not key.startswith("config/") or value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            continue  # an inactive conditional parameter (pandas fills it with NaN)
        cfg[key.removeprefix("config/")] = value.item() if hasattr(value, "item") else value
    return cfg


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
