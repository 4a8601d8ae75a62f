"""Find tuners, assessors, advisors and training services by name.

Two sources, one look-up:

* entry points of the installed distributions, groups ``nni.tuners``, ``nni.assessors``,
  ``nni.advisors`` and ``nni.training_services`` (name -> ``module:Class``);
* the per-user registry file written by ``nnictl algo register --meta meta.yml``
  (``$NNI_CONFIG_DIR/registered_algorithms.yml``, default ``~/.config/nni/``).

Listing reads only metadata: no algorithm module is imported until :func:`load_class`.
A class may carry its classArgs validator as the attribute ``class_args_validator``
(a :class:`nni.utils.ClassArgsValidator` subclass); user entries name theirs in the meta file.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata as _md
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("tuner", "assessor", "advisor", "training_service")
ENTRY_POINT_GROUPS = {
    "tuner": "nni.tuners",
    "assessor": "nni.assessors",
    "advisor": "nni.advisors",
    "training_service": "nni.training_services",
}
_KIND_WORDS = {"tuner": "tuner", "assessor": "assessor", "advisor": "advisor", "training_service": "training service"}
_USER_FILE = "registered_algorithms.yml"


class UnknownNameError(KeyError):
    """Raised when a name is not registered; ``str(err)`` is a one-line message for users."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class RegistryEntry:
    """One registered algorithm or training service, known without importing it."""

    kind: str
    name: str
    class_path: str  # ``module:Class`` (entry points) or ``module.Class`` (meta files)
    source: str  # "builtin" (an installed distribution) or "user" (the registry file)
    distribution: str | None = None
    class_args_validator: str | None = None
    code_dir: str | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def config_dir() -> Path:
    """The per-user configuration folder (``$NNI_CONFIG_DIR`` or ``~/.config/nni``)."""
    env = os.environ.get("NNI_CONFIG_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "nni"


def user_registry_path() -> Path:
    return config_dir() / _USER_FILE


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def _builtin_entries(kind: str) -> list[RegistryEntry]:
    entries = []
    for ep in _md.entry_points(group=ENTRY_POINT_GROUPS[kind]):
        dist = getattr(ep, "dist", None)
        entries.append(RegistryEntry(kind, ep.name, ep.value, "builtin", dist.name if dist else None))
    return entries


def _read_user_file() -> list[dict]:
    path = user_registry_path()
    if not path.exists():
        return []
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("algorithms", []))


def _write_user_file(items: list[dict]) -> None:
    import yaml

    path = user_registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"algorithms": items}, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _user_entries(kind: str) -> list[RegistryEntry]:
    out = []
    for item in _read_user_file():
        if item.get("algoType") == kind:
            out.append(
                RegistryEntry(
                    kind,
                    item["builtinName"],
                    item["className"],
                    "user",
                    None,
                    item.get("classArgsValidator"),
                    item.get("codeDir"),
                    dict(item),
                )
            )
    return out


def list_entries(kind: str) -> list[RegistryEntry]:
    """Every entry of ``kind``; user entries shadow installed ones of the same name."""
    _check_kind(kind)
    by_name: dict[str, RegistryEntry] = {e.name: e for e in _builtin_entries(kind)}
    if kind != "training_service":
        for e in _user_entries(kind):
            by_name[e.name] = e
    return sorted(by_name.values(), key=lambda e: e.name.lower())


def list_names(kind: str) -> list[str]:
    """Names of ``kind`` that can be used in a config, without importing anything."""
    return [e.name for e in list_entries(kind)]


def get_entry(kind: str, name: str) -> RegistryEntry:
    """The entry called ``name`` (exact, then case-insensitive); raises :class:`UnknownNameError`."""
    entries = list_entries(kind)
    for e in entries:
        if e.name == name:
            return e
    folded = [e for e in entries if e.name.lower() == str(name).lower()]
    if len(folded) == 1:
        return folded[0]
    names = [e.name for e in entries]
    word = _KIND_WORDS[kind]
    msg = f"Unknown {word} {name!r}."
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5) or [
        n for n in names if n.lower().startswith(str(name).lower()[:3])
    ][:1]
    if close:
        msg += f" Did you mean {close[0]!r}?"
    msg += f" Installed {word}s: {', '.join(names) if names else '(none)'}."
    raise UnknownNameError(msg)


