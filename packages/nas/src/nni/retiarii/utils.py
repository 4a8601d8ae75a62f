"""Context stack and automatic labels shared by the model-space primitives.

Automatic labels
----------------
A mutation primitive created with ``label=None`` gets ``_mutation_<n>`` (``n`` counts from 1).
The counter is reset when the outermost ``@model_wrapper`` class starts its ``__init__`` (and
restored when it ends), so constructing the same model space with the same arguments gives the
same labels in every run and every process: labels follow construction order. Primitives created
outside any ``@model_wrapper`` share one process-wide counter (use :func:`label_scope` to get the
same guarantee there). A composite primitive (``Cell``, ``NasBench201Cell``, ``AutoActivation``)
takes one automatic label and derives its inner labels from it, e.g. ``<label>/op_1_0``.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

__all__ = ['ContextStack', 'generate_label', 'label_scope']

_local = threading.local()


class ContextStack:
    """A per-thread stack of values per key; ``with ContextStack(key, value):`` pushes for the block.

    ``fixed_arch`` uses the key ``'fixed'``; :meth:`top` returns the innermost value or ``None``.
    """

    def __init__(self, key: str, value: Any):
        self.key = key
        self.value = value

    def __enter__(self) -> 'ContextStack':
        self.push(self.key, self.value)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pop(self.key)

    @staticmethod
    def _stacks() -> dict[str, list[Any]]:
        if not hasattr(_local, 'stacks'):
            _local.stacks = {}
        return _local.stacks

    @classmethod
    def push(cls, key: str, value: Any) -> None:
        cls._stacks().setdefault(key, []).append(value)

    @classmethod
    def pop(cls, key: str) -> Any:
        return cls._stacks()[key].pop()

    @classmethod
    def top(cls, key: str) -> Any:
        stack = cls._stacks().get(key)
        return stack[-1] if stack else None


class _LabelCounter:
    def __init__(self) -> None:
        self.value = 0


_global_counter = _LabelCounter()


@contextlib.contextmanager
def label_scope() -> Iterator[None]:
    """Count automatic labels from ``_mutation_1`` inside the block (nested scopes inherit the outer one)."""
    if ContextStack.top('label_counter') is not None:
        yield
        return
    with ContextStack('label_counter', _LabelCounter()):
        yield


def generate_label(label: str | None) -> str:
    """Return ``label`` if given (it must be a non-empty str), else the next automatic label."""
    if label is not None:
        if not isinstance(label, str) or not label:
            raise ValueError(f'label: got {label!r}; a label must be a non-empty string or None (automatic)')
        return label
    counter = ContextStack.top('label_counter') or _global_counter
    counter.value += 1
    return f'_mutation_{counter.value}'
