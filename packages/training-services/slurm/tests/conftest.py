"""A real single-node SLURM cluster (:mod:`nni.training_services.slurm.testing`), one per test process."""
from __future__ import annotations

import os
import time

import pytest

from nni.training_services.slurm.testing import SlurmCluster, cluster_unavailable_reason


@pytest.fixture(scope="session")
def slurm_cluster():
    """munged + slurmctld + slurmd on private ports; ``SLURM_CONF`` points at it meanwhile."""
    reason = cluster_unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster()
    old = os.environ.get("SLURM_CONF")
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    os.environ["SLURM_CONF"] = str(cluster.conf)
    yield cluster
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
    cluster.stop()


@pytest.fixture
def slurm(slurm_cluster):
    """The session's cluster, with no job left behind by the test."""
    yield slurm_cluster
    deadline = time.monotonic() + 5  # a job the test cancelled itself may still be completing
    while slurm_cluster.active_jobs() and time.monotonic() < deadline:
        time.sleep(0.1)
    leftover = slurm_cluster.active_jobs()
    slurm_cluster.cancel_all()
    assert not leftover, f"the test left SLURM jobs behind:\n{slurm_cluster.squeue()}"
