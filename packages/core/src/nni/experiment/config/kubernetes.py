"""Storage configs shared by the Kubernetes-based training services (Kubeflow, FrameworkController)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from .base import ConfigBase, ConfigError, Field, join, short_repr

__all__ = ["KubernetesStorageConfig", "KubernetesNfsConfig", "KubernetesAzureStorageConfig", "KubernetesPvcConfig"]


def dispatch(base_cls: type, key: str, data: Any, path: str, base: Path | None):
    """Pick the subclass of ``base_cls`` whose ``type_name`` equals ``data[key]`` (case-insensitive)."""
    if isinstance(data, ConfigBase):
        return data
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping with a {key!r} key, got {short_repr(data)}")
    value = next((v for k, v in data.items() if str(k).replace("_", "").lower() == key.lower()), None)
    subclasses = {c.type_name.lower(): c for c in base_cls.__subclasses__()}
    names = ", ".join(c.type_name for c in base_cls.__subclasses__())
    if value is None:
        raise ConfigError(join(path, key), f"required field is missing; allowed: {names}")
    target = subclasses.get(str(value).lower())
    if target is None:
        raise ConfigError(join(path, key), f"expected one of {names}, got {short_repr(value)}")
    return ConfigBase._from_dict.__func__(target, data, path, base)


class KubernetesStorageConfig(ConfigBase):
    """Where code and outputs of Kubernetes trials are kept; picked by ``storageType``."""

    type_name: ClassVar[str] = ""

    @classmethod
    def _from_dict(cls, data: Any, path: str, base: Path | None):
        if cls is KubernetesStorageConfig:
            return dispatch(KubernetesStorageConfig, "storageType", data, path, base)
        return super()._from_dict(data, path, base)

    def _check(self, canon: dict, path: str, ctx) -> None:
        canon["storageType"] = self.type_name


class KubernetesNfsConfig(KubernetesStorageConfig):
    type_name = "nfs"
    _fields = {
        "storage_type": Field("str", default="nfs"),
        "server": Field("str", required=True),
        "path": Field("str", required=True),
    }


class KubernetesAzureStorageConfig(KubernetesStorageConfig):
    type_name = "azureStorage"
    _fields = {
        "storage_type": Field("str", default="azureStorage"),
        "azure_account": Field("str", required=True),
        "azure_share": Field("str", required=True),
        "key_vault_name": Field("str", required=True),
        "key_vault_key": Field("str", required=True),
        "upload_retry_count": Field("int", min=1, max=99999),
    }


class KubernetesPvcConfig(KubernetesStorageConfig):
    type_name = "pvc"
    _fields = {
        "storage_type": Field("str", default="pvc"),
        "path": Field("str", required=True),
    }
