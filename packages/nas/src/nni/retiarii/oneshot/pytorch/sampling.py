"""Path-sampling forms of LayerChoice / InputChoice, used by the sampling trainers (ENAS, SinglePath)."""
from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from ...nn.pytorch.api import InputChoice, LayerChoice, _input_candidates
from .utils import reduce_inputs

__all__ = ['PathSamplingLayerChoice', 'PathSamplingInputChoice', 'search_space_of', 'apply_arch', 'check_arch']


class PathSamplingLayerChoice(nn.Module):
    """Runs only the candidate named by ``sampled`` (set by the trainer before each forward)."""

    def __init__(self, layer_choice: LayerChoice):
        super().__init__()
        self.name = layer_choice.label
        self.op_choices = nn.ModuleDict(OrderedDict((name, layer_choice[name]) for name in layer_choice.names))
        self.sampled: Optional[str] = None

    @property
    def candidates(self) -> List[str]:
        return list(self.op_choices)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.sampled is None:
            raise RuntimeError(f'LayerChoice {self.name!r}: no path sampled; the trainer sets one before the forward pass')
        return self.op_choices[self.sampled](*args, **kwargs)


class PathSamplingInputChoice(nn.Module):
    """Reduces only the inputs listed in ``sampled`` (sorted indices)."""

    def __init__(self, input_choice: InputChoice):
        super().__init__()
        self.name = input_choice.label
        self.n_candidates = input_choice.n_candidates
        self.n_chosen = input_choice.n_chosen
        self.reduction = input_choice.reduction
        self.sampled: Optional[List[int]] = None

    @property
    def candidates(self) -> List[List[int]]:
        return _input_candidates(self.n_candidates, self.n_chosen)

    def forward(self, inputs: List[torch.Tensor]) -> Any:
        if self.sampled is None:
            raise RuntimeError(f'InputChoice {self.name!r}: no path sampled; the trainer sets one before the forward pass')
        if len(inputs) != self.n_candidates:
            raise ValueError(f'InputChoice {self.name!r}: forward got {len(inputs)} inputs, expected n_candidates={self.n_candidates}')
        return reduce_inputs([inputs[i] for i in self.sampled], self.reduction)


def search_space_of(nas_modules: List[Tuple[str, nn.Module]]) -> 'OrderedDict[str, List[Any]]':
    """``label -> candidates`` (architecture-dict values) of the replaced modules, shared labels once."""
    space: 'OrderedDict[str, List[Any]]' = OrderedDict()
    for label, module in nas_modules:
        space.setdefault(label, module.candidates)
    return space


def check_arch(arch: Any, space: Dict[str, List[Any]], where: str) -> Dict[str, Any]:
    """Validate an architecture dict against ``space``; a one-line ValueError names the wrong label."""
    if not isinstance(arch, dict):
        raise ValueError(f'{where}: an architecture must be a dict label -> value, got {type(arch).__name__}')
    missing = [label for label in space if label not in arch]
    if missing:
        raise ValueError(f'{where}: the architecture has no value for label {missing[0]!r}; labels are {list(space)}')
    for label, candidates in space.items():
        value = arch[label]
        if isinstance(value, (list, tuple)):
            value = sorted(value)
        if value not in candidates:
            raise ValueError(f'{where}: {label!r} = {arch[label]!r} is not a candidate; allowed values are {candidates}')
    return {label: sorted(arch[label]) if isinstance(arch[label], (list, tuple)) else arch[label] for label in space}


def apply_arch(nas_modules: List[Tuple[str, nn.Module]], arch: Dict[str, Any]) -> None:
    """Set the sampled path of every replaced module from ``arch`` (label -> value)."""
    for label, module in nas_modules:
        module.sampled = arch[label]


def uniform_sample(space: Dict[str, List[Any]], rng: random.Random) -> Dict[str, Any]:
    """One uniformly random architecture of ``space``."""
    return {label: rng.choice(candidates) for label, candidates in space.items()}
