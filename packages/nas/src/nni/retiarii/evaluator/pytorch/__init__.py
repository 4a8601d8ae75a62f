"""PyTorch evaluators. The Lightning ones are in :mod:`.lightning`
(``import nni.retiarii.evaluator.pytorch.lightning as pl``); the names below are re-exported
lazily so that importing this package does not import Lightning.
"""
from __future__ import annotations

_LIGHTNING_NAMES = ("Lightning", "LightningModule", "Classification", "Regression", "Trainer", "DataLoader")

__all__ = list(_LIGHTNING_NAMES)


def __getattr__(name: str):
    if name in _LIGHTNING_NAMES:
        from . import lightning

        return getattr(lightning, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
