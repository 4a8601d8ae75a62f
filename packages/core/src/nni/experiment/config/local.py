"""``trainingService: {platform: local}``."""
from __future__ import annotations

from .base import ConfigError, Context, Field, join
from .training_service import TrainingServiceConfig

__all__ = ["LocalConfig"]


def check_gpu_fields(canon: dict, path: str, ctx: Context, *, need_active_flag: bool) -> None:
    """Rules shared by local and remote machines about ``useActiveGpu`` and ``gpuIndices``."""
    gpus = ctx.experiment.get("trialGpuNumber")
    if need_active_flag and gpus and canon.get("useActiveGpu") is None:
        raise ConfigError(join(path, "useActiveGpu"),
                          f"must be set (true or false) when trialGpuNumber is {gpus}; true lets trials use GPUs that other processes (e.g. a desktop) occupy")
    if canon.get("useActiveGpu") is None:
        canon["useActiveGpu"] = False
    indices = canon.get("gpuIndices")
    if gpus and indices is not None and gpus > len(indices):
        raise ConfigError("trialGpuNumber", f"{gpus} GPUs per trial but {join(path, 'gpuIndices')} lists only {len(indices)}")


class LocalConfig(TrainingServiceConfig):
    """Run trials on this machine.

    Args:
        use_active_gpu: submit trials to GPUs that other processes use; must be set when
            ``trial_gpu_number > 0``.
        max_trial_number_per_gpu: how many trials may share one GPU (default 1).
        gpu_indices: GPUs visible to trials (``[0, 1]``, ``'0,1'`` or ``0``); default all.
    """

    platform_name = "local"
    _fields = {
        "platform": Field("str", default="local"),
        "use_active_gpu": Field("bool"),
        "max_trial_number_per_gpu": Field("int", default=1, min=1),
        "gpu_indices": Field("gpus"),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        check_gpu_fields(canon, path, ctx, need_active_flag=True)
