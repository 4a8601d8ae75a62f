"""FBNet (Wu et al., CVPR 2019): block-wise differentiable NAS with Gumbel-softmax sampling and a latency-aware loss.

Every searched layer (``LayerChoice``) keeps all its candidate blocks side by side; a forward pass in training
weighs their outputs with a **Gumbel-softmax** sample of its architecture weights ``theta`` (temperature annealed
per epoch), so both the weights and ``theta`` train by gradient. After ``warmup_epochs`` that train only the
weights (the super-net pre-training), each step alternates an architecture step on one half of ``dataset`` and a
weight step on the other. The architecture loss is FBNet's ``CE * alpha * log(LAT)^beta``, with ``LAT`` the
expected latency of the sampled blocks (from a latency lookup table that ``latency_predictor`` fills once per
candidate, on the input the block really receives); here ``log(1 + LAT)``, so that predictors in any unit
(milliseconds, MFLOPs, < 1) give a positive, increasing factor. ``export()`` keeps the ``argmax theta`` block of
each layer: retrain ("fine-tune") it with :func:`nni.retiarii.fixed_arch`.

The docs describe FBNet under the NAS 1.0 API without its interface, as "to be migrated to Retiarii"; this is that
migration, on the shared one-shot infrastructure (the super-net of :mod:`.darts`, relaxed with Gumbel noise).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .darts import DartsInputChoice, DartsLayerChoice, DartsTrainer

__all__ = ['FBNetTrainer', 'FBNetLayerChoice', 'FBNetInputChoice']

_logger = logging.getLogger(__name__)


class _GumbelMixin:
    alpha: nn.Parameter
    training: bool
    #: Gumbel-softmax temperature, set by the trainer each epoch
    temperature: float = 5.0
    last_weights: Optional[torch.Tensor] = None

    def path_weights(self) -> torch.Tensor:
        if not self.training:
            return F.softmax(self.alpha, -1)
        weights = F.gumbel_softmax(self.alpha, tau=self.temperature, hard=False, dim=-1)
        # kept in architecture steps for the latency term: the expected latency of the very sample this pass used
        self.last_weights = weights if weights.requires_grad else None
        return weights


class FBNetLayerChoice(_GumbelMixin, DartsLayerChoice):
    """A LayerChoice whose candidate outputs are weighed by a Gumbel-softmax sample of ``alpha`` (``theta``).

    In eval mode the ``argmax`` block alone runs (the network that ``export`` describes). The first input seen is
    kept (batch size 1) to fill the latency lookup table.
    """

    def __init__(self, layer_choice: Any):
        super().__init__(layer_choice)
        self.example_inputs: Optional[Tuple[Any, ...]] = None

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.example_inputs is None:
            self.example_inputs = tuple(a[:1].detach().clone() if isinstance(a, torch.Tensor) else a for a in args)
        if not self.training:
            return list(self.op_choices.values())[int(torch.argmax(self.alpha))](*args, **kwargs)
        return super().forward(*args, **kwargs)


class FBNetInputChoice(_GumbelMixin, DartsInputChoice):
    """An InputChoice relaxed as in DARTS, with Gumbel-softmax weights in training."""


class FBNetTrainer(DartsTrainer):
    """FBNet trainer (see the module docstring).

    Args:
        model: the model space (choices are replaced in place).
        loss: ``loss(logits, target) -> Tensor`` (the ``CE`` of the FBNet loss).
        metrics: ``metrics(logits, target) -> dict`` of metric name -> value.
        optimizer: optimizer of the model weights.
        num_epochs: epochs to train, warm-up included.
        dataset: split in two halves, for the weights and for ``theta``.
        warmup_epochs: first epochs that train only the weights (super-net pre-training).
        batch_size, workers, device, log_frequency, grad_clip: as in ``DartsTrainer``.
        arc_learning_rate: Adam learning rate of ``theta`` (FBNet: 0.01, weight decay ``arc_weight_decay`` 5e-4).
        initial_temperature: Gumbel-softmax temperature of the first epoch (FBNet: 5.0).
        temperature_decay: factor applied to the temperature after each epoch (FBNet: ``exp(-0.045)``).
        latency_predictor: ``predictor(module, example_inputs) -> float`` for each candidate block
            (:class:`FlopsLatencyPredictor`, :class:`MeasuredLatencyPredictor`, a lookup table function ...);
            ``None``: no latency term (the architecture loss is ``loss``).
        alpha, beta: the latency term's factor and exponent (FBNet: 0.2, 0.6).
    """

    _layer_choice_cls = FBNetLayerChoice
    _input_choice_cls = FBNetInputChoice

    def __init__(self, model: nn.Module, loss: Callable[..., torch.Tensor], metrics: Callable[..., Dict[str, Any]],
                 optimizer: torch.optim.Optimizer, num_epochs: int, dataset: Any, warmup_epochs: int = 0,
                 batch_size: int = 64, workers: int = 4, device: Optional[torch.device] = None,
                 log_frequency: Optional[int] = None, grad_clip: float = 5., arc_learning_rate: float = 1e-2,
                 arc_weight_decay: float = 5e-4, initial_temperature: float = 5.0,
                 temperature_decay: float = math.exp(-0.045),
                 latency_predictor: Optional[Callable[[nn.Module, Tuple[Any, ...]], float]] = None,
                 alpha: float = 0.2, beta: float = 0.6):
        where = 'FBNetTrainer'
        if not isinstance(warmup_epochs, int) or isinstance(warmup_epochs, bool) or warmup_epochs < 0:
            raise ValueError(f'{where}: warmup_epochs must be an int >= 0, got {warmup_epochs!r}')
        if not (isinstance(initial_temperature, (int, float)) and initial_temperature > 0):
            raise ValueError(f'{where}: initial_temperature must be a number > 0, got {initial_temperature!r}')
        if not (isinstance(temperature_decay, (int, float)) and 0 < temperature_decay <= 1):
            raise ValueError(f'{where}: temperature_decay must be in (0, 1], got {temperature_decay!r}')
        if latency_predictor is not None and not callable(latency_predictor):
            raise ValueError(f'{where}: latency_predictor must be a callable (module, example_inputs) -> float, '
                             f'got {type(latency_predictor).__name__}')
        for name, value in (('alpha', alpha), ('beta', beta)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f'{where}: {name} must be a number > 0, got {value!r}')
        super().__init__(model, loss, metrics, optimizer, num_epochs, dataset, grad_clip=grad_clip,
                         batch_size=batch_size, workers=workers, device=device, log_frequency=log_frequency,
                         arc_learning_rate=arc_learning_rate, unrolled=False)
        self.ctrl_optim = torch.optim.Adam(list(self.arch_parameters.values()), arc_learning_rate,
                                           weight_decay=arc_weight_decay)
        self.warmup_epochs = warmup_epochs
        self.initial_temperature = float(initial_temperature)
        self.temperature_decay = float(temperature_decay)
        self.latency_predictor = latency_predictor
        self.latency_alpha, self.latency_beta = float(alpha), float(beta)
        self._latency_table: Optional[List[Tuple[nn.Parameter, torch.Tensor]]] = None
        self.set_temperature(self.initial_temperature)
        self._set_arch_grad(False)  # theta only learns in architecture steps

    def set_temperature(self, temperature: float) -> None:
        """Set the Gumbel-softmax temperature of every searched layer."""
        self.temperature = temperature
        for _, module in self.nas_modules:
            module.temperature = temperature

    def latency_table(self) -> List[Tuple[nn.Parameter, torch.Tensor]]:
        """``(theta, candidate latencies)`` per searched layer, predicted once on the input each block receives."""
        if self._latency_table is None:
            table, seen = [], set()
            for _, module in self.nas_modules:
                if not isinstance(module, FBNetLayerChoice) or module.example_inputs is None or id(module.alpha) in seen:
                    continue
                seen.add(id(module.alpha))  # layers sharing a label share one decision: counted once
                costs = [float(self.latency_predictor(op, module.example_inputs)) for op in module.op_choices.values()]
                if any(c < 0 or math.isnan(c) for c in costs):
                    raise ValueError(f'FBNetTrainer: latency_predictor returned {costs} for layer {module.name!r}; '
                                     f'latencies must be numbers >= 0')
                table.append((module.alpha, torch.tensor(costs, device=self.device)))
            self._latency_table = table
        return self._latency_table

    def expected_latency(self, weights: Optional[Dict[int, torch.Tensor]] = None) -> torch.Tensor:
        """``LAT``: the sum over layers of the candidates' latencies weighed by ``softmax(theta)`` (or by ``weights``)."""
        total = torch.zeros((), device=self.device)
        for theta, costs in self.latency_table():
            w = F.softmax(theta, -1) if weights is None or id(theta) not in weights else weights[id(theta)]
            total = total + (w * costs).sum()
        return total

    def latency_factor(self, latency: torch.Tensor) -> torch.Tensor:
        """FBNet's ``alpha * log(LAT)^beta``, as ``alpha * log(1 + LAT)^beta``."""
        return self.latency_alpha * torch.log1p(latency).clamp_min(1e-12) ** self.latency_beta

    def _arch_loss(self, X: Any, y: Any) -> Tuple[torch.Tensor, Dict[str, float]]:
        loss = self.loss(self.model(X), y)
        if self.latency_predictor is None:
            return loss, {}
        sampled: Dict[int, torch.Tensor] = {}
        for _, module in self.nas_modules:
            if isinstance(module, FBNetLayerChoice) and getattr(module, 'last_weights', None) is not None:
                sampled.setdefault(id(module.alpha), module.last_weights)
                module.last_weights = None
        latency = self.expected_latency(sampled)
        return loss * self.latency_factor(latency), {'expected_latency': float(latency.detach())}

    def _train_one_epoch(self, epoch: int) -> Dict[str, float]:
        from .utils import AverageMeterGroup, call_metrics, log_step, to_device
        self.model.train()
        meters = AverageMeterGroup()
        search = epoch >= self.warmup_epochs
        num_steps = min(len(self.train_loader), len(self.valid_loader))
        for step, ((trn_X, trn_y), (val_X, val_y)) in enumerate(zip(self.train_loader, self.valid_loader)):
            trn_X, trn_y = to_device(trn_X, self.device), to_device(trn_y, self.device)
            metrics: Dict[str, Any] = {}
            if search:
                val_X, val_y = to_device(val_X, self.device), to_device(val_y, self.device)
                self._set_arch_grad(True)
                self.ctrl_optim.zero_grad()
                arch_loss, extra = self._arch_loss(val_X, val_y)
                thetas = list(self.arch_parameters.values())
                grads = torch.autograd.grad(arch_loss, thetas, allow_unused=True)
                for theta, grad in zip(thetas, grads):
                    theta.grad = grad
                self.ctrl_optim.step()
                self._set_arch_grad(False)
                metrics.update(extra)

            self.optimizer.zero_grad()
            logits, loss = self._logits_and_loss(trn_X, trn_y)
            loss.backward()
            if self.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
            self.optimizer.step()
            metrics.update(call_metrics(self.metrics, logits.detach(), trn_y, 'FBNetTrainer'))
            metrics['loss'] = loss.item()
            meters.update(metrics, len(trn_y))
            log_step('FBNetTrainer', epoch, self.num_epochs, step, num_steps, meters, self.log_frequency)
        return meters.averages

    def fit(self) -> None:
        """Pre-train the super-net for ``warmup_epochs``, then search until ``num_epochs``, annealing the temperature
        after every search epoch; ``self.history`` keeps each epoch's averaged metrics (plus ``temperature``)."""
        self.history: List[Dict[str, float]] = []
        for epoch in range(self.num_epochs):
            averages = self._train_one_epoch(epoch)
            averages['temperature'] = self.temperature
            self.history.append(averages)
            _logger.info('FBNetTrainer epoch %d/%d: %s', epoch + 1, self.num_epochs, averages)
            if epoch >= self.warmup_epochs:
                self.set_temperature(self.temperature * self.temperature_decay)
