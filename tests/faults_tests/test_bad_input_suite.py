"""Bad input through the real CLIs (``python sweeps/<task>.py ...`` subprocesses): every case of
``_bad_inputs.cases`` exits 2 with exactly one stderr line, ``error: ...`` naming the file or
flag and the fix, no traceback, and nothing new in the case folder (storage, MLflow store).

Each case costs a Python start plus the CLI's imports (≈2 s on 2 cores; KITTI cases import
torch), so all cases run up front on a pool of two workers and each parametrised test reads
its own result.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _bad_inputs import Case, cases, copy_tree_listing

from snnsearch.testing.sweeps import free_port

REPO = Path(__file__).resolve().parents[2]
CASES = cases(free_port())
DEFAULTS = {"--storage": "{tmp}/storage", "--mlflow-uri": "sqlite:///{tmp}/mlflow.db",
            "--data-dir": "{data}", "--name": "case", "--gpus-per-trial": "0"}


def _argv(case: Case, tmp: Path, data: Path) -> list[str]:
    given: dict[str, Any] = {}
    flags: list[str] = []
    args = list(case.args)
    while args:
        arg = args.pop(0)
        if args and (args[0] is None or not str(args[0]).startswith("--")):
            given[arg] = args.pop(0)
        else:
            flags.append(arg)
    merged = {**DEFAULTS, **given}
    if case.task == "depth":
        merged.pop("--data-dir") if merged["--data-dir"] == "{data}" else None
    out = [str(REPO / "sweeps" / f"{case.task}.py")]
    for flag, value in merged.items():
        if value is not None:
            out += [flag, value]
    out += flags
    return [a.format(tmp=tmp, data=data) for a in out]


def _run(case: Case, tmp: Path, paths: dict[str, Path]) -> dict[str, Any]:
    tmp.mkdir(parents=True)
    if case.setup is not None:
        case.setup(tmp, paths)
    before = copy_tree_listing(tmp)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, *_argv(case, tmp, paths["data"])], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    return {"rc": proc.returncode, "stderr": proc.stderr, "stdout": proc.stdout,
            "before": before, "after": copy_tree_listing(tmp), "tmp": tmp}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path,
             shared_data: Path) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("bad_input")
    paths = {"data": mnist_root, "shared": shared_data}
    only = os.environ.get("BAD_INPUT_CASES")  # comma-separated ids: rerun a few while editing
    chosen = [c for c in CASES if not only or c.id in only.split(",")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {c.id: pool.submit(_run, c, base / c.id, paths) for c in chosen}
        results = {k: f.result() for k, f in futures.items()}
    report = os.environ.get("BAD_INPUT_REPORT")  # a file: "id<TAB>error line" per case
    if report:
        Path(report).write_text("".join(
            f"{k}\t{r['rc']}\t{r['stderr'].strip().replace(str(r['tmp']), '{tmp}')}\n"
            for k, r in results.items()))
    return results


def test_the_table_has_at_least_40_cases() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    case: Case, outcomes: dict[str, dict[str, Any]]
) -> None:
    out = outcomes[case.id]
    tmp = out["tmp"]
    lines = out["stderr"].strip().splitlines()
    assert out["rc"] == 2, (out["stdout"][-2000:], out["stderr"][-3000:])
    assert len(lines) == 1, out["stderr"][-3000:]
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in out["stderr"]
    for part in case.expect:
        assert part.format(tmp=tmp) in line, line
    assert out["after"] == out["before"]  # nothing created: no storage, no MLflow store
    assert not (tmp / "code_ran").exists()  # no pickled payload was ever loaded
