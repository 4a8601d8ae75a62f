"""Faults against the stand-in: an evicted pod or a failed job ends the trial SYS_CANCELED with the
reason and requeue=True; a job that fails before its runner starts fails its trial; a cluster
without the CRD is a one-line error at start."""
from __future__ import annotations

import asyncio

import pytest

from nni.runtime.training_service import TrialJobStatus
from nni.training_services.kubernetes.service import (
    AdlTrainingService, FrameworkControllerTrainingService, KubeflowTrainingService, KubernetesError,
)
from nni.training_services.kubernetes.testing import StandInCluster


def _role(command="python3 trial.py", **kw):
    return {"command": command, "cpuNumber": 1, "memorySize": "512m", **kw}


def _running(trial_id):
    return lambda states, metrics: any(e.status == TrialJobStatus.RUNNING for e in states.get(trial_id, []))


def _final(*trial_ids):
    return lambda states, metrics: all(states.get(t) and states[t][-1].status.is_final for t in trial_ids)


def test_evicted_pod_requeues_its_trial_with_the_reason(tmp_path, code, cluster, kubeconfig, nfs, experiment_id, helpers):
    config = helpers.canonical_ts({"platform": "kubeflow", "operator": "tf-operator",
                                   "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)},
                                   "worker": _role()}, code)

    async def main():
        ts = KubeflowTrainingService(config, helpers.context(tmp_path, code, experiment_id))
        await ts.start()
        await ts.submit(helpers.TrialSpec("e0", 0, helpers.param(1, sleep=60)))
        await helpers.collect(ts, _running("e0"))
        (pod,) = [p["metadata"]["name"] for p in cluster.list("pods")]
        await asyncio.to_thread(cluster.evict_pod, pod, "The node was low on resource: memory.")
        states, _ = await helpers.collect(ts, _final("e0"))
        # the broken job is gone; the re-run (a new trial from the manager) gets a new environment
        await asyncio.to_thread(cluster.wait_for, lambda: cluster.list("tfjobs") == [], what="the evicted job deleted")
        await ts.submit(helpers.TrialSpec("e1", 1, helpers.param(1)))
        states2, metrics2 = await helpers.collect(ts, _final("e1"))
        await ts.stop()
        return pod, states["e0"][-1], states2["e1"][-1], metrics2

    pod, lost, rerun, metrics = asyncio.run(main())
    assert lost.status == TrialJobStatus.SYS_CANCELED and lost.requeue is True
    assert f"pod {pod}" in lost.message and "evicted" in lost.message and "low on resource: memory" in lost.message
    assert rerun.status == TrialJobStatus.SUCCEEDED and metrics["e1"][-1]["value"] == "1"
    assert len(cluster.created_of("tfjobs")) == 2


def test_failed_framework_requeues_its_trial(tmp_path, code, cluster, kubeconfig, nfs, experiment_id, helpers):
    config = helpers.canonical_ts({"platform": "frameworkcontroller",
                                   "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)},
                                   "taskRoles": [{"name": "worker", **_role()}]}, code)

    async def main():
        ts = FrameworkControllerTrainingService(config, helpers.context(tmp_path, code, experiment_id))
        await ts.start()
        await ts.submit(helpers.TrialSpec("j0", 0, helpers.param(1, sleep=60)))
        await helpers.collect(ts, _running("j0"))
        (fw,) = cluster.list("frameworks")
        await asyncio.to_thread(cluster.fail_job, "frameworks", fw["metadata"]["name"], "AttemptFailed: node lost")
        states, _ = await helpers.collect(ts, _final("j0"))
        await ts.stop()
        return fw["metadata"]["name"], states["j0"][-1]

    name, lost = asyncio.run(main())
    assert lost.status == TrialJobStatus.SYS_CANCELED and lost.requeue is True
    assert name in lost.message and "AttemptFailed: node lost" in lost.message
    assert cluster.list("frameworks") == [] and cluster.list("pods") == []


def test_job_failing_before_its_runner_starts_fails_the_trial(tmp_path, code, cluster, kubeconfig, experiment_id, helpers):
    # an NFS server the 'node' cannot reach: the pod fails to mount it, the AdaptDLJob fails
    config = helpers.canonical_ts({"platform": "adl", "dockerImage": "digits:latest",
                                   "nfs": {"server": "10.255.0.1", "path": "/export", "containerMountPath": str(tmp_path / "m")}}, code)

    async def main():
        ts = AdlTrainingService(config, helpers.context(tmp_path, code, experiment_id))
        await ts.start()
        await ts.submit(helpers.TrialSpec("b0", 0, helpers.param(1)))
        states, _ = await helpers.collect(ts, _final("b0"))
        await ts.stop()
        return states["b0"]

    events = asyncio.run(main())
    assert events[0].status == TrialJobStatus.WAITING and "to start its trial runner" in events[0].message
    last = events[-1]
    assert last.status == TrialJobStatus.FAILED and not last.requeue
    assert "failed before its trial runner started" in last.message and "10.255.0.1" in last.message
    assert "\n" not in last.message
    assert cluster.list("adaptdljobs") == []


