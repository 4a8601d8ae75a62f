"""Inline mutation primitives: ``LayerChoice``, ``InputChoice``, ``ValueChoice``, ``ChosenInputs``, ``Placeholder``.

Every primitive is one *mutable* with one label (explicit, or automatic: see :mod:`nni.retiarii.utils`);
primitives with the same label share one choice. Each mutable has a candidate list whose entries are
exactly the values of the exported architecture dict (see :mod:`nni.retiarii.fixed`).

Inside ``fixed_arch`` a mutable builds its fixed form instead of itself (LayerChoice: the chosen module;
InputChoice: a :class:`ChosenInputs`; ValueChoice: a frozen ValueChoice holding the chosen value).
Outside, the model space is still a runnable module: each mutable behaves as its first candidate.
"""
from __future__ import annotations

import abc
import itertools
import math
from functools import reduce
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ...fixed import MISSING, FixedArchitecture, current_fixed_arch
from ...utils import generate_label

__all__ = ['Mutable', 'LayerChoice', 'InputChoice', 'ValueChoice', 'ChosenInputs', 'Placeholder',
           'ValueChoiceArithmeticError', 'normalize_candidate_value']

_MAX_ANY_INPUTS = 12


class ValueChoiceArithmeticError(ValueError, TypeError):
    """Raised by ``ValueChoice(...) * 2`` and other transformations, which NNI v2.5 does not support."""


def _validate_prior(prior: Optional[Sequence[float]], n: int, where: str) -> Optional[List[float]]:
    if prior is None:
        return None
    try:
        values = [float(p) for p in prior]
    except (TypeError, ValueError):
        raise ValueError(f'{where}: prior must be a list of {n} probabilities, got {prior!r}') from None
    if len(values) != n:
        raise ValueError(f'{where}: prior has {len(values)} entries but there are {n} candidates; give one probability per candidate')
    if any(p < 0 or math.isnan(p) for p in values) or abs(sum(values) - 1) > 1e-6:
        raise ValueError(f'{where}: prior {values} is not a distribution; entries must be >= 0 and sum to 1')
    return values


