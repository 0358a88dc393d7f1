"""``--repeats`` and ``--warm-start`` end to end on the shared local Ray with the testing
trainable (its objective does not depend on the seed, so a repeat must reproduce the search's
value exactly): the top configurations re-run with new seeds under the same MLflow parent, the
report shows them, and a second sweep's Optuna study starts from the first one's trials."""

from __future__ import annotations

import glob
import pickle
from pathlib import Path

import pandas as pd
import pytest
import yaml

from snnsearch.sweep.cli import main
from snnsearch.testing.sweeps import QUADRATIC_SPACE, sweep_runs
from snnsearch.tracking import mlflow_logging as M


def _args(tmp_path: Path, uri: str, name: str, samples: int) -> list[str]:
    # max_epochs == grace: ASHA stops nobody, so every search trial is "completed".
    return ["--space", str(QUADRATIC_SPACE), "--storage", str(tmp_path), "--mlflow-uri", uri,
            "--sampler", "random", "--seed", "1", "--samples", str(samples), "--max-epochs", "2",
            "--grace", "2", "--concurrency", "2", "--name", name]


@pytest.mark.ray
@pytest.mark.slow
def test_repeats_confirm_the_top_configs_and_warm_start_seeds_the_next_study(
    ray_local: None, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    assert main("quadratic", [*_args(tmp_path, mlflow_uri, "first", 5),
                              "--repeats", "2", "--repeat-top", "2"]) == 0
    out = capsys.readouterr().out
    assert "repeats: 2 configurations x 2 seeds" in out
    first = tmp_path / "first"
    search = pd.read_parquet(first / "trials.parquet").sort_values("best_val_acc",
                                                                   ascending=False)
    repeats = pd.read_parquet(first / "repeats.parquet")
    assert len(repeats) == 4 and (repeats["status"] == "completed").all()
    assert sorted(repeats["config_rank"]) == [1, 1, 2, 2]
    assert sorted(repeats["config/seed"]) == [2, 2, 3, 3]  # new seeds, never the search's 1
    for rank in (1, 2):  # the same configuration, and (seed-free objective) the same value
        want = search.iloc[rank - 1]
        got = repeats[repeats["config_rank"] == rank]
        assert (got["config/x"] == want["config/x"]).all()
        assert got["best_val_acc"].tolist() == pytest.approx([want["best_val_acc"]] * 2)
    html = (first / "report.html").read_text()
    assert "Confirmation over seeds" in html and "± 0" in html
    parent_id = (first / M.PARENT_ID_FILE).read_text().strip()
    _, children = sweep_runs(mlflow_uri, parent_run_id=parent_id)
    roles = sorted(c.data.tags[M.ROLE_TAG] for c in children)
    assert roles == ["repeat"] * 4 + ["trial"] * 5  # the repeat Tuner deleted no search child

    assert main("quadratic", [*_args(tmp_path, mlflow_uri, "second", 2),
                              "--warm-start", str(first)]) == 0
    assert "warm start: 5 completed trials" in capsys.readouterr().out
    (state,) = glob.glob(str(tmp_path / "second" / "searcher-state-*.pkl"))
    with open(state, "rb") as fh:  # Ray's own searcher checkpoint, written by this test
        study = pickle.load(fh)["_ot_study"]
    warm = [t for t in study.trials if "warm_start" in t.user_attrs]
    assert len(warm) == 5 and len(study.trials) == 7
    assert sorted(t.value for t in warm) == pytest.approx(sorted(search["last/val_acc"]))


def test_warm_start_from_another_space_is_one_line_and_creates_nothing(
    tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:  # refused before Ray starts: no Ray fixture needed
    old = tmp_path / "old"
    old.mkdir()
    (old / "sweep.json").write_text('{"metric": "val_acc", "mode": "max"}')
    data = yaml.safe_load(QUADRATIC_SPACE.read_text())
    del data["space"]["y"]
    (old / "space.yaml").write_text(yaml.safe_dump(data))
    pd.DataFrame({"trial_id": ["a"], "status": ["completed"], "config/x": [1.0],
                  "last/val_acc": [0.5]}).to_parquet(old / "trials.parquet")
    assert main("quadratic", [*_args(tmp_path, mlflow_uri, "new", 2), "--warm-start",
                              str(old)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only here: y; only there: -" in err
    assert not (tmp_path / "new").exists()
    assert main("quadratic", [*_args(tmp_path, mlflow_uri, "new", 2), "--warm-start",
                              str(tmp_path / "nowhere")]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
