"""Every ``torch.nn`` name, with the module classes wrapped as basic units (their init args may be ValueChoices).

Containers (``Module``, ``Sequential``, ``ModuleList``, ``ModuleDict``, ``ParameterList``, ``ParameterDict``)
are torch's own classes: they hold other modules rather than being one node. Everything else that is not a
module class (``functional``, ``init``, ``Parameter``, ``utils``, ...) is re-exported unchanged.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict

import torch.nn as _torch_nn

from ...wrapper import basic_unit

CONTAINERS = frozenset({'Module', 'Sequential', 'ModuleList', 'ModuleDict', 'ParameterList', 'ParameterDict', 'Container'})


def _wrapped_namespace() -> Dict[str, Any]:
    names: Dict[str, Any] = {}
    for name in dir(_torch_nn):
        if name.startswith('_'):
            continue
        obj = getattr(_torch_nn, name)
        if isinstance(obj, type) and issubclass(obj, _torch_nn.Module) and name not in CONTAINERS:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', FutureWarning)  # subclassing deprecated modules (NLLLoss2d) warns
                obj = basic_unit(obj)
        names[name] = obj
    return names


TORCH_NN_NAMES: Dict[str, Any] = _wrapped_namespace()
