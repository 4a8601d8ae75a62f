"""``sharedStorage``: NFS or Azure Blob storage mounted by NNI and every training machine."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from .base import ConfigBase, ConfigError, Context, Field, join
from .kubernetes import dispatch

__all__ = ["SharedStorageConfig", "NfsConfig", "AzureBlobConfig"]

_COMMON = {
    "local_mount_point": Field("path", required=True),
    "remote_mount_point": Field("path", required=True, local_path=False),
    "local_mounted": Field("enum", required=True, choices=("usermount", "nnimount", "nomount")),
}


class SharedStorageConfig(ConfigBase):
    """Base of the shared storage configs; picked by ``storageType`` (``NFS`` or ``AzureBlob``)."""

    type_name: ClassVar[str] = ""

    @classmethod
    def _from_dict(cls, data: Any, path: str, base: Path | None):
        if cls is SharedStorageConfig:
            return dispatch(SharedStorageConfig, "storageType", data, path, base)
        return super()._from_dict(data, path, base)

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        canon["storageType"] = self.type_name
        code_dir = ctx.experiment.get("trialCodeDirectory")
        local = canon["localMountPoint"]
        if code_dir and (local == code_dir or local.startswith(code_dir.rstrip(os.sep) + os.sep)):
            raise ConfigError(join(path, "localMountPoint"), f"must be outside trialCodeDirectory ({code_dir}) because NNI copies the code into the storage")


class NfsConfig(SharedStorageConfig):
    type_name = "NFS"
    _fields = {
        "storage_type": Field("str", default="NFS"),
        **_COMMON,
        "nfs_server": Field("str", required=True),
        "exported_directory": Field("str", required=True),
    }


class AzureBlobConfig(SharedStorageConfig):
    type_name = "AzureBlob"
    _fields = {
        "storage_type": Field("str", default="AzureBlob"),
        **_COMMON,
        "storage_account_name": Field("str", required=True),
        "storage_account_key": Field("str"),
        "resource_group_name": Field("str"),
        "container_name": Field("str", required=True),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        super()._check(canon, path, ctx)
        if canon["storageAccountKey"] is None and canon["resourceGroupName"] is None:
            raise ConfigError(join(path, "storageAccountKey"), "required field is missing (or give resourceGroupName to look the key up)")
