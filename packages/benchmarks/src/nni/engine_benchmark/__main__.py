"""``python -m nni.engine_benchmark [overhead|reference|store|all] [--trials N]``."""
from __future__ import annotations

import argparse
import json

from .bench import bench_overhead, bench_reference, bench_store


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m nni.engine_benchmark")
    p.add_argument("which", nargs="?", default="all", choices=["overhead", "reference", "store", "all"])
    p.add_argument("--trials", type=int, default=200, help="trials of the overhead benchmark")
    p.add_argument("--store-trials", type=int, default=10_000)
    args = p.parse_args()
    if args.which in ("overhead", "all"):
        print(json.dumps(bench_overhead(args.trials)), flush=True)
    if args.which in ("reference", "all"):
        print(json.dumps(bench_reference()), flush=True)
    if args.which in ("store", "all"):
        print(json.dumps(bench_store(args.store_trials)), flush=True)


if __name__ == "__main__":
    main()
