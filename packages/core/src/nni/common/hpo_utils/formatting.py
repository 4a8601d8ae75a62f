"""Search-space formatting: the one internal model of an NNI search space that tuners share.

A search space in NNI's JSON format (``{"lr": {"_type": "loguniform", "_value": [1e-4, 0.1]}}``)
is turned by :func:`format_search_space` into a flat, ordered ``dict`` of
:class:`ParameterSpec`, one per parameter, nested ``choice`` branches included.

Keys
    Every parameter is identified by a tuple ``key``:

    * top-level parameter ``lr``: ``('lr',)``;
    * parameter ``lr`` inside option ``1`` of the nested choice ``optimizer``:
      ``('optimizer', 1, 'lr')``; deeper nesting keeps alternating
      ``(name, option_index, name, option_index, ..., name)``.

    ``key[:-2]`` is the key of the parent choice and ``key[-2]`` the option index that
    activates the parameter. The order of the returned dict is a valid sampling order: a
    parent choice always comes before the parameters it activates.

Internal ("formatted") values
    Tuners work on internal values, one per key:

    * categorical parameters (``choice`` and ``randint``): the option *index*
      (``0 .. size-1``); for ``randint`` the index ``i`` means the integer ``lower + i``;
    * numerical parameters: the raw number, in natural-log space for the ``log*`` types.

    :func:`deformat_parameters` turns internal values into the dict the trial receives and
    :func:`format_parameters` is its inverse (for ``import_data``).

Nested choices (NNI v2.5 semantics)
    Only a ``choice`` option that is a dict **with** a ``_name`` key is a nested search space.
    Any other option -- a dict without ``_name`` included -- is a plain categorical value that
    the trial receives unchanged.

Degenerate ranges
    A range whose low equals its high (``uniform [2, 2]``, ``loguniform``, ``quniform``, ...)
    and ``randint [n, n]`` always yield that value; :meth:`ParameterSpec.is_constant` tells
    tuners, which must not fit distributions of zero width.
"""
from __future__ import annotations

import copy
import decimal
import math
import numbers
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

__all__ = [
    'ParameterSpec',
    'FormattedSearchSpace',
    'FormattedParameters',
    'ParameterKey',
    'format_search_space',
    'deformat_parameters',
    'format_parameters',
    'is_nested_option',
]

ParameterKey = Tuple[Any, ...]


class ParameterSpec(NamedTuple):
    """One parameter of a formatted search space.

    Attributes:
        name: the parameter's own name (the last element of ``key``).
        type: the search-space ``_type`` (``'choice'``, ``'randint'``, ``'uniform'``, ...).
        values: for ``choice`` the list of options (a nested option is its dict, ``_name``
            included); for every other type the raw ``_value`` list as written by the user.
        key: the tuple path, see the module docstring.
        categorical: ``True`` for ``choice`` and ``randint``.
        size: number of options (``choice``) or of integers in ``[lower, upper)``
            (``randint``); ``None`` for numerical types.
        chosen_size: how many options are chosen at once: ``1`` for categorical types,
            ``None`` for numerical ones.
        low: lower bound; natural log of the bound for ``loguniform``/``qloguniform``;
            the integer ``lower`` for ``randint``; ``None`` for ``choice`` and normal types.
        high: upper bound (log space for log types; the exclusive ``upper`` for ``randint``).
        normal_distributed: ``True`` for ``normal``, ``qnormal``, ``lognormal``, ``qlognormal``.
        mu: mean of the normal distribution (of ``log(value)`` for the lognormal types).
        sigma: standard deviation (of ``log(value)`` for the lognormal types).
        q: quantization step or ``None``.
        log_distributed: ``True`` for ``loguniform``, ``qloguniform``, ``lognormal``,
            ``qlognormal``; internal values of such parameters are ``log(value)``.
    """

    name: str
    type: str
    values: list
    key: ParameterKey
    categorical: bool
    size: Optional[int] = None
    chosen_size: Optional[int] = None
    low: Optional[float] = None
    high: Optional[float] = None
    normal_distributed: bool = False
    mu: Optional[float] = None
    sigma: Optional[float] = None
    q: Optional[float] = None
    log_distributed: bool = False

    def is_constant(self) -> bool:
        """Whether this parameter can take only one value: a numerical range whose low equals
        its high, or a ``randint`` / ``choice`` with one value."""
        if self.categorical:
            return self.size == 1
        return not self.normal_distributed and self.low == self.high

    def is_nested(self) -> bool:
        """Whether this parameter lives inside a nested ``choice`` option."""
        return len(self.key) > 1

    @property
    def parent_key(self) -> Optional[ParameterKey]:
        """Key of the choice whose option activates this parameter (``None`` at top level)."""
        return self.key[:-2] if len(self.key) > 1 else None

    @property
    def parent_index(self) -> Optional[int]:
        """Index of the parent choice's option that activates this parameter."""
        return self.key[-2] if len(self.key) > 1 else None

    def is_activated_in(self, partial_parameters: Mapping[ParameterKey, Any]) -> bool:
        """Whether this parameter is active given internal values of the parameters before it.

        ``partial_parameters`` maps keys to internal values (option indices for choices); it
        must contain the values of this parameter's ancestors when the parameter is nested.
        A parameter whose parent is itself inactive (absent from ``partial_parameters``) is
        inactive.
        """
        if len(self.key) == 1:
            return True
        parent = self.key[:-2]
        return parent in partial_parameters and partial_parameters[parent] == self.key[-2]


