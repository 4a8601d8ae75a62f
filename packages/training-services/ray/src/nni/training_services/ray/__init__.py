"""The ``ray`` training service: trials on a Ray cluster (``platform: ray``).

Importing this package never imports Ray; Ray runs in a helper process
(:mod:`nni.training_services.ray.driver`) started by :class:`RayTrainingService`.
"""
from .config import RayConfig
from .service import RayPlatformError, RayTrainingService, trials_that_fit

__all__ = ["RayConfig", "RayTrainingService", "RayPlatformError", "trials_that_fit"]
