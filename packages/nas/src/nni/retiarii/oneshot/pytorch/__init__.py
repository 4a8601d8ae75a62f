"""One-shot NAS trainers for PyTorch model spaces written with ``nni.retiarii.nn.pytorch``.

Example::

    trainer = DartsTrainer(model=model, loss=criterion,
                           metrics=lambda output, target: {'acc': accuracy(output, target)},
                           optimizer=optim, num_epochs=10, dataset=dataset_train, batch_size=64)
    trainer.fit()
    arch = trainer.export()          # {'conv1': 'sepconv3x3', 'skip': [0], ...}
    with fixed_arch(arch):
        net = Net()                  # the chosen architecture, to retrain
"""
from .darts import DartsInputChoice, DartsLayerChoice, DartsTrainer
from .enas import EnasTrainer, ReinforceController, ReinforceField
from .fbnet import FBNetInputChoice, FBNetLayerChoice, FBNetTrainer
from .latency import FlopsLatencyPredictor, MeasuredLatencyPredictor, count_flops
from .proxyless import ProxylessInputChoice, ProxylessLayerChoice, ProxylessNasTrainer, ProxylessTrainer
from .random import RandomTrainer, SinglePathTrainer
from .sampling import PathSamplingInputChoice, PathSamplingLayerChoice
from .utils import replace_input_choice, replace_layer_choice

__all__ = [
    'DartsTrainer', 'EnasTrainer', 'FBNetTrainer', 'ProxylessTrainer', 'ProxylessNasTrainer', 'SinglePathTrainer', 'RandomTrainer',
    'replace_layer_choice', 'replace_input_choice',
    'DartsLayerChoice', 'DartsInputChoice', 'FBNetLayerChoice', 'FBNetInputChoice', 'ProxylessLayerChoice', 'ProxylessInputChoice',
    'PathSamplingLayerChoice', 'PathSamplingInputChoice', 'ReinforceController', 'ReinforceField',
    'FlopsLatencyPredictor', 'MeasuredLatencyPredictor', 'count_flops',
]
