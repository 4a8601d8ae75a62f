"""Prune a small CNN on scikit-learn's digits, fine-tune it, speed it up and count its FLOPs.

The 8x8 digit images (1797 of them, values 0..16) are used as 1x8x8 tensors, 75 % for training and
25 % for testing. Steps: train the CNN, prune 50 % of the filters of both conv layers with
L1FilterPruner, fine-tune the masked model, export the masks, replace the masked layers by smaller
ones with ModelSpeedup, and compare accuracy, FLOPs and parameters before and after.

    python digits_prune_speedup.py [--epochs 15] [--finetune-epochs 5] [--sparsity 0.5] [--threads 1]

The last line printed is ``Final result: {...}`` (JSON) with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.nn import functional as F

from nni.algorithms.compression.pytorch.pruning import L1FilterPruner
from nni.compression.pytorch import ModelSpeedup
from nni.compression.pytorch.utils.counter import count_flops_params
from nni.retiarii.models import digits_cnn  # conv(1->16) -> conv(16->32) -> maxpool -> fc(512->64) -> fc(64->10)


def load_data(seed: int = 0):
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(list(range(len(y))), test_size=0.25, random_state=seed, stratify=digits.target)
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def train(model, data, epochs: int, lr: float, seed: int, batch_size: int = 64):
    x, y = data
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()


@torch.no_grad()
def evaluate(model, data) -> float:
    x, y = data
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the model is tiny: 1 is fastest)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_data, test_data = load_data(args.seed)
    dummy_input = torch.rand(1, 1, 8, 8)
    model = digits_cnn()

    train(model, train_data, args.epochs, lr=2e-3, seed=args.seed)
    acc_original = evaluate(model, test_data)
    flops_original, params_original, _ = count_flops_params(model, dummy_input, verbose=False)
    print(f"original:   accuracy {acc_original:.4f}, FLOPs {flops_original}, params {params_original}")

    config_list = [{"sparsity": args.sparsity, "op_types": ["Conv2d"]}]
    pruner = L1FilterPruner(model, config_list)
    model = pruner.compress()
    acc_pruned = evaluate(model, test_data)
    print(f"pruned:     accuracy {acc_pruned:.4f} (masked, before fine-tuning)")

    # the wrappers re-apply the masks before every forward, so the pruned filters stay zero
    train(model, train_data, args.finetune_epochs, lr=1e-3, seed=args.seed + 1)
    acc_finetuned = evaluate(model, test_data)
    print(f"fine-tuned: accuracy {acc_finetuned:.4f} (masked)")

    with tempfile.TemporaryDirectory() as tmp:
        model_path, mask_path = os.path.join(tmp, "model.pth"), os.path.join(tmp, "mask.pth")
        pruner.export_model(model_path=model_path, mask_path=mask_path)
        pruner._unwrap_model()
        ModelSpeedup(model, dummy_input, mask_path).speedup_model()
    acc_speedup = evaluate(model, test_data)
    flops_speedup, params_speedup, _ = count_flops_params(model, dummy_input, verbose=False)
    print(f"speedup:    accuracy {acc_speedup:.4f}, FLOPs {flops_speedup}, params {params_speedup}")
    print(f"            conv1 {model.conv1}, conv2 {model.conv2}, fc1 {model.fc1}")

    result = {
        "accuracy_original": acc_original, "accuracy_pruned": acc_pruned, "accuracy_finetuned": acc_finetuned,
        "accuracy_speedup": acc_speedup, "flops_original": flops_original, "flops_speedup": flops_speedup,
        "params_original": params_original, "params_speedup": params_speedup,
        "conv1_out_channels": model.conv1.out_channels, "conv2_out_channels": model.conv2.out_channels,
    }
    print("Final result:", json.dumps(result))
    return result


if __name__ == "__main__":
    main()
