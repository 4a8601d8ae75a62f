"""AmlTrainingService through AmlAdapter against FakeAzureml (the azureml.core interface)."""
from __future__ import annotations

import asyncio
import shutil
import sys

import pytest

from nni.runtime.training_service import ExperimentContext, TrialJobStatus
from nni.training_services.cloud.aml import AmlAdapter, AmlTrainingService, import_azureml
from nni.training_services.cloud.base import CloudApiError
from nni.training_services.cloud.testing import FakeAzureml, write_trial_code

CONFIG = {"platform": "aml", "dockerImage": "msranni/nni:latest", "subscriptionId": "01234567-89ab-cdef-0123-456789abcdef", "resourceGroup": "rg-1",
          "workspaceName": "ws-1", "computeTarget": "cpu-cluster", "maxTrialNumberPerGpu": 1, "useActiveGpu": False}


@pytest.fixture
def service(tmp_path):
    fake = FakeAzureml(tmp_path / "aml")
    code = write_trial_code(tmp_path / "code")
    eid = f"aml{tmp_path.name[-5:]}".replace("_", "x")
    ctx = ExperimentContext(eid, str(tmp_path / "exp"), "python3 trial.py", str(code))

    made_services = []

    def make(**extra):
        config = dict(CONFIG, **extra)
        ts = AmlTrainingService(config, ctx, adapter=AmlAdapter(fake, config, f"nni_exp_{eid}"))
        made_services.append(ts)
        return ts, fake

    yield make
    for made in made_services:
        shutil.rmtree(made.base, ignore_errors=True)


def test_runs_submitted_through_the_sdk_interface_and_cancelled(service, run_trials):
    ts, fake = service()
    states, metrics = run_trials(ts, ["am000", "am001"])
    assert {evs[-1].status for evs in states.values()} == {TrialJobStatus.SUCCEEDED}
    assert [r["type"] for r in metrics["am000"]] == ["PERIODICAL", "FINAL"]
    runs = fake.submitted()
    assert runs and all(r["compute_target"] == "cpu-cluster" and r["base_image"] == "msranni/nni:latest" and r["user_managed"] for r in runs)
    assert all("NNI_RUNNER_TOKEN" in r["environment_variables"] for r in runs)
    assert all(r["environment_variables"]["NNI_RUNNER_TOKEN"] not in r["command"][2] for r in runs)
    assert runs[0]["experiment"] == f"nni_exp_{ts.context.experiment_id}"
    assert fake.cancelled() == sorted(r["run_id"] for r in runs)  # every run cancelled at stop
    assert not fake.running()
    # trial files went to the run's outputs (uploaded by AML), not to this machine
    snapshot = fake.root / "snapshots" / runs[0]["run_id"]
    assert list((snapshot / "outputs" / "trials").glob("*/trial.log"))


def test_failed_run_requeues_with_the_aml_error(service, lose_running_trial):
    ts, fake = service()
    last = lose_running_trial(ts, fake, "low-priority node preempted")
    assert last.status == TrialJobStatus.SYS_CANCELED and last.requeue
    assert "AML job" in last.message and "Failed: low-priority node preempted" in last.message


def test_unknown_compute_target_is_one_line(service):
    ts, _ = service(computeTarget="gpu-cluster")
    with pytest.raises(CloudApiError, match=r"^trainingService\.computeTarget: AML compute target 'gpu-cluster' not found") as info:
        asyncio.run(ts.start())
    assert "\n" not in str(info.value)


def test_missing_sdk_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "azureml", None)
    with pytest.raises(CloudApiError, match="pip install azureml azureml-sdk"):
        import_azureml()
