"""``trainingService: {platform: adl}`` (AdaptDL on Kubernetes) and ``{platform: dlts}``.

The docs describe these two platforms only in the v1 format; their v2 form here keeps the v1
trial keys under v2 names: ``trial.image`` -> ``dockerImage``, ``trial.cpuNum`` ->
``cpuNumber``, ``trial.codeDir`` (a folder *inside the container* for AdaptDL, ``.`` = the
image's working directory) -> ``codeDirectory``, ``dltsConfig.dashboard`` -> ``dashboard``.
"""
from __future__ import annotations

from .base import ConfigBase, ConfigError, Context, Field, join, parse_size
from .training_service import TrainingServiceConfig

__all__ = ["AdlConfig", "AdlNfsConfig", "AdlCheckpointConfig", "AdlImagePullSecret", "DltsConfig"]


class AdlImagePullSecret(ConfigBase):
    _fields = {"name": Field("str", required=True)}


class AdlNfsConfig(ConfigBase):
    _fields = {
        "server": Field("str", required=True),
        "path": Field("str", required=True),
        "container_mount_path": Field("str", required=True),
    }


class AdlCheckpointConfig(ConfigBase):
    _fields = {
        "storage_class": Field("str", required=True),
        "storage_size": Field("str", required=True),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        _check_k8s_quantity(canon["storageSize"], join(path, "storageSize"))


def _check_k8s_quantity(value: str, path: str) -> None:
    # Kept as written (Kubernetes reads it), but it must be a size: 8Gi, 512Mi, 1G, 1024 ...
    try:
        parse_size(value)
    except ValueError as err:
        raise ConfigError(path, f"{err} (Kubernetes format, e.g. '8Gi')") from None


class AdlConfig(TrainingServiceConfig):
    """Run trials as AdaptDL jobs on Kubernetes (``nniManagerIp`` should be set)."""

    platform_name = "adl"
    _fields = {
        "platform": Field("str", default="adl"),
        "namespace": Field("str", default="default"),
        "adaptive": Field("bool", default=False),
        "docker_image": Field("str", required=True),
        "image_pull_secrets": Field("configs", default=[], cls=AdlImagePullSecret, aliases=("imagePullSecret",)),
        "code_directory": Field("path", default=".", local_path=False),
        "cpu_number": Field("int", min=0),
        "memory_size": Field("str"),
        "nfs": Field("config", cls=AdlNfsConfig),
        "checkpoint": Field("config", cls=AdlCheckpointConfig),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        if canon["memorySize"] is not None:
            _check_k8s_quantity(canon["memorySize"], join(path, "memorySize"))


class DltsConfig(TrainingServiceConfig):
    """Run trials on a DLTS cluster."""

    platform_name = "dlts"
    _fields = {
        "platform": Field("str", default="dlts"),
        "dashboard": Field("str", required=True),
        "docker_image": Field("str", default="msranni/nni:latest"),
    }
