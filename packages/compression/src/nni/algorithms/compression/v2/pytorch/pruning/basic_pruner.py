"""v2 one-shot pruners: each is a data collector → metrics calculator → sparsity allocator pipeline."""
from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

from ._config import WEIGHTED_MODULES, LayerGroup, build_layer_groups, validate_config_list
from .tools.data_collector import (ACTIVATIONS, ActivationDataCollector, DataCollector, SlimDataCollector,
                                   TaylorFODataCollector, TrainerBasedDataCollector, WeightDataCollector)
from .tools.metrics_calculator import (APoZRankMetricsCalculator, DistMetricsCalculator, MeanRankMetricsCalculator,
                                       MetricsCalculator, NormMetricsCalculator)
from .tools.sparsity_allocator import (DependencyAwareAllocator, GlobalSparsityAllocator, SparsityAllocator,
                                       num_to_prune)

_logger = logging.getLogger(__name__)

Masks = Dict[str, Dict[str, Tensor]]


class PrunerModuleWrapper(nn.Module):
    """Wraps a pruned layer; ``weight_mask`` / ``bias_mask`` buffers are applied to the layer on every forward."""

    def __init__(self, module: nn.Module, module_name: str, config: Dict):
        super().__init__()
        self.module = module
        self.name = module_name
        self.config = config
        self.register_buffer('weight_mask', torch.ones_like(module.weight.data))
        bias = getattr(module, 'bias', None)
        self.register_buffer('bias_mask', torch.ones_like(bias.data) if isinstance(bias, torch.Tensor) else None)

    def forward(self, *inputs, **kwargs):
        # Re-zeroing in place (as NNI's wrappers do) keeps masked weights at zero through training steps too.
        self.module.weight.data.mul_(self.weight_mask)
        if self.bias_mask is not None:
            self.module.bias.data.mul_(self.bias_mask)
        return self.module(*inputs, **kwargs)


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition('.')
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)


