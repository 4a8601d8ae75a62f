"""Post-training quantization of a small CNN on scikit-learn's digits, export, CPU int8 inference.

Steps: train the CNN in float; fold each BatchNorm into its conv (ObserverQuantizer quantizes the
weights as they are, so the folded weights are the ones to quantize); wrap it with
ObserverQuantizer (8-bit weights and inputs of the conv / fc layers, 8-bit outputs of the ReLUs and
of the last layer); run a few training batches through it so it records the min / max of every
quantized tensor (no training, no labels used); ``compress()`` fixes the scales; ``export_model``
writes the model, the calibration config and an ONNX file; ``ModelSpeedupONNXRuntime`` runs the
model with int8 kernels on CPU.

    python observer_ptq_int8.py [--epochs 15] [--calib-batches 10] [--output-dir DIR] [--threads 1]

Prints the float, simulated (ObserverQuantizer) and int8 test accuracies and the latency of the
fp32 torch model and of the int8 engine on a batch of 64; the last line is ``Final result: {...}``.
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from digits_common import (CONFIG_LIST, INPUT_SHAPE, DigitsCNN, accuracy, build_int8_engine, int8_predict, latencies,
                           load_data, make_model, train)
from nni.algorithms.compression.pytorch.quantization import ObserverQuantizer


def fold_batchnorms(model: DigitsCNN) -> None:
    """conv -> BN becomes one conv with the BN in its weight and bias; the BN slot passes through."""
    for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
        setattr(model, conv, fuse_conv_bn_eval(getattr(model, conv).eval(), getattr(model, bn).eval()))
        setattr(model, bn, nn.Identity())


def run(args, output_dir: Path) -> dict:
    train_data, test_data = load_data(args.seed)
    model = make_model()
    train(model, torch.optim.Adam(model.parameters(), lr=1e-3), train_data, args.epochs, args.seed)
    float_acc = accuracy(model, test_data)
    print(f"float model:        accuracy {float_acc:.2f} %")
    float_model = copy.deepcopy(model)  # the fp32 reference for the latency comparison

    fold_batchnorms(model)
    quantizer = ObserverQuantizer(model, copy.deepcopy(CONFIG_LIST))
    # calibration: the wrappers only record min / max until compress()
    x_train = train_data[0]
    batches = x_train.split(64)[:args.calib_batches]
    with torch.no_grad():
        for batch in batches:
            model(batch)
    quantizer.compress()
    ptq_acc = accuracy(model, test_data)
    print(f"Observer simulated: accuracy {ptq_acc:.2f} % (calibrated on {sum(len(b) for b in batches)} "
          f"training images, BN folded into conv1 / conv2)")

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
    return {"float_accuracy": round(float_acc, 2), "ptq_simulated_accuracy": round(ptq_acc, 2),
            "int8_accuracy": round(int8_acc, 2), "int8_layers": int8_layers, "batch": args.batch,
            "threads": args.threads, "fp32_latency_ms": round(fp32_s * 1e3, 4),
            "int8_latency_ms": round(int8_s * 1e3, 4), "latency_ratio": round(int8_s / fp32_s, 3)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="float training epochs")
    parser.add_argument("--calib-batches", type=int, default=10, help="training batches of 64 used for calibration")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where model.pth, calibration.pth and the ONNX files go (default: a temporary folder, "
                             "removed at the end)")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the latency comparison")
    parser.add_argument("--repeats", type=int, default=50, help="timed batches per model (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.calib_batches < 1:
        parser.error("--epochs and --calib-batches must be at least 1")

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


if __name__ == "__main__":
    main()
