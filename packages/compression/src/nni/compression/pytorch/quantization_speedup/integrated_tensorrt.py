"""GPU backend: a mixed-precision TensorRT engine built from the calibration config.

PyTorch -> ONNX -> TensorRT (the docs' design). Needs the ``tensorrt`` package and a CUDA GPU;
without them constructing :class:`ModelSpeedupTensorRT` fails with one line that names the CPU
backend, :class:`~.integrated_onnxruntime.ModelSpeedupONNXRuntime`, which takes the same arguments.
"""
from __future__ import annotations

import copy
import importlib.util
import logging
import os
import time
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from .backend import BackendUnavailableError, BaseModelSpeedup
from .calibration import LayerPlan, parse_calibration_config
from .onnx_qdq import export_onnx, map_nodes

_logger = logging.getLogger(__name__)

_CPU_HINT = ("on CPU use nni.compression.pytorch.quantization_speedup.ModelSpeedupONNXRuntime "
             "(same arguments, int8 through ONNX Runtime)")


def _require_tensorrt():
    if importlib.util.find_spec("tensorrt") is None:
        raise BackendUnavailableError(f"ModelSpeedupTensorRT needs the tensorrt package and a CUDA GPU "
                                      f"(tensorrt is not installed); {_CPU_HINT}")
    if not torch.cuda.is_available():
        raise BackendUnavailableError(f"ModelSpeedupTensorRT needs a CUDA GPU (torch.cuda.is_available() is "
                                      f"False); {_CPU_HINT}")
    import tensorrt

    return tensorrt


