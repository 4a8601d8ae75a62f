"""Contract test suite every quantizer must pass (a pytest base class).

A test file subclasses :class:`QuantizerContract`, says what the quantizer claims and how to build
it; the suite checks wrapping, values on a ``2^bits`` grid, straight-through gradients, export
(files, calibration keys, unwrapped model) and the wrapped state-dict round trip::

    from nni.compression.pytorch.quantization.contract import QuantizerContract

    class TestDoReFaContract(QuantizerContract):
        quant_types = ("weight",)

        def make_quantizer(self, model, config_list, optimizer):
            return DoReFaQuantizer(model, config_list, optimizer)

Needs pytest (imported here only, not by the quantizers).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ..quantizer import CALIBRATION_KEYS, QuantizerModuleWrapper

__all__ = ["ContractNet", "QuantizerContract"]


class ContractNet(nn.Module):
    """conv1 -> relu1 -> conv2 -> relu2 -> fc on 1x8x8 inputs, 5 outputs (``activation`` is the
    class of relu1 / relu2)."""

    def __init__(self, activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.relu1 = activation()
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.relu2 = activation()
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(self.relu2(self.conv2(self.relu1(self.conv1(x)))).flatten(1))


class QuantizerContract:
    """Base class of a quantizer's contract tests. Subclasses define ``make_quantizer(model,
    config_list, optimizer)`` and set the class attributes below to what the quantizer claims."""

    #: the quant types the quantizer supports (the others must be rejected)
    quant_types: tuple[str, ...] = ("weight",)
    #: bits used by the checks (values must take at most 2^bits levels)
    bits: int = 3
    #: 'tensor' or 'channel': the granularity at which weights take at most 2^bits values
    weight_granularity: str = "channel"
    #: whether gradients reach the float weights (straight-through) and training moves them
    trains: bool = True
    #: post-training: run calibration data through the model before ``compress()`` (ObserverQuantizer)
    needs_calibration: bool = False
    #: the activation module class whose outputs are quantized (BNN: nn.Hardtanh)
    activation: type[nn.Module] = nn.ReLU

    # -- helpers ---------------------------------------------------------------------------------
    def config_list(self, types: tuple[str, ...] | None = None) -> list[dict]:
        types = self.quant_types if types is None else types
        config = []
        if "weight" in types or "input" in types:
            config.append({"quant_types": [t for t in ("weight", "input") if t in types], "quant_bits": self.bits,
                           "op_types": ["Conv2d", "Linear"]})
        if "output" in types:
            config.append({"quant_types": ["output"], "quant_bits": self.bits, "op_types": [self.activation.__name__]})
        config.append({"exclude": True, "op_names": ["fc"]})
        return config

    @staticmethod
    def data(n: int = 16) -> torch.Tensor:
        return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(n))

    def build(self):
        torch.manual_seed(0)
        model = ContractNet(self.activation)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        quantizer = self.make_quantizer(model, self.config_list(), optimizer)
        if self.needs_calibration:
            with torch.no_grad():
                model(self.data(32))
        quantizer.compress()
        return model, quantizer, optimizer

    # -- the contract ----------------------------------------------------------------------------
    def test_selected_layers_are_wrapped(self):
        model, quantizer, _ = self.build()
        wrapped = {w.name for w in quantizer.get_modules_wrapper()}
        expected = {"conv1", "conv2"} if {"weight", "input"} & set(self.quant_types) else set()
        if "output" in self.quant_types:
            expected |= {"relu1", "relu2"}
        assert wrapped == expected
        assert not isinstance(model.fc, QuantizerModuleWrapper)  # excluded
        assert all(isinstance(getattr(model, name), QuantizerModuleWrapper) for name in expected)

    def test_unsupported_quant_types_are_rejected(self):
        for quant_type in {"weight", "input", "output"} - set(self.quant_types):
            with pytest.raises(ValueError) as info:
                self.make_quantizer(ContractNet(self.activation), self.config_list((quant_type,)), None)
            assert quant_type in str(info.value) and "\n" not in str(info.value)

    def test_values_take_at_most_2_to_bits_levels(self):
        model, quantizer, _ = self.build()
        seen: dict[str, list[torch.Tensor]] = {"input": [], "output": []}
        for wrapper in quantizer.get_modules_wrapper():
            if "input" in wrapper.quant_types:
                wrapper.module.register_forward_pre_hook(lambda m, i: seen["input"].append(i[0].detach()))
            if "output" in wrapper.quant_types:
                wrapper.register_forward_hook(lambda m, i, o: seen["output"].append(o.detach()))
        model.eval()
        with torch.no_grad():
            model(self.data())
        limit = 2 ** self.bits
        for wrapper in quantizer.get_modules_wrapper():
            if "weight" in wrapper.quant_types:
                weight = wrapper.module.weight
                groups = list(weight) if self.weight_granularity == "channel" else [weight]
                assert max(g.unique().numel() for g in groups) <= limit, wrapper.name
                assert weight.unique().numel() > 1, wrapper.name
        for kind, tensors in seen.items():
            assert len(tensors) == sum(kind in w.quant_types for w in quantizer.get_modules_wrapper())
            for tensor in tensors:
                assert tensor.unique().numel() <= limit, kind

    def test_gradients_reach_the_float_weights(self):
        if not self.trains or "weight" not in self.quant_types:
            pytest.skip("the quantizer does not train weights")
        model, quantizer, optimizer = self.build()
        model.train()
        before = model.conv1.module.old_weight.detach().clone()
        model(self.data()).pow(2).mean().backward()
        for wrapper in quantizer.get_modules_wrapper():
            if "weight" in wrapper.quant_types:
                grad = wrapper.module.old_weight.grad
                assert grad is not None and grad.abs().sum() > 0, wrapper.name
        optimizer.step()
        assert not torch.equal(model.conv1.module.old_weight, before)

    def test_export(self, tmp_path):
        model, quantizer, _ = self.build()
        model.train()
        model(self.data())  # a training forward: ranges are observed
        original_keys = set(ContractNet(self.activation).state_dict())
        calibration = quantizer.export_model(str(tmp_path / "model.pth"), str(tmp_path / "calibration.pth"))
        assert set(calibration) == {w.name for w in quantizer.get_modules_wrapper()}
        for name, entry in calibration.items():
            assert set(entry) <= set(CALIBRATION_KEYS), name
            for quant_type in self.quant_types:
                if f"{quant_type}_bit" in entry:
                    assert entry[f"{quant_type}_bit"] == self.bits
            if "weight_bit" in entry or "input_bit" in entry:
                assert entry["tracked_min_input"] <= entry["tracked_max_input"]
            if "output_bit" in entry:
                assert entry["tracked_min_output"] <= entry["tracked_max_output"]
        assert torch.load(tmp_path / "calibration.pth") == calibration
        state = torch.load(tmp_path / "model.pth")
        assert set(state) == original_keys
        assert not any(isinstance(m, QuantizerModuleWrapper) for m in model.modules())
        fresh = ContractNet(self.activation)
        fresh.load_state_dict(state)
        model.eval()
        x = self.data()
        with torch.no_grad():
            assert torch.allclose(fresh(x), model(x))
        if "weight" in self.quant_types:
            groups = list(state["conv2.weight"]) if self.weight_granularity == "channel" else [state["conv2.weight"]]
            assert max(g.unique().numel() for g in groups) <= 2 ** self.bits

    def test_wrapped_state_dict_round_trip(self, tmp_path):
        model, _, _ = self.build()
        model.train()
        model(self.data())
        torch.save(model.state_dict(), tmp_path / "wrapped.pth")
        other, _, _ = self.build()
        other.load_state_dict(torch.load(tmp_path / "wrapped.pth"))
        model.eval()
        other.eval()
        x = self.data(8)
        with torch.no_grad():
            assert torch.allclose(other(x), model(x))
