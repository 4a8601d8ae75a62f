"""``tuner`` / ``assessor`` / ``advisor``: a registered algorithm or a custom class."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .base import ConfigBase, ConfigError, Context, Field, join, short_repr

__all__ = ["AlgorithmConfig", "CustomAlgorithmConfig", "check_algorithm"]

_QUALIFIED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


class _AlgorithmConfig(ConfigBase):
    """Fields shared by both forms; YAML picks the form from the keys it gives."""

    _fields = {
        "name": Field("str"),
        "class_name": Field("str"),
        "code_directory": Field("path"),
        "class_args": Field("dict", default={}),
    }

    @classmethod
    def _from_dict(cls, data: Any, path: str, base: Path | None):
        if cls is _AlgorithmConfig and isinstance(data, dict):
            keys = {str(k).replace("_", "").lower() for k in data}
            cls = CustomAlgorithmConfig if ({"classname", "codedirectory"} & keys and "name" not in keys) else AlgorithmConfig
            obj = ConfigBase._from_dict.__func__(cls, data, path, base)
            if cls is CustomAlgorithmConfig and "codedirectory" not in keys:
                object.__setattr__(obj, "code_directory", None)
            return obj
        return super()._from_dict(data, path, base)

    def is_empty(self) -> bool:
        """True for the placeholder that ``ExperimentConfig('local')`` creates and nobody filled."""
        return self.name is None and self.class_name is None and not self.class_args

    def _check(self, canon: dict, path: str, ctx: Context) -> None:
        if canon["classArgs"] is None:
            canon["classArgs"] = {}
        if canon["name"] is not None and (canon["className"] is not None or canon["codeDirectory"] is not None):
            which = "className" if canon["className"] is not None else "codeDirectory"
            raise ConfigError(join(path, which), "not allowed together with name; give name for a built-in or registered algorithm, or className (+ codeDirectory) for a custom class")
        if canon["name"] is None and canon["className"] is None:
            raise ConfigError(join(path, "name"), "required field is missing; give name (built-in or registered algorithm) or className (custom class, e.g. my_tuner.MyTuner)")
        if canon["className"] is not None:
            if not _QUALIFIED.match(canon["className"]):
                raise ConfigError(join(path, "className"), f"expected a qualified class name like 'my_tuner.MyTuner', got {short_repr(canon['className'])}")
            if canon["codeDirectory"] is None:
                canon["codeDirectory"] = os.path.abspath(ctx.base)
            if ctx.check_files and not os.path.isdir(canon["codeDirectory"]):
                raise ConfigError(join(path, "codeDirectory"), f"directory not found: {canon['codeDirectory']}")


class AlgorithmConfig(_AlgorithmConfig):
    """A built-in or registered algorithm: ``AlgorithmConfig(name='TPE', class_args={...})``."""


class CustomAlgorithmConfig(_AlgorithmConfig):
    """An unregistered class: ``CustomAlgorithmConfig(class_name='my_tuner.MyTuner', code_directory='.')``."""

    _fields = {**_AlgorithmConfig._fields, "code_directory": Field("path", default=".")}


def check_algorithm(kind: str, canon: dict, path: str) -> None:
    """Check a registered algorithm's name and classArgs against :mod:`nni.runtime.registry`.

    The canonical ``name`` is replaced by the registered spelling (``tpe`` -> ``TPE``).
    """
    if canon["name"] is None:
        return
    from nni.runtime import registry

    try:
        entry = registry.get_entry(kind, canon["name"])
    except registry.UnknownNameError as err:
        raise ConfigError(join(path, "name"), str(err)) from None
    canon["name"] = entry.name
    try:
        validator = registry.load_validator(kind, entry.name)
    except Exception as err:  # noqa: BLE001 - an algorithm that cannot be imported is a config error
        raise ConfigError(join(path, "name"), f"cannot load {kind} {entry.name!r} ({entry.class_path}): {type(err).__name__}: {err}") from None
    if validator is None:
        return
    run_validator(validator, canon["classArgs"], join(path, "classArgs"))


def run_validator(validator: Any, class_args: dict, field: str) -> None:
    """Run ``validate_class_args(**class_args)``; failures become ``<field>.<key>: ...``."""
    if isinstance(validator, type):
        validator = validator()
    try:
        validator.validate_class_args(**dict(class_args))
    except Exception as err:  # noqa: BLE001 - any failure of a validator rejects the config
        msg = " ".join(str(err).split()) or type(err).__name__
        for prefix in (field, "classArgs"):
            if msg.startswith(prefix + "."):
                rest = msg[len(prefix) + 1:]
                m = re.match(r"^([\w-]+)[:,]?\s*(.*)$", rest)
                if m:
                    raise ConfigError(f"{field}.{m.group(1)}", m.group(2) or "invalid value") from None
        key = next((k for k in class_args if re.search(rf"(?<![\w]){re.escape(str(k))}(?![\w])", msg)), None)
        if key is not None:
            if msg.startswith(f"{key}:"):
                msg = msg[len(key) + 1:].strip()
            raise ConfigError(f"{field}.{key}", msg) from None
        raise ConfigError(field, msg) from None
