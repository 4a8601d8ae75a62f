"""``trainingService: {platform: dlc}`` (Alibaba PAI-DSW submitting to PAI-DLC)."""
from __future__ import annotations

import logging

from .base import Context, Field
from .training_service import TrainingServiceConfig

__all__ = ["DlcConfig"]

_logger = logging.getLogger("nni.experiment.config")


class DlcConfig(TrainingServiceConfig):
    """Run trials as PAI-DLC jobs; DSW and DLC share a NAS disk."""

    platform_name = "dlc"
    _fields = {
        "platform": Field("str", default="dlc"),
        "type": Field("str", default="Worker"),
        "image": Field("str", required=True),
        "job_type": Field("enum", default="TFJob", choices=("TFJob", "PyTorchJob")),
        "pod_count": Field("count", required=True),
        "ecs_spec": Field("str", required=True),
        "region": Field("str", required=True),
        "nas_data_source_id": Field("str", required=True),
        "access_key_id": Field("str", required=True),
        "access_key_secret": Field("str", required=True),
        "local_storage_mount_point": Field("path", default="/home/admin/workspace/"),
        "container_storage_mount_point": Field("str", default="/root/data/"),
    }

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        concurrency = ctx.experiment.get("trialConcurrency")
        if isinstance(concurrency, int) and concurrency > 3:
            _logger.warning("trialConcurrency is %d but PAI-DLC runs at most 3 jobs at a time", concurrency)
