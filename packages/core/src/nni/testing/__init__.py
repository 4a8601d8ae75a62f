"""Test helpers shipped with nni-core: contract suites for tuners, assessors and training
services (:class:`TunerContract`, :class:`AssessorContract`, :class:`TrainingServiceContract`;
they need ``pytest``), a reference random
tuner, the protocol scenario of :mod:`nni.testing.scenario`, search-space value checks, the
Branin objective with an in-process tuning loop, and a recorder of dispatcher commands.

Names are resolved lazily, so importing the reference tuner does not import pytest.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "TunerContract": "contracts",
    "AssessorContract": "contracts",
    "TYPE_EXAMPLES": "contracts",
    "drive_dispatcher": "contracts",
    "ReferenceRandomTuner": "reference_tuner",
    "ALL_TYPES": "search_space_check",
    "SearchSpaceMismatch": "search_space_check",
    "check_parameters": "search_space_check",
    "check_value": "search_space_check",
    "random_parameters": "search_space_check",
    "TrainingServiceContract": "training_service",
    "BRANIN_SPACE": "objectives",
    "branin": "objectives",
    "minimize_with": "objectives",
    "CommandRecorder": "recorder",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nni.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
