"""The sweep's side of MLflow models: which experiment and parent run the models go to.

The parent run id is the one the sweep wrote (``mlflow_parent_run_id.txt``), so each model lands
in its trial's child run; a sweep without it (or an unknown id on this server) gets the models
in new runs of an ``<experiment>-models`` experiment.
"""

from __future__ import annotations

from snnsearch.export.mlflow_models import log_models
from snnsearch.export.select import sweep_settings
from snnsearch.export.sweep_export import ExportOutcome
from snnsearch.storage import sweepdir as _storage
from snnsearch.tracking.mlflow_client import PARENT_ID_FILE, ensure_experiment, make_client

EXAMPLE_IMAGES = 2


def log_sweep_models(sweep_dir: str, outcome: ExportOutcome, *, tracking_uri: str,
                     register: str | None = None, parent_run_id: str | None = None
                     ) -> dict[str, str]:
    """Logs ``outcome``'s models; returns trial id → ``runs:/<run id>/model``."""
    client = make_client(tracking_uri)
    parent = parent_run_id or (_storage.read_text(_storage.join(sweep_dir, PARENT_ID_FILE))
                               or "").strip() or None
    experiment_id = None
    if parent:
        try:
            experiment_id = client.get_run(parent).info.experiment_id
        except Exception:  # noqa: BLE001 - another server, or the run was deleted
            parent = None
    if experiment_id is None:
        name = f"{sweep_settings(sweep_dir).get('name', 'sweep')}-models"
        experiment_id = ensure_experiment(client, name, tracking_uri)
    first = outcome.exported[0]
    example = _example(outcome.states[first.trial_id])
    return log_models(outcome.exported, outcome.states, tracking_uri=tracking_uri,
                      experiment_id=experiment_id, parent_run_id=parent, register=register,
                      example=example)


def _example(state: dict):
    """A few real test images of the trial's dataset as the input example."""
    from snnsearch.classify.data import load_classification

    config = state["config"]
    data = load_classification(config.get("dataset", "mnist"), root=config.get("data_dir"),
                               val_size=int(config.get("val_size", 5000)))
    return data.test_x[:EXAMPLE_IMAGES].cpu().float()
