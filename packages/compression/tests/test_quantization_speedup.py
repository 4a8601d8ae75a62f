"""Quantization speedup: calibration config -> ONNX QDQ -> ONNX Runtime int8, TensorRT interface."""
from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from nni.compression.pytorch import quantization_speedup as qs  # noqa: E402
from nni.compression.pytorch.quantization_speedup import (  # noqa: E402
    BackendUnavailableError, ModelSpeedupONNXRuntime, observe_ranges)
from nni.retiarii.models import DigitsCNN, digits_cnn  # noqa: E402


def tiny_cnn() -> DigitsCNN:
    """conv1(1->8)-relu1 -> conv2(8->16)-relu2 -> pool -> fc1(256->32)-relu3 -> fc2(32->10) (zoo digits CNN)."""
    return digits_cnn(10, widths=(8, 16), hidden=32)


WEIGHTED = ("conv1", "conv2", "fc1", "fc2")
RELUS = ("relu1", "relu2", "relu3")


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = tiny_cnn().eval()
    batches = [torch.randn(32, 1, 8, 8) for _ in range(4)]
    return model, batches


def docs_style_config(model, batches):
    """As a QAT export with the docs' config_list: weights + inputs of the weighted layers, the
    outputs of the ReLUs and of the last layer (the ranges observed with forward hooks)."""
    observed = observe_ranges(model, batches, WEIGHTED + RELUS)
    config = {}
    for name in WEIGHTED:
        entry = observed[name]
        config[name] = {"weight_bit": 8, "tracked_min_input": entry["tracked_min_input"],
                        "tracked_max_input": entry["tracked_max_input"]}
    for name in RELUS:
        config[name] = {"output_bit": 8, "tracked_min_output": 0.0,
                        "tracked_max_output": observed[name]["tracked_max_output"]}
    config["fc2"].update(output_bit=8, tracked_min_output=observed["fc2"]["tracked_min_output"],
                         tracked_max_output=observed["fc2"]["tracked_max_output"])
    return config


def _fq(x, lo, hi):
    """uint8 affine fake quantization over [min(lo, 0), max(hi, 0)], as the backend's Q/DQ pairs."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255
    zero_point = round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero_point, 0, 255) - zero_point) * scale


def simulate(model, config):
    """The float model with the config's quantization simulated by hooks (int8 symmetric weights)."""
    sim = copy.deepcopy(model)
    modules = dict(sim.named_modules())
    with torch.no_grad():
        for name, entry in config.items():
            module = modules[name]
            if "weight_bit" in entry:
                step = module.weight.abs().max() / 127
                module.weight.copy_(torch.clamp(torch.round(module.weight / step), -127, 127) * step)
                module.register_forward_pre_hook(
                    lambda m, inp, e=entry: (_fq(inp[0], e["tracked_min_input"], e["tracked_max_input"]),))
            if "tracked_min_output" in entry:
                module.register_forward_hook(
                    lambda m, inp, out, e=entry: _fq(out, e["tracked_min_output"], e["tracked_max_output"]))
    return sim


def output_step(config):
    return (config["fc2"]["tracked_max_output"] - min(config["fc2"]["tracked_min_output"], 0.0)) / 255


@pytest.fixture(scope="module")
def engine(setup, tmp_path_factory):
    model, batches = setup
    config = docs_style_config(model, batches)
    onnx_path = tmp_path_factory.mktemp("qs") / "model.onnx"
    engine = ModelSpeedupONNXRuntime(model, (32, 1, 8, 8), config=config, onnx_path=str(onnx_path), batchsize=32,
                                     per_channel=False)  # as simulate()
    engine.compress()
    return engine, config


