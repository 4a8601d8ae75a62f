"""The quantization examples (examples/model_compress/quantization) run end to end with few epochs:
QAT / Observer calibration -> export_model -> ONNX Runtime int8, and the int8 engine keeps the
accuracy of the quantizer's simulation."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "model_compress" / "quantization"
INT8_LAYERS = ["conv1", "conv2", "fc1", "fc2"]


def run_example(script: str, *args: str, cwd: Path) -> tuple[dict, str]:
    r = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, f"{script} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    line = [x for x in r.stdout.splitlines() if x.startswith("Final result:")][-1]
    return json.loads(line.split(":", 1)[1]), r.stdout


@pytest.mark.slow  # a subprocess importing torch + scikit-learn and training: ~13 s CPU, ~30 s wall on busy cores
def test_qat_example_int8_keeps_the_simulated_accuracy(tmp_path):
    out = tmp_path / "out"
    result, stdout = run_example("digits_qat_int8.py", "--epochs", "2", "--qat-epochs", "1", "--repeats", "3",
                                 "--output-dir", str(out), cwd=tmp_path)
    assert "BN folded {'conv1': 'bn1', 'conv2': 'bn2'}" in stdout
    assert result["float_accuracy"] > 85
    assert result["qat_simulated_accuracy"] >= result["float_accuracy"] - 3
    # the int8 engine runs what the quantizer simulated (same weights, same ranges)
    assert abs(result["int8_accuracy"] - result["qat_simulated_accuracy"]) <= 2
    assert result["int8_layers"] == INT8_LAYERS
    assert result["batch"] == 64 and result["fp32_latency_ms"] > 0 and result["int8_latency_ms"] > 0
    for name in ("model.pth", "calibration.pth", "model.onnx", "model_int8.onnx"):
        assert (out / name).is_file(), name
    calibration = torch.load(out / "calibration.pth")
    assert set(calibration) == set(INT8_LAYERS) | {"relu1", "relu2", "relu3"}
    assert calibration["fc2"]["weight_bit"] == 8 and calibration["relu1"]["tracked_min_output"] == 0.0
    # the exported state dict is the plain model's (wrappers gone, BN back in place)
    state = torch.load(out / "model.pth")
    assert "bn1.running_mean" in state and not any("old_weight" in k or "module." in k for k in state)


@pytest.mark.slow
def test_observer_example_int8_keeps_the_simulated_accuracy(tmp_path):
    result, stdout = run_example("observer_ptq_int8.py", "--epochs", "2", "--calib-batches", "4", "--repeats", "3",
                                 cwd=tmp_path)
    assert "calibrated on 256 training images" in stdout
    assert result["float_accuracy"] > 85
    assert result["ptq_simulated_accuracy"] >= result["float_accuracy"] - 3
    assert abs(result["int8_accuracy"] - result["ptq_simulated_accuracy"]) <= 2
    assert result["int8_layers"] == INT8_LAYERS
    assert list(tmp_path.iterdir()) == []  # the default output folder is temporary
