"""OpenpaiTrainingService against OpenpaiStandIn (OpenPAI's v2 REST API on 127.0.0.1)."""
from __future__ import annotations

import asyncio

import yaml

from nni.runtime.training_service import ExperimentContext, TrialJobStatus, TrialSpec
from nni.training_services.cloud.openpai import OpenpaiTrainingService
from nni.training_services.cloud.testing import collect, finished, parameter, wait_running, write_trial_code


def _config(pai, storage, **extra):
    return {"platform": "openpai", "host": pai.url, "username": pai.username, "token": pai.token,
            "trialCpuNumber": 2, "trialMemorySize": 8192, "storageConfigName": "confignfs-data",
            "dockerImage": "msranni/nni:latest", "localStorageMountPoint": str(storage),
            "containerStorageMountPoint": str(storage), "reuseMode": True, **extra}


def _service(tmp_path, pai, **extra):
    code = write_trial_code(tmp_path / "code")
    ctx = ExperimentContext("paiexp01", str(tmp_path / "exp"), "python3 trial.py", str(code))
    return OpenpaiTrainingService(_config(pai, tmp_path / "storage", **extra), ctx)


def test_reuse_mode_runs_trials_in_jobs_and_stops_them(tmp_path, pai, run_trials):
    ts = _service(tmp_path, pai)
    states, metrics = run_trials(ts, [f"tr{i:03d}" for i in range(3)])
    assert {evs[-1].status for evs in states.values()} == {TrialJobStatus.SUCCEEDED}
    for i in range(3):
        assert [r["type"] for r in metrics[f"tr{i:03d}"]] == ["PERIODICAL", "FINAL"]
    # the submitted job protocol
    posts = pai.requests_to("POST", r"/rest-server/api/v2/jobs$")
    assert 1 <= len(posts) <= 3
    assert all(p["headers"]["Authorization"] == f"Bearer {pai.token}" for p in posts)
    job = yaml.safe_load(posts[0]["body"])
    assert job["name"].startswith("nni_exp_paiexp01_env_")
    role = next(iter(job["taskRoles"].values()))
    assert role["resourcePerInstance"] == {"cpu": 2, "memoryMB": 8192, "gpu": 0}
    assert job["prerequisites"][0]["uri"] == "msranni/nni:latest"
    assert job["extras"]["com.microsoft.pai.runtimeplugin"][0]["parameters"]["storageConfigNames"] == ["confignfs-data"]
    assert "--connect 127.0.0.1:" in role["commands"][-1]
    token = job["secrets"]["nni_runner_token"]
    assert token not in role["commands"][-1]  # referenced as a secret, not written into the command
    # the trial's files on the storage, copied into the experiment folder
    assert "platform openpai" in (tmp_path / "exp" / "trials" / "tr000" / "stdout").read_text()
    # every job was stopped at the end
    stopped = {r["path"].split("~")[1].split("/")[0] for r in pai.requests_to("PUT", "executionType")}
    assert stopped == {yaml.safe_load(p["body"])["name"] for p in posts}
    assert not pai.running()


def test_failed_job_requeues_its_trial_with_the_reason(tmp_path, pai, lose_running_trial):
    last = lose_running_trial(_service(tmp_path, pai), pai, "node gpu-17 lost")
    assert last.status == TrialJobStatus.SYS_CANCELED and last.requeue
    assert "OpenPAI job nni_exp_paiexp01_env_1 failed" in last.message and "node gpu-17 lost" in last.message


def test_cancelled_trial_frees_its_environment_for_the_next_trial(tmp_path, pai):
    ts = _service(tmp_path, pai)

    async def main():
        await ts.start()
        try:
            await ts.submit(TrialSpec("long1", 0, parameter(0, sleep=30)))
            await wait_running(ts, "long1")
            await ts.cancel("long1")
            states, _ = await collect(ts, finished(1))  # the manager, too, submits once the trial ended
            await ts.submit(TrialSpec("next1", 1, parameter(1)))
            more, _ = await collect(ts, finished(1))
            return {**states, **more}, None
        finally:
            await ts.stop()

    states, _ = asyncio.run(main())
    assert states["long1"][-1].status == TrialJobStatus.USER_CANCELED
    assert states["next1"][-1].status == TrialJobStatus.SUCCEEDED
    assert len(pai.requests_to("POST", r"/jobs$")) == 1  # the same job ran both


def test_jobs_failing_before_their_runner_connects_are_retried_then_fail(tmp_path, pai):
    pai.fail_on_start = 5
    ts = _service(tmp_path, pai)

    async def main():
        await ts.start()
        try:
            await ts.submit(TrialSpec("doom1", 0, parameter(0)))
            states, _ = await collect(ts, finished(1))
            # the manager re-queues a SYS_CANCELED+requeue trial as a new one; do it by hand here
            for i in range(2):
                await ts.submit(TrialSpec(f"doom{i + 2}", i + 1, parameter(0)))
                more, _ = await collect(ts, finished(1))
                states.update(more)
            return states
        finally:
            await ts.stop()

    states = asyncio.run(main())
    assert [states[f"doom{i}"][-1].status for i in (1, 2, 3)] == [TrialJobStatus.SYS_CANCELED] * 2 + [TrialJobStatus.FAILED]
    assert states["doom1"][-1].requeue and not states["doom3"][-1].requeue
    assert "failed before its trial runner connected: FAILED (exit code 7): image pull failed" in states["doom1"][-1].message
    assert "3 jobs in a row" in states["doom3"][-1].message


def test_refused_submission_fails_the_trial_with_the_service_message(tmp_path, pai, run_trials):
    states, _ = run_trials(_service(tmp_path, pai, virtualCluster="nope"), ["vc001"])
    last = states["vc001"][-1]
    assert last.status == TrialJobStatus.FAILED
    assert last.message == "OpenPAI: the job was not submitted: OpenPAI: submit job nni_exp_paiexp01_env_1: HTTP 400: Virtual cluster nope is not found."


def test_non_reuse_mode_runs_one_single_trial_job_per_trial(tmp_path, pai, run_trials):
    states, _ = run_trials(_service(tmp_path, pai, reuseMode=False), ["nr000", "nr001"])
    assert {evs[-1].status for evs in states.values()} == {TrialJobStatus.SUCCEEDED}
    names = sorted(yaml.safe_load(p["body"])["name"] for p in pai.requests_to("POST", r"/jobs$"))
    assert names == ["nni_exp_paiexp01_trial_nr000", "nni_exp_paiexp01_trial_nr001"]
    commands = [next(iter(pai.protocols[n]["taskRoles"].values()))["commands"][-1] for n in names]
    assert all(c.endswith("--single") for c in commands)
    pai.wait_for(lambda: not pai.running(), what="the single-trial jobs to end by themselves")


def test_code_copied_to_the_storage_honours_nniignore(tmp_path):
    from nni.training_services.cloud.base import copy_code

    code = write_trial_code(tmp_path / "code")
    (code / ".nniignore").write_text("data/\n*.ckpt\n")
    (code / "data").mkdir()
    (code / "data" / "big.bin").write_bytes(b"x" * 100)
    (code / "model.ckpt").write_bytes(b"x")
    (code / "pkg").mkdir()
    (code / "pkg" / "util.py").write_text("X = 1\n")
    assert copy_code(str(code), tmp_path / "copy") == 3  # trial.py, .nniignore, pkg/util.py
    assert (tmp_path / "copy" / "pkg" / "util.py").exists() and not (tmp_path / "copy" / "data").exists()
    assert not (tmp_path / "copy" / "model.ckpt").exists()
