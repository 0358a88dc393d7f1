"""Security rules checked on the code itself: YAML only through ``safe_load``, checkpoints only
through ``torch.load(weights_only=True)`` (a pickled payload is refused, not run), no credentials
committed, and no password travelling inside an MLflow URI (it would be logged as a param)."""

from __future__ import annotations

import ast
import pickle
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CODE_DIRS = ("snnsearch", "sweeps", "bench", "tests")


def _python_files() -> list[Path]:
    return [p for d in CODE_DIRS for p in (REPO / d).rglob("*.py") if "__pycache__" not in p.parts]


def _calls(path: Path, owner: str, name: str) -> list[ast.Call]:
    """Calls spelled ``owner.name(...)`` in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute) and n.func.attr == name
            and isinstance(n.func.value, ast.Name) and n.func.value.id == owner]


def test_yaml_is_only_read_with_safe_load() -> None:
    unsafe = [f"{p.relative_to(REPO)}:{c.lineno}" for p in _python_files()
              for name in ("load", "load_all", "unsafe_load", "full_load")
              for c in _calls(p, "yaml", name)]
    assert unsafe == [], f"use yaml.safe_load: {unsafe}"


def test_torch_load_always_sets_weights_only() -> None:
    def safe(call: ast.Call) -> bool:
        return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                   and k.value.value is True for k in call.keywords)

    unsafe = [f"{p.relative_to(REPO)}:{c.lineno}" for p in _python_files()
              for c in _calls(p, "torch", "load") if not safe(c)]
    assert unsafe == [], f"torch.load without weights_only=True: {unsafe}"


class _Payload:
    """Pickles into a call that would create a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (Path.touch, (self.marker,))


def test_a_checkpoint_carrying_code_is_refused_not_run(tmp_path: Path) -> None:
    from snnsearch.training.checkpoint import STATE_FILE, load_checkpoint

    marker = tmp_path / "code_ran"
    (tmp_path / STATE_FILE).write_bytes(pickle.dumps({"model": _Payload(marker)}, protocol=2))
    with pytest.raises(ValueError) as info:
        load_checkpoint(tmp_path)
    assert not marker.exists()
    assert str(tmp_path / STATE_FILE) in str(info.value)


_CREDENTIAL = re.compile(
    r"AKIA[0-9A-Z]{16}"                       # AWS access key id
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"    # PEM private keys
    r"|gh[pousr]_[A-Za-z0-9]{36}"             # GitHub tokens
    r"|[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"{}$]+@"  # user:password@ in a URL
)


def _repository_files() -> list[Path]:
    """Files git would commit (tracked plus untracked-but-not-ignored)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
            capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / f for f in listed if (REPO / f).is_file()]


def test_no_credentials_in_the_repository() -> None:
    found = []
    for path in _repository_files():
        if path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(REPO)}: {m.group(0)[:12]}..." for m in
                  _CREDENTIAL.finditer(text)]
    assert found == []
    ignored = (REPO / "docker" / ".gitignore").read_text().split()
    assert "secrets/" in ignored and ".env" in ignored


def test_a_password_in_the_mlflow_uri_is_refused_before_it_is_logged() -> None:
    from snnsearch.tuning.settings import normalize_tracking_uri

    uri = "http://alice:" + "s3cret@mlflow.internal:5000"  # split: the repo scan above
    with pytest.raises(ValueError) as info:
        normalize_tracking_uri(uri)
    assert "s3cret" not in str(info.value)
    assert "MLFLOW_TRACKING_PASSWORD" in str(info.value)
