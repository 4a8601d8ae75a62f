"""Search-space validation with one-line errors that name the parameter path and the rule.

Message format (one line)::

    search space 'optimizer[1].lr': loguniform low must be > 0, got 0

The path notation is the one of :func:`nni.common.hpo_utils.key_to_path`: a top-level
parameter is its name, a parameter inside option ``i`` of a nested choice ``c`` is
``c[i].name``; an option itself is ``c[i]``.
"""
from __future__ import annotations

import json
import logging
import math
from typing import Any, Iterable, List, Mapping, Optional

from .formatting import ParameterKey, key_to_path

__all__ = ['ALL_TYPES', 'validate_search_space', 'check_search_space']

_logger = logging.getLogger(__name__)

ALL_TYPES = (
    'choice', 'randint', 'uniform', 'quniform', 'loguniform', 'qloguniform',
    'normal', 'qnormal', 'lognormal', 'qlognormal',
)

_ARITY = {
    'randint': ('lower', 'upper'),
    'uniform': ('low', 'high'),
    'quniform': ('low', 'high', 'q'),
    'loguniform': ('low', 'high'),
    'qloguniform': ('low', 'high', 'q'),
    'normal': ('mu', 'sigma'),
    'qnormal': ('mu', 'sigma', 'q'),
    'lognormal': ('mu', 'sigma'),
    'qlognormal': ('mu', 'sigma', 'q'),
}


def validate_search_space(search_space: Any,
                          support_types: Optional[Iterable[str]] = None,
                          raise_exception: bool = False,
                          algorithm_name: Optional[str] = None,
                          allow_nested: bool = True) -> bool:
    """Check a search space against NNI's search-space specification.

    Args:
        search_space: the parsed search space (a dict).
        support_types: the ``_type`` values the caller accepts (default: all ten types).
        raise_exception: raise ``ValueError`` instead of logging the error and returning ``False``.
        algorithm_name: named in the message when a type is not supported
            (e.g. ``"type 'normal' is not supported by GridSearch"``).
        allow_nested: whether ``choice`` options may be nested search spaces (dicts with ``_name``).

    Returns:
        ``True`` when valid; ``False`` (after logging the error) when not and
        ``raise_exception`` is false.

    Raises:
        ValueError: the first violation, as one line naming the parameter path and the rule.
    """
    try:
        check_search_space(search_space, support_types, algorithm_name, allow_nested)
    except ValueError as e:
        if raise_exception:
            raise
        _logger.error('%s', e)
        return False
    return True


def check_search_space(search_space: Any,
                       support_types: Optional[Iterable[str]] = None,
                       algorithm_name: Optional[str] = None,
                       allow_nested: bool = True) -> None:
    """Like :func:`validate_search_space` with ``raise_exception=True``, returning ``None``."""
    supported = list(support_types) if support_types is not None else list(ALL_TYPES)
    if not isinstance(search_space, Mapping):
        raise ValueError('search space: must be a JSON object mapping parameter names to '
                         f'{{"_type": ..., "_value": [...]}}, got {_type_name(search_space)}')
    _Checker(supported, algorithm_name, allow_nested).space(search_space, ())