FormattedSearchSpace = Dict[ParameterKey, ParameterSpec]
FormattedParameters = Dict[ParameterKey, Any]

_LOG_TYPES = frozenset({'loguniform', 'qloguniform', 'lognormal', 'qlognormal'})
_NORMAL_TYPES = frozenset({'normal', 'qnormal', 'lognormal', 'qlognormal'})
_Q_TYPES = frozenset({'quniform', 'qloguniform', 'qnormal', 'qlognormal'})


def format_search_space(search_space: Mapping[str, Any]) -> FormattedSearchSpace:
    """Flatten a search space into ordered :class:`ParameterSpec` objects.

    The search space should have been checked with
    :func:`nni.common.hpo_utils.validate_search_space` first; this function assumes it is
    valid (it raises ``ValueError`` only where it cannot go on).

    Args:
        search_space: the user search space (``{name: {"_type": ..., "_value": [...]}}``).

    Returns:
        ``{key: ParameterSpec}`` in a valid sampling order (parents before children).

    Example:
        >>> space = format_search_space({'x': {'_type': 'loguniform', '_value': [1, 100]}})
        >>> spec = space[('x',)]
        >>> spec.log_distributed, round(spec.high, 4)
        (True, 4.6052)
    """
    formatted: FormattedSearchSpace = {}
    _format_into(formatted, search_space, ())
    return formatted


def _format_into(out: FormattedSearchSpace, space: Mapping[str, Any], prefix: ParameterKey) -> None:
    for name, spec in space.items():
        if prefix and name == '_name':
            continue
        key = prefix + (name,)
        param = _format_parameter(name, spec, key)
        out[key] = param
        if param.type == 'choice':
            for index, option in enumerate(param.values):
                if is_nested_option(option):
                    _format_into(out, option, key + (index,))


def is_nested_option(option: Any) -> bool:
    """Whether a ``choice`` option is a nested search space (a dict with ``_name``); any other
    option, a dict without ``_name`` included, is a plain value given to the trial as is."""
    return isinstance(option, Mapping) and '_name' in option


