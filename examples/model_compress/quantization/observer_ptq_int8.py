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

import copy
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from digits_common import (CONFIG_LIST, DigitsCNN, accuracy, example_parser, export_and_run_int8, load_data,
                           make_model, run_example, train)
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

    _, int8_result = export_and_run_int8(quantizer, model, float_model, test_data, output_dir, args)
    return {"float_accuracy": round(float_acc, 2), "ptq_simulated_accuracy": round(ptq_acc, 2), **int8_result}


def main(argv=None) -> dict:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--calib-batches", type=int, default=10, help="training batches of 64 used for calibration")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.calib_batches < 1:
        parser.error("--epochs and --calib-batches must be at least 1")
    return run_example(run, args)


if __name__ == "__main__":
    main()
