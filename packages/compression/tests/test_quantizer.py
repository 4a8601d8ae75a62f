"""Quantizers: config validation, quantized values on the grid (<= 2^bits levels), straight-through
gradients, range tracking, BN folding, Observer calibration, export / load of calibration configs."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from nni.algorithms.compression.pytorch.quantization import (BNNQuantizer, DoReFaQuantizer, LsqQuantizer,
                                                             NaiveQuantizer, ObserverQuantizer, QAT_Quantizer)
from nni.compression.pytorch import Quantizer as QuantizerFromPackage
from nni.compression.pytorch.compressor import QuantGrad, Quantizer, QuantizerModuleWrapper, QuantType
from nni.compression.pytorch.quantization.settings import reset_quant_scheme_dtype, set_quant_scheme_dtype


class Net(nn.Module):
    """conv1 -> bn1 -> relu1 -> conv2 -> relu2 -> fc1 -> fc2."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.bn1 = nn.BatchNorm2d(6)
        self.relu1 = nn.ReLU6()
        self.conv2 = nn.Conv2d(6, 8, 3)
        self.relu2 = nn.ReLU()
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


@pytest.fixture(autouse=True)
def _seed_and_settings():
    torch.manual_seed(0)
    yield
    reset_quant_scheme_dtype()


@pytest.fixture
def model():
    net = Net()
    with torch.no_grad():  # non-trivial BN statistics
        net.bn1.running_mean.uniform_(-0.5, 0.5)
        net.bn1.running_var.uniform_(0.5, 2.0)
        net.bn1.weight.uniform_(0.5, 1.5)
        net.bn1.bias.uniform_(-0.2, 0.2)
    return net


def data(n=16):
    return torch.randn(n, 1, 8, 8)


def weight_cfg(bits=8, **extra):
    return [{"quant_types": ["weight"], "quant_bits": bits, "op_types": ["Conv2d", "Linear"], **extra}]


def levels(t):
    return t.detach().unique().numel()


# -- config_list ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, config_list, fragment", [
    (QAT_Quantizer, [{"quant_types": ["weight"], "op_types": ["Conv2d"]}],
     "config_list[0] needs 'quant_types' and 'quant_bits'"),
    (QAT_Quantizer, [{"quant_types": ["weight", "output"], "quant_bits": {"weight": 8}, "op_types": ["Conv2d"]}],
     "config_list[0]['quant_bits'] has no bits for 'output'"),
    (QAT_Quantizer, [{"quant_types": ["bias"], "quant_bits": 8, "op_types": ["Conv2d"]}],
     "config_list[0]['quant_types'] must be one of ['weight', 'input', 'output']"),
    (QAT_Quantizer, [{"quant_types": ["weight"], "quant_bits": 0, "op_types": ["Conv2d"]}],
     "config_list[0]['quant_bits'] must be an integer number of bits in [1, 32]"),
    (QAT_Quantizer, [{"quant_types": ["output"], "quant_bits": 8, "op_types": ["ReLU6"],
                      "quant_scheme": "per_channel_affine"}],
     "config_list[0]['quant_scheme']: per-channel schemes apply to 'weight' only"),
    (QAT_Quantizer, [{"quant_types": ["weight"], "quant_bits": 8, "op_types": ["Conv2d"], "quant_dtype": "int8"}],
     "config_list[0]['quant_dtype'] must be one of ['int', 'uint']"),
    (QAT_Quantizer, [{"quant_types": ["weight"], "quant_bits": 8, "op_types": ["Conv2d"], "quant_start_step": -1}],
     "config_list[0]['quant_start_step'] must be an integer >= 0"),
    (QAT_Quantizer, [{"quant_types": ["weight"], "quant_bits": 8, "op_types": ["ReLU6"]}],
     "layer 'relu1' (ReLU6) for 'weight' quantization but it has no weight"),
    (DoReFaQuantizer, [{"quant_types": ["output"], "quant_bits": 8, "op_types": ["ReLU6"]}],
     "config_list[0]['quant_types']: DoReFaQuantizer cannot quantize 'output'; it supports ['weight']"),
    (BNNQuantizer, weight_cfg(2), "config_list[0]['quant_bits']: BNNQuantizer binarizes, quant_bits must be 1"),
    (NaiveQuantizer, weight_cfg(8, quant_dtype="int"), "config_list[0]['quant_dtype']: NaiveQuantizer does not use"),
    (LsqQuantizer, weight_cfg(8, quant_start_step=5), "config_list[0]['quant_start_step']: LsqQuantizer does not use"),
])
def test_invalid_config_is_one_line_value_error(model, cls, config_list, fragment):
    with pytest.raises(ValueError) as info:
        cls(model, config_list)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_public_import_paths():
    assert QuantizerFromPackage is Quantizer
    assert issubclass(QAT_Quantizer, Quantizer) and QuantType.OUTPUT == "output"
    from nni.algorithms.compression.pytorch.quantization.quantizers import QAT_Quantizer as FromModule
    assert FromModule is QAT_Quantizer


