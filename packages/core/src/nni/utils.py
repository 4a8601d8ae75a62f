"""Helpers shared by trials, tuners and assessors.

* :class:`OptimizeMode` -- ``'minimize'`` / ``'maximize'``.
* :func:`extract_scalar_reward` / :func:`extract_scalar_history` -- turn what a trial reported
  (a number, or a dict with a numeric ``'default'`` key) into a float.
* :func:`merge_parameter` -- override argparse results with ``nni.get_next_parameter()``.
* :class:`ClassArgsValidator` -- base class of classArgs validators (``choices`` / ``range``
  helpers work with the ``schema`` library as in the docs, or on their own through
  :meth:`ClassArgsValidator.check`), and :func:`check_class_args`, which runs one and turns any
  failure into a one-line ``ValueError`` naming the field.
* :class:`NoMoreTrialError` -- raised by a tuner whose search space is exhausted.
* v2.5 helpers for tuners written against NNI v2.5: :class:`NodeType`, :func:`json2space` /
  :func:`json2parameter` (nested-aware search-space walkers, as the v2.5 evolution tuner used
  them), :func:`split_index` and :func:`convert_dict2tuple`.
"""
from __future__ import annotations

import numbers
from enum import Enum
from typing import Any, Callable, Iterable

__all__ = [
    "OptimizeMode",
    "MetricType",
    "NoMoreTrialError",
    "ClassArgsError",
    "ClassArgsValidator",
    "check_class_args",
    "extract_scalar_reward",
    "extract_scalar_history",
    "is_number",
    "split_index",
    "merge_parameter",
    "MetricValueError",
    "NodeType",
    "json2space",
    "json2parameter",
    "convert_dict2tuple",
]


class NoMoreTrialError(Exception):
    """Raised by :meth:`nni.tuner.Tuner.generate_parameters` when no configuration is left."""

    def __init__(self, msg: str = "Search space fully explored"):
        super().__init__(msg)


class MetricType:
    """Values of the ``type`` field of a metric record (see :mod:`nni.runtime.trial_metrics`)."""

    PERIODICAL = "PERIODICAL"
    FINAL = "FINAL"
    CUSTOM = "CUSTOM"
    REQUEST_PARAMETER = "REQUEST_PARAMETER"


class OptimizeMode(Enum):
    """Direction of optimization; values are the classArgs spellings."""

    Minimize = "minimize"
    Maximize = "maximize"


