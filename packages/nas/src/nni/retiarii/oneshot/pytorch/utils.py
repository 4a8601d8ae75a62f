"""Helpers shared by the one-shot trainers: module replacement, data loaders, metric averaging."""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler

from ...nn.pytorch.api import InputChoice, LayerChoice, Mutable
from ...space import extract_mutables

__all__ = ['replace_layer_choice', 'replace_input_choice', 'check_supported', 'AverageMeterGroup',
           'to_device', 'split_loaders', 'resolve_device', 'reduce_inputs', 'share_by_label']

_logger = logging.getLogger(__name__)

NasModules = List[Tuple[str, nn.Module]]


def _replace(root: nn.Module, kind: Type[Mutable], init_fn: Callable[[Any], nn.Module],
             modules: NasModules, memo: Dict[int, nn.Module]) -> None:
    for name, child in list(root.named_children()):
        if isinstance(child, kind):
            if id(child) not in memo:  # one module registered at two places gets one replacement
                memo[id(child)] = init_fn(child)
                modules.append((child.label, memo[id(child)]))
            setattr(root, name, memo[id(child)])
            child = memo[id(child)]
        _replace(child, kind, init_fn, modules, memo)


def replace_layer_choice(root_module: nn.Module, init_fn: Callable[[LayerChoice], nn.Module],
                         modules: Optional[NasModules] = None) -> NasModules:
    """Replace every ``LayerChoice`` below ``root_module`` by ``init_fn(layer_choice)``, in place.

    Args:
        root_module: the model (space) to modify.
        init_fn: builds the replacement from the LayerChoice (e.g. a class taking it).
        modules: a list to append ``(label, replacement)`` pairs to (a new list if ``None``).

    Returns:
        ``modules``, with one ``(label, replacement)`` per replaced LayerChoice, in model order.
    """
    if isinstance(root_module, LayerChoice):
        raise ValueError('replace_layer_choice: root_module is itself a LayerChoice; wrap it in a model')
    modules = [] if modules is None else modules
    _replace(root_module, LayerChoice, init_fn, modules, {})
    return modules


def replace_input_choice(root_module: nn.Module, init_fn: Callable[[InputChoice], nn.Module],
                         modules: Optional[NasModules] = None) -> NasModules:
    """Replace every ``InputChoice`` below ``root_module`` by ``init_fn(input_choice)``; as :func:`replace_layer_choice`."""
    if isinstance(root_module, InputChoice):
        raise ValueError('replace_input_choice: root_module is itself an InputChoice; wrap it in a model')
    modules = [] if modules is None else modules
    _replace(root_module, InputChoice, init_fn, modules, {})
    return modules


def check_supported(model: nn.Module, trainer: str) -> None:
    """Raise a one-line ValueError if the model space has choices a one-shot trainer cannot relax.

    One-shot trainers handle ``LayerChoice`` and ``InputChoice`` (and the cells built of them);
    ``ValueChoice`` and ranged ``Repeat`` change tensor shapes or depth and have no super-net form here.
    """
    for info in extract_mutables(model).values():
        if info.kind == 'value_choice':
            raise ValueError(f'{trainer}: ValueChoice {info.label!r} is not supported by one-shot trainers; '
                             f'only LayerChoice and InputChoice can be searched (write the alternatives as a LayerChoice)')
        if info.kind == 'repeat':
            raise ValueError(f'{trainer}: Repeat {info.label!r} with a depth range is not supported by one-shot trainers; '
                             f'use a fixed depth, or a LayerChoice over nn.Identity() for optional blocks')
    if not any(isinstance(m, (LayerChoice, InputChoice)) for m in model.modules()):
        raise ValueError(f'{trainer}: the model has no LayerChoice or InputChoice to search')


def share_by_label(nas_modules: NasModules, attribute: str = 'alpha') -> 'OrderedDict[str, nn.Parameter]':
    """Make modules with the same label use one parameter ``attribute``; return ``label -> parameter``."""
    shared: 'OrderedDict[str, nn.Parameter]' = OrderedDict()
    for label, module in nas_modules:
        if label in shared:
            setattr(module, attribute, shared[label])
        else:
            shared[label] = getattr(module, attribute)
    return shared


