"""Generate the NAS-Bench-201 database from the official release.

Usage: ``python -m nni.nas.benchmarks.nasbench201.db_gen NAS-Bench-201-v1_1-096897.pth [--out FILE]``

The input is the official ``.pth`` file (a ``torch.save``\\ d dict; reading it needs torch): its
``arch2infos`` maps an architecture index to ``{'less': ..., 'full': ...}`` (the 12- and 200-epoch
schedules), each holding ``arch_str`` and ``all_results``, a dict ``(dataset, seed) -> results``
whose results carry ``epochs``, ``train_acc1es`` / ``train_losses`` / ``train_times`` (per epoch),
``eval_acc1es`` / ``eval_losses`` / ``eval_times`` keyed ``'<split>@<epoch>'`` (splits ``x-valid``,
``x-test``, ``ori-test``), ``params``, ``flop``, ``latency`` and ``arch_config`` (``C``, ``N``).
For ``cifar10-valid`` the test set is the original test set (``ori-test``); for the other
datasets valid/test are ``x-valid``/``x-test``. NaN losses become None.
"""
from __future__ import annotations

import argparse
from typing import Any, Iterator

from ..utils import canonical_json, nan_to_none, progress, run_generator, write_database
from .constants import DATASETS
from .model import DATABASE, MODELS

__all__ = ["parse_arch_str", "iter_trials", "generate"]

_OPS = {"none": "none", "skip_connect": "skip_connect", "nor_conv_1x1": "conv_1x1",
        "nor_conv_3x3": "conv_3x3", "avg_pool_3x3": "avg_pool_3x3"}


def parse_arch_str(arch_str: str) -> dict:
    """``'|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|...|'`` -> ``{'0_1': 'conv_3x3', ...}``."""
    arch = {}
    for j, node in enumerate(arch_str.strip("|").split("|+|"), start=1):
        for edge in node.strip("|").split("|"):
            op, i = edge.split("~")
            if op not in _OPS:
                raise ValueError(f"arch_str {arch_str!r}: unknown operator {op!r}; known: {', '.join(_OPS)}")
            arch[f"{i}_{j}"] = _OPS[op]
    return arch


def _last(mapping: dict, epochs: int) -> Any:
    return mapping.get(epochs - 1) if mapping else None


def _split_names(dataset: str) -> dict[str, str]:
    # cifar10-valid trains on half of the training set and tests on the original test set.
    if dataset == "cifar10-valid":
        return {"valid": "x-valid", "test": "ori-test", "ori_test": "ori-test"}
    return {"valid": "x-valid", "test": "x-test", "ori_test": "ori-test"}


def iter_trials(raw: dict) -> Iterator[tuple[dict, dict, list[dict]]]:
    """Yield ``(config, stats, intermediates)`` row dicts for every trial of a raw release dict."""
    for index, infos in raw["arch2infos"].items():
        for schedule in ("less", "full"):
            if schedule not in infos:
                continue
            info = infos[schedule]
            arch = parse_arch_str(info["arch_str"])
            for (dataset, seed), res in sorted(info["all_results"].items(), key=lambda kv: (kv[0][0], kv[0][1])):
                dataset = dataset.lower()
                if dataset not in DATASETS:
                    raise ValueError(f"arch2infos[{index}][{schedule!r}]: dataset {dataset!r} is not one of {', '.join(DATASETS)}")
                epochs = int(res["epochs"])
                names = _split_names(dataset)
                accs, losses, times = res.get("eval_acc1es") or {}, res.get("eval_losses") or {}, res.get("eval_times") or {}

                def ev(table: dict, split: str, epoch: int, *, nan: bool = False):
                    value = table.get(f"{names[split]}@{epoch}")
                    return nan_to_none(value) if nan or value is None else float(value)

                config = {"arch": arch, "num_epochs": epochs, "dataset": dataset,
                          "num_channels": int(res["arch_config"]["C"]), "num_cells": int(res["arch_config"]["N"])}
                latency = res.get("latency")
                if isinstance(latency, (list, tuple)):
                    latency = [x for x in latency if x is not None and x >= 0]
                    latency = sum(latency) / len(latency) if latency else None
                train_times = res.get("train_times") or {}
                last = epochs - 1
                stats = {
                    "seed": int(seed),
                    "train_acc": float(_last(res["train_acc1es"], epochs)),
                    "valid_acc": ev(accs, "valid", last), "test_acc": ev(accs, "test", last),
                    "ori_test_acc": ev(accs, "ori_test", last),
                    "train_loss": nan_to_none(_last(res.get("train_losses"), epochs)),
                    "valid_loss": ev(losses, "valid", last, nan=True), "test_loss": ev(losses, "test", last, nan=True),
                    "ori_test_loss": ev(losses, "ori_test", last, nan=True),
                    "parameters": float(res["params"]), "flops": float(res["flop"]), "latency": latency,
                    "training_time": float(sum(train_times.values())) if train_times else 0.0,
                    "valid_evaluation_time": ev(times, "valid", last), "test_evaluation_time": ev(times, "test", last),
                    "ori_test_evaluation_time": ev(times, "ori_test", last),
                }
                inters = []
                for epoch in range(epochs):
                    inters.append({
                        "current_epoch": epoch + 1,
                        "train_acc": res["train_acc1es"].get(epoch),
                        "train_loss": nan_to_none((res.get("train_losses") or {}).get(epoch)),
                        "valid_acc": ev(accs, "valid", epoch), "test_acc": ev(accs, "test", epoch),
                        "ori_test_acc": ev(accs, "ori_test", epoch),
                        "valid_loss": ev(losses, "valid", epoch, nan=True), "test_loss": ev(losses, "test", epoch, nan=True),
                        "ori_test_loss": ev(losses, "ori_test", epoch, nan=True),
                    })
                yield config, stats, inters


def config_key(config: dict) -> tuple:
    """Trials with the same arch, epochs and dataset share one config row."""
    return canonical_json(config["arch"]), config["num_epochs"], config["dataset"]


def generate(raw_path: str, out: str | None = None, quiet: bool = True) -> int:
    """Read the official ``.pth`` at ``raw_path`` and write the database; returns the number of trials."""
    try:
        import torch
    except ImportError as err:
        raise ImportError("reading the NAS-Bench-201 .pth release needs torch: pip install torch") from err
    # weights_only: the release is plain dicts, lists and numbers, so nothing needs unpickling code.
    raw = torch.load(raw_path, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or "arch2infos" not in raw:
        raise ValueError(f"{raw_path}: not a NAS-Bench-201 release (a dict with 'arch2infos' expected)")
    return write_database(DATABASE, out, MODELS, progress(iter_trials(raw), "NAS-Bench-201", quiet), config_key)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nni.nas.benchmarks.nasbench201.db_gen", description=__doc__.split("\n")[0])
    parser.add_argument("raw", help="NAS-Bench-201-v1_1-096897.pth (or v1_0)")
    run_generator(parser, DATABASE, argv, lambda args: (generate(args.raw, args.out, quiet=args.quiet), ""))


if __name__ == "__main__":
    main()
