"""``--resume`` trusts ``sweep.json`` (data paths, MLflow URI, the trainable it imports) only
when its own signature (``sweep.json.hmac``) matches, and that signature covers the state
signatures inside it. A stored ``module:function`` trainable is imported only if it is a
registered task, this package's, or the one of the ``--space`` given now. Every refusal is one
line, exit 2, before Ray starts, and no crafted pickle or module runs."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from _crafted import one_error_line, payload_bytes

from snnsearch.storage import signing
from snnsearch.sweep import state_hmac
from snnsearch.sweep.cli import main
from snnsearch.testing.sweeps import QUADRATIC_SPACE


@pytest.fixture
def signed_sweep(tmp_path: Path, marker: Path) -> Callable[..., Path]:
    """A signed quadratic sweep (as the driver leaves it) whose ``tuner.pkl`` would run code."""
    from snnsearch.spaces.space import load_space
    from snnsearch.sweep.settings import resolve_settings

    def make(trainable: str | None = None) -> Path:
        space = load_space(QUADRATIC_SPACE)
        settings = resolve_settings(space, task="quadratic", overrides={
            "storage": str(tmp_path / "storage"), "name": "stored",
            "mlflow_uri": f"sqlite:///{tmp_path / 'm.db'}"})
        stored = {**settings.to_dict(), "space": space.to_dict()}
        if trainable:
            stored["space"]["trainable"] = trainable
        sweep = tmp_path / "storage" / "stored"
        signing.write_settings(str(sweep), stored, name="stored")
        (sweep / "tuner.pkl").write_bytes(payload_bytes(marker))
        state_hmac.sign(str(sweep), name="stored")
        return sweep

    return make


def _resume(tmp_path: Path, *extra: str) -> int:
    return main("quadratic", ["--resume", "--storage", str(tmp_path / "storage"),
                              "--name", "stored", *extra], default_space=QUADRATIC_SPACE)


def test_a_changed_sweep_json_is_refused_before_its_paths_are_used(
    signed_sweep: Callable[..., Path], tmp_path: Path, marker: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    sweep = signed_sweep()
    settings = json.loads((sweep / "sweep.json").read_text())
    (sweep / "sweep.json").write_text(json.dumps(
        {**settings, "data_dir": "/elsewhere", "mlflow_uri": "http://attacker:5000"}))
    assert _resume(tmp_path) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{sweep / 'sweep.json'} does not match its signature" in line
    assert "state_hmac" in line  # the fix: re-sign a sweep you trust
    assert not marker.exists()


def test_a_changed_signature_list_is_refused(signed_sweep: Callable[..., Path], tmp_path: Path,
                                             marker: Path, capsys: pytest.CaptureFixture) -> None:
    """The state signatures live in ``sweep.json``; editing them (here: a planted searcher state
    listed with a digest made under another key) breaks ``sweep.json``'s own signature."""
    sweep = signed_sweep()
    planted = payload_bytes(marker)
    (sweep / "searcher-state-x.pkl").write_bytes(planted)
    settings = json.loads((sweep / "sweep.json").read_text())
    settings[signing.HMAC_KEY]["searcher-state-x.pkl"] = [
        signing.digest(b"guessed key", "stored", "searcher-state-x.pkl", planted)]
    (sweep / "sweep.json").write_text(json.dumps(settings, indent=2))
    assert _resume(tmp_path) == 2
    assert "sweep.json does not match its signature" in one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_a_missing_sweep_signature_is_refused(signed_sweep: Callable[..., Path], tmp_path: Path,
                                              marker: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = signed_sweep()
    (sweep / signing.SETTINGS_SIGNATURE).unlink()
    assert _resume(tmp_path) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no state signatures" in line and signing.SETTINGS_SIGNATURE in line
    assert not marker.exists()


def test_a_stored_trainable_of_no_registered_task_is_not_imported(
    signed_sweep: Callable[..., Path], tmp_path: Path, marker: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    """Even a correctly signed sweep.json may not make ``--resume`` import a foreign module."""
    module = tmp_path / "mods" / "evil_trainable.py"
    module.parent.mkdir()
    module.write_text(textwrap.dedent(f"""
        import os
        os.mkdir({str(marker)!r})
        def run(config):
            pass
    """))
    monkeypatch.syspath_prepend(str(module.parent))
    signed_sweep(trainable="evil_trainable:run")
    assert _resume(tmp_path) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'evil_trainable:run' is no registered task" in line and "--space" in line
    assert not marker.exists()


def test_resigning_a_trusted_sweep_makes_it_resumable_again(
    signed_sweep: Callable[..., Path], tmp_path: Path,
) -> None:
    """The fix the refusals print: ``python -m snnsearch.sweep.state_hmac <dir>``."""
    sweep = signed_sweep()
    settings = json.loads((sweep / "sweep.json").read_text())
    (sweep / "sweep.json").write_text(json.dumps({**settings, "samples": 3}))
    with pytest.raises(ValueError):
        state_hmac.verify(str(sweep), name="stored")
    assert state_hmac.main([str(sweep)]) == 0
    state_hmac.verify(str(sweep), name="stored")
    assert signing.read_settings(str(sweep), name="stored")["samples"] == 3
