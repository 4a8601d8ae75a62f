"""Config errors are one line naming the field; the manifests each platform builds pass the CRDs'
structural schemas, and broken ones do not."""
from __future__ import annotations

import asyncio

import pytest

from nni.experiment.config import ExperimentConfig
from nni.experiment.config.base import ConfigError
from nni.runtime.training_service import ExperimentContext, RequestNeverSatisfiable
from nni.training_services.kubernetes import service as svc
from nni.training_services.kubernetes.schemas import SCHEMAS, validate

NFS = {"storageType": "nfs", "server": "10.0.0.5", "path": "/export"}
ROLE = {"command": "python3 trial.py", "cpuNumber": 1, "memorySize": "1g"}


def _canonical(ts: dict, **top) -> dict:
    cfg = {"trialCommand": "python3 trial.py", "trialCodeDirectory": ".", "trialConcurrency": 1,
           "searchSpace": {"x": {"_type": "choice", "_value": [1]}}, "tuner": {"name": "Random"}, "trainingService": ts, **top}
    return ExperimentConfig.from_dict(cfg).to_canonical_dict(check_algorithms=False, check_files=False)["trainingService"][0]


@pytest.mark.parametrize("ts, field, words", [
    ({"platform": "kubeflow", "operator": "tf-operator", "storage": NFS}, "trainingService.worker", "required for operator tf-operator"),
    ({"platform": "kubeflow", "operator": "mxnet-operator", "storage": NFS, "worker": ROLE}, "trainingService.operator", "tf-operator"),
    ({"platform": "kubeflow", "operator": "pytorch-operator", "storage": NFS, "master": ROLE, "ps": ROLE}, "trainingService.ps", "only for operator tf-operator"),
    ({"platform": "kubeflow", "operator": "tf-operator", "storage": {"storageType": "pvc", "path": "/x"}, "worker": ROLE},
     "trainingService.storage.storageType", "nfs or azureStorage"),
    ({"platform": "kubeflow", "operator": "tf-operator", "storage": {"storageType": "azureStorage", "azureAccount": "a"}, "worker": ROLE},
     "trainingService.storage", "azureShare"),
    ({"platform": "frameworkcontroller", "storage": NFS, "taskRoles": [dict(ROLE, name="w"), dict(ROLE, name="w")]},
     "trainingService.taskRoles[1].name", "duplicate task role name"),
    ({"platform": "frameworkcontroller", "storage": NFS, "taskRoles": [dict(ROLE, name="w", taskNumber=0)]},
     "trainingService.taskRoles[0].taskNumber", ">= 1"),
    ({"platform": "adl", "dockerImage": "img", "memorySize": "lots"}, "trainingService.memorySize", "Kubernetes format"),
    ({"platform": "adl"}, "trainingService.dockerImage", "required"),
])
def test_config_errors_are_one_line(ts, field, words):
    with pytest.raises(ConfigError) as err:
        _canonical(ts)
    message = str(err.value)
    assert "\n" not in message and message.startswith(field) and words in message, message


def _ctx(tmp_path, gpu=None):
    return ExperimentContext("cfg12345", str(tmp_path / "exp"), "python3 trial.py", str(tmp_path), trial_gpu_number=gpu)


@pytest.mark.parametrize("cls, ts, message", [
    (svc.KubeflowTrainingService, {"platform": "kubeflow", "operator": "tf-operator", "storage": NFS, "worker": dict(ROLE, replicas=2)},
     "trainingService.worker.replicas: must be 1 here, got 2"),
    (svc.FrameworkControllerTrainingService, {"platform": "frameworkcontroller", "storage": NFS,
                                              "taskRoles": [dict(ROLE, name="worker", taskNumber=3)]},
     "trainingService.taskRoles[0].taskNumber: must be 1 here, got 3"),
    (svc.FrameworkControllerTrainingService, {"platform": "frameworkcontroller", "storage": NFS, "taskRoles": [dict(ROLE, name="Worker_1")]},
     "trainingService.taskRoles[0].name: 'Worker_1' is not a FrameworkController task role name"),
    (svc.FrameworkControllerTrainingService, {"platform": "frameworkcontroller", "storage": {"storageType": "pvc", "path": "/mnt/data"},
                                              "taskRoles": [dict(ROLE, name="worker")]},
     "trainingService.storage.storageType: pvc needs a custom template"),
])
def test_platform_limits_fail_at_start_in_one_line(tmp_path, cls, ts, message):
    service = cls(_canonical(ts), _ctx(tmp_path), kubeconfig=str(tmp_path / "never-read"))
    with pytest.raises(svc.KubernetesError) as err:
        asyncio.run(service.start())
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_gpu_request_larger_than_the_pod_is_refused(tmp_path):
    ts = _canonical({"platform": "kubeflow", "operator": "tf-operator", "storage": NFS, "worker": dict(ROLE, gpuNumber=1)})
    service = svc.KubeflowTrainingService(ts, _ctx(tmp_path, gpu=2))
    with pytest.raises(RequestNeverSatisfiable, match="trialGpuNumber: 2 GPUs per trial, but the kubeflow trial pod asks for 1"):
        service.check_request(2)
    service.check_request(1)


