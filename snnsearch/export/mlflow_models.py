"""Exported trials as MLflow PyTorch models, in the trial's own (child) run.

``mlflow.pytorch.log_model`` with a signature and an input example (test images), the ``.nir``
file and its card beside it as artifacts (``nir/``), optional registration under a name; then
``mlflow.pytorch.load_model("runs:/<run id>/model")`` gives a working network.

The logged module is :class:`ServableSNN`: the trained network plus a membrane reset around every
call, so each batch is answered from rest (a bare spikingjelly network keeps its membrane state
between calls). MLflow 3.17 saves PyTorch models with ``torch.export`` (a ``.pt2`` program, no
pickle); the program calls spikingjelly's neuron kernels as custom ops (``torch.ops.sj_lif``...),
which exist once their modules are imported: importing this module (or calling
:func:`register_spikingjelly_ops`) before ``mlflow.pytorch.load_model`` does that.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from snnsearch.export.exporter import Exported
from snnsearch.export.graph import load_trained
from snnsearch.tracking.mlflow_client import PARENT_TAG, TRIAL_TAG, make_client

MODEL_NAME = "model"  # runs:/<run id>/model
NIR_ARTIFACTS = "nir"
SJ_OPS = ("if_", "lif", "plif")  # spikingjelly._ops.<name> registers torch.ops.sj_<name>


def register_spikingjelly_ops() -> None:
    """Registers the custom ops an exported SNN program refers to (idempotent)."""
    import importlib

    for name in SJ_OPS:
        importlib.import_module(f"spikingjelly._ops.{name}")


def load_model(uri: str, *, dst_path: str | None = None) -> nn.Module:
    """``mlflow.pytorch.load_model(uri)`` with spikingjelly's ops registered first.

    Args:
        uri: ``runs:/<run id>/model`` or ``models:/<name>/<version>``.
        dst_path: where the artifacts are downloaded (MLflow's default is a temporary folder
            it never removes).
    """
    import mlflow.pytorch

    register_spikingjelly_ops()
    return mlflow.pytorch.load_model(uri, dst_path=dst_path)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "spikingjelly")]


class ServableSNN(nn.Module):
    """Images ``[B, C, H, W]`` → output firing rates ``[B, classes]``, from rest every call."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self.net)
        try:
            return self.net(images)
        finally:
            functional.reset_net(self.net)


def _trial_run(client: Any, parent_run_id: str | None, trial_id: str, experiment_id: str
               ) -> str:
    """The trial's child run under the sweep's parent run; a new run if there is none."""
    if parent_run_id:
        found = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and "
                          f"tags.`{TRIAL_TAG}` = '{trial_id}'", max_results=5)
        if found:
            return found[0].info.run_id
    tags = {TRIAL_TAG: trial_id, **({PARENT_TAG: parent_run_id} if parent_run_id else {})}
    return client.create_run(experiment_id, run_name=f"model-{trial_id}", tags=tags).info.run_id


def log_models(exported: list[Exported], states: dict[str, dict[str, Any]], *,
               tracking_uri: str, experiment_id: str, parent_run_id: str | None = None,
               register: str | None = None, example: torch.Tensor) -> dict[str, str]:
    """Logs each exported trial's network as an MLflow PyTorch model.

    Args:
        exported: what :func:`snnsearch.export.sweep_export.export_sweep` wrote.
        states: trial id → its checkpoint state (the weights logged).
        tracking_uri, experiment_id, parent_run_id: where (the trial's child run, if found).
        register: also register every model under this name (one version each).
        example: a few test images: the input example and the signature's source.

    Returns:
        trial id → ``runs:/<run id>/model``.
    """
    import mlflow
    from mlflow.models import infer_signature

    client = make_client(tracking_uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    uris = {}
    try:
        for item in exported:
            model, _ = load_trained(states[item.trial_id])
            servable = ServableSNN(model).eval()
            with torch.no_grad():
                output = servable(example)
            signature = infer_signature(example.numpy(), output.numpy())
            run_id = _trial_run(client, parent_run_id, item.trial_id, experiment_id)
            with mlflow.start_run(run_id=run_id):
                mlflow.pytorch.log_model(
                    servable, name=MODEL_NAME, signature=signature,
                    input_example=example.numpy(), registered_model_name=register,
                    pip_requirements=_requirements())
                mlflow.log_artifact(str(item.nir_path), NIR_ARTIFACTS)
                mlflow.log_artifact(str(item.card_path), NIR_ARTIFACTS)
            uris[item.trial_id] = f"runs:/{run_id}/{MODEL_NAME}"
    finally:
        mlflow.set_tracking_uri(previous)
    return uris


register_spikingjelly_ops()  # so mlflow.pytorch.load_model works after this import