def normalize_candidate_value(value: Any) -> Any:
    """Tuples become lists, recursively: a JSON round trip of a candidate compares equal to it."""
    if isinstance(value, (list, tuple)):
        return [normalize_candidate_value(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize_candidate_value(v) for k, v in value.items()}
    return value


def _check_extra_kwargs(where: str, extra_kwargs: Optional[Dict[str, Any]]) -> None:
    unknown = sorted(set(extra_kwargs or {}) - {'key'})
    if unknown:
        raise ValueError(f'{where}: unexpected argument {unknown[0]!r}; the keyword arguments are prior and label')


class Mutable(nn.Module, metaclass=abc.ABCMeta):
    """Base of the primitives that hold one choice (``LayerChoice``, ``InputChoice``, ``ValueChoice``, ``Repeat``).

    ``kind`` names the primitive in search-space listings; ``candidates`` are the export-dict values.
    """

    kind: str = ''
    label: str

    @classmethod
    def _split_label(cls, args: tuple, kwargs: Dict[str, Any]) -> Tuple[Optional[str], tuple, Dict[str, Any]]:
        """``(label, args, kwargs)`` of a constructor call, the label taken out of the arguments."""
        kwargs = dict(kwargs)
        label = kwargs.pop('label', None)
        key = kwargs.pop('key', None)  # the NNI 1.x name of label, still accepted by LayerChoice / InputChoice
        return (label if label is not None else key), args, kwargs

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            # copy.deepcopy / pickle re-create the object without arguments: no new label, no fixing
            return super().__new__(cls)
        label, args, kwargs = cls._split_label(args, kwargs)
        label = generate_label(label)
        arch = current_fixed_arch()
        if arch is not None:
            return cls.create_fixed_module(arch, label, *args, **kwargs)
        instance = super().__new__(cls)
        instance.__dict__['_nni_pending_label'] = label
        return instance

    def _take_label(self, extra_kwargs: Optional[Dict[str, Any]] = None) -> None:
        self.label = self.__dict__.pop('_nni_pending_label')
        _check_extra_kwargs(self._describe(), extra_kwargs)

    @classmethod
    @abc.abstractmethod
    def create_fixed_module(cls, arch: FixedArchitecture, label: str, *args: Any, **kwargs: Any) -> Any:
        """Build the fixed form for the architecture ``arch`` (called instead of the constructor inside ``fixed_arch``)."""

    @property
    @abc.abstractmethod
    def candidates(self) -> List[Any]:
        """The values this choice can take, as they appear in the exported architecture dict."""

    @property
    def prior(self) -> Optional[List[float]]:
        return self._prior

    def _describe(self) -> str:
        return f'{type(self).__name__} {self.label!r}'


def _layer_candidates(candidates: Any, where: str) -> Tuple[List[str], List[nn.Module]]:
    if isinstance(candidates, dict):
        names = list(candidates)
        bad = [n for n in names if not isinstance(n, str)]
        if bad:
            raise ValueError(f'{where}: candidate name {bad[0]!r} is not a string; dict candidates map str names to modules')
        modules = list(candidates.values())
    elif isinstance(candidates, (list, tuple, nn.ModuleList)):
        modules = list(candidates)
        names = [str(i) for i in range(len(modules))]
    else:
        raise ValueError(f'{where}: candidates must be a list or an (Ordered)dict of modules, got {type(candidates).__name__}')
    if not modules:
        raise ValueError(f'{where}: candidates is empty; give at least one module')
    for name, module in zip(names, modules):
        if not isinstance(module, nn.Module):
            raise ValueError(f'{where}: candidate {name!r} is a {type(module).__name__}, not a torch.nn.Module')
        for sub in module.modules():
            if isinstance(sub, LayerChoice):
                raise ValueError(f'{where}: candidate {name!r} contains LayerChoice {sub.label!r}; LayerChoice cannot be nested')
    return names, modules


def _chosen_name(value: Any, names: List[str], where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value in names:
        return value
    raise ValueError(f'{where}: {value!r} is not a candidate; allowed names are {names}')


class LayerChoice(Mutable):
    """Choose one of several candidate modules; ``forward`` applies the chosen one.

    Args:
        candidates: a list of modules (named ``'0'``, ``'1'``, ...) or an (Ordered)dict ``name -> module``.
        prior: probabilities of the candidates for random sampling (default uniform).
        label: identifier of the choice (automatic if ``None``).

    A LayerChoice cannot contain another one. Candidates can be replaced (``lc[1] = m``,
    ``lc['conv'] = m``) or removed (``del lc['conv']``), but not added. Export value: the chosen name.
    """

    kind = 'layer_choice'

    def __init__(self, candidates: Union[Dict[str, nn.Module], List[nn.Module]], *,
                 prior: Optional[List[float]] = None, label: Optional[str] = None, **kwargs: Any):
        super().__init__()
        self._take_label(kwargs)
        names, modules = _layer_candidates(candidates, self._describe())
        self.names: List[str] = names
        for name, module in zip(names, modules):
            self.add_module(name, module)
        self._prior = _validate_prior(prior, len(names), self._describe())

    @classmethod
    def create_fixed_module(cls, arch: FixedArchitecture, label: str, candidates: Any, *,
                            prior: Optional[List[float]] = None, **kwargs: Any) -> nn.Module:
        where = f'LayerChoice {label!r}'
        _check_extra_kwargs(where, kwargs)
        names, modules = _layer_candidates(candidates, where)
        value = arch.lookup(label, 'LayerChoice')
        name = names[0] if value is MISSING else _chosen_name(value, names, f'fixed_arch: {where}')
        return modules[names.index(name)]

    @property
    def candidates(self) -> List[str]:
        return list(self.names)

    @property
    def length(self) -> int:
        """Deprecated: use ``len(layer_choice)``."""
        return len(self.names)

    @property
    def choices(self) -> List[nn.Module]:
        """Deprecated: use ``list(layer_choice)``."""
        return list(self)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[nn.Module]:
        return (self._modules[name] for name in self.names)

    def _name_of(self, key: Union[int, str]) -> str:
        if isinstance(key, int) and not isinstance(key, bool):
            if -len(self.names) <= key < len(self.names):
                return self.names[key]
        elif isinstance(key, str) and key in self.names:
            return key
        raise KeyError(f'{self._describe()}: no candidate {key!r}; candidates are {self.names}')

    def __getitem__(self, key: Union[int, str]) -> nn.Module:
        return self._modules[self._name_of(key)]

    def __setitem__(self, key: Union[int, str], module: nn.Module) -> None:
        try:
            name = self._name_of(key)
        except KeyError:
            raise KeyError(f'{self._describe()}: cannot add candidate {key!r}; only existing candidates {self.names} can be replaced') from None
        self.add_module(name, module)

    def __delitem__(self, key: Union[int, str]) -> None:
        name = self._name_of(key)
        if len(self.names) == 1:
            raise ValueError(f'{self._describe()}: cannot delete its last candidate {name!r}')
        del self._modules[name]
        self.names.remove(name)
        if self._prior is not None:
            self._prior = None  # the old prior no longer matches the candidates

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """In the model space, the first candidate runs (the space behaves as its first-candidate model)."""
        return self[0](*args, **kwargs)

    def extra_repr(self) -> str:
        return f'label={self.label!r}'


def _input_candidates(n_candidates: int, n_chosen: Optional[int]) -> List[List[int]]:
    if n_chosen is None:
        return [list(c) for k in range(1, n_candidates + 1) for c in itertools.combinations(range(n_candidates), k)]
    return [list(c) for c in itertools.combinations(range(n_candidates), n_chosen)]


class ChosenInputs(nn.Module):
    """The fixed form of ``InputChoice``: pick ``chosen`` indices of the input list and reduce them.

    Args:
        chosen: an index or a list of indices into the list given to ``forward``.
        reduction: ``'none'`` (return the list), ``'sum'``, ``'mean'`` or ``'concat'`` (along dim 1).
    """

    def __init__(self, chosen: Union[List[int], int], reduction: str):
        super().__init__()
        self.chosen = [chosen] if isinstance(chosen, int) else list(chosen)
        if reduction not in InputChoice.REDUCTIONS:
            raise ValueError(f'ChosenInputs: reduction {reduction!r} is not supported; use one of {list(InputChoice.REDUCTIONS)}')
        self.reduction = reduction

    def forward(self, candidate_inputs: List[torch.Tensor]) -> Any:
        return _reduce([candidate_inputs[i] for i in self.chosen], self.reduction)

    def extra_repr(self) -> str:
        return f'chosen={self.chosen}, reduction={self.reduction!r}'


def _reduce(tensors: List[torch.Tensor], reduction: str) -> Any:
    if reduction == 'none':
        return tensors
    if reduction == 'concat':
        return torch.cat(tensors, dim=1)
    total = reduce(lambda a, b: a + b, tensors)
    return total / len(tensors) if reduction == 'mean' else total


class InputChoice(Mutable):
    """Choose ``n_chosen`` of ``n_candidates`` input tensors and reduce them to one output.

    Args:
        n_candidates: number of inputs ``forward`` receives (required).
        n_chosen: how many are chosen; ``None`` means any non-empty subset (at most 12 candidates then).
        reduction: ``'none'``, ``'sum'``, ``'mean'`` or ``'concat'`` (dim 1).
        prior: probabilities of the inputs (only with ``n_chosen=1``).
        label: identifier of the choice.

    Candidates (and export values) are sorted index lists, e.g. ``[[0], [1], [2]]`` for ``n_chosen=1``.
    """

    kind = 'input_choice'
    REDUCTIONS = ('none', 'sum', 'mean', 'concat')

    @staticmethod
    def _validate(where: str, n_candidates: Any, n_chosen: Any, reduction: Any) -> None:
        if not isinstance(n_candidates, int) or isinstance(n_candidates, bool) or n_candidates < 1:
            raise ValueError(f'{where}: n_candidates must be a positive int, got {n_candidates!r}')
        if n_chosen is not None and (not isinstance(n_chosen, int) or isinstance(n_chosen, bool) or not 1 <= n_chosen <= n_candidates):
            raise ValueError(f'{where}: n_chosen must be None or an int in [1, n_candidates={n_candidates}], got {n_chosen!r}')
        if n_chosen is None and n_candidates > _MAX_ANY_INPUTS:
            raise ValueError(f'{where}: n_chosen=None allows at most {_MAX_ANY_INPUTS} candidates, got n_candidates={n_candidates}')
        if reduction not in InputChoice.REDUCTIONS:
            raise ValueError(f'{where}: reduction {reduction!r} is not supported; use one of {list(InputChoice.REDUCTIONS)}')

    def __init__(self, n_candidates: int, n_chosen: Optional[int] = 1, reduction: str = 'sum', *,
                 prior: Optional[List[float]] = None, label: Optional[str] = None, **kwargs: Any):
        super().__init__()
        self._take_label(kwargs)
        self._validate(self._describe(), n_candidates, n_chosen, reduction)
        self.n_candidates = n_candidates
        self.n_chosen = n_chosen
        self.reduction = reduction
        if prior is not None and n_chosen != 1:
            raise ValueError(f'{self._describe()}: prior is supported only with n_chosen=1, got n_chosen={n_chosen!r}')
        self._prior = _validate_prior(prior, n_candidates, self._describe())

    @classmethod
    def create_fixed_module(cls, arch: FixedArchitecture, label: str, n_candidates: int, n_chosen: Optional[int] = 1,
                            reduction: str = 'sum', *, prior: Optional[List[float]] = None, **kwargs: Any) -> ChosenInputs:
        where = f'InputChoice {label!r}'
        _check_extra_kwargs(where, kwargs)
        cls._validate(where, n_candidates, n_chosen, reduction)
        value = arch.lookup(label, 'InputChoice')
        candidates = _input_candidates(n_candidates, n_chosen)
        if value is MISSING:
            return ChosenInputs(candidates[0], reduction)
        chosen = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(chosen, (list, tuple)) or sorted(chosen) not in candidates:
            n = 'any number of' if n_chosen is None else str(n_chosen)
            raise ValueError(f'fixed_arch: {where}: {value!r} is not a valid choice; give a list of {n} distinct indices in [0, {n_candidates})')
        return ChosenInputs(sorted(chosen), reduction)

    @property
    def candidates(self) -> List[List[int]]:
        return _input_candidates(self.n_candidates, self.n_chosen)

    def forward(self, candidate_inputs: List[torch.Tensor]) -> Any:
        """In the model space, the first candidate (the first ``n_chosen`` inputs) is used."""
        if len(candidate_inputs) != self.n_candidates:
            raise ValueError(f'{self._describe()}: forward got {len(candidate_inputs)} inputs, expected n_candidates={self.n_candidates}')
        return _reduce([candidate_inputs[i] for i in self.candidates[0]], self.reduction)

    def extra_repr(self) -> str:
        return f'n_candidates={self.n_candidates}, n_chosen={self.n_chosen}, reduction={self.reduction!r}, label={self.label!r}'


def _unsupported(op: str) -> Any:
    def method(self: 'ValueChoice', *args: Any) -> Any:
        raise ValueChoiceArithmeticError(
            f'ValueChoice {self.label!r}: operator {op} is not supported in NNI v2.5; use the ValueChoice directly '
            f'(e.g. ValueChoice([64, 128]) instead of ValueChoice([32, 64]) * 2)')
    return method


class ValueChoice(Mutable):
    """Choose one value out of ``candidates`` (any type, including lists and dicts).

    Use it (1) as an init argument of a basic unit (a module of ``nni.retiarii.nn.pytorch`` or a
    ``@basic_unit`` class), or (2) as a module assigned in ``__init__`` and called in ``forward``
    (``self.rate()`` returns the chosen value). Sharing the same instance, or giving the same label,
    shares the choice. Arithmetic (``vc * 2``) is not supported (NNI v2.5) and raises.

    Inside ``fixed_arch`` it becomes a frozen ValueChoice: ``value`` and ``vc()`` give the chosen value and it
    is no longer a mutable. Export value: the chosen candidate itself.
    """

    kind = 'value_choice'
    _nni_value_choice = True

    def __init__(self, candidates: List[Any], *, prior: Optional[List[float]] = None, label: Optional[str] = None):
        if self.__dict__.get('fixed'):
            return  # created by create_fixed_module; Python calls __init__ again on the returned instance
        super().__init__()
        self._take_label()
        if not isinstance(candidates, (list, tuple)) or not candidates:
            raise ValueError(f'{self._describe()}: candidates must be a non-empty list, got {candidates!r}')
        self._candidates = list(candidates)
        self._prior = _validate_prior(prior, len(self._candidates), self._describe())
        self.fixed = False

    @classmethod
    def create_fixed_module(cls, arch: FixedArchitecture, label: str, candidates: List[Any], *,
                            prior: Optional[List[float]] = None) -> 'ValueChoice':
        where = f'ValueChoice {label!r}'
        if not isinstance(candidates, (list, tuple)) or not candidates:
            raise ValueError(f'{where}: candidates must be a non-empty list, got {candidates!r}')
        value = arch.lookup(label, 'ValueChoice')
        if value is MISSING:
            chosen = candidates[0]
        else:
            normalized = [normalize_candidate_value(c) for c in candidates]
            target = normalize_candidate_value(value)
            if target not in normalized:
                raise ValueError(f'fixed_arch: {where}: {value!r} is not a candidate; allowed values are {list(candidates)}')
            chosen = candidates[normalized.index(target)]
        instance = nn.Module.__new__(cls)
        nn.Module.__init__(instance)
        instance.label = label
        instance._candidates = [chosen]
        instance._prior = None
        instance.fixed = True
        return instance

    @property
    def candidates(self) -> List[Any]:
        return list(self._candidates)

    @property
    def value(self) -> Any:
        """The chosen value inside ``fixed_arch``; the first candidate in the model space."""
        return self._candidates[0]

    def forward(self) -> Any:
        return self.value

    def extra_repr(self) -> str:
        return f'{self._candidates!r}, label={self.label!r}' + (', fixed=True' if self.fixed else '')

    def __deepcopy__(self, memo: Dict[int, Any]) -> 'ValueChoice':
        # a ValueChoice is an immutable record: copies of a module (Repeat, Cell) share it and so its choice
        return self

    __add__ = __radd__ = _unsupported('+')
    __sub__ = __rsub__ = _unsupported('-')
    __mul__ = __rmul__ = _unsupported('*')
    __truediv__ = __rtruediv__ = _unsupported('/')
    __floordiv__ = __rfloordiv__ = _unsupported('//')
    __mod__ = __rmod__ = _unsupported('%')
    __pow__ = __rpow__ = _unsupported('**')
    __neg__ = _unsupported('unary -')
    __abs__ = _unsupported('abs()')
    __lt__ = _unsupported('<')
    __le__ = _unsupported('<=')
    __gt__ = _unsupported('>')
    __ge__ = _unsupported('>=')
    __int__ = __index__ = _unsupported('int()')
    __float__ = _unsupported('float()')


class Placeholder(nn.Module):
    """A node for a user-written ``Mutator`` to replace (graph-based engine only).

    ``label`` finds the node; every other keyword becomes a parameter of the node's operation
    (``node.operation.parameters``) for the mutator to read. Running a Placeholder raises: a mutator
    must replace it first.
    """

    def __init__(self, label: str, **related_info: Any):
        super().__init__()
        if not isinstance(label, str) or not label:
            raise ValueError(f'Placeholder: label must be a non-empty string, got {label!r}')
        self.label = label
        self.related_info = dict(related_info)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f'Placeholder {self.label!r} must be replaced by a Mutator before the model runs')

    def extra_repr(self) -> str:
        return f'label={self.label!r}, ' + ', '.join(f'{k}={v!r}' for k, v in self.related_info.items())
