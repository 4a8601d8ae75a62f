"""ProxylessNAS (Cai et al., ICLR 2019): binarized path sampling with gradient-trained architecture weights,
plus an expected-latency loss from a pluggable latency predictor."""
from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import BaseOneShotTrainer
from ...nn.pytorch.api import InputChoice, LayerChoice
from .utils import (AverageMeterGroup, _prepare_supernet, call_metrics, check_common_args, log_step, reduce_inputs,
                    split_loaders, to_device)

__all__ = ['ProxylessTrainer', 'ProxylessNasTrainer', 'ProxylessLayerChoice', 'ProxylessInputChoice']

_logger = logging.getLogger(__name__)


def _gate_term(alpha: torch.Tensor, outputs: List[torch.Tensor]) -> torch.Tensor:
    """Zero-valued term whose gradient w.r.t. ``alpha`` is ProxylessNAS's binary-gate gradient.

    With one-hot gates ``g`` sampled from ``p = softmax(alpha)``, ProxylessNAS uses
    ``dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i)`` and ``dL/dg_j = <dL/dout, o_j(x)>``; that is the softmax
    Jacobian applied to ``<dL/dout, o_j>``, i.e. the gradient of ``sum_j p_j * o_j.detach()``.
    """
    probs = F.softmax(alpha, -1)
    probs = probs - probs.detach()
    term = probs[0] * outputs[0]
    for i in range(1, len(outputs)):
        term = term + probs[i] * outputs[i]
    return term


class ProxylessLayerChoice(nn.Module):
    """Runs one candidate sampled from ``softmax(alpha)`` (the argmax in eval mode).

    When ``alpha`` requires grad (the architecture step), the other candidates are also run without
    gradient to form the binary-gate gradient of ``alpha`` (ProxylessNAS's ``full_v2`` mode).
    """

    def __init__(self, layer_choice: LayerChoice):
        super().__init__()
        self.name = layer_choice.label
        self.op_choices = nn.ModuleDict(OrderedDict((name, layer_choice[name]) for name in layer_choice.names))
        self.alpha = nn.Parameter(torch.randn(len(self.op_choices)) * 1e-3)
        self.example_inputs: Optional[Tuple[Any, ...]] = None
        self.sampled: Optional[int] = None
        # 'full_v2': the other candidates re-run without gradient for the gate gradient; 'full': with gradient
        # (more memory, same result); 'two': only two candidates sampled, the gradient restricted to them
        self.binary_mode = 'full_v2'

    def forward(self, *args: Any) -> Any:
        if self.example_inputs is None:  # one sample of the real input, for the latency predictor
            self.example_inputs = tuple(a[:1].detach().clone() if isinstance(a, torch.Tensor) else a for a in args)
        ops = list(self.op_choices.values())
        if not self.training:
            return ops[int(torch.argmax(self.alpha))](*args)
        arch_step = self.alpha.requires_grad and torch.is_grad_enabled()
        probs = F.softmax(self.alpha.detach(), -1)
        if self.binary_mode == 'two' and len(ops) > 1:
            pair = torch.multinomial(probs, 2, replacement=False)
            index = int(pair[torch.multinomial(F.softmax(self.alpha.detach()[pair], -1), 1)])
        else:
            pair, index = None, int(torch.multinomial(probs, 1))
        self.sampled = index
        out = ops[index](*args)
        if arch_step:
            if pair is not None:
                with torch.no_grad():
                    outputs = [ops[int(i)](*args) for i in pair]
                out = out + _gate_term(self.alpha[pair], outputs)
            elif self.binary_mode == 'full':
                out = out + _gate_term(self.alpha, [op(*args) for op in ops])
            else:
                with torch.no_grad():
                    outputs = [op(*args) for op in ops]
                out = out + _gate_term(self.alpha, outputs)
        return out

    def export(self) -> str:
        return list(self.op_choices)[int(torch.argmax(self.alpha))]


