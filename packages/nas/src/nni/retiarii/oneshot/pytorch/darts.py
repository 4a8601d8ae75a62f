"""DARTS (Liu et al., ICLR 2019): continuous relaxation of the choices, architecture weights learnt by gradient."""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import BaseOneShotTrainer
from ...nn.pytorch.api import InputChoice, LayerChoice
from .utils import (AverageMeterGroup, _prepare_supernet, call_metrics, check_common_args, log_step, reduce_inputs,
                    split_loaders, to_device)

__all__ = ['DartsTrainer', 'DartsLayerChoice', 'DartsInputChoice']

_logger = logging.getLogger(__name__)


def _weighted_sum(weights: torch.Tensor, outputs: List[torch.Tensor]) -> torch.Tensor:
    """``sum_i weights_i * outputs[i]``, accumulated without stacking the outputs (less memory traffic)."""
    total = outputs[0] * weights[0]
    for i in range(1, len(outputs)):
        total = total + outputs[i] * weights[i]
    return total


class DartsLayerChoice(nn.Module):
    """A LayerChoice relaxed to the ``softmax(alpha)``-weighted sum of all its candidates' outputs."""

    def __init__(self, layer_choice: LayerChoice):
        super().__init__()
        self.name = layer_choice.label
        self.op_choices = nn.ModuleDict(OrderedDict((name, layer_choice[name]) for name in layer_choice.names))
        self.alpha = nn.Parameter(torch.randn(len(self.op_choices)) * 1e-3)

    def path_weights(self) -> torch.Tensor:
        """The weight of each candidate's output: ``softmax(alpha)`` (FBNet samples Gumbel-softmax weights)."""
        return F.softmax(self.alpha, -1)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _weighted_sum(self.path_weights(), [op(*args, **kwargs) for op in self.op_choices.values()])

    def export(self) -> str:
        """The candidate name with the largest architecture weight."""
        return list(self.op_choices)[int(torch.argmax(self.alpha))]


class DartsInputChoice(nn.Module):
    """An InputChoice relaxed to the ``softmax(alpha)``-weighted sum of its inputs.

    ``reduction='sum'`` scales the weighted mean by ``n_chosen`` so magnitudes match the chosen network.
    ``'concat'`` / ``'none'`` change the output shape with the choice and have no weighted form, except
    when every input is chosen (``n_chosen == n_candidates``).
    """

    def __init__(self, input_choice: InputChoice):
        super().__init__()
        self.name = input_choice.label
        self.n_candidates = input_choice.n_candidates
        self.n_chosen = input_choice.n_chosen
        self.reduction = input_choice.reduction
        self.choose_all = self.n_chosen == self.n_candidates
        if self.reduction in ('concat', 'none') and not self.choose_all:
            raise ValueError(f'InputChoice {self.name!r}: reduction {self.reduction!r} cannot be relaxed by differentiable '
                             f"one-shot trainers; use reduction 'sum' or 'mean' (or a sampling trainer: ENAS, SinglePath)")
        self.alpha = nn.Parameter(torch.randn(self.n_candidates) * 1e-3)

    def path_weights(self) -> torch.Tensor:
        return F.softmax(self.alpha, -1)

    def forward(self, inputs: List[torch.Tensor]) -> Any:
        if len(inputs) != self.n_candidates:
            raise ValueError(f'InputChoice {self.name!r}: forward got {len(inputs)} inputs, expected n_candidates={self.n_candidates}')
        if self.choose_all:
            return reduce_inputs(list(inputs), self.reduction)
        out = _weighted_sum(self.path_weights(), list(inputs))
        if self.reduction == 'sum' and self.n_chosen is not None:
            out = out * self.n_chosen
        return out

    def export(self) -> List[int]:
        """The ``n_chosen`` inputs with the largest weights (``n_chosen=None``: those weighted at least 1/n), sorted."""
        if self.choose_all:
            return list(range(self.n_candidates))
        if self.n_chosen is None:
            weights = F.softmax(self.alpha, -1)
            return [i for i in range(self.n_candidates) if float(weights[i]) >= 1.0 / self.n_candidates - 1e-12]
        return sorted(int(i) for i in torch.topk(self.alpha, self.n_chosen).indices)


