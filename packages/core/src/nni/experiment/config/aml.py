"""``trainingService: {platform: aml}`` (Azure Machine Learning; always reuse mode)."""
from __future__ import annotations

from .base import Field
from .training_service import TrainingServiceConfig

__all__ = ["AmlConfig"]


class AmlConfig(TrainingServiceConfig):
    """Run trials on an AML compute cluster; values come from the workspace's ``config.json``."""

    platform_name = "aml"
    _fields = {
        "platform": Field("str", default="aml"),
        "subscription_id": Field("str", required=True),
        "resource_group": Field("str", required=True),
        "workspace_name": Field("str", required=True),
        "compute_target": Field("str", required=True),
        "docker_image": Field("str", default="msranni/nni:latest"),
        "max_trial_number_per_gpu": Field("int", default=1, min=1),
        "use_active_gpu": Field("bool", default=False),
    }