def is_number(value: Any) -> bool:
    """True for int/float and numpy number scalars; False for bool (a bool metric is a bug)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not _is_numpy_bool(value)


def _is_numpy_bool(value: Any) -> bool:
    return type(value).__name__ == "bool_" and type(value).__module__ == "numpy"


class MetricValueError(ValueError, TypeError):
    """A reported metric has no scalar a built-in algorithm can use.

    A ``ValueError`` (and, for code written against older versions, a ``TypeError``).
    """


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def extract_scalar_reward(value: Any, scalar_key: str = "default") -> float:
    """The scalar of a reported metric.

    Trials may report any JSON-serializable metric; built-in tuners and assessors need a number
    or a dict with a numeric ``scalar_key`` and call this to get it.

    Args:
        value: a number (int, float, numpy scalar) or a dict whose ``scalar_key`` is a number.
        scalar_key: the dict key that holds the scalar.

    Returns:
        ``float(value)`` -- NaN and infinities are passed through unchanged; callers that rank
        results should treat them as the worst value.

    Raises:
        MetricValueError: (a ``ValueError``) one line naming the metric value and saying that a
            number or a dict with a numeric ``scalar_key`` is needed.
    """
    if is_number(value):
        return float(value)
    if isinstance(value, dict) and scalar_key in value and is_number(value[scalar_key]):
        return float(value[scalar_key])
    if isinstance(value, dict) and scalar_key in value:
        why = f"its {scalar_key!r} is a {type(value[scalar_key]).__name__}"
    elif isinstance(value, dict):
        why = f"it is a dict without a {scalar_key!r} key"
    else:
        why = f"it is a {type(value).__name__}"
    raise MetricValueError(
        f"metric {_short(value)} has no scalar ({why}); built-in tuners and assessors need a number "
        f"or a dict with a numeric {scalar_key!r} key"
    )


def extract_scalar_history(trial_history: Iterable[Any], scalar_key: str = "default") -> list[float]:
    """:func:`extract_scalar_reward` applied to every intermediate result of a trial."""
    return [extract_scalar_reward(v, scalar_key) for v in trial_history]


def convert_dict2tuple(value: Any) -> Any:
    """Make a (nested) dict hashable: every dict becomes the tuple of its sorted items.

    As in NNI v2.5, the dicts inside ``value`` are replaced in place by their tuples (the
    original data changes); other values are returned as they are.

    Example:
        >>> convert_dict2tuple({'b': 1, 'a': {'y': 2, 'x': 3}})
        (('a', (('x', 3), ('y', 2))), ('b', 1))
    """
    if isinstance(value, dict):
        for key in value:
            value[key] = convert_dict2tuple(value[key])
        return tuple(sorted(value.items()))
    return value


class NodeType:
    """Special keys of a search space and the root name of :func:`json2space` paths (v2.5)."""

    ROOT = "root"
    TYPE = "_type"
    VALUE = "_value"
    INDEX = "_index"
    NAME = "_name"


def _is_nested_option(option: Any) -> bool:
    # v2.5 semantics: only a dict with "_name" is a nested space; other dicts are plain values
    return isinstance(option, dict) and NodeType.NAME in option


def json2space(x: Any, oldy: Any = None, name: str = NodeType.ROOT) -> list[str]:
    """The names of the parameters of a search space (nested ones included), as used by
    :func:`json2parameter`'s ``is_rand``.

    Args:
        x: the search space (or a part of it).
        oldy: a configuration produced by :func:`json2parameter` (choices as
            ``{'_index': i, '_value': v}``); when given, only the parameters active in it are
            listed (the chosen branch of each nested choice).
        name: the name of ``x``'s node; the root by default.

    Returns:
        Names like ``'root[lr]-uniform'``, ``'root[optimizer]-choice'``,
        ``'root[optimizer]-choice[1][lr]-loguniform'`` -- a choice comes after the parameters
        of its branches.
    """
    names: list[str] = []
    if isinstance(x, dict):
        if NodeType.TYPE in x:
            node = f"{name}-{x[NodeType.TYPE]}"
            if x[NodeType.TYPE] == "choice":
                options = x[NodeType.VALUE]
                if oldy is not None:
                    index = oldy[NodeType.INDEX]
                    if _is_nested_option(options[index]):
                        names += json2space(options[index], oldy[NodeType.VALUE], f"{node}[{index}]")
                else:
                    for i, option in enumerate(options):
                        if _is_nested_option(option):
                            names += json2space(option, None, f"{node}[{i}]")
            names.append(node)
        else:
            for key, sub in x.items():
                if key == NodeType.NAME:
                    continue
                names += json2space(sub, oldy[key] if oldy is not None else None, f"{name}[{key}]")
    return names


def _sample(type_: str, args: list, random_state: Any) -> Any:
    """One value of a numerical ``_type`` drawn with ``random_state`` (numpy ``RandomState`` or
    ``Generator``, or :class:`random.Random`), following NNI's search-space spec."""
    import math

    def uniform(low: float, high: float) -> float:
        return float(random_state.uniform(low, high))

    def normal(mu: float, sigma: float) -> float:
        draw = getattr(random_state, "normal", None) or random_state.gauss
        return float(draw(mu, sigma))

    def quantize(v: float, q: float) -> float:
        return float(round(v / q) * q)

    if type_ == "randint":
        low, high = int(args[0]), max(int(args[1]), int(args[0]) + 1)
        if hasattr(random_state, "integers"):
            return int(random_state.integers(low, high))
        if hasattr(random_state, "randint") and type(random_state).__module__.startswith("numpy"):
            return int(random_state.randint(low, high))
        return int(random_state.randrange(low, high))
    if type_ == "uniform":
        return uniform(args[0], args[1])
    if type_ == "quniform":
        return min(max(quantize(uniform(args[0], args[1]), args[2]), float(args[0])), float(args[1]))
    if type_ == "loguniform":
        return min(max(math.exp(uniform(math.log(args[0]), math.log(args[1]))), float(args[0])), float(args[1]))
    if type_ == "qloguniform":
        v = math.exp(uniform(math.log(args[0]), math.log(args[1])))
        return min(max(quantize(v, args[2]), float(args[0])), float(args[1]))
    if type_ == "normal":
        return normal(args[0], args[1])
    if type_ == "qnormal":
        return quantize(normal(args[0], args[1]), args[2])
    if type_ == "lognormal":
        return math.exp(normal(args[0], args[1]))
    if type_ == "qlognormal":
        return quantize(math.exp(normal(args[0], args[1])), args[2])
    raise ValueError(f"search space: unknown _type {type_!r}")


