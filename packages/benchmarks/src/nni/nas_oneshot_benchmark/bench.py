"""DARTS super-net overhead on a small CNN space over scikit-learn's digits (8x8 images, 10 classes).

Both timings come from the same process, alternated ``repeats`` times; medians (and the ratio of minimums) reported:

* **DARTS epoch**: ``DartsTrainer.fit()`` for one epoch over the whole data set (which DARTS splits in two
  halves: every step is one architecture step on a validation batch plus one weight step on a training batch);
* **plain epoch**: one ordinary training epoch over the whole data set of the largest candidate network
  (every LayerChoice set to its most expensive op), built with ``fixed_arch``.

The ratio is the super-net overhead (issue 16 target: <= 1.5).

Quality (``bench_darts_quality``; issue 16 target: the retrained DARTS architecture beats the median of 5 random
architectures of the same space), per seed:

* split: 75 % search/retraining data, 25 % test data (shuffled with the seed);
* search: ``DartsTrainer`` (first order) on the 75 %, which it halves into weight / architecture data; 16 channels,
  10 epochs, SGD lr 0.05 (momentum 0.9, weight decay 3e-4), Adam arc lr 3e-3 (the DARTS paper's 3e-4 is tuned for
  ~20k architecture steps; here there are ~110);
* random architectures: ``random_archs`` uniform draws over the space (``random.Random(seed)``);
* retraining (the same for DARTS' pick and the random ones): from scratch on the 75 %, 15 epochs, batch 64, SGD lr
  0.05 cosine-annealed to 0 (as the DARTS paper retrains), momentum 0.9, weight decay 1e-4, from two initialisations;
  the score is the mean test accuracy. A constant learning rate made the last epoch's accuracy swing by up to 0.16 on
  the same architecture (the ranking was noise); annealing settles it.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Dict, Iterable, Optional, Union

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import nni.retiarii.nn.pytorch as nn
from nni.retiarii import fixed_arch, model_wrapper
from nni.retiarii.oneshot.pytorch import DartsTrainer

LARGEST = {'layer1': 'conv5x5', 'layer2': 'conv5x5', 'skip': [1]}


def conv_bn_relu(channels: int, kernel: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU())


def candidates(channels: int) -> Dict[str, nn.Module]:
    return {'conv3x3': conv_bn_relu(channels, 3), 'conv5x5': conv_bn_relu(channels, 5),
            'maxpool': nn.MaxPool2d(3, 1, 1), 'identity': nn.Identity()}


@model_wrapper
class DigitsSpace(nn.Module):
    """stem conv -> LayerChoice -> 2x2 pool -> LayerChoice -> InputChoice(pooled, layer2) -> global pool -> linear."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())
        self.layer1 = nn.LayerChoice(candidates(channels), label='layer1')
        self.pool = nn.MaxPool2d(2)
        self.layer2 = nn.LayerChoice(candidates(channels), label='layer2')
        self.skip = nn.InputChoice(2, 1, reduction='sum', label='skip')
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layer1(self.stem(x)))
        x = self.skip([x, self.layer2(x)])
        return self.head(x.mean((2, 3)))


