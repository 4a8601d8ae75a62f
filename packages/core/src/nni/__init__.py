"""NNI: an AutoML toolkit. ``import nni`` gives the trial API.

``nni`` is one import namespace spread over several distributions (nni-core, nni-hpo,
nni-webui-server, ...). nni-core owns this file; the ``extend_path`` call below lets the
sub-packages of the other distributions be found wherever they are installed (one
site-packages, or one editable ``src/`` folder each).
"""
from __future__ import annotations

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # type: ignore[name-defined]


def __getattr__(name: str):
    # Resolved lazily: importlib.metadata costs more than the rest of ``import nni``.
    if name == "__version__":
        from .runtime.distributions import core_version

        return core_version()
    raise AttributeError(f"module 'nni' has no attribute {name!r}")
