"""The benchmark's model space and trial function; trials import this module by name.

Kept light on purpose (torch and nni.retiarii only): whatever this module imports is trial overhead. The data
is read from a tensor file the benchmark writes once, so no trial imports scikit-learn.
"""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

import nni
import nni.retiarii.nn.pytorch as nn
from nni.retiarii import model_wrapper

__all__ = ['DigitsSearchSpace', 'CHOICES', 'SPACE_SIZE', 'architectures', 'arch_key', 'fit', 'train', 'write_digits',
           'process_start_time']

_BLOCKS = ('conv3', 'conv5', 'maxpool', 'avgpool', 'identity')


def _block(c, label):
    return nn.LayerChoice({
        'conv3': nn.Conv2d(c, c, 3, padding=1),
        'conv5': nn.Conv2d(c, c, 5, padding=2),
        'maxpool': nn.MaxPool2d(3, stride=1, padding=1),
        'avgpool': nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        'identity': nn.Identity(),
    }, label=label)


@model_wrapper
class DigitsSearchSpace(nn.Module):
    """stem conv(1 -> c) -> act -> block1 -> act -> block2 -> act -> 1x1 conv(c -> 16) -> 2x2 max pool -> fc -> fc.

    Choices: ``channels`` (4, 8, 16), ``activation`` (relu, tanh, sigmoid), ``block1`` / ``block2`` (conv3, conv5,
    maxpool, avgpool, identity), ``hidden`` (16, 64, 128): 675 architectures, from ~4k to ~40k parameters.
    (The example ``examples/nas/multi-trial`` has 24, too few: 30 random trials would cover it.)
    """

    def __init__(self):
        super().__init__()
        c = nn.ValueChoice([4, 8, 16], label='channels')
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.act = nn.LayerChoice({'relu': nn.ReLU(), 'tanh': nn.Tanh(), 'sigmoid': nn.Sigmoid()}, label='activation')
        self.block1 = _block(c, 'block1')
        self.block2 = _block(c, 'block2')
        self.conv_out = nn.Conv2d(c, 16, 1)
        hidden = nn.ValueChoice([16, 64, 128], label='hidden')
        self.fc1 = nn.Linear(16 * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = self.act(self.stem(x))
        x = self.act(self.block1(x))
        x = self.act(self.block2(x))
        x = F.max_pool2d(self.conv_out(x), 2)  # 8x8 -> 4x4
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


#: Every choice of the space, by label, in the space's order (the ``sample`` dicts trials receive use these values).
CHOICES = {'channels': (4, 8, 16), 'activation': ('relu', 'tanh', 'sigmoid'), 'block1': _BLOCKS, 'block2': _BLOCKS,
           'hidden': (16, 64, 128)}
SPACE_SIZE = 3 * 3 * len(_BLOCKS) * len(_BLOCKS) * 3


def architectures() -> list:
    """All ``SPACE_SIZE`` architectures as sample dicts (``{'channels': 4, 'activation': 'relu', ...}``)."""
    import itertools
    return [dict(zip(CHOICES, values)) for values in itertools.product(*CHOICES.values())]


def arch_key(sample: dict) -> str:
    """A canonical string for an architecture (its sample as JSON with sorted keys)."""
    import json
    return json.dumps({label: sample[label] for label in CHOICES}, sort_keys=True)


def write_digits(path: str, seed: int = 0, n_train: int = 1200) -> str:
    """Save digits as tensors ``(x_train, y_train, x_valid, y_valid)`` (images 1x8x8 in [0, 1]) to ``path``."""
    from sklearn.datasets import load_digits
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    train, valid = order[:n_train], order[n_train:]
    torch.save((x[train], y[train], x[valid], y[valid]), path)
    return path


def process_start_time() -> float:
    """When this process started (epoch seconds, from ``/proc``; 10 ms resolution), or ``nan`` off Linux.

    Counted back from now with ``/proc/uptime``: the boot time in ``/proc/stat`` (``btime``) is
    whole seconds, which put every start up to 1 s early (a constant ~0.5 s on the machine the
    benchmark first ran on, billed to "interpreter/imports")."""
    try:
        with open('/proc/self/stat') as f:
            ticks = int(f.read().rsplit(')', 1)[1].split()[19])
        with open('/proc/uptime') as f:
            now, uptime = time.time(), float(f.read().split()[0])
        return now - (uptime - ticks / os.sysconf('SC_CLK_TCK'))
    except (OSError, ValueError, IndexError):
        return float('nan')


def train(model_cls, data_path: str, epochs: int = 10, batch_size: int = 64, lr: float = 0.003,
          on_epoch=None, on_start=None) -> float:
    """Train ``model_cls()`` with Adam from seed 0 and return the final validation accuracy.

    Deterministic per architecture (same data, seed and thread count give the same accuracy), which is what lets
    :mod:`nni.nas_benchmark.offline` tabulate accuracies. ``on_start()`` is called when the data, the model and the
    optimizer are ready, ``on_epoch(accuracy)`` after each epoch.
    """
    torch.manual_seed(0)
    x_train, y_train, x_valid, y_valid = torch.load(data_path)
    model = model_cls()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if on_start is not None:
        on_start()
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y_train))
        for start in range(0, len(y_train), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_valid).argmax(1) == y_valid).float().mean().item()
        if on_epoch is not None:
            on_epoch(accuracy)
    return accuracy


def fit(model_cls, data_path: str, epochs: int = 10, batch_size: int = 64, lr: float = 0.003, threads: int = 1) -> None:
    """Train one sampled model (:func:`train`); report validation accuracy per epoch and a final dict.

    The final result is ``{'default': accuracy, 'train_s', 'setup_s', 'entry_s', 'process_start', 'fit_end'}``:
    ``train_s`` is the model's own training time (the epochs, with their validation passes); ``setup_s`` loading the
    data and building the model; ``entry_s`` the time from process start to this call (interpreter, imports,
    evaluator load).
    """
    entered = time.time()
    started = process_start_time()
    torch.set_num_threads(threads)  # trials run side by side: one core each
    marks = []
    accuracy = train(model_cls, data_path, epochs, batch_size, lr, on_epoch=nni.report_intermediate_result,
                     on_start=lambda: marks.append(time.time()))
    end = time.time()
    train_start = marks[0]
    nni.report_final_result({'default': accuracy, 'train_s': end - train_start, 'setup_s': train_start - entered,
                             'entry_s': entered - started, 'process_start': started, 'fit_end': end})