def test_round_trip_int8_kernels_and_agreement(setup, engine):
    model, batches = setup
    engine, config = engine
    x = batches[0]
    out, seconds = engine.inference(x)
    assert isinstance(out, torch.Tensor) and out.shape == (32, 10) and seconds > 0
    # the quantized layers really run as int8 kernels once ONNX Runtime has optimised the graph
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(engine.onnx_path) + ".opt.onnx"
    ort.InferenceSession(engine.quantized_model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert ops.count("QLinearConv") == 2 and ops.count("QGemm") == 2, ops
    assert "Relu" not in ops and "Conv" not in ops and "Gemm" not in ops, ops

    step = output_step(config)
    with torch.no_grad():
        simulated, floating = simulate(model, config)(x), model(x)
    # int8 kernels vs the simulated quantized model: rounding of intermediate layers may differ by a step
    assert (out - simulated).abs().max() <= 2.01 * step
    assert ((out - simulated).abs() <= 1.01 * step).float().mean() >= 0.95
    # and the float model within a few quantization steps, same predictions almost everywhere
    assert (out - floating).abs().max() <= 6 * step
    assert (out.argmax(1) == floating.argmax(1)).float().mean() >= 0.9
    # any batch size runs (the export leaves the batch dimension free)
    assert engine.inference(x[:5])[0].shape == (5, 10)


def test_int8_kernels_match_reference_qdq_semantics(setup, engine):
    """ORT's fused kernels vs the QDQ graph evaluated op by op in float (ONNX semantics)."""
    _, batches = setup
    engine, config = engine
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = ort.InferenceSession(engine.quantized_model.SerializeToString(), options,
                                     providers=["CPUExecutionProvider"])
    for x in batches:
        expected = reference.run(None, {"actual_input_1": x.numpy()})[0]
        assert np.abs(engine.inference(x)[0].numpy() - expected).max() <= 1.01 * output_step(config)


@pytest.mark.parametrize("per_channel", [False, True])
def test_weights_on_a_grid_stay_exact(setup, tmp_path, per_channel):
    model, batches = setup
    model = copy.deepcopy(model)
    with torch.no_grad():  # what a quantizer's export leaves: weights on a symmetric 8-bit grid
        for name in WEIGHTED:
            w = getattr(model, name).weight
            if per_channel:
                step = w.abs().reshape(len(w), -1).max(1).values.reshape(-1, *[1] * (w.dim() - 1)) / 127
            else:
                step = w.abs().max() / 127
            w.copy_(torch.round(w / step) * step)
    engine = ModelSpeedupONNXRuntime(model, (4, 1, 8, 8), config=observe_ranges(model, batches),
                                     onnx_path=str(tmp_path / "m.onnx"))
    engine.compress()
    graph = engine.quantized_model.graph
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    checked = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0].startswith(tuple(f"{n}.weight" for n in WEIGHTED)):
            q, scale, zp = (inits[i] for i in node.input)
            assert scale.shape == ((len(q),) if per_channel else ())  # the grid's own granularity
            shape = (-1,) + (1,) * (q.ndim - 1)  # axis 0: Conv, and Gemm with transB=1
            dequantized = (q.astype(np.float32) - zp.reshape(shape).astype(np.float32)) * scale.reshape(shape)
            layer = node.input[0].split(".weight")[0]
            np.testing.assert_allclose(dequantized, getattr(model, layer).weight.detach().numpy(), rtol=0, atol=1e-6)
            checked.append(layer)
    assert sorted(checked) == sorted(WEIGHTED)
    assert not {f"{n}.weight" for n in WEIGHTED} & set(inits), "float weights left in the int8 model"


def test_export_load_gives_identical_outputs(setup, engine, tmp_path):
    model, batches = setup
    engine, _ = engine
    path = tmp_path / "int8.onnx"
    engine.export_quantized_model(str(path))
    loaded = ModelSpeedupONNXRuntime(model, (32, 1, 8, 8))
    loaded.load_quantized_model(str(path))
    for x in batches[:2]:
        assert torch.equal(loaded.inference(x)[0], engine.inference(x)[0])


def test_mixed_precision_32_bit_layer_stays_float(setup, tmp_path):
    model, batches = setup
    config = docs_style_config(model, batches)
    config["conv1"]["weight_bit"] = 32
    engine = ModelSpeedupONNXRuntime(model, (4, 1, 8, 8), config=config, onnx_path=str(tmp_path / "m.onnx"))
    engine.compress()
    conv1 = next(n for n in engine.quantized_model.graph.node if n.op_type == "Conv" and "conv1" in n.name)
    assert conv1.input[1] == "conv1.weight"  # float weight, no DequantizeLinear
    assert "actual_input_1" not in engine.tensor_ranges  # its input is not quantized either
    conv2 = next(n for n in engine.quantized_model.graph.node if n.op_type == "Conv" and "conv2" in n.name)
    assert conv2.input[1] != "conv2.weight"
    out, _ = engine.inference(batches[1])
    with torch.no_grad():
        assert (out.argmax(1) == model(batches[1]).argmax(1)).float().mean() >= 0.9


def test_weight_and_input_only_config_with_calibration_loader(setup, tmp_path):
    """The docs' notebook export (weight_bit + tracked input only): the output ranges come from
    calib_data_loader; config=None quantizes every Conv/Linear from the loader (post-training)."""
    model, batches = setup
    observed = observe_ranges(model, batches)
    config = {n: {k: v for k, v in e.items() if "output" not in k} for n, e in observed.items()}
    engine = ModelSpeedupONNXRuntime(model, (4, 1, 8, 8), config=config, calib_data_loader=batches,
                                     onnx_path=str(tmp_path / "a.onnx"))
    engine.compress()
    ptq = ModelSpeedupONNXRuntime(model, (4, 1, 8, 8), calib_data_loader=[(b, None) for b in batches],
                                  onnx_path=str(tmp_path / "b.onnx"))
    ptq.compress()
    x = batches[2]
    a, b = engine.inference(x)[0], ptq.inference(x)[0]
    assert torch.equal(a, b)  # same ranges either way
    with torch.no_grad():
        assert (a.argmax(1) == model(x).argmax(1)).float().mean() >= 0.9
    assert len([n for n in ptq.quantized_model.graph.node if n.op_type == "DequantizeLinear"]) >= 4 + 2 * 4


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()
        self.blocks = nn.ModuleDict({"a": nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())})
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 36, 3))

    def forward(self, x):
        return self.head(self.relu(self.blocks["a"](x)))


