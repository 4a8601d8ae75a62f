"""The three platforms in-process against the stand-in API server (real ``kubernetes`` client):
the manifests they submit, trials reporting through runners in the 'pods', jobs deleted."""
from __future__ import annotations

import asyncio
from pathlib import Path

from nni.runtime.training_service import TrialJobStatus
from nni.training_services.kubernetes.service import AdlTrainingService, FrameworkControllerTrainingService, KubeflowTrainingService


def _role(command="python3 trial.py", **kw):
    return {"command": command, "cpuNumber": 1, "memorySize": "512m", **kw}


def _succeeded(n):
    return lambda states, metrics: sum(evs[-1].status.is_final for evs in states.values()) >= n


def test_tfjob_reuse_mode_runs_trials_in_two_environments(tmp_path, code, cluster, kubeconfig, nfs, experiment_id, helpers):
    config = helpers.canonical_ts({"platform": "kubeflow", "operator": "tf-operator",
                                   "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)},
                                   "worker": _role(gpuNumber=0), "ps": _role("sleep 600", replicas=1)}, code)

    async def main():
        ts = KubeflowTrainingService(config, helpers.context(tmp_path, code, experiment_id))
        await ts.start()
        for i in range(2):
            await ts.submit(helpers.TrialSpec(f"a{i}", i, helpers.param(i, sleep=0.3)))
        states, metrics = await helpers.collect(ts, _succeeded(2))
        await ts.submit(helpers.TrialSpec("a2", 2, helpers.param(2)))  # goes to an idle environment
        states2, metrics2 = await helpers.collect(ts, _succeeded(1))
        assert len(cluster.list("tfjobs")) == 2 and len(cluster.list("pods")) == 4  # 2 x (worker + ps) still up
        await ts.stop()
        return {**states, **states2}, {**metrics, **metrics2}

    states, metrics = asyncio.run(main())
    assert {t: evs[-1].status for t, evs in states.items()} == {f"a{i}": TrialJobStatus.SUCCEEDED for i in range(3)}
    assert [m["type"] for m in metrics["a1"]] == ["PERIODICAL", "FINAL"] and metrics["a1"][1]["value"] == "1"
    # the manifests: TFJob kubeflow.org/v1, the worker runs the runner, the ps its own command
    jobs = cluster.created_of("tfjobs")
    assert len(jobs) == 2, "the third trial reused an environment"
    job = jobs[0]
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "TFJob"
    assert job["metadata"]["labels"]["nni.experiment"] == experiment_id
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    container = worker["template"]["spec"]["containers"][0]
    assert container["name"] == "tensorflow" and container["image"] == "msranni/nni:latest"
    command = container["command"]
    assert command[:3] == ["python3", "-m", "nni.training_services.local.runner"] and command[3] == "--connect"
    assert command[4].startswith("127.0.0.1:") and command[5:] == ["--runner-id", job["metadata"]["name"]]
    token = {e["name"]: e.get("value") for e in container["env"]}["NNI_RUNNER_TOKEN"]
    assert token and token not in " ".join(command)
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    volume = worker["template"]["spec"]["volumes"][0]
    assert volume["nfs"] == {"server": "127.0.0.1", "path": f"{nfs}/nni/{experiment_id}"}
    assert container["volumeMounts"] == [{"name": "nni-storage", "mountPath": f"/tmp/nni-{experiment_id}"}]
    ps = job["spec"]["tfReplicaSpecs"]["PS"]["template"]["spec"]["containers"][0]
    assert ps["command"] == ["sh", "-c", "sleep 600"] and "NNI_RUNNER_TOKEN" not in str(ps)
    # the code went to the storage; the trials' output came back into the experiment folder
    assert (nfs / "nni" / experiment_id / "code" / "trial.py").is_file()
    log = (tmp_path / "exp" / experiment_id / "trials" / "a0" / "trial.log").read_text()
    # (the pod's cwd is the mount path, the stand-in's symlink to the export: getcwd shows the export)
    assert "platform kubeflow" in log and f"cwd {nfs.resolve()}/nni/{experiment_id}/code" in log
    # stop deleted the jobs (and with them the pods)
    assert cluster.list("tfjobs") == [] and cluster.list("pods") == []