class _Checker:
    def __init__(self, supported: List[str], algorithm_name: Optional[str], allow_nested: bool):
        self.supported = supported
        self.algorithm_name = algorithm_name
        self.allow_nested = allow_nested

    def fail(self, key: ParameterKey, rule: str) -> None:
        raise ValueError(f'search space {key_to_path(key)!r}: {rule}')

    def space(self, space: Mapping[str, Any], prefix: ParameterKey) -> None:
        for name, spec in space.items():
            if prefix and name == '_name':
                continue
            key = prefix + (name,)
            if not isinstance(name, str):
                self.fail(key, f'parameter name must be a string, got {_type_name(name)}')
            if name == '':
                self.fail(key, 'parameter name must not be empty')
            self.parameter(spec, key)

    def parameter(self, spec: Any, key: ParameterKey) -> None:
        if not isinstance(spec, Mapping):
            self.fail(key, f'must be a dict {{"_type": ..., "_value": [...]}}, got {_type_name(spec)}')
        if '_type' not in spec:
            self.fail(key, f'missing "_type"; allowed types: {", ".join(ALL_TYPES)}')
        type_ = spec['_type']
        if type_ not in ALL_TYPES:
            self.fail(key, f'unknown _type {type_!r}; allowed types: {", ".join(ALL_TYPES)}')
        if type_ not in self.supported:
            by = f' by {self.algorithm_name}' if self.algorithm_name else ''
            self.fail(key, f'type {type_!r} is not supported{by}; supported types: {", ".join(self.supported)}')
        if '_value' not in spec:
            self.fail(key, f'missing "_value" for type {type_!r}')
        value = spec['_value']
        if not isinstance(value, (list, tuple)):
            self.fail(key, f'"_value" of {type_} must be a list, got {_type_name(value)}')
        if type_ == 'choice':
            self.choice(list(value), key)
        else:
            self.numerical(type_, list(value), key)

    def choice(self, options: list, key: ParameterKey) -> None:
        if not options:
            self.fail(key, 'choice "_value" must be a non-empty list of options')
        names = {}
        for index, option in enumerate(options):
            option_key = key + (index,)
            # v2.5: only a dict with "_name" is a nested space; other dicts are plain options
            if isinstance(option, Mapping) and '_name' in option:
                if not self.allow_nested:
                    by = f' by {self.algorithm_name}' if self.algorithm_name else ''
                    self.fail(option_key, f'nested choice (an option that is a dict with "_name") is not supported{by}')
                name = option['_name']
                if not isinstance(name, (str, int, float)) or isinstance(name, bool):
                    self.fail(option_key, f'"_name" must be a string or number, got {_type_name(name)}')
                if name in names:
                    self.fail(option_key, f'duplicate _name {name!r} (also option {names[name]})')
                names[name] = index
                self.space(option, option_key)
            else:
                problem = _json_problem(option)
                if problem:
                    self.fail(option_key, f'choice option is not JSON serializable: {problem}')

    def numerical(self, type_: str, value: list, key: ParameterKey) -> None:
        labels = _ARITY[type_]
        if len(value) != len(labels):
            self.fail(key, f'{type_} "_value" must be [{", ".join(labels)}] ({len(labels)} numbers), '
                           f'got {len(value)} element{"s" if len(value) != 1 else ""}')
        for label, x in zip(labels, value):
            if not isinstance(x, (int, float)) or isinstance(x, bool):
                self.fail(key, f'{type_} {label} must be a number, got {x!r}')
            if not math.isfinite(x):
                self.fail(key, f'{type_} {label} must be finite, got {x!r}')
        args = dict(zip(labels, value))
        if type_ == 'randint':
            for label in labels:
                if not isinstance(args[label], int):
                    self.fail(key, f'randint {label} must be an integer, got {args[label]!r}')
            if args['lower'] > args['upper']:
                self.fail(key, f'randint lower must be <= upper, got [{_num(args["lower"])}, {_num(args["upper"])}]')
            return
        if 'low' in args:
            if args['low'] > args['high']:
                self.fail(key, f'{type_} low must be <= high, got low={_num(args["low"])} high={_num(args["high"])}')
            if type_ in ('loguniform', 'qloguniform') and args['low'] <= 0:
                self.fail(key, f'{type_} low must be > 0 (log scale), got {_num(args["low"])}')
        if 'sigma' in args and args['sigma'] <= 0:
            self.fail(key, f'{type_} sigma must be > 0, got {_num(args["sigma"])}')
        if 'q' in args and args['q'] <= 0:
            self.fail(key, f'{type_} q must be > 0, got {_num(args["q"])}')


def _num(x: Any) -> str:
    return repr(x)


def _type_name(x: Any) -> str:
    if x is None:
        return 'null'
    return {dict: 'dict', list: 'list', str: 'string', bool: 'bool', int: 'int', float: 'float'}.get(
        type(x), type(x).__name__)


def _json_problem(value: Any) -> Optional[str]:
    """Why ``value`` is not strict JSON, or ``None`` when it is."""
    if value is None or isinstance(value, (str, int)):  # fast path: a 50 MB choice list is mostly these
        return None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        if isinstance(e, ValueError):
            return f'{value!r} (NaN and infinity are not JSON)'
        return f'{value!r} ({type(value).__name__})'
    return None
