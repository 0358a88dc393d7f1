"""The preflight's building blocks in-process (the CLI cases are in
tests/faults_tests/test_bad_input_suite.py): md5 table, space rules, state signatures, error
grouping, and where a relative sqlite tracking URI lands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snnsearch.classify.checks import MD5
from snnsearch.spaces.checks import check_space, space_diff
from snnsearch.spaces.space import parse_space
from snnsearch.sweep import state_hmac
from snnsearch.sweep.tasks import task_gates
from snnsearch.tracking.summary import format_summary, summarize


def test_md5_table_matches_torchvision() -> None:
    from torchvision import datasets

    assert dict(datasets.MNIST.resources) == MD5["mnist"]
    assert dict(datasets.FashionMNIST.resources) == MD5["fashion"]


def test_shipped_spaces_pass_the_space_checks() -> None:
    from snnsearch.spaces.space import load_space

    root = Path(__file__).resolve().parents[2] / "search_spaces"
    files = sorted(root.rglob("*.yaml"))
    assert files
    for path in files:
        space = load_space(path)
        check_space(space, task_gates(space.trainable))
        check_space(space.with_fixed(space.smoke.get("fixed", {})), task_gates(space.trainable))


def _space(fixed: dict, space: dict):
    return parse_space({"trainable": "classify", "fixed": fixed, "space": space}, source="s.yaml")


def test_a_when_on_a_fixed_value_that_never_matches_is_refused() -> None:
    space = _space({"neuron": "lif"}, {"D": {"int": [2, 8], "when": {"neuron": "ilif"}}})
    with pytest.raises(ValueError, match=r"space.D: when neuron in \['ilif'\] can never hold"):
        check_space(space)
    # With a neuron that can be ilif it is fine:
    check_space(_space({}, {"neuron": {"categorical": ["lif", "ilif"]},
                            "D": {"int": [2, 8], "when": {"neuron": "ilif"}}}))


def test_a_when_chained_on_an_impossible_parameter_is_refused() -> None:
    space = _space({"encoder": "resnet"}, {
        "neuron": {"categorical": ["lif", "ilif"], "when": {"encoder": "ms_resnet"}},
        "D": {"int": [2, 8], "when": {"neuron": "ilif"}}})
    with pytest.raises(ValueError, match="space.neuron"):
        check_space(space)


def test_d_without_any_ilif_is_refused_even_without_when() -> None:
    space = _space({}, {"neuron": {"categorical": ["if", "lif"]}, "D": {"int": [2, 8]}})
    with pytest.raises(ValueError, match=r"space.D: D is only read by neuron in \['ilif'\]"):
        check_space(space, task_gates("classify"))


def test_a_key_under_a_when_branch_whose_neuron_never_reads_it_is_refused() -> None:
    # Before: D under when: {neuron: lif} ran and logged a D no neuron used (neuron could be
    # ilif elsewhere in the space, so the space-wide rule let it through).
    gates = task_gates("classify")
    space = _space({}, {"neuron": {"categorical": ["lif", "ilif"]},
                        "D": {"int": [2, 8], "when": {"neuron": "lif"}}})
    with pytest.raises(ValueError, match="its when allows neuron lif only"):
        check_space(space, gates)
    # A branch inherits its gate's conditions: D under tau under neuron ilif is fine...
    check_space(_space({}, {"neuron": {"categorical": ["lif", "ilif"]},
                            "tau": {"float": [1.5, 3.0], "when": {"neuron": "ilif"}},
                            "D": {"int": [2, 8], "when": {"tau": [2.0]}}}), gates)
    # ...and a model's shape key on another model's branch is refused from the same data.
    with pytest.raises(ValueError, match=r"space.channels: channels is only read by model"):
        check_space(_space({}, {"model": {"categorical": ["fc", "csnn"]},
                                "channels": {"int": [8, 32], "when": {"model": "fc"}}}), gates)
    check_space(space)  # no gates declared (a module:function trainable): nothing to judge


def test_space_diff_names_the_changed_keys() -> None:
    a = _space({"T": 2}, {"lr": {"float": [0.1, 1.0]}}).to_dict()
    b = _space({"T": 4}, {"lr": {"float": [0.1, 2.0]}}).to_dict()
    assert space_diff(a, b) == ["fixed.T", "space.lr.float"]
    assert space_diff(a, json.loads(json.dumps(a))) == []  # survives the sweep.json round trip


def test_state_signatures_verify_and_catch_tampering(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNSEARCH_STATE_KEY", "k1")
    (tmp_path / "sweep.json").write_text("{}")
    (tmp_path / "tuner.pkl").write_bytes(b"state v1")
    (tmp_path / "experiment_state-x.json").write_text("{}")
    state_hmac.sign(str(tmp_path), name="s")
    state_hmac.verify(str(tmp_path), name="s")
    (tmp_path / "tuner.pkl").write_bytes(b"state v2")  # a newer snapshot, signed: still fine
    state_hmac.sign(str(tmp_path), name="s")
    state_hmac.verify(str(tmp_path), name="s")
    (tmp_path / "tuner.pkl").write_bytes(b"state v1")  # an older snapshot of the same sweep
    state_hmac.verify(str(tmp_path), name="s")
    (tmp_path / "searcher-state-y.pkl").write_bytes(b"planted")
    with pytest.raises(ValueError, match="searcher-state-y.pkl does not match"):
        state_hmac.verify(str(tmp_path), name="s")
    (tmp_path / "searcher-state-y.pkl").unlink()
    with pytest.raises(ValueError, match="does not match"):  # the key is in the signature
        monkeypatch.setenv("SNNSEARCH_STATE_KEY", "k2")
        state_hmac.verify(str(tmp_path), name="s")
    monkeypatch.setenv("SNNSEARCH_STATE_KEY", "k1")
    with pytest.raises(ValueError):  # ... and so is the sweep name
        state_hmac.verify(str(tmp_path), name="other")


def test_the_key_defaults_to_the_ray_token_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNNSEARCH_STATE_KEY", raising=False)
    monkeypatch.delenv("SNNSEARCH_STATE_KEY_FILE", raising=False)
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    assert state_hmac.load_key() == (b"secret-token", "file:$RAY_AUTH_TOKEN_PATH")


def test_errors_are_grouped_by_their_last_line() -> None:
    rows = [{"trial_id": str(i), "status": "errored", "time_total_s": 1.0,
             "error": "FileNotFoundError: KITTI frame not found: /data/x.png"} for i in range(5)]
    rows.append({"trial_id": "9", "status": "errored", "time_total_s": 1.0,
                 "error": "ValueError: other"})
    summary = summarize(rows, metric="val_acc", mode="max", gpus_per_trial=0)
    assert summary["error_groups"] == [
        ["FileNotFoundError: KITTI frame not found: /data/x.png", 5], ["ValueError: other", 1]]
    text = format_summary(summary)
    assert text.count("KITTI frame not found") == 1
    assert "errored 5x: FileNotFoundError: KITTI frame not found: /data/x.png" in text


def test_relative_sqlite_lands_in_the_storage(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from snnsearch.sweep.settings import normalize_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert normalize_tracking_uri(None, str(tmp_path)) == f"sqlite:///{tmp_path}/mlflow.db"
    assert normalize_tracking_uri("sqlite:///runs/m.db", str(tmp_path)) == (
        f"sqlite:///{tmp_path}/runs/m.db")
    assert normalize_tracking_uri("sqlite:////abs/m.db", str(tmp_path)) == "sqlite:////abs/m.db"
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")
    with pytest.raises(ValueError, match="inside a Ray job"):
        normalize_tracking_uri("sqlite:///m.db", "s3://bucket/sweeps")


def test_relative_config_paths_are_made_absolute(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Trials run in Ray's trial folder: a relative path would name a file there."""
    from snnsearch.sweep.settings import resolve_settings, trial_fixed

    monkeypatch.chdir(tmp_path)
    space = parse_space({"trainable": "depth", "fixed": {"gt_path": "gt.npz",
                                                         "val_split": "auto"},
                         "space": {"lr": {"float": [0.1, 1.0]}}})
    settings = resolve_settings(space, task="depth", overrides={"storage": str(tmp_path),
                                                                "data_dir": "kitti"})
    fixed = trial_fixed(space, settings)
    # Split and GT files are under the data root (the depth space says splits/train_files.txt).
    assert fixed["gt_path"] == str(tmp_path / "kitti" / "gt.npz") and fixed["val_split"] == "auto"
    assert fixed["data_dir"] == str(tmp_path / "kitti")
    no_root = resolve_settings(space, task="depth", overrides={"storage": str(tmp_path)})
    assert trial_fixed(space, no_root)["gt_path"] == str(tmp_path / "gt.npz")  # under the CWD
