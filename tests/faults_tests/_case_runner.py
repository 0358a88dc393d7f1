"""Runs bad-input cases as forked copies of one warm interpreter: ``python sweeps/<task>.py``
exactly as ``python`` would run it (``runpy`` as ``__main__``, its own process, cwd, argv,
stdout/stderr files and exit status), without paying Python's start and the CLI's imports
(≈1-3 s on a loaded 2-core machine, torch for the KITTI cases) once per case.

Protocol: one JSON request per stdin line ``{"argv": [script, ...], "cwd": dir, "out": dir}``;
one JSON answer per stdout line ``{"rc": exit status}``; the case's stdout and stderr are in
``out/stdout`` and ``out/stderr``. Import-time output would be printed once here and never by
the forked cases, which a fresh process would show: the runner refuses to start if preloading
printed anything, so a case's stderr is exactly what a fresh process's would be.
"""

from __future__ import annotations

import io
import json
import os
import runpy
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout

PRELOAD = ("snnsearch.sweep.cli", "snnsearch.sweep.preflight", "snnsearch.sweep.settings",
           "snnsearch.spaces.space", "snnsearch.spaces.checks", "snnsearch.sweep.tasks",
           "snnsearch.sweep.state_hmac", "snnsearch.search.constraints",
           "snnsearch.classify.checks", "snnsearch.depth.checks", "snnsearch.depth.data.kitti",
           "snnsearch.depth.splits", "PIL.Image", "PIL.PngImagePlugin", "yaml", "numpy")


def _preload() -> None:
    import importlib

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        for name in PRELOAD:
            importlib.import_module(name)
    if out.getvalue() or err.getvalue():
        raise SystemExit(f"preloading printed output, which forked cases would not repeat: "
                         f"{(out.getvalue() + err.getvalue())[:500]}")


def _child(argv: list[str], cwd: str, out: str) -> None:
    """In the forked process: become ``python argv...`` and exit with its status."""
    code = 1
    try:
        os.chdir(cwd)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the process ends below
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))  # as `python script` sets it
        try:
            runpy.run_path(argv[0], run_name="__main__")
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if stop.code is not None and not isinstance(stop.code, int):
                print(stop.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - report it as Python would, then exit 1
            traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    _preload()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request["argv"], request["cwd"], request["out"])
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
