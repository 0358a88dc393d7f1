"""Per-trial ``error.pkl`` files are never unpickled by the driver: Ray 2.60's ``ResultGrid``
(built inside ``Tuner.fit``) loads ``<trial>/error.pkl`` from the storage for every errored
trial, at the end of every sweep and of ``--repeats``; ``state_hmac.TextErrorsOnly`` makes it
read ``error.txt`` instead. Here a writer of the storage swaps each error pickle for a payload
right after Ray wrote it; the sweep and its repeats finish, the payloads never run, and the
trial tables carry the real error text."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from _crafted import payload_bytes

from snnsearch.sweep.cli import main
from snnsearch.testing.sweeps import QUADRATIC_SPACE


def _space(tmp_path: Path) -> Path:
    data = yaml.safe_load(QUADRATIC_SPACE.read_text())
    data["space"] = {"x": data["space"]["x"], "fail_epoch": {"categorical": [-1, 2]}}
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.ray
@pytest.mark.slow
def test_error_pickles_of_the_sweep_and_its_repeats_are_never_loaded(
    ray_local: None, tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from ray.tune.experiment import trial as ray_trial

    from snnsearch.sweep import repeats

    markers = {"search": tmp_path / "ran_search", "repeats": tmp_path / "ran_repeats"}
    original = ray_trial.Trial.handle_error

    def swapped(self: ray_trial.Trial, exc: Exception | None = None) -> None:
        original(self, exc)
        role = "repeats" if self.storage.experiment_dir_name == "repeats" else "search"
        for folder in {self.local_path, self.storage.trial_fs_path}:
            (Path(folder) / "error.pkl").parent.mkdir(parents=True, exist_ok=True)
            (Path(folder) / "error.pkl").write_bytes(payload_bytes(markers[role]))
        self.run_metadata.pickled_error_filename = "error.pkl"

    monkeypatch.setattr(ray_trial.Trial, "handle_error", swapped)
    plain = repeats.repeat_points
    monkeypatch.setattr(repeats, "repeat_points", lambda configs, *, seed, repeats: [
        {**p, "fail_epoch": 1} for p in plain(configs, seed=seed, repeats=repeats)])
    assert main("quadratic", [
        "--space", str(_space(tmp_path)), "--storage", str(tmp_path), "--name", "errs",
        "--mlflow-uri", mlflow_uri, "--sampler", "random", "--seed", "3", "--samples", "4",
        "--max-epochs", "3", "--grace", "3", "--concurrency", "2",
        "--repeats", "1", "--repeat-top", "1"]) == 0
    capsys.readouterr()
    table = pd.read_parquet(tmp_path / "errs" / "trials.parquet")
    assert set(table["status"]) == {"completed", "errored"}  # the run exercised both
    failed = pd.concat([table[table["status"] == "errored"],
                        pd.read_parquet(tmp_path / "errs" / "repeats.parquet")])
    assert len(failed) >= 2 and (failed["status"] == "errored").all()
    assert failed["error"].str.contains("QuadraticError: deliberate failure").all()
    assert not markers["search"].exists()
    assert not markers["repeats"].exists()