class ProxylessInputChoice(nn.Module):
    """An InputChoice with ``n_chosen=1`` (or all inputs) as a sampled binary gate over its inputs."""

    def __init__(self, input_choice: InputChoice):
        super().__init__()
        self.name = input_choice.label
        self.n_candidates = input_choice.n_candidates
        self.reduction = input_choice.reduction
        self.choose_all = input_choice.n_chosen == input_choice.n_candidates
        if input_choice.n_chosen != 1 and not self.choose_all:
            raise ValueError(f'InputChoice {self.name!r}: n_chosen={input_choice.n_chosen!r} is not supported by ProxylessTrainer; '
                             f'it samples one input (n_chosen=1)')
        self.alpha = nn.Parameter(torch.randn(self.n_candidates) * 1e-3)

    def forward(self, inputs: List[torch.Tensor]) -> Any:
        if len(inputs) != self.n_candidates:
            raise ValueError(f'InputChoice {self.name!r}: forward got {len(inputs)} inputs, expected n_candidates={self.n_candidates}')
        if self.choose_all:
            return reduce_inputs(list(inputs), self.reduction)
        if not self.training:
            return reduce_inputs([inputs[int(torch.argmax(self.alpha))]], self.reduction)
        index = int(torch.multinomial(F.softmax(self.alpha.detach(), -1), 1))
        chosen = inputs[index]
        if self.alpha.requires_grad and torch.is_grad_enabled():
            chosen = chosen + _gate_term(self.alpha, [t.detach() for t in inputs])
        return reduce_inputs([chosen], self.reduction)

    def export(self) -> List[int]:
        if self.choose_all:
            return list(range(self.n_candidates))
        return [int(torch.argmax(self.alpha))]