class DartsTrainer(BaseOneShotTrainer):
    """DARTS trainer: alternate an architecture step on one half of ``dataset`` and a weight step on the other.

    Args:
        model: the model space (``LayerChoice`` / ``InputChoice`` are replaced in place by their relaxed forms).
        loss: ``loss(logits, target) -> Tensor``.
        metrics: ``metrics(logits, target) -> dict`` of metric name -> value.
        optimizer: optimizer of the model weights.
        num_epochs: epochs to train.
        dataset: split in two halves, for the weights and for the architecture weights.
        grad_clip: gradient-norm clipping of the weights (0 disables).
        learning_rate: the weight learning rate of the virtual step in the second-order (``unrolled``) update.
        batch_size: batch size of both loaders.
        workers: data-loading worker processes.
        device: ``torch.device``; ``None`` picks CUDA when available.
        log_frequency: steps between log lines (``None``: no per-step logs).
        arc_learning_rate: Adam learning rate of the architecture weights.
        unrolled: second-order (True) or first-order (False) approximation.
    """

    _layer_choice_cls: Any = DartsLayerChoice
    _input_choice_cls: Any = DartsInputChoice

    def __init__(self, model: nn.Module, loss: Callable[..., torch.Tensor], metrics: Callable[..., Dict[str, Any]],
                 optimizer: torch.optim.Optimizer, num_epochs: int, dataset: Any, grad_clip: float = 5.,
                 learning_rate: float = 2.5E-3, batch_size: int = 64, workers: int = 4,
                 device: Optional[torch.device] = None, log_frequency: Optional[int] = None,
                 arc_learning_rate: float = 3.0E-4, unrolled: bool = False):
        check_common_args('DartsTrainer', num_epochs, batch_size, log_frequency)
        self.model = model
        self.loss = loss
        self.metrics = metrics
        self.optimizer = optimizer
        self.num_epochs = num_epochs
        self.dataset = dataset
        self.grad_clip = grad_clip
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.workers = workers
        self.log_frequency = log_frequency
        self.unrolled = unrolled

        self.nas_modules, self.arch_parameters, self.device = _prepare_supernet(
            self.model, type(self).__name__, self._layer_choice_cls, self._input_choice_cls, device)
        alpha_ids = {id(p) for p in self.arch_parameters.values()}
        self.weights = [p for p in self.model.parameters() if id(p) not in alpha_ids]
        self.ctrl_optim = torch.optim.Adam(list(self.arch_parameters.values()), arc_learning_rate,
                                           betas=(0.5, 0.999), weight_decay=1.0E-3)
        self.train_loader, self.valid_loader = split_loaders(dataset, batch_size, workers)

    def _set_arch_grad(self, enabled: bool) -> None:
        # the weight step needs no gradient of the architecture weights
        for alpha in self.arch_parameters.values():
            alpha.requires_grad_(enabled)

    def _logits_and_loss(self, X: Any, y: Any) -> Tuple[Any, torch.Tensor]:
        logits = self.model(X)
        return logits, self.loss(logits, y)

    def _train_one_epoch(self, epoch: int) -> Dict[str, float]:
        self.model.train()
        meters = AverageMeterGroup()
        num_steps = min(len(self.train_loader), len(self.valid_loader))
        for step, ((trn_X, trn_y), (val_X, val_y)) in enumerate(zip(self.train_loader, self.valid_loader)):
            trn_X, trn_y = to_device(trn_X, self.device), to_device(trn_y, self.device)
            val_X, val_y = to_device(val_X, self.device), to_device(val_y, self.device)

            # architecture step (on the validation half)
            self.ctrl_optim.zero_grad()
            self._set_arch_grad(True)
            if self.unrolled:
                self._unrolled_backward(trn_X, trn_y, val_X, val_y)
            else:
                # gradients of the architecture weights only: no weight gradients are computed in this step
                alphas = list(self.arch_parameters.values())
                grads = torch.autograd.grad(self._logits_and_loss(val_X, val_y)[1], alphas, allow_unused=True)
                for alpha, grad in zip(alphas, grads):
                    alpha.grad = grad
            self.ctrl_optim.step()
            self._set_arch_grad(False)

            # weight step (on the training half)
            self.optimizer.zero_grad()
            logits, loss = self._logits_and_loss(trn_X, trn_y)
            loss.backward()
            if self.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
            self.optimizer.step()

            metrics = call_metrics(self.metrics, logits.detach(), trn_y, 'DartsTrainer')
            metrics['loss'] = loss.item()
            meters.update(metrics, len(trn_y))
            log_step('DartsTrainer', epoch, self.num_epochs, step, num_steps, meters, self.log_frequency)
        return meters.averages

    def _virtual_step(self, X: Any, y: Any) -> None:
        """``w <- w - lr * (momentum * buffer + dw + weight_decay * w)``: one SGD step, in place."""
        group = self.optimizer.param_groups[0]
        momentum, weight_decay = group.get('momentum', 0.0), group.get('weight_decay', 0.0)
        loss = self._logits_and_loss(X, y)[1]
        grads = torch.autograd.grad(loss, self.weights, allow_unused=True)
        with torch.no_grad():
            for w, g in zip(self.weights, grads):
                if g is None:
                    continue
                buffer = self.optimizer.state.get(w, {}).get('momentum_buffer')
                step = g + weight_decay * w
                if buffer is not None:
                    step = step + momentum * buffer
                w.sub_(self.learning_rate * step)

    def _unrolled_backward(self, trn_X: Any, trn_y: Any, val_X: Any, val_y: Any) -> None:
        """Second-order DARTS: ``grad_alpha L_val(w', alpha) - lr * hessian-vector product`` (finite differences)."""
        alphas = list(self.arch_parameters.values())
        backup = [w.detach().clone() for w in self.weights]
        self._virtual_step(trn_X, trn_y)
        loss = self._logits_and_loss(val_X, val_y)[1]
        grads = torch.autograd.grad(loss, alphas + self.weights, allow_unused=True)
        d_alphas = [torch.zeros_like(a) if g is None else g for a, g in zip(alphas, grads[:len(alphas)])]
        d_weights = [torch.zeros_like(w) if g is None else g for w, g in zip(self.weights, grads[len(alphas):])]
        with torch.no_grad():
            for w, b in zip(self.weights, backup):
                w.copy_(b)
        hessian = self._hessian_vector(trn_X, trn_y, d_weights)
        with torch.no_grad():
            for alpha, d_alpha, h in zip(alphas, d_alphas, hessian):
                alpha.grad = d_alpha - self.learning_rate * h

    def _hessian_vector(self, X: Any, y: Any, vector: List[torch.Tensor]) -> List[torch.Tensor]:
        """``(grad_alpha L(w + eps v) - grad_alpha L(w - eps v)) / (2 eps)`` with ``eps = 0.01 / |v|``."""
        alphas = list(self.arch_parameters.values())
        norm = torch.cat([v.reshape(-1) for v in vector]).norm()
        eps = 0.01 / max(float(norm), 1e-12)

        def grad_at(sign: float) -> List[torch.Tensor]:
            with torch.no_grad():
                for w, v in zip(self.weights, vector):
                    w.add_(sign * eps * v)
            loss = self._logits_and_loss(X, y)[1]
            grads = torch.autograd.grad(loss, alphas, allow_unused=True)
            return [torch.zeros_like(a) if g is None else g for a, g in zip(alphas, grads)]

        positive = grad_at(1.0)        # w + eps v
        negative = grad_at(-2.0)       # w - eps v
        with torch.no_grad():
            for w, v in zip(self.weights, vector):
                w.add_(eps * v)        # back to w
        return [(p - n) / (2 * eps) for p, n in zip(positive, negative)]

    def fit(self) -> None:
        """Train the super-net for ``num_epochs`` epochs (``self.history`` keeps each epoch's averaged metrics)."""
        self.history: List[Dict[str, float]] = []
        for epoch in range(self.num_epochs):
            self.history.append(self._train_one_epoch(epoch))
            _logger.info('DartsTrainer epoch %d/%d: %s', epoch + 1, self.num_epochs, self.history[-1])

    @torch.no_grad()
    def export(self) -> Dict[str, Any]:
        """The argmax-weight candidate of every LayerChoice and the top-weighted inputs of every InputChoice."""
        result: Dict[str, Any] = {}
        for name, module in self.nas_modules:
            if name not in result:
                result[name] = module.export()
        return result
