"""Rewriting annotated trial code into calls of the annotation runtime (``nni.choice``, ...,
:mod:`nni.smartparam`) and the trial API."""
from __future__ import annotations

import os
import shutil
import tokenize
from pathlib import Path
from typing import List, Optional, Union

from .parsing import Edit, module_name_of, parse_module

__all__ = ['expand_annotations', 'convert_source']

_SKIP_DIRS = {'__pycache__'}


def convert_source(source: str, module: str, filename: str = '<string>') -> Optional[str]:
    """The converted text of one module, or ``None`` when it has no annotation.

    Line numbers are kept: every edit stays on the lines of the code it replaces (an import
    line is added at the top only when the module starts with a compound statement).
    """
    annotations = parse_module(source, module, filename)
    if not annotations.annotations:
        return None
    edits: List[Edit] = [a.edit for a in annotations.annotations if a.edit is not None]
    if annotations.import_edit is not None:
        edits.append(annotations.import_edit)
    text = source
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        text = text[:edit.start] + edit.text + text[edit.end:]
    return text


def expand_annotations(src_dir: Union[str, os.PathLike], dst_dir: Union[str, os.PathLike],
                       exp_id: Optional[str] = None, trial_id: Optional[str] = None) -> str:
    """Copy the code folder ``src_dir`` to ``dst_dir``, converting annotated Python files.

    Files without annotations (and every non-Python file) are copied unchanged, with their
    permission bits; ``__pycache__`` folders are skipped, and so is ``dst_dir`` when it lies
    inside ``src_dir``. A folder with no annotation at all is used as it is: nothing is
    copied and ``src_dir`` is returned.

    Args:
        src_dir: the trial code directory.
        dst_dir: where the converted copy goes (created if missing; existing files overwritten).
        exp_id: accepted for NNI compatibility (v2.5 passes it for its NAS modes); unused.
        trial_id: same as ``exp_id``.

    Returns:
        The folder the trials run from: ``dst_dir``, or ``src_dir`` when nothing was annotated.

    Raises:
        ValueError: a malformed annotation; the message starts with ``<relative path>:<line>:``.
    """
    src = Path(src_dir).resolve()
    dst = Path(dst_dir).resolve()
    if not src.is_dir():
        raise ValueError(f'annotation: trial code directory {str(src)!r} is not a directory')
    files = []
    for root, dirs, names in os.walk(src):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and (root_path / d).resolve() != dst)
        relative_root = root_path.relative_to(src)
        files.append((relative_root, None, None))
        for name in sorted(names):
            relative = relative_root / name
            converted = _convert_file(root_path / name, relative) if name.endswith('.py') else None
            files.append((relative_root, name, converted))
    if all(converted is None for _, _, converted in files):
        return str(src)
    for relative_root, name, converted in files:
        if name is None:
            (dst / relative_root).mkdir(parents=True, exist_ok=True)
            continue
        source_file = src / relative_root / name
        target_file = dst / relative_root / name
        if converted is None:
            shutil.copy2(source_file, target_file)
        else:
            text, encoding = converted
            with open(target_file, 'w', encoding=encoding, newline='') as f:
                f.write(text)
            shutil.copymode(source_file, target_file)
    return str(dst)


def _convert_file(path: Path, relative: Path):
    data = path.read_bytes()
    if b'@nni.' not in data:
        return None
    with open(path, 'rb') as f:
        encoding, _ = tokenize.detect_encoding(f.readline)
    text = data.decode(encoding)
    if text.startswith('\ufeff'):
        text = text[1:]
        encoding = 'utf-8-sig'
    converted = convert_source(text, module_name_of(relative.as_posix()), relative.as_posix())
    return None if converted is None else (converted, encoding)
