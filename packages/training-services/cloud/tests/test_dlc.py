"""DlcTrainingService against DlcStandIn (PAI-DLC's signed ROA API on 127.0.0.1)."""
from __future__ import annotations



from nni.runtime.training_service import ExperimentContext, TrialJobStatus
from nni.training_services.cloud.dlc import DlcTrainingService, roa_signature
from nni.training_services.cloud.testing import roa_string_to_sign, write_trial_code



def _service(tmp_path, dlc, **extra):
    code = write_trial_code(tmp_path / "code")
    nas = tmp_path / "nas"
    config = {"platform": "dlc", "type": "Worker", "image": "registry/pai-dlc/pytorch:1.6", "jobType": "PyTorchJob", "podCount": 1,
              "ecsSpec": "ecs.c6.large", "region": "cn-hangzhou", "nasDataSourceId": "data-nas-1",
              "accessKeyId": dlc.access_key_id, "accessKeySecret": dlc.access_key_secret,
              "localStorageMountPoint": str(nas), "containerStorageMountPoint": str(nas), **extra}
    ctx = ExperimentContext("dlcexp01", str(tmp_path / "exp"), "python3 trial.py", str(code))
    return DlcTrainingService(config, ctx)


def test_signature_matches_an_independent_implementation():
    headers = {"Accept": "application/json", "Content-Type": "application/json", "Content-MD5": "abc==",
               "Date": "Mon, 30 Nov 2026 07:00:00 GMT", "x-acs-version": "2020-12-03", "x-acs-signature-nonce": "n1",
               "x-acs-signature-method": "HMAC-SHA1", "x-acs-signature-version": "1.0"}
    import base64, hashlib, hmac
    expected = base64.b64encode(hmac.new(b"k", roa_string_to_sign("POST", "/api/v1/jobs", {"b": "2", "a": "1"}, headers).encode(),
                                         hashlib.sha1).digest()).decode()
    assert roa_signature("k", "POST", "/api/v1/jobs", {"b": "2", "a": "1"}, headers) == expected
    assert roa_signature("other", "POST", "/api/v1/jobs", {}, headers) != roa_signature("k", "POST", "/api/v1/jobs", {}, headers)


def test_jobs_created_signed_and_stopped(tmp_path, dlc, run_trials):
    states, metrics = run_trials(_service(tmp_path, dlc), ["dl000", "dl001"])
    assert {evs[-1].status for evs in states.values()} == {TrialJobStatus.SUCCEEDED}
    assert [r["type"] for r in metrics["dl001"]] == ["PERIODICAL", "FINAL"]
    body = next(iter(dlc.bodies.values()))
    assert body["JobType"] == "PyTorchJob" and body["DataSources"] == [{"DataSourceId": "data-nas-1"}]
    assert body["JobSpecs"] == [{"Type": "Worker", "Image": "registry/pai-dlc/pytorch:1.6", "PodCount": 1, "EcsSpec": "ecs.c6.large"}]
    assert "NNI_RUNNER_TOKEN" in body["Envs"] and body["Envs"]["NNI_RUNNER_TOKEN"] not in body["UserCommand"]
    assert all(r["headers"]["Authorization"].startswith(f"acs {dlc.access_key_id}:") for r in dlc.requests)
    assert {r["path"].split("/")[4] for r in dlc.requests_to("POST", r"/stop$")} == set(dlc.bodies)
    assert not dlc.running()
    assert "platform dlc" in (tmp_path / "exp" / "trials" / "dl000" / "trial.log").read_text()


def test_wrong_secret_fails_the_trial_with_the_service_message(tmp_path, dlc, run_trials):
    states, _ = run_trials(_service(tmp_path, dlc, accessKeySecret="not-the-secret"), ["bad01"])
    last = states["bad01"][-1]
    assert last.status == TrialJobStatus.FAILED and not last.requeue
    assert "IncompleteSignature" in last.message or "signature" in last.message.lower()
    assert "not-the-secret" not in last.message


def test_job_failure_requeues_the_trial(tmp_path, dlc, lose_running_trial):
    last = lose_running_trial(_service(tmp_path, dlc), dlc, "ECS instance released")
    assert last.status == TrialJobStatus.SYS_CANCELED and last.requeue
    assert "PAI-DLC job dlc00000001 failed: Failed: JobFailed ECS instance released" in last.message
