"""Record real MNIST learning curves once, for the replay benchmark (``bench/replay.py``).

Every configuration of a seeded draw from the shipped MNIST space's dimensions is trained through
the real classification trainable (:func:`snnsearch.classify.trainable.train_classifier`, real
MNIST from a data root) for ``--epochs`` epochs; every epoch's metrics go into one Parquet table.
The table is rewritten after each configuration, so a killed recording keeps what it finished and
``--resume`` continues it.

CPU-sized choices (stated in the table's metadata and in docs/benchmarks.md):

* ``train_subset`` 1024, ``val_size`` 256, batch 64, Adam, ``lr_schedule=none``: a constant
  learning rate makes a truncated curve exactly the prefix of a longer run, which is what an
  early-stopping scheduler sees. ``epochs`` is set above the recorded count and the recording
  halts after ``--epochs`` reports (the trainable's final test-set pass is never reached).
* csnn channels {4, 8} and fc widths {128, 256, 512}: the shipped space's csnn widths (32-128)
  are 8-32x slower on one core; every other dimension uses the shipped ranges on a few levels.

    OMP_NUM_THREADS=1 nice -n 19 python bench/replay_record.py --data-dir /path/to/data \
        --configs 216 --epochs 5 --out bench/replay_mnist.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Levels per dimension (shipped space: search_spaces/mnist.yaml).
NEURONS = ("if", "lif", "plif", "ilif")
TS = (1, 2, 4, 8)
TAUS = (1.5, 3.0, 10.0)
DS = (2, 4, 8)
THRESHOLDS = (0.5, 1.0, 1.5)
LRS = (3e-4, 1e-3, 3e-3, 1e-2)
FC_DEPTH = tuple(itertools.product((0, 1, 2, 3), (128, 256, 512)))  # hidden_layers, hidden_width
CSNN_DEPTH = tuple(itertools.product((1, 2, 3), (4, 8)))  # conv_blocks, channels

FIXED: dict[str, Any] = {
    "dataset": "mnist", "train_subset": 1024, "val_size": 256, "split_seed": 0,
    "batch_size": 64, "optimizer": "adam", "lr_schedule": "none", "weight_decay": 0.0,
    "surrogate_alpha": 2.0, "energy_images": 16, "figures": False, "device": "cpu", "seed": 0,
}
GRID_KEYS = ("model", "neuron", "T", "tau", "D", "v_threshold", "hidden_layers", "hidden_width",
             "conv_blocks", "channels", "lr")


def full_grid() -> list[dict[str, Any]]:
    """Every combination of the levels above (tau only for leaky neurons, D only for I-LIF)."""
    out = []
    for model, depths in (("fc", FC_DEPTH), ("csnn", CSNN_DEPTH)):
        for (a, b), neuron, T, thr, lr in itertools.product(depths, NEURONS, TS, THRESHOLDS, LRS):
            taus = (2.0,) if neuron == "if" else TAUS
            ds = DS if neuron == "ilif" else (1,)
            for tau, D in itertools.product(taus, ds):
                cfg = {"model": model, "neuron": neuron, "T": T, "tau": tau, "D": D,
                       "v_threshold": thr, "lr": lr, "hidden_layers": 0, "hidden_width": 128,
                       "conv_blocks": 1, "channels": 8}
                if model == "fc":
                    cfg |= {"hidden_layers": a, "hidden_width": b}
                else:
                    cfg |= {"conv_blocks": a, "channels": b}
                out.append(cfg)
    return out


def draw(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct grid points, half fc and half csnn, each dimension drawn uniformly.

    Uniform per dimension (as a random searcher samples the shipped space), not uniform over
    the grid: the grid holds 9x more I-LIF points (tau x D levels) than IF points.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    by_key = {tuple(sorted(c.items())): c for c in full_grid()}
    picked: dict[tuple, dict[str, Any]] = {}
    for model, depths, k in (("fc", FC_DEPTH, n // 2), ("csnn", CSNN_DEPTH, n - n // 2)):
        target = len(picked) + k
        while len(picked) < target:
            neuron = NEURONS[rng.integers(len(NEURONS))]
            a, b = depths[rng.integers(len(depths))]
            cfg = {"model": model, "neuron": neuron, "T": int(rng.choice(TS)),
                   "tau": 2.0 if neuron == "if" else float(rng.choice(TAUS)),
                   "D": int(rng.choice(DS)) if neuron == "ilif" else 1,
                   "v_threshold": float(rng.choice(THRESHOLDS)), "lr": float(rng.choice(LRS)),
                   "hidden_layers": a if model == "fc" else 0,
                   "hidden_width": b if model == "fc" else 128,
                   "conv_blocks": a if model == "csnn" else 1,
                   "channels": b if model == "csnn" else 8}
            key = tuple(sorted(cfg.items()))
            assert key in by_key, cfg  # drawn points are grid points
            picked.setdefault(key, cfg)
    values = list(picked.values())
    order = rng.permutation(len(values))
    return [values[i] | {"config_id": int(j)} for j, i in enumerate(order)]


class _Halt(Exception):
    """Raised by the recording reporter after the last recorded epoch."""


class _Recorder:
    """Reporter that keeps every epoch's metrics (no checkpoints kept) and halts at ``epochs``."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.history: list[dict[str, Any]] = []

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        self.history.append(dict(metrics))
        if len(self.history) >= self.epochs:
            raise _Halt

    def restore_dir(self) -> str | None:
        return None