def _choose_index(size: int, random_state: Any) -> int:
    if hasattr(random_state, "integers"):
        return int(random_state.integers(size))
    if hasattr(random_state, "randint") and type(random_state).__module__.startswith("numpy"):
        return int(random_state.randint(size))
    return int(random_state.randrange(size))


def json2parameter(
    x: Any,
    is_rand: dict,
    random_state: Any,
    oldy: Any = None,
    Rand: bool = False,  # noqa: N803 (v2.5's name)
    name: str = NodeType.ROOT,
) -> Any:
    """Sample a configuration of a search space, or re-sample part of ``oldy`` (mutation).

    Args:
        x: the search space.
        is_rand: ``{name: bool}`` over the names of :func:`json2space`: which parameters get a
            new random value; the others keep their value from ``oldy``.
        random_state: ``numpy.random.RandomState`` (as in v2.5), a numpy ``Generator`` or a
            :class:`random.Random`.
        oldy: the configuration to start from (``None``: every parameter must be random).
        Rand: re-sample everything below this node (set for the branch of a re-sampled choice).
        name: the name of ``x``'s node.

    Returns:
        The configuration with each choice as ``{'_index': i, '_value': option}`` (a nested
        option's parameters sampled inside it); :func:`split_index` turns it into the
        parameters a trial receives.
    """
    import copy

    if isinstance(x, dict):
        if NodeType.TYPE in x:
            type_, args = x[NodeType.TYPE], x[NodeType.VALUE]
            node = f"{name}-{type_}"
            rand = Rand or bool(is_rand.get(node, False))
            if type_ == "choice":
                if rand:
                    index = _choose_index(len(args), random_state)
                    sub_old = None
                else:
                    if oldy is None:
                        raise ValueError(f"json2parameter: {node} is not random and has no old value")
                    index = oldy[NodeType.INDEX]
                    sub_old = oldy[NodeType.VALUE]
                option = args[index]
                if _is_nested_option(option):
                    value = json2parameter(option, is_rand, random_state, sub_old, rand, f"{node}[{index}]")
                else:
                    value = copy.deepcopy(option)
                return {NodeType.INDEX: index, NodeType.VALUE: value}
            if rand:
                return _sample(type_, list(args), random_state)
            if oldy is None:
                raise ValueError(f"json2parameter: {node} is not random and has no old value")
            return copy.deepcopy(oldy)
        out = {}
        for key, sub in x.items():
            if key == NodeType.NAME:
                out[key] = sub
                continue
            out[key] = json2parameter(sub, is_rand, random_state, oldy[key] if oldy is not None else None,
                                      Rand, f"{name}[{key}]")
        return out
    return copy.deepcopy(x)


def split_index(params: Any) -> Any:
    """Strip the ``_index`` wrappers of nested-choice parameters.

    Some tuners produce ``{"_index": i, "_value": v}`` for a chosen option; the trial receives
    only ``v``. Applied recursively to dicts and lists.
    """
    if isinstance(params, dict):
        if "_index" in params and "_value" in params and len(params) == 2:
            return split_index(params["_value"])
        return {k: split_index(v) for k, v in params.items()}
    if isinstance(params, list):
        return [split_index(v) for v in params]
    return params


