"""The proof that the exported graph is the trained network: one real (small) sweep on real MNIST
over a ``deploy: nir`` space (an FC-SNN and a CSNN), both exported at the sweep's end
(``--log-models 2``: the top two, since either may dominate the other on the front), loaded back by
spikingjelly and by snnTorch (a framework we do not train with) and by MLflow by URI.

One module-scoped sweep serves every assertion. The sweep's hook checks the files on the first
2,000 test images with spikingjelly's importer (the full 10,000 by hand: docs/export.md);
snnTorch runs here on the first 1,000."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from snnsearch.export.graph import DT, load_trained
from snnsearch.export.simulate import run_snntorch_nir, run_trained
from snnsearch.training.checkpoint import load_checkpoint

SPACE = Path(__file__).with_name("nir_proof.yaml")
SNNTORCH_IMAGES = 1000
TEST_IMAGES = 2000  # the CI's share of the test set; the full 10k figures: docs/export.md
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def sweep(ray_local: None, tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str,
          data_root: Path) -> dict:
    from snnsearch.classify.data import load_classification
    from snnsearch.sweep.cli import main

    # Extract the shared .gz files once here: two trials extracting a fresh root at the same
    # time can read each other's half-written files (an md5 mismatch in one of them).
    load_classification("mnist", root=data_root, val_size=1000)
    storage = tmp_path_factory.mktemp("export")
    code = main("mnist", ["--space", str(SPACE), "--storage", str(storage), "--name", "proof",
                          "--mlflow-uri", mlflow_uri, "--data-dir", str(data_root),
                          "--log-models", "2", "--register", "mnist-nir-proof",
                          "--export-test-images", str(TEST_IMAGES)])
    assert code == 0
    sweep_dir = storage / "proof"
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    cards = {p.stem: json.loads(p.read_text()) for p in (sweep_dir / "export").glob("*.json")
             if p.name != "index.json"}
    return {"dir": sweep_dir, "table": table, "cards": cards, "uri": mlflow_uri,
            "data": data_root}


def _card(sweep: dict, model: str) -> dict:
    found = [c for c in sweep["cards"].values() if c["config"]["model"] == model]
    assert len(found) == 1, sorted(sweep["cards"])
    return found[0]


@pytest.mark.parametrize("model", ["fc", "csnn"])
def test_the_file_reproduces_the_trained_network_on_the_test_set(sweep: dict, model: str
                                                                 ) -> None:
    card = _card(sweep, model)
    check = card["verification"]["spikingjelly"]
    assert check["images"] == TEST_IMAGES
    assert check["prediction_agreement"] >= 0.995
    assert check["accuracy_diff_pp"] <= 0.2
    assert check["accuracy_trained"] > 0.5  # a trained network, not chance
    assert check["layer_spikes_probe"] == card["verification"]["trained_layer_spikes_probe"]
    assert card["T"] == 4 and card["dt_s"] == DT and "direct" in card["input_encoding"]
    assert card["metrics"]["best_val_acc"] > 0.5 and card["energy_estimated"]["energy_mj"] > 0
    if model == "csnn":
        assert card["batchnorm_folded"] == ["stem.1", "features.3"]
    for neuron in card["neurons"]:  # the discretisation mapping the card promises
        tau = neuron["tau_steps"]
        assert neuron["nir"]["tau_s"] == pytest.approx(tau * DT)
        assert neuron["snntorch"]["beta"] == pytest.approx(1 - 1 / tau)
        assert neuron["snntorch"]["threshold"] == pytest.approx(neuron["v_threshold"] * tau)


@pytest.mark.parametrize("model", ["fc", "csnn"])
def test_a_second_framework_reproduces_the_predictions(sweep: dict, model: str) -> None:
    card = _card(sweep, model)
    trial = card["trial_id"]
    row = sweep["table"].set_index("trial_id").loc[trial]
    state = load_checkpoint(sorted(Path(row["path"]).glob("checkpoint_*"))[-1])
    trained, cfg = load_trained(state)
    from snnsearch.classify.data import load_classification

    data = load_classification("mnist", root=sweep["data"], val_size=1000)
    x, y = data.test_x[:SNNTORCH_IMAGES], data.test_y[:SNNTORCH_IMAGES]
    ours = run_trained(trained, x, T=cfg.T)
    other = run_snntorch_nir(str(sweep["dir"] / "export" / card["file"]), x, T=cfg.T)
    agreement = float((ours.predictions == other.predictions).float().mean())
    acc_ours = float((ours.predictions == y).float().mean())
    acc_other = float((other.predictions == y).float().mean())
    assert agreement >= 0.995 and abs(acc_ours - acc_other) <= 0.002
    # per-layer spike counts on one batch, layer by layer in execution order
    assert list(other.layer_spikes.values()) == list(ours.layer_spikes.values())


@pytest.mark.parametrize("model", ["fc", "csnn"])
def test_events_on_the_target_match_the_trainables_estimate(sweep: dict, model: str) -> None:
    events = _card(sweep, model)["events_per_inference"]
    assert events["graph"]["synaptic_events"] > 0
    # Only linear layers are spike-fed in these nets (avg-pooled spikes feed the convs as MACs),
    # where rate x MACs is exact; what remains are the few spikes that float rounding of the
    # folded BN flips (2e-6 relative on the full test set). A spike-fed conv would differ by its
    # border taps.
    assert events["events_relative_diff"] < 1e-4
    assert events["graph"]["macs"] == pytest.approx(events["estimate"]["macs"], rel=1e-9)


def test_the_best_trial_loads_from_mlflow_by_uri(sweep: dict, tmp_path: Path) -> None:
    import mlflow

    from snnsearch.export.mlflow_models import MODEL_NAME, NIR_ARTIFACTS
    from snnsearch.tracking.mlflow_client import TRIAL_TAG, make_client

    best = sweep["table"].sort_values("best_val_acc", ascending=False).iloc[0]
    client = make_client(sweep["uri"])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string=f"tags.`{TRIAL_TAG}` = '{best['trial_id']}'")
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    mlflow.set_tracking_uri(sweep["uri"])
    # dst_path: without it MLflow downloads into a temp folder it never removes.
    loaded = mlflow.pytorch.load_model(f"runs:/{run_id}/{MODEL_NAME}", dst_path=str(tmp_path))
    state = load_checkpoint(sorted(Path(best["path"]).glob("checkpoint_*"))[-1])
    trained, _ = load_trained(state)
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = run_trained(trained, x, T=4).counts / 4
        assert torch.equal(loaded(x), expected) and torch.equal(loaded(x), expected)
    names = {a.path for a in client.list_artifacts(run_id, NIR_ARTIFACTS)}
    assert f"{NIR_ARTIFACTS}/{best['trial_id']}.nir" in names
    versions = client.search_model_versions("name = 'mnist-nir-proof'")
    assert {v.run_id for v in versions} >= {run_id}


def test_the_report_links_each_front_point_to_its_files(sweep: dict) -> None:
    from snnsearch.reporting.front import front_columns, snn_front

    page = (sweep["dir"] / "report.html").read_text()
    y, x = front_columns(sweep["table"], "val_acc")
    front = set(snn_front(sweep["table"], y, "max", x)["trial_id"])
    assert front and front <= set(sweep["cards"])  # both trials were exported (top 2)
    for trial in sweep["cards"]:
        linked = f'href="export/{trial}.nir"' in page and f'href="export/{trial}.json"' in page
        assert linked == (trial in front), trial


def test_the_cli_exports_one_trial_and_refuses_bad_input(sweep: dict, tmp_path: Path) -> None:
    trial = _card(sweep, "fc")["trial_id"]
    cmd = [sys.executable, "-m", "snnsearch.export", str(sweep["dir"]), "--trial", trial,
           "--format", "nir", "--out", str(tmp_path), "--test-images", "500",
           "--data-dir", str(sweep["data"])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    card = json.loads((tmp_path / f"{trial}.json").read_text())
    assert card["verification"]["snntorch"]["prediction_agreement"] >= 0.995
    bad = subprocess.run([*cmd[:4], "--trial", "nope"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error: no trial 'nope'")
    assert len(bad.stderr.strip().splitlines()) == 1
