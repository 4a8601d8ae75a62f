"""Quantization-aware training of a small CNN on scikit-learn's digits, export, CPU int8 inference.

Steps: train the CNN (conv-BN-ReLU x2, two fc layers) in float; wrap it with QAT_Quantizer (8-bit
weights and inputs of the conv / fc layers, 8-bit outputs of the ReLUs and of the last layer, the
BatchNorms folded into the conv weights); fine-tune with simulated quantization; ``export_model``
writes the model with quantized weights, the calibration config and an ONNX file; the calibration
config then drives ``ModelSpeedupONNXRuntime``, which runs the model with int8 kernels on CPU.

    python digits_qat_int8.py [--epochs 15] [--qat-epochs 3] [--output-dir DIR] [--threads 1]

Prints the float, QAT-simulated and int8 test accuracies and the latency of the fp32 torch model
and of the int8 engine on a batch of 64; the last line is ``Final result: {...}`` (JSON).
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import torch

from digits_common import (CONFIG_LIST, INPUT_SHAPE, accuracy, build_int8_engine, int8_predict, latencies,
                           load_data, make_model, train)
from nni.algorithms.compression.pytorch.quantization import QAT_Quantizer


def run(args, output_dir: Path) -> dict:
    train_data, test_data = load_data(args.seed)
    model = make_model()
    train(model, torch.optim.Adam(model.parameters(), lr=1e-3), train_data, args.epochs, args.seed)
    float_acc = accuracy(model, test_data)
    print(f"float model:        accuracy {float_acc:.2f} %")
    float_model = copy.deepcopy(model)  # the fp32 reference for the latency comparison

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    # dummy_input lets the quantizer find the conv -> BN pairs and fold each BN into its conv
    quantizer = QAT_Quantizer(model, copy.deepcopy(CONFIG_LIST), optimizer, dummy_input=torch.zeros(INPUT_SHAPE))
    quantizer.compress()
    print(f"QAT_Quantizer:      BN folded {quantizer.conv_bn_patterns}")
    train(model, optimizer, train_data, args.qat_epochs, args.seed + 1)
    qat_acc = accuracy(model, test_data)
    print(f"QAT simulated:      accuracy {qat_acc:.2f} % (after {args.qat_epochs} epoch(s) of fine-tuning)")

    paths = {name: output_dir / name for name in ("model.pth", "calibration.pth", "model.onnx")}
    calibration_config = quantizer.export_model(str(paths["model.pth"]), str(paths["calibration.pth"]),
                                                str(paths["model.onnx"]), input_shape=INPUT_SHAPE, device="cpu")
    print(f"export_model:       {', '.join(str(p) for p in paths.values())}")
    rounded = {layer: {key: round(value, 4) for key, value in entry.items()}
               for layer, entry in calibration_config.items()}
    print(f"calibration config: {json.dumps(rounded)}")

    engine = build_int8_engine(model, calibration_config, output_dir, args.batch, args.threads)
    int8_acc = accuracy(int8_predict(engine), test_data)
    int8_layers = sorted(n for n, p in engine.plans.items() if p.int8_weight)
    print(f"int8 (ONNX Runtime): accuracy {int8_acc:.2f} %, int8 layers {int8_layers}, "
          f"model {output_dir / 'model_int8.onnx'}")

    fp32_s, int8_s = latencies(float_model, engine, test_data, args.batch, args.repeats)
    print(f"latency, batch {args.batch}: fp32 torch {fp32_s * 1e3:.3f} ms, int8 {int8_s * 1e3:.3f} ms "
          f"({int8_s / fp32_s:.2f}x), {args.threads} thread(s)")
    return {"float_accuracy": round(float_acc, 2), "qat_simulated_accuracy": round(qat_acc, 2),
            "int8_accuracy": round(int8_acc, 2), "int8_layers": int8_layers, "batch": args.batch,
            "threads": args.threads, "fp32_latency_ms": round(fp32_s * 1e3, 4),
            "int8_latency_ms": round(int8_s * 1e3, 4), "latency_ratio": round(int8_s / fp32_s, 3)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="float training epochs")
    parser.add_argument("--qat-epochs", type=int, default=3, help="quantization-aware fine-tuning epochs")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where model.pth, calibration.pth and the ONNX files go (default: a temporary folder, "
                             "removed at the end)")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the latency comparison")
    parser.add_argument("--repeats", type=int, default=50, help="timed batches per model (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.qat_epochs < 1:
        parser.error("--epochs and --qat-epochs must be at least 1")

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
