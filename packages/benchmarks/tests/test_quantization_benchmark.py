"""The int8 (ONNX Runtime) vs fp32 benchmark on digits, with tiny settings."""
from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("nni.compression.pytorch.quantization_speedup")

from nni.compression_benchmark import quantization  # noqa: E402


@pytest.mark.parametrize("mode", ["ptq", "qat"])
def test_quantization_benchmark_tiny(mode):
    if mode == "qat":
        pytest.importorskip("nni.algorithms.compression.pytorch.quantization")
    result = quantization.run(batch=16, repeats=2, threads=1, epochs=2, qat_epochs=1, mode=mode)
    assert result["int8_layers"] == ["conv1", "conv2", "fc1", "fc2"]
    assert result["fp32_accuracy"] > 60
    # 8-bit inference keeps the float model's accuracy within a few points even after 2 epochs
    assert abs(result["int8_accuracy"] - result["fp32_accuracy"]) <= 3
    if mode == "qat":
        assert abs(result["int8_accuracy"] - result["simulated_accuracy"]) <= 1
    assert result["fp32_latency_s"] > 0 and result["int8_latency_s"] > 0
    assert set(result["targets_met"]) == {"latency", "accuracy"}


def test_bad_mode():
    with pytest.raises(ValueError, match=r"mode='int4': allowed 'qat'"):
        quantization.run(mode="int4")
