"""NNI: an AutoML toolkit. ``import nni`` gives the trial API.

``nni`` is one import namespace spread over several distributions (nni-core, nni-hpo,
nni-webui-server, ...). nni-core owns this file; the ``extend_path`` call below lets the
sub-packages of the other distributions be found wherever they are installed (one
site-packages, or one editable ``src/`` folder each).
"""
from __future__ import annotations

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # type: ignore[name-defined]


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

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    # Resolved lazily: importlib.metadata costs more than the rest of ``import nni``.
    if name == "__version__":
        from .runtime.distributions import core_version

        return core_version()
    target = _LAZY.get(name)
    if target is not None:
        import importlib

        value = getattr(importlib.import_module(target[0]), target[1])
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nni' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})
