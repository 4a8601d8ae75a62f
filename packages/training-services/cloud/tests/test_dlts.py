"""DltsTrainingService against DltsStandIn (a DLTS dashboard's jobs API on 127.0.0.1)."""
from __future__ import annotations


import pytest

from nni.runtime.training_service import ExperimentContext, TrialJobStatus
from nni.training_services.cloud.dlts import DltsTrainingService, dlts_settings
from nni.training_services.cloud.testing import write_trial_code



def _service(tmp_path, dlts, gpu=None):
    code = write_trial_code(tmp_path / "code")
    ctx = ExperimentContext("dltsexp1", str(tmp_path / "exp"), "python3 trial.py", str(code), trial_gpu_number=gpu)
    return DltsTrainingService({"platform": "dlts", "dashboard": dlts.url + "/", "dockerImage": "msranni/nni"}, ctx)


def test_jobs_submitted_to_the_dashboard_and_killed(tmp_path, dlts, run_trials):
    states, metrics = run_trials(_service(tmp_path, dlts, gpu=0), ["dt000", "dt001"])
    assert {evs[-1].status for evs in states.values()} == {TrialJobStatus.SUCCEEDED}
    assert [r["type"] for r in metrics["dt000"]] == ["PERIODICAL", "FINAL"]
    body = next(iter(dlts.bodies.values()))
    assert body["image"] == "msranni/nni" and body["vcName"] == "platform" and body["resourcegpu"] == 0
    assert body["jobtrainingtype"] == "RegularJob" and [e["name"] for e in body["env"]] == ["NNI_RUNNER_TOKEN"]
    assert {r["path"].split("/")[5] for r in dlts.requests_to("PUT", r"/status$")} == set(dlts.bodies)
    assert not dlts.running()
    assert "platform dlts" in (tmp_path / "exp" / "trials" / "dt000" / "trial.log").read_text()


def test_killed_job_requeues_its_trial(tmp_path, dlts, lose_running_trial):
    last = lose_running_trial(_service(tmp_path, dlts), dlts, "node drained by admin")
    assert last.status == TrialJobStatus.SYS_CANCELED and last.requeue and "failed: failed: node drained by admin" in last.message


def test_missing_account_settings_are_named():
    with pytest.raises(ValueError, match=r"environment variable DLTS_PASSWORD is not set"):
        dlts_settings({"DLTS_CLUSTER": "c", "DLTS_TEAM": "t", "DLTS_EMAIL": "e"})
    assert dlts_settings({"DLTS_CLUSTER": "c", "DLWS_VC_NAME": "t", "DLWS_USER_EMAIL": "e", "DLTS_PASSWORD": "p"})["team"] == "t"
