"""``fixed_arch``: build the chosen architecture of a model space as a plain model.

The architecture dict (what ``export_top_models(formatter='dict')``, one-shot trainers' ``export()``
and :func:`nni.retiarii.space.sample_to_dict` produce, and what ``fixed_arch`` consumes) is one flat,
JSON-serializable dict ``label -> value``:

=================  ==========================================================================
primitive          value
=================  ==========================================================================
``LayerChoice``    the chosen candidate's name (``str``; ``'0'``, ``'1'``, ... for list candidates;
                   an ``int`` index is also accepted)
``InputChoice``    the sorted list of chosen input indices (``[2]``, ``[0, 3]``)
``ValueChoice``    the chosen value itself (a JSON list matches a tuple candidate)
``Repeat``         the depth (``int``)
``Cell``           no own key: its inner choices ``<label>/op_<i>_<k>`` (LayerChoice) and
                   ``<label>/input_<i>_<k>`` (InputChoice) carry the values
=================  ==========================================================================
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Union

from .utils import ContextStack

__all__ = ['fixed_arch', 'current_fixed_arch', 'FixedArchitecture']

_logger = logging.getLogger(__name__)

_MISSING = object()


class FixedArchitecture:
    """The architecture dict a ``fixed_arch`` block applies, with the labels looked up so far."""

    def __init__(self, arch: Dict[str, Any]):
        self.arch = arch
        self.used: set[str] = set()
        self._lenient = 0

    def lookup(self, label: str, kind: str) -> Any:
        """The value for ``label``; ``MISSING`` inside :meth:`lenient` blocks when absent, else a ValueError."""
        if label in self.arch:
            self.used.add(label)
            return self.arch[label]
        if self._lenient:
            return _MISSING
        known = sorted(self.arch)
        shown = ', '.join(map(repr, known[:10])) + (', ...' if len(known) > 10 else '')
        raise ValueError(f'fixed_arch: no value for the {kind} labelled {label!r}; the architecture has the labels [{shown}]')

    def lenient(self) -> 'ContextStack':
        """Inside this block, a missing label gives ``MISSING`` (the primitive uses its first candidate).

        ``Repeat`` builds the blocks beyond the chosen depth in such a block, so a hand-written dict need
        not name the choices inside blocks that are dropped anyway.
        """
        arch = self

        class _Lenient(ContextStack):
            def __enter__(self) -> Any:
                arch._lenient += 1
                return self

            def __exit__(self, *exc: Any) -> None:
                arch._lenient -= 1

        return _Lenient('fixed_lenient', None)


MISSING = _MISSING


def current_fixed_arch() -> FixedArchitecture | None:
    """The architecture of the innermost ``fixed_arch`` block, or ``None`` outside any."""
    return ContextStack.top('fixed')


def _load(arch: Union[str, Path, Dict[str, Any]]) -> Dict[str, Any]:
    if isinstance(arch, (str, Path)):
        path = Path(arch)
        try:
            data = json.loads(path.read_text(encoding='utf-8'))
        except FileNotFoundError:
            raise ValueError(f'fixed_arch: file {str(path)!r} does not exist; give an exported JSON file or a dict') from None
        except json.JSONDecodeError as err:
            raise ValueError(f'fixed_arch: file {str(path)!r} is not valid JSON ({err.msg} at line {err.lineno})') from None
        arch = data
    if not isinstance(arch, dict):
        raise ValueError(f'fixed_arch: the architecture must be a dict (label -> value) or a JSON file holding one, got {type(arch).__name__}')
    bad = [key for key in arch if not isinstance(key, str)]
    if bad:
        raise ValueError(f'fixed_arch: label {bad[0]!r} is not a string; labels are the string keys of the exported dict')
    return dict(arch)


class fixed_arch(ContextStack):  # noqa: N801 (the documented name)
    """Apply an architecture to every model space constructed inside the ``with`` block.

    Example::

        with fixed_arch('/path/to/export.json'):
            model = Net(3, 224, 224)   # a plain torch module: the chosen ops, no choices left

    Args:
        fixed_arch: the architecture dict (see this module's docstring) or the path of a JSON file holding it.
        verbose: log the architecture being applied.
    """

    def __init__(self, fixed_arch: Union[str, Path, Dict[str, Any]], verbose: bool = True):
        arch = _load(fixed_arch)
        if verbose:
            _logger.info('Fixed architecture: %s', arch)
        self.verbose = verbose
        super().__init__('fixed', FixedArchitecture(arch))
