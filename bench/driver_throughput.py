"""How much does snnsearch's driver cost over bare Ray Tune, with a real MLflow server?

The same trivial trials (``--reports`` results each, a tiny checkpoint with every result, as the
real trainables do) run through four arms on one ``ray.cluster_utils.Cluster`` (a CPU head plus
``--nodes`` worker nodes, all on this machine):

- ``floor``: bare Ray Tune, ``reuse_actors=True``, no callbacks, no auto-loggers, no console
  table: what Ray itself costs;
- ``mlflow``: snnsearch (``run_sweep``: Optuna searcher, nested MLflow children, Parquet table,
  report) with a real ``mlflow server`` process over HTTP on loopback;
- ``latency``: the same through a loopback TCP proxy (a subprocess of this script) that holds
  every request ``--latency-ms`` before passing it on;
- ``restart``: the same with the server killed (SIGKILL) a third of the way into the sweep and
  restarted on the same port ``--down-s`` seconds later.

Per arm: wall time, results/s, the driver's CPU-seconds per 1,000 results (``getrusage`` of
this process: Tune's loop, callbacks and the MLflow writer thread; Ray's own daemons and the
trial workers are other processes), its RSS growth per trial, and the metric values lost (each
child run's ``val_acc`` history read back from MLflow: ``trials x reports`` expected). Ratios are
taken against the floor of the same run (a shared machine's load moves all arms alike).

Usage::

    python bench/driver_throughput.py --trials 100,1000 --concurrency 16 --out d.json
    python bench/driver_throughput.py --trials 20 --reports 3 --arms floor,mlflow  # smoke
    python bench/driver_throughput.py --trials 10000 --arms callback  # the callback alone

Never calls ``ray stop`` and never kills a process it did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
ARMS = ("floor", "mlflow", "latency", "restart")  # and "callback" alone: see callback_cost


def trivial(config: dict[str, Any]) -> None:
    """``epochs`` reports of a made-up accuracy, each with a one-file checkpoint."""
    from ray import tune

    epochs = int(config["epochs"])
    for epoch in range(1, epochs + 1):
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report({"epoch": epoch, "val_acc": float(config["x"]) * epoch / epochs},
                        checkpoint=tune.Checkpoint.from_directory(directory))


# ---- the slow network: a loopback proxy in its own process --------------------------------
def proxy_main(listen: int, upstream: int, delay_s: float) -> None:
    """Forwards 127.0.0.1:``listen`` to 127.0.0.1:``upstream`` through a line with ``delay_s``
    of latency on the way to the server: every byte arrives ``delay_s`` after it was sent, and
    bytes behind it are not held up further (a delay per chunk would also cut the bandwidth,
    which a distant server does not). Written by hand: no TCP delay tool ships with the stack."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   delay: float) -> None:
        line: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while (item := await line.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                line.put_nowait((time.monotonic() + delay, data))
        except (ConnectionError, OSError):
            pass
        finally:
            line.put_nowait(None)
            try:
                await sender
            except (ConnectionError, OSError):
                pass

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w, delay_s), pipe(server_r, client_w, 0.0))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


class Server:
    """A lean ``mlflow server`` on a fixed loopback port that this script can kill and restart
    (same port, same sqlite store)."""

    def __init__(self, workdir: Path, port: int) -> None:
        from snnsearch.testing.sweeps import MlflowServer

        self._workdir, self._port = workdir, port
        self._make = lambda: MlflowServer(workdir, artifact_root=workdir / "artifacts", port=port)
        self.proc = self._make()
        self.uri = self.proc.uri

    def kill(self) -> None:
        self.proc.stop()

    def start(self) -> None:
        self.proc = self._make()

    def stop(self) -> None:
        self.proc.stop()


