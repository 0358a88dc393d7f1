from __future__ import annotations

import pytest

from snnsearch.classify.config import ClassifyConfig


def test_from_dict_coerces_types() -> None:
    cfg = ClassifyConfig.from_dict({"T": 2.0, "tau": 3, "figures": "false", "train_subset": None})
    assert cfg.T == 2 and isinstance(cfg.tau, float) and cfg.figures is False


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tau": 1.0}, "tau must be a float > 1"),
        ({"tau": 0.5}, "tau must be a float > 1"),
        ({"T": 0}, "T must be >= 1"),
        ({"D": 0, "neuron": "ilif"}, "D must be an integer >= 1"),
        ({"neuron": "hh"}, "unknown neuron 'hh'"),
        ({"tua": 2.0}, "unknown config key 'tua' \\(did you mean 'tau'\\?\\)"),
        ({"T": "four"}, "config key 'T' must be int"),
        ({"T": 2.5}, "config key 'T' must be int"),
        ({"lr": 0.0}, "lr must be > 0"),
    ],
)
def test_bad_config_is_one_line_error(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        ClassifyConfig.from_dict(values)
    assert "\n" not in str(info.value)
