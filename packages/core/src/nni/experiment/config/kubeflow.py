"""``trainingService: {platform: kubeflow}``: TFJob / PyTorchJob roles on Kubernetes."""
from __future__ import annotations

from .base import ConfigBase, ConfigError, Context, Field, join
from .kubernetes import KubernetesStorageConfig
from .training_service import TrainingServiceConfig

__all__ = ["KubeflowConfig", "KubeflowRoleConfig"]


class KubeflowRoleConfig(ConfigBase):
    """One role (``worker``, ``ps`` or ``master``) of a Kubeflow job."""

    _fields = {
        "replicas": Field("int", default=1, min=1),
        "command": Field("str", required=True),
        "gpu_number": Field("int", default=0, min=0),
        "cpu_number": Field("int", required=True, min=1),
        "memory_size": Field("size", required=True),
        "docker_image": Field("str", default="msranni/nni:latest"),
        "code_directory": Field("path", default="."),
        "private_registry_auth_path": Field("path"),
    }


class KubeflowConfig(TrainingServiceConfig):
    """Run trials as Kubeflow jobs. ``tf-operator`` needs a ``worker`` role (``ps`` optional);
    ``pytorch-operator`` needs a ``master`` role (``worker`` optional)."""

    platform_name = "kubeflow"
    _fields = {
        "platform": Field("str", default="kubeflow"),
        "operator": Field("enum", required=True, choices=("tf-operator", "pytorch-operator")),
        "api_version": Field("str", default="v1"),
        "storage": Field("config", required=True, cls=KubernetesStorageConfig),
        "worker": Field("config", cls=KubeflowRoleConfig),
        "ps": Field("config", cls=KubeflowRoleConfig),
        "master": Field("config", cls=KubeflowRoleConfig),
        "reuse_mode": Field("bool", default=True),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        if canon["storage"]["storageType"] == "pvc":
            raise ConfigError(join(path, "storage.storageType"), "expected nfs or azureStorage for kubeflow, got 'pvc'")
        if canon["operator"] == "tf-operator":
            if canon["worker"] is None:
                raise ConfigError(join(path, "worker"), "required for operator tf-operator")
            if canon["master"] is not None:
                raise ConfigError(join(path, "master"), "only for operator pytorch-operator; tf-operator uses worker and ps")
        else:
            if canon["master"] is None:
                raise ConfigError(join(path, "master"), "required for operator pytorch-operator")
            if canon["ps"] is not None:
                raise ConfigError(join(path, "ps"), "only for operator tf-operator; pytorch-operator uses master and worker")
