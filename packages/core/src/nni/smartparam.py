"""Runtime of annotation-converted trial code.

:func:`nni.tools.annotation.expand_annotations` rewrites::

    '''@nni.variable(nni.choice(0.1, 0.01, 0.001), name=learning_rate)'''
    learning_rate = 0.1

into::

    '''@nni.variable(nni.choice(0.1, 0.01, 0.001), name=learning_rate)'''
    learning_rate = nni.smartparam.choice(0.1, 0.01, 0.001, name='mnist/learning_rate', default=0.1)

Each function here reads the value of parameter ``name`` from the trial's current parameters
(``nni.get_current_parameter()``, fetching them with ``nni.get_next_parameter()`` on first
use). When the parameter is absent — standalone mode, where ``get_next_parameter()`` returns
``{}`` — the function returns ``default``: the value the user assigned in the original code
(the docs: "please assign default values to the hyperparameters in your trial code"). Called
without ``default``, the fallback is the first option (``choice``), ``lower``/``low``
(bounded types), ``mu`` (normal types) or ``exp(mu)`` (lognormal types).

``choice`` receives the value the tuner picked; the options are matched against ``keys`` (the
labels the search space lists: the literal values, or the options' source text when an
option is not a literal). An option may itself be a sampling expression
(:func:`nested_sample`), received as ``{"_name": <label>, "value": <inner value>}``.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, Optional, Sequence

__all__ = [
    'choice', 'randint', 'uniform', 'quniform', 'loguniform', 'qloguniform',
    'normal', 'qnormal', 'lognormal', 'qlognormal', 'function_choice', 'nested_sample',
]

_logger = logging.getLogger(__name__)
_MISSING: Any = object()
_warned: set = set()


def _current_parameters() -> Dict[str, Any]:
    import nni

    get_current = getattr(nni, 'get_current_parameter', None)
    params = get_current() if get_current is not None else None
    if params is None:
        get_next = getattr(nni, 'get_next_parameter', None)
        params = get_next() if get_next is not None else None
    return params if isinstance(params, dict) else {}


def _lookup(name: str) -> Any:
    if not isinstance(name, str) or not name:
        raise ValueError(f'nni.smartparam: parameter name must be a non-empty string, got {name!r}')
    params = _current_parameters()
    if name in params:
        return params[name]
    if params and name not in _warned:
        _warned.add(name)
        _logger.warning('parameter %r is not in the received parameters; using its default', name)
    return _MISSING


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except Exception:  # an option whose __eq__ misbehaves (e.g. arrays) never matches
        return False


class _Nested:
    """A sampling expression used as an option of ``choice``."""

    def __init__(self, type_: str, args: Sequence[Any], keys: Optional[Sequence[Any]]):
        self.type = type_
        self.args = list(args)
        self.keys = list(keys) if keys is not None else None

    def resolve(self, value: Any, name: str) -> Any:
        if self.type == 'choice':
            return _pick(self.args, self.keys, value, name)
        return value

    def fallback(self) -> Any:
        if self.type == 'choice':
            return _fallback_option(self.args[0])
        return _numeric_fallback(self.type, self.args)

    def __repr__(self) -> str:
        return f'nested_sample({self.type!r}, {", ".join(map(repr, self.args))})'


def _fallback_option(option: Any) -> Any:
    return option.fallback() if isinstance(option, _Nested) else option


def _pick(options: Sequence[Any], keys: Optional[Sequence[Any]], value: Any, name: str) -> Any:
    keys = list(options) if keys is None else list(keys)
    if len(keys) != len(options):
        raise ValueError(f'nni.smartparam: parameter {name!r}: {len(options)} options but {len(keys)} keys')
    if isinstance(value, dict) and '_name' in value:
        for option, key in zip(options, keys):
            if isinstance(option, _Nested) and _same(key, value['_name']):
                return option.resolve(value.get('value'), name)
    for option, key in zip(options, keys):
        if not isinstance(option, _Nested) and _same(key, value):
            return option
    raise ValueError(f'nni.smartparam: parameter {name!r}: received {value!r}, which is not one of {keys!r}')


def nested_sample(type_: str, *args: Any, keys: Optional[Sequence[Any]] = None) -> _Nested:
    """Mark a sampling expression used as a ``choice`` option (``nni.choice(nni.uniform(0, 1), 5)``)."""
    return _Nested(type_, args, keys)


def choice(*options: Any, name: str, keys: Optional[Sequence[Any]] = None, default: Any = _MISSING) -> Any:
    """The option the tuner chose for ``name`` (``default`` when there is none)."""
    if not options:
        raise ValueError(f'nni.smartparam.choice: parameter {name!r} needs at least one option')
    value = _lookup(name)
    if value is _MISSING:
        return _fallback_option(options[0]) if default is _MISSING else default
    return _pick(options, keys, value, name)


def function_choice(*functions: Callable[[], Any], name: str, keys: Optional[Sequence[Any]] = None,
                    default: Any = _MISSING) -> Any:
    """Call the function the tuner chose for ``name`` and return its result.

    Args:
        functions: zero-argument callables (the converted code passes ``lambda: f(x, y)``).
        name: the parameter name.
        keys: the labels of the functions in the search space (their call source text).
        default: a zero-argument callable used when no value was received (standalone).
    """
    if not functions:
        raise ValueError(f'nni.smartparam.function_choice: parameter {name!r} needs at least one function')
    value = _lookup(name)
    if value is _MISSING:
        chosen = functions[0] if default is _MISSING else default
    else:
        chosen = _pick(functions, keys, value, name)
    return chosen()


def _numeric(type_: str, args: Sequence[Any], name: str, default: Any) -> Any:
    value = _lookup(name)
    if value is not _MISSING:
        return value
    return _numeric_fallback(type_, args) if default is _MISSING else default


def _numeric_fallback(type_: str, args: Sequence[Any]) -> Any:
    if type_ in ('normal', 'qnormal'):
        return args[0]
    if type_ in ('lognormal', 'qlognormal'):
        return math.exp(args[0])
    return args[0]


def randint(lower: int, upper: int, name: str, default: Any = _MISSING) -> Any:
    """An integer in ``[lower, upper)`` chosen by the tuner."""
    return _numeric('randint', (lower, upper), name, default)


def uniform(low: float, high: float, name: str, default: Any = _MISSING) -> Any:
    """A number in ``[low, high]`` chosen by the tuner."""
    return _numeric('uniform', (low, high), name, default)


def quniform(low: float, high: float, q: float, name: str, default: Any = _MISSING) -> Any:
    """``clip(round(uniform(low, high) / q) * q, low, high)`` chosen by the tuner."""
    return _numeric('quniform', (low, high, q), name, default)


def loguniform(low: float, high: float, name: str, default: Any = _MISSING) -> Any:
    """``exp(uniform(log(low), log(high)))`` chosen by the tuner."""
    return _numeric('loguniform', (low, high), name, default)


def qloguniform(low: float, high: float, q: float, name: str, default: Any = _MISSING) -> Any:
    """``clip(round(loguniform(low, high) / q) * q, low, high)`` chosen by the tuner."""
    return _numeric('qloguniform', (low, high, q), name, default)


def normal(mu: float, sigma: float, name: str, default: Any = _MISSING) -> Any:
    """``normal(mu, sigma)`` chosen by the tuner."""
    return _numeric('normal', (mu, sigma), name, default)


def qnormal(mu: float, sigma: float, q: float, name: str, default: Any = _MISSING) -> Any:
    """``round(normal(mu, sigma) / q) * q`` chosen by the tuner."""
    return _numeric('qnormal', (mu, sigma, q), name, default)


def lognormal(mu: float, sigma: float, name: str, default: Any = _MISSING) -> Any:
    """``exp(normal(mu, sigma))`` chosen by the tuner."""
    return _numeric('lognormal', (mu, sigma), name, default)


def qlognormal(mu: float, sigma: float, q: float, name: str, default: Any = _MISSING) -> Any:
    """``round(exp(normal(mu, sigma)) / q) * q`` chosen by the tuner."""
    return _numeric('qlognormal', (mu, sigma, q), name, default)
