"""Grid spaces (search_spaces/report/*.yaml): they load, expand to the report's cells × seeds,
run each (cell, seed) exactly once through Optuna's GridSampler, and reject bad grids in one line."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import optuna
import pytest
import yaml

from snnsearch.spaces.grid import CELL_KEY, strip_cell
from snnsearch.spaces.space import SpaceError, load_space, parse_space
from snnsearch.sweep.run import stored_space
from snnsearch.sweep.settings import resolve_settings, trial_fixed
from snnsearch.sweep.tasks import check_config_keys

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "search_spaces" / "report"

# The report's configurations: cell -> (distinguishing config values, expected numbers).
TABLES = {
    "table1": {
        "fc_single_tau2": ({"model": "fc", "hidden_layers": 0, "tau": 2.0}, {"test_acc": 0.869}),
        "fc_multi_tau2": ({"model": "fc", "hidden_layers": 1, "tau": 2.0}, {"test_acc": 0.9417}),
        "fc_multi_tau4": ({"model": "fc", "hidden_layers": 1, "tau": 4.0}, {"test_acc": 0.9295}),
        "csnn_tau4": ({"model": "csnn", "conv_blocks": 2, "tau": 4.0}, {"test_acc": 0.9948}),
        "csnn_more_conv": ({"model": "csnn", "conv_blocks": 3, "tau": 4.0},
                           {"test_acc": 0.9952}),
    },
    "table2": {
        "csnn": ({"model": "csnn"}, {"test_acc": 0.930}),
        "ann_transformer": ({"model": "transformer_ann"}, {"test_acc": 0.940}),
        "spikformer": ({"model": "spikformer"}, {"test_acc": 0.935}),
    },
    "table3": {
        "resnet18_ann": ({"encoder": "resnet", "pretrain": "none"},
                         {"abs_rel": 0.134, "a1": 0.842, "energy_mj": 259.5}),
        "spiking_resnet18_t20_pretrained": ({"encoder": "ms_resnet", "neuron": "lif", "T": 20},
                                            {"abs_rel": 0.134, "energy_mj": 45.1}),
        "ms_resnet18_ilif_t2_d4": ({"neuron": "ilif", "T": 2, "D": 4, "pretrain": "none"},
                                   {"abs_rel": 0.142, "rmse": 5.348, "train_time_h": 13}),
        "ms_resnet18_ilif_t2_d4_pretrained": ({"neuron": "ilif", "D": 4}, {"abs_rel": 0.135}),
        "ms_resnet18_ilif_t2_d8_pretrained": ({"neuron": "ilif", "D": 8},
                                              {"abs_rel": 0.133, "a3": 0.978}),
    },
}
TASKS = {"table1": "mnist", "table2": "fashion", "table3": "depth"}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_grid_space_expands_to_the_report_cells(table: str) -> None:
    space = load_space(REPORT / f"{table}.yaml")
    check_config_keys(space)  # every cell key is a field of the trainable's config
    assert space.grid is not None and space.report is not None and not space.params
    assert len(space.grid.seeds) >= 3
    settings = resolve_settings(space, task=TASKS[table], overrides={})
    assert settings.samples == len(TABLES[table]) * len(space.grid.seeds)
    assert settings.sampler == "grid" and settings.scheduler == "fifo" and not settings.silence
    configs = space.grid.expand(trial_fixed(space, settings))
    assert len(configs) == settings.samples
    for name, (values, expected) in TABLES[table].items():
        mine = [c for c in configs if c[CELL_KEY] == name]
        assert sorted(c["seed"] for c in mine) == list(space.grid.seeds)
        for config in mine:
            assert {k: config[k] for k in values} == values, (name, config)
            assert 1 <= config["epochs"] <= settings.max_epochs
        for metric, value in expected.items():
            assert space.grid.cell(name).expected[metric] == pytest.approx(value)


def test_smoke_shrinks_every_cell_but_keeps_the_cells() -> None:
    space = load_space(REPORT / "table1.yaml")
    settings = resolve_settings(space, task="mnist", overrides={}, smoke=True)
    smoke = space.for_smoke()
    configs = smoke.grid.expand(trial_fixed(smoke, settings))
    assert settings.samples == len(configs) == 5  # one seed per cell
    assert all(c["epochs"] == 1 and c["train_subset"] == 512 for c in configs)
    # A smoke override (channels 8) wins over the cell's width; the cell's own keys stay.
    csnn = next(c for c in configs if c[CELL_KEY] == "csnn_more_conv")
    assert csnn["channels"] == 8 and csnn["conv_blocks"] == 3


def test_cell_epochs_are_capped_by_max_epochs() -> None:
    space = load_space(REPORT / "table1.yaml")
    def epochs(max_epochs: int) -> dict[str, int]:
        settings = resolve_settings(space, task="mnist", overrides={"max_epochs": max_epochs})
        return {c[CELL_KEY]: c["epochs"] for c in space.grid.expand(trial_fixed(space, settings))}

    assert epochs(10)["fc_single_tau2"] == 3 and epochs(10)["csnn_tau4"] == 2  # the cells' own
    assert epochs(1)["fc_single_tau2"] == 1 and epochs(1)["csnn_tau4"] == 1  # capped


def test_grid_sampler_runs_each_cell_and_seed_once() -> None:
    space = load_space(REPORT / "table2.yaml")
    settings = resolve_settings(space, task="fashion", overrides={})
    fixed = trial_fixed(space, settings)
    func = space.with_fixed(fixed).define_by_run()
    sampler = optuna.samplers.GridSampler(seed=0, **settings.sampler_options)
    study = optuna.create_study(sampler=sampler)
    seen = []
    for _ in range(settings.samples):
        trial = study.ask()
        constants = func(trial)
        seen.append((trial.params[CELL_KEY], trial.params["seed"]))
        assert constants == {k: v for k, v in space.grid.cell(seen[-1][0]).config.items()}
        # GridSampler stops the study after the last point, which only an optimize() loop
        # expects (Ray's OptunaSearch logs it as a warning).
        with contextlib.suppress(RuntimeError):
            study.tell(trial, 0.5)
    assert sorted(seen) == sorted((c.name, s) for c in space.grid.cells for s in space.grid.seeds)


def test_grid_flags_that_do_not_apply_are_refused() -> None:
    space = load_space(REPORT / "table1.yaml")
    with pytest.raises(ValueError, match="--samples does not apply to a grid space"):
        resolve_settings(space, task="mnist", overrides={"samples": 3})
    plain = load_space(REPO / "search_spaces" / "mnist.yaml")
    with pytest.raises(ValueError, match="--sampler grid needs a grid space"):
        resolve_settings(plain, task="mnist", overrides={"sampler": "grid"})


def test_strip_cell_hides_the_label_from_the_trainable() -> None:
    seen: list[dict] = []
    strip_cell(seen.append)({CELL_KEY: "a", "lr": 0.1})
    assert seen == [{"lr": 0.1}]


def test_grid_space_round_trips() -> None:
    space = load_space(REPORT / "table3.yaml")
    again = parse_space(yaml.safe_load(yaml.safe_dump(space.to_dict(), sort_keys=False)),
                        source=space.source)
    assert again == space


@pytest.mark.parametrize("smoke", [False, True])
@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_space_a_grid_sweep_stores_parses_again(table: str, smoke: bool) -> None:
    """The report parses space.yaml again; it once held the run's fixed values (--max-epochs,
    smoke's pretrain) next to the cells' own, which the parser refuses ("also under 'fixed'")."""
    space = load_space(REPORT / f"{table}.yaml")
    settings = resolve_settings(space, task=TASKS[table], overrides={"smoke": smoke})
    if smoke:
        space = space.for_smoke()
    stored = stored_space(space, trial_fixed(space, settings))
    again = parse_space(yaml.safe_load(yaml.safe_dump(stored.to_dict(), sort_keys=False)),
                        source="space.yaml")
    assert again.grid == space.grid and again.report == space.report


GOOD = {"trainable": "classify", "fixed": {"dataset": "mnist"},
        "grid": {"seeds": [0, 1], "cells": [
            {"name": "a", "config": {"model": "fc"}, "expected": {"test_acc": 0.9}},
            {"name": "b", "config": {"model": "csnn"}}]},
        "report": {"title": "t", "metrics": {"test_acc": {"column": "last/test_acc"}}}}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"space": {"lr": {"float": [0.1, 1.0]}}}, "exactly one of 'space'"),
        ({"grid": {"seeds": [], "cells": [{"name": "a"}]}}, "grid.seeds"),
        ({"grid": {"seeds": [0, 0], "cells": [{"name": "a"}]}}, "duplicate seeds"),
        ({"grid": {"cells": [{"name": "a"}, {"name": "a", "config": {"T": 2}}]}},
         "duplicate cell name"),
        ({"grid": {"cells": [{"name": "a", "config": {"T": 2}}, {"name": "b", "config": {"T": 2}}]}},
         "same config as cell 'a'"),
        ({"grid": {"cells": [{"name": "a", "config": {"dataset": "fashion"}}]}},
         "also under 'fixed'"),
        ({"grid": {"cells": [{"name": "a", "config": {"seed": 3}}]}}, "set by the grid"),
        ({"grid": {"cells": [{"name": "a", "config": {"T": [1, 2]}}]}}, "expected a scalar"),
        ({"grid": {"cells": [{"name": "a b"}]}}, "cell names use"),
        ({"grid": {"cells": [{"name": "a", "expected": {"top5": 0.9}}]}},
         "expected.top5: not a report metric"),
        ({"report": {"metrics": {"test_acc": {"column": "x", "mode": "up"}}}}, "mode"),
        ({"smoke": {"seeds": ["x"]}}, "smoke.seeds"),
    ],
)
def test_bad_grid_fails_in_one_line(patch: dict, message: str) -> None:
    data = {**GOOD, **patch}
    with pytest.raises(SpaceError, match=message) as err:
        parse_space(data, source="g.yaml")
    assert "\n" not in str(err.value) and str(err.value).startswith("g.yaml: ")


def test_a_grid_sweeps_trials_reach_optuna_complete(caplog: pytest.LogCaptureFixture) -> None:
    """Cells train their own epochs (fewer than --max-epochs): each is COMPLETE for Optuna, not
    PRUNED, and the last one is told without GridSampler's study.stop() error."""
    from optuna.trial import TrialState

    from snnsearch.search.searchers import build_searcher

    space = load_space(REPORT / "table2.yaml")
    settings = resolve_settings(space, task="fashion", overrides={})
    fixed = trial_fixed(space, settings)
    searcher = build_searcher(
        space=space.with_fixed(fixed).define_by_run(), sampler="grid", seed=0,
        metric="val_acc", mode="max", options=settings.sampler_options,
        max_t=settings.max_epochs)
    ray_logger = logging.getLogger("ray")  # does not propagate: Ray's own tell() warns there
    ray_logger.addHandler(caplog.handler)
    try:
        for i in range(settings.samples):
            config = {**fixed, **searcher.suggest(f"t{i}")}
            assert config["epochs"] < settings.max_epochs
            result = {"epoch": config["epochs"], "training_iteration": config["epochs"],
                      "val_acc": 0.5, "config": config}
            searcher.on_trial_complete(f"t{i}", result=result)
    finally:
        ray_logger.removeHandler(caplog.handler)
    states = [t.state for t in searcher._ot_study.get_trials(deepcopy=False)]
    assert states == [TrialState.COMPLETE] * settings.samples
    assert "refused" not in caplog.text and "Study.stop" not in caplog.text
