"""Lightning evaluators for the CGO engine (``execution_engine='cgo'``).

The CGO engine merges several sampled models that share one evaluator (hence one dataset and input
pipeline) into one module whose ``forward(x)`` returns one output per model
(:mod:`nni.retiarii.execution.logical_plan`). :class:`MultiModelSupervisedLearningModule` trains such a
module on each batch, loaded once: the loss is the **sum** of the per-model losses, so each model's
parameters get exactly the gradient they would get alone (the models share no parameter, and Adam / SGD /
weight decay act per parameter). Every validation epoch it reports, with ``nni.report_intermediate_result``,
``{'default': <mean over models>, 'model_0': <metric of model 0>, ...}`` and at the end of fitting the
same as the final result; the engine gives ``model_<i>`` to the i-th merged model. The metric is the first
entry of ``metrics``. An unmerged model (any plain module) is a merge of one.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Type, Union

import torch
import torch.nn as nn
import torch.optim as optim
import torchmetrics
from torch.utils.data import DataLoader as _TorchDataLoader

import nni

from ..lightning import Lightning, LightningModule, Trainer

__all__ = ['MultiModelSupervisedLearningModule', 'Classification', 'Regression', 'AccuracyMetric', 'MSEMetric']

#: attribute of a merged module: how many models it holds (its forward returns that many outputs)
NUM_MODELS_ATTR = 'cgo_num_models'


class AccuracyMetric(torchmetrics.Metric):
    """Top-1 accuracy of logits against class indices (or one-hot / soft targets); no ``num_classes`` needed."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state('correct', default=torch.tensor(0.), dist_reduce_fx='sum')
        self.add_state('total', default=torch.tensor(0.), dist_reduce_fx='sum')

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if target.dim() == preds.dim():
            target = target.argmax(-1)
        self.correct += (preds.argmax(-1) == target).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.correct / self.total


