"""``trainingService: {platform: openpai}`` (``pai`` is accepted as an alias)."""
from __future__ import annotations

import posixpath

from .base import ConfigError, Context, Field, join
from .training_service import TrainingServiceConfig

__all__ = ["OpenpaiConfig"]


class OpenpaiConfig(TrainingServiceConfig):
    """Run trials as OpenPAI jobs.

    ``trial_cpu_number``, ``trial_memory_size`` and ``storage_config_name`` are required unless
    an OpenPAI job config is given (``openpai_config`` or ``openpai_config_file``).
    """

    platform_name = "openpai"
    _fields = {
        "platform": Field("str", default="openpai"),
        "host": Field("str", required=True),
        "username": Field("str", required=True),
        "token": Field("str", required=True),
        "trial_cpu_number": Field("int", min=1),
        "trial_memory_size": Field("size"),
        "storage_config_name": Field("str"),
        "docker_image": Field("str", default="msranni/nni:latest"),
        "virtual_cluster": Field("str"),
        "local_storage_mount_point": Field("path", required=True),
        "container_storage_mount_point": Field("str", required=True),
        "reuse_mode": Field("bool", default=True),
        "openpai_config": Field("dict"),
        "openpai_config_file": Field("path"),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        if canon["openpaiConfig"] is not None and canon["openpaiConfigFile"] is not None:
            raise ConfigError(join(path, "openpaiConfigFile"), "give either openpaiConfig or openpaiConfigFile, not both")
        if canon["openpaiConfig"] is None and canon["openpaiConfigFile"] is None:
            for key in ("trialCpuNumber", "trialMemorySize", "storageConfigName"):
                if canon[key] is None:
                    raise ConfigError(join(path, key), "required field is missing (it may be omitted only when openpaiConfig or openpaiConfigFile gives it)")
        if not posixpath.isabs(canon["containerStorageMountPoint"]):
            raise ConfigError(join(path, "containerStorageMountPoint"), f"must be an absolute path, got {canon['containerStorageMountPoint']!r}")
        host = canon["host"].rstrip("/")
        if "://" not in host:
            host = "https://" + host  # HTTPS is the documented default
        elif not host.startswith(("http://", "https://")):
            raise ConfigError(join(path, "host"), f"expected a host name with an optional http:// or https:// prefix, got {canon['host']!r}")
        canon["host"] = host
        if ctx.check_files and canon["openpaiConfigFile"] is not None:
            import os

            if not os.path.isfile(canon["openpaiConfigFile"]):
                raise ConfigError(join(path, "openpaiConfigFile"), f"file not found: {canon['openpaiConfigFile']}")