class Pruner:
    """Base v2 pruner: wraps the configured layers of ``model`` and generates masks once per ``compress()``.

    ``model`` and ``config_list`` may be None; the pruning scheduler then sets them with ``reset()``.
    Subclasses set the class attributes and implement ``_build_tools()``.
    """
    allowed_keys = ('sparsity', 'sparsity_per_layer')
    default_op_types = WEIGHTED_MODULES
    supported_op_types: Optional[tuple] = None  # None: any layer with a weight
    modes = ('normal',)

    def __init__(self, model: Optional[nn.Module], config_list: Optional[List[Dict]], mode: str = 'normal',
                 dummy_input: Optional[Tensor] = None):
        if mode not in self.modes:
            raise ValueError(f'mode: {mode!r} is not supported by {type(self).__name__}; allowed: {", ".join(self.modes)}')
        if mode == 'dependency_aware' and dummy_input is None:
            raise ValueError(f"dummy_input: required by {type(self).__name__} in mode='dependency_aware' (to trace the model)")
        self.mode = mode
        self.dummy_input = dummy_input
        self.bound_model: Optional[nn.Module] = None
        self.config_list: Optional[List[Dict]] = None
        self.layer_groups: List[LayerGroup] = []
        self._wrappers: Dict[str, PrunerModuleWrapper] = {}
        self.data_collector: Optional[DataCollector] = None
        self.metrics_calculator: Optional[MetricsCalculator] = None
        self.sparsity_allocator: Optional[SparsityAllocator] = None
        if model is not None:
            self.reset(model, config_list)

    # -- model handling --------------------------------------------------------------------------
    def reset(self, model: nn.Module, config_list: List[Dict]) -> None:
        """Unwrap the previous model (if any), then validate ``config_list`` and wrap ``model``'s layers."""
        if config_list is None:
            raise ValueError(f'config_list: required by {type(self).__name__} when a model is given')
        self._unwrap_model()
        name = type(self).__name__
        self.config_list = validate_config_list(config_list, pruner_name=name, allowed_keys=self.allowed_keys,
                                                default_op_types=self.default_op_types,
                                                supported_op_types=self.supported_op_types)
        self.bound_model = model
        self.layer_groups = build_layer_groups(model, self.config_list, pruner_name=name,
                                               supported_op_types=self.supported_op_types)
        dependency_sets = self._dependency_sets() if self.mode == 'dependency_aware' else None
        configs = {n: g.config for g in self.layer_groups for n in g.names}
        self._wrappers = {n: PrunerModuleWrapper(model.get_submodule(n), n, c) for n, c in configs.items()}
        self._wrap_model()
        self._build_tools()
        if dependency_sets is not None:
            self.sparsity_allocator = DependencyAwareAllocator(self, 0, dependency_sets)

    def _dependency_sets(self):
        try:
            from nni.compression.pytorch.utils.shape_dependency import ChannelDependency
        except ImportError as err:
            raise ValueError(f"mode: 'dependency_aware' needs nni.compression.pytorch.utils.shape_dependency."
                             f"ChannelDependency, which is not available ({err}); use mode='normal'") from None
        dep = ChannelDependency(self.bound_model, self.dummy_input)
        return dep.dependency_sets

    def _wrap_model(self) -> None:
        for name, wrapper in self._wrappers.items():
            _set_submodule(self.bound_model, name, wrapper)

    def _unwrap_model(self) -> None:
        """Put the original layers back into the model (masks stay applied to the weights only if zeroed)."""
        if self.bound_model is None:
            return
        for name, wrapper in self._wrappers.items():
            _set_submodule(self.bound_model, name, wrapper.module)

    def get_modules_wrapper(self) -> Dict[str, PrunerModuleWrapper]:
        return self._wrappers

    # -- masks ---------------------------------------------------------------------------------
    def load_masks(self, masks: Masks) -> None:
        """Copy ``masks`` into the wrappers' buffers (layers not in ``masks`` keep theirs)."""
        for name, mask in masks.items():
            if name not in self._wrappers:
                raise ValueError(f'masks: layer {name!r} is not pruned by this pruner; pruned layers: {", ".join(self._wrappers)}')
            wrapper = self._wrappers[name]
            wrapper.weight_mask.copy_(mask['weight'])
            if mask.get('bias') is not None and wrapper.bias_mask is not None:
                wrapper.bias_mask.copy_(mask['bias'])

    def get_masks(self) -> Masks:
        out = {}
        for name, w in self._wrappers.items():
            out[name] = {'weight': w.weight_mask.clone()}
            if w.bias_mask is not None:
                out[name]['bias'] = w.bias_mask.clone()
        return out

    def compress(self):
        """Generate masks once and apply them. Returns ``(wrapped_model, masks)``."""
        if self.bound_model is None:
            raise ValueError(f'{type(self).__name__}: no model to compress; pass model and config_list or call reset()')
        self._refresh_data_collector()  # trainer-based collectors accumulate: start from scratch
        data = self.data_collector.collect()
        metrics = self.metrics_calculator.calculate_metrics(data)
        masks = self.sparsity_allocator.generate_sparsity(metrics)
        self.load_masks(masks)
        with torch.no_grad():
            for w in self._wrappers.values():  # zero the pruned weights now, not only at the next forward
                w.module.weight.data.mul_(w.weight_mask)
                if w.bias_mask is not None:
                    w.module.bias.data.mul_(w.bias_mask)
        return self.bound_model, masks

    def show_pruned_weights(self, dim: int = 0) -> List[str]:
        """Log and return, per pruned layer, how many blocks of ``dim`` are left (``name: kept/total``)."""
        lines = []
        for name, w in self._wrappers.items():
            mask = w.weight_mask.movedim(dim, 0)
            kept = int((mask.reshape(mask.shape[0], -1).sum(dim=1) != 0).sum())
            lines.append(f'simulated prune {name} remain/total: {kept}/{mask.shape[0]}')
            _logger.info(lines[-1])
        return lines

    def export_model(self, model_path: str, mask_path: Optional[str] = None) -> None:
        """Save the unwrapped model's state dict (pruned weights zeroed) and, optionally, the masks."""
        self._unwrap_model()
        try:
            torch.save(self.bound_model.state_dict(), model_path)
        finally:
            self._wrap_model()
        if mask_path is not None:
            torch.save(self.get_masks(), mask_path)

    def _refresh_data_collector(self) -> None:
        pass

    def _build_tools(self) -> None:
        raise TypeError(f'{type(self).__name__} must implement _build_tools()')


class LevelPruner(Pruner):
    """Fine-grained (magnitude) pruning: masks the ``int(numel * sparsity)`` weights of smallest |w| per layer."""

    def __init__(self, model: Optional[nn.Module], config_list: Optional[List[Dict]]):
        super().__init__(model, config_list)

    def _build_tools(self):
        self.data_collector = WeightDataCollector(self)
        self.metrics_calculator = NormMetricsCalculator(dim=None)
        self.sparsity_allocator = SparsityAllocator(self, dim=None)


