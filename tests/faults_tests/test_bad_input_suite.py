"""Bad input through the real CLIs (``python sweeps/<task>.py ...``): every case of
``_bad_inputs.cases`` exits 2 with exactly one ``error: ...`` line on stderr (plus the
``warning:`` lines the case expects, no other) naming the file or flag and the fix, no
traceback, and nothing new in the case folder (storage, MLflow store).

A fresh Python start plus the CLI's imports costs ≈1-3 s a case on 2 loaded cores (KITTI cases
import torch), which dominated the suite. So each case runs as a forked copy of a warm
interpreter that runs the same script as ``__main__`` in its own process (``_case_runner.py``:
own cwd, argv, stdout/stderr and exit status; it refuses to start if preloading printed
anything, so stderr is exact). ``BAD_INPUT_SUBPROCESS=1`` runs one fresh interpreter per case
instead. Two cases run at a time.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _bad_inputs import Case, cases, copy_tree_listing

from snnsearch.testing.sweeps import free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKERS = 2
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


class _Runner:
    """A warm interpreter that forks one process per case (``_case_runner.py``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_case_runner.py")], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert json.loads(ready) == {"ready": True}, ready

    def run(self, argv: list[str], cwd: Path) -> dict[str, Any]:
        out = cwd.parent / f"{cwd.name}.out"  # beside the case folder: its listing is compared
        out.mkdir()
        request = {"argv": argv, "cwd": str(cwd), "out": str(out)}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        rc = json.loads(self.proc.stdout.readline())["rc"]
        return {"rc": rc, "stdout": (out / "stdout").read_text(),
                "stderr": (out / "stderr").read_text()}

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=60)


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    return env


def _run(case: Case, tmp: Path, paths: dict[str, Path], runners: queue.Queue | None
         ) -> dict[str, Any]:
    tmp.mkdir(parents=True)
    if case.setup is not None:
        case.setup(tmp, paths)
    before = copy_tree_listing(tmp)
    argv = [sys.executable, *_argv(case, tmp, paths["data"])]
    if runners is None:
        proc = subprocess.run(argv, cwd=tmp, env=_env(), capture_output=True, text=True,
                              timeout=180, check=False)
        result = {"rc": proc.returncode, "stderr": proc.stderr, "stdout": proc.stdout}
    else:
        runner = runners.get()
        try:
            result = runner.run(argv[1:], tmp)
        finally:
            runners.put(runner)
    return {**result, "before": before, "after": copy_tree_listing(tmp), "tmp": tmp}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path,
             shared_data: Path) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("bad_input")
    paths = {"data": mnist_root, "shared": shared_data}
    only = os.environ.get("BAD_INPUT_CASES")  # comma-separated ids: rerun a few while editing
    chosen = [c for c in CASES if not only or c.id in only.split(",")]
    # BAD_INPUT_SUBPROCESS=1: a fresh `python sweeps/<task>.py` per case (slower; the same
    # process image as the forked runner, see _case_runner.py)
    fresh = os.environ.get("BAD_INPUT_SUBPROCESS") == "1"
    runners: queue.Queue | None = None
    if not fresh:
        runners = queue.Queue()
        for _ in range(WORKERS):
            runners.put(_Runner(_env()))
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures = {c.id: pool.submit(_run, c, base / c.id, paths, runners) for c in chosen}
            results = {k: f.result() for k, f in futures.items()}
    finally:
        while runners is not None and not runners.empty():
            runners.get().close()
    report = os.environ.get("BAD_INPUT_REPORT")  # a file: "id<TAB>error line" per case
    if report:
        Path(report).write_text("".join(
            f"{k}\t{r['rc']}\t{r['stderr'].strip().replace(str(r['tmp']), '{tmp}')}\n"
            for k, r in results.items()))
    return results


def test_the_table_has_at_least_60_cases() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    case: Case, outcomes: dict[str, dict[str, Any]]
) -> None:
    if case.id not in outcomes:
        pytest.skip("not in BAD_INPUT_CASES")
    out = outcomes[case.id]
    tmp = out["tmp"]
    assert out["stdout"].count("\n") <= 1, out["stdout"][-2000:]  # at most the "sweep ..." line
    lines = out["stderr"].strip().splitlines()
    warnings = [ln for ln in lines if ln.startswith("warning: ")]
    lines = [ln for ln in lines if not ln.startswith("warning: ")]
    assert out["rc"] == 2, (out["stdout"][-2000:], out["stderr"][-3000:])
    assert len(lines) == 1, out["stderr"][-3000:]
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in out["stderr"]
    for part in case.expect:
        assert part.format(tmp=tmp) in line, line
    assert len(warnings) == len(case.warns), warnings  # exactly the expected warnings
    for warning, parts in zip(warnings, case.warns, strict=True):
        assert all(part in warning for part in parts), warning
    assert out["after"] == out["before"]  # nothing created: no storage, no MLflow store
    assert not (tmp / "code_ran").exists()  # no pickled payload was ever loaded
