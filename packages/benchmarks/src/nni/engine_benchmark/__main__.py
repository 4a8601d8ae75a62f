"""``python -m nni.engine_benchmark [overhead|throughput|reference|store|remote|all] [--trials N]``."""
from __future__ import annotations

import argparse
import json

from .bench import bench_overhead, bench_reference, bench_remote, bench_store, bench_throughput


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m nni.engine_benchmark")
    p.add_argument("which", nargs="?", default="all", choices=["overhead", "throughput", "reference", "store", "remote", "all"])
    p.add_argument("--trials", type=int, default=200, help="trials of the overhead benchmark")
    p.add_argument("--throughput-trials", type=int, default=1000, help="trials of the throughput benchmark")
    p.add_argument("--concurrency", type=int, default=8, help="concurrency of the throughput benchmark")
    p.add_argument("--workdir", default=None, help="folder of the throughput benchmark's experiment (default: the temporary folder)")
    p.add_argument("--store-trials", type=int, default=10_000)
    p.add_argument("--remote-trials", type=int, default=40, help="trials of the remote benchmark (0.2 s each, concurrency 4)")
    p.add_argument("--repeats", type=int, default=3, help="alternated local/remote runs of the remote benchmark")
    args = p.parse_args()
    if args.which in ("overhead", "all"):
        print(json.dumps(bench_overhead(args.trials)), flush=True)
    if args.which in ("throughput", "all"):
        print(json.dumps(bench_throughput(args.throughput_trials, args.concurrency, args.workdir)), flush=True)
    if args.which in ("reference", "all"):
        print(json.dumps(bench_reference()), flush=True)
    if args.which in ("store", "all"):
        print(json.dumps(bench_store(args.store_trials)), flush=True)
    if args.which == "remote":  # needs root and openssh-server (real sshd machines on 127.0.0.1)
        print(json.dumps(bench_remote(args.remote_trials, repeats=args.repeats)), flush=True)


if __name__ == "__main__":
    main()
