"""Evaluates a depth sweep's best trial on a test split, once, after the sweep.

A sweep selects on its val split only; the test split (e.g. monodepth2's Eigen
``splits/eigen/test_files.txt``) is used here, by the checkpoint of the trial the sweep chose:

    python -m snnsearch.evaluate <sweep dir> --split test_files.txt [--gt gt_depths.npz]

It picks the best trial of ``trials.parquet`` by the sweep's metric and mode (``sweep.json``),
loads the checkpoint of the epoch whose val value the sweep reports (``best_epoch``; kept
whatever ``--keep-checkpoints`` says; only JSON, Parquet and weights-only checkpoints are
read), refuses a test split that shares a frame with the trial's train or val split,
computes the seven Eigen metrics (monodepth2's protocol, :mod:`snnsearch.depth.eval`), logs
them as ``test_<metric>`` to the trial's MLflow run and prints them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from snnsearch.depth.config import DepthConfig
from snnsearch.depth.data.kitti import KittiRawDataset, read_split
from snnsearch.depth.eval import DepthErrors
from snnsearch.depth.splits import check_disjoint, resolve

log = logging.getLogger(__name__)
TEST_PREFIX = "test_"


@dataclass(frozen=True)
class BestTrial:
    """The trial a sweep selected and the epoch whose val value it reports.

    Args:
        trial_id: Ray's trial id.
        path: the trial folder.
        value: its best val value (``best_<metric>`` of the table).
        metric: the sweep's metric.
        epoch: the epoch of that value (``best_epoch``); its checkpoint is the one evaluated.
    """

    trial_id: str
    path: Path
    value: float
    metric: str
    epoch: int | None = None


def best_trial(sweep_dir: str | Path) -> BestTrial:
    """The sweep's best finished trial by its own metric/mode (errored trials never count).

    Reads ``sweep.json`` and ``trials.parquet`` only (data, never Ray's pickled state).
    """
    from snnsearch.reporting.results import load_table
    from snnsearch.storage import signing

    sweep_dir = Path(sweep_dir).expanduser().resolve()
    settings = signing.read_settings(str(sweep_dir), required=False)
    if settings is None:
        raise ValueError(f"{sweep_dir} is not a sweep directory (no sweep.json); pass "
                         "<storage>/<name> of a finished sweep")
    metric, mode = settings.get("metric"), settings.get("mode")
    if not metric or mode not in ("min", "max"):
        raise ValueError(f"{sweep_dir / 'sweep.json'} names no metric and mode")
    table = load_table(str(sweep_dir))
    column = f"best_{metric}"
    if column not in table:
        raise ValueError(f"{sweep_dir}: the trial table has no {column}")
    ok = table[(table["status"] != "errored") & table[column].notna()] if len(table) else table
    if not len(ok):
        raise ValueError(f"{sweep_dir}: no trial reported {metric}")
    row = ok.sort_values(column, ascending=mode == "min").iloc[0]
    path = Path(str(row["path"]))
    if not path.is_dir() and (sweep_dir / path.name).is_dir():  # the sweep was moved or copied
        path = sweep_dir / path.name
    epoch = row.get("best_epoch")
    return BestTrial(str(row["trial_id"]), path, float(row[column]), str(metric),
                     None if epoch is None or epoch != epoch else int(epoch))


def selected_checkpoint(best: BestTrial) -> Path:
    """The checkpoint of the epoch the sweep selected (``best.epoch``), not the latest one.

    The epoch of each checkpoint is read from the trial's ``result.json`` (one JSON line per
    report, with Ray's ``checkpoint_dir_name``). The sweep keeps that checkpoint whatever
    ``--keep-checkpoints`` says (``sweep/tuner.py``: Ray's ``checkpoint_score_attribute`` on the
    sweep's metric keeps the best ones and always the latest). Of two epochs with the same best
    value either is "the selected one"; the first kept is used.

    Raises:
        ValueError: the trial kept no checkpoint of that epoch (one line).
    """
    epochs = _checkpoint_epochs(best.path)
    if not epochs:
        raise ValueError(f"trial {best.path} kept no checkpoint")
    if best.epoch is None:
        raise ValueError(f"{best.path}: the trial table names no best_epoch; cannot tell which "
                         "checkpoint the sweep selected")
    if best.epoch in epochs:
        return epochs[best.epoch]
    for epoch, (value, folder) in sorted(_values(best.path, best.metric, epochs).items()):
        if value == best.value:  # a tie with the selected epoch: the same val value
            return folder
    raise ValueError(
        f"trial {best.path} did not keep the checkpoint of epoch {best.epoch} (the epoch of its "
        f"{best.metric} {best.value:.4g}); kept: epochs {', '.join(map(str, sorted(epochs)))}. "
        "Sweeps started before this version kept only the latest ones: rerun the trial")


def _result_lines(trial_dir: Path) -> list[dict[str, Any]]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a crash
    return lines


def _checkpoint_epochs(trial_dir: Path) -> dict[int, Path]:
    """epoch (``training_iteration``) -> kept checkpoint folder."""
    kept = {}
    for line in _result_lines(trial_dir):
        name, epoch = line.get("checkpoint_dir_name"), line.get("training_iteration")
        if name and epoch is not None and (trial_dir / str(name) / "state.pt").is_file():
            kept[int(epoch)] = trial_dir / str(name)
    return kept


def _values(trial_dir: Path, metric: str, epochs: dict[int, Path]
            ) -> dict[int, tuple[float, Path]]:
    out = {}
    for line in _result_lines(trial_dir):
        epoch = line.get("training_iteration")
        if epoch is not None and int(epoch) in epochs and line.get(metric) is not None:
            out[int(epoch)] = (float(line[metric]), epochs[int(epoch)])
    return out


def evaluate_checkpoint(
    checkpoint: str | Path,
    split: str | Path,
    *,
    data_dir: str | None = None,
    gt_path: str | None = None,
    device: str = "auto",
    batch_size: int = 8,
) -> DepthErrors:
    """Eigen metrics of a depth checkpoint on ``split`` (GT from ``gt_path`` or the scans)."""
    from snnsearch.depth.data.gt import depth_map, load_gt_for
    from snnsearch.depth.engine import LossSettings, collate, validate
    from snnsearch.depth.models.net import build_depth_net
    from snnsearch.depth.state import model_spec
    from snnsearch.depth.trainable import data_sources
    from snnsearch.training.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    saved: dict[str, Any] = dict(state.get("config", {}))
    if data_dir:
        saved["data_dir"] = data_dir
    cfg = DepthConfig.from_dict({**saved, "pretrain": "none", "compile": False})
    root, train_split, val_split, _ = data_sources(cfg)
    items = read_split(resolve(root, split))
    for used in (train_split, val_split):  # a frame in both is an error, a shared drive a warning
        for warning in check_disjoint(read_split(resolve(root, used)), items,
                                      names=(used, str(split))):
            log.warning(warning)
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto"
                       else device)
    net = build_depth_net(model_spec(cfg)).to(dev)
    net.load_state_dict(state["model"])
    # Only the target frame is needed: no neighbours, so any frame of a drive can be tested.
    data = KittiRawDataset(root, items, height=cfg.height, width=cfg.width, frame_ids=(0,))
    gts = load_gt_for(gt_path, items) if gt_path else [depth_map(root, i) for i in items]
    loader = DataLoader(data, batch_size=batch_size, collate_fn=collate)
    errors, _, _ = validate(net, loader, gts, dev, LossSettings(), cfg.precision)
    return errors


def log_to_mlflow(sweep_dir: Path, trial_id: str, metrics: dict[str, float], split: str) -> str:
    """Logs ``metrics`` to the trial's child run of the sweep's MLflow parent; returns its id."""
    from snnsearch.storage import signing
    from snnsearch.tracking import mlflow_logging as M

    settings = signing.read_settings(str(sweep_dir), required=False) or {}
    parent_id = M.read_parent_id(str(sweep_dir))
    if parent_id is None:
        raise ValueError(f"{sweep_dir} has no {M.PARENT_ID_FILE}")
    client = M.make_client(settings["mlflow_uri"])
    experiment_id = client.get_run(parent_id).info.experiment_id
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{M.PARENT_TAG}` = '{parent_id}' and "
        f"tags.`{M.TRIAL_TAG}` = '{trial_id}'",
    )
    if not runs:
        raise ValueError(f"no MLflow run of trial {trial_id} under parent run {parent_id}")
    run_id = runs[0].info.run_id
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    client.set_tag(run_id, "snnsearch.test_split", split)
    return run_id


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m snnsearch.evaluate",
        description="Evaluate a depth sweep's best trial on a test split (Eigen metrics).",
    )
    p.add_argument("sweep_dir", type=Path)
    p.add_argument("--split", required=True, help="test split file (relative: under the data)")
    p.add_argument("--gt", help="gt_depths.npz of the split (default: project the scans)")
    p.add_argument("--data-dir", help="data root, if it moved since the sweep")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-mlflow", action="store_true", help="print only")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        best = best_trial(args.sweep_dir)
        checkpoint = selected_checkpoint(best)
        errors = evaluate_checkpoint(checkpoint, args.split, data_dir=args.data_dir,
                                     gt_path=args.gt, device=args.device)
        metrics = {TEST_PREFIX + k: v for k, v in errors.as_dict().items()}
        run_id = None if args.no_mlflow else log_to_mlflow(args.sweep_dir, best.trial_id,
                                                           metrics, str(args.split))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"best trial {best.trial_id} ({best.metric} {best.value:.4g} on val at epoch "
          f"{best.epoch}), {checkpoint}")
    print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if run_id:
        print(f"logged to MLflow run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