class MSEMetric(torchmetrics.Metric):
    """Mean squared error; predictions of shape ``(N, 1)`` are matched to targets of shape ``(N,)``."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state('sse', default=torch.tensor(0.), dist_reduce_fx='sum')
        self.add_state('total', default=torch.tensor(0.), dist_reduce_fx='sum')

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        preds = _match(preds, target)
        self.sse += ((preds.float() - target.float()) ** 2).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.sse / self.total


def _match(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y_hat.shape != y.shape and y_hat.numel() == y.numel():
        return y_hat.reshape(y.shape)
    return y_hat


class MultiModelSupervisedLearningModule(LightningModule):
    """Lightning module of supervised learning for cross-graph optimization (see the module docstring).

    Args:
        criterion: loss **class** (not an instance), e.g. ``nn.CrossEntropyLoss``.
        metrics: ``name -> torchmetrics.Metric``; each merged model gets its own copy. The first one is reported.
        learning_rate: learning rate. Default 0.001.
        weight_decay: L2 weight decay. Default 0.
        optimizer: optimizer **class** (not an instance). Default ``torch.optim.Adam``.
    """

    def __init__(self, criterion: Type[nn.Module], metrics: Dict[str, torchmetrics.Metric],
                 learning_rate: float = 0.001, weight_decay: float = 0., optimizer: Type[optim.Optimizer] = optim.Adam):
        super().__init__()
        owner = type(self).__name__
        if not (isinstance(criterion, type) and issubclass(criterion, nn.Module)):
            raise TypeError(f'{owner}: criterion must be a loss class such as nn.CrossEntropyLoss (not an instance), got {criterion!r}')
        if not (isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer)):
            raise TypeError(f'{owner}: optimizer must be an optimizer class such as torch.optim.Adam (not an instance), got {optimizer!r}')
        if not isinstance(metrics, dict) or not metrics or \
                not all(isinstance(k, str) and isinstance(v, torchmetrics.Metric) for k, v in metrics.items()):
            raise TypeError(f'{owner}: metrics must be a non-empty dict name -> torchmetrics.Metric, got {metrics!r}')
        self.criterion = criterion()
        self.metric_templates = metrics
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer_class = optimizer
        self.num_models = 1
        self.val_metrics = nn.ModuleList()
        self.last_metrics: Optional[List[float]] = None  # first metric per model, last (non-sanity) validation epoch

    def set_model(self, model: Union[nn.Module, Any]) -> None:
        super().set_model(model)
        self.num_models = int(getattr(self.model, NUM_MODELS_ATTR, 1))
        self.val_metrics = nn.ModuleList(
            nn.ModuleDict({name: copy.deepcopy(m) for name, m in self.metric_templates.items()}) for _ in range(self.num_models))

    def forward(self, x: Any) -> List[Any]:
        """One output per merged model."""
        out = self.model(x)
        if self.num_models == 1 and not hasattr(self.model, NUM_MODELS_ATTR):
            return [out]
        if not isinstance(out, (tuple, list)) or len(out) != self.num_models:
            raise RuntimeError(f'{type(self).__name__}: the merged model must return {self.num_models} outputs, got {type(out).__name__}')
        return list(out)

    def _loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.criterion(y_hat, y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        losses = [self._loss(out, y) for out in self(x)]
        for i, loss in enumerate(losses):
            self.log(f'train_loss/model_{i}', loss)
        return torch.stack(losses).sum()  # independent models: the sum gives each its own gradient

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        for out, metrics in zip(self(x), self.val_metrics):
            for metric in metrics.values():
                metric.update(out.detach(), y)

    def on_validation_epoch_end(self) -> None:
        values: List[float] = []
        for metrics in self.val_metrics:
            computed = {}
            for name, metric in metrics.items():
                if getattr(metric, '_update_count', 1):
                    computed[name] = float(metric.compute())
                metric.reset()
            if computed:
                values.append(next(iter(computed.values())))
        if self.trainer.sanity_checking or len(values) != self.num_models:
            return
        self.last_metrics = values
        nni.report_intermediate_result(self._report(values))

    def on_fit_end(self) -> None:
        if self.last_metrics is not None:
            nni.report_final_result(self._report(self.last_metrics))

    @staticmethod
    def _report(values: List[float]) -> Dict[str, float]:
        report = {'default': sum(values) / len(values)}
        report.update({f'model_{i}': v for i, v in enumerate(values)})
        return report

    def configure_optimizers(self) -> optim.Optimizer:
        return self.optimizer_class(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


class _RegressionModule(MultiModelSupervisedLearningModule):
    def _loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.criterion(_match(y_hat, y), y)


class _MultiModelEvaluator(Lightning):
    _module_class: Type[MultiModelSupervisedLearningModule] = MultiModelSupervisedLearningModule
    _metric_class: Type[torchmetrics.Metric]
    # as the single-model evaluators: a trial's log is no terminal, and NAS keeps architectures, not weights
    _trainer_defaults = {'enable_progress_bar': False, 'enable_model_summary': False, 'enable_checkpointing': False}

    def __init__(self, criterion: Type[nn.Module], learning_rate: float, weight_decay: float, optimizer: Type[optim.Optimizer],
                 train_dataloader: Optional[_TorchDataLoader], val_dataloaders: Union[_TorchDataLoader, List[_TorchDataLoader], None],
                 trainer_kwargs: dict):
        owner = type(self).__name__
        if train_dataloader is None:
            raise ValueError(f'{owner}: train_dataloader is required')
        if val_dataloaders is None:
            raise ValueError(f'{owner}: val_dataloaders is required (the reported metrics are computed on them)')
        module = self._module_class(criterion=criterion, metrics={self._metric_name: self._metric_class()},
                                    learning_rate=learning_rate, weight_decay=weight_decay, optimizer=optimizer)
        trainer = Trainer(**{**self._trainer_defaults, **trainer_kwargs})
        super().__init__(module, trainer, train_dataloader=train_dataloader, val_dataloaders=val_dataloaders)

    def _execute(self, model_cls_or_instance: Any) -> LightningModule:
        module = super()._execute(model_cls_or_instance)
        if module.last_metrics is None:
            raise RuntimeError(f'{type(self).__name__}: no validation epoch ran (empty val_dataloaders, limit_val_batches=0 '
                               'or training stopped early), so there is no final result to report')
        return module


class Classification(_MultiModelEvaluator):
    """Classification for the CGO engine: reports validation accuracy per merged model.

    Same arguments as :class:`nni.retiarii.evaluator.pytorch.lightning.Classification` except ``export_onnx``
    (merged models are not exported).
    """

    _metric_name = 'acc'
    _metric_class = AccuracyMetric

    def __init__(self, criterion: Type[nn.Module] = nn.CrossEntropyLoss, learning_rate: float = 0.001,
                 weight_decay: float = 0., optimizer: Type[optim.Optimizer] = optim.Adam,
                 train_dataloader: Optional[_TorchDataLoader] = None,
                 val_dataloaders: Union[_TorchDataLoader, List[_TorchDataLoader], None] = None, **trainer_kwargs: Any):
        super().__init__(criterion, learning_rate, weight_decay, optimizer, train_dataloader, val_dataloaders, trainer_kwargs)


class Regression(_MultiModelEvaluator):
    """Regression for the CGO engine: reports validation mean squared error per merged model (lower is better)."""

    _module_class = _RegressionModule
    _metric_name = 'mse'
    _metric_class = MSEMetric

    def __init__(self, criterion: Type[nn.Module] = nn.MSELoss, learning_rate: float = 0.001,
                 weight_decay: float = 0., optimizer: Type[optim.Optimizer] = optim.Adam,
                 train_dataloader: Optional[_TorchDataLoader] = None,
                 val_dataloaders: Union[_TorchDataLoader, List[_TorchDataLoader], None] = None, **trainer_kwargs: Any):
        super().__init__(criterion, learning_rate, weight_decay, optimizer, train_dataloader, val_dataloaders, trainer_kwargs)


def is_multi_model_evaluator(evaluator: Any) -> bool:
    """True when ``evaluator`` can train merged models (a Lightning evaluator with a MultiModelSupervisedLearningModule)."""
    return isinstance(evaluator, Lightning) and isinstance(evaluator.module, MultiModelSupervisedLearningModule)