def _manifests(tmp_path):
    """One manifest per platform, built as the services build them (no cluster needed)."""
    azure = {"storageType": "azureStorage", "azureAccount": "acct", "azureShare": "share", "keyVaultName": "v", "keyVaultKey": "k"}
    runner = ["python3", "-m", svc.RUNNER_MODULE, "--connect", "10.0.0.1:5000", "--runner-id", "j"]
    env = {"NNI_RUNNER_TOKEN": "t"}
    out = {}
    tf = svc.KubeflowTrainingService(_canonical({"platform": "kubeflow", "operator": "tf-operator", "storage": azure,
                                                 "worker": dict(ROLE, gpuNumber=1), "ps": ROLE}), _ctx(tmp_path))
    out["TFJob"] = tf._job_manifest("nni-exp-cfg12345-env-1", runner, env)
    pt = svc.KubeflowTrainingService(_canonical({"platform": "kubeflow", "operator": "pytorch-operator", "storage": NFS,
                                                 "master": ROLE, "worker": dict(ROLE, replicas=3)}), _ctx(tmp_path))
    out["PyTorchJob"] = pt._job_manifest("nni-exp-cfg12345-env-1", runner, env)
    fc = svc.FrameworkControllerTrainingService(_canonical({"platform": "frameworkcontroller", "storage": NFS, "serviceAccountName": "fc",
                                                            "taskRoles": [dict(ROLE, name="worker"), dict(ROLE, name="ps", taskNumber=2)]}),
                                                _ctx(tmp_path))
    out["Framework"] = fc._job_manifest("nni-exp-cfg12345-env-1", runner, env)
    adl = svc.AdlTrainingService(_canonical({"platform": "adl", "dockerImage": "img", "adaptive": True, "memorySize": "8Gi",
                                             "checkpoint": {"storageClass": "dfs", "storageSize": "1Gi"}}), _ctx(tmp_path, gpu=1))
    out["AdaptDLJob"] = adl._job_manifest("nni-exp-cfg12345-trial-abcde", runner, env)
    return out


def test_built_manifests_pass_the_crd_schemas(tmp_path):
    manifests = _manifests(tmp_path)
    for kind, manifest in manifests.items():
        assert validate(manifest, SCHEMAS[kind]) == [], kind
    tf = manifests["TFJob"]["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert tf["volumes"][0]["azureFile"] == {"secretName": "nni-exp-cfg12345-azure-storage", "shareName": "share", "readOnly": False}
    assert tf["containers"][0]["volumeMounts"][0]["subPath"] == "nni/cfg12345"
    assert tf["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    adl = manifests["AdaptDLJob"]["spec"]
    assert adl["preemptible"] is True and "maxReplicas" not in adl  # adaptive: AdaptDL may rescale it
    assert adl["template"]["spec"]["containers"][0]["resources"]["limits"] == {"memory": "8Gi", "nvidia.com/gpu": "1"}


@pytest.mark.parametrize("kind, breaks, where", [
    ("TFJob", lambda m: m["spec"]["tfReplicaSpecs"]["Worker"].update(replicas=0), "spec.tfReplicaSpecs.Worker.replicas"),
    ("PyTorchJob", lambda m: m["spec"]["pytorchReplicaSpecs"].update(PS={}), "spec.pytorchReplicaSpecs.PS: unknown field"),
    ("Framework", lambda m: m["spec"]["taskRoles"][0]["frameworkAttemptCompletionPolicy"].pop("minSucceededTaskCount"),
     "spec.taskRoles[0].frameworkAttemptCompletionPolicy.minSucceededTaskCount: required"),
    ("Framework", lambda m: m["spec"]["taskRoles"][1].update(name="PS"), "spec.taskRoles[1].name"),
    ("AdaptDLJob", lambda m: m["spec"]["template"]["spec"].update(containers=[]), "spec.template.spec.containers: needs at least 1"),
    ("AdaptDLJob", lambda m: m["metadata"].update(name="nni_exp_x"), "metadata.name"),
])
def test_schemas_reject_broken_manifests(tmp_path, kind, breaks, where):
    manifest = _manifests(tmp_path)[kind]
    breaks(manifest)
    problems = validate(manifest, SCHEMAS[kind])
    assert any(p.startswith(where) for p in problems), problems


AZURE = {"storageType": "azureStorage", "azureAccount": "acct", "azureShare": "share", "keyVaultName": "vault", "keyVaultKey": "key1"}


def test_azure_key_comes_from_key_vault_through_az(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text('#!/bin/sh\n[ "$*" = "keyvault secret show --vault-name vault --name key1 --query value -o tsv" ] '
                  '&& echo s3cret-key && exit 0\necho "ERROR: (SecretNotFound) A secret with (name/id) $7 was not found" >&2; exit 1\n')
    az.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ts = _canonical({"platform": "kubeflow", "operator": "tf-operator", "storage": AZURE, "worker": ROLE})
    assert svc.KubeflowTrainingService(ts, _ctx(tmp_path))._azure_key() == "s3cret-key"
    wrong = dict(ts, storage=dict(ts["storage"], keyVaultKey="nope"))
    with pytest.raises(svc.KubernetesError) as err:
        svc.KubeflowTrainingService(wrong, _ctx(tmp_path))._azure_key()
    assert str(err.value) == ("trainingService.storage.keyVaultKey: cannot read secret 'nope' from Key Vault 'vault' "
                              "(ERROR: (SecretNotFound) A secret with (name/id) nope was not found)")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(svc.KubernetesError, match=r"^trainingService.storage.keyVaultName: the Azure CLI \(az\) is needed"):
        svc.KubeflowTrainingService(ts, _ctx(tmp_path))._azure_key()
