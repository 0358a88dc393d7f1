"""The replay benchmark's recorded table and table-backed trainable (lookup and metrics; the
Ray path runs in bench/replay.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnsearch.spaces.space import load_space
from snnsearch.testing.replay import ReplayTable, epoch_metrics

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "bench" / "replay_mnist.parquet"


@pytest.fixture(scope="module")
def table() -> ReplayTable:
    return ReplayTable.load(TABLE)


def test_recorded_table_shape(table: ReplayTable) -> None:
    assert len(table.curves) >= 200
    assert all(len(c) >= 5 and [r["epoch"] for r in c] == list(range(1, len(c) + 1))
               for c in table.curves.values())
    models = {(c["model"], c["neuron"]) for c in table.configs.values()}
    assert len(models) == 8  # every model x neuron pair of the space has curves


def test_nearest_is_exact_on_recorded_points_and_stays_in_family(table: ReplayTable) -> None:
    for cid, cfg in table.configs.items():
        assert table.nearest(cfg) == cid
    space = load_space(REPO / "snnsearch" / "testing" / "replay_mnist.yaml")
    for seed in range(20):
        cfg = space.sample(seed)
        got = table.configs[table.nearest(cfg)]
        assert (got["model"], got["neuron"]) == (cfg["model"], cfg["neuron"])


def test_epoch_metrics_normalise_ilif_rates(table: ReplayTable) -> None:
    ilif = next(c for c in table.curves.values() if c[0]["neuron"] == "ilif")
    m = epoch_metrics(ilif[0])
    assert m["output_rate_norm"] == pytest.approx(m["output_firing_rate"] / ilif[0]["D"])
    assert {"val_acc", "energy_mj", "epoch", "silent_fraction", "epoch_time_s"} <= set(m)


LONG = REPO / "bench" / "replay_fashion.parquet"


def test_long_recording_matches_its_draw_and_has_costs() -> None:
    """The FashionMNIST recording (issue 22): the configurations ``replay_record.py --profile
    fashion_long`` draws, 20 epochs each, every family and model x neuron pair present, a
    positive CPU cost per epoch and the MAC x T model beside it; the MNIST draw of issue 11 is
    unchanged by the profile refactor."""
    import importlib.util
    import json
    import sys

    import pyarrow.parquet as pq

    spec = importlib.util.spec_from_file_location("replay_record", REPO / "bench" /
                                                  "replay_record.py")
    record = importlib.util.module_from_spec(spec)
    sys.modules["replay_record"] = record  # its frozen dataclass looks its module up there
    spec.loader.exec_module(record)
    mnist = ReplayTable.load(TABLE)
    for cfg in record.draw(216, 0):
        got = mnist.configs[cfg["config_id"]]
        assert all(got[k] == v for k, v in cfg.items()), cfg
    raw = pq.read_table(LONG)
    meta = json.loads(raw.schema.metadata[b"snnsearch_replay"])
    assert meta["profile"] == "fashion_long" and meta["epochs"] >= 20
    long = ReplayTable(raw.to_pylist())
    drawn = record.draw(meta["configs"], meta["seed"], record.PROFILES["fashion_long"])
    assert len(long.curves) == len(drawn) >= 300
    for cfg in drawn:
        got = long.configs[cfg["config_id"]]
        assert all(got[k] == v for k, v in cfg.items()), cfg
        curve = long.curves[cfg["config_id"]]
        assert len(curve) == 20 or curve[-1]["error"]
        assert all(r["cpu_s"] > 0 and r["mac_t"] == r["ann_macs"] * r["T"]
                   for r in curve if not r["error"])
    assert {c["model"] for c in long.configs.values()} == {"fc", "csnn", "spikformer"}
    assert len({(c["model"], c["neuron"]) for c in long.configs.values()}) == 12
    assert LONG.stat().st_size <= 2 * 2**20
