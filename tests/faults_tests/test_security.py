"""Security rules checked on the code itself: YAML only through ``safe_load``, checkpoints only
through ``torch.load(weights_only=True)``, no pickle/``allow_pickle`` loader anywhere (a pickled
payload in a checkpoint or a GT ``.npz`` is refused, not run), no credentials
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


# Loaders that run code embedded in the data they read. ``module.function`` spelled in a call.
_UNSAFE_LOADERS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
    ("cloudpickle", "load"), ("cloudpickle", "loads"), ("dill", "load"), ("dill", "loads"),
    ("joblib", "load"), ("marshal", "load"), ("marshal", "loads"), ("shelve", "open"),
    ("pd", "read_pickle"), ("pandas", "read_pickle"),
}
# (file, enclosing function): reviewed exceptions, each with the reason it cannot run code from
# data a user hands us. None today; MO-ASHA's save/restore writes JSON.
_REVIEWED: set[tuple[str, str]] = set()


def _unsafe_calls(path: Path) -> list[tuple[int, str, str]]:
    """(line, call, enclosing function) of every code-running load in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            is_def = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            name = child.name if is_def else func
            if isinstance(child, ast.Call):
                call = _describe(child)
                if call:
                    found.append((child.lineno, call, name))
            if isinstance(child, ast.ImportFrom) and child.module in {"pickle", "cloudpickle",
                                                                      "dill", "marshal"}:
                bad = [a.name for a in child.names if "load" in a.name or a.name == "Unpickler"]
                if bad:
                    found.append((child.lineno, f"from {child.module} import {bad[0]}", name))
            visit(child, name)

    visit(tree, "<module>")
    return found


def _describe(call: ast.Call) -> str | None:
    """``owner.attr`` if the call is a code-running loader, else None."""
    if any(k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant)
                                            and k.value.value is False) for k in call.keywords):
        return "...(allow_pickle=...)"
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if (func.value.id, func.attr) in _UNSAFE_LOADERS:
            return f"{func.value.id}.{func.attr}"
    return None


def test_no_code_running_loaders_in_the_code() -> None:
    """No ``pickle.load``, ``allow_pickle=True``, ``read_pickle``...: data never runs code."""
    # Tests may round-trip objects they pickled themselves; the shipped code may not load any.
    shipped = [p for p in _python_files() if p.relative_to(REPO).parts[0] != "tests"]
    found = [f"{p.relative_to(REPO)}:{line}: {call} in {func}"
             for p in shipped for line, call, func in _unsafe_calls(p)
             if (str(p.relative_to(REPO)), func) not in _REVIEWED]
    assert found == []


def test_the_loader_scan_finds_what_it_is_meant_to_find(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import pickle, numpy as np\n"
                      "def f(p):\n    return pickle.load(open(p, 'rb'))\n"
                      "x = np.load('a.npz', allow_pickle=True)\n"
                      "y = np.load('a.npz', allow_pickle=False)\n"
                      "from pickle import loads\n")
    calls = [c for _, c, _ in _unsafe_calls(sample)]
    assert calls == ["pickle.load", "...(allow_pickle=...)", "from pickle import loads"]


class _Payload:
    """Pickles into a call that would create a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (Path.touch, (self.marker,))


def test_a_gt_depth_file_carrying_code_is_refused_not_run(tmp_path: Path) -> None:
    """An ``.npz`` whose object array is a pickle that would run code (the old loader used
    ``allow_pickle=True`` and ran it)."""
    import numpy as np

    from snnsearch.depth.data.gt import load_gt_depths

    marker = tmp_path / "code_ran"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    np.savez(tmp_path / "gt_depths.npz", data=payload)
    with pytest.raises(ValueError) as info:
        load_gt_depths(tmp_path / "gt_depths.npz")
    assert not marker.exists()
    message = str(info.value)
    assert str(tmp_path / "gt_depths.npz") in message and "export_gt_depths" in message
    assert "\n" not in message


def test_ragged_gt_depths_round_trip_without_pickle(tmp_path: Path) -> None:
    import numpy as np

    from snnsearch.depth.data.gt import load_gt_depths, save_gt_depths
    from snnsearch.depth.data.kitti import SplitItem

    maps = [np.ones((3, 4), np.float32), np.full((2, 5), 2.0, np.float32)]
    items = [SplitItem("2011_09_26/2011_09_26_drive_0001_sync", f) for f in (1, 2)]
    path = save_gt_depths(tmp_path / "gt.npz", maps, items=items)
    with np.load(path, allow_pickle=False) as f:  # nothing in it needs pickle
        assert all(f[k].dtype.kind in "fU" for k in f.files)  # floats, and the frame ids
    loaded = load_gt_depths(path)
    assert [m.shape for m in loaded] == [(3, 4), (2, 5)] and loaded[1][0, 0] == 2.0


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
    from snnsearch.sweep.settings import normalize_tracking_uri

    uri = "http://alice:" + "s3cret@mlflow.internal:5000"  # split: the repo scan above
    with pytest.raises(ValueError) as info:
        normalize_tracking_uri(uri)
    assert "s3cret" not in str(info.value)
    assert "MLFLOW_TRACKING_PASSWORD" in str(info.value)


# Ray entry points that unpickle files of a sweep directory without a signature check:
# ``ExperimentAnalysis`` (cloudpickled trial records in ``experiment_state-*.json``), a
# ``ResultGrid`` built from one, ``Result.from_path`` and ``Trial.get_pickled_error``
# (``error.pkl``).
_RAY_STORAGE_UNPICKLERS = ("ExperimentAnalysis", "from_path", "get_pickled_error",
                           "_loads_with_cloudpickle")


def test_shipped_code_never_calls_rays_storage_unpicklers() -> None:
    """Report, evaluate and warm-start read the signed trial table and JSON only
    (docs/reliability.md, "Nothing in a sweep directory runs code")."""
    shipped = [p for p in _python_files() if p.relative_to(REPO).parts[0] != "tests"]
    found = []
    for path in shipped:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            name = (node.id if isinstance(node, ast.Name) else
                    node.attr if isinstance(node, ast.Attribute) else
                    None if not isinstance(node, ast.alias) else node.name)
            if name in _RAY_STORAGE_UNPICKLERS:
                found.append(f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}: {name}")
    assert found == []
