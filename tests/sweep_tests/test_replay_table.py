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