# ---- measurement --------------------------------------------------------------------------
def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_s() -> float:
    """CPU-seconds all cores of this machine spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_s(pid: int | None) -> float:
    """CPU-seconds of a process and its children (the MLflow server and its workers)."""
    import psutil

    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def measure(arm: str, n: int, fn: Any, args: argparse.Namespace,
            sweep_dir: Path | None = None, server: Any = None) -> dict[str, Any]:
    server_pid = server.proc.proc.pid if server is not None and arm != "floor" else None
    server0, busy0 = _tree_cpu_s(server_pid), _machine_busy_s()
    rss0, cpu0, start = _rss_mib(), _cpu_s(), time.perf_counter()
    samples: list[tuple[int, float]] = []
    done = threading.Event()

    def sample() -> None:  # (trial folders so far, driver RSS) every 5 s
        while not done.wait(5.0):
            if sweep_dir is not None and sweep_dir.is_dir():
                count = sum(1 for e in os.scandir(sweep_dir) if e.is_dir())
                samples.append((count, _rss_mib()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        counter = fn()
    finally:
        done.set()
        sampler.join()
    wall, cpu, rss1 = time.perf_counter() - start, _cpu_s() - cpu0, _rss_mib()
    busy = _machine_busy_s() - busy0
    server_cpu = None
    if server_pid is not None:  # the restart arm's server is a new process: CPU from its start
        now_pid = server.proc.proc.pid
        server_cpu = _tree_cpu_s(now_pid) - (server0 if now_pid == server_pid else 0.0)
    lost = counter() if callable(counter) else counter
    results = n * args.reports
    return {"arm": arm, "trials": n, "results": results, "wall_s": round(wall, 1),
            "results_per_s": round(results / wall, 1),
            "driver_cpu_s_per_1k_results": round(cpu / results * 1000, 2),
            "driver_rss_mib": round(rss1, 1),
            "rss_growth_kib_per_trial": round((rss1 - rss0) * 1024 / n, 1),
            "rss_slope_kib_per_trial": _steady_slope(samples, n),
            "metrics_lost": lost, "load_avg_1m": round(os.getloadavg()[0], 1),
            "machine_busy": round(busy / wall / (os.cpu_count() or 1), 2),
            "server_cpu_s": None if server_cpu is None else round(server_cpu, 1)}


def _steady_slope(samples: list[tuple[int, float]], n: int) -> float | None:
    """Driver RSS growth per trial while the sweep runs (least squares over the samples taken
    between 20 % and 95 % of the trials started): without the imports at the start and the
    report at the end, which the end-to-end column includes."""
    xs = [(c, r) for c, r in samples if 0.2 * n <= c <= 0.95 * n]
    if len(xs) < 3 or xs[-1][0] == xs[0][0]:
        return None
    mean_c = sum(c for c, _ in xs) / len(xs)
    mean_r = sum(r for _, r in xs) / len(xs)
    cov = sum((c - mean_c) * (r - mean_r) for c, r in xs)
    var = sum((c - mean_c) ** 2 for c, _ in xs)
    return round(cov / var * 1024, 1)


def floor(n: int, args: argparse.Namespace, workdir: Path) -> None:
    from ray import tune

    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    try:
        tuner = tune.Tuner(
            tune.with_resources(trivial, {"cpu": 1}),
            param_space={"x": tune.uniform(0.0, 1.0), "epochs": args.reports},
            tune_config=tune.TuneConfig(num_samples=n, max_concurrent_trials=args.concurrency,
                                        reuse_actors=True),
            run_config=tune.RunConfig(name=f"floor_{n}", storage_path=str(workdir / "ray"),
                                      verbose=0))
        grid = tuner.fit()
    finally:
        os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)
    done = sum(1 for r in grid if (r.metrics or {}).get("training_iteration") == args.reports)
    assert done == n, f"floor: {done} of {n} trials ran all reports"


def snnsearch_sweep(n: int, args: argparse.Namespace, workdir: Path, uri: str, tag: str,
                    during: Any = None, read_uri: str | None = None) -> Any:
    """One sweep through ``run_sweep``; returns a function counting the metric values missing
    in MLflow, called by :func:`measure` after the clock stops (reading 1,000 histories back is
    not part of the sweep, and through the latency proxy it took a minute), through
    ``read_uri`` (the server itself) when given."""
    import yaml

    from snnsearch.spaces.space import load_space
    from snnsearch.sweep.run import run_sweep
    from snnsearch.sweep.settings import resolve_settings

    space_path = workdir / f"{tag}_{n}.yaml"
    space_path.write_text(yaml.safe_dump({
        "trainable": "__main__:trivial", "experiment": "driver-throughput",
        "fixed": {}, "space": {"x": {"float": [0.0, 1.0]}},
        "tune": {"metric": "val_acc", "mode": "max", "samples": n, "sampler": args.sampler,
                 "scheduler": "fifo", "max_epochs": args.reports,
                 "concurrency": args.concurrency, "cpus_per_trial": 1},
    }))
    space = load_space(space_path)
    settings = resolve_settings(space, task="throughput", overrides={
        "storage": str(workdir / "ray"), "name": f"{tag}_{n}", "mlflow_uri": uri})
    watcher = threading.Thread(target=during, daemon=True) if during else None
    if watcher:
        watcher.start()
    outcome = run_sweep(settings, space)
    if watcher:
        watcher.join()
    assert outcome.summary["counts"]["completed"] == n, outcome.text
    return lambda: count_lost(read_uri or uri, outcome.parent_run_id, n, args.reports)


def count_lost(uri: str, parent_run_id: str, n: int, reports: int) -> int:
    """Metric values (``val_acc`` points) that should be in MLflow and are not."""
    from snnsearch.testing.sweeps import sweep_runs
    from snnsearch.tracking.mlflow_client import make_client

    client = make_client(uri)
    _, children = sweep_runs(uri, parent_run_id=parent_run_id)
    found = 0
    for child in children:
        steps = {m.step for m in client.get_metric_history(child.info.run_id, "val_acc")}
        found += len(steps & set(range(1, reports + 1)))
    return n * reports - found


def callback_cost(n: int, server: Server) -> dict[str, Any]:
    """The driver thread's cost per result of the MLflow callback alone (no Ray): ``n`` results
    queued through ``NestedMlflowCallback.on_trial_result``, against the synchronous
    ``log_batch`` per result it replaced; then the time the writers need to drain them."""
    from dataclasses import dataclass, field

    from mlflow.entities import Metric

    from snnsearch.tracking import mlflow_logging as M

    @dataclass
    class Trial:
        trial_id: str
        config: dict = field(default_factory=lambda: {"x": 0.5, "epochs": 10})

        def __str__(self) -> str:
            return f"trivial_{self.trial_id}"

    parent = M.SweepParentRun(tracking_uri=server.uri, experiment="callback-cost")
    parent_id = parent.start(name="cost", params={}, space={})
    callback = M.NestedMlflowCallback(tracking_uri=server.uri, experiment_id=parent.experiment_id,
                                      parent_run_id=parent_id, sweep="cost")
    trials = [Trial(f"t{k:05d}") for k in range(max(1, n // 10))]
    for trial in trials:
        callback.on_trial_start(0, [], trial)
    callback.flush(600)
    results = [{"training_iteration": 1 + i // len(trials), "val_acc": 0.5, "epoch": 1.0,
                "time_this_iter_s": 0.1, "time_total_s": 1.0} for i in range(n)]
    start = time.perf_counter()
    for i, result in enumerate(results):
        callback.on_trial_result(0, [], trials[i % len(trials)], result)
    queued = time.perf_counter() - start
    callback.flush(600)
    drained = time.perf_counter() - start
    client = M.make_client(server.uri)
    run_id = client.create_run(parent.experiment_id).info.run_id
    sync_n = min(n, 300)
    start = time.perf_counter()
    for i in range(sync_n):
        client.log_batch(run_id, metrics=[Metric(k, float(v), 0, i + 1)
                                          for k, v in results[i].items()])
    sync = time.perf_counter() - start
    callback.finish()
    return {"arm": "callback", "results": n, "queue_us_per_result": round(queued / n * 1e6, 1),
            "writers_drain_results_per_s": round(n / drained, 1),
            "sync_log_batch_ms_per_result": round(sync / sync_n * 1000, 2),
            "load_avg_1m": round(os.getloadavg()[0], 1)}


def run_size(n: int, args: argparse.Namespace, workdir: Path, server: Server) -> list[dict]:
    from snnsearch.testing.sweeps import free_port

    rows = []
    for arm in args.arms:
        if arm == "floor":
            fn = lambda: floor(n, args, workdir)
        elif arm == "mlflow":
            fn = lambda: snnsearch_sweep(n, args, workdir, server.uri, "mlflow")
        elif arm == "latency":
            port = free_port()
            proxy = subprocess.Popen([sys.executable, __file__, "--proxy", str(port),
                                      str(server.proc.port), str(args.latency_ms / 1000)])
            time.sleep(1.0)

            def fn(port: int = port) -> Any:
                return snnsearch_sweep(n, args, workdir, f"http://127.0.0.1:{port}", "latency",
                                       read_uri=server.uri)
        else:
            base = next((r["wall_s"] for r in rows if r["arm"] == "mlflow"), 10.0 + n * 0.1)

            def bounce(base: float = base) -> None:
                time.sleep(base / 3)
                server.kill()
                print(f"  restart arm: server killed at {base / 3:.0f} s", flush=True)
                time.sleep(args.down_s)
                server.start()
                print("  restart arm: server back", flush=True)

            fn = lambda: snnsearch_sweep(n, args, workdir, server.uri, "restart",
                                         during=bounce)
        name = f"floor_{n}" if arm == "floor" else f"{arm}_{n}"
        try:
            rows.append(measure(arm, n, fn, args, workdir / "ray" / name, server))
        finally:
            if arm == "latency":
                proxy.kill()
                proxy.wait()
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--proxy":
        proxy_main(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", default="100,1000", help="comma-separated sweep sizes")
    parser.add_argument("--reports", type=int, default=10, help="results per trial")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--nodes", type=int, default=4, help="worker nodes of the Cluster")
    parser.add_argument("--arms", default=",".join(ARMS), type=lambda s: s.split(","))
    parser.add_argument("--sampler", default="random", help="the snnsearch arms' sampler")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--down-s", type=float, default=20.0, help="restart arm: server down")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    # Every MLflow call is on the writer thread; a dead server should cost it seconds per try,
    # not MLflow's default minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

    import ray
    from ray.cluster_utils import Cluster

    from snnsearch.testing.sweeps import free_port

    if args.arms == ["callback"]:
        with tempfile.TemporaryDirectory(prefix="snnsearch_driver_") as tmp:
            server = Server(Path(tmp), free_port())
            try:
                for n in (int(t) for t in args.trials.split(",")):
                    print(json.dumps(callback_cost(n, server)), flush=True)
            finally:
                server.stop()
        return

    per_node = -(-args.concurrency // args.nodes)
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "num_gpus": 0, "include_dashboard": False})
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="snnsearch_driver_") as tmp:
        server = Server(Path(tmp), free_port())
        try:
            for _ in range(args.nodes):
                cluster.add_node(num_cpus=per_node)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
            for n in (int(t) for t in args.trials.split(",")):
                rows += run_size(n, args, Path(tmp), server)
        finally:
            ray.shutdown()
            cluster.shutdown()
            server.stop()
    _print_table(rows, args)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


def _print_table(rows: list[dict], args: argparse.Namespace) -> None:
    header = ("arm", "trials", "wall_s", "vs_floor", "results_per_s",
              "driver_cpu_s_per_1k_results", "rss_growth_kib_per_trial",
              "rss_slope_kib_per_trial", "metrics_lost", "machine_busy", "server_cpu_s",
              "load_avg_1m")
    print(f"\nCluster: head + {args.nodes} nodes, concurrency {args.concurrency}, "
          f"{args.reports} reports/trial, sampler {args.sampler}, latency arm "
          f"{args.latency_ms:.0f} ms, restart arm down {args.down_s:.0f} s")
    print(" | ".join(header))
    for row in rows:
        base = next((r["wall_s"] for r in rows
                     if r["arm"] == "floor" and r["trials"] == row["trials"]), None)
        row["vs_floor"] = round(row["wall_s"] / base, 2) if base else ""
        print(" | ".join(str(row.get(h, "")) for h in header))


if __name__ == "__main__":
    main()
