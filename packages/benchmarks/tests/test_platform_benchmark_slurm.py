"""python -m nni.platform_benchmark --platform slurm: argument checks, and a small real run."""
from __future__ import annotations

import subprocess
import sys

import pytest


def test_unknown_platform_and_mode_are_refused():
    out = subprocess.run([sys.executable, "-m", "nni.platform_benchmark", "--platform", "yarn"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "invalid choice: 'yarn'" in out.stderr
    out = subprocess.run([sys.executable, "-m", "nni.platform_benchmark", "--platform", "slurm", "--modes", "reuse,batch"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--modes: unknown mode(s) batch; allowed: reuse, single" in out.stderr


@pytest.mark.slow
def test_small_run_against_local():
    pytest.importorskip("nni.training_services.slurm")
    from nni.platform_benchmark.slurm import bench_slurm
    from nni.training_services.slurm.testing import cluster_unavailable_reason

    if cluster_unavailable_reason():
        pytest.skip(cluster_unavailable_reason())
    result = bench_slurm(trials=4, concurrency=2, trial_seconds=0.1, modes=("reuse",), fast_scheduling=True)
    assert result["all_succeeded"], result
    reuse = result["slurm_reuse"]
    assert reuse["jobs_submitted"] == 2 and reuse["calls"]["sbatch"] == 3 and reuse["slurm_commands_s"] > 0
    assert 0 < reuse["job_start_wait_share"] < 1 and "jobs_left_after_stop" not in reuse