def import_object(path: str, code_dir: str | None = None) -> Any:
    """Import ``module:attr`` or ``module.attr``; ``code_dir`` is put on ``sys.path`` first."""
    if code_dir and code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    if ":" in path:
        module_name, attr = path.split(":", 1)
    else:
        module_name, _, attr = path.rpartition(".")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load_class(kind: str, name: str) -> type:
    """Import and return the class registered as ``name``."""
    entry = get_entry(kind, name)
    return import_object(entry.class_path, entry.code_dir)


def load_validator(kind: str, name: str):
    """The classArgs validator class of ``name``, or ``None`` when it has none."""
    entry = get_entry(kind, name)
    if entry.class_args_validator:
        return import_object(entry.class_args_validator, entry.code_dir)
    cls = import_object(entry.class_path, entry.code_dir)
    return getattr(cls, "class_args_validator", None)


_META_KEYS = {"algoType", "builtinName", "className", "classArgsValidator", "codeDir"}


def validate_meta(meta: Any) -> dict:
    """Check a ``nnictl algo register`` meta mapping; one-line ``ValueError`` naming the field."""
    if not isinstance(meta, dict):
        raise ValueError("meta file: expected a mapping with algoType, builtinName and className")
    unknown = set(meta) - _META_KEYS
    if unknown:
        raise ValueError(f"meta file: unknown field {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(_META_KEYS))}")
    for key in ("algoType", "builtinName", "className"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise ValueError(f"meta file: field {key!r} is required and must be a non-empty string")
    if meta["algoType"] not in ("tuner", "assessor", "advisor"):
        raise ValueError(f"meta file: algoType must be one of tuner, assessor, advisor, got {meta['algoType']!r}")
    if "classArgsValidator" in meta and not isinstance(meta["classArgsValidator"], str):
        raise ValueError("meta file: field 'classArgsValidator' must be a string 'module.Class'")
    return meta


def register_user_algorithm(meta: dict, code_dir: str | os.PathLike | None = None) -> RegistryEntry:
    """Add an algorithm to the per-user registry (``nnictl algo register``).

    Args:
        meta: the meta YAML's mapping (``algoType``, ``builtinName``, ``className``,
            optional ``classArgsValidator``).
        code_dir: folder that holds the algorithm's module; put on ``sys.path`` when loading.
    """
    meta = dict(validate_meta(meta))
    name = meta["builtinName"]
    kind = meta["algoType"]
    if any(e.name == name for e in _builtin_entries(kind)):
        raise ValueError(f"meta file: builtinName {name!r} is already provided by an installed package; choose another name")
    if code_dir is not None:
        meta["codeDir"] = str(Path(code_dir).resolve())
    items = [i for i in _read_user_file() if not (i.get("builtinName") == name and i.get("algoType") == kind)]
    items.append(meta)
    _write_user_file(items)
    return get_entry(kind, name)


def unregister_user_algorithm(name: str) -> dict:
    """Remove a user-registered algorithm; returns its meta. Installed ones cannot be removed."""
    items = _read_user_file()
    keep = [i for i in items if i.get("builtinName") != name]
    if len(keep) == len(items):
        builtin = any(e.name == name for k in ("tuner", "assessor", "advisor") for e in _builtin_entries(k))
        if builtin:
            raise ValueError(f"{name!r} is provided by an installed package and cannot be unregistered")
        raise UnknownNameError(f"No user-registered algorithm named {name!r}.")
    removed = next(i for i in items if i.get("builtinName") == name)
    _write_user_file(keep)
    return removed
