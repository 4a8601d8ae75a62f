"""python -m nni.platform_benchmark --platform ray: argument checks, and a small real run."""
from __future__ import annotations

import subprocess
import sys

import pytest


def test_unknown_mode_is_refused():
    out = subprocess.run([sys.executable, "-m", "nni.platform_benchmark", "--platform", "ray", "--modes", "cluster,yarn"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--modes: unknown mode(s) yarn; allowed: cluster, own, single" in out.stderr


@pytest.mark.slow
def test_small_run_against_local():
    pytest.importorskip("nni.training_services.ray")
    from nni.platform_benchmark.ray import bench_ray
    from nni.training_services.ray.testing import ray_unavailable_reason

    if ray_unavailable_reason():
        pytest.skip(ray_unavailable_reason())
    result = bench_ray(trials=4, concurrency=2, trial_seconds=0.1, modes=("cluster",))
    assert result["all_succeeded"], result
    assert result["ray_cluster"]["ratio_to_local"] > 0 and result["ray_cluster"]["trials_span_s"] > 0
    assert result["cluster_cpus_free_after_stop"] == "2/2"  # stop left no task holding a CPU
    assert isinstance(result["within_2x_local"], bool)
