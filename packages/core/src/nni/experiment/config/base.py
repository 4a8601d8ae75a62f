"""The machinery shared by every config class: field specs, key matching, value checks.

A config class lists its fields in ``_fields`` (snake_case name -> :class:`Field`). One
object holds the values as the user gave them (Python attributes may be assigned anything);
:meth:`ConfigBase._canonical` checks them and returns the canonical JSON dict (camelCase keys,
defaults filled, paths absolute, durations in seconds, sizes in MB). Every failure is a
:class:`ConfigError` whose message is one line: ``<field path>: <what is wrong; what is allowed>``.
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
from dataclasses import dataclass, field as _dc_field
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["ConfigError", "ConfigBase", "Field", "parse_duration", "parse_size", "parse_gpu_indices"]


class ConfigError(ValueError):
    """A user error in an experiment config; ``str(err)`` is one line naming the field path.

    Attributes:
        field: the path of the field in YAML camelCase (``trainingService.gpuIndices[1]``),
            empty for errors about the whole file.
        detail: what was wrong and what is allowed.
    """

    def __init__(self, field: str, detail: str):
        self.field = field
        self.detail = " ".join(str(detail).split())
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


# -- names ------------------------------------------------------------------------------------


def to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def norm_key(key: str) -> str:
    """Keys match ignoring case and underscores: ``trial_command`` == ``trialCommand``."""
    return str(key).replace("_", "").replace("-", "").lower()


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if not close:
        folded = {norm_key(o): o for o in options}
        close = difflib.get_close_matches(norm_key(word), list(folded), n=1, cutoff=0.6)
        close = [folded[c] for c in close]
    return f"; did you mean {close[0]!r}?" if close else f"; allowed fields: {', '.join(options)}"


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


# -- value parsers ----------------------------------------------------------------------------

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Limits of budget fields (issue 11): beyond them a value is a typo or an attack, and
# would overflow SQLite (8-byte integers), JavaScript numbers in the web UI or timers.
# Defined once beside the REST schema (standard-library only), which publishes them too.
# 100 years of duration is "no limit" in practice, still a finite timer.
from nni.runtime.rest_api import MAX_DURATION_SECONDS, MAX_TRIAL_CONCURRENCY, MAX_TRIAL_NUMBER  # noqa: E402
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1.0, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2, "p": 1024.0**3}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgtp])(ib?|b)?|(b))?\s*$", re.IGNORECASE)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _tidy(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def parse_duration(value: Any) -> int | float:
    """``'30s'``, ``'10m'``, ``'0.5h'``, ``'1d'`` or a number of seconds -> seconds (> 0).

    Raises ``ValueError`` (without a field name) on a bad value.
    """
    if _is_number(value):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION_RE.match(value):
        number, unit = _DURATION_RE.match(value).groups()  # type: ignore[union-attr]
        seconds = float(number) * _DURATION_UNITS[(unit or "s").lower()]
    else:
        raise ValueError(
            f"expected a duration like '30s', '10m', '0.5h', '1d' or a number of seconds, got {short_repr(value)}"
        )
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {short_repr(value)}")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"expected at most {MAX_DURATION_SECONDS // 86400}d (100 years), got {short_repr(value)}")
    return _tidy(seconds)


def parse_size(value: Any) -> int:
    """``'10g'``, ``'8gb'``, ``'512mb'``, ``'8Gi'`` or a number of MB -> MB (int, rounded up, > 0)."""
    if _is_number(value):
        mb = float(value)
    elif isinstance(value, str) and _SIZE_RE.match(value):
        number, unit, _suffix, byte = _SIZE_RE.match(value).groups()  # type: ignore[union-attr]
        factor = 1 / (1024 * 1024) if byte else _SIZE_UNITS[(unit or "").lower()]
        mb = float(number) * factor
    else:
        raise ValueError(f"expected a size like '512mb', '8gb', '1tb' or a number of MB, got {short_repr(value)}")
    if mb <= 0:
        raise ValueError(f"expected a positive size, got {short_repr(value)}")
    return int(math.ceil(mb - 1e-9))


class _IndexError(ValueError):
    def __init__(self, index: int | None, msg: str):
        self.index = index
        super().__init__(msg)


def parse_gpu_indices(value: Any) -> list[int] | None:
    """``0``, ``'0,1,3'`` or ``[0, 1, 3]`` -> ``[0, 1, 3]``; ``None`` stays ``None``."""
    allowed = "a non-negative integer, a comma-separated string like '0,1,3' or a list of integers"
    if value is None:
        return None
    if isinstance(value, bool):
        raise _IndexError(None, f"expected {allowed}, got {short_repr(value)}")
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if value.strip() == "":
            return []
        items = []
        for i, p in enumerate(parts):
            if not p.isdigit():
                raise _IndexError(i, f"expected a non-negative integer GPU index, got {short_repr(p)} in {short_repr(value)}")
            items.append(int(p))
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _IndexError(None, f"expected {allowed}, got {type_name(value)} {short_repr(value)}")
    for i, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise _IndexError(i if not isinstance(value, int) else None,
                              f"expected a non-negative integer GPU index, got {short_repr(item)}")
    if len(set(items)) != len(items):
        raise _IndexError(None, f"GPU indices must not repeat, got {short_repr(value)}")
    return items


# -- fields -----------------------------------------------------------------------------------


@dataclass
class Field:
    """One field of a config class.

    ``kind``: ``str``, ``int``, ``bool``, ``path``, ``duration``, ``size``, ``gpus``, ``dict``,
    ``json``, ``enum``, ``count`` (int or digit string), ``config`` (one ``cls``), ``configs``
    (a list of ``cls``) or ``custom`` (the class canonicalizes it itself).
    """

    kind: str
    default: Any = None
    required: bool = False
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    cls: Any = None
    yaml: str | None = None  # the camelCase name when not derivable
    aliases: tuple = ()
    local_path: bool = True  # path fields: resolved on this machine
    doc: str = ""
    extra: dict = _dc_field(default_factory=dict)


@dataclass
class Context:
    base: Path  # folder that relative paths are resolved against
    check_algorithms: bool = True
    check_files: bool = True
    experiment: dict = _dc_field(default_factory=dict)  # canonical top-level fields done so far


class ConfigBase:
    """Base of every config class: keyword construction, attribute checks, canonical form."""

    _fields: ClassVar[dict[str, Field]] = {}
    _allow_extra: ClassVar[bool] = False  # third-party training services keep unknown keys

    def __init__(self, **kwargs: Any):
        object.__setattr__(self, "_base_path", None)
        object.__setattr__(self, "_extra", {})
        for name, spec in self._fields.items():
            object.__setattr__(self, name, copy.deepcopy(spec.default))
        self._assign(kwargs, "", None)

    # -- construction from mappings ----------------------------------------------------------

    @classmethod
    def _key_table(cls) -> dict[str, str]:
        table = {}
        for name, spec in cls._fields.items():
            table[norm_key(name)] = name
            table[norm_key(cls._yaml_name(name))] = name
            for alias in spec.aliases:
                table[norm_key(alias)] = name
        return table

    @classmethod
    def _yaml_name(cls, name: str) -> str:
        spec = cls._fields[name]
        return spec.yaml or to_camel(name)

    def _assign(self, data: dict, path: str, base: Path | None) -> None:
        table = self._key_table()
        seen: dict[str, str] = {}
        for key, value in data.items():
            name = table.get(norm_key(key))
            if name is None:
                if self._allow_extra:
                    self._extra[str(key)] = value
                    continue
                names = [self._yaml_name(n) for n in self._fields]
                raise ConfigError(join(path, str(key)), f"unknown field {str(key)!r}{suggest(str(key), names)}")
            if name in seen:
                raise ConfigError(join(path, str(key)), f"given twice (also as {seen[name]!r})")
            seen[name] = str(key)
            object.__setattr__(self, name, self._build(name, value, join(path, self._yaml_name(name)), base))

    def _build(self, name: str, value: Any, path: str, base: Path | None) -> Any:
        """Turn a raw YAML/dict value into what the attribute holds (nested configs, paths)."""
        spec = self._fields[name]
        if value is None:
            return None
        if spec.kind == "config" and isinstance(value, dict):
            return spec.cls._from_dict(value, path, base)
        if spec.kind == "configs" and isinstance(value, (list, tuple)):
            return [spec.cls._from_dict(v, join(path, i), base) if isinstance(v, dict) else v for i, v in enumerate(value)]
        if spec.kind == "custom":
            return self._build_custom(name, value, path, base)
        if spec.kind == "path" and base is not None and spec.local_path and isinstance(value, (str, os.PathLike)):
            return resolve_path(value, base)
        return value

    def _build_custom(self, name: str, value: Any, path: str, base: Path | None) -> Any:
        return value

    @classmethod
    def _from_dict(cls, data: Any, path: str, base: Path | None):
        if isinstance(data, ConfigBase):
            return data
        if not isinstance(data, dict):
            raise ConfigError(path, f"expected a mapping, got {type_name(data)} {short_repr(data)}")
        obj = cls.__new__(cls)
        ConfigBase.__init__(obj)
        obj._assign(data, path, base)
        return obj

    # -- attribute access --------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name not in self._fields:
            close = difflib.get_close_matches(name, list(self._fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise AttributeError(f"{type(self).__name__} has no field {name!r}{hint}")
        object.__setattr__(self, name, value)

    def __eq__(self, other: Any) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._fields) and self._extra == other._extra

    def __repr__(self) -> str:
        items = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields if getattr(self, n) is not None)
        return f"{type(self).__name__}({items})"

    # -- canonical form ----------------------------------------------------------------------

    def _canonical(self, path: str, ctx: Context) -> dict:
        out: dict[str, Any] = {}
        for name, spec in self._fields.items():
            fpath = join(path, self._yaml_name(name))
            value = getattr(self, name)
            if spec.kind == "custom":
                out[self._yaml_name(name)] = self._canonical_custom(name, value, fpath, ctx)
            else:
                out[self._yaml_name(name)] = canonical_value(spec, value, fpath, ctx)
        for key, value in self._extra.items():
            out[key] = copy.deepcopy(value)
        self._check(out, path, ctx)
        return out

    def _canonical_custom(self, name: str, value: Any, path: str, ctx: Context) -> Any:
        raise NotImplementedError  # only classes with custom fields reach this

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        """Cross-field rules; may edit ``canon`` in place."""


def resolve_path(value: Any, base: Path) -> str:
    text = os.path.expanduser(os.fspath(value))
    return os.path.abspath(os.path.join(os.fspath(base), text))


def _describe(spec: Field) -> str:
    k = spec.kind
    if k == "int":
        lo = f" >= {_tidy(spec.min)}" if spec.min is not None else ""
        hi = f" <= {_tidy(spec.max)}" if spec.max is not None else ""
        return f"an integer{lo}{' and' if lo and hi else ''}{hi}"
    return {
        "str": "a string",
        "bool": "true or false",
        "path": "a path string",
        "dict": "a mapping",
        "count": "a positive integer",
    }.get(k, k)


def check_int(value: Any, path: str, lo: float | None = None, hi: float | None = None) -> int:
    """``value`` as an int within ``[lo, hi]`` (an integral float such as YAML's ``5.0`` counts)."""
    spec = Field("int", min=lo, max=hi)
    in_range = _is_number(value) and (lo is None or value >= lo) and (hi is None or value <= hi)
    if isinstance(value, float) and value.is_integer() and in_range:
        value = int(value)  # only in range: int(1e30) would turn a typo into a huge budget
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"expected {_describe(spec)}, got {type_name(value)} {short_repr(value)}")
    if not in_range:
        raise ConfigError(path, f"expected {_describe(spec)}, got {value}")
    return value


