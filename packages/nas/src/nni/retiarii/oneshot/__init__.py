"""One-shot NAS: train one super-net holding every architecture of a model space, then pick one.

Trainers live in :mod:`nni.retiarii.oneshot.pytorch` (``DartsTrainer``, ``EnasTrainer``,
``ProxylessTrainer``, ``SinglePathTrainer``, ``FBNetTrainer``); a custom trainer subclasses :class:`BaseOneShotTrainer`.
Importing this module does not import torch.
"""
from __future__ import annotations

import abc
from typing import Any, Dict

__all__ = ['BaseOneShotTrainer']


class BaseOneShotTrainer(abc.ABC):
    """Base of one-shot trainers: ``fit()`` trains / searches, ``export()`` returns the chosen architecture.

    ``__init__`` may take any arguments. The model given to a trainer holds ``LayerChoice`` /
    ``InputChoice`` modules; the trainer replaces them (see ``replace_layer_choice`` and
    ``replace_input_choice`` in :mod:`nni.retiarii.oneshot.pytorch`). ``export()`` returns the flat
    architecture dict ``label -> value`` that :func:`nni.retiarii.fixed_arch` rebuilds (LayerChoice:
    the candidate name; InputChoice: the sorted list of chosen indices).
    """

    @abc.abstractmethod
    def fit(self) -> None:
        """Train the super-net and search the architecture."""

    @abc.abstractmethod
    def export(self) -> Dict[str, Any]:
        """The best architecture found: ``label -> value``, JSON-serializable."""