class _NormPruner(Pruner):
    supported_op_types = ('Conv2d', 'Linear')
    default_op_types = ('Conv2d', 'Linear')
    modes = ('normal', 'dependency_aware')
    p: float = 1

    def __init__(self, model: Optional[nn.Module], config_list: Optional[List[Dict]], mode: str = 'normal',
                 dummy_input: Optional[Tensor] = None):
        super().__init__(model, config_list, mode, dummy_input)

    def _build_tools(self):
        self.data_collector = WeightDataCollector(self)
        self.metrics_calculator = NormMetricsCalculator(p=self.p, dim=0)
        self.sparsity_allocator = SparsityAllocator(self, dim=0)


class L1NormPruner(_NormPruner):
    """Prunes the filters (Conv2d) / rows (Linear) of smallest L1 norm; whole filters and their biases are masked."""
    p = 1


class L2NormPruner(_NormPruner):
    """Like :class:`L1NormPruner` with the L2 norm."""
    p = 2


class FPGMPruner(_NormPruner):
    """Prunes the filters nearest the geometric median of the layer's filters (most replaceable)."""

    def _build_tools(self):
        self.data_collector = WeightDataCollector(self)
        self.metrics_calculator = DistMetricsCalculator(p=2, dim=0)
        self.sparsity_allocator = SparsityAllocator(self, dim=0)


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name}: must be a positive integer, got {value!r}')
    return value


def _check_training(trainer, optimizer, criterion):
    if not callable(trainer):
        raise ValueError('trainer: must be a callable trainer(model, optimizer, criterion)')
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f'optimizer: must be a torch.optim.Optimizer, got {type(optimizer).__name__}')
    if not callable(criterion):
        raise ValueError('criterion: must be a callable criterion(output, target) -> loss')


class SlimPruner(Pruner):
    """Network slimming: trains with an L1 penalty on BatchNorm2d scaling factors, prunes the smallest channels.

    ``mode='global'`` (default) ranks all layers of a ``total_sparsity`` config together.
    """
    allowed_keys = ('sparsity', 'sparsity_per_layer', 'total_sparsity', 'max_sparsity_per_layer')
    supported_op_types = ('BatchNorm2d',)
    default_op_types = ('BatchNorm2d',)
    modes = ('normal', 'global')

    def __init__(self, model: Optional[nn.Module], config_list: Optional[List[Dict]], trainer: Callable,
                 optimizer: torch.optim.Optimizer, criterion: Callable, training_epochs: int, scale: float = 0.0001,
                 mode: str = 'global'):
        _check_training(trainer, optimizer, criterion)
        self.trainer, self.optimizer, self.criterion = trainer, optimizer, criterion
        self.training_epochs = _check_positive_int('training_epochs', training_epochs)
        self.scale = scale
        super().__init__(model, config_list, mode)

    def _build_tools(self):
        self.data_collector = SlimDataCollector(self, self.trainer, self.optimizer, self.criterion,
                                                self.training_epochs, self.scale)
        self.metrics_calculator = NormMetricsCalculator(p=1, dim=0)
        allocator = GlobalSparsityAllocator if self.mode == 'global' else SparsityAllocator
        self.sparsity_allocator = allocator(self, dim=0)


class _ActivationPruner(Pruner):
    supported_op_types = ('Conv2d', 'Linear')
    default_op_types = ('Conv2d', 'Linear')
    modes = ('normal', 'dependency_aware')

    def __init__(self, model: Optional[nn.Module], config_list: Optional[List[Dict]], trainer: Callable,
                 optimizer: torch.optim.Optimizer, criterion: Callable, training_batches: int,
                 activation: str = 'relu', mode: str = 'normal', dummy_input: Optional[Tensor] = None):
        _check_training(trainer, optimizer, criterion)
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation: {activation!r} is not supported; allowed: {", ".join(ACTIVATIONS)}')
        self.trainer, self.optimizer, self.criterion = trainer, optimizer, criterion
        self.training_batches = _check_positive_int('training_batches', training_batches)
        self.activation = activation
        super().__init__(model, config_list, mode, dummy_input)

    def _build_tools(self):
        self.data_collector = ActivationDataCollector(self, self.trainer, self.optimizer, self.criterion,
                                                      self.training_batches, ACTIVATIONS[self.activation])
        self.metrics_calculator = self._calculator()
        self.sparsity_allocator = SparsityAllocator(self, dim=0)

    def _refresh_data_collector(self):
        self.data_collector = ActivationDataCollector(self, self.trainer, self.optimizer, self.criterion,
                                                      self.training_batches, ACTIVATIONS[self.activation])


