"""ENAS (Pham et al., ICML 2018): an LSTM controller trained by REINFORCE samples the child network."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import BaseOneShotTrainer
from .sampling import PathSamplingInputChoice, PathSamplingLayerChoice, apply_arch
from .utils import AverageMeterGroup, _prepare_supernet, call_metrics, check_common_args, log_step, split_loaders, to_device

__all__ = ['EnasTrainer', 'ReinforceController', 'ReinforceField']

_logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ReinforceField:
    """One decision of the controller: ``n_chosen`` of ``total`` options (``None``: any non-empty subset)."""

    name: str
    total: int
    n_chosen: Optional[int] = 1


class ReinforceController(nn.Module):
    """LSTM controller that samples one decision per field, in order, feeding each choice back as the next input.

    A field choosing ``k`` options samples ``k`` times without replacement; a field choosing any subset
    (``n_chosen=None``) draws one Bernoulli per option (an ENAS skip connection), penalised by the KL
    divergence from ``skip_target``.

    Args:
        fields: the decisions, in sampling order.
        lstm_size: hidden size of the LSTM.
        lstm_num_layers: stacked LSTM cells.
        tanh_constant: logits are squashed to ``tanh_constant * tanh(logits)`` (``None``: no squashing).
        skip_target: target probability of keeping an option of an any-subset field.
        temperature: logits are divided by it (``None``: 1).
        entropy_reduction: ``'sum'`` or ``'mean'`` over the decisions.
    """

    def __init__(self, fields: List[ReinforceField], lstm_size: int = 64, lstm_num_layers: int = 1,
                 tanh_constant: Optional[float] = 1.5, skip_target: float = 0.4, temperature: Optional[float] = None,
                 entropy_reduction: str = 'sum'):
        super().__init__()
        if entropy_reduction not in ('sum', 'mean'):
            raise ValueError(f"ReinforceController: entropy_reduction must be 'sum' or 'mean', got {entropy_reduction!r}")
        if not 0 < skip_target < 1:
            raise ValueError(f'ReinforceController: skip_target must be in (0, 1), got {skip_target!r}')
        self.fields = list(fields)
        self.lstm_size = lstm_size
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.entropy_reduction = entropy_reduction
        self.skip_target = skip_target
        self.lstm = nn.ModuleList([nn.LSTMCell(lstm_size, lstm_size) for _ in range(lstm_num_layers)])
        self.g_emb = nn.Parameter(torch.randn(1, lstm_size) * 0.1)
        self.soft = nn.ModuleList([nn.Linear(lstm_size, f.total, bias=False) for f in self.fields])
        self.embedding = nn.ModuleList([nn.Embedding(f.total, lstm_size) for f in self.fields])
        self.sample_log_prob = torch.tensor(0.)
        self.sample_entropy = torch.tensor(0.)
        self.sample_skip_penalty = torch.tensor(0.)

    def _step(self, inputs: torch.Tensor, state: List[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        x = inputs
        for i, cell in enumerate(self.lstm):
            state[i] = cell(x, state[i])
            x = state[i][0]
        return x

    def _logits(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.soft[index](hidden).view(-1)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def resample(self, greedy: bool = False) -> Dict[str, Any]:
        """Sample every field; ``greedy`` takes the most likely options. Returns ``name -> sorted list of indices``."""
        zeros = torch.zeros(1, self.lstm_size, device=self.g_emb.device)
        state = [(zeros, zeros) for _ in self.lstm]
        inputs = self.g_emb
        log_probs: List[torch.Tensor] = []
        entropies: List[torch.Tensor] = []
        penalties: List[torch.Tensor] = []
        result: Dict[str, Any] = {}
        for index, field in enumerate(self.fields):
            if field.n_chosen is None:
                hidden = self._step(inputs, state)
                logits = self._logits(index, hidden)
                probs = torch.sigmoid(logits)
                chosen = (probs > 0.5) if greedy else torch.bernoulli(probs.detach()).bool()
                if not bool(chosen.any()):  # an empty subset is not an architecture: keep the likeliest option
                    chosen = F.one_hot(torch.argmax(probs), field.total).bool()
                dist = torch.distributions.Bernoulli(probs=probs)
                log_probs.append(dist.log_prob(chosen.float()).sum())
                entropies.append(dist.entropy().sum())
                target = torch.full_like(probs, self.skip_target)
                penalties.append((probs * torch.log(probs / target + 1e-8)
                                  + (1 - probs) * torch.log((1 - probs) / (1 - target) + 1e-8)).sum())
                picked = [int(i) for i in torch.nonzero(chosen).view(-1)]
                inputs = self.embedding[index](torch.tensor(picked, device=probs.device)).mean(0, keepdim=True)
            else:
                picked = []
                mask = torch.zeros(field.total, dtype=torch.bool, device=self.g_emb.device)
                for _ in range(field.n_chosen):
                    hidden = self._step(inputs, state)
                    logits = self._logits(index, hidden).masked_fill(mask, float('-inf'))
                    dist = torch.distributions.Categorical(logits=logits)
                    choice = torch.argmax(logits) if greedy else dist.sample()
                    log_probs.append(dist.log_prob(choice))
                    probs = dist.probs
                    entropies.append(-(probs[~mask] * torch.log(probs[~mask])).sum())
                    mask = mask.clone()
                    mask[choice] = True
                    picked.append(int(choice))
                    inputs = self.embedding[index](choice.view(1))
            result[field.name] = sorted(picked)
        self.sample_log_prob = torch.stack(log_probs).sum()
        entropy = torch.stack(entropies)
        self.sample_entropy = entropy.sum() if self.entropy_reduction == 'sum' else entropy.mean()
        self.sample_skip_penalty = torch.stack(penalties).sum() if penalties else torch.tensor(0., device=self.g_emb.device)
        return result


def _fields_and_decoders(nas_modules: List[Tuple[str, nn.Module]]) -> Tuple[List[ReinforceField], Dict[str, Callable[[List[int]], Any]]]:
    fields: List[ReinforceField] = []
    decoders: Dict[str, Callable[[List[int]], Any]] = {}
    for label, module in nas_modules:
        if label in decoders:
            continue
        if isinstance(module, PathSamplingLayerChoice):
            names = module.candidates
            fields.append(ReinforceField(label, len(names), 1))
            decoders[label] = lambda picked, names=names: names[picked[0]]
        else:
            fields.append(ReinforceField(label, module.n_candidates, module.n_chosen))
            decoders[label] = lambda picked: list(picked)
    return fields, decoders


class EnasTrainer(BaseOneShotTrainer):
    """ENAS trainer: each epoch trains the shared weights on sampled child networks, then the controller by REINFORCE.

    Args:
        model: the model space (choices are replaced in place by path-sampling modules).
        loss: ``loss(logits, target) -> Tensor``.
        metrics: ``metrics(logits, target) -> dict``.
        reward_function: ``reward_function(logits, target) -> Tensor`` (a scalar), the controller's reward on a validation batch.
        optimizer: optimizer of the model weights.
        num_epochs: epochs to train.
        dataset: split in two halves, for the weights and for the controller.
        batch_size, workers, device, log_frequency: as in ``DartsTrainer``.
        grad_clip: gradient-norm clipping of the weights and of the controller (0 disables).
        entropy_weight: weight of the sample entropy added to the reward.
        skip_weight: weight of the skip penalty (KL from the skip target) added to the controller loss.
        baseline_decay: ``baseline = baseline_decay * baseline_old + reward * (1 - baseline_decay)``.
        ctrl_lr: Adam learning rate of the controller.
        ctrl_steps_aggregate: sampled child networks aggregated into one controller update.
        ctrl_kwargs: keyword arguments of :class:`ReinforceController`.
        ctrl_steps: controller updates per epoch (documented, absent from the documented signature;
            default: ``len(valid half) // ctrl_steps_aggregate``, at least 1).
    """

    def __init__(self, model: nn.Module, loss: Callable[..., torch.Tensor], metrics: Callable[..., Dict[str, Any]],
                 reward_function: Callable[..., Any], optimizer: torch.optim.Optimizer, num_epochs: int, dataset: Any,
                 batch_size: int = 64, workers: int = 4, device: Optional[torch.device] = None,
                 log_frequency: Optional[int] = None, grad_clip: float = 5., entropy_weight: float = 0.0001,
                 skip_weight: float = 0.8, baseline_decay: float = 0.999, ctrl_lr: float = 0.00035,
                 ctrl_steps_aggregate: int = 20, ctrl_kwargs: Optional[Dict[str, Any]] = None,
                 ctrl_steps: Optional[int] = None):
        check_common_args('EnasTrainer', num_epochs, batch_size, log_frequency)
        if not isinstance(ctrl_steps_aggregate, int) or ctrl_steps_aggregate < 1:
            raise ValueError(f'EnasTrainer: ctrl_steps_aggregate must be a positive int, got {ctrl_steps_aggregate!r}')
        if ctrl_steps is not None and (not isinstance(ctrl_steps, int) or ctrl_steps < 1):
            raise ValueError(f'EnasTrainer: ctrl_steps must be None or a positive int, got {ctrl_steps!r}')
        if not 0 <= baseline_decay <= 1:
            raise ValueError(f'EnasTrainer: baseline_decay must be in [0, 1], got {baseline_decay!r}')
        self.model = model
        self.loss = loss
        self.metrics = metrics
        self.reward_function = reward_function
        self.optimizer = optimizer
        self.num_epochs = num_epochs
        self.batch_size = batch_size
        self.workers = workers
        self.log_frequency = log_frequency
        self.grad_clip = grad_clip
        self.entropy_weight = entropy_weight
        self.skip_weight = skip_weight
        self.baseline_decay = baseline_decay
        self.baseline: Optional[float] = None  # starts at the first reward
        self.ctrl_steps_aggregate = ctrl_steps_aggregate

        # sampled paths: no architecture parameter to share (the controller decides per label)
        self.nas_modules, _, self.device = _prepare_supernet(
            self.model, 'EnasTrainer', PathSamplingLayerChoice, PathSamplingInputChoice, device, share_attribute=None)
        fields, self._decoders = _fields_and_decoders(self.nas_modules)
        self.controller = ReinforceController(fields, **(ctrl_kwargs or {}))
        self.controller.to(self.device)
        self.ctrl_optim = torch.optim.Adam(self.controller.parameters(), lr=ctrl_lr)
        self.train_loader, self.valid_loader = split_loaders(dataset, batch_size, workers)
        self.ctrl_steps = ctrl_steps or max(1, len(self.valid_loader) // ctrl_steps_aggregate)

    def _resample(self, greedy: bool = False) -> Dict[str, Any]:
        picked = self.controller.resample(greedy=greedy)
        arch = {label: self._decoders[label](value) for label, value in picked.items()}
        apply_arch(self.nas_modules, arch)
        return arch

    def _train_model(self, epoch: int) -> Dict[str, float]:
        self.model.train()
        self.controller.eval()
        meters = AverageMeterGroup()
        for step, (X, y) in enumerate(self.train_loader):
            X, y = to_device(X, self.device), to_device(y, self.device)
            with torch.no_grad():
                self._resample()
            self.optimizer.zero_grad()
            logits = self.model(X)
            loss = self.loss(logits, y)
            loss.backward()
            if self.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            metrics = call_metrics(self.metrics, logits.detach(), y, 'EnasTrainer')
            metrics['loss'] = loss.item()
            meters.update(metrics, len(y))
            log_step('EnasTrainer model', epoch, self.num_epochs, step, len(self.train_loader), meters, self.log_frequency)
        return meters.averages

    def _valid_batches(self) -> Iterator[Tuple[Any, Any]]:
        while True:
            yield from self.valid_loader

    def _train_controller(self, epoch: int) -> Dict[str, float]:
        self.model.eval()
        self.controller.train()
        meters = AverageMeterGroup()
        batches = self._valid_batches()
        self.ctrl_optim.zero_grad()
        for step in range(self.ctrl_steps):
            for _ in range(self.ctrl_steps_aggregate):
                X, y = next(batches)
                X, y = to_device(X, self.device), to_device(y, self.device)
                self._resample()
                with torch.no_grad():
                    logits = self.model(X)
                reward = float(self.reward_function(logits, y))
                metrics = {'reward': reward}
                if self.entropy_weight:
                    reward += self.entropy_weight * float(self.controller.sample_entropy.detach())
                self.baseline = reward if self.baseline is None else \
                    self.baseline * self.baseline_decay + reward * (1 - self.baseline_decay)
                loss = -self.controller.sample_log_prob * (reward - self.baseline)
                if self.skip_weight:
                    loss = loss + self.skip_weight * self.controller.sample_skip_penalty
                (loss / self.ctrl_steps_aggregate).backward()
                metrics.update(ctrl_loss=float(loss.detach()), baseline=self.baseline)
                meters.update(metrics)
            if self.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.controller.parameters(), self.grad_clip)
            self.ctrl_optim.step()
            self.ctrl_optim.zero_grad()
            log_step('EnasTrainer controller', epoch, self.num_epochs, step, self.ctrl_steps, meters, self.log_frequency)
        return meters.averages

    def fit(self) -> None:
        """Alternate one epoch of weight training and ``ctrl_steps`` controller updates, ``num_epochs`` times."""
        self.history: List[Dict[str, float]] = []
        for epoch in range(self.num_epochs):
            record = self._train_model(epoch)
            record.update({f'controller_{k}': v for k, v in self._train_controller(epoch).items()})
            self.history.append(record)
            _logger.info('EnasTrainer epoch %d/%d: %s', epoch + 1, self.num_epochs, record)

    @torch.no_grad()
    def export(self) -> Dict[str, Any]:
        """The controller's most likely architecture (greedy decoding)."""
        self.controller.eval()
        return self._resample(greedy=True)
