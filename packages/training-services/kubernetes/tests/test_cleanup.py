"""``nnictl platform clean`` / ``experiment delete`` hooks against the stand-in: what stopped
experiments left in the cluster goes, running experiments keep theirs."""
from __future__ import annotations

import asyncio

from kubernetes import client as k8s

from nni.training_services.kubernetes import manifests as mf
from nni.training_services.kubernetes.service import KubeflowTrainingService, load_api_client


def _leftovers(experiment_id):
    labels = {mf.EXPERIMENT_LABEL: experiment_id.lower()}
    template = mf.pod_template(container_name="tensorflow", image="img", command=["sleep", "30"], labels=labels)
    api = load_api_client()
    k8s.CustomObjectsApi(api).create_namespaced_custom_object(
        "kubeflow.org", "v1", "default", "tfjobs",
        mf.kubeflow_job(mf.CRDS["TFJob"], mf.job_name(experiment_id, "env-1"), "default", labels, [mf.RoleSpec("Worker", 1, template)]))
    k8s.CoreV1Api(api).create_namespaced_secret("default", k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=mf.job_name(experiment_id, "registry"), labels=labels), string_data={"a": "b"}))


def test_platform_clean_and_experiment_delete(cluster, kubeconfig, nfs):
    config = {"platform": "kubeflow", "operator": "tf-operator", "apiVersion": "v1",
              "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)}}
    _leftovers("Old00001")
    _leftovers("Live0001")
    (nfs / "nni" / "Live0001" / "code").mkdir(parents=True)
    lines = KubeflowTrainingService.clean_platform(config, {"Live0001"})
    assert lines == ["kubeflow: deleted 1 TFJob(s), 1 secret(s), 0 volume claim(s) in namespace 'default'"]
    assert [j["metadata"]["name"] for j in cluster.list("tfjobs")] == ["nni-exp-live0001-env-1"]
    assert [s["metadata"]["name"] for s in cluster.list("secrets")] == ["nni-exp-live0001-registry"]
    assert asyncio.run(KubeflowTrainingService.remove_experiment_files(config, "Live0001")) == []
    assert cluster.list("tfjobs") == [] and cluster.list("secrets") == [] and cluster.list("pods") == []
    assert not (nfs / "nni" / "Live0001").exists()
