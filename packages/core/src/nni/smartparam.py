"""Runtime of annotation-converted trial code (NNI v2.5's ``nni.choice``, ``nni.uniform``, ...).

:func:`nni.tools.annotation.expand_annotations` rewrites, in ``mnist.py``::

    '''@nni.variable(nni.choice(50, 250, 500), name=batch_size)'''
    batch_size = 128

into::

    '''@nni.variable(nni.choice(50, 250, 500), name=batch_size)'''
    batch_size = nni.choice({50: 50, 250: 250, 500: 500}, name='batch_size', key='mnist/batch_size/choice', default=(128))

Every function here is also a top-level name of :mod:`nni` (``nni.choice`` is
``nni.smartparam.choice``). Each reads the value of parameter ``key`` (``name`` when no key
is given) from the trial's current parameters (``nni.get_current_parameter()``, fetching them
with ``nni.get_next_parameter()`` on first use). The numeric types return the received value;
``choice`` returns ``options[received]``: the options are a dict from the label the search
space lists (the literal value, or the option's source text when it is not a literal) to the
option; ``function_choice`` calls the chosen function. An option may itself be a sampling
expression (:func:`nested_sample`), received as ``{"_name": <label>, "value": <inner value>}``.

When the parameter is absent — standalone mode, where ``get_next_parameter()`` returns ``{}``
— the result is ``default`` (the converted code passes the value the user assigned, as the
docs ask: "please assign default values to the hyperparameters in your trial code").
Without ``default`` the fallback is the first option (``choice``), ``low``/``lower`` (bounded
types), ``mu`` (normal types) or ``exp(mu)`` (lognormal types).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

__all__ = [
    'choice', 'randint', 'uniform', 'quniform', 'loguniform', 'qloguniform',
    'normal', 'qnormal', 'lognormal', 'qlognormal', 'function_choice', 'nested_sample',
    'mutable_layer', 'training_update',
]

_logger = logging.getLogger(__name__)
_MISSING: Any = object()
_warned: set = set()


def _current_parameters() -> Dict[str, Any]:
    import nni

    params = nni.get_current_parameter()
    if params is None:
        params = nni.get_next_parameter()
    return params if isinstance(params, dict) else {}


def _lookup(name: Optional[str], key: Optional[str], caller: str) -> Any:
    label = key if key is not None else name
    if not isinstance(label, str) or not label:
        raise ValueError(f'nni.{caller}: key (or name) must be a non-empty string, got {label!r}')
    params = _current_parameters()
    if label in params:
        return params[label]
    if params and label not in _warned:
        _warned.add(label)
        _logger.warning('parameter %r is not in the received parameters; using its default', label)
    return _MISSING


class _Nested:
    """A sampling expression used as an option of ``choice``."""

    def __init__(self, type_: str, args: Sequence[Any]):
        self.type = type_
        self.args = list(args)

    def resolve(self, value: Any, label: str) -> Any:
        if self.type == 'choice':
            return _pick(_options(self.args), value, label)
        return value

    def fallback(self) -> Any:
        if self.type == 'choice':
            return _fallback_option(next(iter(_options(self.args).values())))
        return _numeric_fallback(self.type, self.args)

    def __repr__(self) -> str:
        return f'nested_sample({self.type!r}, {", ".join(map(repr, self.args))})'


def _options(args: Sequence[Any]) -> Dict[Any, Any]:
    """``choice({label: option})`` or ``choice(option, ...)`` (each option its own label)."""
    if len(args) == 1 and isinstance(args[0], Mapping):
        return dict(args[0])
    return {option: option for option in args}


def _fallback_option(option: Any) -> Any:
    return option.fallback() if isinstance(option, _Nested) else option


def _pick(options: Dict[Any, Any], value: Any, label: str) -> Any:
    if isinstance(value, dict) and '_name' in value:
        option = _get(options, value['_name'])
        if isinstance(option, _Nested):
            return option.resolve(value.get('value'), label)
    else:
        option = _get(options, value)
        if option is not _MISSING and not isinstance(option, _Nested):
            return option
    raise ValueError(f'nni: parameter {label!r}: received {value!r}, which is not one of {list(options)!r}')


def _get(options: Dict[Any, Any], value: Any) -> Any:
    try:
        option = options.get(value, _MISSING)
    except TypeError:  # unhashable received value: matches no label
        return _MISSING
    if option is not _MISSING:
        # a dict finds 1 under the label True; a JSON value keeps bool and int apart
        found = next(k for k in options if k == value)
        if isinstance(found, bool) != isinstance(value, bool):
            return _MISSING
    return option


def nested_sample(type_: str, *args: Any) -> _Nested:
    """Mark a sampling expression used as a ``choice`` option (``nni.choice(nni.uniform(0, 1), 5)``).

    ``args`` are the expression's arguments; for ``'choice'``, one ``{label: option}`` dict.
    """
    return _Nested(type_, args)


def choice(*options: Any, name: Optional[str] = None, key: Optional[str] = None, default: Any = _MISSING) -> Any:
    """The option the tuner chose for ``key``.

    Args:
        options: one dict ``{label: option}`` (what converted code passes: the label is what
            the search space lists), or the options themselves, each its own label.
        name: the annotated variable's name; the look-up key when ``key`` is not given.
        key: the parameter's key in the search space (``<module>/<name>/choice``).
        default: returned when no value was received (standalone run).
    """
    table = _options(options)
    if not table:
        raise ValueError(f'nni.choice: parameter {key or name!r} needs at least one option')
    value = _lookup(name, key, 'choice')
    if value is _MISSING:
        return _fallback_option(next(iter(table.values()))) if default is _MISSING else default
    return _pick(table, value, key or name)


def function_choice(*functions: Any, name: Optional[str] = None, key: Optional[str] = None,
                    default: Any = _MISSING) -> Any:
    """Call the function the tuner chose for ``key`` and return its result.

    Args:
        functions: one dict ``{call source text: zero-argument callable}`` (the converted code
            passes ``{'max_pool(h, 2)': lambda: max_pool(h, 2), ...}``), or the callables.
        name: the replaced function's name; the look-up key when ``key`` is not given.
        key: the parameter's key in the search space (``<module>/<name>/function_choice``).
        default: a zero-argument callable used when no value was received (standalone).
    """
    table = _options(functions)
    if not table:
        raise ValueError(f'nni.function_choice: parameter {key or name!r} needs at least one function')
    value = _lookup(name, key, 'function_choice')
    if value is _MISSING:
        chosen: Callable[[], Any] = next(iter(table.values())) if default is _MISSING else default
    else:
        chosen = _pick(table, value, key or name)
    return chosen()


def _numeric(type_: str, args: Sequence[Any], name: Optional[str], key: Optional[str], default: Any) -> Any:
    value = _lookup(name, key, type_)
    if value is not _MISSING:
        return value
    return _numeric_fallback(type_, args) if default is _MISSING else default


def _numeric_fallback(type_: str, args: Sequence[Any]) -> Any:
    if type_ in ('lognormal', 'qlognormal'):
        return math.exp(args[0])
    return args[0]


def randint(lower: int, upper: int, name: Optional[str] = None, key: Optional[str] = None, default: Any = _MISSING) -> Any:
    """An integer in ``[lower, upper)`` chosen by the tuner."""
    return _numeric('randint', (lower, upper), name, key, default)


def uniform(low: float, high: float, name: Optional[str] = None, key: Optional[str] = None, default: Any = _MISSING) -> Any:
    """A number in ``[low, high]`` chosen by the tuner."""
    return _numeric('uniform', (low, high), name, key, default)


def quniform(low: float, high: float, q: float, name: Optional[str] = None, key: Optional[str] = None,
             default: Any = _MISSING) -> Any:
    """``clip(round(uniform(low, high) / q) * q, low, high)`` chosen by the tuner."""
    return _numeric('quniform', (low, high, q), name, key, default)


def loguniform(low: float, high: float, name: Optional[str] = None, key: Optional[str] = None,
               default: Any = _MISSING) -> Any:
    """``exp(uniform(log(low), log(high)))`` chosen by the tuner."""
    return _numeric('loguniform', (low, high), name, key, default)


def qloguniform(low: float, high: float, q: float, name: Optional[str] = None, key: Optional[str] = None,
                default: Any = _MISSING) -> Any:
    """``clip(round(loguniform(low, high) / q) * q, low, high)`` chosen by the tuner."""
    return _numeric('qloguniform', (low, high, q), name, key, default)


def normal(mu: float, sigma: float, name: Optional[str] = None, key: Optional[str] = None, default: Any = _MISSING) -> Any:
    """``normal(mu, sigma)`` chosen by the tuner."""
    return _numeric('normal', (mu, sigma), name, key, default)


def qnormal(mu: float, sigma: float, q: float, name: Optional[str] = None, key: Optional[str] = None,
            default: Any = _MISSING) -> Any:
    """``round(normal(mu, sigma) / q) * q`` chosen by the tuner."""
    return _numeric('qnormal', (mu, sigma, q), name, key, default)


def lognormal(mu: float, sigma: float, name: Optional[str] = None, key: Optional[str] = None,
              default: Any = _MISSING) -> Any:
    """``exp(normal(mu, sigma))`` chosen by the tuner."""
    return _numeric('lognormal', (mu, sigma), name, key, default)


def qlognormal(mu: float, sigma: float, q: float, name: Optional[str] = None, key: Optional[str] = None,
               default: Any = _MISSING) -> Any:
    """``round(exp(normal(mu, sigma)) / q) * q`` chosen by the tuner."""
    return _numeric('qlognormal', (mu, sigma, q), name, key, default)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _input_size_range(size: Union[int, Sequence[int]], where: str):
    if not (_is_int(size) or (isinstance(size, (list, tuple)) and len(size) == 2 and all(map(_is_int, size)))):
        raise ValueError(f'nni.mutable_layer: {where}: optional_input_size must be an integer or [min, max], got {size!r}')
    low, high = (size, size) if isinstance(size, int) else size
    if not 0 <= low <= high:
        raise ValueError(f'nni.mutable_layer: {where}: optional_input_size must satisfy 0 <= min <= max, got {size!r}')
    return low, high


def mutable_layer(mutable_id: str, mutable_layer_id: str, funcs: Mapping[str, Callable[..., Any]],
                  funcs_args: Mapping[str, Any], fixed_inputs: Sequence[Any], optional_inputs: Mapping[str, Any],
                  optional_input_size: Union[int, Sequence[int]], mode: str = 'classic_mode', tf: Any = None) -> Any:
    """The output of one layer of a ``@nni.mutable_layers`` block (NNI's classic NAS annotation).

    The tuner's value for ``mutable_id`` is ``{mutable_layer_id: {"chosen_layer": <source text of
    a layer choice>, "chosen_inputs": [<source text of an optional input>, ...]}, ...}``. The
    chosen function is called with the inputs — ``fixed_inputs`` then the chosen optional
    inputs, as one list — as first positional argument, followed by the arguments written in
    its layer-choice call: ``funcs_args[choice]`` is a list (positional) or a dict (keywords).
    So ``layer_choice: [conv(size=3)]`` with ``fixed_inputs: [x]`` runs ``conv([x, ...], size=3)``.

    Without a received value (standalone run), the first layer choice runs on the fixed inputs
    and the first ``optional_input_size`` (the minimum, for a range) optional inputs.

    Args:
        mutable_id: the block's key in the search space (``<module>/mutable_block_<line>``).
        mutable_layer_id: the layer's name in the block (``mutable_layer_<i>``).
        funcs: ``{source text: function}`` of the layer choices.
        funcs_args: ``{source text: arguments}`` of the layer choices.
        fixed_inputs: inputs every choice receives.
        optional_inputs: ``{source text: value}`` of the inputs the tuner picks from.
        optional_input_size: how many optional inputs are picked: an int or ``[min, max]``.
        mode: only ``'classic_mode'`` (v2.5's other modes need TensorFlow NAS trainers).
        tf: accepted for v2.5 compatibility; unused in classic mode.
    """
    where = f'{mutable_id}/{mutable_layer_id}'
    if mode != 'classic_mode':
        raise ValueError(f'nni.mutable_layer: {where}: mode must be \'classic_mode\', got {mode!r}')
    if not funcs:
        raise ValueError(f'nni.mutable_layer: {where}: layer_choice needs at least one function')
    low, high = _input_size_range(optional_input_size, where)
    received = _lookup(None, mutable_id, 'mutable_layer')
    if received is _MISSING:
        chosen_layer = next(iter(funcs))
        chosen_inputs = list(optional_inputs)[:low]
    else:
        layer = received.get(mutable_layer_id) if isinstance(received, dict) else None
        if not isinstance(layer, dict) or 'chosen_layer' not in layer:
            raise ValueError(f'nni.mutable_layer: {where}: received {received!r}, which has no '
                             f'{{"chosen_layer": ..., "chosen_inputs": [...]}} for {mutable_layer_id!r}')
        chosen_layer = layer['chosen_layer']
        chosen_inputs = list(layer.get('chosen_inputs') or [])
        if chosen_layer not in funcs:
            raise ValueError(f'nni.mutable_layer: {where}: chosen_layer {chosen_layer!r} is not one of {list(funcs)!r}')
        unknown = [i for i in chosen_inputs if not isinstance(i, str) or i not in optional_inputs]
        if unknown:
            raise ValueError(f'nni.mutable_layer: {where}: chosen_inputs {unknown!r} are not among the optional '
                             f'inputs {list(optional_inputs)!r}')
        if not low <= len(chosen_inputs) <= high:
            raise ValueError(f'nni.mutable_layer: {where}: {len(chosen_inputs)} chosen_inputs, but '
                             f'optional_input_size is {optional_input_size!r}')
    inputs = list(fixed_inputs) + [optional_inputs[i] for i in chosen_inputs]
    args = funcs_args.get(chosen_layer, [])
    if isinstance(args, Mapping):
        return funcs[chosen_layer](inputs, **args)
    return funcs[chosen_layer](inputs, *args)


def training_update(*args: Any, **kwargs: Any) -> None:
    """``'''@nni.training_update(tf=tf, session=sess)'''``: a no-op.

    In NNI v2.5 this lets a NAS trainer update a shared TensorFlow graph during training
    (its ``enas_mode``/``oneshot_mode``). The classic mode, the only one here, picks the
    architecture once per trial, so there is nothing to update; any arguments are accepted.
    """
    return None
