"""Single-path one-shot (SPOS, Guo et al., ECCV 2020): train the super-net on uniformly sampled paths,
then search the trained super-net with an evolutionary algorithm (no fine-tuning)."""
from __future__ import annotations

import logging
import random as _random
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from .. import BaseOneShotTrainer
from .sampling import (PathSamplingInputChoice, PathSamplingLayerChoice, apply_arch, check_arch, search_space_of,
                       uniform_sample)
from .utils import AverageMeterGroup, _prepare_supernet, call_metrics, check_common_args, log_step, to_device

__all__ = ['SinglePathTrainer', 'RandomTrainer']

_logger = logging.getLogger(__name__)


class SinglePathTrainer(BaseOneShotTrainer):
    """Single-path trainer. Samples a path every time and backpropagates on that path.

    Args:
        model: the model space (choices are replaced in place by path-sampling modules).
        loss: ``loss(logits, target) -> Tensor``.
        metrics: ``metrics(logits, target) -> dict``.
        optimizer: optimizer of the model weights.
        num_epochs: epochs to train.
        dataset_train / dataset_valid: training data; validation data (per-epoch metrics and the search in :meth:`export`).
        mutator: ``None`` (uniform sampling) or a callable ``mutator(search_space) -> architecture`` choosing each
            path, where ``search_space`` is ``label -> candidates`` (e.g. uniform sampling under a FLOPs limit).
        batch_size: batch size.
        workers: not used by this trainer (as documented); data loads in the training process.
        device: ``torch.device``; ``None`` picks CUDA when available.
        log_frequency: steps between log lines.
        seed: seed of the path sampler and of the search (not in the documented signature).
    """

    def __init__(self, model: nn.Module, loss: Callable[..., torch.Tensor], metrics: Callable[..., Dict[str, Any]],
                 optimizer: torch.optim.Optimizer, num_epochs: int, dataset_train: Any, dataset_valid: Any,
                 mutator: Optional[Callable[[Dict[str, List[Any]]], Dict[str, Any]]] = None, batch_size: int = 64,
                 workers: int = 4, device: Optional[torch.device] = None, log_frequency: Optional[int] = None,
                 seed: Optional[int] = None):
        check_common_args('SinglePathTrainer', num_epochs, batch_size, log_frequency)
        if mutator is not None and not callable(mutator):
            raise ValueError(f'SinglePathTrainer: mutator must be None or a callable search_space -> architecture dict, '
                             f'got {type(mutator).__name__}')
        self.model = model
        self.loss = loss
        self.metrics = metrics
        self.optimizer = optimizer
        self.num_epochs = num_epochs
        self.mutator = mutator
        self.log_frequency = log_frequency
        self.rng = _random.Random(seed)
        self.nas_modules, _, self.device = _prepare_supernet(
            self.model, 'SinglePathTrainer', PathSamplingLayerChoice, PathSamplingInputChoice, device, share_attribute=None)
        self.search_space = search_space_of(self.nas_modules)
        # ``workers`` is documented as not used by this trainer: data loads in this process
        self.workers = workers
        self.train_loader = DataLoader(dataset_train, batch_size=batch_size, shuffle=True)
        self.valid_loader = DataLoader(dataset_valid, batch_size=batch_size, shuffle=False)

    def _sample(self) -> Dict[str, Any]:
        if self.mutator is None:
            arch = uniform_sample(self.search_space, self.rng)
        else:
            arch = check_arch(self.mutator(dict(self.search_space)), self.search_space, 'SinglePathTrainer mutator')
        apply_arch(self.nas_modules, arch)
        return arch

    def _train_one_epoch(self, epoch: int) -> Dict[str, float]:
        self.model.train()
        meters = AverageMeterGroup()
        for step, (X, y) in enumerate(self.train_loader):
            X, y = to_device(X, self.device), to_device(y, self.device)
            self._sample()
            self.optimizer.zero_grad()
            logits = self.model(X)
            loss = self.loss(logits, y)
            loss.backward()
            self.optimizer.step()
            metrics = call_metrics(self.metrics, logits.detach(), y, 'SinglePathTrainer')
            metrics['loss'] = loss.item()
            meters.update(metrics, len(y))
            log_step('SinglePathTrainer train', epoch, self.num_epochs, step, len(self.train_loader), meters, self.log_frequency)
        return meters.averages

    @torch.no_grad()
    def _validate_one_epoch(self, epoch: int) -> Dict[str, float]:
        self.model.eval()
        meters = AverageMeterGroup()
        for step, (X, y) in enumerate(self.valid_loader):
            X, y = to_device(X, self.device), to_device(y, self.device)
            self._sample()
            logits = self.model(X)
            metrics = call_metrics(self.metrics, logits, y, 'SinglePathTrainer')
            metrics['loss'] = self.loss(logits, y).item()
            meters.update(metrics, len(y))
            log_step('SinglePathTrainer valid', epoch, self.num_epochs, step, len(self.valid_loader), meters, self.log_frequency)
        return meters.averages

    def fit(self) -> None:
        """Train the super-net for ``num_epochs`` epochs; ``self.history`` keeps per-epoch train / valid metrics."""
        self.history: List[Dict[str, float]] = []
        for epoch in range(self.num_epochs):
            record = self._train_one_epoch(epoch)
            record.update({f'val_{k}': v for k, v in self._validate_one_epoch(epoch).items()})
            self.history.append(record)
            _logger.info('SinglePathTrainer epoch %d/%d: %s', epoch + 1, self.num_epochs, record)

    @torch.no_grad()
    def evaluate(self, arch: Dict[str, Any], max_batches: Optional[int] = None) -> Dict[str, float]:
        """Metrics (and ``loss``) of one architecture with the super-net's weights on ``dataset_valid``."""
        arch = check_arch(arch, self.search_space, 'SinglePathTrainer.evaluate')
        apply_arch(self.nas_modules, arch)
        self.model.eval()
        meters = AverageMeterGroup()
        for step, (X, y) in enumerate(self.valid_loader):
            if max_batches is not None and step >= max_batches:
                break
            X, y = to_device(X, self.device), to_device(y, self.device)
            logits = self.model(X)
            metrics = call_metrics(self.metrics, logits, y, 'SinglePathTrainer')
            metrics['loss'] = self.loss(logits, y).item()
            meters.update(metrics, len(y))
        return meters.averages

    def export(self, population_size: int = 10, cycles: int = 20, sample_size: int = 3,
               metric: Optional[str] = None, max_batches: Optional[int] = None) -> Dict[str, Any]:
        """Evolutionary search of the trained super-net (regularized evolution, Real et al. 2019).

        Args:
            population_size: architectures alive at once (the first ones are sampled as in training).
            cycles: architectures evaluated in total (at least ``population_size``).
            sample_size: tournament size; the winner's child differs in one randomly chosen label.
            metric: a key of ``metrics``' dict to maximise; ``None`` minimises the loss.
            max_batches: validation batches per evaluation (``None``: all).

        Returns:
            The best architecture evaluated (``self.search_history`` keeps ``(arch, score)`` pairs).
        """
        for name, value in (('population_size', population_size), ('cycles', cycles), ('sample_size', sample_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'SinglePathTrainer.export: {name} must be a positive int, got {value!r}')

        def score(arch: Dict[str, Any]) -> float:
            result = self.evaluate(arch, max_batches)
            if metric is None:
                return -result['loss']
            if metric not in result:
                raise ValueError(f'SinglePathTrainer.export: metric {metric!r} is not returned by metrics; '
                                 f'available are {sorted(result)}')
            return result[metric]

        self.search_history: List[Tuple[Dict[str, Any], float]] = []
        population: List[Tuple[Dict[str, Any], float]] = []
        for index in range(max(cycles, population_size)):
            if index < population_size:
                arch = dict(self._sample())
            else:
                parent = max(self.rng.sample(population, min(sample_size, len(population))), key=lambda p: p[1])[0]
                arch = dict(parent)
                mutable = [label for label, candidates in self.search_space.items() if len(candidates) > 1]
                if mutable:
                    label = self.rng.choice(mutable)
                    arch[label] = self.rng.choice([c for c in self.search_space[label] if c != parent[label]])
            entry = (arch, score(arch))
            population.append(entry)
            self.search_history.append(entry)
            if len(population) > population_size:
                population.pop(0)  # regularized evolution: the oldest dies
        best = max(self.search_history, key=lambda p: p[1])[0]
        apply_arch(self.nas_modules, best)
        return best


RandomTrainer = SinglePathTrainer  # the NAS 1.x name of the single-path (random) trainer