def merge_parameter(base_params: Any, override_params: dict | None) -> Any:
    """Update ``base_params`` in place with ``override_params`` and return it.

    ``base_params`` is an ``argparse.Namespace`` (or any object with attributes) or a dict;
    ``override_params`` usually comes from ``nni.get_next_parameter()``. ``None`` (or ``{}``)
    changes nothing. A value whose type differs from the existing non-None value is converted
    to that type when that is lossless (e.g. ``int`` 3 into a float option gives 3.0); keys not
    present in ``base_params`` raise ``ValueError`` -- they are almost always typos in the
    search space.

    Example:
        >>> import argparse
        >>> ns = argparse.Namespace(lr=0.1, batch_size=32)
        >>> merge_parameter(ns, {"lr": 0.01}) is ns, ns.lr
        (True, 0.01)
    """
    if override_params is None:
        return base_params
    if not isinstance(override_params, dict):
        raise TypeError(f"override_params must be a dict or None, got {type(override_params).__name__}")
    is_dict = isinstance(base_params, dict)
    for key, value in override_params.items():
        if is_dict:
            if key not in base_params:
                raise ValueError(f"merge_parameter: key {key!r} is not in base_params (known: {', '.join(map(str, base_params))})")
            current = base_params[key]
        else:
            if not hasattr(base_params, key):
                known = ", ".join(sorted(vars(base_params))) if hasattr(base_params, "__dict__") else "?"
                raise ValueError(f"merge_parameter: key {key!r} is not an attribute of base_params (known: {known})")
            current = getattr(base_params, key)
        value = _convert_like(current, value)
        if is_dict:
            base_params[key] = value
        else:
            setattr(base_params, key, value)
    return base_params


def _convert_like(current: Any, value: Any) -> Any:
    if current is None or value is None or type(current) is type(value):
        return value
    if isinstance(current, float) and is_number(value):
        return float(value)
    if isinstance(current, int) and not isinstance(current, bool) and is_number(value) and float(value).is_integer():
        return int(value)
    if isinstance(current, str) and is_number(value):
        return value  # e.g. argparse default '0.1' overridden by a number: keep the number
    return value


# ---------------------------------------------------------------------------------------------
# classArgs validation


class ClassArgsError(ValueError):
    """A classArgs value is wrong; ``str(err)`` is one line naming the key."""


def _raise_check_error(msg: str) -> None:
    # Inside ``schema.Schema(...)`` a SchemaError keeps the message as is (other exceptions are
    # wrapped in "xxx raised ..."), so speak schema's language when it is installed.
    try:
        from schema import SchemaError
    except ImportError:  # pragma: no cover - schema is a dependency of nni-core
        raise ClassArgsError(msg) from None
    raise SchemaError([None], [msg])


class _Check:
    """A value check usable as a ``schema`` validator or on its own (``check(value)``)."""

    def __init__(self, key: str, predicate: Callable[[Any], bool], expected: str):
        self.key = key
        self.predicate = predicate
        self.expected = expected

    def message(self, value: Any) -> str:
        return f"classArgs.{self.key} must be {self.expected}, got {value!r}"

    def validate(self, value: Any, **_kwargs: Any) -> Any:
        if not self.predicate(value):
            _raise_check_error(self.message(value))
        return value

    def __call__(self, value: Any) -> bool:
        return bool(self.predicate(value))

    def __repr__(self) -> str:
        return f"<check classArgs.{self.key}: {self.expected}>"


