"""``AbstractAutoCompressionModule``: what the user gives an auto-compression experiment."""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

if TYPE_CHECKING:
    from torch import nn
    from torch.optim import Optimizer

__all__ = ["AbstractAutoCompressionModule"]

#: ``trainer(model, optimizer, criterion, current_epoch)``
Trainer = Callable[[Any, Any, Any, int], None]


class AbstractAutoCompressionModule(metaclass=abc.ABCMeta):
    """The model to compress and how to evaluate (and optionally train) it; every method is a classmethod.

    Implement :meth:`model` (a pre-trained model, a new instance on each call) and :meth:`evaluator`.
    Pruners that train while pruning (``slim``, ``taylorfo``, ``apoz``, ``mean_activation``) and
    quantizers that take an optimizer also need :meth:`optimizer_factory`, :meth:`criterion` and
    :meth:`sparsifying_trainer`. Fine-tuning after compression needs :meth:`optimizer_factory`,
    :meth:`criterion`, :meth:`post_compress_finetuning_trainer` and
    :meth:`post_compress_finetuning_epochs`. The class must live in its own file (not in the script
    that launches the experiment): each trial imports that file.
    """

    @classmethod
    @abc.abstractmethod
    def model(cls) -> "nn.Module":
        """The pre-trained model to compress."""

    @classmethod
    @abc.abstractmethod
    def evaluator(cls) -> Callable[["nn.Module"], float]:
        """A function ``model -> score`` (higher is better with ``optimize_mode='maximize'``); the
        trial reports its score on the compressed model."""

    @classmethod
    def optimizer_factory(cls) -> Optional[Callable[[Iterable], "Optimizer"]]:
        """A function ``parameters -> optimizer`` (e.g. ``lambda params: torch.optim.SGD(params, lr=0.01)``)."""
        return None

    @classmethod
    def criterion(cls) -> Optional[Callable]:
        """The loss function given to the trainers (e.g. ``torch.nn.CrossEntropyLoss()``)."""
        return None

    @classmethod
    def sparsifying_trainer(cls, compress_algorithm_name: str) -> Optional[Trainer]:
        """The trainer an algorithm that trains while compressing calls, as
        ``trainer(model, optimizer, criterion, current_epoch)``."""
        return None

    @classmethod
    def post_compress_finetuning_trainer(cls, compress_algorithm_name: str) -> Optional[Trainer]:
        """The trainer run after compression, once per epoch, as ``trainer(model, optimizer, criterion, current_epoch)``;
        ``None``: no fine-tuning."""
        return None

    @classmethod
    def post_compress_finetuning_epochs(cls, compress_algorithm_name: str) -> int:
        """How many epochs of fine-tuning after compression with ``compress_algorithm_name``."""
        return 0