def _format_parameter(name: str, spec: Mapping[str, Any], key: ParameterKey) -> ParameterSpec:
    try:
        type_ = spec['_type']
        values = list(spec['_value'])
    except (KeyError, TypeError) as e:
        raise ValueError(f'search space {_path(key)!r}: expected {{"_type": ..., "_value": [...]}}, got {spec!r}') from e

    if type_ == 'choice':
        return ParameterSpec(name=name, type=type_, values=values, key=key, categorical=True,
                             size=len(values), chosen_size=1)
    if type_ == 'randint':
        low, high = int(values[0]), int(values[1])
        high = max(high, low + 1)  # randint [n, n] is the constant n
        return ParameterSpec(name=name, type=type_, values=values, key=key, categorical=True,
                             size=high - low, chosen_size=1, low=low, high=high)

    log = type_ in _LOG_TYPES
    normal = type_ in _NORMAL_TYPES
    q = float(values[2]) if type_ in _Q_TYPES else None
    if normal:
        return ParameterSpec(name=name, type=type_, values=values, key=key, categorical=False,
                             normal_distributed=True, mu=float(values[0]), sigma=float(values[1]),
                             q=q, log_distributed=log)
    if type_ in ('uniform', 'quniform', 'loguniform', 'qloguniform'):
        low, high = float(values[0]), float(values[1])
        if log:
            low, high = math.log(low), math.log(high)
        return ParameterSpec(name=name, type=type_, values=values, key=key, categorical=False,
                             low=low, high=high, normal_distributed=False, q=q, log_distributed=log)
    raise ValueError(f'search space {_path(key)!r}: unknown _type {type_!r}')


def deformat_parameters(formatted_parameters: Mapping[ParameterKey, Any],
                        formatted_search_space: FormattedSearchSpace) -> Dict[str, Any]:
    """Turn a tuner's internal values into the parameter dict a trial receives.

    Only the parameters of active branches are used; values for inactive keys are ignored.

    * ``choice``: the option at the given index; a nested option becomes
      ``{"_name": ..., <its parameters>...}``.
    * ``randint``: the integer ``lower + index`` (clipped into ``[lower, upper)``).
    * numerical: ``exp`` for log types, then for ``q`` types ``round(x / q) * q``, then, for
      the uniform family, clipping into ``[low, high]`` (the user's bounds). Normal types are
      not clipped.

    Args:
        formatted_parameters: ``{key: internal value}``.
        formatted_search_space: output of :func:`format_search_space`.

    Returns:
        The user-facing parameters, e.g. ``{"optimizer": {"_name": "sgd", "lr": 0.1}}``.

    Raises:
        ValueError: an active parameter has no value, or a categorical index is out of range.
    """
    result: Dict[str, Any] = {}
    # containers[parent key + (index,)] is the dict built for that chosen nested option
    containers: Dict[ParameterKey, Dict[str, Any]] = {(): result}
    for key, spec in formatted_search_space.items():
        container = containers.get(key[:-1])
        if container is None:  # parent option not chosen
            continue
        if key not in formatted_parameters:
            raise ValueError(f'parameter {_path(key)!r} is active but has no value')
        x = formatted_parameters[key]
        if spec.type == 'choice':
            index = _check_index(spec, x)
            option = spec.values[index]
            if is_nested_option(option):
                nested = {'_name': option['_name']}
                containers[key + (index,)] = nested
                container[spec.name] = nested
            else:
                # a copy: the trial may mutate a dict/list option; the search space must not change
                container[spec.name] = copy.deepcopy(option)
        elif spec.type == 'randint':
            container[spec.name] = spec.low + _check_index(spec, x)
        else:
            container[spec.name] = _deformat_number(spec, x)
    return result


def _check_index(spec: ParameterSpec, x: Any) -> int:
    index = int(round(float(x)))
    if not 0 <= index < spec.size:
        raise ValueError(f'parameter {_path(spec.key)!r}: index {x!r} out of range [0, {spec.size})')
    return index


def _deformat_number(spec: ParameterSpec, x: Any) -> float:
    x = float(x)
    if spec.log_distributed:
        x = math.exp(x)
    if spec.q is not None:
        x = _quantize(x, spec.q)
    if not spec.normal_distributed:
        low, high = float(spec.values[0]), float(spec.values[1])
        x = min(max(x, low), high)
    return x