def ann_twin_energy(cfg: dict[str, Any], images) -> float:
    """Energy (mJ per image) of the configuration's ANN twin: same shape, ReLU, one step."""
    from snnsearch.classify.config import ClassifyConfig
    from snnsearch.classify.models import create_model
    from snnsearch.energy import estimate_energy

    c = ClassifyConfig.from_dict({k: v for k, v in cfg.items() if k in GRID_KEYS} | FIXED)
    model = create_model(c.model, c.model_cfg().ann_twin()).eval()
    return float(estimate_energy(model, images, timesteps=1, spiking=False).total_mj)


def record_one(cfg: dict[str, Any], data_dir: str, epochs: int, images) -> list[dict[str, Any]]:
    """Rows (one per epoch) of one configuration trained by the real trainable."""
    from snnsearch import constants as K
    from snnsearch.classify.trainable import train_classifier

    config = {k: v for k, v in cfg.items() if k in GRID_KEYS} | FIXED
    config |= {"data_dir": data_dir, "epochs": epochs + 10}
    rec = _Recorder(epochs)
    error = ""
    try:
        train_classifier(config, rec)
    except _Halt:
        pass
    except FloatingPointError as err:  # diverged: the trial errors in a real sweep too
        error = str(err)
    ann = ann_twin_energy(cfg, images)
    rows = []
    for m in rec.history:
        rates = {k.removeprefix(K.FIRING_RATE_PREFIX): float(v) for k, v in m.items()
                 if k.startswith(K.FIRING_RATE_PREFIX)}
        rows.append({
            **{k: cfg[k] for k in ("config_id", *GRID_KEYS)},
            "epoch": int(m[K.EPOCH]), "val_acc": float(m[K.VAL_ACC]),
            "val_loss": float(m[K.VAL_LOSS]), "train_loss": float(m[K.TRAIN_LOSS]),
            "train_acc": float(m[K.TRAIN_ACC]), "energy_mj": float(m[K.ENERGY_MJ]),
            "output_firing_rate": float(m.get(K.OUTPUT_RATE, float("nan"))),
            "silent_fraction": float(m.get(K.SILENT_FRACTION, float("nan"))),
            "firing_rates": json.dumps(rates), "epoch_time_s": float(m[K.EPOCH_TIME]),
            "ann_energy_mj": ann, "error": "",
        })
    if error:  # the epoch that diverged: NaN metrics and the error text
        nan = float("nan")
        rows.append({**{k: cfg[k] for k in ("config_id", *GRID_KEYS)},
                     "epoch": len(rec.history) + 1, "val_acc": nan, "val_loss": nan,
                     "train_loss": nan, "train_acc": nan, "energy_mj": nan,
                     "output_firing_rate": nan, "silent_fraction": nan, "firing_rates": "{}",
                     "epoch_time_s": nan, "ann_energy_mj": ann, "error": error})
    return rows


def write(rows: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> None:
    """Atomically (re)write the table with ``meta`` as Parquet schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({b"snnsearch_replay": json.dumps(meta).encode()})
    tmp = out.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)


def merge(out: Path, others: list[Path]) -> int:
    """Joins tables recorded by several processes (same draw), one curve per config_id."""
    import json

    import pyarrow.parquet as pq

    base = pq.read_table(out)
    meta = json.loads(base.schema.metadata[b"snnsearch_replay"])
    rows = base.to_pylist()
    done = {r["config_id"] for r in rows}
    for path in others:
        extra = pq.read_table(path)
        other_meta = json.loads(extra.schema.metadata[b"snnsearch_replay"])
        meta.setdefault("merged", []).append(
            {"command": other_meta["command"], "cpu_s": other_meta.get("cpu_s")})
        rows += [r for r in extra.to_pylist() if r["config_id"] not in done]
        done = {r["config_id"] for r in rows}
    rows.sort(key=lambda r: (r["config_id"], r["epoch"]))
    write(rows, out, meta)
    print(f"{out}: {len(done)} configurations, {len(rows)} rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="root with MNIST/raw/*.gz (writable)")
    parser.add_argument("--configs", type=int, default=216)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "replay_mnist.parquet")
    parser.add_argument("--resume", action="store_true", help="keep configs already in --out")
    parser.add_argument("--reverse", action="store_true",
                        help="record from the last config backwards (a second process sharing "
                             "the work writes to its own --out; --merge joins the tables)")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="only merge these tables into --out (configs already there win)")
    args = parser.parse_args(argv)
    import pyarrow.parquet as pq

    if args.merge:
        return merge(args.out, args.merge)
    import torch

    torch.set_num_threads(1)
    from snnsearch.classify.data import load_classification

    probe = load_classification("mnist", root=args.data_dir, val_size=256, split_seed=0,
                                train_subset=1024, device=torch.device("cpu")).val_x[:16]
    configs = draw(args.configs, args.seed)
    rows: list[dict[str, Any]] = []
    if args.resume and args.out.exists():
        rows = pq.read_table(args.out).to_pylist()
    done = {r["config_id"] for r in rows}
    meta = {
        "command": "python bench/replay_record.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} cores, torch threads 1",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "fixed": FIXED, "epochs": args.epochs, "configs": args.configs, "seed": args.seed,
    }
    start = time.time()
    order = list(enumerate(configs))
    for i, cfg in reversed(order) if args.reverse else order:
        if cfg["config_id"] in done:
            continue
        t0 = time.time()
        rows += record_one(cfg, args.data_dir, args.epochs, probe)
        meta["cpu_s"] = time.process_time()
        write(rows, args.out, meta)
        print(f"[{i + 1}/{len(configs)}] {cfg} {time.time() - t0:.1f}s "
              f"(total {time.time() - start:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
