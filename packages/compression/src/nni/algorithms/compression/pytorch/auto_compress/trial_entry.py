"""The trial command of auto-compression experiments::

    python3 -m nni.algorithms.compression.pytorch.auto_compress.trial_entry \\
        --module_file_name auto_compress_module.py --module_class_name AutoCompressionModule

imports the user's :class:`AbstractAutoCompressionModule` subclass from its file (relative to the
trial's working folder, the experiment's ``trial_code_directory``) and runs
:meth:`AutoCompressionEngine.trial_execute_compress`.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
from pathlib import Path

from .interface import AbstractAutoCompressionModule

__all__ = ["load_module_class", "main"]


def load_module_class(module_file: str, class_name: str) -> type:
    """Import ``class_name`` from the Python file ``module_file`` (its folder goes first on
    ``sys.path`` so that the file can import its neighbours)."""
    path = Path(module_file).resolve()
    if not path.is_file():
        raise ValueError(f"--module_file_name: file not found: {path}")
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, AbstractAutoCompressionModule)):
        raise ValueError(f"--module_class_name: {path.name} has no AbstractAutoCompressionModule subclass named {class_name!r}")
    return cls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nni.algorithms.compression.pytorch.auto_compress.trial_entry",
                                     description="Run one auto-compression trial.")
    parser.add_argument("--module_file_name", required=True, help="the file of the AutoCompressionModule")
    parser.add_argument("--module_class_name", required=True, help="its class name")
    args = parser.parse_args(argv)
    from .auto_compress_engine import AutoCompressionEngine

    try:
        module = load_module_class(args.module_file_name, args.module_class_name)
        AutoCompressionEngine.trial_execute_compress(module)
    except ValueError as err:
        # a user error: one line on stderr (shown for the failed trial); the traceback goes to
        # stdout in case it came from deeper inside the user's code
        traceback.print_exc(file=sys.stdout)
        print(f"Error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
