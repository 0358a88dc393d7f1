"""A sweep's chosen trials exported: the library function behind the CLI and the end-of-sweep hook.

``export_sweep`` selects rows (:mod:`snnsearch.export.select`), loads each trial's newest
checkpoint with ``weights_only=True``, exports it (:mod:`snnsearch.export.exporter`) and returns
what it wrote and what it refused; a refusal is one line naming the layer and the knob.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from snnsearch.export.exporter import Exported, export_trial
from snnsearch.export.graph import NotExportable
from snnsearch.export.select import EXPORT_DIR, latest_checkpoint, select_rows
from snnsearch.reporting.export_links import INDEX_FILE  # trial → files, read by the report
from snnsearch.training.checkpoint import load_checkpoint


@dataclass
class ExportOutcome:
    """Args: exported: the written models; refused: trial id → the one-line reason;
    states: trial id → the checkpoint state exported (for MLflow models)."""

    exported: list[Exported] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    states: dict[str, dict] = field(default_factory=dict)


def _test_set(config: dict, data_dir: str | None, limit: int | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    from snnsearch.classify.data import load_classification

    # The full official test set: train_subset would shrink it with the training set.
    data = load_classification(config.get("dataset", "mnist"),
                               root=data_dir or config.get("data_dir"),
                               val_size=int(config.get("val_size", 5000)),
                               split_seed=int(config.get("split_seed", 0)))
    n = len(data.test_y) if limit is None else min(limit, len(data.test_y))
    return data.test_x[:n].cpu(), data.test_y[:n].cpu()


def export_sweep(sweep_dir: str, *, trial: str | None = None, front: bool = False,
                 top_k: int | None = None, out_dir: str | Path | None = None,
                 data_dir: str | None = None, test_images: int | None = None,
                 second_framework: bool = True) -> ExportOutcome:
    """Exports the selected trials of ``sweep_dir`` to ``out_dir`` (default
    ``<sweep_dir>/export``) as ``<trial>.nir`` + ``<trial>.json``, plus ``index.json``.

    Raises:
        ValueError: not a sweep directory, unknown trial, nothing to export (one line).
    """
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir) / EXPORT_DIR
    outcome = ExportOutcome()
    tests: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
    for row in select_rows(sweep_dir, trial=trial, front=front, top_k=top_k):
        trial_id = str(row["trial_id"])
        try:
            state = load_checkpoint(latest_checkpoint(row))
            config = state["config"]
            key = (config.get("dataset"), config.get("val_size"), config.get("split_seed"))
            if key not in tests:
                tests[key] = _test_set(config, data_dir, test_images)
            x, y = tests[key]
            outcome.exported.append(export_trial(
                trial_id=trial_id, state=state, out_dir=out, test_x=x, test_y=y, row=row,
                second_framework=second_framework))
            outcome.states[trial_id] = state
        except NotExportable as err:
            outcome.refused[trial_id] = str(err)
    if outcome.exported:
        _write_index(out, outcome)
    return outcome


def _write_index(out: Path, outcome: ExportOutcome) -> None:
    index = {e.trial_id: {"nir": e.nir_path.name, "card": e.card_path.name}
             for e in outcome.exported}
    path = out / INDEX_FILE
    if path.is_file():  # earlier exports into the same folder stay listed
        index = json.loads(path.read_text()) | index
    path.write_text(json.dumps(index, indent=2))


def summary_lines(outcome: ExportOutcome) -> list[str]:
    """One line per model: files, agreement, events; one per refusal."""
    lines = []
    for e in outcome.exported:
        checks = e.card["verification"]
        sj = checks["spikingjelly"]
        line = (f"  {e.trial_id}: {e.nir_path} (+ {e.card_path.name}); on {sj['images']} test "
                f"images the spikingjelly import agrees {100 * sj['prediction_agreement']:.2f}%")
        st = checks.get("snntorch")
        if st and "prediction_agreement" in st:
            line += f", snnTorch {100 * st['prediction_agreement']:.2f}%"
        ev = e.card["events_per_inference"]
        line += (f"; accuracy {100 * sj['accuracy_trained']:.2f}% (graph "
                 f"{100 * sj['accuracy_graph']:.2f}%); {ev['graph']['synaptic_events']:.4g} "
                 f"synaptic events/inference (estimate {ev['estimate']['synaptic_events']:.4g})")
        lines.append(line)
    lines += [f"  refused {trial}: {reason}" for trial, reason in outcome.refused.items()]
    return lines
