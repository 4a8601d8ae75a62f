"""``trainingService: {platform: frameworkcontroller}``: task roles run by FrameworkController."""
from __future__ import annotations

from .base import ConfigBase, ConfigError, Context, Field, join
from .kubernetes import KubernetesStorageConfig
from .training_service import TrainingServiceConfig

__all__ = ["FrameworkControllerConfig", "FrameworkControllerRoleConfig", "FrameworkAttemptCompletionPolicy"]


class FrameworkAttemptCompletionPolicy(ConfigBase):
    """When a framework attempt counts as finished (FrameworkController's own policy)."""

    _fields = {
        "min_failed_task_count": Field("int", default=1, min=-1),
        "min_succeed_task_count": Field("int", default=1, min=-1, aliases=("minSucceededTaskCount",)),
    }


class FrameworkControllerRoleConfig(ConfigBase):
    """One task role (e.g. ``worker``, ``ps``)."""

    _fields = {
        "name": Field("str", required=True),
        "docker_image": Field("str", default="msranni/nni:latest"),
        "task_number": Field("int", default=1, min=1),
        "command": Field("str", required=True),
        "gpu_number": Field("int", default=0, min=0),
        "cpu_number": Field("int", required=True, min=1),
        "memory_size": Field("size", required=True),
        "framework_attempt_completion_policy": Field("config", cls=FrameworkAttemptCompletionPolicy),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        if canon["frameworkAttemptCompletionPolicy"] is None:
            canon["frameworkAttemptCompletionPolicy"] = {"minFailedTaskCount": 1, "minSucceedTaskCount": 1}


class FrameworkControllerConfig(TrainingServiceConfig):
    """Run trials through FrameworkController on Kubernetes (storage nfs, azureStorage or pvc)."""

    platform_name = "frameworkcontroller"
    _fields = {
        "platform": Field("str", default="frameworkcontroller"),
        "service_account_name": Field("str"),
        "storage": Field("config", required=True, cls=KubernetesStorageConfig),
        "task_roles": Field("configs", default=[], cls=FrameworkControllerRoleConfig),
        "reuse_mode": Field("bool", default=True),
        "namespace": Field("str", default="default"),
        "config_path": Field("path"),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        if not canon["taskRoles"] and canon["configPath"] is None:
            raise ConfigError(join(path, "taskRoles"), "must list at least one task role (or give configPath, a FrameworkController template)")
        names = [r["name"] for r in canon["taskRoles"]]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ConfigError(join(join(path, "taskRoles"), i) + ".name", f"duplicate task role name {name!r}")
