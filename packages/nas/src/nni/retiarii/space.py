"""Search-space extraction for the pure-python engine.

From a model-space instance (built without ``fixed_arch``)::

    space = Net()
    mutables = extract_mutables(space)          # label -> MutableInfo(kind, candidates, prior)
    base = python_model(space)                  # a frozen Model: class + init args, empty sample
    mutators = mutators_for(space)              # one LabelMutator per label, in construction order
    model = base
    for m in mutators:
        model = m.bind_sampler(sampler).apply(model)
    model.sample                                # {'conv': '1', 'hidden': 64, ...}: the architecture dict
    net = instantiate(model)                    # fixed_arch(model.sample) + Net(*args, **kwargs)

The candidates of each label are the values of the architecture dict (see :mod:`nni.retiarii.fixed`).
Primitives sharing a label must be of the same kind with equal candidates, else extraction raises.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Union

import torch.nn as nn

from .fixed import fixed_arch
from .graph import Model, ModelStatus
from .mutator import Mutator
from .nn.pytorch.api import Mutable, ValueChoice, normalize_candidate_value
from .wrapper import get_init_args, is_model_wrapper

__all__ = ['MutableInfo', 'extract_mutables', 'LabelMutator', 'mutators_for', 'python_model', 'instantiate', 'search_space_size']


@dataclasses.dataclass
class MutableInfo:
    """One choice of a search space: its ``label``, ``kind`` (``layer_choice``, ``input_choice``,
    ``value_choice`` or ``repeat``), ``candidates`` (export-dict values) and optional ``prior``."""

    label: str
    kind: str
    candidates: List[Any]
    prior: Optional[List[float]] = None


def _value_choices_in(obj: Any, found: List[ValueChoice]) -> None:
    if isinstance(obj, ValueChoice):
        found.append(obj)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _value_choices_in(item, found)
    elif isinstance(obj, dict):
        for item in obj.values():
            _value_choices_in(item, found)


def _mutables_of(module: nn.Module) -> List[Mutable]:
    result: List[Mutable] = []
    if isinstance(module, Mutable) and not getattr(module, 'fixed', False):
        if not (module.kind == 'repeat' and len(module.candidates) == 1):  # a fixed-depth Repeat is no choice
            result.append(module)
    init = get_init_args(module)
    if init is not None and not is_model_wrapper(module):
        found: List[ValueChoice] = []
        _value_choices_in((init[0], init[1]), found)
        result.extend(vc for vc in found if not vc.fixed)
    return result


def extract_mutables(model: nn.Module) -> Dict[str, MutableInfo]:
    """The choices of a model space: ``label -> MutableInfo``, in construction order, shared labels merged."""
    space: Dict[str, MutableInfo] = {}
    for _, module in model.named_modules():
        for mutable in _mutables_of(module):
            info = MutableInfo(mutable.label, mutable.kind, mutable.candidates, mutable.prior)
            known = space.get(info.label)
            if known is None:
                space[info.label] = info
                continue
            same = known.kind == info.kind and \
                [normalize_candidate_value(c) for c in known.candidates] == [normalize_candidate_value(c) for c in info.candidates]
            if not same:
                raise ValueError(f'label {info.label!r} is shared by a {known.kind} with candidates {known.candidates} and a '
                                 f'{info.kind} with candidates {info.candidates}; primitives sharing a label need the same kind and candidates')
    return space


def search_space_size(mutables: Dict[str, MutableInfo]) -> int:
    """Number of architectures: the product of the candidate counts."""
    size = 1
    for info in mutables.values():
        size *= len(info.candidates)
    return size


class LabelMutator(Mutator):
    """The mutator of one label of an inline model space: one ``choice`` over its candidates, written to ``model.sample``."""

    def __init__(self, mutable: MutableInfo):
        super().__init__(label=mutable.label)
        self.mutable = mutable

    def mutate(self, model: Model) -> None:
        model.sample[self.mutable.label] = self.choice(self.mutable.candidates)

    def __repr__(self) -> str:
        return f'LabelMutator(label={self.label!r}, kind={self.mutable.kind!r}, candidates={self.mutable.candidates!r})'


def mutators_for(model_or_mutables: Union[nn.Module, Dict[str, MutableInfo]]) -> List[LabelMutator]:
    """One :class:`LabelMutator` per label of the model space (or of an :func:`extract_mutables` result)."""
    mutables = model_or_mutables if isinstance(model_or_mutables, dict) else extract_mutables(model_or_mutables)
    return [LabelMutator(info) for info in mutables.values()]


def python_model(model_space: nn.Module) -> Model:
    """The frozen base :class:`Model` of the pure-python engine for a ``@model_wrapper`` model-space instance."""
    init = get_init_args(model_space)
    if init is None or not is_model_wrapper(model_space):
        raise ValueError(f'{type(model_space).__name__} is not a model space: decorate its class with @model_wrapper '
                         f'(the pure-python engine re-creates it from its init arguments)')
    model = Model(_internal=True)
    model.python_class = type(model_space)
    model.python_init_args, model.python_init_params = init
    model.status = ModelStatus.Frozen
    return model


def instantiate(model: Model, verbose: bool = False) -> nn.Module:
    """Re-create the chosen architecture of a pure-python :class:`Model` as a plain module."""
    if model.python_class is None:
        raise ValueError('instantiate: the model has no python_class; only pure-python engine models can be instantiated')
    with fixed_arch(model.sample, verbose=verbose):
        return model.python_class(*model.python_init_args, **model.python_init_params)
