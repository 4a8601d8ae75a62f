"""``nnictl algo register | unregister | list | show``."""
from __future__ import annotations

from pathlib import Path

from nni.runtime import registry

from .errors import NnictlError
from .output import format_table

_ALGO_KINDS = ("tuner", "assessor", "advisor")


def _split_class(path: str) -> tuple[str, str]:
    module, sep, cls = path.replace(":", ".").rpartition(".")
    return (cls, module) if sep else (path, "")


def register(args) -> int:
    import yaml

    meta_path = Path(args.meta)
    if not meta_path.is_file():
        raise NnictlError(f"--meta: file not found: {meta_path}")
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise NnictlError(f"--meta: {meta_path} is not valid YAML ({str(err).splitlines()[0]})") from None
    # The meta file's folder holds the algorithm's code when it is not pip-installed.
    entry = registry.register_user_algorithm(meta, code_dir=meta_path.resolve().parent)
    try:
        registry.load_class(entry.kind, entry.name)
        if entry.class_args_validator:
            registry.load_validator(entry.kind, entry.name)
    except Exception as err:  # the user's code: any import failure is reported, registration undone
        registry.unregister_user_algorithm(entry.name)
        raise NnictlError(f"cannot import {meta.get('className')!r} for {entry.name!r}: {err}") from None
    print(f"Registered {entry.kind} {entry.name!r} ({entry.class_path}).")
    return 0


def unregister(args) -> int:
    registry.unregister_user_algorithm(args.name)
    print(f"Unregistered {args.name!r}.")
    return 0


def _rows():
    for kind in _ALGO_KINDS:
        for e in registry.list_entries(kind):
            cls, module = _split_class(e.class_path)
            yield e, [e.name, kind + "s", "nni" if e.source == "builtin" else "User", cls, module]


def list_algorithms(_args) -> int:
    rows = [row for _, row in _rows()]
    print(format_table(["Name", "Type", "Source", "Class Name", "Module Name"], rows))
    return 0


def show(args) -> int:
    for kind in _ALGO_KINDS:
        try:
            e = registry.get_entry(kind, args.name)
        except registry.UnknownNameError:
            continue
        cls, module = _split_class(e.class_path)
        info = {
            "builtinName": e.name,
            "algoType": kind,
            "source": "nni" if e.source == "builtin" else "User",
            "className": f"{module}.{cls}" if module else cls,
            "classArgsValidator": e.class_args_validator,
            "distribution": e.distribution,
            "codeDir": e.code_dir,
        }
        for key, value in info.items():
            if value is not None:
                print(f"{key}: {value}")
        return 0
    names = [n for k in _ALGO_KINDS for n in registry.list_names(k)]
    import difflib

    close = difflib.get_close_matches(args.name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise NnictlError(f"unknown algorithm {args.name!r}.{hint} Run 'nnictl algo list' to see the registered ones.")
