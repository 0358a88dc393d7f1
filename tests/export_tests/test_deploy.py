"""``fixed: {deploy: nir}``: the preflight refuses a space with any choice NIR cannot hold, with
one line naming the key and the fix, before Ray starts; the shipped NIR space passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from snnsearch.spaces.deploy import check_deploy
from snnsearch.spaces.space import load_space, parse_space

ROOT = Path(__file__).resolve().parents[2]
NIR_SPACE = ROOT / "search_spaces" / "mnist_nir.yaml"


def _space(fixed: dict, space: dict) -> object:
    return parse_space({"trainable": "classify", "fixed": {"deploy": "nir", **fixed},
                        "space": space}, source="s.yaml")


def test_the_shipped_nir_space_is_exportable_by_construction() -> None:
    check_deploy(load_space(NIR_SPACE))


@pytest.mark.parametrize(("fixed", "space", "expected"), [
    ({"pool": "avg"}, {"model": {"categorical": ["fc", "spikformer"]}},
     "space.model: spikformer cannot be exported"),
    ({"pool": "avg"}, {"neuron": {"categorical": ["lif", "ilif"]}},
     "space.neuron: ilif cannot be exported"),
    ({}, {"model": {"categorical": ["fc", "csnn"]}}, "default.pool: max cannot be exported"),
    ({"pool": "max"}, {"lr": {"float": [1e-4, 1e-2]}}, "fixed.pool: max cannot be exported"),
    ({"pool": "avg", "deploy": "loihi"}, {"lr": {"float": [1e-4, 1e-2]}},
     "fixed.deploy: 'loihi' is no deploy target"),
])
def test_a_choice_nir_cannot_hold_is_one_line(fixed: dict, space: dict, expected: str) -> None:
    with pytest.raises(ValueError) as err:
        check_deploy(_space(fixed, space))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_fc_only_spaces_need_no_pool() -> None:
    check_deploy(_space({}, {"model": {"categorical": ["fc", "fc_ann"]}}))


def test_the_sweep_cli_refuses_before_ray(tmp_path: Path) -> None:
    data = yaml.safe_load(NIR_SPACE.read_text())
    data["space"]["neuron"] = {"categorical": ["lif", "ilif"], "when": {"model": ["fc", "csnn"]}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    done = subprocess.run(
        [sys.executable, str(ROOT / "sweeps" / "mnist.py"), "--space", str(bad), "--storage",
         str(tmp_path / "runs"), "--name", "x", "--mlflow-uri", f"sqlite:///{tmp_path}/m.db"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "ilif cannot be exported" in done.stderr
    assert not (tmp_path / "runs" / "x").exists()