def digits_dataset(samples: int | None = None) -> TensorDataset:
    """scikit-learn's digits as ``(N, 1, 8, 8)`` floats in [0, 1] and int labels (the first ``samples`` only, if given)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    return TensorDataset(x[:samples], y[:samples])


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> Dict[str, float]:
    return {'acc': (logits.argmax(1) == target).float().mean().item()}


def _darts_epoch(data: TensorDataset, batch_size: int, unrolled: bool, channels: int) -> float:
    model = DigitsSpace(channels)
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = DartsTrainer(model, F.cross_entropy, accuracy, optim, num_epochs=1, dataset=data, batch_size=batch_size,
                           workers=0, device=torch.device('cpu'), unrolled=unrolled)
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def _plain_epoch(data: TensorDataset, batch_size: int, channels: int) -> float:
    with fixed_arch(LARGEST, verbose=False):
        model = DigitsSpace(channels)
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    start = time.perf_counter()
    model.train()
    for x, y in loader:
        optim.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optim.step()
        accuracy(logits.detach(), y)  # the trainer computes metrics too
    return time.perf_counter() - start


def bench_darts_overhead(repeats: int = 3, batch_size: int = 64, unrolled: bool = False, channels: int = 32,
                         seed: int = 0, samples: int | None = None) -> Dict[str, Any]:
    """Median seconds of a DARTS search epoch and of a plain epoch of the largest candidate, and their ratio."""
    torch.manual_seed(seed)
    data = digits_dataset(samples)
    _plain_epoch(data, batch_size, channels)  # warm-up: first-call costs (kernel selection, lazy imports)
    _darts_epoch(data, batch_size, unrolled, channels)
    darts, plain = [], []
    for _ in range(repeats):
        darts.append(_darts_epoch(data, batch_size, unrolled, channels))
        plain.append(_plain_epoch(data, batch_size, channels))
    darts_s, plain_s = statistics.median(darts), statistics.median(plain)
    return {'benchmark': 'darts_overhead', 'samples': len(data), 'batch_size': batch_size, 'channels': channels,
            'unrolled': unrolled, 'threads': torch.get_num_threads(), 'repeats': repeats,
            'darts_epoch_s': round(darts_s, 4), 'plain_largest_epoch_s': round(plain_s, 4),
            'ratio': round(darts_s / plain_s, 3),
            # the fastest of the alternated runs: the least disturbed by other load on a shared machine
            'ratio_of_minimums': round(min(darts) / min(plain), 3), 'target_ratio': 1.5}


def _split(data: TensorDataset, seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=g)
    cut = len(data) * 3 // 4
    x, y = data.tensors
    return TensorDataset(x[order[:cut]], y[order[:cut]]), TensorDataset(x[order[cut:]], y[order[cut:]])


def retrain_model(arch: Dict[str, Any], train: TensorDataset, epochs: int, channels: int, seed: int) -> nn.Module:
    """``arch`` (a ``fixed_arch`` dict of :class:`DigitsSpace`) trained from scratch on ``train``: SGD with momentum,
    the learning rate annealed to 0 by a cosine schedule (as DARTS retrains)."""
    torch.manual_seed(seed)
    with fixed_arch(arch, verbose=False):
        model = DigitsSpace(channels)
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    # annealed to 0: with a constant lr the final accuracy depends on where the last steps land, not on the architecture
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, epochs)
    loader = DataLoader(train, batch_size=64, shuffle=True)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            optim.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optim.step()
        schedule.step()
    return model.eval()


def _retrain(arch: Dict[str, Any], train: TensorDataset, test: TensorDataset, epochs: int, channels: int, seed: int) -> float:
    """Test accuracy of ``arch`` trained from scratch."""
    model = retrain_model(arch, train, epochs, channels, seed)
    with torch.no_grad():
        x, y = test.tensors
        return (model(x).argmax(1) == y).float().mean().item()


def bench_darts_quality(seeds: Union[int, Iterable[int]] = 3, search_epochs: int = 10, retrain_epochs: int = 15,
                        random_archs: int = 5, channels: int = 16, samples: Optional[int] = None) -> Dict[str, Any]:
    """Per seed (``seeds``: a count, meaning ``range(seeds)``, or the seeds themselves): DARTS searches on the training
    split (75 %), its architecture and ``random_archs`` random ones are retrained from scratch alike; the test accuracy
    (25 %) of DARTS' pick is compared with the random median (target: above). See the module docstring."""
    import random

    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    data = digits_dataset(samples)
    space = {'layer1': list(candidates(1)), 'layer2': list(candidates(1)), 'skip': [[0], [1]]}
    rows = []
    start = time.perf_counter()
    for seed in seed_list:
        seed_start = time.perf_counter()
        train, test = _split(data, seed)
        torch.manual_seed(seed)
        model = DigitsSpace(channels)
        optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
        trainer = DartsTrainer(model, F.cross_entropy, accuracy, optim, num_epochs=search_epochs, dataset=train,
                               batch_size=64, workers=0, device=torch.device('cpu'), arc_learning_rate=3e-3)
        trainer.fit()
        arch = trainer.export()
        rng = random.Random(seed)
        randoms = [{k: rng.choice(v) for k, v in space.items()} for _ in range(random_archs)]

        # each architecture is retrained from two initialisations (mean accuracy)
        def retrain(a: Dict[str, Any]) -> float:
            return statistics.mean(_retrain(a, train, test, retrain_epochs, channels, s) for s in (seed, seed + 100))

        darts_acc = retrain(arch)
        random_accs = [retrain(a) for a in randoms]
        median = statistics.median(random_accs)
        rows.append({'seed': seed, 'darts_arch': arch, 'darts_acc': round(darts_acc, 4),
                     'random_median_acc': round(median, 4), 'random_archs': randoms,
                     'random_accs': [round(a, 4) for a in random_accs], 'darts_beats_median': darts_acc > median,
                     'seconds': round(time.perf_counter() - seed_start, 1)})
    return {'benchmark': 'darts_quality', 'channels': channels, 'search_epochs': search_epochs,
            'retrain_epochs': retrain_epochs, 'samples': len(data), 'threads': torch.get_num_threads(), 'runs': rows,
            'wins': sum(r['darts_beats_median'] for r in rows), 'seconds': round(time.perf_counter() - start, 1)}