def test_pytorchjob_without_reuse_runs_one_job_per_trial(tmp_path, code, cluster, kubeconfig, nfs, experiment_id, helpers):
    auth = tmp_path / "docker-config.json"
    auth.write_text('{"auths": {"registry.example.com": {"auth": "dXNlcjpwdw=="}}}')
    config = helpers.canonical_ts({"platform": "kubeflow", "operator": "pytorch-operator", "reuseMode": False,
                                   "storage": {"storageType": "nfs", "server": "localhost", "path": str(nfs)},
                                   "master": _role(gpuNumber=0, privateRegistryAuthPath=str(auth)),
                                   "worker": _role("sleep 600", replicas=2)}, code)

    async def main():
        ts = KubeflowTrainingService(config, helpers.context(tmp_path, code, experiment_id))
        await ts.start()
        (secret,) = cluster.list("secrets")  # the registry login, for the pods' imagePullSecrets
        assert secret["type"] == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" in secret["data"]
        await ts.submit(helpers.TrialSpec("Pt0", 0, helpers.param(5)))
        states, metrics = await helpers.collect(ts, _succeeded(1))
        # the trial's job is deleted as soon as the trial ends, not at stop
        await asyncio.to_thread(cluster.wait_for, lambda: cluster.list("pytorchjobs") == [] and cluster.list("pods") == [], what="job deleted")
        await ts.stop()
        return states, metrics

    states, metrics = asyncio.run(main())
    assert states["Pt0"][-1].status == TrialJobStatus.SUCCEEDED and metrics["Pt0"][-1]["value"] == "5"
    (job,) = cluster.created_of("pytorchjobs")
    assert job["kind"] == "PyTorchJob" and job["metadata"]["name"] == f"nni-exp-{experiment_id}-trial-pt0"
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1 and specs["Worker"]["replicas"] == 2
    master = specs["Master"]["template"]["spec"]["containers"][0]
    assert master["name"] == "pytorch" and master["command"][-1] == "--single"
    assert specs["Master"]["template"]["spec"]["imagePullSecrets"] == [{"name": f"nni-exp-{experiment_id}-registry"}]
    assert cluster.list("secrets") == []  # deleted at stop


def test_frameworkcontroller_task_roles(tmp_path, code, cluster, kubeconfig, nfs, experiment_id, helpers):
    config = helpers.canonical_ts({
        "platform": "frameworkcontroller", "serviceAccountName": "frameworkcontroller",
        "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)},
        "taskRoles": [
            {"name": "worker", "taskNumber": 1, "dockerImage": "msranni/nni:v2.5", **_role(gpuNumber=0),
             "frameworkAttemptCompletionPolicy": {"minFailedTaskCount": 1, "minSucceedTaskCount": 1}},
            {"name": "ps", "taskNumber": 2, **_role("sleep 600")},
        ]}, code)

    async def main():
        ts = FrameworkControllerTrainingService(config, helpers.context(tmp_path, code, experiment_id))
        await ts.start()
        await ts.submit(helpers.TrialSpec("f0", 0, helpers.param(3)))
        states, metrics = await helpers.collect(ts, _succeeded(1))
        assert len(cluster.list("pods")) == 3  # worker + 2 ps tasks
        await ts.stop()
        return states, metrics

    states, metrics = asyncio.run(main())
    assert states["f0"][-1].status == TrialJobStatus.SUCCEEDED and metrics["f0"][-1]["value"] == "3"
    (fw,) = cluster.created_of("frameworks")
    assert fw["apiVersion"] == "frameworkcontroller.microsoft.com/v1" and fw["kind"] == "Framework"
    assert fw["spec"]["executionType"] == "Start" and fw["spec"]["retryPolicy"]["maxRetryCount"] == 0
    worker, ps = fw["spec"]["taskRoles"]
    assert worker["name"] == "worker" and worker["taskNumber"] == 1 and ps["taskNumber"] == 2
    # the v2 key minSucceedTaskCount becomes FrameworkController's minSucceededTaskCount
    assert worker["frameworkAttemptCompletionPolicy"] == {"minFailedTaskCount": 1, "minSucceededTaskCount": 1}
    pod = worker["task"]["pod"]["spec"]
    assert pod["serviceAccountName"] == "frameworkcontroller" and pod["containers"][0]["image"] == "msranni/nni:v2.5"
    assert pod["containers"][0]["command"][2] == "nni.training_services.local.runner"
    assert cluster.list("frameworks") == [] and cluster.list("pods") == []


