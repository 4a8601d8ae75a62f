"""Kubernetes training services: Kubeflow, FrameworkController, AdaptDL."""
