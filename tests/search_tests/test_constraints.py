"""Hard constraints (``--constraint``): parsing, relative violations, feasible front, and the
CLI -> settings -> searcher/scheduler wiring (no Ray run)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from snnsearch.search.constraints import (
    Constraint,
    constraint_violations,
    feasible_mask,
    feasible_pareto_mask,
    parse_constraint,
    parse_constraints,
)
from snnsearch.spaces.space import load_space
from snnsearch.sweep.cli import build_parser, main
from snnsearch.sweep.settings import resolve_settings

REPO = Path(__file__).resolve().parents[2]
MNIST_SPACE = REPO / "search_spaces" / "mnist.yaml"


def test_parse_constraint_forms() -> None:
    assert parse_constraint("energy_mj<=0.5") == Constraint(metric="energy_mj", op="<=", bound=0.5)
    assert parse_constraint(" val_acc >= 0.98 ") == Constraint(
        metric="val_acc", op=">=", bound=0.98)
    assert str(parse_constraint("energy_mj <= 5e-1")) == "energy_mj<=0.5"
    for bad in ("energy_mj<0.5", "<=1", "val_acc>=high", "val_acc>=inf", "val_acc"):
        with pytest.raises(ValueError, match="is not 'metric<=number' or 'metric>=number'"):
            parse_constraint(bad)
    with pytest.raises(ValueError, match="given twice"):
        parse_constraints(["energy_mj<=0.5", "energy_mj<=0.4"])


def test_violations_are_relative_and_missing_values_violate() -> None:
    cons = parse_constraints(["energy_mj<=0.5", "val_acc>=0.98"])
    rows = [
        {"energy_mj": 0.25, "val_acc": 0.99},   # feasible
        {"energy_mj": 0.75, "val_acc": 0.99},   # 50% over the energy budget
        {"energy_mj": 0.25, "val_acc": 0.49},   # half the accuracy bound short
        {"energy_mj": math.nan},                 # unknown: infeasible
    ]
    v = constraint_violations(rows, cons)
    np.testing.assert_allclose(v[:3], [[-0.5, -0.01 / 0.98], [0.5, -0.01 / 0.98], [-0.5, 0.5]])
    assert (v[3] == 1.0).all()
    assert feasible_mask(rows, cons).tolist() == [True, False, False, False]
    assert feasible_mask(rows, ()).all()


def test_feasible_front_ignores_infeasible_points() -> None:
    values = np.array([[0.99, 0.9], [0.95, 0.3], [0.90, 0.1], [0.80, 0.2]])  # acc max, mJ min
    rows = [{"val_acc": a, "energy_mj": e} for a, e in values]
    feas = feasible_mask(rows, parse_constraints(["energy_mj<=0.5"]))
    mask = feasible_pareto_mask(values, ["max", "min"], feas)
    # The 0.9 mJ point would be on the unconstrained front; it is infeasible here.
    assert mask.tolist() == [False, True, True, False]
    assert not feasible_pareto_mask(values, ["max", "min"], np.zeros(4, bool)).any()


def _resolve(**overrides: Any) -> Any:
    return resolve_settings(load_space(MNIST_SPACE), task="mnist", overrides=overrides)


def test_cli_constraints_and_tiebreak_reach_settings_searcher_and_scheduler() -> None:
    from snnsearch.search.searchers import build_searcher
    from snnsearch.sweep.tuner import _scheduler_options

    args = vars(build_parser("mnist", MNIST_SPACE).parse_args([
        "--constraint", "energy_mj<=0.5", "--constraint", "val_acc>=0.98",
        "--moasha-tiebreak", "epsnet", "--scheduler", "moasha",
        "--objectives", "val_acc:max,energy_mj:min"]))
    overrides = {k: v for k, v in args.items() if k not in ("space", "smoke")}
    s = _resolve(**overrides)
    assert s.constraints == ("energy_mj<=0.5", "val_acc>=0.98")
    assert s.moasha_tiebreak == "epsnet" and _scheduler_options(s)["tiebreak"] == "epsnet"
    assert s.to_dict()["constraints"] == ["energy_mj<=0.5", "val_acc>=0.98"]
    searcher = build_searcher(space=lambda t: {"x": t.suggest_float("x", 0, 1)}, sampler="tpe",
                              seed=0, metric=["val_acc", "energy_mj"], mode=["max", "min"],
                              max_t=4, constraints=s.constraints)
    assert [str(c) for c in searcher._constraints] == list(s.constraints)
    assert _resolve().constraints == () and _resolve().moasha_tiebreak == "hvc"
    with pytest.raises(ValueError, match="--moasha-tiebreak 'x'"):
        _resolve(moasha_tiebreak="x")


def test_bad_constraint_exits_2_before_ray(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main("mnist", ["--constraint", "energy<0.5", "--storage", str(tmp_path / "ray"),
                          "--mlflow-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "energy<0.5" in err[0]
    assert not (tmp_path / "ray").exists() and not (tmp_path / "m.db").exists()


def test_constraints_and_tiebreak_from_the_space_file(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(MNIST_SPACE.read_text())
    data["tune"] |= {"constraints": ["energy_mj<=0.5"], "moasha_tiebreak": "epsnet"}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    s = resolve_settings(load_space(path), task="mnist", overrides={})
    assert s.constraints == ("energy_mj<=0.5",) and s.moasha_tiebreak == "epsnet"
    # The command line wins over the file.
    s = resolve_settings(load_space(path), task="mnist",
                         overrides={"constraints": ["val_acc>=0.9"]})
    assert s.constraints == ("val_acc>=0.9",)