def test_importing_quantizers_does_not_import_onnx():
    code = ("import sys, nni.algorithms.compression.pytorch.quantization; "
            "assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- wrapping ------------------------------------------------------------------------------------
def test_wrapping_and_state_on_the_module(model):
    QAT_Quantizer(model, weight_cfg(8) + [{"quant_types": ["output"], "quant_bits": 8, "op_types": ["ReLU6"]}])
    assert isinstance(model.conv1, QuantizerModuleWrapper) and isinstance(model.relu1, QuantizerModuleWrapper)
    assert isinstance(model.conv1.module, nn.Conv2d) and not isinstance(model.relu2, QuantizerModuleWrapper)
    conv = model.conv1.module
    assert isinstance(conv.old_weight, nn.Parameter) and "weight" in dict(conv.named_buffers())
    assert conv.scale.shape == (6,) and conv.zero_point.shape == (6,)  # per-channel weights by default
    assert model.relu1.module.scale.shape == ()
    keys = model.state_dict().keys()
    assert {"conv1.module.old_weight", "conv1.module.weight", "conv1.module.scale", "conv1.module.tracked_min_input",
            "relu1.module.tracked_max_output"} <= set(keys)


def test_naive_quantizer_needs_no_config(model):
    quantizer = NaiveQuantizer(model)
    quantizer.compress()
    out = model(data())
    for name in ("conv1", "conv2", "fc1", "fc2"):
        weight = getattr(model, name).module.weight
        assert levels(weight) <= 255  # symmetric int8: [-127, 127]
        scale = getattr(model, name).module.old_weight.abs().max() / 127
        assert torch.allclose(weight / scale, torch.round(weight / scale), atol=1e-3)
    assert out.shape == (16, 4)


# -- values on the grid ----------------------------------------------------------------------------
@pytest.mark.parametrize("scheme, dtype, bits", [
    ("per_tensor_symmetric", "int", 4), ("per_tensor_affine", "uint", 3), ("per_channel_symmetric", "int", 3),
    ("per_channel_affine", "int", 2),
])
def test_qat_weights_take_at_most_2_to_bits_values(model, scheme, dtype, bits):
    QAT_Quantizer(model, weight_cfg(bits, quant_scheme=scheme, quant_dtype=dtype))
    model(data())
    for name in ("conv1", "conv2", "fc1"):
        module = getattr(model, name).module
        weight, old = module.weight, module.old_weight.detach()
        if scheme.startswith("per_channel"):
            assert all(levels(row) <= 2 ** bits for row in weight)
            assert levels(weight) > 2 ** bits  # channels have their own scales
            scale = module.scale.reshape(-1, *[1] * (weight.dim() - 1))
        else:
            assert levels(weight) <= 2 ** bits
            scale = module.scale
        q = weight / scale + module.zero_point.reshape(scale.shape)
        assert torch.allclose(q, torch.round(q), atol=1e-3)
        # rounding error at most half a step inside the range
        assert (weight - old).abs().max() <= scale.max() / 2 + 1e-6


def test_qat_output_ranges_uint_and_int(model):
    config = [{"quant_types": ["output"], "quant_bits": 2, "op_types": ["ReLU6"], "quant_dtype": "uint",
               "quant_scheme": "per_tensor_affine"},
              {"quant_types": ["output"], "quant_bits": 3, "op_types": ["Linear"], "quant_dtype": "int",
               "quant_scheme": "per_tensor_symmetric"}]
    quantizer = QAT_Quantizer(model, config)
    seen = {}
    quantizer.add_activation_collector(lambda w, i, o: seen.__setitem__(w.name, o.detach()))
    model(data())
    assert levels(seen["relu1"]) <= 4 and seen["relu1"].min() >= 0
    fc2 = seen["fc2"]
    q = fc2 / model.fc2.module.output_scale
    assert levels(fc2) <= 7 and q.abs().max() <= 3 + 1e-4 and model.fc2.module.output_zero_point == 0


def test_global_scheme_setting_is_used_and_config_overrides(model):
    set_quant_scheme_dtype("weight", "per_tensor_symmetric", "int")
    QAT_Quantizer(model, weight_cfg(4) + [{"quant_types": ["weight"], "quant_bits": 4, "op_names": ["fc1"],
                                           "quant_scheme": "per_channel_symmetric"}])
    assert model.conv1.module.scale.shape == () and model.fc1.module.scale.shape == (16,)
    with pytest.raises(ValueError, match="per-channel schemes apply to 'weight' only"):
        set_quant_scheme_dtype("output", "per_channel_affine", "uint")


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_dorefa_levels(model, bits):
    DoReFaQuantizer(model, [{"quant_types": ["weight"], "quant_bits": bits, "op_types": ["default"]}])
    model(data())
    weight = model.conv2.module.weight
    assert levels(weight) <= 2 ** bits and weight.abs().max() <= 1 + 1e-6
    grid = (weight + 1) / 2 * (2 ** bits - 1)
    assert torch.allclose(grid, torch.round(grid), atol=1e-4)


def test_bnn_binarizes_weights_and_outputs_and_clips():
    net = nn.Sequential(nn.Linear(10, 20), nn.Hardtanh(), nn.Linear(20, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=5.0)
    BNNQuantizer(net, [{"quant_types": ["weight"], "quant_bits": 1, "op_types": ["Linear"]},
                       {"quant_types": ["output"], "quant_bits": 1, "op_types": ["Hardtanh"]}], optimizer)
    seen = []
    net[1].register_forward_hook(lambda m, i, o: seen.append(o))
    out = net(torch.randn(8, 10))
    assert set(net[0].module.weight.unique().tolist()) <= {-1.0, 1.0}
    assert set(seen[0].unique().tolist()) <= {-1.0, 1.0}
    out.pow(2).sum().backward()
    optimizer.step()
    assert net[0].module.old_weight.abs().max() <= 1.0  # clipped after the step (lr is large)


def test_lsq_levels_and_learned_scales_get_gradients(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    quantizer = LsqQuantizer(model, [{"quant_types": ["weight", "input"], "quant_bits": 3, "op_names": ["conv2"]},
                                     {"quant_types": ["output"], "quant_bits": {"output": 4}, "op_names": ["relu1"]}],
                             optimizer)
    quantizer.compress()
    seen = []
    model.relu1.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    out = model(data())
    conv2 = model.conv2.module
    assert levels(conv2.weight) <= 8 and levels(seen[0]) <= 16
    assert isinstance(conv2.weight_scale, nn.Parameter) and conv2.input_scale.item() > 0
    out.sum().backward()
    for scale in (conv2.weight_scale, conv2.input_scale, model.relu1.module.output_scale):
        assert scale.grad is not None and scale.grad.abs() > 0
    assert any(conv2.weight_scale is p for p in optimizer.param_groups[-1]["params"])
    before = conv2.weight_scale.item()
    optimizer.step()
    assert conv2.weight_scale.item() != before


# -- straight-through gradients ------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda m: QAT_Quantizer(m, weight_cfg(4)),
    lambda m: DoReFaQuantizer(m, weight_cfg(2)),
    lambda m: BNNQuantizer(m, weight_cfg(1)),
])
def test_weight_gradient_is_straight_through(model, make):
    make(model)
    x = data()
    model(x).pow(2).mean().backward()
    conv2 = model.conv2.module
    grad_ste = conv2.old_weight.grad.clone()
    assert grad_ste.abs().sum() > 0
    # reference: the same forward with the quantized weight as a leaf; STE passes its gradient on
    # (BNN: only where |w| <= 1, which holds for these small initial weights)
    qweight = conv2.weight.detach().clone().requires_grad_(True)
    handle = model.conv2.register_forward_hook(lambda w, i, o: conv2._conv_forward(i[0], qweight, conv2.bias))
    model(x).pow(2).mean().backward()
    handle.remove()
    assert torch.allclose(grad_ste, qweight.grad, atol=1e-6)


def test_custom_quant_grad_from_the_docs():
    class ClipGrad(QuantGrad):
        @staticmethod
        def quant_backward(tensor, grad_output, quant_type):
            if quant_type == QuantType.OUTPUT:
                grad_output[torch.abs(tensor) > 1] = 0
            return grad_output

    class Rounder(Quantizer):
        def __init__(self, model, config_list):
            super().__init__(model, config_list)
            self.quant_grad = ClipGrad

        def quantize_output(self, output, wrapper, **kwargs):
            return torch.round(output)

    lin = nn.Linear(4, 6)
    net = nn.Sequential(lin)
    Rounder(net, [{"quant_types": ["output"], "quant_bits": 8, "op_types": ["Linear"]}])
    x = torch.randn(5, 4) * 3
    out = net(x)
    assert torch.equal(out, torch.round(out))
    out.sum().backward()
    raw = lin(x).detach()
    expected = (raw.abs() <= 1).float().t() @ x  # dL/dW with the clipped straight-through gradient
    assert torch.allclose(lin.weight.grad, expected, atol=1e-5)
    with pytest.raises(ValueError, match="Rounder cannot quantize 'weight'; it supports \\['output'\\]"):
        Rounder(nn.Sequential(nn.Linear(2, 2)), weight_cfg(8))


# -- QAT ranges and schedule ---------------------------------------------------------------------
def test_qat_tracks_ema_ranges_in_training_only(model):
    quantizer = QAT_Quantizer(model, [{"quant_types": ["output"], "quant_bits": 8, "op_types": ["ReLU6"]}])
    outs = []
    model.relu1.module.register_forward_hook(lambda m, i, o: outs.append(o.detach()))
    model(data())
    model(data())
    module = model.relu1.module
    expected_max = 0.99 * outs[0].max() + 0.01 * outs[1].max()
    assert torch.isclose(module.tracked_max_output, expected_max)
    assert torch.isclose(module.tracked_min_output, torch.tensor(0.0))
    model.eval()
    model(data() * 10)
    assert torch.isclose(module.tracked_max_output, expected_max)  # eval does not move the ranges
    assert quantizer.tracked_range(model.relu1, "output") == pytest.approx((0.0, expected_max.item()))


def test_quant_start_step_delays_quantization(model):
    reference = Net()
    reference.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # steps count, weights stay
    QAT_Quantizer(model, weight_cfg(3, quant_start_step=2), optimizer)
    x = data()
    for step in range(3):
        out = model(x)
        if step < 2:
            assert torch.allclose(out, reference(x), atol=1e-6)
            assert levels(model.fc1.module.weight) > 2 ** 3
        else:
            assert not torch.allclose(out, reference(x), atol=1e-4)
            assert all(levels(row) <= 8 for row in model.fc1.module.weight)
        out.sum().backward()
        optimizer.step()
    assert model.fc1.steps.item() == 3


# -- BN folding ----------------------------------------------------------------------------------------
def test_bn_folding_matches_float_model(model):
    reference = Net()
    reference.load_state_dict(model.state_dict())
    reference.eval()
    x = data()
    bn = model.bn1
    quantizer = QAT_Quantizer(model, [{"quant_types": ["weight"], "quant_bits": 8, "op_names": ["conv1"],
                                       "quant_start_step": 1}], dummy_input=torch.randn(1, 1, 8, 8))
    assert quantizer.conv_bn_patterns == {"conv1": "bn1"}
    assert isinstance(model.bn1, nn.Identity) and model.conv1.bn_module is bn
    model.eval()
    assert torch.allclose(model(x), reference(x), atol=1e-5)  # folded float == conv + BN
    quantizer.step_with_optimizer()  # now quantized
    simulated = model(x)
    assert 0 < (simulated - reference(x)).abs().max() < 0.05
    # training mode uses batch statistics and updates the BN's running ones
    model.train()
    reference.train()
    model(x)
    reference(x)
    assert torch.allclose(model.conv1.bn_module.running_mean, reference.bn1.running_mean, atol=1e-6)
    assert torch.allclose(model.conv1.bn_module.running_var, reference.bn1.running_var, atol=1e-5)


def test_bn_folded_export_reproduces_the_simulation(model, tmp_path):
    quantizer = QAT_Quantizer(model, weight_cfg(4), dummy_input=torch.randn(1, 1, 8, 8))
    model.eval()
    x = data()
    simulated = model(x).detach()
    quantizer.export_model(str(tmp_path / "m.pth"))
    assert isinstance(model.bn1, nn.BatchNorm2d) and isinstance(model.conv1, nn.Conv2d)
    assert torch.allclose(model(x), simulated, atol=1e-4)


# -- Observer ------------------------------------------------------------------------------------------
def test_observer_records_min_max_then_quantizes(model, tmp_path):
    reference = Net()
    reference.load_state_dict(model.state_dict())
    config = [{"quant_types": ["weight", "input"], "quant_bits": 8, "op_names": ["conv1", "conv2"]},
              {"quant_types": ["output"], "quant_bits": 8, "op_names": ["relu1", "relu2"]}]
    quantizer = ObserverQuantizer(model, config)
    batches = [data(8) * s for s in (1.0, 2.0, 0.5)]
    seen = {"conv2": [], "relu1": []}
    reference.conv2.register_forward_hook(lambda m, i, o: seen["conv2"].append(i[0]))
    reference.relu1.register_forward_hook(lambda m, i, o: seen["relu1"].append(o))
    model.eval()
    reference.eval()
    with torch.no_grad():
        for batch in batches:
            assert torch.allclose(model(batch), reference(batch), atol=1e-6)  # no quantization yet
            reference(batch)
    observed_in = torch.cat(seen["conv2"])
    observed_out = torch.cat(seen["relu1"])
    model.train()
    quantizer.compress()
    assert not model.training
    with torch.no_grad():
        model(data(8) * 100)  # after compress nothing is recorded
    config_out = quantizer.export_model(str(tmp_path / "m.pth"), str(tmp_path / "c.pth"))
    assert config_out["conv2"]["tracked_min_input"] == pytest.approx(observed_in.min().item())
    assert config_out["conv2"]["tracked_max_input"] == pytest.approx(observed_in.max().item())
    assert config_out["relu1"]["tracked_min_output"] == pytest.approx(observed_out.min().item())
    assert config_out["relu1"]["tracked_max_output"] == pytest.approx(observed_out.max().item())
    assert config_out["conv1"]["weight_bit"] == 8 and config_out["relu1"]["output_bit"] == 8


def test_observer_scales_and_errors(model, tmp_path):
    quantizer = ObserverQuantizer(model, [{"quant_types": ["weight", "output"], "quant_bits": 8,
                                           "op_names": ["conv2"]}])
    with pytest.raises(ValueError, match="call compress\\(\\) after calibration"):
        quantizer.export_model(str(tmp_path / "m.pth"))
    with pytest.raises(ValueError, match="layer 'conv2' saw no calibration data"):
        quantizer.compress()
    with torch.no_grad():
        model(data())
    quantizer.compress()
    conv2 = model.conv2.module
    assert torch.isclose(conv2.weight_scale, conv2.old_weight.abs().max() / 127)  # qint8 symmetric
    low, high = quantizer.tracked_range(model.conv2, "output")
    assert torch.isclose(conv2.output_scale, torch.tensor((max(high, 0) - min(low, 0)) / 127))  # reduce_range
    seen = []
    model.conv2.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        model(data())
    assert levels(seen[0]) <= 128 and levels(conv2.weight) <= 255


# -- export / load -------------------------------------------------------------------------------------
def test_export_writes_files_and_documented_calibration(model, tmp_path):
    original_keys = set(Net().state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    config = [{"quant_types": ["weight"], "quant_bits": {"weight": 8}, "op_names": ["conv1", "conv2"]},
              {"quant_types": ["output"], "quant_bits": 8, "op_names": ["relu2"]}]
    quantizer = QAT_Quantizer(model, config, optimizer)
    for _ in range(3):
        model(data()).sum().backward()
        optimizer.step()
    model_path, calibration_path = tmp_path / "model.pth", tmp_path / "calibration.pth"
    calibration = quantizer.export_model(str(model_path), str(calibration_path))
    assert set(calibration) == {"conv1", "conv2", "relu2"}
    assert list(calibration["conv1"]) == ["weight_bit", "tracked_min_input", "tracked_max_input"]
    assert calibration["conv1"]["weight_bit"] == 8 and isinstance(calibration["conv1"]["tracked_min_input"], float)
    assert set(calibration["relu2"]) == {"output_bit", "tracked_min_output", "tracked_max_output"}
    assert calibration["conv2"]["tracked_min_input"] == pytest.approx(0.0, abs=1e-6)  # after ReLU6
    assert torch.load(calibration_path) == calibration
    state = torch.load(model_path)
    assert set(state) == original_keys  # saved without the wrappers
    assert not any(isinstance(m, QuantizerModuleWrapper) for m in model.modules())
    assert all(levels(row) <= 256 for row in state["conv2.weight"])
    fresh = Net()
    fresh.load_state_dict(state)
    x = data()
    assert torch.allclose(fresh(x), model(x))
    # a second export writes the same again
    assert quantizer.export_model(str(tmp_path / "again.pth")) == calibration
    # optimizer steps after export leave the quantizer alone
    model(x).sum().backward()
    optimizer.step()


def test_export_onnx(model, tmp_path):
    onnx = pytest.importorskip("onnx")
    quantizer = QAT_Quantizer(model, weight_cfg(8))
    model(data())
    with pytest.raises(ValueError, match="onnx_path needs input_shape"):
        quantizer.export_model(str(tmp_path / "m.pth"), onnx_path=str(tmp_path / "m.onnx"))
    quantizer.export_model(str(tmp_path / "m.pth"), onnx_path=str(tmp_path / "m.onnx"), input_shape=(1, 1, 8, 8))
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")))


def test_save_and_load_wrapped_state_dict_as_in_the_docs(model, tmp_path):
    config = weight_cfg(8)
    QAT_Quantizer(model, config, torch.optim.SGD(model.parameters(), lr=0.01))
    model(data())
    torch.save(model.state_dict(), tmp_path / "quantized_model.pth")
    loaded = Net()
    quantizer = QAT_Quantizer(loaded, config, torch.optim.SGD(loaded.parameters(), lr=0.01))
    quantizer.compress()
    loaded.load_state_dict(torch.load(tmp_path / "quantized_model.pth"))
    conv1 = loaded.conv1
    assert torch.equal(conv1.module.scale, model.conv1.module.scale)
    assert torch.equal(conv1.module.zero_point, model.conv1.module.zero_point)
    assert torch.equal(conv1.module.weight, model.conv1.module.weight)
    x = data()
    assert torch.allclose(loaded(x), model(x))


def test_load_calibration_config(model):
    config = [{"quant_types": ["weight", "input"], "quant_bits": 8, "op_names": ["conv2"]},
              {"quant_types": ["output"], "quant_bits": 8, "op_names": ["relu1"]}]
    quantizer = QAT_Quantizer(model, config)
    quantizer.load_calibration_config({"conv2": {"weight_bit": 8, "input_bit": 8, "tracked_min_input": -1.0,
                                                 "tracked_max_input": 3.0},
                                       "relu1": {"output_bit": 8, "tracked_min_output": 0.0, "tracked_max_output": 6.0},
                                       "unknown": {"weight_bit": 8}})
    assert quantizer.tracked_range(model.conv2, "input") == (-1.0, 3.0)
    model.eval()
    model(data())
    assert torch.isclose(model.conv2.module.input_scale, torch.tensor(4.0 / 255))
    assert torch.isclose(model.relu1.module.output_scale, torch.tensor(6.0 / 255))
    with pytest.raises(ValueError, match=r"calibration_config\['conv2'\]\['weight_bit'\] is 4, but config_list"):
        quantizer.load_calibration_config({"conv2": {"weight_bit": 4}})


def test_lsq_resumes_from_calibration(model):
    quantizer = LsqQuantizer(model, [{"quant_types": ["output"], "quant_bits": 8, "op_names": ["relu1"]}])
    quantizer.load_calibration_config({"relu1": {"output_bit": 8, "tracked_min_output": 0.0,
                                                 "tracked_max_output": 5.08}})
    assert model.relu1.module.output_scale.item() == pytest.approx(5.08 / 127)


def test_record_shape(model):
    quantizer = NaiveQuantizer(model)
    shapes = quantizer.record_shape(model, torch.randn(2, 1, 8, 8))
    assert shapes["conv1"] == ((2, 1, 8, 8), (2, 6, 6, 6)) and model.fc2.output_shape == (2, 4)


def test_lsq_folds_bn_too(model):
    reference = Net()
    reference.load_state_dict(model.state_dict())
    reference.eval()
    quantizer = LsqQuantizer(model, weight_cfg(8), dummy_input=torch.randn(1, 1, 8, 8))
    assert quantizer.conv_bn_patterns == {"conv1": "bn1"} and isinstance(model.bn1, nn.Identity)
    model.eval()
    x = data()
    assert (model(x) - reference(x)).abs().max() < 0.1
    assert levels(model.conv1.module.weight) <= 256


def test_tutorial_signature_of_a_custom_quantizer():
    """The docs' "customize a new quantization algorithm" example: (tensor, config, **kwargs)."""
    class YourQuantizer(Quantizer):
        def __init__(self, model, config_list):
            super().__init__(model, config_list)

        def quantize_weight(self, weight, config, **kwargs):
            return torch.sign(weight) * 0.5

        def quantize_output(self, output, config, **kwargs):
            return output.clamp(max=config["quant_bits"])

        def quantize_input(self, *inputs, config, **kwargs):
            return inputs[0] * 0

    lin = nn.Linear(3, 2)
    net = nn.Sequential(lin)
    YourQuantizer(net, [{"quant_types": ["weight", "output"], "quant_bits": 1, "op_types": ["Linear"]}])
    x = torch.randn(4, 3) * 5
    expected = (nn.functional.linear(x, torch.sign(lin.weight) * 0.5, lin.bias)).clamp(max=1)
    assert torch.allclose(net(x), expected)
    net2 = nn.Sequential(nn.Linear(3, 2))
    YourQuantizer(net2, [{"quant_types": ["input"], "quant_bits": 8, "op_types": ["Linear"]}])
    assert torch.allclose(net2(x), net2[0].module.bias.expand(4, 2))