class ProxylessTrainer(BaseOneShotTrainer):
    """ProxylessNAS trainer (gradient version): alternate architecture and weight steps on two halves of ``dataset``.

    Args:
        model: the model space (choices are replaced in place).
        loss: ``loss(logits, target) -> Tensor``.
        metrics: ``metrics(logits, target) -> dict``.
        optimizer: optimizer of the model weights.
        num_epochs: epochs to train (warm-up included).
        dataset: split in two halves, for the weights and for the architecture weights.
        warmup_epochs: first epochs that train only the weights (paths sampled from the initial, near-uniform weights).
        batch_size, workers, device, log_frequency: as in ``DartsTrainer``.
        arc_learning_rate: Adam learning rate of the architecture weights.
        latency_predictor: ``predictor(module, example_inputs) -> float`` (e.g. :class:`FlopsLatencyPredictor`,
            :class:`MeasuredLatencyPredictor`); ``None`` searches without a latency loss.
        latency_weight: weight of the expected-latency loss, which is the expected latency of all
            LayerChoices under ``softmax(alpha)`` divided by its value under uniform weights (unit-free).
    """

    def __init__(self, model: nn.Module, loss: Callable[..., torch.Tensor], metrics: Callable[..., Dict[str, Any]],
                 optimizer: torch.optim.Optimizer, num_epochs: int, dataset: Any, warmup_epochs: int = 0,
                 batch_size: int = 64, workers: int = 4, device: Optional[torch.device] = None,
                 log_frequency: Optional[int] = None, arc_learning_rate: float = 1.0E-3,
                 latency_predictor: Optional[Callable[[nn.Module, Tuple[Any, ...]], float]] = None,
                 latency_weight: float = 0.1):
        check_common_args('ProxylessTrainer', num_epochs, batch_size, log_frequency)
        if not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f'ProxylessTrainer: warmup_epochs must be an int >= 0, got {warmup_epochs!r}')
        if latency_predictor is not None and not callable(latency_predictor):
            raise ValueError(f'ProxylessTrainer: latency_predictor must be a callable (module, example_inputs) -> float, '
                             f'got {type(latency_predictor).__name__}')
        self.model = model
        self.loss = loss
        self.metrics = metrics
        self.optimizer = optimizer
        self.num_epochs = num_epochs
        self.warmup_epochs = warmup_epochs
        self.log_frequency = log_frequency
        self.latency_predictor = latency_predictor
        self.latency_weight = latency_weight
        self.nas_modules, self.arch_parameters, self.device = _prepare_supernet(
            self.model, 'ProxylessTrainer', ProxylessLayerChoice, ProxylessInputChoice, device)
        self.ctrl_optim = torch.optim.Adam(list(self.arch_parameters.values()), arc_learning_rate,
                                           betas=(0.0, 0.999), eps=1e-8)
        self.train_loader, self.valid_loader = split_loaders(dataset, batch_size, workers)
        self._latency_table: Optional[List[Tuple[nn.Parameter, torch.Tensor]]] = None
        self._uniform_latency = 1.0
        self.arch_disable_grad()

    def arch_requires_grad(self) -> None:
        """Let the architecture weights receive gradients (and the layer choices form the gate gradient)."""
        for alpha in self.arch_parameters.values():
            alpha.requires_grad_(True)

    def arch_disable_grad(self) -> None:
        for alpha in self.arch_parameters.values():
            alpha.requires_grad_(False)

    def latency_table(self) -> List[Tuple[nn.Parameter, torch.Tensor]]:
        """``(alpha, candidate latencies)`` per LayerChoice module, predicted once on its recorded input."""
        if self._latency_table is None:
            table = []
            for _, module in self.nas_modules:
                if not isinstance(module, ProxylessLayerChoice) or module.example_inputs is None:
                    continue
                costs = [float(self.latency_predictor(op, module.example_inputs)) for op in module.op_choices.values()]
                table.append((module.alpha, torch.tensor(costs, device=self.device)))
            self._latency_table = table
            self._uniform_latency = sum(float(costs.mean()) for _, costs in table) or 1.0
        return self._latency_table

    def expected_latency(self) -> torch.Tensor:
        """Expected latency of the choices under ``softmax(alpha)`` (in the predictor's unit)."""
        total = torch.zeros((), device=self.device)
        for alpha, costs in self.latency_table():
            total = total + (F.softmax(alpha, -1) * costs).sum()
        return total

    def _train_one_epoch(self, epoch: int) -> Dict[str, float]:
        self.model.train()
        meters = AverageMeterGroup()
        search = epoch >= self.warmup_epochs
        num_steps = min(len(self.train_loader), len(self.valid_loader))
        for step, ((trn_X, trn_y), (val_X, val_y)) in enumerate(zip(self.train_loader, self.valid_loader)):
            trn_X, trn_y = to_device(trn_X, self.device), to_device(trn_y, self.device)
            metrics: Dict[str, Any] = {}
            if search:
                val_X, val_y = to_device(val_X, self.device), to_device(val_y, self.device)
                self.arch_requires_grad()
                self.ctrl_optim.zero_grad()
                arch_loss = self.loss(self.model(val_X), val_y)
                if self.latency_predictor is not None and self.latency_weight:
                    latency = self.expected_latency()
                    arch_loss = arch_loss + self.latency_weight * latency / self._uniform_latency
                    metrics['expected_latency'] = float(latency.detach())
                arch_loss.backward()
                self.ctrl_optim.step()
                self.arch_disable_grad()

            self.optimizer.zero_grad()
            logits = self.model(trn_X)
            loss = self.loss(logits, trn_y)
            loss.backward()
            self.optimizer.step()
            metrics.update(call_metrics(self.metrics, logits.detach(), trn_y, 'ProxylessTrainer'))
            metrics['loss'] = loss.item()
            meters.update(metrics, len(trn_y))
            log_step('ProxylessTrainer', epoch, self.num_epochs, step, num_steps, meters, self.log_frequency)
        return meters.averages

    def fit(self) -> None:
        """Warm up the weights for ``warmup_epochs``, then search until ``num_epochs``; ``self.history`` keeps epoch metrics."""
        self.history: List[Dict[str, float]] = []
        for epoch in range(self.num_epochs):
            self.history.append(self._train_one_epoch(epoch))
            _logger.info('ProxylessTrainer epoch %d/%d: %s', epoch + 1, self.num_epochs, self.history[-1])

    @torch.no_grad()
    def export(self) -> Dict[str, Any]:
        """The argmax-weight candidate of every choice."""
        result: Dict[str, Any] = {}
        for name, module in self.nas_modules:
            if name not in result:
                result[name] = module.export()
        return result


