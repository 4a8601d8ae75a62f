"""Hybrid mode with real trial processes (issue 13 item 6).

* :class:`HybridTrainingService` over two local platforms (the second renamed, so the routing
  and the per-trial platform are visible) runs real trials on both;
* ``nnictl create`` with ``trainingService`` given as a list runs the experiment, and the REST
  ``trial-jobs`` items name the platform of each trial;
* the manager names the list entry of a platform that is not installed.

A local + remote experiment over real sshd is added with the remote training service.
"""
from __future__ import annotations

import asyncio
import json
import sys

import pytest

from nni.runtime.hybrid_training_service import HybridTrainingService
from nni.runtime.training_service import ExperimentContext, MetricEvent, StateEvent, TrialJobStatus, TrialSpec
from nni.server.testing import experiment_id_of, wait_until
from nni.training_services.local.service import LocalTrainingService

TRIAL = """\
import nni
p = nni.get_next_parameter()
nni.report_final_result(p["x"])
"""


class SecondLocal(LocalTrainingService):
    """The local platform under another name: a stand-in for a second kind of platform."""

    platform = "local-b"


def test_hybrid_runs_real_trials_on_both_platforms(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL)
    ctx = ExperimentContext("hybrid01", str(tmp_path / "exp"), f"{sys.executable} trial.py", str(code))
    hybrid = HybridTrainingService([LocalTrainingService({"platform": "local"}, ctx), SecondLocal({"platform": "local"}, ctx)], ctx)
    hybrid.check_request(None)

    async def go():
        await hybrid.start()
        for i in range(4):
            parameter = json.dumps({"parameter_id": i, "parameter_source": "algorithm", "parameters": {"x": i / 10}, "parameter_index": 0})
            await hybrid.submit(TrialSpec(f"hy{i:03d}", i, parameter))
        ended, finals = {}, {}
        async for event in hybrid.events():
            if isinstance(event, MetricEvent) and event.record.get("type") == "FINAL":
                finals[event.trial_id] = json.loads(event.record["value"])
            elif isinstance(event, StateEvent) and event.status.is_final:
                ended[event.trial_id] = event.status
            if len(ended) == 4:
                break
        await hybrid.stop()
        return ended, finals

    ended, finals = asyncio.run(asyncio.wait_for(go(), 120))
    assert set(ended.values()) == {TrialJobStatus.SUCCEEDED}
    assert finals == {f"hy{i:03d}": i / 10 for i in range(4)}
    # both unbounded: they take turns, and each trial names the platform that ran it
    assert [hybrid.get_trial_job(f"hy{i:03d}").platform for i in range(4)] == ["local", "local-b", "local", "local-b"]
    assert all((tmp_path / "exp" / "trials" / f"hy{i:03d}" / "trial.log").exists() for i in range(4))


@pytest.mark.slow
def test_nnictl_experiment_with_a_platform_list(nnictl, write_config, free_port):
    config = write_config(TRIAL, trainingService=[{"platform": "local"}], maxTrialNumber=3)
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    wait_until(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "DONE", what="DONE")
    trials = json.loads(nnictl("trial", "ls", eid).stdout)
    assert len(trials) == 3 and {t["status"] for t in trials} == {"SUCCEEDED"}
    assert {t["platform"] for t in trials} == {"local"}
    assert "local" in nnictl("experiment", "list", "--all").stdout
    nnictl("stop", eid)


def test_manager_names_the_entry_of_a_missing_platform(tmp_path):
    from nni.server.manager import ManagerError, _load_training_service

    config = {"trialCommand": "true", "trialCodeDirectory": str(tmp_path),
              "trainingService": [{"platform": "local"}, {"platform": "no-such-platform"}]}
    with pytest.raises(ManagerError, match=r"^trainingService\[1\]\.platform: .*install nni-ts-no-such-platform$"):
        _load_training_service(config, "hybrid02", str(tmp_path / "exp"))
    single = _load_training_service(dict(config, trainingService=[{"platform": "local"}]), "hybrid02", str(tmp_path / "exp"))
    assert isinstance(single, LocalTrainingService)
    both = _load_training_service(dict(config, trainingService=[{"platform": "local"}, {"platform": "local"}]), "hybrid02", str(tmp_path / "exp"))
    assert isinstance(both, HybridTrainingService) and [type(s) for s in both.services] == [LocalTrainingService] * 2


def test_local_capacity_is_its_gpu_slots(tmp_path):
    gpus = [{"index": 0}, {"index": 1}, {"index": 2}]
    plain = ExperimentContext("hybrid03", str(tmp_path / "exp"), "true", str(tmp_path))
    assert LocalTrainingService({"platform": "local"}, plain, gpu_inventory=gpus).capacity() is None
    two = ExperimentContext("hybrid03", str(tmp_path / "exp"), "true", str(tmp_path), trial_gpu_number=2)
    config = {"platform": "local", "maxTrialNumberPerGpu": 2, "gpuIndices": [0, 1, 2]}
    assert LocalTrainingService(config, two, gpu_inventory=gpus).capacity() == 3  # 3 GPUs x 2 trials / 2 GPUs each
    assert LocalTrainingService(dict(config, gpuIndices=[1]), plain.__class__(**{**plain.__dict__, "trial_gpu_number": 1}),
                                gpu_inventory=gpus).capacity() == 2
