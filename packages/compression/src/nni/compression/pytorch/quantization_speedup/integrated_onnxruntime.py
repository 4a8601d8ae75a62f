"""CPU backend: int8 inference of the quantized layers on ONNX Runtime."""
from __future__ import annotations

import copy
import logging
import os
import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .backend import BackendUnavailableError, BaseModelSpeedup
from .calibration import WEIGHTED_TYPES, LayerPlan, observe_ranges, parse_calibration_config
from .onnx_qdq import export_onnx, insert_qdq, map_nodes

_logger = logging.getLogger(__name__)


def _import_runtime():
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailableError(
            f"ModelSpeedupONNXRuntime needs onnx and onnxruntime ({err.name} is not installed): "
            "pip install 'nni-compress[onnx]'") from None
    return onnx, onnxruntime


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ModelSpeedupONNXRuntime(BaseModelSpeedup):
    """Runs a quantized model with int8 kernels on CPU through ONNX Runtime.

    The same arguments as :class:`ModelSpeedupTensorRT` (less the TensorRT-only
    ``calibrate_type`` / ``calibration_cache``): the model is exported to ONNX, the layers the
    calibration ``config`` lists with 8 bits get int8 weights and QuantizeLinear/DequantizeLinear
    nodes with the config's tracked ranges, and ONNX Runtime fuses them into int8 kernels.

    Args:
        model: the PyTorch model (its weights are the quantizer's quantized weights after QAT).
        input_shape: shape of one input, batch first (the batch dimension stays dynamic).
        config: calibration config from ``quantizer.export_model`` (``{layer: {'weight_bit': 8,
            'tracked_min_input': .., 'tracked_max_input': .., ['tracked_min_output': ..,
            'tracked_max_output': ..]}}``). ``None`` with ``calib_data_loader``: every
            Conv/Linear layer in int8 with observed ranges (post-training quantization).
        onnx_path: where the float ONNX export is written.
        extra_layer_bits: precision of the Conv/Linear layers the config does not list: 32
            (float) or 8 (int8, ranges observed on ``calib_data_loader``, which is then needed).
        strict_datatype: bits other than 8 and 32 are an error; if False, <= 8 runs in int8
            and more in float.
        calib_data_loader: iterable of input batches (or ``(input, target)`` pairs); fills the
            ranges the config lacks, e.g. outputs of layers quantized on weight/input only.
        batchsize: batch size of the export's dummy input (any batch size runs afterwards).
        input_names, output_names: ONNX names of the model's input and outputs.
        per_channel: int8 weights with one scale per output channel (True) or per tensor (False);
            default: per tensor where the weights are on a per-tensor 8-bit grid already (kept
            exactly), else per channel.
        num_threads: ONNX Runtime intra-op threads (default: the cores this process may use).
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int], config: Mapping[str, Any] | None = None,
                 onnx_path: str = "default_model.onnx", extra_layer_bits: int = 32, strict_datatype: bool = True,
                 calib_data_loader: Iterable[Any] | None = None, batchsize: int = 1,
                 input_names: Sequence[str] = ("actual_input_1",), output_names: Sequence[str] = ("output1",),
                 per_channel: bool | None = None, num_threads: int | None = None):
        super().__init__(model, config)
        if extra_layer_bits not in (8, 32):
            raise ValueError(f"extra_layer_bits={extra_layer_bits!r}: the ONNX Runtime backend runs unlisted "
                             "layers in float (32) or int8 (8)")
        if extra_layer_bits == 8 and calib_data_loader is None:
            raise ValueError("extra_layer_bits=8 needs calib_data_loader: the ranges of the layers outside "
                             "config are observed on it")
        if not isinstance(batchsize, int) or batchsize < 1:
            raise ValueError(f"batchsize={batchsize!r}: must be a positive int")
        if not input_shape or any(not isinstance(d, int) or d < 1 for d in input_shape):
            raise ValueError(f"input_shape={tuple(input_shape) if input_shape else input_shape!r}: "
                             "expected positive ints, batch first, e.g. (32, 1, 28, 28)")
        self.input_shape = (batchsize, *input_shape[1:])
        self.onnx_path = onnx_path
        self.extra_layer_bits = extra_layer_bits
        self.strict_datatype = strict_datatype
        self.calib_data_loader = calib_data_loader
        self.input_names, self.output_names = list(input_names), list(output_names)
        self.per_channel = per_channel
        self.num_threads = num_threads or _cpu_count()
        # checked now, so a bad config fails before the export
        self.plans = parse_calibration_config(model, config, strict_datatype) if model is not None else {}
        self.quantized_model = None  # the QDQ onnx.ModelProto
        self.session = None
        self.tensor_ranges: dict[str, tuple[float, float]] = {}

    # -- build ---------------------------------------------------------------------------------
    def _complete_plans(self) -> dict[str, LayerPlan]:
        """Config plans plus ranges observed on calib_data_loader where the config has none."""
        plans = {name: LayerPlan(**vars(p)) for name, p in self.plans.items()}
        modules = dict(self.model.named_modules())
        weighted = {n for n, m in modules.items() if isinstance(m, WEIGHTED_TYPES)}
        # the 8-bit layers: int8 weights, or (other modules) 8-bit outputs
        wanted = [n for n, p in plans.items() if p.int8_weight or (n not in weighted and p.precision == 8)]
        if self.config is None or self.extra_layer_bits == 8:
            wanted += sorted(weighted - set(plans))
        if self.calib_data_loader is not None and wanted:
            observed = observe_ranges(self.model, self.calib_data_loader, wanted)
            for name in wanted:
                entry = observed[name]
                plan = plans.setdefault(name, LayerPlan(name, int8_weight=name in weighted, precision=8))
                if plan.int8_weight and plan.input_range is None:
                    plan.input_range = (entry["tracked_min_input"], entry["tracked_max_input"])
                if plan.output_range is None:
                    plan.output_range = (entry["tracked_min_output"], entry["tracked_max_output"])
        if self.config is None and self.calib_data_loader is None:
            _logger.warning("ModelSpeedupONNXRuntime: no config and no calib_data_loader, the model runs in float")
        for name, plan in plans.items():
            if plan.int8_weight and plan.input_range is None:
                raise ValueError(f"config[{name!r}]: an 8-bit layer needs 'tracked_min_input' and "
                                 "'tracked_max_input' (or pass calib_data_loader to observe them)")
        return plans

    def compress(self) -> None:
        """Exports the model to ONNX, inserts the int8 QDQ nodes and opens an inference session."""
        onnx, _ = _import_runtime()
        if self.model is None:
            raise ValueError("model=None: compress() needs the PyTorch model; use load_quantized_model(path) "
                             "to run an exported one")
        plans = self._complete_plans()
        model = self.model
        if any(p.device.type != "cpu" for p in model.parameters()):
            model = copy.deepcopy(model).cpu()  # leave the caller's model where it is
        export_onnx(model, self.input_shape, self.onnx_path, self.input_names, self.output_names)
        quantized = onnx.load(self.onnx_path)
        nodes = map_nodes(quantized.graph, self.model, list(plans))
        self.tensor_ranges = insert_qdq(quantized, plans, nodes, per_channel=self.per_channel)
        onnx.checker.check_model(quantized)
        self.quantized_model = quantized
        self.plans = plans  # with the ranges observed on calib_data_loader
        n_int8 = sum(p.int8_weight for p in plans.values())
        _logger.info("ONNX Runtime backend: %d layers with int8 weights, %d quantized tensors",
                     n_int8, len(self.tensor_ranges))
        self.session = self._session(quantized.SerializeToString())

    def _session(self, model_bytes_or_path):
        _, ort = _import_runtime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of busy-waiting: spinning wins microseconds on an idle machine
        # but, on cores shared with other work, stalls everything
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model_bytes_or_path, options, providers=["CPUExecutionProvider"])

    # -- run -----------------------------------------------------------------------------------
    def inference(self, test_data) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], float]:
        """Runs the int8 model on ``test_data`` (a tensor; moved to host memory if elsewhere).

        Returns:
            ``(output, seconds)``: a torch tensor (a tuple for several outputs) and the time
            ONNX Runtime took for this batch.
        """
        if self.session is None:
            raise ValueError("inference(): no engine yet; call compress() or load_quantized_model(path) first")
        if isinstance(test_data, torch.Tensor):
            array = test_data.detach().to("cpu", torch.float32).numpy()
        else:
            array = np.asarray(test_data, dtype=np.float32)
        feed = {self.session.get_inputs()[0].name: array}
        start = time.perf_counter()
        outputs = self.session.run(None, feed)
        elapsed = time.perf_counter() - start
        tensors = tuple(torch.from_numpy(o) for o in outputs)
        return (tensors[0] if len(tensors) == 1 else tensors), elapsed

    def export_quantized_model(self, path: str) -> None:
        """Writes the int8 (QDQ) ONNX model to ``path``; any ONNX Runtime can load it."""
        if self.quantized_model is None:
            raise ValueError("export_quantized_model(): nothing built yet; call compress() first")
        onnx, _ = _import_runtime()
        onnx.save(self.quantized_model, path)

    def load_quantized_model(self, path: str) -> None:
        """Loads a model written by :meth:`export_quantized_model` for :meth:`inference`."""
        onnx, _ = _import_runtime()
        if not os.path.isfile(path):
            raise ValueError(f"load_quantized_model(path={path!r}): no such file")
        self.quantized_model = onnx.load(path)
        self.session = self._session(path)
