"""Generate the NDS database from the official release.

Usage: ``python -m nni.nas.benchmarks.nds.db_gen <folder or .json files> [--out FILE]``

The input is the JSON files of the NDS release (``Amoeba.json``, ``DARTS_lr-wd_in.json``,
``ResNeXt-A.json``, …), a folder holding them or the files themselves. The file name gives the
proposer (``Amoeba`` amoeba, ``DARTS`` darts, ``ENAS`` enas, ``NASNet`` nasnet, ``PNAS`` pnas,
``ResNet`` resnet, ``ResNet-B`` resnet-b, ``ResNeXt-A`` resnext-a, ``ResNeXt-B`` resnext-b,
``Vanilla`` vanilla), the generator (suffix ``_fix-w-d`` fix_w_d, ``_lr-wd`` tune_lr_wd, otherwise
random; ``_reruns`` / ``_rng<k>`` are reruns with other seeds) and the dataset (suffix ``_in``
imagenet, otherwise cifar10). Each file is a JSON list of trials with ``net`` (NAS cells:
``genotype`` {``normal`` / ``reduce``: [op, input] pairs, x then y for each node, ``normal_concat``,
``reduce_concat``}, ``width``, ``depth``, ``aux``, ``drop_prob``; the others ``ds``, ``ws``, ``ss``
and, with bottlenecks, ``bot_muls``, ``num_gs``), ``optim`` (``base_lr``, ``wd``, ``max_ep``),
``rng_seed``, ``params``, ``flops``, per-epoch ``train_ep_top1``, ``train_ep_loss``,
``test_ep_top1`` (top-1 errors in %) and ``prec_time`` (``train_fw_bw_time``: seconds per
iteration; None when absent). Accuracies are stored as 100 − error, parameters and FLOPs in millions, NaN losses as None.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Iterator

from ..utils import canonical_json, json_files, nan_to_none, progress, run_generator, write_database
from .constants import PRIMITIVES
from .model import DATABASE, MODELS

__all__ = ["parse_file_name", "iter_trials", "generate"]

# proposer in the file name -> (proposer, model family)
_PROPOSERS = {"amoeba": ("amoeba", "nas_cell"), "darts": ("darts", "nas_cell"), "enas": ("enas", "nas_cell"),
              "nasnet": ("nasnet", "nas_cell"), "pnas": ("pnas", "nas_cell"),
              "resnet": ("resnet", "residual_basic"), "resnet-b": ("resnet-b", "residual_bottleneck"),
              "resnext-a": ("resnext-a", "residual_bottleneck"), "resnext-b": ("resnext-b", "residual_bottleneck"),
              "vanilla": ("vanilla", "vanilla")}
_NAME = re.compile(r"^(?P<proposer>[A-Za-z]+(?:-[AB])?)(?P<suffix>(?:_[A-Za-z0-9-]+)*)$")


def parse_file_name(path: str | Path) -> dict:
    """``DARTS_lr-wd_in.json`` -> ``{'proposer': 'darts', 'model_family': 'nas_cell', 'generator': 'tune_lr_wd', 'dataset': 'imagenet'}``."""
    stem = Path(path).stem
    m = _NAME.match(stem)
    if m is None or m.group("proposer").lower() not in _PROPOSERS:
        raise ValueError(f"{Path(path).name}: not an NDS file name (<Proposer>[_fix-w-d|_lr-wd|_reruns|_rng<k>][_in].json "
                         f"with Proposer one of Amoeba, DARTS, ENAS, NASNet, PNAS, ResNet, ResNet-B, ResNeXt-A, ResNeXt-B, Vanilla)")
    proposer, family = _PROPOSERS[m.group("proposer").lower()]
    suffixes = [s for s in m.group("suffix").split("_") if s]
    generator = "fix_w_d" if "fix-w-d" in suffixes else "tune_lr_wd" if "lr-wd" in suffixes else "random"
    return {"proposer": proposer, "model_family": family, "generator": generator,
            "dataset": "imagenet" if "in" in suffixes else "cifar10"}


def _cell_spec(genotype: dict, where: str) -> tuple[dict, int, int]:
    spec: dict = {}
    nodes = {}
    for cell in ("normal", "reduce"):
        pairs = genotype[cell]
        if len(pairs) % 2:
            raise ValueError(f"{where}: genotype.{cell} has {len(pairs)} entries; two (x and y) per node expected")
        nodes[cell] = len(pairs) // 2
        for k, (op, inp) in enumerate(pairs):
            if op not in PRIMITIVES:
                raise ValueError(f"{where}: genotype.{cell}[{k}] operator {op!r} is not one of {', '.join(PRIMITIVES)}")
            node, xy = divmod(k, 2)
            spec[f"{cell}_{node}_op_{'xy'[xy]}"] = op
            spec[f"{cell}_{node}_input_{'xy'[xy]}"] = int(inp)
        spec[f"{cell}_concat"] = [int(i) for i in genotype[f"{cell}_concat"]]
    return spec, nodes["normal"], nodes["reduce"]


def iter_trials(path: str | Path) -> Iterator[tuple[dict, dict, list[dict]]]:
    """Yield ``(config, stats, intermediates)`` row dicts for every trial of one NDS JSON file."""
    meta = parse_file_name(path)
    with open(path, encoding="utf-8") as f:
        records = json.load(f)
    for i, rec in enumerate(records):
        where = f"{Path(path).name}[{i}]"
        try:
            net, optim = rec["net"], rec["optim"]
            if meta["model_family"] == "nas_cell":
                cell_spec, n_normal, n_reduce = _cell_spec(net["genotype"], where)
                model_spec = {"num_nodes_normal": n_normal, "num_nodes_reduce": n_reduce, "depth": net["depth"],
                              "width": net["width"], "aux": net["aux"], "drop_prob": net["drop_prob"]}
            else:
                keys = ["bot_muls", "ds", "num_gs", "ss", "ws"] if meta["model_family"] == "residual_bottleneck" else ["ds", "ss", "ws"]
                model_spec, cell_spec = {k: net[k] for k in keys}, {}
            train_err, test_err = rec["train_ep_top1"], rec["test_ep_top1"]
            losses = [nan_to_none(x) for x in rec["train_ep_loss"]]
            config = dict(meta, model_spec=model_spec, cell_spec=cell_spec, base_lr=float(optim["base_lr"]),
                          weight_decay=float(optim["wd"]), num_epochs=int(optim.get("max_ep", len(train_err))))
            finite = [x for x in losses if x is not None]
            prec = rec.get("prec_time") or {}
            stats = {"seed": int(rec["rng_seed"]),
                     "final_train_acc": 100.0 - train_err[-1], "final_train_loss": losses[-1],
                     "final_test_acc": 100.0 - test_err[-1], "best_train_acc": 100.0 - min(train_err),
                     "best_train_loss": min(finite) if finite else None, "best_test_acc": 100.0 - min(test_err),
                     "parameters": rec["params"] / 1e6, "flops": rec["flops"] / 1e6,
                     "iter_time": nan_to_none(prec.get("train_fw_bw_time"))}
        except (KeyError, TypeError, IndexError) as err:
            raise ValueError(f"{where}: not an NDS trial record ({type(err).__name__}: {err})") from None
        inters = [{"current_epoch": e + 1, "train_loss": losses[e], "train_acc": 100.0 - train_err[e],
                   "test_acc": 100.0 - test_err[e]} for e in range(min(len(train_err), len(test_err), len(losses)))]
        yield config, stats, inters


def generate(inputs: list[str], out: str | None = None, quiet: bool = True) -> int:
    """Read the NDS JSON files (or folders of them) and write the database; returns the number of trials."""
    inputs = list(inputs)
    files = json_files(inputs)
    if not files:
        raise ValueError(f"no .json files in {', '.join(inputs)}")
    for f in files:
        parse_file_name(f)  # reject a stray file before writing anything
    trials = (trial for path in files for trial in progress(iter_trials(path), path.name, quiet))
    return write_database(DATABASE, out, MODELS, trials, canonical_json)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nni.nas.benchmarks.nds.db_gen", description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", help="the NDS .json files, or folders holding them")
    run_generator(parser, DATABASE, argv, lambda args: (generate(args.inputs, args.out, quiet=args.quiet), ""))


if __name__ == "__main__":
    main()