def _prepare_supernet(model: nn.Module, trainer: str, layer_choice_cls: Callable[[LayerChoice], nn.Module],
                      input_choice_cls: Callable[[InputChoice], nn.Module], device: Optional[torch.device] = None,
                      share_attribute: Optional[str] = 'alpha') -> Tuple[NasModules, 'OrderedDict[str, nn.Parameter]', torch.device]:
    """The super-net set-up every one-shot trainer does, in place on ``model``.

    Checks the space (:func:`check_supported`), replaces its LayerChoices / InputChoices by
    ``layer_choice_cls(choice)`` / ``input_choice_cls(choice)``, makes the replacements sharing a label share
    their ``share_attribute`` parameter (none when ``None``) and moves the model to ``device`` (``None``: CUDA
    when available).

    Returns:
        ``(nas_modules, shared_parameters, device)``: the ``(label, replacement)`` pairs in model order,
        ``label -> parameter`` (empty without ``share_attribute``) and the resolved device.
    """
    check_supported(model, trainer)
    nas_modules: NasModules = []
    replace_layer_choice(model, layer_choice_cls, nas_modules)
    replace_input_choice(model, input_choice_cls, nas_modules)
    shared = share_by_label(nas_modules, share_attribute) if share_attribute else OrderedDict()
    resolved = resolve_device(device)
    model.to(resolved)
    return nas_modules, shared, resolved


def reduce_inputs(tensors: List[torch.Tensor], reduction: str) -> Any:
    """Reduce chosen inputs as ``InputChoice`` does (``none``, ``sum``, ``mean``, ``concat`` along dim 1)."""
    if reduction == 'none':
        return tensors
    if reduction == 'concat':
        return torch.cat(tensors, dim=1)
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total / len(tensors) if reduction == 'mean' else total


def resolve_device(device: Optional[torch.device]) -> torch.device:
    """``device``, or CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')


def to_device(obj: Any, device: torch.device) -> Any:
    """Move a tensor, or the tensors of a (nested) list / tuple / dict, to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def split_loaders(dataset: Dataset, batch_size: int, workers: int) -> Tuple[DataLoader, DataLoader]:
    """Split ``dataset`` in two halves (weights / architecture), each a shuffled loader."""
    n = len(dataset)  # type: ignore[arg-type]
    if n < 2:
        raise ValueError(f'dataset: has {n} samples; one-shot trainers split it in two halves and need at least 2')
    split = n // 2
    indices = list(range(n))
    train = DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(indices[:split]), num_workers=workers)
    valid = DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(indices[split:]), num_workers=workers)
    return train, valid


def check_common_args(trainer: str, num_epochs: Any, batch_size: Any, log_frequency: Any) -> None:
    for name, value, low in (('num_epochs', num_epochs, 0), ('batch_size', batch_size, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f'{trainer}: {name} must be an int >= {low}, got {value!r}')
    if log_frequency is not None and (not isinstance(log_frequency, int) or log_frequency < 1):
        raise ValueError(f'{trainer}: log_frequency must be None or a positive int, got {log_frequency!r}')


class AverageMeterGroup:
    """Running averages of the metric dicts of one epoch."""

    def __init__(self) -> None:
        self.sums: Dict[str, float] = {}
        self.counts: Dict[str, int] = {}

    def update(self, metrics: Dict[str, Any], n: int = 1) -> None:
        for key, value in metrics.items():
            value = float(value.item() if isinstance(value, torch.Tensor) else value)
            self.sums[key] = self.sums.get(key, 0.0) + value * n
            self.counts[key] = self.counts.get(key, 0) + n

    @property
    def averages(self) -> Dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def __str__(self) -> str:
        return '  '.join(f'{k} {v:.4f}' for k, v in self.averages.items())


def call_metrics(metrics: Callable[..., Any], logits: Any, target: Any, trainer: str) -> Dict[str, Any]:
    """``metrics(logits, target)``, checked to be a dict."""
    result = metrics(logits, target)
    if not isinstance(result, dict):
        raise ValueError(f'{trainer}: metrics must return a dict of metric name -> value, got {type(result).__name__}')
    return result


def log_step(trainer: str, epoch: int, num_epochs: int, step: int, num_steps: int, meters: AverageMeterGroup,
             log_frequency: Optional[int]) -> None:
    if log_frequency is not None and (step % log_frequency == 0 or step + 1 == num_steps):
        _logger.info('%s epoch [%d/%d] step [%d/%d]  %s', trainer, epoch + 1, num_epochs, step + 1, num_steps, meters)
