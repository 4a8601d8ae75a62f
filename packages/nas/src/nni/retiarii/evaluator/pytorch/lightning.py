"""Lightning evaluators (``import nni.retiarii.evaluator.pytorch.lightning as pl``).

* :class:`Classification` / :class:`Regression`: train the sampled model with a criterion and
  an optimizer, report the validation metric after every validation epoch
  (``nni.report_intermediate_result``) and the last one at the end of training
  (``nni.report_final_result``): validation **accuracy** for Classification, validation
  **mean squared error** for Regression (a lower-is-better metric: use ``optimize_mode =
  'minimize'`` in strategies). The metric is computed over all batches of all validation
  dataloaders together (exact, not a mean of batch means), whatever the criterion.
* :class:`Lightning`: any user :class:`LightningModule` + :class:`Trainer` + dataloaders. The
  module gets the sampled model through :meth:`LightningModule.set_model` (as ``self.model``)
  and reports its own metrics (e.g. in ``on_validation_epoch_end`` and ``teardown``).
* :class:`Trainer` and :class:`DataLoader`: ``lightning.pytorch.Trainer`` and
  ``torch.utils.data.DataLoader`` that record their init arguments, so evaluators built from
  them can be shipped to trial processes (see :mod:`nni.retiarii.serializer`).

Trial side (see :mod:`nni.retiarii.evaluator`): ``evaluator._execute(model)`` re-makes the
LightningModule and the Trainer from their recorded init arguments (a fresh trainer per run),
builds the model if it is given as a class / callable, calls ``set_model``, and runs
``trainer.fit``. When the trainer's ``default_root_dir`` was not given, it is set to the
trial's output folder (``$NNI_OUTPUT_DIR``), so logs and checkpoints of concurrent trials do
not mix in the working directory. ``_execute`` returns the fitted LightningModule.

ONNX export (``export_onnx=True``, Classification / Regression): before training, the model
is exported to ``$NNI_OUTPUT_DIR/model.onnx`` (for the web UI's Netron view), traced on the
first batch of the training dataloader. Outside an experiment (``NNI_OUTPUT_DIR`` unset) the
export is skipped (logged at INFO); if the exporter fails on the model, a warning says why and
training goes on.

Built on Lightning 2.x (``lightning.pytorch``) while keeping NNI v2.5's public signatures.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any, List, Optional, Type, Union

import lightning.pytorch as _lightning
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader as _TorchDataLoader

import nni
from nni.runtime.env_vars import trial_env

from ...serializer import get_trace, is_traceable, recreate, serialize, serialize_cls
from ..base import Evaluator

__all__ = ["LightningModule", "Trainer", "DataLoader", "Lightning", "Classification", "Regression"]

_logger = logging.getLogger(__name__)


@serialize_cls
class Trainer(_lightning.Trainer):
    """``lightning.pytorch.Trainer`` that records its init arguments (same arguments)."""


@serialize_cls
class DataLoader(_TorchDataLoader):
    """``torch.utils.data.DataLoader`` that records its init arguments (same arguments).

    A dataset that is not traceable is shipped to trials pickled by value; make big
    datasets with ``serialize(DatasetClass, ...)`` so trials re-create them instead.
    """


class LightningModule(_lightning.LightningModule):
    """Base class of the Lightning modules used in NNI evaluators.

    The evaluator calls :meth:`set_model` after ``__init__``; the searched model is then
    ``self.model``. Subclasses record their init arguments automatically (they need no
    ``@basic_unit`` / ``serialize_cls``, though either is harmless).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        serialize_cls(cls)

    def set_model(self, model: Union[nn.Module, Any]) -> None:
        """Keep the model to train as ``self.model`` (an instance, or a callable making one)."""
        self.model = model if isinstance(model, nn.Module) else model()


