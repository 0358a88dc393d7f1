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
import dataclasses
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
             "conv_blocks", "channels", "blocks", "embed_dim", "lr")
# Each family's two depth knobs (the pair drawn together) and the placeholders when inactive.
FAMILY_KNOBS = {"fc": ("hidden_layers", "hidden_width"), "csnn": ("conv_blocks", "channels"),
                "spikformer": ("blocks", "embed_dim")}
PLACEHOLDERS = {"hidden_layers": 0, "hidden_width": 128, "conv_blocks": 1, "channels": 8,
                "blocks": 1, "embed_dim": 16}


@dataclasses.dataclass(frozen=True)
class Profile:
    """One recording's grid: levels, fixed trainable settings and each family's share.

    ``families`` maps model -> (depth pairs, timesteps, share of the draw). The draw is uniform
    per dimension within a family (as a random searcher samples the shipped space).
    """

    fixed: dict[str, Any]
    families: dict[str, tuple[tuple[tuple[int, int], ...], tuple[int, ...], float]]
    thresholds: tuple[float, ...]
    lrs: tuple[float, ...]
    taus: tuple[float, ...] = TAUS
    ds: tuple[int, ...] = DS
    neurons: tuple[str, ...] = NEURONS
    extra_columns: bool = True  # blocks/embed_dim/cpu_s/ann_macs (the MNIST table predates them)


PROFILES: dict[str, Profile] = {
    # Issue 11: 5 short epochs of tiny MNIST nets (bench/replay_mnist.parquet).
    "mnist": Profile(FIXED, {"fc": (FC_DEPTH, TS, 0.5), "csnn": (CSNN_DEPTH, TS, 0.5)},
                     THRESHOLDS, LRS, extra_columns=False),
    # Issue 22: FashionMNIST long curves (>= 20 epochs), where early stopping can matter. Wider
    # and deeper than the MNIST grid; Spikformer at the sizes one CPU core trains in about a
    # minute per epoch-set (embed 16-32, T <= 4); the fixed threshold leaves the budget to the
    # dimensions the issue names (neuron, T, tau, D, lr, width, depth).
    "fashion_long": Profile(
        {**FIXED, "dataset": "fashion", "train_subset": 2048, "val_size": 512,
         "v_threshold": 1.0, "patch_size": 4, "heads": 2},
        {"fc": (tuple(itertools.product((0, 1, 2, 3), (64, 128, 256, 512))), TS, 0.47),
         "csnn": (tuple(itertools.product((1, 2, 3), (4, 8, 16))), TS, 0.40),
         "spikformer": (((1, 16), (2, 16), (1, 32)), (1, 2, 4), 0.13)},
        (1.0,), (1e-4, 3e-4, 1e-3, 3e-3)),
}


def full_grid(profile: Profile = PROFILES["mnist"]) -> list[dict[str, Any]]:
    """Every combination of the levels (tau only for leaky neurons, D only for I-LIF)."""
    out = []
    for model, (depths, ts, _) in profile.families.items():
        for (a, b), neuron, T, thr, lr in itertools.product(depths, profile.neurons, ts,
                                                            profile.thresholds, profile.lrs):
            taus = (2.0,) if neuron == "if" else profile.taus
            ds = profile.ds if neuron == "ilif" else (1,)
            for tau, D in itertools.product(taus, ds):
                out.append(_config(profile, model, neuron, T, tau, D, thr, lr, a, b))
    return out


def _config(profile: Profile, model: str, neuron: str, T: int, tau: float, D: int, thr: float,
            lr: float, a: int, b: int) -> dict[str, Any]:
    cfg = {"model": model, "neuron": neuron, "T": T, "tau": tau, "D": D, "v_threshold": thr,
           "lr": lr}
    knobs = [k for ks in FAMILY_KNOBS.values() for k in ks]
    if not profile.extra_columns:
        knobs = [k for k in knobs if k not in ("blocks", "embed_dim")]
    cfg |= {k: PLACEHOLDERS[k] for k in knobs}
    cfg |= dict(zip(FAMILY_KNOBS[model], (a, b), strict=True))
    return cfg


def draw(n: int, seed: int, profile: Profile = PROFILES["mnist"]) -> list[dict[str, Any]]:
    """``n`` distinct grid points, each family its share, each dimension drawn uniformly.

    Uniform per dimension (as a random searcher samples the shipped space), not uniform over
    the grid: the grid holds 9x more I-LIF points (tau x D levels) than IF points.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    grid = {tuple(sorted(c.items())) for c in full_grid(profile)}
    picked: dict[tuple, dict[str, Any]] = {}
    families = list(profile.families.items())
    for i, (model, (depths, ts, share)) in enumerate(families):
        k = n - len(picked) if i == len(families) - 1 else round(n * share)
        target = len(picked) + k
        while len(picked) < target:
            neuron = profile.neurons[rng.integers(len(profile.neurons))]
            a, b = depths[rng.integers(len(depths))]
            T = int(rng.choice(ts))
            tau = 2.0 if neuron == "if" else float(rng.choice(profile.taus))
            D = int(rng.choice(profile.ds)) if neuron == "ilif" else 1
            cfg = _config(profile, model, neuron, T, tau, D,
                          float(rng.choice(profile.thresholds)), float(rng.choice(profile.lrs)),
                          a, b)
            key = tuple(sorted(cfg.items()))
            assert key in grid, cfg  # drawn points are grid points
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
        # CPU seconds of this process between reports: the epoch's real cost (training,
        # validation, energy probe; the first also data loading and model set-up). CPU time,
        # not wall time, so a busy machine does not inflate it (torch runs one thread here).
        self.cpu_s: list[float] = []
        self._cpu_mark = time.process_time()

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        now = time.process_time()
        self.cpu_s.append(now - self._cpu_mark)
        self._cpu_mark = now
        self.history.append(dict(metrics))
        if len(self.history) >= self.epochs:
            raise _Halt

    def restore_dir(self) -> str | None:
        return None


def ann_twin(cfg: dict[str, Any], images, fixed: dict[str, Any] = FIXED) -> tuple[float, float]:
    """(energy in mJ, MACs) per image of the configuration's ANN twin: same shape, one step.

    The MACs times T is the cost model recorded beside the measured CPU seconds.
    """
    from snnsearch.classify.config import ClassifyConfig
    from snnsearch.classify.models import create_model
    from snnsearch.energy import estimate_energy

    c = ClassifyConfig.from_dict({k: v for k, v in cfg.items() if k in GRID_KEYS} | fixed)
    model = create_model(c.model, c.model_cfg().ann_twin()).eval()
    report = estimate_energy(model, images, timesteps=1, spiking=False)
    return float(report.total_mj), float(report.total_macs)


def ann_twin_energy(cfg: dict[str, Any], images) -> float:
    """Energy (mJ per image) of the configuration's ANN twin: same shape, ReLU, one step."""
    return ann_twin(cfg, images)[0]


