"""One trial out of the sweep: checkpoint → ``.nir`` file → checked on the test set → JSON card.

The card (``<trial>.json`` beside ``<trial>.nir``) holds what a user of the file needs: the trial,
its config and metrics, the energy the trainable estimated under each energy model, T, the input
encoding, ``dt`` and how each neuron maps between spikingjelly, NIR and snnTorch, the agreement of
the file with the trained network on the test set, and the events the hardware would see.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnsearch.energy.counting import E_AC_PJ, E_MAC_PJ
from snnsearch.export.graph import DT, export_nir, load_trained, step_network
from snnsearch.export.mapping import neuron_mapping
from snnsearch.export.simulate import (
    RunResult,
    run_snntorch_nir,
    run_spikingjelly_nir,
    run_trained,
)

ENCODING = ("direct: the image (pixels in [0, 1], shape [C, H, W]) is the input current of the "
            "first layer at every one of the T steps; output: the last layer's spike count over "
            "T steps, class = argmax (ties: lowest class)")
SNNTORCH_NOTE = ("snntorch.import_nir.import_from_nir as is, except its Flatten(0, -1) set to "
                 "keep the batch axis for batched runs; 20 images run unbatched as imported "
                 "gave the same counts")
PROBE = 500  # images of the batch whose per-layer spike counts are compared


@dataclass(frozen=True)
class Exported:
    """Args: trial_id; nir_path, card_path: the written files; card: the card's content."""

    trial_id: str
    nir_path: Path
    card_path: Path
    card: dict[str, Any]


def _accuracy(result: RunResult, labels: torch.Tensor) -> float:
    return float((result.predictions == labels).float().mean())


def _compare(ours: RunResult, other: RunResult, labels: torch.Tensor) -> dict[str, Any]:
    acc_ours, acc_other = _accuracy(ours, labels), _accuracy(other, labels)
    return {
        "images": len(labels),
        "prediction_agreement": float((ours.predictions == other.predictions).float().mean()),
        "accuracy_trained": acc_ours, "accuracy_graph": acc_other,
        "accuracy_diff_pp": 100.0 * abs(acc_ours - acc_other),
        "layer_spikes_probe": list(other.layer_spikes.values()),
    }


def events_section(graph: RunResult, estimate: list[tuple[str, str, float]], T: int
                   ) -> dict[str, Any]:
    """Events from the exported graph next to the trainable's estimate (per inference).

    The graph repeats its first (real-valued) layer every step; the trainable charges a static
    input once, so first-layer MACs are compared per step."""
    events = sum(graph.events.values())
    est_events = sum(ops for _, kind, ops in estimate if kind == "ac")
    first = next(iter(graph.macs))
    graph_macs = sum(graph.macs.values()) - graph.macs[first] * (T - 1) / T
    est_macs = sum(ops for _, kind, ops in estimate if kind == "mac")
    return {
        "graph": {"synaptic_events": events, "macs": graph_macs,
                  "events_per_layer": graph.events, "macs_per_layer": graph.macs,
                  "energy_mj": (events * E_AC_PJ + graph_macs * E_MAC_PJ) * 1e-9},
        "estimate": {"synaptic_events": est_events, "macs": est_macs,
                     "per_layer": {name: ops for name, _, ops in estimate},
                     "energy_mj": (est_events * E_AC_PJ + est_macs * E_MAC_PJ) * 1e-9},
        "events_relative_diff": abs(events - est_events) / max(est_events, 1e-12),
        "note": ("events: input spikes x synapses driven (exact, border taps of a conv "
                 "included; the estimate charges rate x MACs). Layers fed real values (the image, "
                 "average-pooled spikes) are MACs; the first layer's are counted once, as the "
                 "trainable charges a static input; E_AC 0.9 pJ, E_MAC 4.6 pJ (45 nm)."),
    }


def _row_section(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    metrics = {k: clean(row[k]) for k in row
               if k.startswith("best_") or k in ("last/val_acc", "last/test_acc",
                                                 "last/selected_test_acc", "status")}
    energy = {k.removeprefix("last/"): clean(v) for k, v in row.items()
              if k.startswith(("last/energy", "last/synaptic_rate"))}
    return metrics, energy


def export_trial(*, trial_id: str, state: dict[str, Any], out_dir: Path,
                 test_x: torch.Tensor, test_y: torch.Tensor, row: dict[str, Any] | None = None,
                 second_framework: bool = True) -> Exported:
    """Exports one checkpoint state and checks the file against the trained network.

    Args:
        trial_id: names the files (``<trial_id>.nir``, ``<trial_id>.json``).
        state: a checkpoint state (``training.checkpoint.load_checkpoint``).
        out_dir: where the files go.
        test_x, test_y: the test images the file is run on.
        row: the trial's row of ``trials.parquet`` (metrics, estimated energies).
        second_framework: also load the file with snnTorch (a dev dependency).

    Raises:
        NotExportable: a layer NIR cannot represent.
    """
    model, cfg = load_trained(state)
    step = step_network(model, cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    nir_path = out_dir / f"{trial_id}.nir"
    export_nir(step, cfg, nir_path)
    ours = run_trained(model, test_x, T=cfg.T, batch_size=PROBE)
    graph = run_spikingjelly_nir(str(nir_path), test_x, T=cfg.T, dt=DT, batch_size=PROBE)
    checks: dict[str, Any] = {"spikingjelly": _compare(ours, graph, test_y),
                              "trained_layer_spikes_probe": list(ours.layer_spikes.values()),
                              "probe_images": min(PROBE, len(test_y))}
    mapping = neuron_mapping(step.net)
    if second_framework:
        reason = mapping["snntorch_unsupported"]
        checks["snntorch"] = ({"skipped": reason} if reason else _compare(
            ours, run_snntorch_nir(str(nir_path), test_x, T=cfg.T, probe=PROBE), test_y)
            | {"note": SNNTORCH_NOTE})
    metrics, energy = _row_section(row or {})
    card = {
        "trial_id": trial_id, "format": "nir", "file": nir_path.name,
        "config": cfg.to_dict(), "metrics": metrics, "energy_estimated": energy,
        "T": cfg.T, "dt_s": DT, "input_encoding": ENCODING,
        "batchnorm_folded": list(step.folded), "neurons": mapping["layers"],
        "mapping": mapping["text"], "verification": checks,
        "events_per_inference": events_section(graph, ours.estimate, cfg.T),
    }
    card_path = out_dir / f"{trial_id}.json"
    card_path.write_text(json.dumps(card, indent=2, default=float))
    return Exported(trial_id, nir_path, card_path, card)