class ModelSpeedupTensorRT(BaseModelSpeedup):
    """Builds a TensorRT engine running each layer at the precision the calibration config gives.

    Args:
        model: the PyTorch model (after quantization-aware training, with its quantized weights).
        input_shape: input shape, batch first; the engine's batch is ``batchsize``.
        config: calibration config from ``quantizer.export_model``; layers with 8 bits run in
            int8 with the config's tracked ranges as TensorRT dynamic ranges. ``None``:
            post-training quantization by TensorRT on ``calib_data_loader``.
        onnx_path: where the intermediate ONNX model is written.
        extra_layer_bits: precision of the layers the config does not list (32, 16 or 8).
        strict_datatype: make TensorRT keep the requested precisions (else it may pick faster ones);
            bits other than 8/16/32 are an error (with False they round up).
        calibrate_type: a ``tensorrt.CalibrationAlgoType`` (default ENTROPY_CALIBRATION_2).
        calib_data_loader: batches for TensorRT's calibration (post-training quantization).
        calibration_cache: file caching TensorRT's calibration.
        batchsize: the engine's batch size.
        input_names, output_names: names of the engine's input and outputs.
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int], config: Mapping[str, Any] | None = None,
                 onnx_path: str = "default_model.onnx", extra_layer_bits: int = 32, strict_datatype: bool = True,
                 calibrate_type=None, calib_data_loader: Iterable[Any] | None = None,
                 calibration_cache: str = "calibration.cache", batchsize: int = 1,
                 input_names: Sequence[str] = ("actual_input_1",), output_names: Sequence[str] = ("output1",)):
        super().__init__(model, config)
        self.trt = _require_tensorrt()
        if extra_layer_bits not in (8, 16, 32):
            raise ValueError(f"extra_layer_bits={extra_layer_bits!r}: allowed 32 (float), 16 (half), 8 (int8)")
        if not isinstance(batchsize, int) or batchsize < 1:
            raise ValueError(f"batchsize={batchsize!r}: must be a positive int")
        self.input_shape = (batchsize, *input_shape[1:])
        self.onnx_path = onnx_path
        self.extra_layer_bits = extra_layer_bits
        self.strict_datatype = strict_datatype
        self.calibrate_type = calibrate_type or self.trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2
        self.calib_data_loader = calib_data_loader
        self.calibration_cache = calibration_cache
        self.batchsize = batchsize
        self.input_names, self.output_names = list(input_names), list(output_names)
        self.plans: dict[str, LayerPlan] = (
            parse_calibration_config(model, config, strict_datatype, supported=(8, 16, 32)) if model is not None else {})
        self._logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.engine = None
        self.context = None

    # -- build ---------------------------------------------------------------------------------
    def compress(self) -> None:
        """Gets the ONNX model and its per-layer precisions, and builds the TensorRT engine."""
        import onnx

        trt = self.trt
        # a fixed batch: a dynamic one would need TensorRT optimisation profiles
        model = self.model
        if any(p.device.type != "cpu" for p in model.parameters()):
            model = copy.deepcopy(model).cpu()  # leave the caller's model where it is
        export_onnx(model, self.input_shape, self.onnx_path, self.input_names, self.output_names,
                    dynamic_batch=False)
        graph = onnx.load(self.onnx_path).graph
        node_to_layer = {node.name: name for name, node in map_nodes(graph, self.model, list(self.plans)).items()}
        builder = trt.Builder(self._logger)
        flags = 0
        if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        with open(self.onnx_path, "rb") as f:
            if not parser.parse(f.read()):
                errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise RuntimeError(f"TensorRT could not parse {self.onnx_path}: {errors}")
        config = builder.create_builder_config()
        precisions = {p.precision for p in self.plans.values()} | {self.extra_layer_bits}
        if 8 in precisions:
            config.set_flag(trt.BuilderFlag.INT8)
        if 16 in precisions:
            config.set_flag(trt.BuilderFlag.FP16)
        if self.strict_datatype:
            strict = getattr(trt.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS", None) or trt.BuilderFlag.STRICT_TYPES
            config.set_flag(strict)
        if self.config is None or (self.extra_layer_bits == 8 and self.calib_data_loader is not None):
            if self.calib_data_loader is None:
                raise ValueError("config=None needs calib_data_loader: TensorRT calibrates the int8 ranges on it")
            from .calibrator import Calibrator

            config.int8_calibrator = Calibrator(self.calib_data_loader, self.calibration_cache, self.batchsize,
                                                self.calibrate_type)
        self._set_precisions(network, node_to_layer)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build the engine (see its log above)")
        self.engine = trt.Runtime(self._logger).deserialize_cuda_engine(serialized)
        self.context = self.engine.create_execution_context()

    def _set_precisions(self, network, node_to_layer: dict[str, str]) -> None:
        trt = self.trt
        dtype = {8: trt.int8, 16: trt.float16, 32: trt.float32}
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            # TensorRT names a parsed layer after its ONNX node (sometimes with a suffix)
            module = next((m for n, m in node_to_layer.items() if layer.name == n or layer.name.startswith(n + "_")),
                          None)
            plan = self.plans.get(module) if module else None
            if plan is None:
                if layer.type in (trt.LayerType.CONVOLUTION, trt.LayerType.FULLY_CONNECTED, trt.LayerType.MATRIX_MULTIPLY):
                    if self.extra_layer_bits != 8:
                        layer.precision = dtype[self.extra_layer_bits]
                continue
            layer.precision = dtype[plan.precision]
            if plan.input_range is not None:
                layer.get_input(0).set_dynamic_range(*plan.input_range)
            if plan.output_range is not None:
                layer.get_output(0).set_dynamic_range(*plan.output_range)
                layer.set_output_type(0, trt.int8)

    # -- run -----------------------------------------------------------------------------------
    def _io(self):
        engine, trt = self.engine, self.trt
        if hasattr(engine, "num_io_tensors"):  # TensorRT >= 8.5
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            shapes = {n: tuple(engine.get_tensor_shape(n)) for n in names}
        else:
            names = [engine.get_binding_name(i) for i in range(engine.num_bindings)]
            inputs = [n for i, n in enumerate(names) if engine.binding_is_input(i)]
            shapes = {n: tuple(engine.get_binding_shape(i)) for i, n in enumerate(names)}
        return names, inputs, shapes

    def inference(self, test_data) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], float]:
        """Runs the engine on ``test_data`` (a tensor of the engine's batch size, host memory advised).

        Returns:
            ``(output, seconds)``: host torch tensor(s) and the engine's execution time.
        """
        if self.context is None:
            raise ValueError("inference(): no engine yet; call compress() or load_quantized_model(path) first")
        names, inputs, shapes = self._io()
        data = torch.as_tensor(test_data, dtype=torch.float32).contiguous().cuda()
        if tuple(data.shape) != shapes[inputs[0]]:
            raise ValueError(f"test_data shape {tuple(data.shape)}: the engine takes {shapes[inputs[0]]} "
                             "(batchsize is fixed when the engine is built)")
        buffers = {inputs[0]: data}
        for name in names:
            if name not in buffers:
                buffers[name] = torch.empty(shapes[name], dtype=torch.float32, device="cuda")
        torch.cuda.synchronize()
        start = time.perf_counter()
        if hasattr(self.context, "execute_async_v3"):
            for name in names:
                self.context.set_tensor_address(name, buffers[name].data_ptr())
            self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
        else:
            self.context.execute_v2([buffers[n].data_ptr() for n in names])
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        outputs = tuple(buffers[n].cpu() for n in names if n not in inputs)
        return (outputs[0] if len(outputs) == 1 else outputs), elapsed

    def export_quantized_model(self, path: str) -> None:
        """Writes the serialized engine (loadable only by TensorRT's deserialize API)."""
        if self.engine is None:
            raise ValueError("export_quantized_model(): nothing built yet; call compress() first")
        with open(path, "wb") as f:
            f.write(self.engine.serialize())

    def load_quantized_model(self, path: str) -> None:
        """Loads an engine written by :meth:`export_quantized_model`."""
        if not os.path.isfile(path):
            raise ValueError(f"load_quantized_model(path={path!r}): no such file")
        with open(path, "rb") as f:
            self.engine = self.trt.Runtime(self._logger).deserialize_cuda_engine(f.read())
        self.context = self.engine.create_execution_context()