def test_cluster_without_the_crd_is_a_one_line_error(tmp_path, code, experiment_id, helpers):
    cluster = StandInCluster(tmp_path / "bare", crds=("TFJob",)).start()
    try:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
        config = helpers.canonical_ts({"platform": "frameworkcontroller", "storage": {"storageType": "nfs", "server": "127.0.0.1",
                                       "path": str(tmp_path)}, "taskRoles": [{"name": "worker", **_role()}]}, code)
        ts = FrameworkControllerTrainingService(config, helpers.context(tmp_path, code, experiment_id), kubeconfig=str(kubeconfig))
        with pytest.raises(KubernetesError) as err:
            asyncio.run(ts.start())
        message = str(err.value)
        assert "\n" not in message and "serves no Framework (frameworkcontroller.microsoft.com/v1" in message
        assert "install FrameworkController" in message
        # a wrong token: the API answers 401, said in one line
        bad = tmp_path / "bad-kc"
        bad.write_text(kubeconfig.read_text().replace(cluster.token, "wrong"))
        ts = KubeflowTrainingService(helpers.canonical_ts({"platform": "kubeflow", "operator": "tf-operator", "storage": {
            "storageType": "nfs", "server": "127.0.0.1", "path": str(tmp_path)}, "worker": _role()}, code),
            helpers.context(tmp_path, code, experiment_id), kubeconfig=str(bad))
        with pytest.raises(KubernetesError, match="refused to list tfjobs in namespace 'default': Unauthorized"):
            asyncio.run(ts.start())
    finally:
        cluster.stop()


def test_missing_kubeconfig_is_a_one_line_error(tmp_path, code, experiment_id, helpers, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    ts = AdlTrainingService(helpers.canonical_ts({"platform": "adl", "dockerImage": "x"}, code), helpers.context(tmp_path, code, experiment_id))
    with pytest.raises(KubernetesError, match=r"^kubeconfig: .*nope does not exist; set KUBECONFIG"):
        asyncio.run(ts.start())


def test_cancel_then_reuse_and_stop_while_a_job_starts(tmp_path, code, cluster, kubeconfig, nfs, experiment_id, helpers):
    config = helpers.canonical_ts({"platform": "kubeflow", "operator": "tf-operator",
                                   "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)},
                                   "worker": _role()}, code)

    async def main():
        ts = KubeflowTrainingService(config, helpers.context(tmp_path, code, experiment_id))
        await ts.start()
        await ts.submit(helpers.TrialSpec("c0", 0, helpers.param(1, sleep=60)))
        await helpers.collect(ts, _running("c0"))
        await ts.cancel("c0", early_stopped=True)
        states, _ = await helpers.collect(ts, _final("c0"))
        await ts.submit(helpers.TrialSpec("c1", 1, helpers.param(2)))  # the same, now idle, environment
        states2, _ = await helpers.collect(ts, _final("c1"))
        assert len(cluster.created_of("tfjobs")) == 1
        ts.config["worker"]["dockerImage"] = "other"  # (only to tell the next job apart)
        await ts.submit(helpers.TrialSpec("c2", 2, helpers.param(3, sleep=60)))
        await ts.submit(helpers.TrialSpec("c3", 3, helpers.param(4, sleep=60)))
        await asyncio.sleep(0.05)  # the second job is being created
        await ts.stop()
        return states["c0"][-1], states2["c1"][-1], {t.id: t.status for t in ts.list_trial_jobs()}

    stopped, reused, final = asyncio.run(main())
    assert stopped.status == TrialJobStatus.EARLY_STOPPED and reused.status == TrialJobStatus.SUCCEEDED
    assert final["c2"] == final["c3"] == TrialJobStatus.SYS_CANCELED
    # no job outlives the experiment, not even one whose creation was in flight at stop
    cluster.wait_for(lambda: cluster.list("tfjobs") == [] and cluster.list("pods") == [], timeout=10, what="no jobs left")


def test_unreachable_api_server_is_a_one_line_error(tmp_path, code, experiment_id, helpers):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = tmp_path / "kc"
    kc.write_text(f"""apiVersion: v1
kind: Config
current-context: c
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
""")
    ts = AdlTrainingService(helpers.canonical_ts({"platform": "adl", "dockerImage": "x"}, code),
                            helpers.context(tmp_path, code, experiment_id), kubeconfig=str(kc))
    with pytest.raises(KubernetesError) as err:
        asyncio.run(ts.start())
    assert str(err.value).startswith("trainingService: cannot reach the Kubernetes API server") and "\n" not in str(err.value)
