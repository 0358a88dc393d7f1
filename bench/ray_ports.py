"""Which address each Ray port listens on, for a head started the documented way.

Starts ``ray start --head --block`` (token auth, free ports, a private temp dir) in its own
process group, waits for the job API, lists the listening TCP sockets of that process group with
``ss -ltnp``, prints them as a Markdown table and stops the head through its process group
(never ``ray stop``: that would kill every Ray on the machine).

    python bench/ray_ports.py        # --node-ip-address 127.0.0.1 (docs/cluster.md)
    python bench/ray_ports.py --node-ip-address 10.0.0.5 --dashboard-host 10.0.0.5

Linux only (``ss``, ``/proc``).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from snnsearch.testing.sweeps import free_port  # noqa: E402


def _group_pids(pgid: int) -> dict[int, str]:
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) == pgid:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                out[int(proc.name)] = cmd
        except (OSError, ProcessLookupError):
            continue
    return out


def _role(cmd: str) -> str:
    roles = (("gcs_server", "GCS"), ("raylet", "raylet"), ("DashboardAgent", "dashboard agent"),
             ("RuntimeEnvAgent", "runtime-env agent"), ("dashboard.py", "dashboard + job API"),
             ("log_monitor", "log monitor"), ("client.server", "Ray client server"),
             ("monitor.py", "autoscaler monitor"), ("default_worker", "worker"))
    for key, role in roles:
        if key in cmd:
            return role
    return cmd.split()[0].rsplit("/", 1)[-1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--node-ip-address", default="127.0.0.1")
    p.add_argument("--dashboard-host", default="127.0.0.1")
    args = p.parse_args()
    temp = Path(f"/tmp/snn_ports_{secrets.token_hex(3)}")  # short: socket paths <= 107 bytes
    dashboard = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = ["ray", "start", "--head", "--block", "--temp-dir", str(temp), "--num-cpus", "1",
           "--node-ip-address", args.node_ip_address, "--dashboard-host", args.dashboard_host,
           "--port", str(free_port()), "--dashboard-port", str(dashboard)]
    head = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(["ray", "job", "list", "--address", f"http://127.0.0.1:{dashboard}"],
                             env=env, capture_output=True, check=False).returncode:
            if time.monotonic() > deadline or head.poll() is not None:
                print("head did not come up", file=sys.stderr)
                return 1
            time.sleep(1)
        time.sleep(3)  # agents bind a little after the job API answers
        pids = _group_pids(head.pid)
        listing = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        rows = []
        for line in listing.splitlines():
            found = [int(x) for x in re.findall(r"pid=(\d+)", line)]
            owner = next((pid for pid in found if pid in pids), None)
            if owner is not None:
                local = line.split()[3]
                rows.append((_role(pids[owner]), local))
        version = subprocess.run(["ray", "--version"], capture_output=True,
                                 text=True).stdout.split()[-1]
        print(f"`{' '.join(cmd[:2] + ['--head'] + cmd[8:12])}` (ray {version}, "
              f"{time.strftime('%Y-%m-%d')})\n")
        print("| process | listens on |\n| --- | --- |")
        for role, local in sorted(set(rows)):
            print(f"| {role} | `{local}` |")
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        time.sleep(2)
        for pid in _group_pids(head.pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
