"""``python -m nni.compression_benchmark [--batch 64] [--repeats 7] [--threads 1]``."""
from __future__ import annotations

import argparse
import json

from .bench import run_all


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m nni.compression_benchmark")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7, help="timed forward passes per model (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch threads; 0 leaves torch's default")
    args = p.parse_args()
    for result in run_all(args.batch, args.repeats, args.threads or None):
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