class ProxylessNasTrainer(BaseOneShotTrainer):
    """The tutorial's ProxylessNAS interface (NAS 1.x names): ``train()``, then ``export(arch_path)``.

    Args:
        model: the model space (choices replaced in place).
        model_optim: optimizer of the model weights (its learning rate follows a cosine schedule from ``init_lr``).
        device: where the model runs (no DataParallel here).
        train_loader / valid_loader: loaders of the weight / architecture data.
        label_smoothing: of the cross-entropy loss.
        n_epochs: search epochs (after the warm-up).
        init_lr: initial weight learning rate.
        binary_mode: ``'full_v2'``, ``'full'`` or ``'two'`` (see :class:`ProxylessLayerChoice`).
        arch_init_type / arch_init_ratio: architecture weights start ``normal(0, ratio)`` or ``uniform(-ratio, ratio)``.
        arch_optim_lr / arch_weight_decay: Adam settings of the architecture weights.
        grad_update_arch_param_every: weight steps between architecture updates.
        grad_update_steps: architecture steps (validation batches) per update.
        warmup / warmup_epochs: weight-only epochs before the search.
        arch_valid_frequency: epochs between validations of the current argmax architecture (``self.valid_history``).
        load_ckpt / ckpt_path: resume from / save each epoch to ``ckpt_path`` (model, optimizers, epoch).
        arch_path: where ``export()`` writes the architecture JSON by default.
    """

    def __init__(self, model: nn.Module, model_optim: torch.optim.Optimizer, device: Any, train_loader: Any,
                 valid_loader: Any, label_smoothing: float = 0.1, n_epochs: int = 120, init_lr: float = 0.025,
                 binary_mode: str = 'full_v2', arch_init_type: str = 'normal', arch_init_ratio: float = 1e-3,
                 arch_optim_lr: float = 1e-3, arch_weight_decay: float = 0, grad_update_arch_param_every: int = 5,
                 grad_update_steps: int = 1, warmup: bool = True, warmup_epochs: int = 25, arch_valid_frequency: int = 1,
                 load_ckpt: bool = False, ckpt_path: Optional[str] = None, arch_path: Optional[str] = None):
        where = 'ProxylessNasTrainer'
        if binary_mode not in ('full_v2', 'full', 'two'):
            raise ValueError(f"{where}: binary_mode {binary_mode!r} is not supported; use 'full_v2', 'full' or 'two'")
        if arch_init_type not in ('normal', 'uniform'):
            raise ValueError(f"{where}: arch_init_type {arch_init_type!r} is not supported; use 'normal' or 'uniform'")
        for name, value in (('n_epochs', n_epochs), ('warmup_epochs', warmup_epochs)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'{where}: {name} must be an int >= 0, got {value!r}')
        for name, value in (('grad_update_arch_param_every', grad_update_arch_param_every),
                            ('grad_update_steps', grad_update_steps), ('arch_valid_frequency', arch_valid_frequency)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{where}: {name} must be a positive int, got {value!r}')
        if load_ckpt and ckpt_path is None:
            raise ValueError(f'{where}: load_ckpt=True needs ckpt_path, the checkpoint file to load')
        self.model = model
        self.model_optim = model_optim
        self.train_loader, self.valid_loader = train_loader, valid_loader
        self.label_smoothing = label_smoothing
        self.n_epochs, self.init_lr = n_epochs, init_lr
        self.grad_update_arch_param_every, self.grad_update_steps = grad_update_arch_param_every, grad_update_steps
        self.warmup_epochs = warmup_epochs if warmup else 0
        self.arch_valid_frequency = arch_valid_frequency
        self.ckpt_path, self.arch_path = ckpt_path, arch_path
        self.nas_modules, self.arch_parameters, self.device = _prepare_supernet(
            self.model, where, ProxylessLayerChoice, ProxylessInputChoice, device)
        with torch.no_grad():
            for alpha in self.arch_parameters.values():
                if arch_init_type == 'normal':
                    alpha.normal_(0, arch_init_ratio)
                else:
                    alpha.uniform_(-arch_init_ratio, arch_init_ratio)
        for _, module in self.nas_modules:
            module.binary_mode = binary_mode
        self.arch_optim = torch.optim.Adam(list(self.arch_parameters.values()), arch_optim_lr, betas=(0.0, 0.999),
                                           eps=1e-8, weight_decay=arch_weight_decay)
        self._set_arch_grad(False)
        self.epoch = 0  # epochs done, warm-up included
        self.valid_history: List[Dict[str, float]] = []
        if load_ckpt:
            state = torch.load(ckpt_path, map_location=self.device)
            self.model.load_state_dict(state['model'])
            self.model_optim.load_state_dict(state['model_optim'])
            self.arch_optim.load_state_dict(state['arch_optim'])
            self.epoch = state['epoch']

    def _set_arch_grad(self, enabled: bool) -> None:
        for alpha in self.arch_parameters.values():
            alpha.requires_grad_(enabled)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    def _set_lr(self, epoch: int, total: int, step: int, steps: int) -> None:
        progress = (epoch * steps + step) / max(1, total * steps)
        lr = 0.5 * self.init_lr * (1 + math.cos(math.pi * progress))
        for group in self.model_optim.param_groups:
            group['lr'] = lr

    def _run_epoch(self, epoch: int, total: int, search: bool) -> None:
        self.model.train()
        valid_batches = iter(())
        steps = len(self.train_loader)
        for step, (X, y) in enumerate(self.train_loader):
            self._set_lr(epoch, total, step, steps)
            X, y = to_device(X, self.device), to_device(y, self.device)
            self.model_optim.zero_grad()
            self._loss(self.model(X), y).backward()
            self.model_optim.step()
            if search and (step + 1) % self.grad_update_arch_param_every == 0:
                for _ in range(self.grad_update_steps):
                    batch = next(valid_batches, None)
                    if batch is None:
                        valid_batches = iter(self.valid_loader)
                        batch = next(valid_batches)
                    val_X, val_y = to_device(batch[0], self.device), to_device(batch[1], self.device)
                    self._set_arch_grad(True)
                    self.arch_optim.zero_grad()
                    self._loss(self.model(val_X), val_y).backward()
                    self.arch_optim.step()
                    self._set_arch_grad(False)

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """Loss and top-1 accuracy of the current argmax architecture on ``valid_loader``."""
        self.model.eval()
        total, correct, loss = 0, 0, 0.0
        for X, y in self.valid_loader:
            X, y = to_device(X, self.device), to_device(y, self.device)
            logits = self.model(X)
            loss += float(F.cross_entropy(logits, y, reduction='sum'))
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
        self.model.train()
        return {'loss': loss / max(total, 1), 'acc': correct / max(total, 1)}

    def train(self) -> None:
        """Warm up the weights, then search for ``n_epochs``; resumes after the loaded checkpoint's epoch."""
        for epoch in range(self.epoch, self.warmup_epochs + self.n_epochs):
            warming = epoch < self.warmup_epochs
            if warming:
                self._run_epoch(epoch, self.warmup_epochs, search=False)
            else:
                self._run_epoch(epoch - self.warmup_epochs, self.n_epochs, search=True)
            self.epoch = epoch + 1
            if not warming and (epoch - self.warmup_epochs + 1) % self.arch_valid_frequency == 0:
                self.valid_history.append(self.validate())
                _logger.info('ProxylessNasTrainer epoch %d: %s  arch %s', self.epoch, self.valid_history[-1], self.export())
            if self.ckpt_path is not None:
                torch.save({'model': self.model.state_dict(), 'model_optim': self.model_optim.state_dict(),
                            'arch_optim': self.arch_optim.state_dict(), 'epoch': self.epoch}, self.ckpt_path)

    fit = train

    @torch.no_grad()
    def export(self, arch_path: Optional[str] = None) -> Dict[str, Any]:
        """The argmax architecture; also written as JSON to ``arch_path`` (default: the constructor's ``arch_path``)."""
        result: Dict[str, Any] = {}
        for name, module in self.nas_modules:
            if name not in result:
                result[name] = module.export()
        path = arch_path or self.arch_path
        if path is not None:
            Path(path).write_text(json.dumps(result, indent=2), encoding='utf-8')
        return result
