"""Query latency of a full-size NAS-Bench-201-format database (the nni-nas target: one
architecture's stats with intermediates in at most 5 ms).

Usage: ``python -m nni.nas.benchmarks.query_speed [--archs 15625] [--epochs 200] [--queries 300] [--keep DIR]``

Builds a synthetic NAS-Bench-201 database (every one of the 15,625 cells, or the first ``--archs``,
on ``cifar10-valid`` with ``--epochs`` intermediates per trial, one trial each) through the same
writer as ``nasbench201.db_gen``, then times ``query_nb201_trial_stats(arch, epochs,
'cifar10-valid', include_intermediates=True)`` for random cells, fully consumed. Prints one JSON
line: build seconds, rows, and the query latency median / p95 / max in milliseconds.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import tempfile
import time
from typing import Iterator

from .nasbench201.constants import EDGES, PRIMITIVES
from .nasbench201.db_gen import config_key
from .nasbench201.model import DATABASE, MODELS
from .nasbench201.query import query_nb201_trial_stats
from .utils import write_database

__all__ = ["all_archs", "synthetic_trials", "build_database", "measure"]


def all_archs(limit: int | None = None) -> list[dict]:
    """The NAS-Bench-201 cells in a fixed order (all 5^6 = 15,625, or the first ``limit``)."""
    combos = itertools.product(PRIMITIVES, repeat=len(EDGES))
    return [dict(zip(EDGES, ops)) for ops in itertools.islice(combos, limit)]


def synthetic_trials(archs: list[dict], epochs: int, seed: int = 0) -> Iterator[tuple[dict, dict, list[dict]]]:
    rng = random.Random(seed)
    for arch in archs:
        final = rng.uniform(10, 95)
        curve = [final * (e + 1) / epochs for e in range(epochs)]
        inters = [{"current_epoch": e + 1, "train_acc": a, "valid_acc": a, "test_acc": a, "ori_test_acc": a,
                   "train_loss": 1 / (1 + a), "valid_loss": 1 / (1 + a), "test_loss": 1 / (1 + a),
                   "ori_test_loss": 1 / (1 + a)} for e, a in enumerate(curve)]
        stats = {"seed": 777, "train_acc": final, "valid_acc": final, "test_acc": final, "ori_test_acc": final,
                 "train_loss": 0.1, "valid_loss": 0.2, "test_loss": 0.2, "ori_test_loss": 0.2,
                 "parameters": rng.uniform(0.1, 1.5), "latency": 0.01, "flops": rng.uniform(10, 200),
                 "training_time": 1000.0, "valid_evaluation_time": 1.0, "test_evaluation_time": 1.0,
                 "ori_test_evaluation_time": 1.0}
        config = {"arch": arch, "num_epochs": epochs, "dataset": "cifar10-valid", "num_channels": 16, "num_cells": 5}
        yield config, stats, inters


def build_database(folder: str, archs: int | None = None, epochs: int = 200) -> dict:
    """Write ``nasbench201.db`` into ``folder``; returns the build time and row counts."""
    start = time.perf_counter()
    cells = all_archs(archs)
    n = write_database(DATABASE, os.path.join(folder, DATABASE.filename), MODELS, synthetic_trials(cells, epochs), config_key)
    return {"build_s": round(time.perf_counter() - start, 2), "archs": len(cells), "trials": n,
            "intermediate_rows": n * epochs}


def measure(folder: str, epochs: int, queries: int = 300, archs: int | None = None, seed: int = 1) -> dict:
    """Time single-architecture queries with intermediates against the database in ``folder``."""
    old = os.environ.get("NASBENCHMARK_DIR")
    os.environ["NASBENCHMARK_DIR"] = folder
    try:
        cells = all_archs(archs)
        rng = random.Random(seed)
        list(query_nb201_trial_stats(cells[0], epochs, "cifar10-valid", include_intermediates=True))  # open once
        times = []
        for _ in range(queries):
            arch = rng.choice(cells)
            t0 = time.perf_counter()
            rows = list(query_nb201_trial_stats(arch, epochs, "cifar10-valid", include_intermediates=True))
            times.append((time.perf_counter() - t0) * 1000)
            assert len(rows) == 1 and len(rows[0]["intermediates"]) == epochs, "wrong query result"
        times.sort()
        return {"queries": queries, "median_ms": round(statistics.median(times), 3),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3), "max_ms": round(times[-1], 3)}
    finally:
        DATABASE.close()
        if old is None:
            os.environ.pop("NASBENCHMARK_DIR", None)
        else:
            os.environ["NASBENCHMARK_DIR"] = old


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nni.nas.benchmarks.query_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--archs", type=int, default=15625)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", default=None, help="build the database in this folder and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or tmp
        os.makedirs(folder, exist_ok=True)
        result = build_database(folder, args.archs, args.epochs)
        result.update(measure(folder, args.epochs, args.queries, args.archs))
        result.update(target_ms=5.0, load_avg=[round(x, 2) for x in os.getloadavg()])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
