"""Serialization of evaluators and models by *how they were made* (NNI v2.5's ``serialize``).

A multi-trial experiment ships each sampled model and its evaluator to a trial process, maybe
on another machine. Rather than pickling trained state, Retiarii records the call that built
an object -- its class (or factory) and init arguments -- and re-makes it on the other side.

* :func:`serialize` ``(cls, *args, **kwargs)`` builds ``cls(*args, **kwargs)`` and records the
  call on the instance ("traceable" object), without touching ``cls``.
* :func:`serialize_cls` is the class-decorator form: every instance of the class (and of its
  subclasses that do not define their own ``__init__``) records its init arguments. The
  evaluators (``pl.Classification``, ``pl.DataLoader``, ...) are already decorated.
* :func:`dump` / :func:`load` write and read a JSON string. Traceable objects are written as
  ``{"__nni_type__": "object", "symbol": ..., "args": [...], "kwargs": {...}}``, recursively
  (arguments that are traceable are written the same way); classes and functions that can be
  imported by name as ``{"__nni_type__": "path", "value": "module:qualname"}``; JSON values as
  themselves (tuples and dicts with non-string keys are tagged). Anything else -- lambdas, local
  classes, classes and functions defined in a ``__main__`` script, datasets, tensors -- is
  pickled *by value* with cloudpickle and stored base64-encoded, so it need not be importable in
  the trial process (but its pickle must be loadable there: same packages installed).

Helpers for the model-space and execution-engine code: :func:`is_traceable`,
:func:`get_trace` (``(symbol, args, kwargs)``), :func:`get_init_kwargs` (arguments bound to
parameter names) and :func:`recreate` (a fresh instance made by the same call).

Notes:
    * Arguments are recorded by reference: an ``__init__`` that mutates a list argument changes
      the record too.
    * An object used twice (e.g. one transform in two datasets) becomes two equal objects after
      :func:`load`: identity is not kept.
    * ``serialize(instance)`` (the docs' ``serialize(transforms.ToTensor())``) has no init
      arguments to record: the instance is returned unchanged and :func:`dump` pickles it by
      value. It is checked to be picklable right away so the error comes early.

``import nni.retiarii.serializer`` imports neither torch nor cloudpickle.
"""
from __future__ import annotations

import base64
import functools
import importlib
import inspect
import json
from typing import Any, Callable, NamedTuple, TypeVar

__all__ = [
    "Trace",
    "serialize",
    "serialize_cls",
    "is_traceable",
    "get_trace",
    "get_init_kwargs",
    "recreate",
    "dump",
    "load",
]

T = TypeVar("T")

# Instance attribute holding the Trace; written with object.__setattr__ so that classes with
# a guarded __setattr__ (torch DataLoader, nn.Module) keep it as a plain attribute.
_TRACE_ATTR = "_nni_trace"
# Marks an __init__ replaced by serialize_cls (its value: the wrapped original).
_WRAPPED_ATTR = "__nni_traced_init__"
_TAG = "__nni_type__"


class Trace(NamedTuple):
    """How a traceable object was made: ``symbol(*args, **kwargs)``."""

    symbol: Callable[..., Any]
    args: tuple
    kwargs: dict


def _set_trace(obj: Any, trace: Trace) -> None:
    """Record ``trace`` on ``obj`` (the one record of init arguments: also written by
    nni.retiarii.wrapper's ``@model_wrapper`` / ``@basic_unit``)."""
    try:
        object.__setattr__(obj, _TRACE_ATTR, trace)
    except (AttributeError, TypeError):
        raise TypeError(f"serialize: cannot record init arguments on a {type(obj).__qualname__} instance "
                        "(it has no __dict__); wrap it in a class that has one") from None


