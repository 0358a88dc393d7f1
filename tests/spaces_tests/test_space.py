"""Search-space files: every shipped space validates and samples; bad spaces fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from snnsearch.spaces.space import SpaceError, load_space, parse_space
from snnsearch.sweep.tasks import check_config_keys
from snnsearch.testing.sweeps import QUADRATIC_SPACE

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "search_spaces").glob("*.yaml"))


def test_all_three_tasks_ship_a_space() -> None:
    assert {p.stem for p in SHIPPED} >= {"mnist", "fashion", "depth"}


@pytest.mark.parametrize("path", [*SHIPPED, QUADRATIC_SPACE], ids=lambda p: p.stem)
def test_shipped_space_validates_and_samples(path: Path) -> None:
    space = load_space(path)
    check_config_keys(space)  # every key is a field of the trainable's config dataclass
    for seed in range(20):
        config = space.sample(seed)
        for param in space.params:
            assert (param.name in config) == param.active(config), (param.name, config)
            if param.name in config and param.kind != "categorical":
                assert param.low <= config[param.name] <= param.high
        if "D" in config and "neuron" in config:
            assert config["neuron"] == "ilif"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_space_covers_the_issue_knobs(path: Path) -> None:
    space = load_space(path)
    names = {p.name for p in space.params}
    if space.fixed.get("deploy") == "nir":  # exportable only: no I-LIF (D), no ANN twins
        assert {"T", "tau", "lr"} <= names and "D" not in names
    else:
        assert {"T", "D", "tau", "pretrain", "lr"} <= names
    assert names & {"depth", "conv_blocks", "hidden_layers", "blocks"}


def test_space_round_trips_to_a_plain_dict() -> None:
    space = load_space(REPO / "search_spaces" / "mnist.yaml")
    dumped = yaml.safe_dump(space.to_dict(), sort_keys=False)
    again = parse_space(yaml.safe_load(dumped), source=space.source)
    assert again == space


def test_conditional_parameters_reach_optuna() -> None:
    space = load_space(REPO / "search_spaces" / "mnist.yaml")
    configs = [space.sample(seed) for seed in range(40)]
    assert any("D" in c for c in configs) and any("D" not in c for c in configs)
    assert all(("conv_blocks" in c) == (c["model"] in ("csnn", "csnn_ann")) for c in configs)
    # ANN twins are arms: no spiking knobs are sampled for them (they would mean nothing).
    anns = [c for c in configs if c["model"].endswith("_ann")]
    assert anns and not any({"neuron", "T", "tau", "D", "pretrain"} & set(c) for c in anns)


def test_with_fixed_replaces_a_searched_parameter() -> None:
    space = load_space(QUADRATIC_SPACE).with_fixed({"neuron": "ilif"})
    config = space.sample(3)
    assert config["neuron"] == "ilif" and "D" in config and "tau" in config


GOOD = {"trainable": "classify", "space": {"T": {"int": [1, 4]}}}


def _bad(**changes: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(GOOD, sort_keys=False))
    for key, value in changes.items():
        if key == "param":
            data["space"].update(value)  # type: ignore[arg-type]
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        (_bad(colour="red"), "colour", "unknown key"),
        (_bad(param={"lr": {"float": [0.1, 0.1]}}), "space.lr.float", "empty range"),
        (_bad(param={"lr": {"float": [0.5, 0.1]}}), "space.lr.float", "empty range"),
        (_bad(param={"tau": {"float": [1.0, 4.0]}}), "space.tau.float", "tau must be > 1"),
        (_bad(param={"tau": {"categorical": [0.5, 2.0]}}), "space.tau.categorical",
         "tau must be > 1"),
        (_bad(fixed={"tau": 1}), "fixed.tau", "tau must be > 1"),
        (_bad(param={"T": {"int": [0, 4]}}), "space.T.int", "T must be >= 1"),
        (_bad(param={"lr": {"float": [0.1, 1.0], "scale": "log"}}), "space.lr.scale",
         "unknown key"),
        (_bad(param={"m": {"categorical": []}}), "space.m.categorical", "empty"),
        (_bad(param={"m": {"int": [1, 2], "float": [1.0, 2.0]}}), "space.m", "exactly one"),
        (_bad(param={"D": {"int": [2, 4], "when": {"neuron": "ilif"}}}), "space.D.when.neuron",
         "must name a fixed key"),
        (_bad(param={"n": {"categorical": ["a"]}, "D": {"int": [2, 4], "when": {"n": "b"}}}),
         "space.D.when.n", "not among its choices"),
        (_bad(param={"lr": {"float": [0.0, 1.0], "log": True}}), "space.lr.float", "log scale"),
        (_bad(tune={"mode": "maximise"}), "tune.mode", "'min' or 'max'"),
        (_bad(tune={"sampler_opts": {}}), "tune.sampler_opts", "unknown key"),
        (_bad(space={}), "space", "empty"),
    ],
)
def test_bad_space_fails_in_one_line_naming_file_and_key(
    tmp_path: Path, data: dict, key: str, words: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SpaceError) as err:
        load_space(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: "), message
    assert words in message


def test_missing_file_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="no such search-space file"):
        load_space(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("space: {T: [1, 2\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space(broken)


def test_unknown_trainable_key_is_caught_before_any_trial(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "fixed": {"learning_rate": 0.1}}))
    with pytest.raises(ValueError, match=r"typo.yaml: learning_rate: not a ClassifyConfig key"):
        check_config_keys(load_space(path))
