"""Hardware-aware filtering: ``LatencyFilter`` for ``Random(model_filter=...)`` and its predictors."""
from __future__ import annotations

import inspect
import logging
import statistics
import time
from typing import Any, Optional, Sequence, Tuple, Union

import torch

from ..graph import Model

__all__ = ['LatencyFilter', 'MeasuredLatencyPredictor', 'FlopsPredictor', 'build_module', 'fill_dummy_input']

_logger = logging.getLogger(__name__)

DummyInput = Union[Sequence[int], torch.Tensor]


def build_module(model: Model) -> torch.nn.Module:
    """The torch module a sampled :class:`Model` describes (pure-python or graph-based)."""
    if model.python_class is not None:
        from ..space import instantiate
        return instantiate(model)
    if model.root_graph is not None:
        from ..codegen import model_to_pytorch_module
        return model_to_pytorch_module(model)
    raise ValueError('LatencyFilter: the model has neither a python_class nor graphs, it cannot be built')


def _dummy_tensor(dummy_input: DummyInput) -> torch.Tensor:
    if isinstance(dummy_input, torch.Tensor):
        return dummy_input
    shape = list(dummy_input)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f'LatencyFilter: dummy_input must be a shape (a list of positive ints, e.g. [1, 3, 32, 32]) or a tensor, got {dummy_input!r}')
    return torch.zeros(shape)


class MeasuredLatencyPredictor:
    """Latency in milliseconds measured on this machine's CPU: the median of ``repeat`` forward passes
    (after ``warmup`` untimed ones) on ``example_inputs``, in eval mode without autograd.

    It runs on ``num_threads`` torch threads (default 1, set for the measurement and restored after): one core
    is the usual edge-device setting, and multi-threaded timings of small models vary by orders of magnitude
    with the load of the machine. Same call signature as the one-shot trainers' latency predictors.
    """

    def __init__(self, repeat: int = 5, warmup: int = 1, num_threads: int = 1):
        self.repeat = repeat
        self.warmup = warmup
        self.num_threads = num_threads

    def __call__(self, module: torch.nn.Module, example_inputs: Tuple[Any, ...]) -> float:
        was_training = module.training
        module.eval()
        times = []
        saved = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            with torch.no_grad():
                for i in range(self.warmup + self.repeat):
                    start = time.perf_counter()
                    module(*example_inputs)
                    if i >= self.warmup:
                        times.append(time.perf_counter() - start)
        finally:
            torch.set_num_threads(saved)
            module.train(was_training)
        return statistics.median(times) * 1000.0


class FlopsPredictor:
    """FLOPs of one forward pass on ``example_inputs``, in millions (MFLOPs), counted by
    ``nni.compression.pytorch.utils.counter.count_flops_params`` (needs nni-compress). Deterministic: a
    machine-independent latency proxy."""

    def __init__(self, mode: str = 'default'):
        try:
            from nni.compression.pytorch.utils.counter import count_flops_params
        except ImportError as err:
            raise ImportError('FlopsPredictor needs nni-compress (nni.compression.pytorch.utils.counter); '
                              'install it or use MeasuredLatencyPredictor') from err
        self._count = count_flops_params
        self.mode = mode

    def __call__(self, module: torch.nn.Module, example_inputs: Tuple[Any, ...]) -> float:
        x = example_inputs[0] if len(example_inputs) == 1 else tuple(example_inputs)
        flops, _, _ = self._count(module, x, verbose=False, mode=self.mode)
        return flops / 1e6


def _positional_arity(fn: Any) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)


class LatencyFilter:
    """A ``model_filter`` that admits the models whose predicted latency is at most ``threshold``.

    Args:
        threshold: the largest admitted prediction (in the predictor's unit; milliseconds for the default).
        predictor: what predicts a model's latency, one of
            * ``None``: :class:`MeasuredLatencyPredictor` (median single-thread CPU latency in ms);
            * an nn-Meter predictor (an object with ``predict(model, model_type, input_shape=...)``, e.g. from
              ``nn_meter.load_latency_predictor``): called with the torch module, ``model_type='torch'`` and the
              ``dummy_input`` shape; its unit is ms;
            * a callable ``predictor(module, example_inputs) -> float`` (:class:`MeasuredLatencyPredictor`,
              :class:`FlopsPredictor`, or the one-shot trainers' predictors) or ``predictor(module) -> float``.
        dummy_input: the input shape (e.g. ``[1, 3, 32, 32]``, as ``RetiariiExeConfig.dummy_input``) or a tensor;
            ``example_inputs`` is ``(zeros of that shape,)``. Needed by every predictor but ``predictor(module)``.

    Calling the filter builds the model (``space.instantiate`` / code generation) and returns
    ``predicted <= threshold``; ``latencies`` keeps ``model_id -> prediction`` of every model it judged.
    """

    def __init__(self, threshold: float, predictor: Any = None, dummy_input: Optional[DummyInput] = None):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ValueError(f'LatencyFilter: threshold must be a number, got {threshold!r}')
        if predictor is not None and not (callable(predictor) or hasattr(predictor, 'predict')):
            raise ValueError(f'LatencyFilter: predictor must be None, an nn-Meter predictor (with .predict) or a callable '
                             f'(module, example_inputs) -> float, got {type(predictor).__name__}')
        if dummy_input is not None:
            _dummy_tensor(dummy_input)  # validate now: a one-line error at construction
        self.threshold = float(threshold)
        self.dummy_input = dummy_input
        self.predictor = predictor if predictor is not None else MeasuredLatencyPredictor()
        self.latencies: dict = {}

    def _example_inputs(self) -> Tuple[torch.Tensor]:
        if self.dummy_input is None:
            raise ValueError('LatencyFilter: dummy_input is not set; pass LatencyFilter(..., dummy_input=[1, 3, 32, 32]) '
                             '(the input shape the latency is predicted for)')
        return (_dummy_tensor(self.dummy_input),)

    def predict(self, model: Model) -> float:
        """The predicted latency of ``model``."""
        module = build_module(model)
        predictor = self.predictor
        if hasattr(predictor, 'predict') and not callable(predictor):
            shape = list(self._example_inputs()[0].shape)
            return float(predictor.predict(module, model_type='torch', input_shape=shape))
        if _positional_arity(predictor) >= 2:
            return float(predictor(module, self._example_inputs()))
        return float(predictor(module))

    def __call__(self, model: Model) -> bool:
        latency = self.predict(model)
        self.latencies[model.model_id] = latency
        admitted = latency <= self.threshold
        if not admitted:
            _logger.info('LatencyFilter: model %d predicted %.4g > threshold %.4g; not submitted', model.model_id, latency, self.threshold)
        return admitted


def fill_dummy_input(strategy: Any, dummy_input: Optional[DummyInput]) -> list:
    """Give ``dummy_input`` (``RetiariiExeConfig.dummy_input``) to each :class:`LatencyFilter` of ``strategy``
    (found among its attributes, e.g. ``Random.model_filter``) that has none; returns the filters it filled.
    A filter's own ``dummy_input`` wins."""
    if dummy_input is None:
        return []
    filled = []
    for value in list(vars(strategy).values()) if hasattr(strategy, '__dict__') else []:
        if isinstance(value, LatencyFilter) and value.dummy_input is None:
            _dummy_tensor(dummy_input)  # a one-line error for a bad shape
            value.dummy_input = list(dummy_input) if not isinstance(dummy_input, torch.Tensor) else dummy_input
            filled.append(value)
    return filled
