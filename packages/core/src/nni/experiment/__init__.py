"""``nni.experiment``: experiment configs and (when installed) the :class:`Experiment` front.

``from nni.experiment import ExperimentConfig, LocalConfig, ...`` gives the config classes;
``Experiment`` is imported lazily from :mod:`nni.experiment.experiment`.
"""
from __future__ import annotations

from .config import *  # noqa: F403
from .config import __all__ as _config_all

import importlib.util as _util

__all__ = list(_config_all)
if _util.find_spec(f"{__name__}.experiment") is not None:
    __all__.append("Experiment")


def __getattr__(name: str):
    # Lazy: the Experiment front pulls in REST/launch code that config users do not need.
    if name == "Experiment":
        import importlib
        import importlib.util

        if importlib.util.find_spec(f"{__name__}.experiment") is None:
            raise AttributeError("nni.experiment.Experiment is not available (nni/experiment/experiment.py is missing)")
        return importlib.import_module(f"{__name__}.experiment").Experiment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