def serialize_cls(cls: type[T]) -> type[T]:
    """Class decorator: every instance of ``cls`` records the arguments it was made with.

    ``cls`` is changed in place (its ``__init__`` is wrapped), so ``isinstance``,
    ``super(Cls, self)`` and pickling by name keep working. Subclasses without their own
    ``__init__`` are traced too; a subclass with its own ``__init__`` must be decorated itself
    (otherwise its instances are simply not traceable and :func:`dump` pickles them by value).
    Decorating twice is harmless. To trace a third-party class without changing it, decorate
    a subclass (as ``pl.DataLoader`` does) or use :func:`serialize`.
    """
    if not isinstance(cls, type):
        raise TypeError(f"serialize_cls: expected a class, got {type(cls).__qualname__}")
    own_init = cls.__dict__.get("__init__")
    if own_init is None:
        if getattr(cls.__init__, _WRAPPED_ATTR, None) is not None:
            return cls  # inherits a traced __init__: type(self).__init__ is that wrapper
        original = cls.__init__
    elif getattr(own_init, _WRAPPED_ATTR, None) is not None:
        return cls  # already decorated
    else:
        original = own_init

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        # Only the outermost traced __init__ records: a base class's __init__ called through
        # super() sees other arguments than the ones the object was made with.
        if type(self).__init__ is __init__:
            _set_trace(self, Trace(type(self), args, kwargs))

    setattr(__init__, _WRAPPED_ATTR, original)
    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def serialize(cls: Any, *args: Any, **kwargs: Any) -> Any:
    """Make ``cls(*args, **kwargs)`` and record the call, so that :func:`dump` can re-make it.

    Example::

        transform = serialize(Compose, [serialize(Normalize, (0.1307,), (0.3081,))])
        train_dataset = serialize(MNIST, root='data/mnist', train=True, transform=transform)

    Args:
        cls: a class, or a factory function (recorded the same way). An *instance* with no
            further arguments is accepted too and returned unchanged: it has no recorded
            call, so :func:`dump` pickles it by value (it must be picklable).
        args, kwargs: the init arguments. Non-primitive arguments should be traceable
            themselves (apply ``serialize`` recursively); others are pickled by value.
    """
    if isinstance(cls, type):
        obj = cls(*args, **kwargs)
        if not is_traceable(obj) or get_trace(obj).symbol is not cls:
            _set_trace(obj, Trace(cls, args, kwargs))
        return obj
    if inspect.isfunction(cls) or inspect.ismethod(cls) or inspect.isbuiltin(cls):
        obj = cls(*args, **kwargs)
        _set_trace(obj, Trace(cls, args, kwargs))
        return obj
    if args or kwargs:
        raise TypeError(f"serialize: the first argument must be a class or a factory function when init arguments "
                        f"follow; got a {type(cls).__qualname__} instance")
    _pickled(cls, "serialize")  # fail now, not when the experiment ships the evaluator
    return cls


def _find_trace(obj: Any) -> Trace | None:
    try:
        attrs = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    trace = attrs.get(_TRACE_ATTR)
    return trace if isinstance(trace, Trace) else None


def is_traceable(obj: Any) -> bool:
    """Whether ``obj`` recorded how it was made (see :func:`serialize`, :func:`serialize_cls`;
    instances of ``@model_wrapper`` / ``@basic_unit`` classes count too)."""
    return _find_trace(obj) is not None


def get_trace(obj: Any) -> Trace:
    """The recorded ``(symbol, args, kwargs)`` of a traceable object."""
    trace = _find_trace(obj)
    if trace is None:
        raise TypeError(f"{type(obj).__qualname__} instance is not traceable: create it with "
                        "nni.retiarii.serialize(cls, ...) or decorate its class with serialize_cls")
    return trace


def get_init_kwargs(obj: Any) -> dict[str, Any]:
    """The recorded init arguments of a traceable object as ``{parameter name: value}``.

    Positional arguments are bound to their parameter names (``*args`` stays a tuple under
    its own name, ``**kwargs`` entries are merged in); defaults that were not passed are
    left out. Falls back to ``{'args': ..., **kwargs}`` when the signature is unavailable.
    """
    trace = get_trace(obj)
    try:
        signature = inspect.signature(trace.symbol)
        bound = signature.bind(*trace.args, **trace.kwargs)
    except (TypeError, ValueError):
        result = dict(trace.kwargs)
        if trace.args:
            result["args"] = trace.args
        return result
    result = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            result.update(value)
        else:
            result[name] = value
    return result