def record_one(cfg: dict[str, Any], data_dir: str, epochs: int, images,
               profile: Profile = PROFILES["mnist"]) -> list[dict[str, Any]]:
    """Rows (one per epoch) of one configuration trained by the real trainable."""
    from snnsearch import constants as K
    from snnsearch.classify.trainable import train_classifier

    config = {k: v for k, v in cfg.items() if k in GRID_KEYS} | profile.fixed
    config |= {"data_dir": data_dir, "epochs": epochs + 10}
    rec = _Recorder(epochs)
    error = ""
    try:
        train_classifier(config, rec)
    except _Halt:
        pass
    except FloatingPointError as err:  # diverged: the trial errors in a real sweep too
        error = str(err)
    ann, ann_macs = ann_twin(cfg, images, profile.fixed)
    keys = [k for k in ("config_id", *GRID_KEYS) if k in cfg]
    extra = ({"ann_macs": ann_macs, "mac_t": ann_macs * int(cfg["T"])}
             if profile.extra_columns else {})
    rows = []
    for m, cpu_s in zip(rec.history, rec.cpu_s, strict=True):
        rates = {k.removeprefix(K.FIRING_RATE_PREFIX): float(v) for k, v in m.items()
                 if k.startswith(K.FIRING_RATE_PREFIX)}
        rows.append({
            **{k: cfg[k] for k in keys},
            "epoch": int(m[K.EPOCH]), "val_acc": float(m[K.VAL_ACC]),
            "val_loss": float(m[K.VAL_LOSS]), "train_loss": float(m[K.TRAIN_LOSS]),
            "train_acc": float(m[K.TRAIN_ACC]), "energy_mj": float(m[K.ENERGY_MJ]),
            "output_firing_rate": float(m.get(K.OUTPUT_RATE, float("nan"))),
            "silent_fraction": float(m.get(K.SILENT_FRACTION, float("nan"))),
            "firing_rates": json.dumps(rates), "epoch_time_s": float(m[K.EPOCH_TIME]),
            "ann_energy_mj": ann, "error": "",
            **({"cpu_s": cpu_s} | extra if profile.extra_columns else {}),
        })
    if error:  # the epoch that diverged: NaN metrics and the error text
        nan = float("nan")
        rows.append({**{k: cfg[k] for k in keys},
                     "epoch": len(rec.history) + 1, "val_acc": nan, "val_loss": nan,
                     "train_loss": nan, "train_acc": nan, "energy_mj": nan,
                     "output_firing_rate": nan, "silent_fraction": nan, "firing_rates": "{}",
                     "epoch_time_s": nan, "ann_energy_mj": ann, "error": error,
                     **({"cpu_s": nan} | extra if profile.extra_columns else {})})
    return rows


def write(rows: list[dict[str, Any]], out: Path, meta: dict[str, Any],
          key: bytes = b"snnsearch_replay") -> None:
    """Atomically (re)write the table with ``meta`` as Parquet schema metadata under ``key``
    (the replay benchmarks' run tables use this too, each with its own key)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({key: json.dumps(meta).encode()})
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
    parser.add_argument("--data-dir", required=True,
                        help="root with MNIST/raw/*.gz or FashionMNIST/raw/*.gz (writable)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="mnist",
                        help="the grid: mnist (issue 11, 5 epochs) or fashion_long (issue 22)")
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

    profile = PROFILES[args.profile]
    fixed = profile.fixed
    probe = load_classification(fixed["dataset"], root=args.data_dir, val_size=fixed["val_size"],
                                split_seed=0, train_subset=fixed["train_subset"],
                                device=torch.device("cpu")).val_x[:16]
    configs = draw(args.configs, args.seed, profile)
    rows: list[dict[str, Any]] = []
    if args.resume and args.out.exists():
        rows = pq.read_table(args.out).to_pylist()
    done = {r["config_id"] for r in rows}
    meta = {
        "command": "python bench/replay_record.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} cores, torch threads 1",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "fixed": fixed, "profile": args.profile, "epochs": args.epochs, "configs": args.configs,
        "seed": args.seed,
    }
    start = time.time()
    order = list(enumerate(configs))
    for i, cfg in reversed(order) if args.reverse else order:
        if cfg["config_id"] in done:
            continue
        t0 = time.time()
        rows += record_one(cfg, args.data_dir, args.epochs, probe, profile)
        meta["cpu_s"] = time.process_time()
        write(rows, args.out, meta)
        print(f"[{i + 1}/{len(configs)}] {cfg} {time.time() - t0:.1f}s "
              f"(total {time.time() - start:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
