"""Compare multi-trial strategies on a NAS-Bench-201-format database: a strategy comparison in seconds.

    python examples/nas/benchmark/strategy_comparison.py [--db-dir DIR] [--trials 50] [--seeds 5]

1. Unless ``DIR/nasbench201.db`` exists, writes a *synthetic* release in the official NAS-Bench-201 ``.pth``
   format (all 15,625 cells, cifar10-valid, the 12-epoch schedule, one seed) whose accuracies come from a
   deterministic model of the cell (op quality, connectivity, depth, a residual bonus and a fixed per-cell
   perturbation), then turns it into the database with ``python -m nni.nas.benchmarks.nasbench201.db_gen``.
   (The 200-epoch schedule would hold 3.1M intermediate rows and take minutes to build; the numbers are
   synthetic either way.)
2. Runs Random, RegularizedEvolution, TPEStrategy and PolicyBasedRL, ``--trials`` models each, for ``--seeds``
   seeds, with exactly the user code of a real search: ``RetiariiExperiment`` on ``NasBench201Space`` with
   ``execution_engine='benchmark'``. Every model is answered from the database instead of being trained.
3. Prints the median (and quartiles) of the best validation accuracy found, its regret to the best cell of
   the database, and the seconds per search.

With the real release (``NAS-Bench-201-v1_1-096897.pth``) run db_gen on it, point ``--db-dir`` at its folder
and pass ``--epochs 200``.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

EDGES = ["0_1", "0_2", "0_3", "1_2", "1_3", "2_3"]
OPS = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
OFFICIAL = {"none": "none", "skip_connect": "skip_connect", "conv_1x1": "nor_conv_1x1", "conv_3x3": "nor_conv_3x3",
            "avg_pool_3x3": "avg_pool_3x3"}
QUALITY = {"none": 0.0, "skip_connect": 0.3, "avg_pool_3x3": 0.25, "conv_1x1": 0.7, "conv_3x3": 1.0}


def arch_str(arch: dict) -> str:
    nodes = [[f"{OFFICIAL[arch[f'{i}_{j}']]}~{i}" for i in range(j)] for j in range(1, 4)]
    return "|" + "|+|".join("|".join(node) for node in nodes) + "|"


def synthetic_accuracy(arch: dict) -> float:
    """Final validation accuracy (0-100) of a cell under the deterministic model of this example."""
    # longest path (in parametric ops) from node 0 to node 3 over edges that are not 'none'; -1: disconnected
    depth = {0: 0}
    for j in (1, 2, 3):
        reach = [depth[i] + (arch[f"{i}_{j}"] in ("conv_1x1", "conv_3x3")) for i in range(j)
                 if i in depth and arch[f"{i}_{j}"] != "none"]
        if reach:
            depth[j] = max(reach)
    if 3 not in depth:
        return 10.0  # nothing reaches the output: chance level
    into_output = sum(QUALITY[arch[f"{i}_3"]] for i in range(3)) / 3
    overall = sum(QUALITY[op] for op in arch.values()) / 6
    score = 0.4 * into_output + 0.35 * min(depth[3], 3) / 3 + 0.25 * overall
    if arch["0_3"] == "skip_connect" and depth[3] >= 2:
        score += 0.08  # a residual connection helps deep cells
    score -= 0.04 * sum(op == "avg_pool_3x3" for op in arch.values())
    noise = int(hashlib.md5(arch_str(arch).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF - 0.5
    return 10.0 + 84.0 * min(max(score + 0.03 * noise, 0.0), 1.0) ** 0.8


def _results(arch: dict, epochs: int, seed: int) -> dict:
    final = synthetic_accuracy(arch) * (0.93 if epochs < 100 else 1.0)
    curve = [final * (1 - math.exp(-5 * (e + 1) / epochs)) / (1 - math.exp(-5)) for e in range(epochs)]
    splits = ["x-valid", "ori-test"]
    return {"name": "cifar10-valid", "seed": seed, "epochs": epochs,
            "train_acc1es": {e: min(100.0, a + 5) for e, a in enumerate(curve)},
            "train_losses": {e: 2.3 * (1 - a / 100) for e, a in enumerate(curve)},
            "train_times": {e: 10.0 for e in range(epochs)}, "eval_names": splits,
            "eval_acc1es": {f"{s}@{e}": a - (0.5 if s == "ori-test" else 0.0) for s in splits for e, a in enumerate(curve)},
            "eval_losses": {f"{s}@{e}": 2.3 * (1 - a / 100) for s in splits for e, a in enumerate(curve)},
            "eval_times": {f"{s}@{e}": 1.0 for s in splits for e in range(epochs)},
            "params": 0.1, "flop": 15.0, "latency": [0.01],
            "arch_config": {"name": "infer.tiny", "C": 16, "N": 5, "num_classes": 10}}


def build_database(db_dir: str, epochs: int) -> float:
    """Write the synthetic release and run db_gen on it; returns the seconds it took."""
    import torch
    start = time.perf_counter()
    archs = [dict(zip(EDGES, ops)) for ops in itertools.product(OPS, repeat=len(EDGES))]
    schedule = "less" if epochs < 100 else "full"
    raw = {"meta_archs": [arch_str(a) for a in archs], "total_archs": len(archs),
           "arch2infos": {i: {schedule: {"arch_str": arch_str(a), "all_results": {("cifar10-valid", 777): _results(a, epochs, 777)}}}
                          for i, a in enumerate(archs)}}
    os.makedirs(db_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "NAS-Bench-201-synthetic.pth")
        torch.save(raw, path)
        del raw
        subprocess.run([sys.executable, "-m", "nni.nas.benchmarks.nasbench201.db_gen", path, "--quiet",
                        "--out", os.path.join(db_dir, "nasbench201.db")], check=True)
    return time.perf_counter() - start


def strategies(seed: int, trials: int) -> dict:
    import nni.retiarii.strategy as strategy
    return {
        "Random": strategy.Random(dedup=True, seed=seed),
        "RegularizedEvolution": strategy.RegularizedEvolution(population_size=10, sample_size=3, cycles=trials, seed=seed),
        "TPEStrategy": strategy.TPEStrategy(seed=seed),
        "PolicyBasedRL": strategy.PolicyBasedRL(max_collect=math.ceil(trials / 5), trial_per_collect=5, seed=seed),
    }


def _unused_evaluator(model_cls):
    raise RuntimeError("not called: the benchmark engine answers from the database")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-dir", default="nb201-synthetic", help="folder of nasbench201.db (built here if missing)")
    parser.add_argument("--epochs", type=int, default=12, choices=[12, 200], help="the schedule looked up (and built)")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    if not os.path.isfile(os.path.join(args.db_dir, "nasbench201.db")):
        print(f"building the synthetic NAS-Bench-201 database in {args.db_dir} ...", flush=True)
        print(f"  built in {build_database(args.db_dir, args.epochs):.1f} s", flush=True)
    os.environ["NASBENCHMARK_DIR"] = os.path.abspath(args.db_dir)

    from nni.nas.benchmarks.nasbench201 import query_nb201_trial_stats
    from nni.retiarii.benchmark_spaces import NasBench201Space
    from nni.retiarii.evaluator import FunctionalEvaluator
    from nni.retiarii.experiment.pytorch import RetiariiExeConfig, RetiariiExperiment

    optimum = max(t["valid_acc"] for t in query_nb201_trial_stats(None, args.epochs, "cifar10-valid"))
    space = NasBench201Space()
    results: dict = {}
    for seed in range(args.seeds):
        for name, strat in strategies(seed, args.trials).items():
            config = RetiariiExeConfig("local", trial_concurrency=1, max_trial_number=args.trials,
                                       execution_engine="benchmark", benchmark="nasbench201",
                                       benchmark_dataset="cifar10-valid", benchmark_epochs=args.epochs)
            exp = RetiariiExperiment(space, FunctionalEvaluator(_unused_evaluator), [], strat)
            start = time.perf_counter()
            exp.run(config)
            seconds = time.perf_counter() - start
            metrics = [m.metric for m in exp.list_models() if m.metric is not None]
            results.setdefault(name, []).append((max(metrics), len(metrics), seconds))

    print(f"\n{args.trials} models per search, {args.seeds} seeds, {args.epochs}-epoch valid_acc on cifar10-valid "
          f"(best cell of the database: {optimum:.2f})\n")
    print("| strategy | median best valid_acc | q1 - q3 | median regret | models | s / search |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        best = sorted(r[0] for r in runs)
        q = statistics.quantiles(best, n=4) if len(best) > 1 else [best[0]] * 3
        print(f"| {name} | {statistics.median(best):.2f} | {q[0]:.2f} - {q[2]:.2f} | {optimum - statistics.median(best):.2f} "
              f"| {statistics.median(r[1] for r in runs):.0f} | {statistics.median(r[2] for r in runs):.2f} |")


if __name__ == "__main__":
    main()
