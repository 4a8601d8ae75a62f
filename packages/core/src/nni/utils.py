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


def extract_scalar_reward(value: Any, scalar_key: str = "default") -> float:
    """The scalar of a reported metric.

    Args:
        value: a number (int, float, numpy scalar) or a dict whose ``scalar_key`` is a number.
        scalar_key: the dict key that holds the scalar.

    Returns:
        ``float(value)`` -- NaN and infinities are passed through unchanged; callers that rank
        results should treat them as the worst value.

    Raises:
        TypeError: ``value`` is neither a number nor a dict; a one-line message.
        ValueError: a dict without a numeric ``scalar_key``.
    """
    if is_number(value):
        return float(value)
    if isinstance(value, dict):
        if scalar_key not in value:
            raise ValueError(
                f"metric dict has no {scalar_key!r} key (keys: {', '.join(map(str, value)) or 'none'}); "
                f"report a number or a dict with a numeric {scalar_key!r} key"
            )
        inner = value[scalar_key]
        if not is_number(inner):
            raise ValueError(f"metric[{scalar_key!r}] must be a number, got {type(inner).__name__} {inner!r}")
        return float(inner)
    raise TypeError(
        f"metric must be a number or a dict with a numeric {scalar_key!r} key, got {type(value).__name__} {value!r}"
    )


def extract_scalar_history(trial_history: Iterable[Any], scalar_key: str = "default") -> list[float]:
    """:func:`extract_scalar_reward` applied to every intermediate result of a trial."""
    return [extract_scalar_reward(v, scalar_key) for v in trial_history]


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

