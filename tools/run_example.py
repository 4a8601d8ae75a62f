"""Smoke check run by the quick start until the experiment engine lands: imports every
distribution and lists what the registry finds."""
from __future__ import annotations

import importlib

from nni.runtime import registry
from nni.runtime.distributions import installed_distributions

for name, version in installed_distributions().items():
    print(f"{name:20s} {version}")
for module in ("nni.algorithms.hpo", "nni.server", "nni.tools.nnictl", "nni.training_services.local"):
    importlib.import_module(module)
for kind in registry.KINDS:
    print(f"{kind}s: {', '.join(registry.list_names(kind)) or '(none yet)'}")