class _SupervisedLearningModule(LightningModule):
    """Criterion + optimizer training; reports one validation metric per validation epoch.

    Subclasses define ``metric_name`` and ``_metric_sum(y_hat, y) -> (sum, count)``.
    """

    metric_name = ""

    def __init__(self, criterion: Type[nn.Module], learning_rate: float, weight_decay: float,
                 optimizer: Type[optim.Optimizer]):
        super().__init__()
        self.criterion = criterion()
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer_class = optimizer
        self.last_metric: Optional[float] = None  # metric of the last (non-sanity) validation epoch
        self._sum = self._count = 0.0

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def _loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.criterion(y_hat, y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self._loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        y_hat = self(x)
        self.log("val_loss", self._loss(y_hat, y))  # "val_loss/dataloader_idx_<i>" with several loaders
        total, count = self._metric_sum(y_hat, y)
        self._sum += float(total)
        self._count += count

    def on_validation_epoch_start(self) -> None:
        self._sum = self._count = 0.0

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self._count:
            return
        value = self._sum / self._count
        self.log(f"val_{self.metric_name}", value)
        self.last_metric = value
        nni.report_intermediate_result(value)

    def on_fit_end(self) -> None:
        if self.last_metric is not None:
            nni.report_final_result(self.last_metric)

    def configure_optimizers(self) -> optim.Optimizer:
        return self.optimizer_class(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


class _ClassificationModule(_SupervisedLearningModule):
    metric_name = "acc"

    def _metric_sum(self, y_hat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        if y.dim() == y_hat.dim():  # one-hot or soft targets
            y = y.argmax(-1)
        return (y_hat.argmax(-1) == y).sum(), y.numel()


class _RegressionModule(_SupervisedLearningModule):
    metric_name = "mse"

    @staticmethod
    def _match(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # (N, 1) predictions against (N,) targets would broadcast to (N, N)
        if y_hat.shape != y.shape and y_hat.numel() == y.numel():
            return y_hat.reshape(y.shape)
        return y_hat

    def _loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.criterion(self._match(y_hat, y), y)

    def _metric_sum(self, y_hat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        y_hat = self._match(y_hat, y)
        return ((y_hat.float() - y.float()) ** 2).sum(), y.numel()


def _check_dataloader(owner: str, name: str, value: Any, allow_list: bool) -> None:
    if value is None or isinstance(value, _TorchDataLoader):
        return
    if allow_list and isinstance(value, (list, tuple)) and value and all(isinstance(v, _TorchDataLoader) for v in value):
        return
    allowed = "a DataLoader, a list of DataLoaders or None" if allow_list else "a DataLoader or None"
    raise TypeError(f"{owner}: {name} must be {allowed} (pl.DataLoader to be serializable), got {type(value).__qualname__}")


def _overrides(module: Any, hook: str) -> bool:
    return getattr(type(module), hook, None) is not getattr(_lightning.LightningModule, hook)


class Lightning(Evaluator):
    """Evaluator running a user :class:`LightningModule` with a :class:`Trainer`.

    Example::

        lightning = pl.Lightning(AutoEncoder(), pl.Trainer(max_epochs=10),
                                 train_dataloader=pl.DataLoader(train_dataset, batch_size=100),
                                 val_dataloaders=pl.DataLoader(test_dataset, batch_size=100))

    Args:
        lightning_module: a :class:`LightningModule` (subclass) instance; it receives the
            sampled model through ``set_model`` and reports its metrics itself.
        trainer: a :class:`Trainer` (``pl.Trainer``, which records its arguments).
        train_dataloader: used in ``trainer.fit()``; may be None if the module defines
            ``train_dataloader()``.
        val_dataloaders: one DataLoader or a list; may be None (no validation, or the
            module defines ``val_dataloader()``).
    """

    def __init__(self, lightning_module: LightningModule, trainer: Trainer,
                 train_dataloader: Optional[_TorchDataLoader] = None,
                 val_dataloaders: Union[_TorchDataLoader, List[_TorchDataLoader], None] = None):
        owner = type(self).__name__
        if not isinstance(lightning_module, LightningModule):
            raise TypeError(f"{owner}: lightning_module must inherit nni.retiarii.evaluator.pytorch.lightning.LightningModule, "
                            f"got {type(lightning_module).__qualname__}")
        if not isinstance(trainer, Trainer):
            raise TypeError(f"{owner}: trainer must be nni.retiarii.evaluator.pytorch.lightning.Trainer (pl.Trainer), "
                            f"got {type(trainer).__module__}.{type(trainer).__qualname__}")
        _check_dataloader(owner, "train_dataloader", train_dataloader, allow_list=False)
        _check_dataloader(owner, "val_dataloaders", val_dataloaders, allow_list=True)
        if train_dataloader is None and not _overrides(lightning_module, "train_dataloader"):
            raise ValueError(f"{owner}: train_dataloader is required (the lightning module defines no train_dataloader())")
        self.module = lightning_module
        self.trainer = trainer
        self.train_dataloader = train_dataloader
        self.val_dataloaders = val_dataloaders

    def _fresh_trainer(self) -> Trainer:
        trace = get_trace(self.trainer)
        kwargs = dict(trace.kwargs)
        output_dir = trial_env().output_dir
        if "default_root_dir" not in kwargs and output_dir:
            kwargs["default_root_dir"] = output_dir
        return serialize(trace.symbol, *trace.args, **kwargs)

    def _fresh_module(self) -> LightningModule:
        return recreate(self.module) if is_traceable(self.module) else self.module

    def _before_fit(self, module: LightningModule) -> None:
        """Hook run after ``set_model`` and before ``trainer.fit`` (ONNX export in subclasses)."""

    def _execute(self, model_cls_or_instance: Any) -> LightningModule:
        module = self._fresh_module()
        module.set_model(model_cls_or_instance)
        self._before_fit(module)
        trainer = self._fresh_trainer()
        trainer.fit(module, train_dataloaders=self.train_dataloader, val_dataloaders=self.val_dataloaders)
        return module


class _SupervisedEvaluator(Lightning):
    """Shared body of Classification and Regression."""

    _module_class: Type[_SupervisedLearningModule]
    # Defaults for a trial: its log is no terminal, and NAS keeps architectures, not weights.
    _trainer_defaults = {"enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False}

    def __init__(self, criterion: Type[nn.Module], learning_rate: float, weight_decay: float,
                 optimizer: Type[optim.Optimizer], train_dataloader: Optional[_TorchDataLoader],
                 val_dataloaders: Union[_TorchDataLoader, List[_TorchDataLoader], None],
                 export_onnx: bool, trainer_kwargs: dict):
        owner = type(self).__name__
        if not (isinstance(criterion, type) and issubclass(criterion, nn.Module)):
            raise TypeError(f"{owner}: criterion must be a loss class such as nn.CrossEntropyLoss (not an instance), "
                            f"got {criterion!r}")
        if not (isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer)):
            raise TypeError(f"{owner}: optimizer must be an optimizer class such as torch.optim.Adam (not an instance), "
                            f"got {optimizer!r}")
        if train_dataloader is None:
            raise ValueError(f"{owner}: train_dataloader is required")
        if val_dataloaders is None:
            raise ValueError(f"{owner}: val_dataloaders is required (the reported metric is computed on them)")
        module = self._module_class(criterion=criterion, learning_rate=learning_rate, weight_decay=weight_decay,
                                    optimizer=optimizer)
        trainer = Trainer(**{**self._trainer_defaults, **trainer_kwargs})
        super().__init__(module, trainer, train_dataloader=train_dataloader, val_dataloaders=val_dataloaders)
        self.export_onnx = export_onnx

    def _before_fit(self, module: LightningModule) -> None:
        if self.export_onnx:
            _export_onnx(module.model, self.train_dataloader)

    def _execute(self, model_cls_or_instance: Any) -> LightningModule:
        module = super()._execute(model_cls_or_instance)
        if module.last_metric is None:
            raise RuntimeError(f"{type(self).__name__}: no validation epoch ran (empty val_dataloaders, "
                               "limit_val_batches=0 or training stopped early), so there is no final result to report")
        return module


class Classification(_SupervisedEvaluator):
    """Evaluator for classification: reports validation accuracy (intermediate per validation
    epoch, final = last validation epoch).

    Args:
        criterion: loss **class** (not an instance). Default ``nn.CrossEntropyLoss``.
        learning_rate: learning rate. Default 0.001.
        weight_decay: L2 weight decay. Default 0.
        optimizer: optimizer **class** (not an instance). Default ``torch.optim.Adam``.
        train_dataloader: DataLoader of ``(x, y)`` training batches (required).
        val_dataloaders: DataLoader or list of DataLoaders of ``(x, y)`` validation batches
            (required: the reported accuracy is computed on them).
        export_onnx: export the model to ``$NNI_OUTPUT_DIR/model.onnx`` before training.
        trainer_kwargs: passed to :class:`Trainer` (e.g. ``max_epochs=2``,
            ``limit_train_batches=0.2``). Unless given, ``enable_progress_bar``,
            ``enable_model_summary`` and ``enable_checkpointing`` are False.
    """

    _module_class = _ClassificationModule

    def __init__(self, criterion: Type[nn.Module] = nn.CrossEntropyLoss, learning_rate: float = 0.001,
                 weight_decay: float = 0., optimizer: Type[optim.Optimizer] = optim.Adam,
                 train_dataloader: Optional[_TorchDataLoader] = None,
                 val_dataloaders: Union[_TorchDataLoader, List[_TorchDataLoader], None] = None,
                 export_onnx: bool = True, **trainer_kwargs: Any):
        super().__init__(criterion, learning_rate, weight_decay, optimizer, train_dataloader, val_dataloaders,
                         export_onnx, trainer_kwargs)


class Regression(_SupervisedEvaluator):
    """Evaluator for regression: reports validation mean squared error (lower is better;
    intermediate per validation epoch, final = last validation epoch).

    Same arguments as :class:`Classification`, with ``criterion`` defaulting to ``nn.MSELoss``.
    Predictions of shape ``(N, 1)`` are matched to targets of shape ``(N,)``.
    """

    _module_class = _RegressionModule

    def __init__(self, criterion: Type[nn.Module] = nn.MSELoss, learning_rate: float = 0.001,
                 weight_decay: float = 0., optimizer: Type[optim.Optimizer] = optim.Adam,
                 train_dataloader: Optional[_TorchDataLoader] = None,
                 val_dataloaders: Union[_TorchDataLoader, List[_TorchDataLoader], None] = None,
                 export_onnx: bool = True, **trainer_kwargs: Any):
        super().__init__(criterion, learning_rate, weight_decay, optimizer, train_dataloader, val_dataloaders,
                         export_onnx, trainer_kwargs)


def _export_onnx(model: nn.Module, dataloader: _TorchDataLoader) -> Optional[str]:
    """Export ``model`` to ``$NNI_OUTPUT_DIR/model.onnx``; the path, or None when skipped."""
    output_dir = trial_env().output_dir
    if not output_dir:
        _logger.info("export_onnx: NNI_OUTPUT_DIR is not set (not in a trial), model.onnx not written")
        return None
    path = os.path.join(output_dir, "model.onnx")
    was_training = model.training
    try:
        batch = next(iter(dataloader))
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        model.eval()
        os.makedirs(output_dir, exist_ok=True)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation / tracer chatter
            # The TorchScript-based exporter: fast, and it needs no onnxscript in the trial.
            torch.onnx.export(model, (x,), path, dynamo=False)
    except Exception as err:  # any model the exporter cannot handle must not fail the trial
        warnings.warn(f"export_onnx: could not export the model to {path}: {type(err).__name__}: {err}", stacklevel=2)
        return None
    finally:
        model.train(was_training)
    return path
