"""Kubernetes training services: Kubeflow (TFJob / PyTorchJob), FrameworkController, AdaptDL.

Each trial (or, in reuse mode, each long-lived environment) is a custom resource submitted with
the official ``kubernetes`` client; the job's primary pod runs the NNI trial runner, which
connects back to the manager (:mod:`nni.runtime.runner_listener`). See :mod:`.service`.

Importing this package is light: the ``kubernetes`` client is imported by :mod:`.service`.
"""
__all__ = ["KubeflowTrainingService", "FrameworkControllerTrainingService", "AdlTrainingService"]


def __getattr__(name: str):
    if name in __all__:
        from . import service

        return getattr(service, name)
    raise AttributeError(name)
