"""What one auto-compression trial does: decode the sampled parameters, compress the user's
model with the chosen algorithm, fine-tune it when asked, evaluate it and report the score."""
from __future__ import annotations

import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

from .constants import algorithm_kind, get_compressor_class
from .interface import AbstractAutoCompressionModule
from .search_space import decode_parameters

__all__ = ["AutoCompressionEngine", "CompressionResult"]

_logger = logging.getLogger("nni.algorithms.compression.pytorch.auto_compress")

#: constructor arguments the engine fills from the module; ``parameter::`` keys may not set them
_FROM_MODULE = ("optimizer", "trainer", "criterion")


class CompressionResult:
    """The outcome of :meth:`AutoCompressionEngine.compress_and_evaluate`."""

    def __init__(self, name: str, config_list: list, kwargs: dict, model: Any, compressor: Any, score: Any):
        self.name = name
        self.config_list = config_list
        self.kwargs = kwargs
        self.model = model
        self.compressor = compressor
        self.score = score


def _score_value(score: Any, where: str) -> Any:
    import numbers

    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        if isinstance(score, dict) and isinstance(score.get("default"), numbers.Real):
            return score
        raise ValueError(f"{where} must return a number (or a dict with a numeric 'default'), got {score!r}")
    return float(score)


class AutoCompressionEngine:
    """Runs the compression a trial was given (usable without an experiment, e.g. to redo the best trial)."""

    @classmethod
    def compress_and_evaluate(cls, module: type[AbstractAutoCompressionModule], name: str, config_list: list[dict],
                              kwargs: Optional[dict] = None) -> CompressionResult:
        """Compress ``module.model()`` with algorithm ``name``, fine-tune, evaluate.

        Raises:
            ValueError: one line, when the module lacks what the algorithm needs or the
                config_list / arguments are wrong.
        """
        kwargs = dict(kwargs or {})
        kind = algorithm_kind(name)
        compressor_cls = get_compressor_class(name)
        owner = f"{compressor_cls.__name__} ({name!r})"
        clash = sorted(set(kwargs) & set(_FROM_MODULE + ("model", "config_list")))
        if clash:
            raise ValueError(f"{owner}: argument {clash[0]!r} cannot come from the search space "
                             f"(parameter::{clash[0]}); it is taken from the AutoCompressionModule")
        model = module.model()
        factory = module.optimizer_factory()
        criterion = module.criterion()
        params = inspect.signature(compressor_cls.__init__).parameters
        unknown = sorted(k for k in kwargs if k not in params)
        if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            allowed = [p for p in params if p not in ("self", "model", "config_list") + _FROM_MODULE
                       and params[p].kind is not inspect.Parameter.VAR_POSITIONAL]
            raise ValueError(f"{owner}: unknown argument {unknown[0]!r} (parameter::{unknown[0]}); allowed: {allowed}")
        optimizer = None
        ctor: dict[str, Any] = {}
        needs = {
            "optimizer": ("optimizer_factory()", lambda: factory(model.parameters()) if factory is not None else None),
            "trainer": (f"sparsifying_trainer({name!r})", lambda: module.sparsifying_trainer(name)),
            "criterion": ("criterion()", lambda: criterion),
        }
        for arg, (method, make) in needs.items():
            if arg not in params:
                continue
            value = make()
            if value is None:
                if params[arg].default is inspect.Parameter.empty:
                    raise ValueError(f"{owner} needs {arg!r}: implement {module.__name__}.{method} "
                                     f"(it returns None)")
                continue
            ctor[arg] = value
            if arg == "optimizer":
                optimizer = value
        ctor.update(kwargs)
        compressor = compressor_cls(model, config_list, **ctor)
        model = compressor.compress()

        trainer = module.post_compress_finetuning_trainer(name)
        epochs = module.post_compress_finetuning_epochs(name) if trainer is not None else 0
        if trainer is not None:
            if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
                raise ValueError(f"{module.__name__}.post_compress_finetuning_epochs({name!r}) must return an "
                                 f"integer >= 0, got {epochs!r}")
            if epochs == 0:
                _logger.warning("%s.post_compress_finetuning_trainer(%r) is set but post_compress_finetuning_epochs "
                                "is 0: no fine-tuning", module.__name__, name)
        if epochs:
            if criterion is None or factory is None:
                missing = "criterion()" if criterion is None else "optimizer_factory()"
                raise ValueError(f"fine-tuning after {name!r} needs {module.__name__}.{missing} (it returns None)")
            if optimizer is None:
                optimizer = factory(model.parameters())
                if kind == "pruner":
                    # keep pruned weights at zero after every step, as a pruner given this optimizer would
                    compressor.optimizer = optimizer
                    compressor.patch_optimizer(compressor._apply_all_masks)
            for epoch in range(epochs):
                trainer(model, optimizer, criterion, epoch)

        evaluator = module.evaluator()
        if not callable(evaluator):
            raise ValueError(f"{module.__name__}.evaluator() must return a function model -> score, got {evaluator!r}")
        score = _score_value(evaluator(model), f"the evaluator of {module.__name__}")
        return CompressionResult(name, config_list, kwargs, model, compressor, score)

    @classmethod
    def trial_execute_compress(cls, module: type[AbstractAutoCompressionModule]) -> CompressionResult:
        """The trial: get the parameters from the tuner, compress and evaluate, save the compressed
        model in the trial's output folder, report the score as the final result."""
        import nni

        parameters = nni.get_next_parameter()
        if not parameters:
            raise ValueError("no parameters from the tuner: this entry point is run by AutoCompressionExperiment trials")
        name, config_list, kwargs = decode_parameters(parameters)
        _logger.info("compressing with %s, config_list %s, arguments %s", name, config_list, kwargs)
        result = cls.compress_and_evaluate(module, name, config_list, kwargs)
        cls._save(result, Path(os.environ.get("NNI_OUTPUT_DIR") or "."))
        nni.report_final_result(result.score)
        return result

    @staticmethod
    def _save(result: CompressionResult, out: Path) -> None:
        """``compression.json`` (algorithm, config_list, arguments, score) and the compressor's
        ``export_model`` files: ``model.pth`` and ``mask.pth`` (pruners) or ``calibration.pth`` (quantizers)."""
        out.mkdir(parents=True, exist_ok=True)
        info = {"algorithm_name": result.name, "config_list": result.config_list, "parameters": result.kwargs,
                "score": result.score}
        (out / "compression.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        second = "mask.pth" if algorithm_kind(result.name) == "pruner" else "calibration.pth"
        result.compressor.export_model(str(out / "model.pth"), str(out / second))
