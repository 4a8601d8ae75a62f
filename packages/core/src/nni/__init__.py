"""NNI: an AutoML toolkit. ``import nni`` gives the trial API.

``nni`` is one import namespace spread over several distributions (nni-core, nni-hpo,
nni-webui-server, ...). nni-core owns this file; extending ``__path__`` below lets the
sub-packages of the other distributions be found wherever they are installed (one
site-packages, or one editable ``src/`` folder each).
"""
from __future__ import annotations

import os as _os
import sys as _sys


def _extend_path(path: list[str]) -> list[str]:
    # What pkgutil.extend_path does for a plain package, without importing pkgutil
    # (which alone costs more than half of ``import nni``).
    out = list(path)
    for entry in _sys.path:
        candidate = _os.path.join(entry or _os.curdir, __name__)
        if isinstance(entry, str) and candidate not in out and _os.path.isdir(candidate):
            out.append(candidate)
    return out


__path__ = _extend_path(__path__)  # type: ignore[name-defined]


# Public names resolved on first use, so ``import nni`` stays cheap: name -> (module, attribute).
_LAZY = {
    "get_next_parameter": ("nni.trial", "get_next_parameter"),
    "get_current_parameter": ("nni.trial", "get_current_parameter"),
    "report_intermediate_result": ("nni.trial", "report_intermediate_result"),
    "report_final_result": ("nni.trial", "report_final_result"),
    "get_experiment_id": ("nni.trial", "get_experiment_id"),
    "get_trial_id": ("nni.trial", "get_trial_id"),
    "get_sequence_id": ("nni.trial", "get_sequence_id"),
    "NoMoreTrialError": ("nni.utils", "NoMoreTrialError"),
    "ClassArgsValidator": ("nni.utils", "ClassArgsValidator"),
}
# What annotation-converted trial code calls (``nni.choice(...)``, ``nni.mutable_layer(...)``).
_LAZY.update((name, ("nni.smartparam", name)) for name in (
    "choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",
    "lognormal", "qlognormal", "function_choice", "mutable_layer", "training_update"))

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    # Resolved lazily: importlib.metadata costs more than the rest of ``import nni``.
    if name == "__version__":
        from .runtime.distributions import core_version

        return core_version()
    target = _LAZY.get(name)
    if target is not None:
        # __import__ + sys.modules rather than importlib.import_module: `import importlib`
        # costs a trial process a few ms
        __import__(target[0])
        value = getattr(_sys.modules[target[0]], target[1])
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nni' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})
