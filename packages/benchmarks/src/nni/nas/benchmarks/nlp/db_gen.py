"""Generate the NAS-Bench-NLP database from the release's training logs.

Usage: ``python -m nni.nas.benchmarks.nlp.db_gen path/to/train_logs_single_run/ [more folders or files] [--out FILE]``

The input is the release's per-trial JSON logs (every ``*.json`` under the given folders, or the given files).
A log holds ``recepie`` (the nested recipe ``{node: {"op": ..., "input": [...]}}``, as a dict or as JSON text;
``recipe`` is accepted too), ``dataset`` (``ptb``, ``wikitext-2``), ``status`` and the per-epoch lists
``train_losses``, ``val_losses``, ``test_losses`` and ``wall_times``. Logs whose status is not ``OK`` or that
have no epoch are skipped (counted on stdout). The final stats are the last epoch's; NaN losses become None.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..utils import canonical_json, json_files, nan_to_none, progress, run_generator, write_database
from .constants import DATASETS
from .model import DATABASE, MODELS
from .query import check_arch

__all__ = ["flatten_recipe", "iter_trials", "generate"]


def flatten_recipe(recipe: dict) -> dict:
    """``{'node_0': {'op': 'linear', 'input': ['x', 'h_prev_0']}}`` -> ``{'node_0_op': 'linear',
    'node_0_input_0': 'x', 'node_0_input_1': 'h_prev_0'}`` (the form the database and queries use)."""
    if not isinstance(recipe, dict):
        raise ValueError(f"recipe: expected a dict node -> {{'op', 'input'}}, got {type(recipe).__name__}")
    arch = {}
    for node, spec in recipe.items():
        if not isinstance(spec, dict) or "op" not in spec or not isinstance(spec.get("input", []), list):
            raise ValueError(f"recipe[{node!r}]: expected {{'op': <name>, 'input': [<names>]}}, got {spec!r}")
        arch[f"{node}_op"] = spec["op"]
        for k, name in enumerate(spec.get("input", [])):
            arch[f"{node}_input_{k}"] = name
    check_arch(arch)
    return arch


def _value(values: list, i: int) -> Any:
    return nan_to_none(values[i]) if i < len(values) and values[i] is not None else None


def iter_trials(logs: Iterable[tuple[str, dict]], skipped: list | None = None) -> Iterator[tuple[dict, dict, list[dict]]]:
    """Yield ``(config, stats, intermediates)`` for every usable ``(name, log)``; unusable names go to ``skipped``."""
    for name, log in logs:
        if not isinstance(log, dict):
            raise ValueError(f"{name}: not a NAS-Bench-NLP log (a JSON object expected)")
        recipe = log.get("recepie", log.get("recipe"))
        if recipe is None:
            raise ValueError(f"{name}: not a NAS-Bench-NLP log (no 'recepie')")
        if isinstance(recipe, str):
            recipe = json.loads(recipe)
        dataset = str(log.get("dataset", "")).lower()
        if dataset not in DATASETS:
            raise ValueError(f"{name}: dataset {log.get('dataset')!r} is not one of {', '.join(DATASETS)}")
        train, val, test = (list(log.get(k) or []) for k in ("train_losses", "val_losses", "test_losses"))
        times = list(log.get("wall_times") or [])
        epochs = max(len(train), len(val), len(test))
        if str(log.get("status", "OK")).upper() != "OK" or epochs == 0:
            if skipped is not None:
                skipped.append(name)
            continue
        arch = flatten_recipe(recipe)
        inters = [{"current_epoch": i + 1, "train_loss": _value(train, i), "val_loss": _value(val, i),
                   "test_loss": _value(test, i), "training_time": _value(times, i)} for i in range(epochs)]
        stats = {k: v for k, v in inters[-1].items() if k != "current_epoch"}
        yield {"arch": arch, "dataset": dataset}, stats, inters


def _read(files: list[Path]) -> Iterator[tuple[str, dict]]:
    for f in files:
        try:
            yield str(f), json.loads(f.read_text())
        except ValueError as err:
            raise ValueError(f"{f}: not JSON ({err})") from None


def generate(paths: Iterable[str], out: str | None = None, quiet: bool = True) -> tuple[int, int]:
    """Read the logs under ``paths`` and write the database; returns ``(trials written, logs skipped)``."""
    files = json_files([paths] if isinstance(paths, str) else paths, recursive=True)
    if not files:
        raise ValueError("no *.json log found in the given paths")
    skipped: list = []
    n = write_database(DATABASE, out, MODELS, progress(iter_trials(_read(files), skipped), "NAS-Bench-NLP", quiet),
                       lambda config: (canonical_json(config["arch"]), config["dataset"]))
    return n, len(skipped)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nni.nas.benchmarks.nlp.db_gen", description=__doc__.split("\n")[0])
    parser.add_argument("logs", nargs="+", help="folders of the release's JSON logs (e.g. train_logs_single_run/) or log files")
    run_generator(parser, DATABASE, argv, lambda args: _summary(*generate(args.logs, args.out, quiet=args.quiet)))


def _summary(n: int, skipped: int) -> tuple[int, str]:
    return n, f" ({skipped} logs skipped: status not OK or no epoch)"


if __name__ == "__main__":
    main()