def test_nested_module_names_map_to_their_nodes():
    from nni.compression.pytorch.quantization_speedup.onnx_qdq import _module_of_node

    model = Nested()
    assert _module_of_node(model, "/a/a.1/Relu") == "blocks.a.1"
    assert _module_of_node(model, "/relu/Relu") == "relu"
    assert _module_of_node(model, "/head/head.1/Gemm") == "head.1"
    assert _module_of_node(model, "/Flatten") is None and _module_of_node(model, "/nope/Relu") is None


def test_sequential_module_names_are_mapped(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)).eval()
    data = [torch.randn(8, 1, 8, 8)]
    config = observe_ranges(model, data, ["0", "1", "3"])
    engine = ModelSpeedupONNXRuntime(model, (8, 1, 8, 8), config=config, onnx_path=str(tmp_path / "s.onnx"))
    engine.compress()
    assert {"0", "3"} <= {k for k, v in engine.plans.items() if v.int8_weight}
    with torch.no_grad():
        assert (engine.inference(data[0])[0] - model(data[0])).abs().max() < 0.1


# -- user errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("config,match", [
    ({"convX": {"weight_bit": 8}}, r"config\['convX'\]: the model has no module named 'convX'"),
    ({"conv1": 8}, r"config\['conv1'\]: expected a dict"),
    ({"conv1": {"weight_bit": 4}}, r"config\['conv1'\]\['weight_bit'\]=4: with strict_datatype=True only 8, 32"),
    ({"conv1": {"weight_bit": "8"}}, r"config\['conv1'\]\['weight_bit'\]='8': bits must be a positive int"),
    ({"conv1": {"weight_bit": 8, "tracked_min_input": 1.0, "tracked_max_input": -1.0}},
     r"config\['conv1'\]: tracked_min_input=1.0 is above tracked_max_input=-1.0"),
    ({"conv1": {"weight_bit": 8, "tracked_min_input": 0.0}}, r"has tracked_min_input but not tracked_max_input"),
    ({"relu1": {"weight_bit": 8}}, r"config\['relu1'\]: has weight bits but ReLU is not one of"),
    ([{"conv1": {}}], r"config: expected the dict quantizer.export_model returns"),
])
def test_bad_config_is_one_line_error(setup, config, match):
    model, _ = setup
    with pytest.raises(ValueError, match=match) as info:
        ModelSpeedupONNXRuntime(model, (1, 1, 8, 8), config=config)
    assert "\n" not in str(info.value)


def test_other_errors(setup, tmp_path):
    model, batches = setup
    with pytest.raises(ValueError, match=r"config\['conv1'\]: an 8-bit layer needs 'tracked_min_input'"):
        ModelSpeedupONNXRuntime(model, (1, 1, 8, 8), config={"conv1": {"weight_bit": 8}},
                                onnx_path=str(tmp_path / "x.onnx")).compress()
    with pytest.raises(ValueError, match=r"extra_layer_bits=16: the ONNX Runtime backend runs"):
        ModelSpeedupONNXRuntime(model, (1, 1, 8, 8), extra_layer_bits=16)
    with pytest.raises(ValueError, match=r"extra_layer_bits=8 needs calib_data_loader"):
        ModelSpeedupONNXRuntime(model, (1, 1, 8, 8), extra_layer_bits=8)
    with pytest.raises(ValueError, match=r"inference\(\): no engine yet"):
        ModelSpeedupONNXRuntime(model, (1, 1, 8, 8)).inference(batches[0])
    with pytest.raises(ValueError, match=r"no such file"):
        ModelSpeedupONNXRuntime(model, (1, 1, 8, 8)).load_quantized_model(str(tmp_path / "missing.onnx"))
    # strict_datatype=False: 4 bits run in int8
    engine = ModelSpeedupONNXRuntime(model, (1, 1, 8, 8), config={"conv1": {
        "weight_bit": 4, "tracked_min_input": -4.0, "tracked_max_input": 4.0}}, strict_datatype=False)
    assert engine.plans["conv1"].int8_weight


