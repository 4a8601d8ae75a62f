"""What the two quantization examples share: the digits data, a small CNN with BatchNorm, the
config_list, the model (from the project's model zoo), float training, accuracy, the int8 engine and the latency comparison.

The 8x8 digit images of scikit-learn (1797, values 0..16) are used as 1x8x8 tensors scaled to
[0, 1], 75 % for training and 25 % for testing (stratified split).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

from nni.retiarii.models import DigitsCNN, digits_cnn

INPUT_SHAPE = (1, 1, 8, 8)

#: what both examples quantize, all to 8 bits
CONFIG_LIST = [
    # conv / fc layers: 8-bit weights (per channel, symmetric) and inputs (per tensor, affine)
    {"quant_types": ["weight", "input"], "quant_bits": {"weight": 8, "input": 8},
     "op_names": ["conv1", "conv2", "fc1"]},
    # the last layer's output too: the int8 engine then ends in an int8 GEMM as well
    {"quant_types": ["weight", "input", "output"], "quant_bits": 8, "op_names": ["fc2"]},
    # the ReLU outputs are the next layers' int8 inputs
    {"quant_types": ["output"], "quant_bits": {"output": 8}, "op_names": ["relu1", "relu2", "relu3"]},
]


def make_model() -> DigitsCNN:
    """conv(1->16)-BN-ReLU -> conv(16->32)-BN-ReLU -> maxpool -> fc(512->64)-ReLU -> fc(64->10).

    The project's model zoo's digits CNN with BatchNorm; its ReLUs are modules (``relu1``..``relu3``,
    not ``F.relu``) so a quantizer can select them and quantize their outputs.
    """
    return digits_cnn(batch_norm=True)


def load_data(seed: int = 0):
    """``((x_train, y_train), (x_test, y_test))``, images as float tensors of shape (n, 1, 8, 8)."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(list(range(len(y))), test_size=0.25, random_state=seed,
                                           stratify=digits.target)
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def train(model: nn.Module, optimizer: torch.optim.Optimizer, data, epochs: int, seed: int,
          batch_size: int = 64) -> None:
    """Plain cross-entropy training; a quantizer's wrappers simulate quantization in the forward."""
    x, y = data
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    model.eval()


@torch.no_grad()
def accuracy(predict: Callable[[torch.Tensor], torch.Tensor], data) -> float:
    """Test accuracy in percent of ``predict`` (a model in eval mode, or any batch -> logits callable)."""
    x, y = data
    return 100.0 * float((predict(x).argmax(1) == y).float().mean())


def build_int8_engine(model: nn.Module, calibration_config: dict, output_dir: Path, batch: int, threads: int):
    """Builds the ONNX Runtime int8 engine from the exported model and its calibration config and
    writes the int8 (QDQ) ONNX model to ``output_dir/model_int8.onnx``."""
    from nni.compression.pytorch.quantization_speedup import ModelSpeedupONNXRuntime

    engine = ModelSpeedupONNXRuntime(model, (batch, *INPUT_SHAPE[1:]), config=calibration_config,
                                     onnx_path=str(output_dir / "model_for_int8.onnx"), batchsize=batch,
                                     num_threads=threads)
    engine.compress()
    engine.export_quantized_model(str(output_dir / "model_int8.onnx"))
    return engine


def int8_predict(engine) -> Callable[[torch.Tensor], torch.Tensor]:
    """``inference`` returns ``(output, seconds)``; accuracy wants the output only."""
    return lambda x: engine.inference(x)[0]


@torch.no_grad()
def latencies(model: nn.Module, engine, data, batch: int, repeats: int) -> tuple[float, float]:
    """Median seconds per batch of ``batch`` test images: fp32 torch model, int8 engine.

    Both are timed with ``time.perf_counter`` around the call (the engine's own figure, the second
    item of ``inference``, leaves out the tensor conversion); the runs alternate so that other load
    on the machine hits both alike.
    """
    x = data[0][:batch]
    if len(x) < batch:
        x = x.repeat((batch + len(x) - 1) // len(x), 1, 1, 1)[:batch]
    model.eval()
    runs = [lambda: model(x), lambda: engine.inference(x)]
    for run in runs:
        run()  # warm-up
    times: list[list[float]] = [[], []]
    for _ in range(repeats):
        for run, record in zip(runs, times):
            start = time.perf_counter()
            run()
            record.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def export_and_run_int8(quantizer, model: nn.Module, float_model: nn.Module, test_data, output_dir: Path,
                        args) -> tuple[dict, dict]:
    """The tail both examples share: ``export_model``, the int8 engine from its calibration config, and the
    int8 accuracy and latency against the fp32 model. Returns (calibration config, result fields)."""
    paths = {name: output_dir / name for name in ("model.pth", "calibration.pth", "model.onnx")}
    calibration_config = quantizer.export_model(str(paths["model.pth"]), str(paths["calibration.pth"]),
                                                str(paths["model.onnx"]), input_shape=INPUT_SHAPE, device="cpu")
    print(f"export_model:       {', '.join(str(p) for p in paths.values())}")

    engine = build_int8_engine(model, calibration_config, output_dir, args.batch, args.threads)
    int8_acc = accuracy(int8_predict(engine), test_data)
    int8_layers = sorted(n for n, p in engine.plans.items() if p.int8_weight)
    print(f"int8 (ONNX Runtime): accuracy {int8_acc:.2f} %, int8 layers {int8_layers}, "
          f"model {output_dir / 'model_int8.onnx'}")

    fp32_s, int8_s = latencies(float_model, engine, test_data, args.batch, args.repeats)
    print(f"latency, batch {args.batch}: fp32 torch {fp32_s * 1e3:.3f} ms, int8 {int8_s * 1e3:.3f} ms "
          f"({int8_s / fp32_s:.2f}x), {args.threads} thread(s)")
    return calibration_config, {
        "int8_accuracy": round(int8_acc, 2), "int8_layers": int8_layers, "batch": args.batch,
        "threads": args.threads, "fp32_latency_ms": round(fp32_s * 1e3, 4),
        "int8_latency_ms": round(int8_s * 1e3, 4), "latency_ratio": round(int8_s / fp32_s, 3)}


def example_parser(description: str) -> argparse.ArgumentParser:
    """The options both examples take; each adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=15, help="float training epochs")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where model.pth, calibration.pth and the ONNX files go (default: a temporary folder, "
                             "removed at the end)")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the latency comparison")
    parser.add_argument("--repeats", type=int, default=50, help="timed batches per model (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def run_example(run: Callable[[argparse.Namespace, Path], dict], args: argparse.Namespace) -> dict:
    """Seed and thread setup, run in ``--output-dir`` (or a temporary folder), print the final JSON line."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.output_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(args, Path(tmp))
    else:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.output_dir)
    print("Final result:", json.dumps(result))
    return result