class ClassArgsValidator:
    """Base class of classArgs validators.

    Subclasses override :meth:`validate_class_args`; the classArgs mapping of the experiment
    config is passed as keyword arguments. It runs before the experiment starts; raising any
    exception rejects the config (:func:`check_class_args` turns it into one line).

    Example (the docs' validator; ``schema`` is a dependency of nni-core)::

        from schema import Schema, Optional
        from nni import ClassArgsValidator

        class MedianstopClassArgsValidator(ClassArgsValidator):
            def validate_class_args(self, **kwargs):
                Schema({
                    Optional('optimize_mode'): self.choices('optimize_mode', 'maximize', 'minimize'),
                    Optional('start_step'): self.range('start_step', int, 0, 9999),
                }).validate(kwargs)

    Without ``schema``: ``self.check(kwargs, optional={'start_step': self.range(...)})``.
    """

    def validate_class_args(self, **kwargs: Any) -> None:
        """Check the classArgs; the base class accepts anything."""

    # -- helpers -----------------------------------------------------------------------------
    def choices(self, key: str, *options: Any) -> _Check:
        """The value of ``key`` must be one of ``options``."""
        allowed = ", ".join(repr(o) for o in options)
        return _Check(key, lambda v: _in(v, options), f"one of {allowed}")

    def range(self, key: str, keyType: type, start: Any, end: Any) -> _Check:  # noqa: N803 (docs' name)
        """The value of ``key`` must be a ``keyType`` with ``start <= value <= end``
        (``None`` for an open end). ``float`` accepts ints; ``int`` refuses bools."""
        lo = "-inf" if start is None else start
        hi = "inf" if end is None else end

        def pred(v: Any) -> bool:
            if keyType is float:
                ok = is_number(v)
            elif keyType is int:
                ok = isinstance(v, numbers.Integral) and not isinstance(v, bool)
            else:
                ok = isinstance(v, keyType)
            if not ok:
                return False
            try:
                return (start is None or v >= start) and (end is None or v <= end)
            except TypeError:
                return False

        return _Check(key, pred, f"{'a' if keyType.__name__[0] not in 'aeiou' else 'an'} {keyType.__name__} in [{lo}, {hi}]")

    def path(self, key: str) -> _Check:
        """The value of ``key`` must be an existing file or folder path."""
        import os

        return _Check(key, lambda v: isinstance(v, (str, os.PathLike)) and os.path.exists(v), "an existing path")

    def check(
        self,
        kwargs: dict,
        required: dict[str, Any] | None = None,
        optional: dict[str, Any] | None = None,
        allow_unknown: bool = False,
    ) -> None:
        """Check ``kwargs`` without ``schema``: every ``required`` key present, no unknown key
        (unless ``allow_unknown``), each value passing its check (a helper result, a type, or a
        predicate). Raises :class:`ClassArgsError`."""
        required = dict(required or {})
        optional = dict(optional or {})
        for key in required:
            if key not in kwargs:
                raise ClassArgsError(f"classArgs.{key} is required")
        known = {**optional, **required}
        for key, value in kwargs.items():
            if key not in known:
                if allow_unknown:
                    continue
                allowed = ", ".join(sorted(known)) or "none"
                raise ClassArgsError(f"classArgs.{key} is not a known argument; allowed: {allowed}")
            spec = known[key]
            if isinstance(spec, _Check):
                if not spec(value):
                    raise ClassArgsError(spec.message(value))
            elif isinstance(spec, type):
                if not isinstance(value, spec) or (isinstance(value, bool) and spec is not bool):
                    raise ClassArgsError(f"classArgs.{key} must be of type {spec.__name__}, got {value!r}")
            elif callable(spec) and not spec(value):
                raise ClassArgsError(f"classArgs.{key} has an invalid value {value!r}")


def _in(value: Any, options: tuple) -> bool:
    try:
        return value in options
    except TypeError:
        return False


def check_class_args(validator: Any, class_args: dict | None, field: str = "classArgs") -> None:
    """Run a classArgs validator and raise a one-line ``ValueError`` on failure.

    Args:
        validator: a :class:`ClassArgsValidator` subclass or instance (``None``: nothing to check).
        class_args: the classArgs mapping.
        field: the config path of the mapping, e.g. ``'tuner.classArgs'``; messages are
            ``"tuner.classArgs.start_step must be an int in [0, 9999], got -1"``.
    """
    if validator is None:
        return
    if isinstance(validator, type):
        validator = validator()
    args = dict(class_args or {})
    try:
        validator.validate_class_args(**args)
    except Exception as err:  # noqa: BLE001 - any failure of a user validator rejects the config
        msg = _one_line(err)
        if msg.startswith("classArgs."):
            msg = field + msg[len("classArgs"):]
        elif not msg.startswith(field):
            msg = f"{field}: {msg}"
        raise ClassArgsError(msg) from None


def _one_line(err: BaseException) -> str:
    lines: list[str] = []
    errors = getattr(err, "errors", None)
    autos = getattr(err, "autos", None)
    if isinstance(errors, list) and isinstance(autos, list):  # schema.SchemaError
        lines = [e for e in errors if e] or [a for a in autos if a]
        specific = [line for line in lines if str(line).startswith("classArgs.")]
        if specific:
            return str(specific[-1]).splitlines()[0]
        if lines:
            text = " ".join(str(x).strip() for x in lines[-2:])
            return " ".join(text.split())
    text = str(err) or type(err).__name__
    return " ".join(text.split())

