"""The commands the CLI prints (``mlflow ui``, the one after a Ctrl-C before Ray is up) are
real shell commands: pasted into a shell they give back the exact argv, spaces and all."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from snnsearch.sweep import cli

REPO = Path(__file__).resolve().parents[2]


def _shell_argv(command: str) -> list[str]:
    """The argv a POSIX shell builds from ``command`` (its own word splitting and quoting)."""
    out = subprocess.run(["sh", "-c", f"set -- {command}; printf '%s\\0' \"$@\""],
                         capture_output=True, check=True).stdout.decode()
    return out.split("\0")[:-1]


def test_mlflow_ui_command_survives_a_shell(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/my sweeps/it's here/mlflow.db"
    assert _shell_argv(cli.mlflow_ui_command(uri)) == ["mlflow", "ui", "--backend-store-uri", uri]


@pytest.mark.parametrize("saved", [False, True])
def test_ctrl_c_before_ray_prints_a_real_command(
    saved: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage = tmp_path / "sweeps with spaces"
    if saved:  # Ray had written its state: the command resumes it
        (storage / "run_1").mkdir(parents=True)
        (storage / "run_1" / "tuner.pkl").write_bytes(b"x")
    space = tmp_path / "my space.yaml"
    space.write_text("trainable: snnsearch.testing.trainables:quadratic\n"
                     "space: {x: {float: [0.0, 1.0]}}\n")

    def interrupted(settings: object, space: object) -> None:
        raise KeyboardInterrupt

    import snnsearch.sweep.run as run

    monkeypatch.setattr(run, "run_sweep", interrupted)
    monkeypatch.setattr("sys.argv", [str(REPO / "sweeps" / "mnist.py")])
    argv = ["--space", str(space), "--storage", str(storage), "--mlflow-uri",
            f"sqlite:///{tmp_path}/m l.db", "--gpus-per-trial", "0"]
    argv += ["--name", "run_1"] if saved else []
    assert cli.main("mnist", argv) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "<name>" not in err and "<task>" not in err
    words = _shell_argv(err.split("with: ", 1)[1])
    assert words[:2] == ["python", str(REPO / "sweeps" / "mnist.py")]
    if saved:
        assert words[2:] == ["--storage", str(storage), "--name", "run_1", "--resume"]
    else:  # nothing to resume: the same start again, with the name it had
        name = words[-1]
        assert words[2:] == [*argv, "--name", name] and name.startswith("mnist-")


def test_resume_command_after_a_signal_survives_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snnsearch.sweep.interrupts import resume_command

    monkeypatch.setattr("sys.argv", ["sweeps/my task.py"])
    storage = str(tmp_path / "sweeps with spaces" / "it's")
    assert _shell_argv(resume_command(storage, "run_1")) == [
        "python", "sweeps/my task.py", "--storage", storage, "--name", "run_1", "--resume"]
    monkeypatch.setattr("sys.argv", ["-c"])  # started in-process, not from a script
    assert _shell_argv(resume_command(storage, "run_1", "depth"))[:2] == [
        "python", "sweeps/depth.py"]


def test_ctrl_c_during_the_checks_prints_the_same_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(settings: object, space: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("snnsearch.sweep.preflight.check_inputs", interrupted)
    monkeypatch.setattr("sys.argv", ["sweeps/mnist.py"])
    argv = ["--storage", str(tmp_path / "a b"), "--name", "x"]
    assert cli.main("mnist", argv) == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert _shell_argv(err.split("with: ", 1)[1]) == ["python", "sweeps/mnist.py", *argv]
