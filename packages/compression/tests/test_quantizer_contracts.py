"""Every quantizer passes the quantizer contract suite (nni.compression.pytorch.quantization.contract)."""
from torch import nn

from nni.algorithms.compression.pytorch.quantization import (BNNQuantizer, DoReFaQuantizer, LsqQuantizer,
                                                             NaiveQuantizer, ObserverQuantizer, QAT_Quantizer)
from nni.compression.pytorch.quantization.contract import QuantizerContract


class TestNaiveContract(QuantizerContract):
    weight_granularity = "tensor"

    def make_quantizer(self, model, config_list, optimizer):
        return NaiveQuantizer(model, config_list, optimizer)


class TestQATContract(QuantizerContract):
    quant_types = ("weight", "input", "output")

    def make_quantizer(self, model, config_list, optimizer):
        return QAT_Quantizer(model, config_list, optimizer)


class TestQATPerTensorUintContract(QuantizerContract):
    quant_types = ("weight", "input", "output")
    weight_granularity = "tensor"
    bits = 2

    def make_quantizer(self, model, config_list, optimizer):
        for entry in config_list:
            if not entry.get("exclude"):
                entry.update(quant_dtype="uint", quant_scheme="per_tensor_affine")
        return QAT_Quantizer(model, config_list, optimizer)


class TestDoReFaContract(QuantizerContract):
    weight_granularity = "tensor"

    def make_quantizer(self, model, config_list, optimizer):
        return DoReFaQuantizer(model, config_list, optimizer)


class TestBNNContract(QuantizerContract):
    quant_types = ("weight", "output")
    weight_granularity = "tensor"
    bits = 1
    activation = nn.Hardtanh

    def make_quantizer(self, model, config_list, optimizer):
        return BNNQuantizer(model, config_list, optimizer)


class TestLsqContract(QuantizerContract):
    quant_types = ("weight", "input", "output")
    weight_granularity = "tensor"

    def make_quantizer(self, model, config_list, optimizer):
        return LsqQuantizer(model, config_list, optimizer)


class TestObserverContract(QuantizerContract):
    quant_types = ("weight", "input", "output")
    weight_granularity = "tensor"
    trains = False
    needs_calibration = True

    def make_quantizer(self, model, config_list, optimizer):
        return ObserverQuantizer(model, config_list, optimizer)
