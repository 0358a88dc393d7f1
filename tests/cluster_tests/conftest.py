"""A multi-node Ray cluster on one machine (``ray.cluster_utils.Cluster``): a head without GPUs
and two worker nodes with one fake GPU each, plus a directory standing in for the NFS share that
multi-node Ray needs as ``storage_path`` (since Ray 2.7).

The fixture owns its cluster: it shuts down only that cluster (never ``ray stop``, which would
kill other users' Ray on the machine) and restores the shared local Ray session if one was up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Node death is noticed by GCS health checks; Ray's defaults (≈3 s x 5 misses) would make a
# node-kill test wait ~30 s for nothing, so the head checks every 0.5 s.
FAST_FAILURE_DETECTION = {"health_check_period_ms": 500, "health_check_failure_threshold": 3,
                          "health_check_initial_delay_ms": 500}


@dataclass
class FakeGpuCluster:
    """The running cluster, its worker nodes (``ray._private.node.Node``) and the shared dir."""

    cluster: Any
    workers: list[Any]
    shared: Path


@pytest.fixture
def fake_gpu_cluster(tmp_path: Path) -> Iterator[FakeGpuCluster]:
    """Head (1 CPU, 0 GPU) + 2 workers (2 CPUs, 1 fake GPU each), driver connected to it."""
    import ray
    from ray.cluster_utils import Cluster

    had_session = ray.is_initialized()
    if had_session:
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "include_dashboard": False,
        "_system_config": FAST_FAILURE_DETECTION,
    })
    try:
        workers = [cluster.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        shared = tmp_path / "nfs"
        shared.mkdir()
        yield FakeGpuCluster(cluster, workers, shared)
    finally:
        ray.shutdown()
        cluster.shutdown()
        if had_session:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
