"""Kubernetes training services: Kubeflow, FrameworkController, AdaptDL.

Not built yet: importing this module raises :class:`~nni.runtime.distributions.NotBuiltYetError`
(a ``ModuleNotFoundError``) that names the distribution and the missing feature.
"""
from nni.runtime.distributions import NotBuiltYetError

raise NotBuiltYetError("nni-ts-kubernetes", "the Kubernetes training services (Kubeflow, FrameworkController, AdaptDL)", __name__)
