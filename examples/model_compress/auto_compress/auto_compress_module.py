"""The AutoCompressionModule of the digits example: a small CNN trained on scikit-learn's digits.

Each trial imports this file (it is given to AutoCompressionExperiment by the launcher,
``auto_compress_digits.py``). ``model()`` returns the pre-trained CNN: trained once (15 epochs Adam,
seed 0) and cached in the temporary folder, so every trial starts from the same weights.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from nni.algorithms.compression.pytorch.auto_compress import AbstractAutoCompressionModule
from nni.retiarii.models import digits_cnn  # conv(1->16) -> conv(16->32) -> maxpool -> fc(512->64) -> fc(64->10)

torch.set_num_threads(1)
CHECKPOINT = Path(tempfile.gettempdir()) / "nni_auto_compress_digits_cnn.pth"


def _data():
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(list(range(len(y))), test_size=0.25, random_state=0, stratify=digits.target)
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


TRAIN, TEST = _data()


def train_one_epoch(model: nn.Module, optimizer, criterion, epoch: int, batch_size: int = 64) -> None:
    """The trainer of the module: one epoch over the training split (shuffled by ``epoch``)."""
    x, y = TRAIN
    model.train()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        optimizer.zero_grad()
        criterion(model(x[idx]), y[idx]).backward()
        optimizer.step()


def accuracy(model: nn.Module) -> float:
    x, y = TEST
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def pretrained_model() -> nn.Module:
    torch.manual_seed(0)
    model = digits_cnn()
    if CHECKPOINT.is_file():
        model.load_state_dict(torch.load(CHECKPOINT))
        return model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(15):
        train_one_epoch(model, optimizer, nn.CrossEntropyLoss(), epoch)
    partial = CHECKPOINT.with_suffix(f".{os.getpid()}.tmp")
    torch.save(model.state_dict(), partial)
    os.replace(partial, CHECKPOINT)  # atomic: concurrent trials never read half a file
    return model


class AutoCompressionModule(AbstractAutoCompressionModule):
    @classmethod
    def model(cls) -> nn.Module:
        return pretrained_model()

    @classmethod
    def evaluator(cls) -> Callable[[nn.Module], float]:
        return accuracy

    @classmethod
    def optimizer_factory(cls):
        return lambda params: torch.optim.Adam(params, lr=1e-3)

    @classmethod
    def criterion(cls):
        return nn.CrossEntropyLoss()

    @classmethod
    def sparsifying_trainer(cls, compress_algorithm_name: str):
        return train_one_epoch

    @classmethod
    def post_compress_finetuning_trainer(cls, compress_algorithm_name: str):
        return train_one_epoch

    @classmethod
    def post_compress_finetuning_epochs(cls, compress_algorithm_name: str) -> int:
        return 2
