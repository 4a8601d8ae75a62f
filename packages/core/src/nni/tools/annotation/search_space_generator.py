"""Building the search space that a folder of annotated trial code describes."""
from __future__ import annotations

import os
import tokenize
from pathlib import Path
from typing import Any, Dict, Union

from .parsing import module_name_of, parse_module

__all__ = ['generate_search_space']


def generate_search_space(code_dir: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The search space (NNI JSON format) of every annotation under ``code_dir``.

    Files are visited in sorted path order, annotations in line order. Keys are
    ``<module>/<name>/<function>`` (``mnist/batch_size/choice``; see
    :mod:`nni.tools.annotation.parsing`); ``@nni.function_choice`` gives a ``choice`` whose
    options are the calls' source text; ``nni.choice`` lists literal options as values and
    other options as their source text; an option that is itself a sampling function becomes a
    nested option ``{"_name": "<source>", "value": {...}}``; a ``@nni.mutable_layers`` block
    gives ``{"_type": "mutable_layer", "_value": {"mutable_layer_0": {"layer_choice": [...],
    "optional_inputs": [...], "optional_input_size": n}, ...}}``.

    Raises:
        ValueError: a malformed annotation (``<relative path>:<line>: ...``), or ``code_dir``
            is not a directory.
    """
    root = Path(code_dir).resolve()
    if not root.is_dir():
        raise ValueError(f'annotation: trial code directory {str(root)!r} is not a directory')
    space: Dict[str, Any] = {}
    for path in _python_files(root):
        data = path.read_bytes()
        if b'@nni.' not in data:
            continue
        with open(path, 'rb') as f:
            encoding, _ = tokenize.detect_encoding(f.readline)
        text = data.decode(encoding).lstrip('\ufeff')
        relative = path.relative_to(root).as_posix()
        space.update(parse_module(text, module_name_of(relative), relative).search_space)
    return space


def _python_files(root: Path):
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        found.extend(Path(directory) / f for f in files if f.endswith('.py'))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
