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

import copy
import json
from pathlib import Path

import torch

from digits_common import (CONFIG_LIST, INPUT_SHAPE, accuracy, example_parser, export_and_run_int8, load_data,
                           make_model, run_example, train)
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

    calibration_config, int8_result = export_and_run_int8(quantizer, model, float_model, test_data, output_dir, args)
    rounded = {layer: {key: round(value, 4) for key, value in entry.items()}
               for layer, entry in calibration_config.items()}
    print(f"calibration config: {json.dumps(rounded)}")
    return {"float_accuracy": round(float_acc, 2), "qat_simulated_accuracy": round(qat_acc, 2), **int8_result}


def main(argv=None) -> dict:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--qat-epochs", type=int, default=3, help="quantization-aware fine-tuning epochs")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.qat_epochs < 1:
        parser.error("--epochs and --qat-epochs must be at least 1")
    return run_example(run, args)


if __name__ == "__main__":
    main()
