"""``@model_wrapper`` and ``@basic_unit``: record init arguments so a module can be re-created.

Both decorators wrap ``__init__`` and store the call's ``(args, kwargs)`` on the instance (read them
with :func:`get_init_args`), in the same record as :mod:`nni.retiarii.serializer` (so a model space
is also traceable: ``serializer.dump`` re-makes it from its init arguments). The pure-python engine re-creates a model space in the trial with
``with fixed_arch(sample): cls(*args, **kwargs)``; the graph converter turns a basic unit into one
node whose operation parameters are its init arguments.

A basic unit's init arguments may be ``ValueChoice``s. While the model space is built, the unit is
constructed with each choice's current value (its first candidate, or the chosen value inside
``fixed_arch``), so the model space itself is a runnable module: the "first-candidate" model.
The recorded arguments keep the ``ValueChoice`` objects, which is how search-space extraction finds them.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Optional, Tuple, TypeVar

import torch.nn

from .serializer import Trace, _find_trace, _set_trace
from .utils import label_scope

__all__ = ['model_wrapper', 'basic_unit', 'get_init_args', 'is_basic_unit', 'is_model_wrapper', 'resolve_value_choices']

T = TypeVar('T', bound=type)


def _is_value_choice(obj: Any) -> bool:
    return getattr(type(obj), '_nni_value_choice', False)


def resolve_value_choices(obj: Any) -> Any:
    """Replace every ``ValueChoice`` in ``obj`` (looking into lists, tuples and dicts) by its current value."""
    if _is_value_choice(obj):
        return obj.value
    if isinstance(obj, list):
        return [resolve_value_choices(x) for x in obj]
    if isinstance(obj, tuple) and not hasattr(obj, '_fields'):
        return tuple(resolve_value_choices(x) for x in obj)
    if isinstance(obj, dict):
        return {k: resolve_value_choices(v) for k, v in obj.items()}
    return obj


def get_init_args(module: Any) -> Optional[Tuple[tuple, Dict[str, Any]]]:
    """``(args, kwargs)`` a ``@model_wrapper`` / ``@basic_unit`` instance was created with, else ``None``."""
    if not (is_basic_unit(module) or is_model_wrapper(module)):
        return None  # e.g. serialize()d: traced, but neither a basic unit nor a model space
    trace = _find_trace(module)
    return None if trace is None else (trace.args, trace.kwargs)


def is_basic_unit(module: Any) -> bool:
    return bool(getattr(type(module), '_nni_basic_unit', False))


def is_model_wrapper(obj: Any) -> bool:
    cls = obj if isinstance(obj, type) else type(obj)
    return bool(getattr(cls, '_nni_model_wrapper', False))


def _wrap_init(original: Any, resolve: bool, scope: bool) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        call_args, call_kwargs = args, kwargs
        if resolve:
            call_args = tuple(resolve_value_choices(a) for a in args)
            call_kwargs = {k: resolve_value_choices(v) for k, v in kwargs.items()}
        if scope:
            with label_scope():
                original(self, *call_args, **call_kwargs)
        else:
            original(self, *call_args, **call_kwargs)
        # the outermost (most derived) decorated __init__ finishes last, so its arguments win
        _set_trace(self, Trace(type(self), args, dict(kwargs)))
    return __init__


def basic_unit(cls: T) -> T:
    """Make a module class a basic unit: one node of the model graph whose init args may be ValueChoices.

    User classes are modified in place and returned. A class from ``torch`` itself is never modified:
    a subclass of the same name is returned instead (this is how ``nni.retiarii.nn.pytorch`` wraps torch.nn).
    """
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise TypeError(f'basic_unit: {cls!r} is not a torch.nn.Module subclass')
    if cls.__module__.split('.')[0] == 'torch':
        wrapped = type(cls.__name__, (cls,), {
            '__init__': _wrap_init(cls.__init__, resolve=True, scope=False),
            '__module__': 'nni.retiarii.nn.pytorch',
            '__qualname__': cls.__name__,
            '__doc__': cls.__doc__,
            '_nni_basic_unit': True,
        })
        return wrapped  # type: ignore[return-value]
    cls.__init__ = _wrap_init(cls.__init__, resolve=True, scope=False)  # type: ignore[misc]
    cls._nni_basic_unit = True  # type: ignore[attr-defined]
    return cls


def model_wrapper(cls: T) -> T:
    """Decorate the outermost model-space class (required by the pure-python engine).

    Records the init arguments (so the trial can re-create the class under ``fixed_arch``) and
    counts automatic labels from ``_mutation_1`` for each construction (see :mod:`nni.retiarii.utils`).
    The class is modified in place.
    """
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise TypeError(f'model_wrapper: {cls!r} is not a torch.nn.Module subclass')
    cls.__init__ = _wrap_init(cls.__init__, resolve=False, scope=True)  # type: ignore[misc]
    cls._nni_model_wrapper = True  # type: ignore[attr-defined]
    return cls