def recreate(obj: T) -> T:
    """A fresh object made by the same recorded call (arguments shared, not copied)."""
    trace = get_trace(obj)
    return serialize(trace.symbol, *trace.args, **trace.kwargs)


# ---------------------------------------------------------------------------------- JSON form


def dump(obj: Any, indent: int | None = None) -> str:
    """The JSON text from which :func:`load` re-makes ``obj`` (see the module docstring)."""
    return json.dumps(_encode(obj), indent=indent)


def load(text: str) -> Any:
    """Re-make the object written by :func:`dump` (traceable objects are re-instantiated)."""
    return _decode(json.loads(text))


def _cloudpickle():
    import cloudpickle  # late: only trials/evaluators that need pickling by value pay for it

    return cloudpickle


def _import_path(obj: Any) -> str | None:
    """``module:qualname`` when importing it gives back ``obj`` itself, else None."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if module == "__main__" or "<" in qualname:
        return None  # a script's or a local name: not importable in the trial process
    try:
        return f"{module}:{qualname}" if _resolve(module, qualname) is obj else None
    except (ImportError, AttributeError):
        return None


def _resolve(module: str, qualname: str) -> Any:
    target = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _pickled(obj: Any, caller: str = "serializer.dump") -> dict:
    try:
        data = _cloudpickle().dumps(obj)
    except Exception as err:
        raise TypeError(f"{caller}: cannot pickle a {type(obj).__qualname__} instance ({err}); "
                        "create it with nni.retiarii.serialize(cls, ...) so it is re-made from its init arguments") from err
    return {_TAG: "pickle", "value": base64.b64encode(data).decode("ascii")}


def _encode(obj: Any) -> Any:
    if obj is None or type(obj) in (bool, int, float, str):  # subclasses (enums, numpy) are pickled
        return obj
    if type(obj) is list:
        return [_encode(item) for item in obj]
    if type(obj) is tuple:
        return {_TAG: "tuple", "value": [_encode(item) for item in obj]}
    if type(obj) is dict:
        if all(isinstance(key, str) for key in obj) and _TAG not in obj:
            return {key: _encode(value) for key, value in obj.items()}
        return {_TAG: "dict", "items": [[_encode(key), _encode(value)] for key, value in obj.items()]}
    if is_traceable(obj):
        trace = get_trace(obj)
        return {_TAG: "object", "symbol": _encode_symbol(trace.symbol),
                "args": [_encode(arg) for arg in trace.args],
                "kwargs": {key: _encode(value) for key, value in trace.kwargs.items()}}
    if isinstance(obj, type) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return _encode_symbol(obj)
    return _pickled(obj)


def _encode_symbol(symbol: Any) -> dict:
    path = _import_path(symbol)
    if path is not None:
        return {_TAG: "path", "value": path}
    return _pickled(symbol)


def _decode(data: Any) -> Any:
    if type(data) is list:
        return [_decode(item) for item in data]
    if type(data) is not dict:
        return data
    tag = data.get(_TAG)
    if tag is None:
        return {key: _decode(value) for key, value in data.items()}
    if tag == "tuple":
        return tuple(_decode(item) for item in data["value"])
    if tag == "dict":
        return {_decode(key): _decode(value) for key, value in data["items"]}
    if tag == "path":
        module, _, qualname = data["value"].partition(":")
        return _resolve(module, qualname)
    if tag == "pickle":
        return _cloudpickle().loads(base64.b64decode(data["value"]))
    if tag == "object":
        symbol = _decode(data["symbol"])
        args = [_decode(arg) for arg in data["args"]]
        kwargs = {key: _decode(value) for key, value in data["kwargs"].items()}
        return serialize(symbol, *args, **kwargs)
    raise ValueError(f"serializer.load: unknown {_TAG} {tag!r}; allowed: tuple, dict, path, pickle, object")
