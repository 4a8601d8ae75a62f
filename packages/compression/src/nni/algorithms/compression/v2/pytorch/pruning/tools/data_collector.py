"""Data collectors: the first stage of a v2 pruner (collect → metrics → sparsity allocation).

Trainer-based collectors patch ``optimizer.step`` or register forward hooks, call the user's
``trainer(model, optimizer, criterion)`` until enough data was seen, then restore everything.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Optional

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from ..basic_pruner import Pruner


class _CollectionDone(Exception):
    """Raised from a hook to stop the user's trainer once enough batches were seen."""


class DataCollector:
    """Base: ``collect()`` returns ``{layer_name: data}`` for every wrapped layer of ``pruner``."""

    def __init__(self, pruner: 'Pruner'):
        self.pruner = pruner

    def collect(self) -> Dict[str, object]:
        raise TypeError(f'{type(self).__name__} must implement collect()')


class WeightDataCollector(DataCollector):
    """The (masked) weight of every wrapped layer."""

    def collect(self) -> Dict[str, Tensor]:
        return {name: (w.module.weight.data * w.weight_mask).clone() for name, w in self.pruner.get_modules_wrapper().items()}


class TrainerBasedDataCollector(DataCollector):
    """Runs the user's trainer with optional ``optimizer.step`` and forward hooks.

    Args:
        before_step: called before each real optimizer step; may raise ``_CollectionDone``.
        forward_hooks: ``{layer_name: hook(module, inputs, output)}`` on the wrapped layers.
        training_epochs: run the trainer this many times; else run it until ``stop()`` is true.
    """

    def __init__(self, pruner, trainer: Callable, optimizer: torch.optim.Optimizer, criterion: Callable, *,
                 training_epochs: Optional[int] = None, before_step: Optional[Callable[[], None]] = None,
                 forward_hooks: Optional[Dict[str, Callable]] = None, batch_hook: Optional[Callable[[], None]] = None,
                 stop: Optional[Callable[[], bool]] = None):
        super().__init__(pruner)
        self.trainer, self.optimizer, self.criterion = trainer, optimizer, criterion
        self.training_epochs, self.before_step, self.forward_hooks = training_epochs, before_step, forward_hooks or {}
        self.batch_hook, self.stop = batch_hook, stop

    def run(self) -> None:
        model = self.pruner.bound_model
        was_training = model.training
        handles = []
        wrappers = self.pruner.get_modules_wrapper()
        for name, hook in self.forward_hooks.items():
            handles.append(wrappers[name].register_forward_hook(hook))
        if self.batch_hook is not None:
            handles.append(model.register_forward_hook(lambda *_: self.batch_hook()))
        original_step = self.optimizer.step
        if self.before_step is not None:
            def patched_step(*args, **kwargs):
                self.before_step()
                return original_step(*args, **kwargs)
            self.optimizer.step = patched_step
        try:
            if self.training_epochs is not None:
                for _ in range(self.training_epochs):
                    self.trainer(model, self.optimizer, self.criterion)
            else:
                while not self.stop():
                    marker = self._progress()
                    self.trainer(model, self.optimizer, self.criterion)
                    if self._progress() == marker:
                        raise ValueError('trainer: ran no batch through the model (or never called optimizer.step()); '
                                         'it must train or infer on at least one batch')
        except _CollectionDone:
            pass
        finally:
            if self.before_step is not None:
                del self.optimizer.step  # drop the instance attribute: the class method shows through again
            for h in handles:
                h.remove()
            model.train(was_training)

    def _progress(self):
        return getattr(self, 'progress', None)


class SlimDataCollector(TrainerBasedDataCollector):
    """Trains with an L1 penalty ``scale * |gamma|`` on the BatchNorm scaling factors, then returns them."""

    def __init__(self, pruner, trainer, optimizer, criterion, training_epochs: int, scale: float):
        super().__init__(pruner, trainer, optimizer, criterion, training_epochs=training_epochs, before_step=self._add_l1)
        self.scale = scale

    def _add_l1(self):
        for w in self.pruner.get_modules_wrapper().values():
            weight = w.module.weight
            if weight.grad is not None:
                weight.grad.data.add_(self.scale * torch.sign(weight.data))

    def collect(self) -> Dict[str, Tensor]:
        self.run()
        return WeightDataCollector(self.pruner).collect()


class ActivationDataCollector(TrainerBasedDataCollector):
    """Per output channel, sums ``activation(output)`` and its zero count over ``training_batches`` batches.

    Returns ``{layer: {'sum': Tensor, 'zeros': Tensor, 'count': int}}`` (count = values per channel seen).
    """

    def __init__(self, pruner, trainer, optimizer, criterion, training_batches: int, activation: Callable[[Tensor], Tensor]):
        self.data: Dict[str, Dict] = {}
        self.progress = 0
        self.training_batches = training_batches
        self.activation = activation
        hooks = {name: self._make_hook(name) for name in pruner.get_modules_wrapper()}
        super().__init__(pruner, trainer, optimizer, criterion, forward_hooks=hooks, batch_hook=self._count,
                         stop=lambda: self.progress >= self.training_batches)

    def _make_hook(self, name: str):
        def hook(module, inputs, output):
            with torch.no_grad():
                act = self.activation(output.detach())
                # Conv outputs are (N, C, ...); Linear outputs carry features in the last dim.
                channel_dim = act.dim() - 1 if isinstance(module.module, nn.Linear) else 1
                act = act.movedim(channel_dim, 0).reshape(act.shape[channel_dim], -1)
                d = self.data.setdefault(name, {'sum': torch.zeros(act.shape[0]), 'zeros': torch.zeros(act.shape[0]), 'count': 0})
                d['sum'] += act.sum(dim=1).cpu()
                d['zeros'] += (act == 0).sum(dim=1).float().cpu()
                d['count'] += act.shape[1]
        return hook

    def _count(self):
        self.progress += 1
        if self.progress >= self.training_batches:
            raise _CollectionDone()

    def collect(self) -> Dict[str, Dict]:
        self.run()
        return self.data


class TaylorFODataCollector(TrainerBasedDataCollector):
    """Accumulates ``(weight * grad) ** 2`` per weight element over ``training_batches`` optimizer steps."""

    def __init__(self, pruner, trainer, optimizer, criterion, training_batches: int):
        self.data: Dict[str, Tensor] = {}
        self.progress = 0
        self.training_batches = training_batches
        super().__init__(pruner, trainer, optimizer, criterion, before_step=self._accumulate,
                         stop=lambda: self.progress >= self.training_batches)

    def _accumulate(self):
        for name, w in self.pruner.get_modules_wrapper().items():
            weight = w.module.weight
            if weight.grad is None:
                continue
            value = (weight.data * weight.grad.data).pow(2).detach()
            self.data[name] = self.data[name] + value if name in self.data else value.clone()
        self.progress += 1
        if self.progress >= self.training_batches:
            raise _CollectionDone()

    def collect(self) -> Dict[str, Tensor]:
        self.run()
        for name, w in self.pruner.get_modules_wrapper().items():
            self.data.setdefault(name, torch.zeros_like(w.module.weight.data))
        return self.data


ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {'relu': torch.relu, 'relu6': nn.functional.relu6}