class ActivationAPoZRankPruner(_ActivationPruner):
    """Prunes the output channels whose activations are most often zero (highest APoZ)."""

    def _calculator(self):
        return APoZRankMetricsCalculator()


class ActivationMeanRankPruner(_ActivationPruner):
    """Prunes the output channels of smallest mean activation."""

    def _calculator(self):
        return MeanRankMetricsCalculator()


class TaylorFOWeightPruner(Pruner):
    """Prunes the filters of smallest first-order Taylor importance ``sum((w * g) ** 2)`` over ``training_batches``."""
    allowed_keys = ('sparsity', 'sparsity_per_layer', 'total_sparsity', 'max_sparsity_per_layer')
    supported_op_types = ('Conv2d', 'Linear')
    default_op_types = ('Conv2d', 'Linear')
    modes = ('normal', 'dependency_aware', 'global')

    def __init__(self, model: Optional[nn.Module], config_list: Optional[List[Dict]], trainer: Callable,
                 optimizer: torch.optim.Optimizer, criterion: Callable, training_batches: int, mode: str = 'normal',
                 dummy_input: Optional[Tensor] = None):
        _check_training(trainer, optimizer, criterion)
        self.trainer, self.optimizer, self.criterion = trainer, optimizer, criterion
        self.training_batches = _check_positive_int('training_batches', training_batches)
        super().__init__(model, config_list, mode, dummy_input)

    def _build_tools(self):
        self.data_collector = TaylorFODataCollector(self, self.trainer, self.optimizer, self.criterion,
                                                    self.training_batches)
        self.metrics_calculator = NormMetricsCalculator(p=1, dim=0)
        allocator = GlobalSparsityAllocator if self.mode == 'global' else SparsityAllocator
        self.sparsity_allocator = allocator(self, dim=0)

    def _refresh_data_collector(self):
        self.data_collector = TaylorFODataCollector(self, self.trainer, self.optimizer, self.criterion,
                                                    self.training_batches)


class ADMMPruner(Pruner):
    """ADMM: ``iterations`` rounds of training with the penalty ``rho/2 * ||W - Z + U||²``, where Z is W + U
    projected onto the configured sparsity (smallest |.| zeroed); the final fine-grained mask keeps the
    largest |W| (per layer, as :class:`LevelPruner`). ``rho`` defaults to 1e-4 per config."""
    allowed_keys = ('sparsity', 'sparsity_per_layer', 'rho')

    def __init__(self, model: Optional[nn.Module], config_list: Optional[List[Dict]], trainer: Callable,
                 optimizer: torch.optim.Optimizer, criterion: Callable, iterations: int, training_epochs: int):
        _check_training(trainer, optimizer, criterion)
        self.trainer, self.optimizer, self.criterion = trainer, optimizer, criterion
        self.iterations = _check_positive_int('iterations', iterations)
        self.training_epochs = _check_positive_int('training_epochs', training_epochs)
        super().__init__(model, config_list)

    def _build_tools(self):
        self.data_collector = WeightDataCollector(self)
        self.metrics_calculator = NormMetricsCalculator(dim=None)
        self.sparsity_allocator = SparsityAllocator(self, dim=None)

    def _project(self, weight: Tensor, sparsity: float) -> Tensor:
        flat = weight.reshape(-1)
        z = flat.clone()
        z[torch.argsort(flat.abs(), stable=True)[:num_to_prune(flat.numel(), sparsity)]] = 0
        return z.reshape(weight.shape)

    def compress(self):
        if self.bound_model is None:
            raise ValueError('ADMMPruner: no model to compress; pass model and config_list or call reset()')
        sparsity = {n: g.sparsity for g in self.layer_groups for n in g.names}
        rho = {n: g.config.get('rho', 1e-4) for g in self.layer_groups for n in g.names}
        weights = {n: w.module.weight for n, w in self._wrappers.items()}
        Z = {n: self._project(weights[n].data, sparsity[n]) for n in weights}
        U = {n: torch.zeros_like(weights[n].data) for n in weights}

        def add_penalty():
            for n, w in weights.items():
                if w.grad is not None:
                    w.grad.data.add_(rho[n] * (w.data - Z[n] + U[n]))

        for _ in range(self.iterations):
            TrainerBasedDataCollector(self, self.trainer, self.optimizer, self.criterion,
                                      training_epochs=self.training_epochs, before_step=add_penalty).run()
            for n, w in weights.items():
                Z[n] = self._project(w.data + U[n], sparsity[n])
                U[n] = U[n] + w.data - Z[n]
        return super().compress()
