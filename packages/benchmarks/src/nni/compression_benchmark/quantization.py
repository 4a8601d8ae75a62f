"""Int8 CPU inference (ONNX Runtime backend) vs the fp32 PyTorch model on scikit-learn's digits.

``python -m nni.compression_benchmark.quantization`` trains a small CNN (conv(1->16) ->
conv(16->32) -> maxpool -> fc(512->64) -> fc(64->10), the 8x8 digits as 1x8x8 images, 75/25
split), quantizes it to 8 bits with QAT_Quantizer (weights and inputs of the four layers, outputs
of the ReLUs and of the last layer; ``--mode ptq``: the float model with ranges observed on the
training set instead), exports the calibration config, builds ``ModelSpeedupONNXRuntime`` and
prints one JSON object: test accuracy of the fp32 model, of the quantizer's simulation and of the
int8 engine; the median latency of the fp32 model and of the int8 engine on one batch (same
thread count, same run); and the targets (latency <= 0.6x, accuracy within 1 point).
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nni.retiarii.models import digits_cnn

TARGET_LATENCY_RATIO = 0.6
TARGET_ACCURACY_DROP = 1.0  # points


QAT_CONFIG_LIST = [
    {"quant_types": ["weight", "input"], "quant_bits": 8, "op_names": ["conv1", "conv2", "fc1"]},
    {"quant_types": ["weight", "input", "output"], "quant_bits": 8, "op_names": ["fc2"]},
    {"quant_types": ["output"], "quant_bits": 8, "op_names": ["relu1", "relu2", "relu3"]},
]


def load_digits_data(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(list(range(len(y))), test_size=0.25, random_state=seed,
                                           stratify=digits.target)
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def train(model: nn.Module, data, epochs: int, lr: float, seed: int, batch_size: int = 64) -> None:
    x, y = data
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    model.eval()


def accuracy(predict, data) -> float:
    x, y = data
    return 100.0 * float((predict(x).argmax(1) == y).float().mean())


def _median_latencies(runs, repeats: int) -> list[float]:
    """Median wall time of each callable; the runs alternate, so load on the machine hits all alike."""
    for run in runs:
        run()  # warm-up
    times = [[] for _ in runs]
    for _ in range(repeats):
        for run, record in zip(runs, times):
            start = time.perf_counter()
            run()
            record.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def quantize(model: nn.Module, train_data, test_data, mode: str, epochs: int, seed: int,
             workdir: Path) -> tuple[dict, nn.Module, float | None]:
    """Returns the calibration config, the model to run (QAT: with its quantized weights) and
    the test accuracy of the quantizer's simulation (QAT only)."""
    from nni.compression.pytorch.quantization_speedup import observe_ranges

    if mode == "ptq":
        x, _ = train_data
        return observe_ranges(model, x.split(256)), model, None
    from nni.algorithms.compression.pytorch.quantization import QAT_Quantizer

    qmodel = copy.deepcopy(model)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(qmodel.parameters(), lr=1e-4)
    quantizer = QAT_Quantizer(qmodel, copy.deepcopy(QAT_CONFIG_LIST), optimizer)
    quantizer.compress()
    x, y = train_data
    generator = torch.Generator().manual_seed(seed)
    qmodel.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), 64):
            idx = order[i:i + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(qmodel(x[idx]), y[idx]).backward()
            optimizer.step()
    qmodel.eval()
    with torch.no_grad():
        simulated_acc = accuracy(qmodel, test_data)
    config = quantizer.export_model(str(workdir / "qat_model.pth"), str(workdir / "calibration.pth"))
    return config, qmodel, simulated_acc


def run(batch: int = 64, repeats: int = 50, threads: int = 1, epochs: int = 15, qat_epochs: int = 3,
        mode: str = "qat", seed: int = 0) -> dict[str, Any]:
    """Trains, quantizes and measures; returns the result dict (see the module docstring)."""
    from nni.compression.pytorch.quantization_speedup import ModelSpeedupONNXRuntime

    if mode not in ("qat", "ptq"):
        raise ValueError(f"mode={mode!r}: allowed 'qat' (QAT_Quantizer fine-tuning) or 'ptq' (observed ranges)")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train_data, test_data = load_digits_data(seed)
    model = digits_cnn()  # the zoo's default: ReLUs as modules, so their outputs can be quantized
    train(model, train_data, epochs, 1e-3, seed)
    with torch.no_grad():
        fp32_acc = accuracy(model, test_data)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # the fp32 reference keeps the weights it had before quantization-aware training
        config, quantized, simulated_acc = quantize(copy.deepcopy(model), train_data, test_data, mode, qat_epochs,
                                                    seed, workdir)
        engine = ModelSpeedupONNXRuntime(quantized, (batch, 1, 8, 8), config=config,
                                         onnx_path=str(workdir / "model.onnx"), batchsize=batch, num_threads=threads)
        engine.compress()
    int8_acc = accuracy(lambda x: engine.inference(x)[0], test_data)
    x = test_data[0][:batch]
    if len(x) < batch:
        x = x.repeat((batch + len(x) - 1) // len(x), 1, 1, 1)[:batch]
    with torch.no_grad():
        fp32_latency, int8_latency = _median_latencies([lambda: model(x), lambda: engine.inference(x)], repeats)
    result = {
        "model": "digits_cnn", "mode": mode, "batch": batch, "threads": threads, "repeats": repeats,
        "epochs": epochs, "qat_epochs": qat_epochs if mode == "qat" else 0, "seed": seed,
        "fp32_accuracy": round(fp32_acc, 2),
        "simulated_accuracy": None if simulated_acc is None else round(simulated_acc, 2),
        "int8_accuracy": round(int8_acc, 2),
        "fp32_latency_s": round(fp32_latency, 6), "int8_latency_s": round(int8_latency, 6),
        "latency_ratio": round(int8_latency / fp32_latency, 3),
        "int8_layers": sorted(n for n, p in engine.plans.items() if p.int8_weight),
    }
    result["targets_met"] = {"latency": result["latency_ratio"] <= TARGET_LATENCY_RATIO,
                             "accuracy": fp32_acc - int8_acc <= TARGET_ACCURACY_DROP}
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m nni.compression_benchmark.quantization")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=50, help="timed batches per engine (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime intra-op threads")
    p.add_argument("--epochs", type=int, default=15, help="float training epochs")
    p.add_argument("--qat-epochs", type=int, default=3)
    p.add_argument("--mode", choices=("qat", "ptq"), default="qat")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(json.dumps(run(args.batch, args.repeats, args.threads, args.epochs, args.qat_epochs, args.mode,
                         args.seed)), flush=True)


if __name__ == "__main__":
    main()