def test_adaptdl_job_per_trial_with_nfs_and_checkpoint(tmp_path, code, cluster, kubeconfig, experiment_id, helpers):
    mount = tmp_path / "pod-view" / "nfs"  # containerMountPath: where the pods see the NFS export
    export = tmp_path / "adl-export"
    export.mkdir()
    config = helpers.canonical_ts({
        "platform": "adl", "dockerImage": "digits:latest", "imagePullSecrets": [{"name": "stagingsecret"}], "codeDirectory": ".",
        "cpuNumber": 1, "memorySize": "1Gi", "nfs": {"server": "127.0.0.1", "path": str(export), "containerMountPath": str(mount)},
        "checkpoint": {"storageClass": "dfs", "storageSize": "1Gi"}}, code, trialGpuNumber=0)

    async def main():
        ts = AdlTrainingService(config, helpers.context(tmp_path, code, experiment_id, trial_gpu_number=0))
        await ts.start()
        assert [c["metadata"]["name"] for c in cluster.list("persistentvolumeclaims")] == [f"nni-exp-{experiment_id}-checkpoint"]
        for i in range(2):
            await ts.submit(helpers.TrialSpec(f"d{i}", i, helpers.param(i + 7)))
        states, metrics = await helpers.collect(ts, _succeeded(2))
        await asyncio.to_thread(cluster.wait_for, lambda: cluster.list("adaptdljobs") == [], what="jobs deleted after their trials")
        await ts.stop()
        return states, metrics

    states, metrics = asyncio.run(main())
    assert {t: evs[-1].status for t, evs in states.items()} == {"d0": TrialJobStatus.SUCCEEDED, "d1": TrialJobStatus.SUCCEEDED}
    assert metrics["d1"][-1]["value"] == "8"
    jobs = cluster.created_of("adaptdljobs")
    assert sorted(j["metadata"]["name"] for j in jobs) == [f"nni-exp-{experiment_id}-trial-d0", f"nni-exp-{experiment_id}-trial-d1"]
    job = jobs[0]
    assert job["apiVersion"] == "adaptdl.petuum.com/v1" and job["kind"] == "AdaptDLJob"
    assert job["spec"]["preemptible"] is False and job["spec"]["maxReplicas"] == 1
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "digits:latest" and "workingDir" not in container  # '.': the image's own folder
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert pod["imagePullSecrets"] == [{"name": "stagingsecret"}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ADAPTDL_CHECKPOINT_PATH"] == "/adaptdl/checkpoint" and env["ADAPTDL_TENSORBOARD_LOGDIR"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["nfs"]["nfs"] == {"server": "127.0.0.1", "path": str(export)}
    assert volumes["checkpoint"]["persistentVolumeClaim"] == {"claimName": f"nni-exp-{experiment_id}-checkpoint"}
    assert {"name": "nfs", "mountPath": str(mount)} in container["volumeMounts"]
    # the trial ran in the image's folder (the code), its folder lived in the pod
    log = Path(f"/tmp/nni-{experiment_id}/trials/d0/trial.log").read_text()
    assert f"cwd {code}" in log and "platform adl" in log
    assert cluster.list("persistentvolumeclaims") == []  # removed at stop
