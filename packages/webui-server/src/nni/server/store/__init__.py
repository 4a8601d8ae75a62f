"""Persistence: one SQLite store per experiment, one registry of experiments per machine."""
from __future__ import annotations

from .experiment_store import ExperimentStore, store_path
from .registry import ExperimentsRegistry, experiments_root

__all__ = ["ExperimentStore", "ExperimentsRegistry", "experiments_root", "store_path"]
