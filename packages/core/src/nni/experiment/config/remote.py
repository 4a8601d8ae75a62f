"""``trainingService: {platform: remote, machineList: [...]}``."""
from __future__ import annotations

from .base import ConfigBase, ConfigError, Context, Field, join, resolve_path
from .local import check_gpu_fields
from .training_service import TrainingServiceConfig

__all__ = ["RemoteConfig", "RemoteMachineConfig"]

DEFAULT_SSH_KEY = "~/.ssh/id_rsa"


class RemoteMachineConfig(ConfigBase):
    """One SSH machine of a remote training service.

    Without ``password`` the identity file ``ssh_key_file`` is used (default ``~/.ssh/id_rsa``).
    """

    _fields = {
        "host": Field("str", required=True),
        "port": Field("int", default=22, min=1, max=65535),
        "user": Field("str", required=True),
        "password": Field("str"),
        "ssh_key_file": Field("path"),
        "ssh_passphrase": Field("str"),
        "use_active_gpu": Field("bool", default=False),
        "max_trial_number_per_gpu": Field("int", default=1, min=1),
        "gpu_indices": Field("gpus"),
        "python_path": Field("str"),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        if canon["password"] is None and canon["sshKeyFile"] is None:
            canon["sshKeyFile"] = resolve_path(DEFAULT_SSH_KEY, ctx.base)
        check_gpu_fields(canon, path, ctx, need_active_flag=False)


class RemoteConfig(TrainingServiceConfig):
    """Run trials on machines reached over SSH."""

    platform_name = "remote"
    _fields = {
        "platform": Field("str", default="remote"),
        "reuse_mode": Field("bool", default=True),
        "machine_list": Field("configs", default=[], required=True, cls=RemoteMachineConfig),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        if not canon["machineList"]:
            raise ConfigError(join(path, "machineList"), "must list at least one machine ({host, user, password or sshKeyFile})")