def test_tensorrt_missing_names_the_cpu_backend(setup):
    model, _ = setup
    if "tensorrt" in qs.available_backends():
        pytest.skip("TensorRT and a GPU are available here")
    with pytest.raises(BackendUnavailableError, match=r"^ModelSpeedupTensorRT needs .*ModelSpeedupONNXRuntime") as info:
        qs.ModelSpeedupTensorRT(model, (32, 1, 8, 8), config={}, batchsize=32)
    assert "\n" not in str(info.value)
    if importlib.util.find_spec("tensorrt") is None:
        from nni.compression.pytorch.quantization_speedup import calibrator

        with pytest.raises(BackendUnavailableError, match=r"^Calibrator is TensorRT's int8 calibrator"):
            calibrator.Calibrator


def test_registry():
    assert {"onnxruntime", "tensorrt"} <= set(qs.list_backends())
    assert "onnxruntime" in qs.available_backends()
    assert qs.get_backend("onnxruntime") is ModelSpeedupONNXRuntime
    assert issubclass(ModelSpeedupONNXRuntime, qs.BaseModelSpeedup)
    with pytest.raises(ValueError, match=r"backend='tvm': unknown; registered backends: onnxruntime, tensorrt"):
        qs.get_backend("tvm")
    with pytest.raises(ValueError, match=r"target='nope': expected 'module:Class'"):
        qs.register_backend("x", "nope")


def test_qat_quantizer_export_runs_on_the_backend(tmp_path):
    """A QAT_Quantizer's export_model feeds the backend directly; the int8 outputs agree with the
    quantizer's simulation within one output quantization step."""
    quantization = pytest.importorskip("nni.algorithms.compression.pytorch.quantization")
    torch.manual_seed(0)
    model = tiny_cnn()
    config_list = [
        {"quant_types": ["weight", "input"], "quant_bits": 8, "op_names": ["conv1", "conv2", "fc1"]},
        {"quant_types": ["weight", "input", "output"], "quant_bits": 8, "op_names": ["fc2"]},
        {"quant_types": ["output"], "quant_bits": {"output": 8}, "op_names": list(RELUS)},
    ]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    quantizer = quantization.QAT_Quantizer(model, config_list, optimizer)
    quantizer.compress()
    data = [torch.randn(32, 1, 8, 8) for _ in range(5)]
    model.train()
    for x in data:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), torch.randint(0, 10, (32,))).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        simulated = [model(x) for x in data[:2]]
    config = quantizer.export_model(str(tmp_path / "model.pth"), str(tmp_path / "calibration.pth"))
    engine = ModelSpeedupONNXRuntime(model, (32, 1, 8, 8), config=config, onnx_path=str(tmp_path / "m.onnx"))
    engine.compress()
    step = output_step(config)
    for x, expected in zip(data, simulated):
        diff = (engine.inference(x)[0] - expected).abs()
        assert diff.max() <= 1.01 * step
        assert (diff <= 0.01 * step).float().mean() >= 0.7  # and mostly equal


def test_per_channel_weights(setup, tmp_path):
    model, batches = setup
    config = docs_style_config(model, batches)
    engine = ModelSpeedupONNXRuntime(model, (4, 1, 8, 8), config=config, per_channel=True,
                                     onnx_path=str(tmp_path / "pc.onnx"))
    engine.compress()
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in engine.quantized_model.graph.initializer}
    scales = [v for k, v in inits.items() if k.startswith("conv2.weight_scale")]
    assert len(scales) == 1 and scales[0].shape == (16,)
    x = batches[3]
    with torch.no_grad():
        floating = model(x)
    out = engine.inference(x)[0]
    assert (out - floating).abs().max() <= 6 * output_step(config)


def test_loader_fills_ranges_the_config_lacks(setup, tmp_path):
    model, batches = setup
    config = {"conv1": {"weight_bit": 8}, "relu1": {"output_bit": 8}, "fc2": {"weight_bit": 32}}
    engine = ModelSpeedupONNXRuntime(model, (4, 1, 8, 8), config=config, calib_data_loader=batches[:2],
                                     onnx_path=str(tmp_path / "f.onnx"))
    engine.compress()
    observed = observe_ranges(model, batches[:2], ["conv1", "relu1"])
    conv1, relu1 = engine.plans["conv1"], engine.plans["relu1"]
    assert relu1.output_range == (observed["relu1"]["tracked_min_output"], observed["relu1"]["tracked_max_output"])
    assert engine.plans["conv1"].int8_weight and conv1.input_range[1] == observed["conv1"]["tracked_max_input"]
    assert not engine.plans["fc2"].int8_weight and set(engine.plans) == {"conv1", "relu1", "fc2"}


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, nni.compression.pytorch.quantization_speedup as q; q.list_backends(); "
            "assert not {'onnx', 'onnxruntime', 'tensorrt'} & set(sys.modules), 'runtime imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
