"""Retrain an architecture found by ``search.py`` from scratch and report its test accuracy.

    python retrain.py arch.json [--epochs 15] [--onnx subnet.onnx]

The network is the model space under ``fixed_arch`` (a plain PyTorch module: the chosen blocks only), trained on
the search's 75 % split and tested on the other 25 %.
"""
import argparse
import json

import torch

from nni.nas_oneshot_benchmark.bench import digits_dataset, retrain_model

from search import split


def retrain(arch: dict, channels: int, seed: int, epochs: int, samples=None):
    train, test = split(digits_dataset(samples), seed)
    model = retrain_model(arch, train, epochs, channels, seed)  # the benchmark's protocol: SGD, cosine-annealed lr
    with torch.no_grad():
        x, y = test.tensors
        return model, (model(x).argmax(1) == y).float().mean().item()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('arch', help='the JSON written by search.py')
    parser.add_argument('--epochs', type=int, default=15)
    parser.add_argument('--onnx', default=None, help='also export the retrained network to this ONNX file')
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    with open(args.arch) as f:
        found = json.load(f)
    model, acc = retrain(found['architecture'], found['channels'], found['seed'], args.epochs, found.get('samples'))
    print(f"retrained {found['algo']} architecture {found['architecture']}: test accuracy {acc:.4f}")
    if args.onnx:
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), args.onnx, dynamo=False)
        print(f'ONNX model written to {args.onnx}')


if __name__ == '__main__':
    main()