def canonical_value(spec: Field, value: Any, path: str, ctx: Context) -> Any:
    """Check one value against its field spec and return its canonical JSON form."""
    if value is None:
        if spec.required:
            raise ConfigError(path, f"required field is missing; expected {_describe(spec)}")
        return None
    k = spec.kind
    if k == "str":
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {type_name(value)} {short_repr(value)}")
        if spec.required and not value.strip():
            raise ConfigError(path, "must not be empty")
        return value
    if k == "int":
        return check_int(value, path, spec.min, spec.max)
    if k == "count":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(path, f"expected a positive integer, got {type_name(value)} {short_repr(value)}")
        return value
    if k == "bool":
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {type_name(value)} {short_repr(value)}")
        return value
    if k == "path":
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
            raise ConfigError(path, f"expected a path string, got {type_name(value)} {short_repr(value)}")
        if not spec.local_path:
            return os.fspath(value)
        return resolve_path(value, ctx.base)
    if k == "duration":
        try:
            return parse_duration(value)
        except ValueError as err:
            raise ConfigError(path, str(err)) from None
    if k == "size":
        try:
            return parse_size(value)
        except ValueError as err:
            raise ConfigError(path, str(err)) from None
    if k == "gpus":
        try:
            return parse_gpu_indices(value)
        except _IndexError as err:
            at = join(path, err.index) if err.index is not None else path
            raise ConfigError(at, str(err)) from None
    if k == "enum":
        for choice in spec.choices:
            if isinstance(value, str) and value.lower() == str(choice).lower():
                return choice
        raise ConfigError(path, f"expected one of {', '.join(map(str, spec.choices))}, got {short_repr(value)}")
    if k == "dict":
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {type_name(value)} {short_repr(value)}")
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(path, f"keys must be strings, got {short_repr(key)}")
        return copy.deepcopy(value)
    if k == "json":
        try:
            json.dumps(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(path, f"must be JSON-serializable: {err}") from None
        return copy.deepcopy(value)
    if k == "config":
        obj = spec.cls._from_dict(value, path, None)
        if not isinstance(obj, spec.cls):
            raise ConfigError(path, f"expected a {spec.cls.__name__} or a mapping, got {type(value).__name__}")
        return obj._canonical(path, ctx)
    if k == "configs":
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {type_name(value)} {short_repr(value)}")
        return [spec.cls._from_dict(v, join(path, i), None)._canonical(join(path, i), ctx) for i, v in enumerate(value)]
    raise AssertionError(f"unknown field kind {k!r}")  # a bug in a config class, not a user error
