"""Manifests of the custom resources NNI submits, built with the ``kubernetes`` client's models.

The pod templates are :class:`kubernetes.client.V1PodTemplateSpec` objects (containers,
resources, volumes, image-pull secrets); the custom resources around them have no models in the
client and are plain dicts in the CRDs' documented shapes:

=====================  ==========================================  ==========================
platform               apiVersion / kind                           pods
=====================  ==========================================  ==========================
kubeflow tf-operator   ``kubeflow.org/<apiVersion>`` ``TFJob``     ``spec.tfReplicaSpecs``
kubeflow pytorch-op.   ``kubeflow.org/<apiVersion>`` ``PyTorchJob``  ``spec.pytorchReplicaSpecs``
frameworkcontroller    ``frameworkcontroller.microsoft.com/v1``    ``spec.taskRoles[].task.pod``
                       ``Framework``
adl                    ``adaptdl.petuum.com/v1`` ``AdaptDLJob``    ``spec.template``
=====================  ==========================================  ==========================

:func:`to_dict` turns models into the JSON the API server receives (camelCase keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from kubernetes import client as k8s

__all__ = [
    "CRDS", "Crd", "RoleSpec", "pod_template", "kubeflow_job", "framework", "adaptdl_job", "to_dict", "job_name",
    "EXPERIMENT_LABEL", "ENV_LABEL",
]

EXPERIMENT_LABEL = "nni.experiment"
ENV_LABEL = "nni.environment"


@dataclass(frozen=True)
class Crd:
    """Where a custom resource lives in the API: ``/apis/<group>/<version>/namespaces/<ns>/<plural>``."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def with_version(self, version: str) -> "Crd":
        return Crd(self.group, version, self.plural, self.kind)


CRDS = {
    "TFJob": Crd("kubeflow.org", "v1", "tfjobs", "TFJob"),
    "PyTorchJob": Crd("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"),
    "Framework": Crd("frameworkcontroller.microsoft.com", "v1", "frameworks", "Framework"),
    "AdaptDLJob": Crd("adaptdl.petuum.com", "v1", "adaptdljobs", "AdaptDLJob"),
}


def job_name(experiment_id: str, suffix: str) -> str:
    """A DNS-1123 name for a job of the experiment (the docs' ``nni_exp_<id>_trial_<id>``, with
    ``-`` and lower case, since Kubernetes names allow neither ``_`` nor capitals)."""
    return f"nni-exp-{experiment_id}-{suffix}".lower().replace("_", "-")[:63].rstrip("-")


@dataclass
class RoleSpec:
    """One role of a job: how many pods and what runs in them."""

    name: str
    replicas: int
    template: k8s.V1PodTemplateSpec
    completion: Optional[dict] = None  # FrameworkController: frameworkAttemptCompletionPolicy
    extra: dict = field(default_factory=dict)


def pod_template(
    *,
    container_name: str,
    image: str,
    command: list[str],
    labels: dict,
    env: Optional[dict] = None,
    cpu: Optional[float] = None,
    memory_mb: Optional[int] = None,
    memory: Optional[str] = None,
    gpu: int = 0,
    working_dir: Optional[str] = None,
    volumes: Optional[list] = None,
    mounts: Optional[list] = None,
    service_account: Optional[str] = None,
    pull_secrets: Optional[list[str]] = None,
    restart_policy: str = "Never",
) -> k8s.V1PodTemplateSpec:
    """A pod template with one container; resources are set as both requests and limits."""
    limits: dict[str, str] = {}
    if cpu:
        limits["cpu"] = str(cpu)
    if memory is not None:
        limits["memory"] = memory
    elif memory_mb:
        limits["memory"] = f"{int(memory_mb)}Mi"
    if gpu:
        limits["nvidia.com/gpu"] = str(gpu)
    container = k8s.V1Container(
        name=container_name,
        image=image,
        command=command,
        env=[k8s.V1EnvVar(name=k, value=str(v)) for k, v in (env or {}).items()]
        # the pod's own name, for logs and for the runner's messages
        + [k8s.V1EnvVar(name="NNI_POD_NAME", value_from=k8s.V1EnvVarSource(field_ref=k8s.V1ObjectFieldSelector(field_path="metadata.name")))],
        resources=k8s.V1ResourceRequirements(limits=dict(limits), requests=dict(limits)) if limits else None,
        working_dir=working_dir,
        volume_mounts=mounts or None,
    )
    return k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels=dict(labels)),
        spec=k8s.V1PodSpec(
            containers=[container],
            restart_policy=restart_policy,
            volumes=volumes or None,
            service_account_name=service_account,
            image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in pull_secrets] if pull_secrets else None,
        ),
    )


def _meta(name: str, namespace: str, labels: dict) -> dict:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def kubeflow_job(crd: Crd, name: str, namespace: str, labels: dict, roles: list[RoleSpec]) -> dict:
    """A TFJob (roles ``Worker`` / ``PS``) or PyTorchJob (``Master`` / ``Worker``)."""
    key = "tfReplicaSpecs" if crd.kind == "TFJob" else "pytorchReplicaSpecs"
    specs = {
        role.name: {"replicas": role.replicas, "restartPolicy": "Never", "template": to_dict(role.template)}
        for role in roles
    }
    return {"apiVersion": crd.api_version, "kind": crd.kind, "metadata": _meta(name, namespace, labels), "spec": {key: specs}}


def framework(crd: Crd, name: str, namespace: str, labels: dict, roles: list[RoleSpec]) -> dict:
    """A FrameworkController ``Framework``: one task role per role, no retries (NNI re-queues)."""
    no_retry = {"fancyRetryPolicy": False, "maxRetryCount": 0}
    task_roles = []
    for role in roles:
        policy = role.completion or {}
        task_roles.append({
            "name": role.name,
            "taskNumber": role.replicas,
            "frameworkAttemptCompletionPolicy": {
                "minFailedTaskCount": int(policy.get("minFailedTaskCount", 1)),
                # v2 configs write minSucceedTaskCount; FrameworkController's field is minSucceededTaskCount
                "minSucceededTaskCount": int(policy.get("minSucceededTaskCount", policy.get("minSucceedTaskCount", 1))),
            },
            "task": {"retryPolicy": dict(no_retry), "podGracefulDeletionTimeoutSec": 30, "pod": to_dict(role.template)},
        })
    return {
        "apiVersion": crd.api_version, "kind": crd.kind, "metadata": _meta(name, namespace, labels),
        "spec": {"executionType": "Start", "retryPolicy": dict(no_retry), "taskRoles": task_roles},
    }


def adaptdl_job(crd: Crd, name: str, namespace: str, labels: dict, template: k8s.V1PodTemplateSpec, adaptive: bool) -> dict:
    """An ``AdaptDLJob``. ``adaptive``: preemptible and free to rescale; otherwise one replica."""
    spec: dict[str, Any] = {"template": to_dict(template), "preemptible": bool(adaptive)}
    if not adaptive:
        spec["minReplicas"] = 1
        spec["maxReplicas"] = 1
    return {"apiVersion": crd.api_version, "kind": crd.kind, "metadata": _meta(name, namespace, labels), "spec": spec}


def to_dict(obj: Any) -> Any:
    """A client model (or a structure of them) as the JSON the API server receives."""
    global _SERIALIZER
    if _SERIALIZER is None:
        _SERIALIZER = k8s.ApiClient()
    return _SERIALIZER.sanitize_for_serialization(obj)


_SERIALIZER: Optional[k8s.ApiClient] = None