def _quantize(x: float, q: float) -> float:
    n = round(x / q)
    # n * q carries binary noise (3 * 0.1 == 0.30000000000000004): round to the number of
    # decimal places q itself is written with (0.1 -> 1, 2.5 -> 1, 16 -> 0, 1e-05 -> 5).
    exponent = decimal.Decimal(repr(float(q))).as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    return float(round(n * q, places))


def format_parameters(parameters: Mapping[str, Any],
                      formatted_search_space: FormattedSearchSpace) -> FormattedParameters:
    """Inverse of :func:`deformat_parameters`: user-facing parameters to internal values.

    Used by tuners to import data (``import_data``). Choices are matched by equality with the
    options (a nested option by its ``_name``); ``randint`` values become ``value - lower``;
    log types become ``log(value)``. Parameters of inactive branches get no key.

    Raises:
        ValueError: a parameter is missing, a choice value is not one of the options, or a
            value is not a number where one is needed. The message names the parameter path.
    """
    result: FormattedParameters = {}
    # values[key[:-1]] is the dict holding the user values at that level
    levels: Dict[ParameterKey, Mapping[str, Any]] = {(): parameters}
    for key, spec in formatted_search_space.items():
        level = levels.get(key[:-1])
        if level is None:
            continue
        if not isinstance(level, Mapping) or spec.name not in level:
            raise ValueError(f'parameter {_path(key)!r} is missing')
        value = level[spec.name]
        if spec.type == 'choice':
            index = _find_option(spec, value)
            result[key] = index
            if is_nested_option(spec.values[index]):
                levels[key + (index,)] = value
        elif spec.type == 'randint':
            if not _is_number(value) or value != int(value) or not spec.low <= value < spec.high:
                raise ValueError(f'parameter {_path(key)!r}: {value!r} is not an integer in [{spec.low}, {spec.high})')
            result[key] = int(value) - spec.low
        else:
            if not _is_number(value):
                raise ValueError(f'parameter {_path(key)!r}: {value!r} is not a number')
            if spec.log_distributed:
                if value <= 0:
                    raise ValueError(f'parameter {_path(key)!r}: {value!r} must be positive for {spec.type}')
                result[key] = math.log(value)
            else:
                result[key] = float(value)
    return result


def _find_option(spec: ParameterSpec, value: Any) -> int:
    if isinstance(value, Mapping) and '_name' in value:
        for i, option in enumerate(spec.values):
            if is_nested_option(option) and option['_name'] == value['_name']:
                return i
    for i, option in enumerate(spec.values):
        if not is_nested_option(option) and _same(option, value):
            return i
    raise ValueError(f'parameter {_path(spec.key)!r}: {value!r} is not one of the choices {_options_text(spec.values)}')


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return (isinstance(a, Mapping) and isinstance(b, Mapping) and a.keys() == b.keys()
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    # bool is an int subclass: True must not match 1
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return type(a) is type(b) and a == b or (_is_number(a) and _is_number(b) and a == b)


def _options_text(options: list) -> str:
    return '[' + ', '.join(repr(o['_name']) if is_nested_option(o) else repr(o) for o in options) + ']'


def _is_number(x: Any) -> bool:
    # numbers.Real also covers numpy scalars (np.int64 is not an int subclass)
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, _numpy_bool_types()))


def _numpy_bool_types() -> tuple:
    import sys

    np = sys.modules.get('numpy')
    return (np.bool_,) if np is not None else ()


def _path(key: ParameterKey) -> str:
    """The one notation used in every message: ``optimizer[1].lr`` for key ``('optimizer', 1, 'lr')``."""
    text = str(key[0]) if key else ''
    rest = key[1:]
    for i in range(0, len(rest) - 1, 2):
        text += f'[{rest[i]}].{rest[i + 1]}'
    if len(rest) % 2:
        text += f'[{rest[-1]}]'
    return text


key_to_path = _path
