"""``import nni.retiarii.nn.pytorch as nn``: a drop-in for ``torch.nn`` plus the mutation primitives.

Every ``torch.nn`` name is reachable here. Module classes other than containers are basic units (see
:func:`nni.retiarii.basic_unit`), so ``nn.Conv2d(3, nn.ValueChoice([16, 32]), 3)`` works.
"""
from .nn import TORCH_NN_NAMES as _TORCH_NN_NAMES

globals().update(_TORCH_NN_NAMES)

from .api import ChosenInputs, InputChoice, LayerChoice, Mutable, Placeholder, ValueChoice, ValueChoiceArithmeticError  # noqa: E402
from .component import Cell, NasBench101Cell, NasBench201Cell, Repeat  # noqa: E402
from .hypermodule import AutoActivation  # noqa: E402

__all__ = sorted(_TORCH_NN_NAMES) + [
    'LayerChoice', 'InputChoice', 'ValueChoice', 'ChosenInputs', 'Repeat', 'Cell', 'NasBench101Cell', 'NasBench201Cell',
    'AutoActivation', 'Placeholder', 'Mutable', 'ValueChoiceArithmeticError',
]
